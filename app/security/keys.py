"""Key maintenance over the stored values: prove every value decrypts, and move every value to the
first key (rotation), in batches that each commit, so that an interrupted rotation resumes."""
from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.audit.capture import audit_place
from app.audit.log import AUDIT_TABLE
from app.crypto import DecryptFailed, Keyring, file_key_id, key_id_of
from app.models.build import BuiltModels
from app.models.encryption import INDEX_PREFIX, as_text, ciphertext_of, is_sealed, open_value, place_of, seal
from app.schema import naming
from app.schema.model import FieldSpec, TableSpec

BATCH = 500


@dataclass
class KeyReport:
    """What a check or rotation found: values per key id, and the values that do not decrypt."""

    per_key: Counter[str] = field(default_factory=Counter)
    audit_keys: Counter[str] = field(default_factory=Counter)  # sealed values in the audit log, per key
    failures: list[str] = field(default_factory=list)
    rewritten: int = 0


def encrypted_fields(models: BuiltModels) -> Iterator[tuple[TableSpec, FieldSpec, sa.Column[Any]]]:
    """Yield (table, field, column) for every encrypted field of the schema."""
    for table in models.schema.tables:
        for spec in table.fields:
            if spec.seals_value:
                columns = models.metadata.tables[naming.table_name_for(table.key)].c
                yield table, spec, columns[naming.column_name_for(spec)]


def stored_values(conn: sa.Connection, column: sa.Column[Any]) -> Iterator[list[tuple[int, str]]]:
    """Yield batches of (id, stored value) of the non-empty values of `column`, in id order."""
    table = column.table
    last = 0
    while True:
        rows = conn.execute(sa.select(table.c.id, column).where(column.is_not(None), table.c.id > last)
                            .order_by(table.c.id).limit(BATCH)).all()
        if not rows:
            return
        yield [(r[0], r[1]) for r in rows]
        last = rows[-1][0]


def check_values(engine: sa.Engine, models: BuiltModels, ring: Keyring) -> KeyReport:
    """Return how many values each key holds and every value that does not decrypt."""
    report = KeyReport()
    with engine.connect() as conn:
        for table, spec, column in encrypted_fields(models):
            for batch in stored_values(conn, column):
                for row_id, stored in batch:
                    try:
                        value = open_value(ring, table.key, spec, row_id, stored)
                        report.per_key[key_id_of(ciphertext_of(stored))] += 1
                    except DecryptFailed as exc:
                        report.failures.append(str(exc))
                        continue
                    if opens_again(ring, table.key, spec, row_id, as_text(value, spec)):
                        report.failures.append(f"{place_of(table.key, spec.key, row_id)}: its value opens to another "
                                               "ciphertext (encrypted twice); restore it from a backup")
                        continue
                    if not index_matches(ring, table.key, spec, row_id, stored, value):
                        report.failures.append(f"{place_of(table.key, spec.key, row_id)}: its search index does "
                                               "not match its value (altered); 'crm keys rotate' rebuilds it")
    check_audit_values(engine, ring, report)
    return report


def opens_again(ring: Keyring, table_key: str, spec: FieldSpec, row_id: Any, text: str) -> bool:
    """Return True when a decrypted value is itself a ciphertext of its place (encrypted twice); a
    value that merely starts like one ("enc1:见纸质配方单") is a value like any other."""
    if not is_sealed(text):
        return False
    try:
        open_value(ring, table_key, spec, row_id, text)
        return True
    except DecryptFailed:
        return False


def index_matches(ring: Keyring, table_key: str, spec: FieldSpec, row_id: Any, stored: str, value: Any) -> bool:
    """Return True unless a searchable value's blind index differs from the one its value gives."""
    if not spec.searchable:
        return True
    key = ring.key(key_id_of(ciphertext_of(stored)))
    return seal_index(ring, table_key, spec, value, key) == stored.split(":", 2)[1]


def seal_index(ring: Keyring, table_key: str, spec: FieldSpec, value: Any, key: Any) -> str:
    return ring.blind_index(as_text(value, spec), f"{table_key}.{spec.key}", key)


def check_audit_values(engine: sa.Engine, ring: Keyring, report: KeyReport) -> None:
    """Count the sealed values in the audit log per key (the log is never rewritten, so their keys
    must stay), and add those that do not decrypt to `report`."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(AUDIT_TABLE.name):
            return
        query = sa.select(AUDIT_TABLE.c.id, AUDIT_TABLE.c.table_key, AUDIT_TABLE.c.record_id, AUDIT_TABLE.c.changes)
        for row in conn.execute(query.where(AUDIT_TABLE.c.changes.like('%"sealed"%'))):
            for field_key, value in json.loads(row.changes).items():
                for item in value if isinstance(value, list) else [value]:
                    if not (isinstance(item, dict) and "sealed" in item):
                        continue
                    try:
                        ring.decrypt(item["sealed"], audit_place(row.table_key, field_key, row.record_id))
                        report.audit_keys[key_id_of(item["sealed"])] += 1
                    except DecryptFailed as exc:
                        report.failures.append(f"audit log entry {row.id}: {exc}")


def rotate_values(engine: sa.Engine, models: BuiltModels, ring: Keyring,
                  progress: Callable[[str], None] = lambda line: None) -> KeyReport:
    """Re-encrypt every value not under the first key (and its blind index); return what was done.

    Each batch commits on its own: running it again after an interruption finishes the rest.
    Values that do not decrypt are left as they are and reported.
    """
    report = KeyReport()
    for table, spec, column in encrypted_fields(models):
        done = 0
        with engine.connect() as conn:
            total = conn.execute(sa.select(sa.func.count()).where(column.is_not(None))).scalar() or 0
        with engine.connect() as reader:
            for batch in stored_values(reader, column):
                updates = []
                for row_id, stored in batch:
                    if not needs_rotation(stored, spec, ring) and not spec.searchable:
                        continue
                    try:
                        value = open_value(ring, table.key, spec, row_id, stored)
                    except DecryptFailed as exc:
                        report.failures.append(str(exc))
                        continue
                    if not needs_rotation(stored, spec, ring) and index_matches(ring, table.key, spec, row_id,
                                                                                stored, value):
                        continue
                    updates.append({"row_id": row_id, "old": stored,
                                    "value": seal(ring, table.key, spec, row_id, value)})
                if updates:
                    # Only where the value is still the one read: a save in between is never undone
                    # (it was sealed by the panel; a second run moves it if it used an old key).
                    with engine.begin() as writer:
                        writer.execute(column.table.update().where(column.table.c.id == sa.bindparam("row_id"),
                                                                   column == sa.bindparam("old"))
                                       .values({column.name: sa.bindparam("value")}), updates)
                done += len(batch)
                report.rewritten += len(updates)
                progress(f"{table.key}.{spec.key}: {done:,} of {total:,} values checked, "
                         f"{report.rewritten:,} re-encrypted so far")
    return report


def needs_rotation(stored: Any, spec: FieldSpec, ring: Keyring) -> bool:
    """Return True when a stored value is not under the first key, or lacks/has a wrong kind of index."""
    if not is_sealed(stored):
        return True
    return (key_id_of(ciphertext_of(stored)) != ring.primary.id
            or str(stored).startswith(INDEX_PREFIX + ":") != spec.searchable)


def encrypted_files(engine: sa.Engine, models: BuiltModels, upload_dir: Path) -> Iterator[tuple[str, Path]]:
    """Yield (place, path) of every stored file of an encrypted attachment field."""
    with engine.connect() as conn:
        for table in models.schema.tables:
            for spec in (f for f in table.fields if f.encrypted and f.type == "attachment"):
                column = models.metadata.tables[naming.table_name_for(table.key)].c[naming.column_name_for(spec)]
                for batch in stored_values(conn, column):
                    for row_id, stored in batch:
                        yield f"{table.key}.{spec.key}#{row_id} ({stored})", upload_dir / str(stored)


def check_files(engine: sa.Engine, models: BuiltModels, ring: Keyring, upload_dir: Path, report: KeyReport) -> None:
    """Add to `report` the encrypted files per key and every file that is missing or does not decrypt."""
    for where, path in encrypted_files(engine, models, upload_dir):
        try:
            ring.open_bytes(path.read_bytes(), file_place(path.name))
            report.per_key[file_key_id(path.read_bytes()) or ""] += 1
        except FileNotFoundError:
            report.failures.append(f"{where}: the file is missing")
        except DecryptFailed as exc:
            report.failures.append(f"{where}: {exc}")


def rotate_files(engine: sa.Engine, models: BuiltModels, ring: Keyring, upload_dir: Path, report: KeyReport,
                 progress: Callable[[str], None] = lambda line: None) -> None:
    """Encrypt every file of an encrypted attachment field under the first key: files under an older
    key, and files stored before the field was encrypted. Each file is replaced whole (write, rename)."""
    for where, path in encrypted_files(engine, models, upload_dir):
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            report.failures.append(f"{where}: the file is missing")
            continue
        key = file_key_id(data)
        if key == ring.primary.id:
            continue
        try:
            plain = data if key is None else ring.open_bytes(data, file_place(path.name))
        except DecryptFailed as exc:
            report.failures.append(f"{where}: {exc}")
            continue
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(ring.seal_bytes(plain, file_place(path.name)))
        partial.replace(path)
        report.rewritten += 1
        progress(f"{where}: file encrypted under key {ring.primary.id}")


def file_place(stored: str) -> str:
    """Return the authenticated place of an encrypted file (the same as the screens use)."""
    return f"file:{stored}"
