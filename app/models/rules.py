"""Record rules (a table's `rules:`), enforced on every ORM write: screens, API and imports alike.

Before a commit (after its last flush, computed fields recomputed), each rule's condition is evaluated
in SQL (over the record, the records it links to, and computed values) for the records
the flush created or changed, and for those whose computed values it changed (an order whose total
grew as a line was added). A rule fires for a record when its condition holds and either the record
is new or a value the condition reads changed in this write: editing the notes of an order that was
approved over its customer's credit limit asks nothing again; adding a line to it does.

A refusal raises RuleRefused, which rolls the write back, unless the writer's role is named in
`unless_roles` (admins count as every role): then the write passes. A warning raises
RuleNeedsConfirming unless the writer confirmed the rule by name (`confirming`). Each rule passed
either way is noted in the session for the audit log (app.audit.capture). Writes that no person
makes (the command line, the demo builder) are not checked.
"""
from __future__ import annotations

import datetime
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm

from app.fields.values import VALUE_TYPES
from app.schema import expressions as ex
from app.schema import naming
from app.schema.model import Label, RuleSpec, SchemaSpec, TableSpec
from app.schema.reminders import PLACEHOLDER

from .build import BuiltModels
from .computed import chunks, condition_sql, sql_of, table_of
from .duplicates import DUPLICATE_CHECK, duplicate_message, duplicate_rule, likely_duplicates
from .problems import RecordProblem

ADMIN_ROLE = "admin"
CONFIRMED = "crm_rules_confirm"  # session.info: the rule names the writer confirmed
CONFIRMATIONS = "crm_rules_confirmed"  # session.info: (table, id, rule, message) passed, to log
DUPLICATES_CHECKED = "crm_rules_duplicates_checked"  # session.info: the writer checks likely duplicates
LOGGED = "crm_rules_logged"  # session.info: (table, id, rule) logged in this transaction
PENDING = "crm_rules_pending"  # session.info: what the flushes since the last check wrote, and before
Writer = Callable[[], "frozenset[str] | None"]  # () -> the writer's role names; None for no person


class RuleRefused(RecordProblem):
    """A write a rule refuses, with the rules' messages."""


class RuleNeedsConfirming(RecordProblem):
    """A write the user must confirm: `warnings` are (rule name such as order.large_order, the rule's
    label, the message about the record) of each rule to confirm."""

    def __init__(self, label: Label, warnings: tuple[tuple[str, Label, Label], ...],
                 records: tuple[tuple[str, int, str], ...] = ()):
        super().__init__(label)
        self.warnings = warnings
        self.records = records  # (table, id, title): the likely duplicates a 查重 warning names

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(name for name, _, _ in self.warnings))


@dataclass(frozen=True)
class RulesContext:
    models: BuiltModels
    writer: Writer
    links: tuple[Any, ...] = ()  # the table's links to checked tables: their rules may read this one's records


_CONTEXTS: weakref.WeakKeyDictionary[type, RulesContext] = weakref.WeakKeyDictionary()


def install_rules(models: BuiltModels, writer: Writer) -> None:
    """Check the rules of `models`' tables on every flush; `writer` says whose write it is."""
    for table in models.schema.tables:
        links = tuple(f for f in table.fields if f.type == "link" and checked(models.schema.table(f.to or "")))
        _CONTEXTS[models.model(table.key)] = RulesContext(models, writer, links)


@contextmanager
def confirming(session: orm.Session, rules: Iterable[str], every: bool = False,
               duplicates_checked: bool = False) -> Iterator[None]:
    """Within the block, the writes of `session` pass the warnings of `rules` (names such as
    order.large_order), or of every rule with `every` (an import whose user ticked 确认规则提示);
    each pass is noted for the audit log. `duplicates_checked`: the writer looks for likely
    duplicates itself (an import, against the stored records and its other rows), so 查重 is skipped."""
    session.info[CONFIRMED] = (frozenset(rules), every)
    if duplicates_checked:
        session.info[DUPLICATES_CHECKED] = True
    try:
        yield
    finally:
        session.info.pop(CONFIRMED, None)
        session.info.pop(DUPLICATES_CHECKED, None)


def pop_confirmations(session: orm.Session) -> list[tuple[str, int, str, str]]:
    """Return and forget the (table, record id, rule name, message) passed by the writes checked, each
    (record, rule) once per transaction."""
    found: list[tuple[str, int, str, str]] = session.info.pop(CONFIRMATIONS, [])
    logged = session.info.setdefault(LOGGED, set())
    fresh = [entry for entry in found if entry[:3] not in logged]
    logged.update(entry[:3] for entry in fresh)
    return fresh


# -- what a rule reads ---------------------------------------------------------------------------

def checked(table: TableSpec) -> bool:
    """Return True when writes of `table` are checked: it has rules, or a duplicate check (查重)."""
    return bool(table.rules or table.duplicates)


def read_paths(rule: RuleSpec) -> list[str]:
    """Return the fields and paths a rule's condition reads, in order."""
    return list(dict.fromkeys(n.key for n in ex.walk(rule.condition) if isinstance(n, ex.Field)))


def shown_sql(schema: SchemaSpec, models: BuiltModels, table: TableSpec, path: str, this: Any) -> Any:
    """Return the SQL of a placeholder's value: a link by its record's title, a user by username."""
    tables = table_of(models)
    *links, last = path.split(".")
    spec = table
    for step in links:
        spec = schema.table(spec.field(step).to or "")
    field = spec.field(last)
    for _ in range(len(schema.tables)):  # a record by its title, which may be a link (a line by its product)
        if field.type != "link":
            break
        target = schema.table(field.to or "")
        path, field = f"{path}.{target.title}", target.field(target.title)
    value = sql_of(schema, tables, table.key, ex.Field(path), this)
    if field.type == "user" and "ab_user" in models.metadata.tables:
        users = models.metadata.tables["ab_user"].alias()
        return sa.select(users.c.username).where(users.c.id == value).scalar_subquery()
    return value


def rule_values(session: orm.Session, models: BuiltModels, table: TableSpec, ids: set[int]
                ) -> dict[int, dict[str, Any]]:
    """Return per record id what its table's rules read ("rule:path" -> value), whether each holds
    ("rule" -> 1 or 0) and the values of its message's placeholders ("{path}")."""
    this = models.metadata.tables[naming.table_name_for(table.key)]
    tables = table_of(models)
    wanted: dict[str, Any] = {}
    for rule in table.rules:
        wanted.update({f"{rule.key}:{p}": sql_of(models.schema, tables, table.key, ex.Field(p), this)
                       for p in read_paths(rule)})
        wanted[rule.key] = sa.case((condition_sql(models.schema, tables, table.key, rule.condition, this), 1),
                                   else_=0)
        for path in PLACEHOLDER.findall(rule.message.zh + rule.message.en):
            wanted["{" + path + "}"] = shown_sql(models.schema, models, table, path, this)
    for key in table.duplicates:
        wanted[f"{DUPLICATE_CHECK}:{key}"] = this.c[naming.column_name_for(table.field(key))]
    keys = list(wanted)
    # short labels: PostgreSQL cuts names at 63 characters and paths can be longer
    query = sa.select(this.c.id, *(wanted[k].label(f"v{n}") for n, k in enumerate(keys)))
    found: dict[int, dict[str, Any]] = {}
    for chunk in chunks(sorted(ids)):
        for row in session.execute(query.where(this.c.id.in_(chunk))):
            found[row[0]] = dict(zip(keys, row[1:], strict=True))
    return found


# -- before and after a flush --------------------------------------------------------------------

def touched(session: orm.Session, objects: Iterable[Any]) -> dict[str, set[int]]:
    """Return, per table with rules, the stored records a flush of `objects` may change the rules'
    view of: the objects themselves and the records they link to, before and after the change."""
    found: dict[str, set[int]] = {}
    for obj in objects:
        ctx = _CONTEXTS.get(type(obj))
        if ctx is None:
            continue
        table = type(obj).__table_spec__
        if checked(table) and getattr(obj, "id", None) is not None:
            found.setdefault(table.key, set()).add(obj.id)
        for spec in ctx.links:
            ids = found.setdefault(spec.to or "", set())
            state = sa.inspect(obj)
            for attr in (spec.key, naming.column_name_for(spec)):
                history = state.attrs[attr].history
                for value in (*history.added, *history.unchanged, *history.deleted):
                    pk = getattr(value, "id", value)
                    if isinstance(pk, int):
                        ids.add(pk)
    return {key: ids for key, ids in found.items() if ids}


@event.listens_for(orm.Session, "before_flush")
def remember_before(session: orm.Session, flush_context: Any, instances: Any) -> None:
    """Read what the rules see of the stored records this flush may change, the first time a flush
    of the transaction touches them."""
    new, deleted = session.new, session.deleted  # each a new set on every access: read once
    written = [obj for obj in (*new, *session.dirty, *deleted) if type(obj) in _CONTEXTS]
    if not written:
        return
    ctx = _CONTEXTS[type(written[0])]
    if ctx.writer() is None:
        return
    pending = session.info.setdefault(PENDING, {"models": ctx.models, "before": {}, "candidates": {}, "written": [],
                                                "new": [], "inserted": {}})
    pending["written"] += [obj for obj in written if obj not in deleted]
    pending["new"] += [obj for obj in written if obj in new]
    with session.no_autoflush:
        for table_key, ids in touched(session, written).items():
            known = pending["before"].setdefault(table_key, {})
            missing = ids - set(known)
            if missing:
                values = rule_values(session, ctx.models, ctx.models.schema.table(table_key), missing)
                known.update({pk: values.get(pk) for pk in missing})


@event.listens_for(orm.Session, "after_flush")
def note_written(session: orm.Session, flush_context: Any) -> None:
    """Note the records written or recomputed, to be checked before the commit (`check_rules`)."""
    pending = session.info.get(PENDING)
    if pending is None:
        return
    models: BuiltModels = pending["models"]
    candidates: dict[str, set[int]] = pending["candidates"]
    for key, ids in pending["before"].items():
        candidates.setdefault(key, set()).update(ids)
    for obj in pending.pop("written"):
        if checked(obj.__table_spec__) and getattr(obj, "id", None) is not None:
            candidates.setdefault(obj.__table_spec__.key, set()).add(obj.id)
    pending["written"] = []
    for obj in pending.pop("new"):  # inserted in this transaction: checked as new, whatever flushed it first
        if getattr(obj, "id", None) is not None:
            pending["inserted"].setdefault(obj.__table_spec__.key, set()).add(obj.id)
    pending["new"] = []
    _plan, recomputed = session.info.get("crm_compute_done", (None, {}))
    for key, ids in recomputed.items():
        if checked(models.schema.table(key)):
            candidates.setdefault(key, set()).update(ids)


@event.listens_for(orm.Session, "before_commit")
def check_before_commit(session: orm.Session) -> None:
    check_rules(session)


def check_rules(session: orm.Session) -> None:
    """Flush, then evaluate the rules on every record the transaction's flushes wrote or recomputed
    since the last check; raise RuleRefused or RuleNeedsConfirming when one fires unconfirmed. Runs
    before each commit; an import calls it after each flush to name the row."""
    session.flush()
    pending = session.info.get(PENDING)
    if pending is None:
        return
    models: BuiltModels = pending["models"]
    roles = _CONTEXTS[models.model(models.schema.tables[0].key)].writer()
    if roles is not None:
        seek = not session.info.get(DUPLICATES_CHECKED)
        fired = [hit for key, ids in pending["candidates"].items() if ids
                 for hit in firing(session, models, models.schema.table(key), ids, pending["before"].get(key, {}),
                                   pending["inserted"].get(key, set()), seek)]
        settle(session, fired, roles)
    session.info.pop(PENDING, None)  # only once passed: a refused commit tried again is refused again


@dataclass(frozen=True)
class Hit:
    rule: RuleSpec
    record_id: int
    message: Label
    records: tuple[tuple[str, int, str], ...] = ()  # (table, id, title) of the records it is about


def firing(session: orm.Session, models: BuiltModels, table: TableSpec, ids: set[int],
           before: dict[int, dict[str, Any] | None], inserted: set[int], seek_duplicates: bool = True) -> list[Hit]:
    """Return the rules of `table` that fire for records `ids`: the condition holds, and the record is
    new, or did not meet it before, or met it and is now further into it (`worsened`); and the likely
    duplicates of those new or renamed, unless the writer checks them itself (an import: a query per
    row here would make a large import quadratic)."""
    hits = []
    for pk, row in rule_values(session, models, table, ids).items():
        old = None if pk in inserted else before.get(pk)
        for rule in table.rules:
            if not row[rule.key]:
                continue
            if old is not None and old[rule.key] and not worsened(rule, old, row):
                continue
            hits.append(Hit(rule, pk, filled(rule, table, row, models.schema)))
        keys = [f"{DUPLICATE_CHECK}:{k}" for k in table.duplicates] if seek_duplicates else []
        if keys and (old is None or any(old[k] != row[k] for k in keys)):
            values = {k.partition(":")[2]: row[k] for k in keys}
            found = likely_duplicates(session, models, table, pk, values)
            if found:
                hits.append(Hit(duplicate_rule(table), pk, duplicate_message(table, found), tuple(found)))
    return hits


def directions(condition: Any) -> dict[str, int]:
    """Return, per field or path a condition reads, which way a change of it takes the record further
    into the condition: +1 up (total in total > limit), -1 down (limit), 0 neither (a status compared
    with =, in, or a field multiplied)."""
    found: dict[str, int] = {}

    def visit(expr: Any, sign: int) -> None:
        if isinstance(expr, ex.Field):
            found[expr.key] = sign if found.get(expr.key, sign) == sign else 0
        elif isinstance(expr, ex.Arithmetic):
            visit(expr.left, sign if expr.op in "+-" else 0)
            visit(expr.right, (sign if expr.op == "+" else -sign) if expr.op in "+-" else 0)
        elif isinstance(expr, ex.Negative):
            visit(expr.operand, -sign)
        elif isinstance(expr, ex.Round):
            visit(expr.operand, sign)

    def compare(node: Any) -> None:
        if isinstance(node, ex.Logical):
            compare(node.left)
            compare(node.right)
        elif node.op in (">", ">=", "<", "<="):
            up = 1 if node.op in (">", ">=") else -1
            visit(node.left, up)
            visit(node.right, -up)
        else:
            for side in (node.left, *(node.right if isinstance(node.right, tuple) else (node.right,))):
                visit(side, 0)
    compare(condition)
    return found


def worsened(rule: RuleSpec, old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Return True when a value the rule reads moved further into its condition: an approved order
    whose total grew asks again; one that shipped, or shrank, does not."""
    for path, sign in directions(rule.condition).items():
        before, after = old[f"{rule.key}:{path}"], new[f"{rule.key}:{path}"]
        if sign == 0 or before == after:
            continue
        if before is None or after is None:
            return True
        if isinstance(before, (int, float, Decimal)):
            before, after = Decimal(str(before)), Decimal(str(after))
        if (after > before) if sign > 0 else (after < before):
            return True
    return False


def settle(session: orm.Session, hits: list[Hit], roles: frozenset[str]) -> None:
    """Raise for the hits the writer may not pass or has not confirmed; note the confirmed ones."""
    confirmed, every = session.info.get(CONFIRMED, (frozenset(), False))
    refused = [h for h in hits if h.rule.action == "refuse" and not exempt(h.rule, roles)]
    if refused:
        raise RuleRefused(joined(h.message for h in refused))
    open_hits = [h for h in hits if h.rule.action == "warn" and not every and h.rule.name not in confirmed]
    if open_hits:
        raise RuleNeedsConfirming(joined(h.message for h in open_hits),
                                  tuple((h.rule.name, h.rule.label, h.message) for h in open_hits),
                                  tuple(r for h in open_hits for r in h.records))
    session.info.setdefault(CONFIRMATIONS, []).extend(
        (h.rule.table, h.record_id, h.rule.name, h.message.zh) for h in hits)


def exempt(rule: RuleSpec, roles: frozenset[str]) -> bool:
    return ADMIN_ROLE in roles or bool(set(rule.unless_roles) & roles)


def joined(messages: Iterable[Label]) -> Label:
    unique = list(dict.fromkeys(messages))
    return Label("；".join(m.zh for m in unique), "; ".join(m.en for m in unique))


def filled(rule: RuleSpec, table: TableSpec, row: dict[str, Any], schema: SchemaSpec) -> Label:
    """Return the rule's message with each {field} of the record filled in."""
    def text(template: str, lang: str) -> str:
        return PLACEHOLDER.sub(lambda m: shown(row.get("{" + m.group(1) + "}"), table, m.group(1), schema, lang),
                               template)
    return Label(text(rule.message.zh, "zh"), text(rule.message.en, "en"))


def shown(value: Any, table: TableSpec, path: str, schema: SchemaSpec, lang: str) -> str:
    """Return a value as a message writes it: an amount with separators, an option by its label."""
    if value is None or value == "":
        return "—"
    *links, last = path.split(".")
    spec = table
    for step in links:
        spec = schema.table(spec.field(step).to or "")
    field = spec.field(last)
    if field.choices is not None and (option := field.choices.option(str(value))) is not None:
        return option.label.text(lang)
    vtype = VALUE_TYPES.get(field.type)
    if vtype is not None and hasattr(vtype, "scale"):  # decimal, money, percent: the field's own places
        return f"{Decimal(str(value)):,.{vtype.scale(field)}f}"
    if field.type == "integer":
        return f"{int(value):,}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()[:16].replace("T", " ")
    return str(value)


@event.listens_for(orm.Session, "after_soft_rollback")
def forget(session: orm.Session, previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
    if not previous_transaction.nested:  # a savepoint's rollback keeps what earlier ones passed
        session.info.pop(CONFIRMATIONS, None)


@event.listens_for(orm.Session, "after_transaction_end")
def ended(session: orm.Session, transaction: Any) -> None:
    if transaction.parent is None:  # the whole transaction, not a savepoint: nothing carries over
        for key in (LOGGED, PENDING, CONFIRMATIONS):  # (a session closed without a rollback, too)
            session.info.pop(key, None)
