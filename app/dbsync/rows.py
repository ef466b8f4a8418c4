"""Checks of existing rows against a planned change: which rows (by id) would not fit.

Values are checked in Python with the same rules the forms and API use, on every database,
instead of trusting a database's own conversion (SQLite turns 'abc' into 0 without a word).
"""
from __future__ import annotations

import contextlib
import datetime
import decimal
import json
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

import sqlalchemy as sa

from app.fields.values import validate_value
from app.schema.model import FieldSpec, TableSpec

from .state import spec_from_state, storage_of

SHOWN_IDS = 10
BATCH = 2000
# The keys of encrypted fields while a schema sync runs (app.dbsync.sync sets them).
KEYRING: ContextVar[Any] = ContextVar("crm_schema_sync_keyring", default=None)


@contextlib.contextmanager
def using_keyring(ring: Any) -> Iterator[None]:
    """Make `ring` the keys that plans and steps open and seal encrypted values with."""
    token = KEYRING.set(ring)
    try:
        yield
    finally:
        KEYRING.reset(token)


def keyring() -> Any:
    """Return the keys of the running sync; ValueError when the sync was started without them."""
    ring = KEYRING.get()
    if ring is None:
        raise ValueError("this change reads or writes encrypted fields and needs the encryption keys: "
                         "set CRM_ENCRYPTION_KEYS or keep the instance key file")
    return ring


@dataclass
class RowCheck:
    """Where a field's current values are: connection, live table and the field's recorded state."""

    conn: sa.Connection
    table: TableSpec
    state: dict[str, Any]
    source_table: str

    def values(self) -> Iterator[tuple[int, Any]]:
        """Yield (id, stored value) for every row, in id order, a batch at a time."""
        table = sa.table(self.source_table, sa.column("id"), sa.column(self.state["column"]))
        column = table.c[self.state["column"]]
        last = None
        while True:
            query = sa.select(table.c.id, column).order_by(table.c.id).limit(BATCH)
            if last is not None:
                query = query.where(table.c.id > last)
            rows = self.conn.execute(query).all()
            if not rows:
                return
            yield from ((r[0], self.opened(r[0], r[1])) for r in rows)
            last = rows[-1][0]

    def opened(self, row_id: int, stored: Any) -> Any:
        """Return a stored value as plaintext (the value itself unless the field is encrypted)."""
        if not self.state.get("encrypted") or stored is None:
            return stored
        from app.models.encryption import open_value
        return open_value(keyring(), self.table.key, spec_from_state(self.state), row_id, stored)


@dataclass
class Found:
    """The ids of the rows that fail a check, out of `total` rows."""

    ids: list[int] = field(default_factory=list)
    total: int = 0

    def id_list(self) -> str:
        """Return 'ids 17, 230, 1804' (the first ten, then how many more)."""
        shown = ", ".join(str(i) for i in self.ids[:SHOWN_IDS])
        more = len(self.ids) - SHOWN_IDS
        return f"ids {shown}" + (f" and {more:,} more" if more > 0 else "")

    def describe(self, failing: str) -> str:
        """Return e.g. '3 of 2,000 rows would not convert (ids 17, 230, 1804)'."""
        return f"{len(self.ids):,} of {self.total:,} rows {failing} ({self.id_list()})"


def as_raw(value: Any, old_type: str = "") -> Any:
    """Return a stored value as the text a person would type for it, for re-validation.

    Only a multi-choice value is JSON (a list of keys); other text is taken as it is.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value.normalize(), "f") if value == value.to_integral() else format(value, "f")
    if old_type == "multi_choice" and isinstance(value, str):
        return ", ".join(str(i) for i in as_list(value))
    return value if isinstance(value, str) else str(value)


def convert(value: Any, spec: FieldSpec, old_type: str) -> tuple[Any, bool]:
    """Return (value as the field's new type, True) or (None, False) when it does not fit."""
    if value is None:
        return None, True
    if value == "":  # empty text stays empty text where the new type is text too
        return ("" if spec.type != "multi_choice" and storage_of({"type": spec.type}) in ("varchar", "text")
                else None), True
    parsed, problems = validate_value(as_raw(value, old_type), replace(spec, required=False))
    return (parsed, not problems)


def check_convertible(check: RowCheck, spec: FieldSpec) -> Found:
    """Return the rows whose value does not pass the rules of `spec` (the field's new definition)."""
    found = Found()
    for row_id, value in check.values():
        found.total += 1
        if not convert(value, spec, check.state["type"])[1]:
            found.ids.append(row_id)
    return found


def check_empty(check: RowCheck) -> Found:
    """Return the rows where the field is empty."""
    found = Found()
    for row_id, value in check.values():
        found.total += 1
        if value is None or (isinstance(value, str) and not value.strip()) or value == "[]":
            found.ids.append(row_id)
    return found


def check_duplicates(check: RowCheck) -> Found:
    """Return the rows whose value (empty text included) another row also has (every such row)."""
    found = Found()
    seen: dict[Any, list[int]] = {}
    # MariaDB's default collation compares text ignoring case and trailing spaces, so its unique
    # index does too.
    folded = check.conn.dialect.name in ("mysql", "mariadb")
    for row_id, value in check.values():
        found.total += 1
        if value is not None:
            key = value.casefold().rstrip() if folded and isinstance(value, str) else value
            seen.setdefault(key, []).append(row_id)
    found.ids = sorted(i for ids in seen.values() if len(ids) > 1 for i in ids)
    return found


def check_longer(check: RowCheck, limit: int) -> Found:
    """Return the rows whose text is longer than `limit` characters."""
    found = Found()
    for row_id, value in check.values():
        found.total += 1
        if isinstance(value, str) and len(value) > limit:
            found.ids.append(row_id)
    return found


def check_options(check: RowCheck, option: str) -> Found:
    """Return the rows that hold option `option` (alone, or in a multi-choice list)."""
    found = Found()
    for row_id, value in check.values():
        found.total += 1
        if value == option or (isinstance(value, str) and value.startswith("[") and option in as_list(value)):
            found.ids.append(row_id)
    return found


def as_list(value: str) -> list[Any]:
    """Return a multi-choice value stored as JSON text as a list (empty when it is not JSON)."""
    try:
        items = json.loads(value)
    except ValueError:
        return []
    return items if isinstance(items, list) else []


def check_orphans(check: RowCheck, target_table: str) -> Found:
    """Return the rows whose link points at an id the target table no longer has."""
    target = sa.table(target_table, sa.column("id"))
    ids = set(check.conn.execute(sa.select(target.c.id)).scalars())
    found = Found()
    for row_id, value in check.values():
        found.total += 1
        if value is not None and value not in ids:
            found.ids.append(row_id)
    return found
