"""Ids are never used twice: a deleted record's id is not given to a new one, so that its history
and audit entries (kept by table and id) never show up on another record.

PostgreSQL's sequences and MariaDB's AUTO_INCREMENT never go back by themselves; SQLite does unless
a table is declared AUTOINCREMENT, and tables made before that are rebuilt with it. Where a table
starts again (created anew, or rebuilt), its counter starts after the highest id the audit log
knows for it.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.operations import Operations

from app.audit.log import AUDIT_TABLE

AUTOINCREMENT = {"sqlite_autoincrement": True}  # the table option, for tables rebuilt by Alembic


def reuses_ids(conn: sa.Connection, table: str) -> bool:
    """Return True for a SQLite table that may give a deleted row's id to a new one."""
    if conn.dialect.name != "sqlite":
        return False
    sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = :name"),
                       {"name": table}).scalar()
    return sql is not None and "AUTOINCREMENT" not in sql.upper()


def never_reuse_ids(conn: sa.Connection, op: Operations, table: str, table_key: str) -> None:
    """Rebuild a SQLite table as AUTOINCREMENT (rows, indexes and keys kept) and start its counter
    after every id it or the audit log has used."""
    if not reuses_ids(conn, table):
        return
    with rebuilt_keeping_ids(conn, op, table):
        pass
    start_ids_after(conn, table, table_key)


@contextmanager
def rebuilt_keeping_ids(conn: sa.Connection, op: Operations, table: str, **kwargs: Any) -> Iterator[Any]:
    """Yield Alembic's batch context that rebuilds a SQLite table as AUTOINCREMENT; afterwards its id
    counter is where it was (a rebuild drops the old table's counter with it), or further on."""
    counted = sqlite_counter(conn, table)
    with op.batch_alter_table(table, recreate="always", table_kwargs=AUTOINCREMENT, **kwargs) as batch:
        yield batch
    start_ids_after(conn, table, table_key=table, at_least=counted)


def sqlite_counter(conn: sa.Connection, table: str) -> int:
    """Return the highest id a SQLite AUTOINCREMENT table has given (0 when none is recorded)."""
    if not sa.inspect(conn).has_table("sqlite_sequence"):
        return 0
    return conn.execute(sa.text("SELECT MAX(seq) FROM sqlite_sequence WHERE name = :name"),
                        {"name": table}).scalar() or 0


def start_ids_after(conn: sa.Connection, table: str, table_key: str, at_least: int = 0) -> None:
    """Make the next id of `table` higher than `at_least` and than any id the audit log records for
    `table_key`."""
    audited = 0
    if sa.inspect(conn).has_table(AUDIT_TABLE.name):
        audited = conn.execute(sa.select(sa.func.max(AUDIT_TABLE.c.record_id))
                               .where(AUDIT_TABLE.c.table_key == table_key)).scalar() or 0
    audited = max(audited, at_least)
    if not audited:
        return
    quoted = conn.dialect.identifier_preparer.quote(table)
    if audited <= (conn.execute(sa.text(f"SELECT MAX(id) FROM {quoted}")).scalar() or 0):
        return  # every database counts on after its rows by itself
    highest = audited
    kind = conn.dialect.name
    if kind == "sqlite":
        conn.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :name"), {"name": table})
        conn.execute(sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:name, :seq)"),
                     {"name": table, "seq": highest})
    elif kind == "postgresql":
        conn.execute(sa.text("SELECT setval(pg_get_serial_sequence(:name, 'id'), :seq)"),
                     {"name": quoted, "seq": highest})
    else:
        conn.execute(sa.text(f"ALTER TABLE {quoted} AUTO_INCREMENT = {int(highest) + 1}"))
