"""查重: likely duplicates of a record being added or renamed, by the fields a table lists under
`duplicates:` — a company name however its legal form is written (华信化工有限公司 = 华信化工股份有限公司
= 华信化工), codes and numbers as typed. A match is a warning the user confirms (app.models.rules), or
an existing record they open instead."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.fields.names import company_key, fold
from app.schema import naming
from app.schema.model import Label, RuleSpec, TableSpec

from .build import BuiltModels

DUPLICATE_CHECK = "duplicate"  # the rule name a confirmation gives: customer.duplicate
MIN_NAME = 2  # characters of a name's core (华信) below which everything would match
MAX_SHOWN = 5
MAX_CANDIDATES = 200


def duplicate_rule(table: TableSpec) -> RuleSpec:
    """Return the warning rule a likely duplicate of `table` raises."""
    return RuleSpec(key=DUPLICATE_CHECK, table=table.key, label=Label("疑似重复", "Likely duplicate"), when="",
                    action="warn", message=Label("", ""))


def likely_duplicates(session: orm.Session, models: BuiltModels, table: TableSpec, record_id: int,
                      values: dict[str, Any]) -> list[tuple[str, int, str]]:
    """Return (table, id, title) of the other records that share a `duplicates:` field's value with
    `values`: names compared by their core (company_key), other fields folded (full-width, case)."""
    this = models.metadata.tables[naming.table_name_for(table.key)]
    title = this.c[naming.column_name_for(table.field(table.title))] if table.has_field(table.title) else this.c.id
    found: dict[int, str] = {}
    for key, value in values.items():
        if value in (None, ""):
            continue
        spec = table.field(key)
        column = this.c[naming.column_name_for(spec)]
        same: Callable[[Any], str]
        narrowed: Any
        if spec.type == "string":
            wanted, same = company_key(value), company_key
            if len(wanted) < MIN_NAME:
                continue
            narrowed = sa.func.lower(column).like(f"%{escaped(wanted)}%", escape="\\")
        else:
            wanted, same = fold(value), fold
            narrowed = sa.func.lower(column) == str(value).strip().lower()
        rows = session.execute(sa.select(this.c.id, column, title).where(this.c.id != record_id, narrowed)
                               .order_by(this.c.id).limit(MAX_CANDIDATES))
        found.update({pk: str(name) for pk, stored, name in rows if same(stored) == wanted})
    return [(table.key, pk, name) for pk, name in sorted(found.items())[:MAX_SHOWN]]


def escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def duplicate_message(table: TableSpec, found: list[tuple[str, int, str]]) -> Label:
    names = "、".join(name for _, _, name in found)
    return Label(f"可能与已有的{table.label.zh}重复：{names}；请打开核对，确认不是同一家再保存",
                 f"this may be a duplicate of the {table.label.en} {', '.join(n for _, _, n in found)}; open it to "
                 "check, and save only if it is another one")
