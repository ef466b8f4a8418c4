"""Import batches as a user sees them (导入记录), and reverting one: its inserted records deleted, its
updated records set back, in one transaction, only while every record is as the import left it."""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm.exc import StaleDataError

from app.audit.batches import BATCH_ROW_TABLE, BATCH_TABLE
from app.audit.capture import audit_place
from app.audit.log import Entry, append
from app.crypto import Keyring
from app.models.build import BuiltModels
from app.models.problems import RecordProblem
from app.models.rules import confirming
from app.schema import naming
from app.schema.model import Label
from app.security.gate import ADMIN_ROLE, current_user, may, role_keys, row_condition


@dataclass(frozen=True)
class Batch:
    id: int
    at: datetime.datetime
    username: str
    table: str
    file_name: str
    file_hash: str
    mode: str
    inserted: int
    updated: int
    unchanged: int
    status: str
    reverted_at: datetime.datetime | None
    reverted_by: str | None


class RevertRefused(Exception):
    """A batch that may not be reverted: each reason names the record."""

    def __init__(self, reasons: list[Label]):
        super().__init__("; ".join(r.en for r in reasons))
        self.reasons = reasons

    def text(self, lang: str) -> str:
        return "\n".join(r.text(lang) for r in self.reasons)


def visible_batches(models: BuiltModels, session: orm.Session, limit: int = 200) -> list[Batch]:
    """Return the newest batches the current user may see: an admin all, others those of tables they
    import into, their own only."""
    user = current_user()
    query = sa.select(BATCH_TABLE).order_by(BATCH_TABLE.c.id.desc()).limit(limit)
    if ADMIN_ROLE not in role_keys(user):
        tables = [t.key for t in models.schema.tables if may(models, t.key, user, "import")]
        query = query.where(BATCH_TABLE.c.table_key.in_(tables), BATCH_TABLE.c.user_id == getattr(user, "id", None))
    return [Batch(**{k: row._mapping["table_key" if k == "table" else k] for k in Batch.__dataclass_fields__})
            for row in session.execute(query)]


def get_batch(models: BuiltModels, session: orm.Session, batch_id: int) -> Batch | None:
    return next((b for b in visible_batches(models, session, limit=10_000) if b.id == batch_id), None)


# A written row: its sheet row, insert or update, its record's id, its values before (updates, as the
# audit log keeps them).
Written = tuple[int, str, int, "dict[str, Any] | None"]
CHUNK = 500


def who(user: Any) -> tuple[int | None, str]:
    return getattr(user, "id", None), getattr(user, "username", None) or "(command line)"


def open_batch(session: orm.Session, user: Any, table_key: str, file_name: str, file_hash: str, mode: str) -> int:
    """Insert an import's batch row (it opens the transaction the import's savepoints nest in); return its id."""
    user_id, username = who(user)
    result: Any = session.execute(BATCH_TABLE.insert().values(
        at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0), user_id=user_id,
        username=username, table_key=table_key, file_name=file_name[:255], file_hash=file_hash, mode=mode,
        inserted=0, updated=0, unchanged=0, status="done"))
    return int(result.inserted_primary_key[0])


def close_batch(session: orm.Session, models: BuiltModels, batch_id: int, written: dict[str, list[Written]],
                counts: dict[str, int], details: dict[str, Any], user: Any) -> None:
    """Record a batch's counts and rows (per table: its own and its child sheets', each record with its
    version as stored now) and the import's audit entry (`details`: file, hash, mode ...)."""
    rows = []
    for table_key, done in written.items():
        model: Any = models.model(table_key)
        version = getattr(model, naming.VERSION_COLUMN)
        ids = sorted(pk for _, _, pk, _ in done)
        versions: dict[int, int] = {}
        for start in range(0, len(ids), CHUNK):
            versions.update({pk: number for pk, number in session.execute(sa.select(model.id, version).where(
                model.id.in_(ids[start:start + CHUNK])))})
        rows += [{"batch_id": batch_id, "table_key": table_key, "record_id": pk, "action": action,
                  "version": versions[pk], "before": json.dumps(kept, ensure_ascii=False) if kept is not None else None}
                 for _, action, pk, kept in done]
    for start in range(0, len(rows), CHUNK):
        session.execute(BATCH_ROW_TABLE.insert(), rows[start:start + CHUNK])
    session.execute(BATCH_TABLE.update().where(BATCH_TABLE.c.id == batch_id).values(
        inserted=counts["insert"], updated=counts["update"], unchanged=counts["unchanged"]))
    table_key = next(iter(written))
    append(session.connection(), [Entry("import", table_key, batch_id, {"batch": batch_id, **details, **counts},
                                        *who(user), None)])


def earlier_import(session: orm.Session, table_key: str, file_hash: str) -> Any | None:
    """Return the newest batch that imported the same file (by its SHA-256) into the table and stands
    (not reverted), or None."""
    return session.execute(sa.select(BATCH_TABLE).where(
        BATCH_TABLE.c.table_key == table_key, BATCH_TABLE.c.file_hash == file_hash,
        BATCH_TABLE.c.status != "reverted").order_by(BATCH_TABLE.c.id.desc()).limit(1)).first()


def revert_batch(models: BuiltModels, session: orm.Session, ring: Keyring, batch_id: int) -> Batch:
    """Revert a batch as the current user; RevertRefused naming every record changed since (or out of
    reach), and nothing changed. Returns the batch as it is now."""
    batch = get_batch(models, session, batch_id)
    if batch is None:
        raise RevertRefused([Label(f"没有第 {batch_id} 批导入记录（或您无权查看）",
                                   f"there is no import batch {batch_id} (or you may not see it)")])
    if batch.status == "reverted":
        when = f"{batch.reverted_at:%Y-%m-%d %H:%M}"
        raise RevertRefused([Label(f"第 {batch_id} 批导入已于 {when} 撤销",
                                   f"import batch {batch_id} was already reverted on {when}")])
    table = models.schema.table(batch.table)
    rows = session.execute(sa.select(BATCH_ROW_TABLE).where(BATCH_ROW_TABLE.c.batch_id == batch_id)
                           .order_by(BATCH_ROW_TABLE.c.id)).all()
    records = stored_records(models, session, list(rows))
    reasons = changed_since(models, session, table.key, list(rows), records)
    if reasons:
        session.rollback()
        raise RevertRefused(reasons)
    try:
        undo_rows(models, session, ring, table.key, list(rows), records)
    except (IntegrityError, StaleDataError):
        session.rollback()
        raise RevertRefused([Label("撤销时有记录正被他人修改，或恢复的值已被其他记录占用；请稍后重试，或先核对这些记录",
                                   "a record was being changed meanwhile, or a value to restore is now taken by "
                                   "another record; try again later, or check those records first")]) from None
    user = current_user()
    now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
    session.execute(BATCH_TABLE.update().where(BATCH_TABLE.c.id == batch_id).values(
        status="reverted", reverted_at=now, reverted_by=getattr(user, "username", None) or "(command line)"))
    append(session.connection(), [Entry("import", table.key, batch_id, {"revert": batch_id, "file": batch.file_name},
                                        getattr(user, "id", None), getattr(user, "username", None), None)])
    try:
        with confirming(session, (), every=True):  # putting back what was there passes the rules' warnings
            session.commit()
    except RecordProblem as refused:  # a record rule refuses a value put back (logged, not undone)
        session.rollback()
        raise RevertRefused([Label(f"撤销后的记录不符合规则，未撤销：{refused.label.zh}",
                                   f"not reverted: the records as they were break a rule: {refused.label.en}")]
                            ) from None
    reverted = get_batch(models, session, batch_id)
    assert reverted is not None
    return reverted


def undo_rows(models: BuiltModels, session: orm.Session, ring: Keyring, table_key: str, rows: list[Any],
              records: dict[tuple[str, int], Any]) -> None:
    """Delete what the batch inserted and set back what it updated: child-sheet rows (order lines)
    first, then the batch's own records; flushed, not committed."""
    for row in sorted(rows, key=lambda r: r.table_key == table_key):
        obj = records.get((row.table_key, row.record_id))
        if obj is None:
            continue
        if row.action == "insert":
            session.delete(obj)
        else:
            for key, value in json.loads(row.before or "{}").items():
                setattr(obj, key, stored_value(models, session, ring, row.table_key, key, row.record_id, value))
        if row.table_key != table_key:
            session.flush()  # before the parents go: the database would refuse, or cascade, otherwise
    session.flush()


def stored_records(models: BuiltModels, session: orm.Session, rows: list[Any]) -> dict[tuple[str, int], Any]:
    """Return the records a batch wrote that still exist, by (table, id)."""
    found: dict[tuple[str, int], Any] = {}
    for table_key in sorted({r.table_key for r in rows}):
        model: Any = models.model(table_key)
        ids = [r.record_id for r in rows if r.table_key == table_key]
        for start in range(0, len(ids), 500):
            for obj in session.execute(sa.select(model).where(model.id.in_(ids[start:start + 500]))).scalars():
                found[(table_key, obj.id)] = obj
    return found


def changed_since(models: BuiltModels, session: orm.Session, table_key: str, rows: list[Any],
                  records: dict[tuple[str, int], Any]) -> list[Label]:
    """Return why the batch cannot be reverted: records changed since the import (their version moved
    on), updated records since deleted, inserted records others now point at, records out of reach."""
    reasons: list[Label] = []
    version = naming.VERSION_COLUMN
    for row in rows:
        table = models.schema.table(row.table_key)
        obj = records.get((row.table_key, row.record_id))
        name = f"{table.label.zh}“{obj}”（#{row.record_id}）" if obj is not None else f"#{row.record_id}"
        name_en = f"{table.label.en} '{obj}' (#{row.record_id})" if obj is not None else f"#{row.record_id}"
        if obj is None:
            if row.action == "update":
                reasons.append(Label(f"{name}在导入后已被删除，无法恢复原值",
                                     f"{name_en} was deleted after the import"))
            continue
        if getattr(obj, version) != row.version:
            reasons.append(Label(f"{name}在导入后被修改过，请先核对该记录",
                                 f"{name_en} was changed after the import; check that record first"))
    reasons += children_since(models, session, rows, records)
    reasons += restore_conflicts(models, session, rows, records)
    table = models.schema.table(table_key)
    user = current_user()
    # Reverting is the import's own undo: the rows the user may import into, not a right to delete.
    condition = row_condition(models, table_key, user, "import")
    for verb, action in (("delete", "insert"), ("update", "update")):
        ids = [r.record_id for r in rows if r.table_key == table_key and r.action == action
               and (table_key, r.record_id) in records]
        if condition is None or not ids:
            continue
        model: Any = models.model(table_key)
        reached = {pk for start in range(0, len(ids), 500) for (pk,) in session.execute(
            sa.select(model.id).where(model.id.in_(ids[start:start + 500]), condition))}
        for pk in ids:
            if pk not in reached:
                what = "删除" if verb == "delete" else "修改"
                reasons.append(Label(f"您无权{what}{table.label.zh}“{records[(table_key, pk)]}”（#{pk}）",
                                     f"you may not {verb} {table.label.en} '{records[(table_key, pk)]}' (#{pk})"))
    return reasons


def children_since(models: BuiltModels, session: orm.Session, rows: list[Any],
                   records: dict[tuple[str, int], Any]) -> list[Label]:
    """Return, for each record the batch inserted, the children others added to it since (the batch's own
    child-sheet rows do not count)."""
    reasons: list[Label] = []
    own = {(r.table_key, r.record_id) for r in rows}
    for table_key in sorted({r.table_key for r in rows}):
        table = models.schema.table(table_key)
        inserted = [r.record_id for r in rows if r.table_key == table_key and r.action == "insert"
                    and (table_key, r.record_id) in records]
        for child, link in models.schema.children_of(table_key):
            child_table = models.metadata.tables[naming.table_name_for(child.key)]
            column = child_table.c[naming.column_name_for(link)]
            counts: dict[int, int] = {}
            for start in range(0, len(inserted), 500):
                for pk, parent in session.execute(sa.select(child_table.c.id, column).where(
                        column.in_(inserted[start:start + 500]))):
                    if (child.key, pk) not in own:
                        counts[parent] = counts.get(parent, 0) + 1
            for parent, count in sorted(counts.items()):
                record = records[(table_key, parent)]
                reasons.append(Label(f"{table.label.zh}“{record}”（#{parent}）已有 {count} 条{child.label.zh}，"
                                     "撤销会删除或留下它们",
                                     f"{table.label.en} '{record}' (#{parent}) now has {count} {child.label.en} "
                                     "records, which a revert would delete or orphan"))
    return reasons


def restore_conflicts(models: BuiltModels, session: orm.Session, rows: list[Any],
                      records: dict[tuple[str, int], Any]) -> list[Label]:
    """Return why values an updated record had before cannot be set back: the record it linked to was
    deleted since, or another record now holds the unique value it had."""
    reasons: list[Label] = []
    for row in rows:
        obj = records.get((row.table_key, row.record_id))
        if row.action != "update" or obj is None:
            continue
        table = models.schema.table(row.table_key)
        for key, value in json.loads(row.before or "{}").items():
            spec = table.field(key)
            if value is None or isinstance(value, dict):
                continue
            if spec.type == "link" and session.get(models.model(spec.to or ""), value) is None:
                reasons.append(Label(f"{table.label.zh}“{obj}”（#{row.record_id}）原来的{spec.label.zh}（#{value}）"
                                     "已被删除，无法恢复",
                                     f"{table.label.en} '{obj}' (#{row.record_id}) linked to {spec.label.en} "
                                     f"#{value}, which was deleted since"))
            elif spec.unique:
                model: Any = models.model(row.table_key)
                other = session.execute(sa.select(model.id).where(
                    getattr(model, key) == value, model.id != row.record_id).limit(1)).scalar()
                if other is not None:
                    reasons.append(Label(f"{table.label.zh}“{obj}”（#{row.record_id}）原来的{spec.label.zh}“{value}”"
                                         f"现在已被 #{other} 使用，无法恢复",
                                         f"{table.label.en} '{obj}' (#{row.record_id}) had {spec.label.en} "
                                         f"'{value}', which #{other} holds now"))
    return reasons


def stored_value(models: BuiltModels, session: orm.Session, ring: Keyring, table_key: str, key: str,
                 record_id: int, value: Any) -> Any:
    """Return a value kept in a batch (as the audit log keeps it) as the record's attribute takes it."""
    import decimal

    from app.fields.values import parse_date
    spec = models.schema.table(table_key).field(key)
    if isinstance(value, dict) and "sealed" in value:
        value = ring.decrypt(value["sealed"], audit_place(table_key, key, record_id))
        if spec.type in ("money", "decimal"):
            return decimal.Decimal(value)
        return value
    if value is None:
        return None
    if spec.type == "link":
        return session.get(models.model(spec.to or ""), value)
    if spec.type == "user":
        from flask import current_app
        return session.get(current_app.extensions["appbuilder"].sm.user_model, value)
    if spec.type in ("money", "decimal", "percent"):
        return decimal.Decimal(value)
    if spec.type == "date":
        return parse_date(value)
    if spec.type == "datetime":
        return datetime.datetime.fromisoformat(value)
    return value
