"""What the database was last synced to: one JSON record per table, kept in `crm_schema_state`.

The live database cannot tell a retired field from an unknown column, or which options a choice
list had, so each applied plan records the fields it left in place. A field's record is a plain
dict (a "field state") so that plans and Alembic revisions can carry it as data.
"""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from app.fields.values import VALUE_TYPES
from app.schema import naming
from app.schema.expressions import parse_compute
from app.schema.model import ChoiceListSpec, FieldSpec, Label, OptionSpec, TableSpec

SYSTEM_METADATA = sa.MetaData()
# JSON of a whole schema outgrows MariaDB's TEXT (64 KB) at a few dozen tables.
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")

STATE_TABLE = sa.Table(
    "crm_schema_state", SYSTEM_METADATA,
    sa.Column("table_key", sa.String(63), primary_key=True),
    sa.Column("fields", LONG_TEXT, nullable=False),
    sa.Column("retired", LONG_TEXT, nullable=False),
    sa.Column("table_retired", sa.Boolean, nullable=False, default=False),
    sa.Column("updated_on", sa.DateTime, nullable=False),
)

# Where a field's values live in the database; a change of storage rewrites the column.
STORAGE = {
    "text": "text", "multi_choice": "text", "integer": "integer", "rating": "integer",
    "link": "integer", "user": "integer", "decimal": "numeric", "money": "numeric", "percent": "numeric",
    "boolean": "boolean", "date": "date", "datetime": "datetime",
}


def storage_of(state: dict[str, Any]) -> str:
    """Return the storage kind of a field state: 'varchar', 'text', 'integer', 'numeric', 'encrypted', ..."""
    if state.get("encrypted"):
        return "encrypted"
    return STORAGE.get(state["type"], "varchar")


def state_of(spec: FieldSpec) -> dict[str, Any]:
    """Return the field state of a field spec: what the database and its rows depend on."""
    vtype = VALUE_TYPES[spec.type]
    varchar = STORAGE.get(spec.type, "varchar") == "varchar"
    return {
        "key": spec.key,
        "type": spec.type,
        "column": naming.column_name_for(spec),
        "max_length": (spec.max_length or vtype.default_max_length or 255) if varchar else None,
        "scale": vtype.scale(spec) if hasattr(vtype, "scale") else None,
        "required": spec.required,
        "unique": spec.unique,
        "index": bool(spec.index or spec.is_relation),
        "options": list(spec.choices.keys) if spec.choices else None,
        "to": spec.to,
        "on_delete": spec.on_delete if spec.is_relation else None,
        # Only when set, so that the states recorded before encryption existed stay equal.
        **({"encrypted": True} if spec.seals_value else {}),
        **({"searchable": True} if spec.searchable else {}),
        **({"compute": spec.compute} if spec.compute else {}),
    }


def spec_from_state(state: dict[str, Any]) -> FieldSpec:
    """Return a field spec that builds the same column as `state` (for replaying revisions)."""
    options = state.get("options")
    choices = ChoiceListSpec(state["key"], tuple(OptionSpec(k, Label(k, k)) for k in options)) if options else None
    return FieldSpec(key=state["key"], type=state["type"], label=Label(state["key"], state["key"]),
                     required=state["required"], unique=state["unique"], index=state["index"],
                     max_length=state["max_length"], scale=state["scale"], to=state["to"],
                     on_delete=state["on_delete"] or "restrict", choices=choices,
                     encrypted=bool(state.get("encrypted")), searchable=bool(state.get("searchable")),
                     compute=state.get("compute"),
                     computed=parse_compute(state["compute"]) if state.get("compute") else None)


def table_spec_from_states(table_key: str, states: list[dict[str, Any]]) -> TableSpec:
    """Return a table spec with the fields of `states`, enough to build its Table."""
    fields = tuple(spec_from_state(s) for s in states)
    return TableSpec(key=table_key, label=Label(table_key, table_key), fields=fields,
                     title=fields[0].key if fields else "id", list=(), search=(), filters=())


@dataclass
class TableState:
    """The recorded fields of one table, and the fields retired from it (data kept)."""

    fields: dict[str, dict[str, Any]] = field(default_factory=dict)
    retired: dict[str, dict[str, Any]] = field(default_factory=dict)
    table_retired: bool = False


def load_state(conn: sa.Connection) -> dict[str, TableState]:
    """Return the recorded state per table key; empty when nothing was recorded yet."""
    if not sa.inspect(conn).has_table(STATE_TABLE.name):
        return {}
    rows = conn.execute(sa.select(STATE_TABLE)).mappings()
    return {r["table_key"]: TableState(json.loads(r["fields"]), json.loads(r["retired"]), bool(r["table_retired"]))
            for r in rows}


def save_state(conn: sa.Connection, states: dict[str, TableState]) -> None:
    """Replace the recorded state with `states`."""
    STATE_TABLE.create(conn, checkfirst=True)
    conn.execute(STATE_TABLE.delete())
    now = datetime.datetime.now().replace(microsecond=0)
    rows = [{"table_key": key, "fields": json.dumps(s.fields, ensure_ascii=False, sort_keys=True),
             "retired": json.dumps(s.retired, ensure_ascii=False, sort_keys=True),
             "table_retired": s.table_retired, "updated_on": now} for key, s in sorted(states.items())]
    if rows:
        conn.execute(STATE_TABLE.insert(), rows)
