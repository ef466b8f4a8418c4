"""Compare the schema specs with the live database and its recorded state; return a plan.

A plan is a list of steps, each in plain words and marked safe or needs review. Steps that would
lose or change information are checked against the existing rows first: a step whose rows would
fail is *blocked* until the rows are fixed or the admin picks a resolution (`--resolve`).
Planning only reads.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from app.models.computed import link_of
from app.schema import expressions, naming
from app.schema.model import FieldSpec, SchemaSpec, TableSpec

from .ids import reuses_ids
from .rows import RowCheck, check_convertible, check_duplicates, check_empty, check_longer, check_options, check_orphans
from .state import TableState, load_state, state_of, storage_of

# What an admin may choose for a blocked step, by step kind.
RESOLUTIONS = {"change_type": ("clear",), "shorten": ("clear",), "require": ("keep",), "remove_option": ("keep",),
               "restore_column": ("clear",), "rename_column": ("clear",)}
RESOLUTION_WORDS = {
    "clear": "the values that do not fit are cleared (a backup table keeps them)",
    "keep": "existing rows keep their values; new and edited rows must follow the rule",
}
NOT_CONVERTIBLE = ("link", "user", "attachment")


@dataclass
class Step:
    """One change to the database. `data` carries what applying (or replaying) it needs."""

    kind: str
    table: str
    field: str | None
    words: str
    review: bool = False
    blocked: str | None = None
    resolution: str | None = None
    data: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def target(self) -> str:
        """Return 'table.field' (or the table) that --resolve names."""
        return f"{self.table}.{self.field}" if self.field else self.table

    def line(self) -> str:
        """Return the step as printed by `crm schema plan`."""
        mark = "needs review" if self.review else "safe"
        text = f"{self.words}   [{mark}]"
        if self.resolution:
            text += f"\n      resolution '{self.resolution}': {RESOLUTION_WORDS[self.resolution]}"
        elif self.blocked:
            text += f"\n      refused: {self.blocked}"
        return text


@dataclass
class Plan:
    steps: list[Step] = dataclasses.field(default_factory=list)
    state: dict[str, TableState] = dataclasses.field(default_factory=dict)

    @property
    def safe(self) -> list[Step]:
        return [s for s in self.steps if not s.review]

    @property
    def review(self) -> list[Step]:
        return [s for s in self.steps if s.review]

    @property
    def blocked(self) -> list[Step]:
        return [s for s in self.steps if s.blocked and not s.resolution]

    def text_words(self) -> str:
        """Return the steps' words, one per line (for revision files and history)."""
        return "\n".join(s.words for s in self.steps)

    def text(self) -> str:
        """Return every step, one per line (two with its refusal or resolution)."""
        return "\n".join(s.line() for s in self.steps) if self.steps else "nothing to change"


def plan_schema(conn: sa.Connection, schema: SchemaSpec, resolutions: dict[str, str] | None = None) -> Plan:
    """Return the plan that brings the database in line with `schema`.

    `resolutions` maps 'table.field' to a resolution ('clear' or 'keep') for blocked steps.
    Raises ValueError for a resolution that names no blocked step or does not fit it.
    """
    planner = Planner(conn, schema, load_state(conn))
    plan = planner.plan()
    apply_resolutions(plan, resolutions or {})
    return plan


def apply_resolutions(plan: Plan, resolutions: dict[str, str]) -> None:
    """Attach the admin's resolutions to blocked steps; ValueError when one does not fit."""
    unused = dict(resolutions)
    for step in plan.steps:
        choice = unused.pop(step.target, None)
        if choice is None:
            continue
        allowed = RESOLUTIONS.get(step.kind, ())
        if not step.blocked or choice not in allowed:
            raise ValueError(f"--resolve {step.target}={choice}: " + (
                f"that step ({step.words}) is not refused, nothing to resolve" if not step.blocked else
                f"choose one of: {', '.join(allowed)}" if allowed else "this step has no resolution; fix the rows"))
        step.resolution = choice
    if unused:
        target = next(iter(unused))
        raise ValueError(f"--resolve {target}={unused[target]}: no refused step changes {target}")


class Planner:
    """Walks the specs against the live tables and the recorded state, collecting steps."""

    def __init__(self, conn: sa.Connection, schema: SchemaSpec, recorded: dict[str, TableState]):
        self.conn, self.schema, self.recorded = conn, schema, recorded
        inspector = sa.inspect(conn)
        self.live_tables = set(inspector.get_table_names())
        self.live_columns = {t: {c["name"] for c in inspector.get_columns(t)} for t in self.live_tables}
        self.steps: list[Step] = []
        self.new_state: dict[str, TableState] = {}
        self.recomputes: list[tuple[str, str, int]] = []  # (table, field, rows) whose compute is new
        # old table key → new key, so that links to a renamed table are not taken for moved links
        self.renamed = {t.renamed_from: t.key for t in schema.tables if t.renamed_from}

    def plan(self) -> Plan:
        claimed = set()
        for table in self.schema.tables:
            claimed.add(table.key)
            source = self.table_source(table)
            if source and source != table.key:
                claimed.add(source)
            self.plan_table(table, source)
        for key, old in self.recorded.items():
            if key not in claimed:
                self.retire_table(key, old)
        self.plan_recomputes()
        return Plan(self.steps, self.new_state)

    def plan_recomputes(self) -> None:
        """Add, after every other step, one step per computed field whose expression is new to rows
        that exist: it recomputes every row (and the computed fields that read it)."""
        needed = compute_inputs(self.schema)
        states = {t.key: [state for key, state in self.new_state[t.key].fields.items() if (t.key, key) in needed]
                  for t in self.schema.tables if any(k[0] == t.key for k in needed)}
        for table_key, field_key, rows in self.recomputes:
            count = f"{rows:,} rows recomputed" if rows else "no rows yet"
            self.add("recompute", table_key, field_key, f"~ compute {table_key}.{field_key} — {count}",
                     data={"states": states})

    def add(self, kind: str, table: str, field_key: str | None, words: str, **kw: Any) -> Step:
        step = Step(kind, table, field_key, words, **kw)
        self.steps.append(step)
        return step

    # -- tables ----------------------------------------------------------------------------

    def table_source(self, table: TableSpec) -> str | None:
        """Return the live table that holds `table`'s rows (itself, or the one it was renamed from)."""
        name = naming.table_name_for(table.key)
        if name in self.live_tables:
            return table.key
        old = table.renamed_from
        if old and naming.table_name_for(old) in self.live_tables:
            return old
        return None

    def plan_table(self, table: TableSpec, source: str | None) -> None:
        fields = {f.key: state_of(f) for f in table.fields}
        if source is None:
            self.add("create_table", table.key, None, f"+ create table {table.key} ({len(fields)} fields)",
                     data={"fields": list(fields.values())})
            self.new_state[table.key] = TableState(fields)
            return
        if source != table.key:
            self.add("rename_table", table.key, None,
                     f"~ rename table {source} → {table.key} (from renamed_from)", data={"old": source})
        elif table.renamed_from and naming.table_name_for(table.renamed_from) in self.live_tables \
                and table.renamed_from in self.recorded and not self.recorded[table.renamed_from].table_retired:
            self.add("rename_table", table.key, None, f"~ rename table {table.renamed_from} → {table.key} "
                     "(from renamed_from)", review=True, data={"old": table.renamed_from},
                     blocked=f"the database still has a table '{table.key}' (a retired table); remove it with "
                     "'crm schema drop-retired' first, or pick another key")
        old = self.recorded.get(source) or self.adopt(table, source)
        state = TableState(dict(fields), dict(old.retired))
        self.new_state[table.key] = state
        columns = self.live_columns[naming.table_name_for(source)]
        taken: set[str] = set()
        for spec in table.fields:
            self.plan_field(table, spec, old, state, columns, taken)
        for key, before in old.fields.items():
            if key not in taken:
                state.retired[key] = before
                self.add("retire_column", table.key, key, f"- retire column {table.key}.{key} (data kept, hidden)",
                         data={"field": before})
        self.plan_version(table, old, state, columns)
        if reuses_ids(self.conn, naming.table_name_for(source)):
            self.add("never_reuse_ids", table.key, None,
                     f"~ never reuse the ids of deleted {table.key} records (SQLite AUTOINCREMENT)")

    def plan_version(self, table: TableSpec, old: TableState, state: TableState, columns: set[str]) -> None:
        """Add the step that gives the table its version column, unless it has it. A field stored in a
        column of that name (from before the name was reserved) is the user's data, never the version."""
        version = naming.VERSION_COLUMN
        for key, before in list(state.retired.items()):
            if before["column"] == version:  # a retired field's data: moved aside, kept
                moved = {**before, "column": f"{version}_retired"}
                state.retired[key] = moved
                self.add("rename_column", table.key, key, f"~ move retired column {table.key}.{key} to "
                         f"{moved['column']} (the name {version} is now the system's)",
                         data={"old": before, "field": moved, "restore": False})
        if version not in columns or any(s["column"] == version for s in (*old.fields.values(),
                                                                          *old.retired.values())):
            self.add("add_version", table.key, None, f"+ add version numbers to {table.key} records (so that a "
                     "save based on an outdated copy is refused)")

    def adopt(self, table: TableSpec, source: str) -> TableState:
        """Return a state for a table created before states were recorded: its live fields as declared."""
        columns = self.live_columns[naming.table_name_for(source)]
        return TableState({f.key: state_of(f) for f in table.fields if state_of(f)["column"] in columns})

    def retire_table(self, key: str, old: TableState) -> None:
        self.new_state[key] = TableState(old.fields, old.retired, table_retired=True)
        if not old.table_retired:
            self.add("retire_table", key, None, f"- retire table {key} (data kept, hidden)")

    # -- fields ----------------------------------------------------------------------------

    def plan_field(self, table: TableSpec, spec: FieldSpec, old: TableState, state: TableState,
                   columns: set[str], taken: set[str]) -> None:
        new = state.fields[spec.key]
        before, origin = self.field_origin(spec, old, state)
        if origin:
            taken.add(origin)
        if before is None:
            if new["column"] in columns:  # a column nobody recorded: take it as it is
                return
            self.add("add_column", table.key, spec.key,
                     f"+ add column {table.key}.{spec.key} ({spec.type}, nullable)", data={"field": new})
            self.plan_recompute(table, spec, {})
            return
        assert origin is not None  # a field with a recorded state has a key it was recorded under
        retired = origin in state.retired
        if retired:
            state.retired.pop(origin)
        if origin != spec.key:
            if not self.plan_rename(table, spec, origin, before, new, columns, retired):
                return
        elif retired:
            self.add("restore_column", table.key, spec.key,
                     f"+ restore retired column {table.key}.{spec.key} (its data comes back)",
                     data={"old": before, "field": new})
        if retired and spec.is_relation and before["type"] == new["type"] and not self.links_intact(
                table, spec, before):
            return
        self.plan_changes(table, spec, before, new)

    def links_intact(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any]) -> bool:
        """Return True when a restored link points only at existing records (its foreign key comes back);
        else refuse the restore step just planned, naming the rows."""
        target = "ab_user" if spec.type == "user" else naming.table_name_for(
            next((t.renamed_from for t in self.schema.tables if t.key == spec.to and t.renamed_from
                  and naming.table_name_for(t.renamed_from) in self.live_tables), spec.to or ""))
        found = check_orphans(RowCheck(self.conn, table, before, self.steps_source(table)), target)
        if not found.ids:
            return True
        step = self.steps[-1]
        step.words += f" — {found.describe('point at deleted records')}"
        step.review = True
        step.blocked = (f"those records were deleted while {table.key}.{spec.key} was retired; resolve with "
                        f"--resolve {table.key}.{spec.key}=clear to empty those links")
        return False

    def plan_rename(self, table: TableSpec, spec: FieldSpec, origin: str, before: dict[str, Any],
                    new: dict[str, Any], columns: set[str], retired: bool) -> bool:
        """Add the step that moves a field's data to its new key; False when that step is refused."""
        words = (f"+ restore retired column {table.key}.{origin} as {table.key}.{spec.key} (from renamed_from)"
                 if retired else f"~ rename column {table.key}.{origin} → {table.key}.{spec.key} (from renamed_from)")
        if new["column"] in columns and new["column"] != before["column"]:
            self.add("rename_column", table.key, spec.key, words, review=True,
                     data={"old": before, "field": new, "restore": retired},
                     blocked=f"the table still has a column '{new['column']}' (a retired field or a column the "
                     "schema does not know); remove it with 'crm schema drop-retired' first, or pick another key")
            return False
        self.add("rename_column", table.key, spec.key, words, data={"old": before, "field": new, "restore": retired})
        return True

    def field_origin(self, spec: FieldSpec, old: TableState,
                     state: TableState) -> tuple[dict[str, Any] | None, str | None]:
        """Return (recorded state, key) of where the field's data is now, or (None, None) for a new field."""
        for key in (spec.key, spec.renamed_from):
            if key and key in old.fields:
                return old.fields[key], key
        for key in (spec.key, spec.renamed_from):
            if key and key in state.retired:
                return state.retired[key], key
        return None, None

    def plan_changes(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any], new: dict[str, Any]) -> None:
        name = f"{table.key}.{spec.key}"
        check = RowCheck(self.conn, table, before, source_table=self.steps_source(table))
        old_to: Any = before.get("to")
        old_target = self.renamed.get(old_to, old_to)
        if before["type"] != new["type"] or (old_target != new.get("to") and new["type"] == "link"):
            self.plan_type_change(table, spec, before, new, check)
            return
        if (bool(before.get("encrypted")), bool(before.get("searchable"))) != (spec.seals_value, spec.searchable):
            self.plan_converted(table, spec, before, new, check, encryption_words(name, before, spec), review=False)
            return
        if (before["max_length"] and new["max_length"] and new["max_length"] != before["max_length"]
                and storage_of(new) == "varchar"):
            self.plan_length(table, spec, before, new, check)
        if before.get("scale") != new.get("scale") and storage_of(new) == "numeric":
            self.plan_converted(table, spec, before, new, check, f"! change scale of {name}: {before['scale']} → "
                                f"{new['scale']} decimal places")
        if new["required"] and not before["required"]:
            found = check_empty(check)
            self.tighten("require", table, spec, f"make {name} required", found,
                         "{n} of {total} rows are empty", "no empty rows", before, new)
        if new["unique"] and not before["unique"]:
            found = check_duplicates(check)
            self.tighten("add_unique", table, spec, f"make {name} unique", found,
                         "{n} rows share a value with another row", "no duplicates", before, new)
        elif before["unique"] and not new["unique"]:
            self.add("drop_unique", table.key, spec.key, f"~ drop uniqueness of {name}",
                     data={"old": before, "field": new})
        if new["index"] and not before["index"] and not new["unique"]:
            self.add("add_index", table.key, spec.key, f"+ add index on {name}", data={"field": new})
        self.plan_options(table, spec, before, new, check)
        self.plan_recompute(table, spec, before)

    def plan_recompute(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any]) -> None:
        """Note a computed field whose expression the rows were not computed with (new, or changed)."""
        if not spec.compute or before.get("compute") == spec.compute:
            return
        # Planned even for an empty table: a revision file replays it into databases that have rows.
        rows = self.conn.execute(sa.select(sa.func.count()).select_from(
            sa.table(self.steps_source(table)))).scalar() or 0
        self.recomputes.append((table.key, spec.key, int(rows)))

    def steps_source(self, table: TableSpec) -> str:
        """Return the live table name of `table` before this plan renames it."""
        for step in self.steps:
            if step.kind == "rename_table" and step.table == table.key:
                return naming.table_name_for(step.data["old"])
        return naming.table_name_for(table.key)

    def plan_type_change(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any], new: dict[str, Any],
                         check: RowCheck) -> None:
        words = f"! change type of {table.key}.{spec.key}: {before['type']} → {new['type']}"
        data = {"old": before, "field": new}
        if before["type"] == new["type"]:
            words = f"! change target of {table.key}.{spec.key}: {before['to']} → {new['to']}"
            self.add("change_type", table.key, spec.key, words, review=True, data=data,
                     blocked="a link cannot move to another table; add a new link field instead (and retire "
                     "this one by removing it from the YAML)")
            return
        if before["type"] in NOT_CONVERTIBLE or new["type"] in NOT_CONVERTIBLE:
            self.add("change_type", table.key, spec.key, words, review=True, data=data,
                     blocked=f"a {before['type']} field cannot become a {new['type']} field; add a new field "
                     "instead (and retire this one by removing it from the YAML)")
            return
        self.plan_converted(table, spec, before, new, check, words)

    def plan_converted(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any], new: dict[str, Any],
                       check: RowCheck, words: str, review: bool = True) -> None:
        """Add a step that rewrites every value in the new definition, refused while some do not fit."""
        found = check_convertible(check, spec)
        data = {"old": before, "field": new}
        if found.ids:
            self.add("change_type", table.key, spec.key, f"{words} — {found.describe('would not convert')}",
                     review=True, data=data, blocked=f"fix those rows first, or resolve with "
                     f"--resolve {table.key}.{spec.key}=clear")
        else:
            self.add("change_type", table.key, spec.key, f"{words} — all {found.total:,} rows convert",
                     review=review, data=data)

    def plan_length(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any], new: dict[str, Any],
                    check: RowCheck) -> None:
        name = f"{table.key}.{spec.key}"
        change = f"max_length {before['max_length']} → {new['max_length']}"
        if new["max_length"] > before["max_length"]:
            self.add("widen", table.key, spec.key, f"~ widen {name}: {change}", data={"old": before, "field": new})
            return
        found = check_longer(check, new["max_length"])
        words = f"! shorten {name}: {change}"
        if found.ids:
            self.add("shorten", table.key, spec.key, f"{words} — {found.describe('are longer')}", review=True,
                     data={"old": before, "field": new},
                     blocked=f"shorten those values first, or resolve with --resolve {name}=clear")
        else:
            self.add("shorten", table.key, spec.key, f"{words} — no row is longer", review=True,
                     data={"old": before, "field": new})

    def tighten(self, kind: str, table: TableSpec, spec: FieldSpec, what: str, found: Any, failing: str,
                passing: str, before: dict[str, Any], new: dict[str, Any]) -> None:
        data = {"old": before, "field": new}
        if not found.ids:
            self.add(kind, table.key, spec.key, f"~ {what} ({passing})", data=data)
            return
        count = failing.format(n=f"{len(found.ids):,}", total=f"{found.total:,}")
        hint = (f"fill them in first, or resolve with --resolve {table.key}.{spec.key}=keep" if kind == "require"
                else "give those rows different values first")
        self.add(kind, table.key, spec.key, f"! {what} — {count} ({found.id_list()})", review=True,
                 blocked=hint, data=data)

    def plan_options(self, table: TableSpec, spec: FieldSpec, before: dict[str, Any], new: dict[str, Any],
                     check: RowCheck) -> None:
        old_keys, new_keys = before.get("options") or [], new.get("options") or []
        name = f"{table.key}.{spec.key}"
        for key in new_keys:
            if key not in old_keys:
                self.add("add_option", table.key, spec.key, f"+ add option {name}: {key}")
        for key in old_keys:
            if key in new_keys:
                continue
            found = check_options(check, key)
            if found.ids:
                self.add("remove_option", table.key, spec.key,
                         f"! remove option {name}: {key} — {found.describe('use it')}", review=True,
                         blocked=f"change those rows first, or resolve with --resolve {name}=keep "
                         "(they keep the old value, shown as retired)", data={"option": key})
            else:
                self.add("remove_option", table.key, spec.key, f"- remove option {name}: {key} (no row uses it)",
                         data={"option": key})


def compute_inputs(schema: SchemaSpec) -> set[tuple[str, str]]:
    """Return (table, field) of every computed field and of every field one reads (links followed
    included): what a recompute step carries to be replayed without the YAML."""
    found: set[tuple[str, str]] = set()
    for table in schema.tables:
        for f in table.fields:
            if f.computed is None:
                continue
            found.add((table.key, f.key))
            found |= {(table.key, ref.key) for ref in expressions.own_fields(f.computed)}
            for aggregate in expressions.aggregates(f.computed):
                found.add((aggregate.table, link_of(schema, table.key, aggregate).key))
                found |= {(aggregate.table, ref.key) for ref in expressions.aggregate_fields(aggregate)}
    return found


def encryption_words(name: str, before: dict[str, Any], spec: FieldSpec) -> str:
    """Return the plan line of a change in how a field is encrypted."""
    if spec.seals_value and not before.get("encrypted"):
        return f"~ encrypt {name}" + (" (searchable by exact value)" if spec.searchable else "")
    if not spec.seals_value:
        return f"~ decrypt {name} (its values are stored as plain text again)"
    return f"~ {'add' if spec.searchable else 'drop'} the exact-match search index of {name}"
