"""Create the tables and columns that the specs declare and the database lacks.

Only additions: nothing is altered, renamed or dropped (safe schema evolution builds on this).
"""
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


def plan_missing_columns(engine: sa.Engine, models: BuiltModels) -> list[sa.Column[object]]:
    """Return the schema's columns missing from tables that already exist."""
    inspector = sa.inspect(engine)
    existing_tables = set(inspector.get_table_names())
    missing = []
    for table in models.metadata.sorted_tables:
        if table.name not in existing_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        missing += [c for c in table.columns if c.name not in present]
    return missing


def apply_missing_columns(engine: sa.Engine, models: BuiltModels) -> list[str]:
    """Add each missing column as nullable, with its index; return them as 'table.column'."""
    added = []
    with engine.begin() as conn:
        for column in plan_missing_columns(engine, models):
            table = column.table
            ddl = sa.schema.CreateColumn(column).compile(dialect=conn.dialect)
            conn.execute(sa.text(f"ALTER TABLE {conn.dialect.identifier_preparer.format_table(table)} ADD {ddl}"))
            for index in table.indexes:
                if column in index.columns.values():
                    index.create(conn)
            added.append(f"{table.name}.{column.name}")
    return added


def enable_sqlite_foreign_keys(dbapi_connection: object, connection_record: object) -> None:
    """SQLite enforces foreign keys (and so on_delete rules) only when asked, per connection."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


sa.event.listen(sa.engine.Engine, "connect", enable_sqlite_foreign_keys)
