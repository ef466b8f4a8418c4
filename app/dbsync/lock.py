"""One connection that holds the database's schema lock and one transaction for a whole sync.

Several processes starting together (gunicorn workers, two hosts) queue on the database's own
lock: PostgreSQL's advisory lock, MariaDB's GET_LOCK, SQLite's write lock (BEGIN IMMEDIATE). The
first applies the plan; the others then find nothing left to do. PostgreSQL and SQLite roll the
whole plan back if it fails or the process dies; MariaDB commits each DDL statement by itself,
so the steps are written to be completed by the next start (see apply.py).
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

LOCK_NAME = "crm_schema_sync"
PG_LOCK_ID = 0x63726D73  # 'crms'
WAIT_SECONDS = 600


class LockTimeout(RuntimeError):
    """Another process held the schema lock for longer than WAIT_SECONDS."""


@contextmanager
def locked_connection(url: str) -> Iterator[sa.Connection]:
    """Yield a connection inside one transaction that holds the schema lock; commit on success."""
    engine = sa.create_engine(url, poolclass=NullPool)
    conn = engine.connect()
    kind = conn.dialect.name
    try:
        if kind == "sqlite":
            begin_sqlite(conn)
        elif kind == "postgresql":
            conn.execute(sa.text(f"SET lock_timeout = '{WAIT_SECONDS}s'"))
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:id)"), {"id": PG_LOCK_ID})
        else:
            got = conn.execute(sa.text("SELECT GET_LOCK(:name, :wait)"),
                               {"name": LOCK_NAME, "wait": WAIT_SECONDS}).scalar()
            if got != 1:
                raise LockTimeout(f"another process kept the schema lock for {WAIT_SECONDS} s")
        yield conn
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    finally:
        if kind in ("mysql", "mariadb"):
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
        conn.close()
        engine.dispose()


def begin_sqlite(conn: sa.Connection) -> None:
    """Take SQLite's write lock in a real transaction that DDL joins, with foreign keys off.

    Python's sqlite3 driver does not begin a transaction before DDL by itself, so a failed table
    rebuild would leave `_alembic_tmp_*` tables behind; here the driver is told to stay out of the
    way and the transaction is begun explicitly. Foreign keys are off so that rebuilding a parent
    table does not delete or block its children (SQLite ignores the pragma inside a transaction).
    """
    driver = conn.connection.driver_connection
    driver.isolation_level = None  # type: ignore[union-attr]
    conn.exec_driver_sql(f"PRAGMA busy_timeout = {WAIT_SECONDS * 1000}")
    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
    conn.exec_driver_sql("BEGIN IMMEDIATE")
