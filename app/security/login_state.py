"""What every worker must agree on about logins, kept in the panel's own database: each user's
session version (raised by logout and password changes, which ends every session and token issued
before) and the counters of failed logins (a `limits` storage, see app.security.limits_storage).

Needs neither Flask nor the models: the schema sync creates the tables under its lock.
"""
from __future__ import annotations

import sqlalchemy as sa

LOGIN_METADATA = sa.MetaData()

SESSION_TABLE = sa.Table(
    "crm_login_state", LOGIN_METADATA,
    sa.Column("user_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("session_version", sa.Integer, nullable=False),
)
COUNTER_TABLE = sa.Table(
    "crm_rate_limit", LOGIN_METADATA,
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("hits", sa.Integer, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=False, index=True),  # a Unix time (MariaDB's FLOAT is too coarse)
)


def ensure_login_tables(conn: sa.Connection) -> None:
    """Create the tables if missing (called under the schema lock at start-up)."""
    LOGIN_METADATA.create_all(conn, checkfirst=True)


def session_version(conn: sa.Connection, user_id: int) -> int:
    """Return the user's session version: 0 until their first logout or password change."""
    value = conn.execute(sa.select(SESSION_TABLE.c.session_version)
                         .where(SESSION_TABLE.c.user_id == user_id)).scalar()
    return int(value or 0)


def end_sessions(conn: sa.Connection, user_id: int) -> int:
    """Raise the user's session version inside the caller's transaction; return the new version.

    Every session cookie and token carries the version it was issued under, so all of them stop
    working at once, in every worker.
    """
    updated = conn.execute(SESSION_TABLE.update().where(SESSION_TABLE.c.user_id == user_id)
                           .values(session_version=SESSION_TABLE.c.session_version + 1)).rowcount
    if not updated:
        conn.execute(SESSION_TABLE.insert().values(user_id=user_id, session_version=1))
    return session_version(conn, user_id)
