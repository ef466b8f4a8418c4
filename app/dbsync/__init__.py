"""Schema specs → database: plan the changes, check the rows, apply under a lock, record revisions."""
from __future__ import annotations

import sqlalchemy as sa

SQLITE_BUSY_MS = 30_000  # how long a write waits for another one to finish before it fails


def tune_sqlite(dbapi_connection: object, connection_record: object) -> None:
    """Set up each SQLite connection: foreign keys enforced (and so on_delete rules), which SQLite does
    only when asked; writes wait for each other instead of failing at once; and WAL, in which readers
    never wait for a writer (it stays set in the file)."""
    import sqlite3

    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass  # a read-only or busy database keeps its journal mode; the start-up check says which
        cursor.close()


sa.event.listen(sa.engine.Engine, "connect", tune_sqlite)
