"""Record rules shared by screens and the API: delete blockers and uniqueness, with user messages."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask_appbuilder.models.sqla.interface import SQLAInterface

from app.fields.values import INT_MAX
from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.users import display_name


def record_id(value: Any) -> int | None:
    """Return `value` (an int or a text of digits) as a record id, or None when no record can have it:
    ids are positive 32-bit integers, and a bigger one would be an error in PostgreSQL, not a miss."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    return value if isinstance(value, int) and 0 < value <= INT_MAX else None


class RecordInterface(SQLAInterface):
    """Flask-AppBuilder's interface over a generated table: an id no record can have finds nothing."""

    def get(self, id: Any, filters: Any = None, select_columns: Any = None,  # noqa: A002 (FAB's name)
            outer_default_load: bool = False) -> Any:
        pk = record_id(id)
        if pk is None:
            return None
        return super().get(pk, filters, select_columns, outer_default_load)


def user_display_name(user: Any) -> str:
    """Return a user's full name as the UI's language writes it (see app.security.users.display_name)."""
    from .i18n import current_lang
    return display_name(user, current_lang())


class DeleteBlocked(Exception):
    """Deleting a record is refused because other records still point at it (on_delete: restrict)."""

    def __init__(self, label: Label):
        self.label = label
        super().__init__(label.zh)

    def text(self, lang: str) -> str:
        return self.label.text(lang)


def delete_blockers(models: BuiltModels, table: TableSpec, item: Any,
                    session: Any) -> list[tuple[TableSpec, FieldSpec, int]]:
    """Return (child table, link field, count) for every restrict link that still holds rows of `item`."""
    found = []
    for child, link in models.schema.children_of(table.key):
        if link.on_delete != "restrict":
            continue
        child_table = models.metadata.tables[naming.table_name_for(child.key)]
        column = child_table.c[naming.column_name_for(link)]
        count = session.execute(sa.select(sa.func.count()).select_from(child_table).where(column == item.id)).scalar()
        if count:
            found.append((child, link, int(count)))
    return found


def check_delete(models: BuiltModels, table: TableSpec, item: Any, session: Any) -> None:
    """Raise DeleteBlocked naming what still refers to `item`; return quietly if it may be deleted."""
    blockers = delete_blockers(models, table, item, session)
    if not blockers:
        return
    zh = "、".join(f"{n} 条{c.label.zh}(字段“{f.label.zh}”)" for c, f, n in blockers)
    en = ", ".join(f"{n} {c.label.en} record(s) (field '{f.label.en}')" for c, f, n in blockers)
    raise DeleteBlocked(Label(
        f"无法删除{table.label.zh}“{item}”:仍有 {zh}引用它。请先删除这些记录或改为引用其他{table.label.zh}。",
        f"Cannot delete {table.label.en} '{item}': {en} still refer to it. Delete them or point them at "
        f"another {table.label.en} first."))


def unique_conflicts(model: type, table: TableSpec, values: dict[str, Any], own_id: Any,
                     session: Any) -> dict[str, Label]:
    """Return field key → message for each unique field whose value another row already has."""
    problems = {}
    for f in table.fields:
        if not f.unique or values.get(f.key) in (None, ""):
            continue
        query = sa.select(sa.func.count()).select_from(model).where(getattr(model, f.key) == values[f.key])
        if own_id is not None:
            query = query.where(model.id != own_id)  # type: ignore[attr-defined]
        if session.execute(query).scalar():
            problems[f.key] = Label(f"已存在相同的{f.label.zh}“{values[f.key]}”",
                                    f"another record already has {f.label.en} '{values[f.key]}'")
    return problems
