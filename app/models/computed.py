"""Computed fields: their expressions compiled to SQL, and kept right on every ORM write.

A computed value is a stored column, so lists sort, filter and search by it and reports add it up in
SQL. Every flush that writes a record recomputes, in the same transaction, the computed fields of the
records it wrote and those of the records they count in (an order's total when one of its lines is
added, changed, moved to another order or deleted, and the customer's open receivables after that),
in dependency order, each with one UPDATE whose value the database computes. The parents are locked
before the children are written, so two people adding lines to one order never leave a stale total.
"""
from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from graphlib import TopologicalSorter
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm

from app.fields.values import VALUE_TYPES, validate_value
from app.schema import expressions as ex
from app.schema.checks import compute_dependencies
from app.schema.model import FieldSpec, Label, SchemaSpec, TableSpec

from ..schema import naming
from .build import BuiltModels
from .problems import RecordProblem

BATCH = 1000  # rows per UPDATE when every row of a table is recomputed


class ComputeProblem(RecordProblem):
    """A computed value that cannot be stored (too large for its field)."""


# -- SQL -----------------------------------------------------------------------------------------

Tables = Callable[[str], sa.Table]  # table key -> the Table (built or reflected)


def link_of(schema: SchemaSpec, parent: str, aggregate: ex.Aggregate) -> FieldSpec:
    """Return the link of the aggregated table that points at `parent` (the schema checks made it one)."""
    source = schema.table(aggregate.table)
    return next(f for f in source.fields if f.type == "link" and f.to == parent
                and (aggregate.link is None or f.key == aggregate.link))


def column(table: sa.FromClause, spec: TableSpec, key: str) -> Any:
    return table.c[naming.column_name_for(spec.field(key))]


def sql_of(schema: SchemaSpec, tables: Tables, table_key: str, expr: Any, this: sa.FromClause) -> Any:
    """Return the SQL expression of `expr` for a row of `this` (the table of `table_key`)."""
    spec = schema.table(table_key)
    if isinstance(expr, ex.Number):
        return sa.literal(expr.value, sa.Numeric(30, 10))
    if isinstance(expr, ex.Text):
        return sa.literal(expr.value)
    if isinstance(expr, ex.Truth):
        return sa.true() if expr.value else sa.false()
    if isinstance(expr, ex.DateValue):
        return sa.literal(expr.value, sa.Date)
    if isinstance(expr, ex.Field) and "." in expr.key:
        return linked_sql(schema, tables, table_key, expr.key, this)
    if isinstance(expr, ex.Field):
        return column(this, spec, expr.key)
    if isinstance(expr, ex.Negative):
        return -sql_of(schema, tables, table_key, expr.operand, this)
    if isinstance(expr, ex.Round):
        return sa.func.round(sql_of(schema, tables, table_key, expr.operand, this), expr.places)
    if isinstance(expr, ex.Arithmetic):
        left = sql_of(schema, tables, table_key, expr.left, this)
        right = sql_of(schema, tables, table_key, expr.right, this)
        if expr.op == "/":  # never integer division (SQLite), and NULL rather than an error for / 0
            return (left * sa.literal(Decimal("1.0"), sa.Numeric(30, 10))) / sa.func.nullif(right, 0)
        return {"+": left + right, "-": left - right, "*": left * right}[expr.op]
    if isinstance(expr, ex.Aggregate):
        return aggregate_sql(schema, tables, table_key, expr, this)
    raise TypeError(type(expr).__name__)


def linked_sql(schema: SchemaSpec, tables: Tables, table_key: str, path: str, this: Any) -> Any:
    """Return the correlated subquery of a field of the record a row of `this` links to
    (customer.credit_limit; order.customer.grade follows two links). Rules read these."""
    link_key, _, rest = path.partition(".")
    link = schema.table(table_key).field(link_key)
    target = tables(link.to or "").alias()
    value = sql_of(schema, tables, link.to or "", ex.Field(rest), target)
    return sa.select(value).where(target.c.id == this.c[naming.column_name_for(link)]).scalar_subquery()


def aggregate_sql(schema: SchemaSpec, tables: Tables, parent: str, aggregate: ex.Aggregate, this: sa.FromClause
                  ) -> Any:
    """Return the correlated subquery of an aggregate over the records that link to a row of `this`."""
    source = schema.table(aggregate.table)
    child = tables(aggregate.table).alias(f"crm_{aggregate.table}")
    link = link_of(schema, parent, aggregate)
    conditions = [child.c[naming.column_name_for(link)] == this.c.id]
    if aggregate.where is not None:
        conditions.append(condition_sql(schema, tables, aggregate.table, aggregate.where, child))
    if aggregate.function == "count":
        value: Any = sa.func.count()
    else:
        value = getattr(sa.func, aggregate.function)(column(child, source, aggregate.field or ""))
        if aggregate.function == "sum":
            value = sa.func.coalesce(value, 0)
    return sa.select(value).select_from(child).where(*conditions).scalar_subquery()


def condition_sql(schema: SchemaSpec, tables: Tables, table_key: str, condition: Any, rows: Any) -> Any:
    """Return the SQL of a where condition over `rows` (an alias of the aggregated table)."""
    if isinstance(condition, ex.Logical):
        parts = [condition_sql(schema, tables, table_key, side, rows) for side in (condition.left, condition.right)]
        return sa.and_(*parts) if condition.op == "and" else sa.or_(*parts)
    left = sql_of(schema, tables, table_key, condition.left, rows)
    if condition.op in ("in", "notin"):
        values = [sql_of(schema, tables, table_key, v, rows) for v in condition.right]
        # "not in" and "!=" keep the rows where the field is empty, as a person reads them
        return left.in_(values) if condition.op == "in" else sa.or_(left.not_in(values), left.is_(None))
    right = sql_of(schema, tables, table_key, condition.right, rows)
    if condition.op == "!=":
        return sa.or_(left != right, left.is_(None))
    return {"=": left == right, "<": left < right, "<=": left <= right, ">": left > right,
            ">=": left >= right}[condition.op]


def stored_sql(spec: FieldSpec, value: Any) -> Any:
    """Return `value` rounded to what the field's column holds (its decimal places; whole numbers)."""
    vtype = VALUE_TYPES[spec.type]
    places = vtype.scale(spec) if hasattr(vtype, "scale") else 0
    return sa.func.round(value, places)


# -- which fields, in which order ----------------------------------------------------------------

@dataclass
class Computations:
    """The computed fields of a schema in dependency order, and which aggregates read which table."""

    schema: SchemaSpec
    order: list[tuple[str, str]] = field(default_factory=list)
    # aggregated table -> (parent table, link field) pairs that some aggregate follows
    followed: dict[str, set[tuple[str, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, schema: SchemaSpec) -> Computations:
        graph = compute_dependencies(schema)
        found = cls(schema, list(TopologicalSorter(graph).static_order()))
        for table_key, field_key in found.order:
            for aggregate in ex.aggregates(schema.table(table_key).field(field_key).computed):
                link = link_of(schema, table_key, aggregate)
                found.followed.setdefault(aggregate.table, set()).add((table_key, link.key))
        return found

    def fields(self, table_key: str) -> list[FieldSpec]:
        table = self.schema.table(table_key)
        return [table.field(k) for t, k in self.order if t == table_key]

    def own_only(self, spec: FieldSpec) -> bool:
        """True when the field is computed from its own record's fields alone (Python can work it out)."""
        return not ex.aggregates(spec.computed)


def recompute(conn: sa.Connection, schema: SchemaSpec, tables: Tables, changed: dict[str, set[int]] | None,
              old_parents: dict[tuple[str, str], set[int]] | None = None,
              only: Iterable[tuple[str, str]] | None = None, plan: Computations | None = None) -> dict[str, set[int]]:
    """Recompute computed fields in the database; return table key -> ids of the rows recomputed.

    `changed` holds the ids of the rows written per table (None: recompute every row of `only`, or of
    every computed field); `old_parents` the parents that rows written pointed at before (a moved or
    deleted line still counts for the order it left).
    """
    plan = plan or Computations.of(schema)
    changed = {k: set(v) for k, v in (changed or {}).items()} if changed is not None else None
    wanted = set(only) if only is not None else None
    if wanted is not None:
        wanted |= downstream(plan, wanted)
    done: dict[str, set[int]] = {}
    for table_key, field_key in plan.order:
        if wanted is not None and (table_key, field_key) not in wanted:
            continue
        spec = schema.table(table_key).field(field_key)
        this = tables(table_key)
        value = stored_sql(spec, sql_of(schema, tables, table_key, spec.computed, this))
        target = this.c[naming.column_name_for(spec)]
        if changed is None:
            update_all(conn, this, target, value)
            continue
        if plan.own_only(spec):
            continue  # worked out in Python before the flush wrote the row (see fill_in)
        rows = rows_to_recompute(conn, schema, tables, plan, table_key, spec, changed, old_parents or {})
        if not rows:
            continue
        for chunk in chunks(sorted(rows)):
            lock_rows(conn, this, chunk)
            conn.execute(sa.update(this).where(this.c.id.in_(chunk)).values({target: value}))
        changed.setdefault(table_key, set()).update(rows)
        done.setdefault(table_key, set()).update(rows)
    return done


def downstream(plan: Computations, fields: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Return the computed fields that read any of `fields`, directly or through others."""
    graph = compute_dependencies(plan.schema)
    found, todo = set(), list(fields)
    while todo:
        node = todo.pop()
        for reader, reads in graph.items():
            if node in reads and reader not in found:
                found.add(reader)
                todo.append(reader)
    return found


def rows_to_recompute(conn: sa.Connection, schema: SchemaSpec, tables: Tables, plan: Computations, table_key: str,
                      spec: FieldSpec, changed: dict[str, set[int]], old_parents: dict[tuple[str, str], set[int]]
                      ) -> set[int]:
    """Return the ids of `table_key` rows whose `spec` may have changed: rows written, and parents of
    written rows of the tables its aggregates read (where they point now, and where they pointed)."""
    rows = set(changed.get(table_key, ()))
    for aggregate in ex.aggregates(spec.computed):
        link = link_of(schema, table_key, aggregate)
        rows |= old_parents.get((aggregate.table, link.key), set())
        children = changed.get(aggregate.table)
        if children:
            child = tables(aggregate.table)
            link_column = child.c[naming.column_name_for(link)]
            for chunk in chunks(sorted(children)):
                rows |= {pk for (pk,) in conn.execute(sa.select(link_column).where(
                    child.c.id.in_(chunk), link_column.is_not(None)))}
    return rows


def lock_rows(conn: sa.Connection, table: sa.Table, ids: list[int]) -> None:
    """Lock rows (in id order) until the transaction ends, so that the value computed next, in a
    statement of its own, sees every write committed before (PostgreSQL: without blocking inserts
    of children, which only share-lock their parent's key)."""
    if conn.dialect.name == "sqlite" or not ids:
        return  # SQLite writes one transaction at a time
    postgres = conn.dialect.name == "postgresql"
    conn.execute(sa.select(table.c.id).where(table.c.id.in_(ids)).order_by(table.c.id)
                 .with_for_update(key_share=postgres))


def update_all(conn: sa.Connection, table: sa.Table, target: Any, value: Any) -> int:
    """Recompute a column of every row, a batch of ids at a time; return how many rows there are."""
    low, high = conn.execute(sa.select(sa.func.min(table.c.id), sa.func.max(table.c.id))).one()
    if low is None:
        return 0
    start = low
    while start <= high:
        conn.execute(sa.update(table).where(table.c.id >= start, table.c.id < start + BATCH).values({target: value}))
        start += BATCH
    return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def chunks(ids: list[int], size: int = 500) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


# -- Python, for a record's own fields -----------------------------------------------------------

def own_value(spec: FieldSpec, values: dict[str, Any]) -> Any:
    """Return a computed field's value worked out from its record's values (own-field computes only),
    rounded as stored; ComputeProblem when it does not fit the field."""
    result = ex.evaluate(spec.computed, values)
    if result is None:
        return None
    vtype = VALUE_TYPES[spec.type]
    places = vtype.scale(spec) if hasattr(vtype, "scale") else 0
    result = result.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    value = int(result) if spec.type in ("integer", "rating") else result
    problems = [p for p in validate_value(value, spec)[1] if "太大" in p.zh or "范围" in p.zh]
    if problems:
        raise ComputeProblem(Label(f"“{spec.label.zh}”的计算结果 {result} {problems[0].zh}",
                                   f"the computed {spec.label.en} {result}: {problems[0].en}"), spec.key)
    return value


# -- keeping them right on every write -----------------------------------------------------------

@dataclass(frozen=True)
class ComputeContext:
    models: BuiltModels
    table: TableSpec
    plan: Computations


_CONTEXTS: weakref.WeakKeyDictionary[type, ComputeContext] = weakref.WeakKeyDictionary()
PENDING = "crm_compute_pending"


def install_computations(models: BuiltModels) -> None:
    """Keep the computed fields (and default_from fields) of `models` right on every ORM flush."""
    plan = Computations.of(models.schema)
    for table in models.schema.tables:
        _CONTEXTS[models.model(table.key)] = ComputeContext(models, table, plan)


def table_of(models: BuiltModels) -> Tables:
    return lambda key: models.metadata.tables[naming.table_name_for(key)]


def fill_in(ctx: ComputeContext, obj: Any, session: orm.Session) -> None:
    """Copy default_from values into empty fields, then work out the record's own-field computes."""
    for spec in ctx.table.fields:
        if spec.default_from and getattr(obj, spec.key, None) in (None, ""):
            link_key, _, source_key = spec.default_from.partition(".")
            linked = getattr(obj, link_key, None)
            if linked is None and getattr(obj, f"{link_key}_id", None) is not None:
                target = ctx.models.model(ctx.table.field(link_key).to or "")
                linked = session.get(target, getattr(obj, f"{link_key}_id"))
            if linked is not None and getattr(linked, source_key, None) is not None:
                setattr(obj, spec.key, getattr(linked, source_key))
    for spec in ctx.plan.fields(ctx.table.key):
        if ctx.plan.own_only(spec):
            value = own_value(spec, {f.key: getattr(obj, f.key, None) for f in ctx.table.fields})
            if getattr(obj, spec.key, None) != value:
                setattr(obj, spec.key, value)


def stored_parents(session: orm.Session, ctx: ComputeContext, ids: list[int]) -> dict[tuple[str, str], set[int]]:
    """Return the parents that stored rows of a table point at now, per followed link."""
    found: dict[tuple[str, str], set[int]] = {}
    followed = ctx.plan.followed.get(ctx.table.key, set())
    if not ids or not followed:
        return found
    table = table_of(ctx.models)(ctx.table.key)
    for _parent, link_key in followed:
        link_column = table.c[naming.column_name_for(ctx.table.field(link_key))]
        values = set()
        for chunk in chunks(sorted(ids)):
            values |= {pk for (pk,) in session.execute(sa.select(link_column).where(
                table.c.id.in_(chunk), link_column.is_not(None)))}
        found[(ctx.table.key, link_key)] = values
    return found


def cascaded(session: orm.Session, models: BuiltModels, plan: Computations, table_key: str, ids: set[int],
             found: dict[tuple[str, str], set[int]], seen: set[tuple[str, int]]) -> None:
    """Add to `found` the parents of the rows the database deletes or empties with rows `ids` of
    `table_key` (on_delete: cascade and set_null), which the ORM never loads."""
    tables = table_of(models)
    for child_table, link in models.schema.children_of(table_key):
        if link.on_delete not in ("cascade", "set_null") or not ids:
            continue
        child = tables(child_table.key)
        link_column = child.c[naming.column_name_for(link)]
        rows = [pk for (pk,) in session.execute(sa.select(child.c.id).where(link_column.in_(sorted(ids))))]
        rows = [pk for pk in rows if (child_table.key, pk) not in seen]
        if not rows:
            continue
        seen.update((child_table.key, pk) for pk in rows)
        ctx = _CONTEXTS[models.model(child_table.key)]
        for key, parents in stored_parents(session, ctx, rows).items():
            found.setdefault(key, set()).update(parents)
        if link.on_delete == "cascade":
            cascaded(session, models, plan, child_table.key, set(rows), found, seen)
        else:  # an emptied link changes the child: its own computes and where conditions read it
            found.setdefault(("__changed__", child_table.key), set()).update(rows)


@event.listens_for(orm.Session, "before_flush")
def before_write(session: orm.Session, flush_context: Any, instances: Any) -> None:
    """Fill in default_from and own computes; note where written rows pointed; lock those parents."""
    written = [(obj, _CONTEXTS[type(obj)]) for obj in (*session.new, *session.dirty, *session.deleted)
               if type(obj) in _CONTEXTS]
    if not written:
        return
    pending = session.info.setdefault(PENDING, {"objects": [], "old": {}, "models": None})
    with session.no_autoflush:
        stored: dict[type, list[int]] = {}
        for obj, ctx in written:
            pending["models"] = ctx.models
            if obj not in session.deleted:
                fill_in(ctx, obj, session)
            if obj not in session.new and getattr(obj, "id", None) is not None:
                stored.setdefault(type(obj), []).append(obj.id)
            pending["objects"].append(obj)
        old = pending["old"]
        for cls, ids in stored.items():
            for key, parents in stored_parents(session, _CONTEXTS[cls], ids).items():
                old.setdefault(key, set()).update(parents)
        for obj in session.deleted:
            deleted = _CONTEXTS.get(type(obj))
            if deleted is not None and obj.id is not None:
                cascaded(session, deleted.models, deleted.plan, deleted.table.key, {obj.id}, old, set())
        lock_parents(session, written, old)


def lock_parents(session: orm.Session, written: list[tuple[Any, ComputeContext]],
                 old: dict[tuple[str, str], set[int]]) -> None:
    """Lock the parents whose aggregates the flush changes, before their children are written (on
    MariaDB a child's insert share-locks its parent, and two such locks could not both be raised)."""
    if session.get_bind().dialect.name == "sqlite":
        return
    parents: dict[str, set[int]] = {}
    for obj, ctx in written:
        for parent, link_key in ctx.plan.followed.get(ctx.table.key, ()):
            target = getattr(obj, link_key, None)
            pk = getattr(target, "id", None) if target is not None else getattr(obj, f"{link_key}_id", None)
            if pk is not None:
                parents.setdefault(parent, set()).add(pk)
    for (child_key, link_key), ids in old.items():
        if child_key != "__changed__":
            parent = next(p for p, k in written[0][1].plan.followed.get(child_key, ()) if k == link_key)
            parents.setdefault(parent, set()).update(ids)
    tables = table_of(written[0][1].models)
    for parent in sorted(parents):
        for chunk in chunks(sorted(parents[parent])):
            lock_rows(session.connection(), tables(parent), chunk)


@event.listens_for(orm.Session, "after_flush")
def after_write(session: orm.Session, flush_context: Any) -> None:
    """Recompute, in the database, the computed fields of the rows written and of their parents."""
    pending = session.info.pop(PENDING, None)
    if not pending or pending["models"] is None:
        return
    models: BuiltModels = pending["models"]
    changed: dict[str, set[int]] = {}
    for obj in pending["objects"]:
        ctx = _CONTEXTS.get(type(obj))
        if ctx is not None and getattr(obj, "id", None) is not None and obj not in session.deleted:
            changed.setdefault(ctx.table.key, set()).add(obj.id)
    old = {}
    for key, ids in pending["old"].items():
        if key[0] == "__changed__":
            changed.setdefault(key[1], set()).update(ids)
        else:
            old[key] = ids
    plan = _CONTEXTS[models.model(models.schema.tables[0].key)].plan
    done = recompute(session.connection(), models.schema, table_of(models), changed, old, plan=plan)
    session.info["crm_compute_done"] = (plan, done)


@event.listens_for(orm.Session, "after_flush_postexec")
def reload_computed(session: orm.Session, flush_context: Any) -> None:
    """Expire the computed values of the loaded records recomputed, so they are read as stored."""
    plan, done = session.info.pop("crm_compute_done", (None, {}))
    if plan is None:
        return
    obj: Any
    for obj in list(session.identity_map.values()):
        ctx = _CONTEXTS.get(type(obj))
        if ctx is not None and obj.id in done.get(ctx.table.key, ()):
            keys = [f.key for f in plan.fields(ctx.table.key)]
            if keys:
                session.expire(obj, keys)


@event.listens_for(orm.Session, "after_soft_rollback")
def forget(session: orm.Session, previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
    session.info.pop("crm_compute_done", None)
