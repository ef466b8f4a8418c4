"""The audit log: an append-only, hash-chained table of who did what, when and from where.

Each entry's hash covers its content and the previous entry's hash, so changing, removing or
inserting an entry breaks the chain from there on (`crm audit verify`). Appends are serialised
through the one-row head table, which also holds the last hash: removing the newest entries shows
as a log that ends before its head. Needs neither Flask nor the models.
"""
from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

AUDIT_METADATA = sa.MetaData()
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
GENESIS = "0" * 64
ACTIONS = ("create", "update", "delete", "reveal", "rule", "share", "import", "export", "report", "schema",
           "login", "login_failed", "login_refused", "lockout", "unlock", "logout")

AUDIT_TABLE = sa.Table(
    "crm_audit", AUDIT_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_id", sa.Integer, index=True),
    sa.Column("username", sa.String(255)),
    sa.Column("ip", sa.String(64)),
    sa.Column("action", sa.String(16), nullable=False),
    sa.Column("table_key", sa.String(63)),
    sa.Column("record_id", sa.Integer),
    sa.Column("changes", LONG_TEXT),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Index("ix_crm_audit_record", "table_key", "record_id"),
)
HEAD_TABLE = sa.Table(
    "crm_audit_head", AUDIT_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_id", sa.Integer, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
)


@dataclass(frozen=True)
class Entry:
    """One thing that happened, before it is chained: `changes` is plain JSON-able data."""

    action: str
    table_key: str | None = None
    record_id: int | None = None
    changes: Any = None
    user_id: int | None = None
    username: str | None = None
    ip: str | None = None


def ensure_audit_tables(conn: sa.Connection) -> None:
    """Create the log and its head row if missing (called under the schema lock at start-up)."""
    AUDIT_METADATA.create_all(conn, checkfirst=True)
    if conn.execute(sa.select(HEAD_TABLE.c.id).where(HEAD_TABLE.c.id == 1)).first() is None:
        conn.execute(HEAD_TABLE.insert().values(id=1, last_id=0, last_hash=GENESIS))


def digest(prev_hash: str, at: datetime.datetime, user_id: Any, username: Any, ip: Any, action: str,
           table_key: Any, record_id: Any, changes: str | None) -> str:
    """Return the hash of an entry: SHA-256 over the previous hash and every column, as JSON."""
    body = json.dumps([prev_hash, at.strftime("%Y-%m-%d %H:%M:%S"), user_id, username, ip, action, table_key,
                       record_id, changes], ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


def append(conn: sa.Connection, entries: list[Entry], now: datetime.datetime | None = None) -> None:
    """Chain `entries` onto the log inside the caller's transaction (they commit or roll back with it)."""
    if not entries:
        return
    at = (now or datetime.datetime.now(datetime.UTC).replace(tzinfo=None)).replace(microsecond=0)
    # Writing the head first takes its lock (a row lock, or SQLite's write lock) before it is read,
    # so that two writers never chain onto the same entry.
    conn.execute(HEAD_TABLE.update().where(HEAD_TABLE.c.id == 1).values(last_id=HEAD_TABLE.c.last_id))
    head = conn.execute(sa.select(HEAD_TABLE.c.last_hash).where(HEAD_TABLE.c.id == 1).with_for_update()).first()
    if head is None:
        raise RuntimeError("the audit log has no head row; start the panel once to create it")
    prev = head[0]
    rows = []
    for entry in entries:
        changes = None if entry.changes is None else json.dumps(entry.changes, ensure_ascii=False, sort_keys=True)
        values = {"at": at, "user_id": entry.user_id, "username": entry.username, "ip": entry.ip,
                  "action": entry.action, "table_key": entry.table_key, "record_id": entry.record_id,
                  "changes": changes, "prev_hash": prev}
        values["hash"] = digest(prev, at, entry.user_id, entry.username, entry.ip, entry.action, entry.table_key,
                                entry.record_id, changes)
        rows.append(values)
        prev = values["hash"]
    # One statement for many entries (an import writes thousands); ids follow the rows' order, as the
    # chain does, since the head's lock lets no other writer in between.
    for start in range(0, len(rows), 1000):
        conn.execute(AUDIT_TABLE.insert(), rows[start:start + 1000])
    last_id = conn.execute(sa.select(sa.func.max(AUDIT_TABLE.c.id))).scalar()
    conn.execute(HEAD_TABLE.update().where(HEAD_TABLE.c.id == 1).values(last_id=last_id, last_hash=prev))


def verify(conn: sa.Connection) -> tuple[int, list[str]]:
    """Return (entries checked, problems): every entry whose content or place in the chain is wrong."""
    problems: list[str] = []
    prev, prev_id, count = GENESIS, None, 0
    for row in entries_in_order(conn):
        count += 1
        if row.prev_hash != prev:
            where = f"entry {prev_id}" if prev_id is not None else "the start of the log"
            problems.append(f"entry {row.id} does not follow {where}: an entry between them was removed or "
                            "added, or one was changed")
        if digest(row.prev_hash, row.at, row.user_id, row.username, row.ip, row.action, row.table_key,
                  row.record_id, row.changes) != row.hash:
            problems.append(f"entry {row.id} was changed after it was written (its content does not match its hash)")
        prev, prev_id = row.hash, row.id
    head = conn.execute(sa.select(HEAD_TABLE.c.last_id, HEAD_TABLE.c.last_hash).where(HEAD_TABLE.c.id == 1)).first()
    if head is not None and (head.last_hash != prev or (prev_id or 0) != head.last_id):
        problems.append(f"the log ends at entry {prev_id or 0} but its head records entry {head.last_id}: "
                        "the newest entries were removed, or the head was changed")
    return count, problems


def entries_in_order(conn: sa.Connection, batch: int = 1000) -> Iterator[Any]:
    """Yield every entry in id order, a batch at a time."""
    last = 0
    while True:
        rows = conn.execute(sa.select(AUDIT_TABLE).where(AUDIT_TABLE.c.id > last)
                            .order_by(AUDIT_TABLE.c.id).limit(batch)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
