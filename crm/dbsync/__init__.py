"""Schema specs → database: plan the changes, check the rows, apply under a lock, record revisions."""
from __future__ import annotations

import sqlalchemy as sa


def enable_sqlite_foreign_keys(dbapi_connection: object, connection_record: object) -> None:
    """SQLite enforces foreign keys (and so on_delete rules) only when asked, per connection."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()


sa.event.listen(sa.engine.Engine, "connect", enable_sqlite_foreign_keys)
