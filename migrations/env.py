"""Alembic's entry point for this folder: `alembic -c migrations/alembic.ini upgrade head` runs the
revision files against CRM_DATABASE_URL (the app does the same at start-up, under its schema lock)."""
from __future__ import annotations

import flask_appbuilder.security.sqla.models  # noqa: F401  (Flask-AppBuilder's tables: users are link targets)
from alembic import context
from flask_appbuilder import Model
from sqlalchemy import create_engine, pool

from app.settings import load_config

url = context.config.get_main_option("sqlalchemy.url") or load_config()["CRM_DATABASE_URL"]

if context.is_offline_mode():
    raise SystemExit("these revisions carry their steps as data and run online only: drop --sql")

engine = create_engine(url, poolclass=pool.NullPool)
with engine.connect() as connection:
    Model.metadata.create_all(connection)
    connection.commit()
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
