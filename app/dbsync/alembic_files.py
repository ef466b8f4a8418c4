"""The files that make a migrations folder usable with Alembic's own command line.

Written next to the first revision file of a folder (the project's migrations/ holds the same),
so that `alembic -c <folder>/alembic.ini upgrade head|history|current` works for any schema.
"""
from __future__ import annotations

from pathlib import Path

ENV_PY = '''"""Alembic's entry point for this folder: `alembic -c migrations/alembic.ini upgrade head` runs the
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
'''

ALEMBIC_INI = '''# Alembic settings for the schema revisions in this folder. The database is CRM_DATABASE_URL
# (see app/settings.py) unless sqlalchemy.url is set here.
[alembic]
script_location = %(here)s
prepend_sys_path = %(here)s/..
path_separator = os
'''

SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

# revision identifiers, used by Alembic.
revision: str = ${repr(up_revision)}
down_revision: Union[str, Sequence[str], None] = ${repr(down_revision)}
branch_labels: Union[str, Sequence[str], None] = ${repr(branch_labels)}
depends_on: Union[str, Sequence[str], None] = ${repr(depends_on)}


def upgrade() -> None:
    """Upgrade schema."""
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    """Downgrade schema."""
    ${downgrades if downgrades else "pass"}
'''

FILES = {"env.py": ENV_PY, "alembic.ini": ALEMBIC_INI, "script.py.mako": SCRIPT_MAKO}


def ensure_alembic_files(folder: Path) -> None:
    """Write env.py, alembic.ini and script.py.mako into `folder` where they are missing."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in FILES.items():
        path = folder / name
        if not path.exists() or path.read_text(encoding="utf-8") == written_before_the_move(text):
            path.write_text(text, encoding="utf-8")


def written_before_the_move(text: str) -> str:
    """Return a file as this module wrote it while the package was crm/ (it then imported crm.config)."""
    return text.replace("app.settings", "crm.config").replace("app/settings.py", "crm/config.py")
