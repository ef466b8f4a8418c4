"""Create the tables that the specs declare and the database lacks. Never alters or drops anything."""
from __future__ import annotations

import sqlalchemy as sa
from flask_appbuilder import Model

from crm.models.build import BuiltModels


def plan_missing_tables(engine: sa.Engine, models: BuiltModels) -> list[str]:
    """Return the names of the schema's tables that do not exist yet, in dependency order."""
    existing = set(sa.inspect(engine).get_table_names())
    return [t.name for t in models.metadata.sorted_tables if t.name not in existing]


def apply_missing_tables(engine: sa.Engine, models: BuiltModels) -> list[str]:
    """Create Flask-AppBuilder's and the schema's missing tables; return the schema tables created."""
    Model.metadata.create_all(engine)
    missing = plan_missing_tables(engine, models)
    tables = [models.metadata.tables[name] for name in missing]
    models.metadata.create_all(engine, tables=tables)
    return missing


def enable_sqlite_foreign_keys(dbapi_connection: object, connection_record: object) -> None:
    """SQLite enforces foreign keys (and so on_delete rules) only when asked, per connection."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


sa.event.listen(sa.engine.Engine, "connect", enable_sqlite_foreign_keys)
