"""Check, before anything else is done, that the configured database can be opened and written."""
from __future__ import annotations

import sqlite3

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

HINT = "check that the server runs and that host, port, user, password and database name are right"
SQLITE_HINT = "check that the folder exists and the panel's user may write in it"


class DatabaseUnavailable(Exception):
    """The database cannot be used; str() is one line: which database, what failed, what to check."""


def check_database(url: str) -> None:
    """Raise DatabaseUnavailable when `url` names no database the panel can open and write."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        raise DatabaseUnavailable(f"CRM_DATABASE_URL {url!r} is not a database URL; e.g. "
                                  "postgresql+psycopg2://user@host/db or sqlite:///instance/crm.db") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(parsed, poolclass=NullPool)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"{shown}: no driver for this kind of database ({exc}); PostgreSQL needs "
                                  "postgresql+psycopg2://, MariaDB mysql+pymysql://") from None
    try:
        with engine.connect() as conn:
            read_only = is_read_only(conn)
    except sa.exc.DBAPIError as exc:
        reason = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
        hint = SQLITE_HINT if parsed.get_backend_name() == "sqlite" else HINT
        raise DatabaseUnavailable(f"cannot open the database {shown}: {reason} — {hint}") from None
    finally:
        engine.dispose()
    if read_only:
        raise DatabaseUnavailable(f"the database {shown} is read-only: nothing could be saved — make it writable "
                                  "for the panel (file permissions, a read-only mount or replica, read_only mode)")


def is_read_only(conn: sa.Connection) -> bool:
    """Return True when the connection may read but not write (answers 'unable to open' as an error)."""
    kind = conn.dialect.name
    if kind == "postgresql":
        return conn.execute(sa.text("SHOW transaction_read_only")).scalar() == "on"
    if kind in ("mysql", "mariadb"):
        return bool(conn.execute(sa.text("SELECT @@read_only OR @@innodb_read_only")).scalar())
    # SQLite: try a write in a transaction that is rolled back (permissions, mode=ro, a read-only mount).
    # The driver is told to stay out of the way: by itself it would run the DDL outside a transaction.
    driver = conn.connection.driver_connection
    driver.isolation_level = None  # type: ignore[union-attr]
    try:
        driver.execute("BEGIN")  # type: ignore[union-attr]
        driver.execute("CREATE TABLE crm_write_check (x INTEGER)")  # type: ignore[union-attr]
    except sqlite3.OperationalError as exc:
        if "readonly" in str(exc).replace(" ", "").lower():
            return True
        raise sa.exc.OperationalError("write check", None, exc) from None
    finally:
        if driver.in_transaction:  # type: ignore[union-attr]
            driver.execute("ROLLBACK")  # type: ignore[union-attr]
    return False
