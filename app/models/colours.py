"""Colour rules (a table's `colors:`) worked out in SQL for the rows shown: one query per page of a
list, per batch of an export, per record page, whatever the table's size. A user is shown only the
rules whose conditions read fields they see: a red row must not tell a salesperson that a field
hidden from them holds."""
from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy import orm

from app.schema import expressions as ex
from app.schema import naming
from app.schema.model import ColourSpec, SchemaSpec, TableSpec

from .build import BuiltModels
from .computed import chunks, condition_sql, table_of

Shows = Callable[[str, str], bool]  # (table key, field key) -> the user sees that field


@dataclass
class Painted:
    """The colours of one record: of its row (the first row rule that holds) and of its cells."""

    row: ColourSpec | None = None
    cells: dict[str, ColourSpec] = field(default_factory=dict)

    def all(self) -> list[ColourSpec]:
        return ([self.row] if self.row else []) + list(self.cells.values())


def reads_only_shown(schema: SchemaSpec, table: TableSpec, colour: ColourSpec, shows: Shows) -> bool:
    """Return True when every field the rule reads (through links too), and the field it colours, is
    one the user sees."""
    paths = [n.key for n in ex.walk(colour.condition) if isinstance(n, ex.Field) and n.key != ex.TODAY]
    paths += [colour.field] if colour.field else []
    for path in paths:
        current = table
        for step in path.split("."):
            if not shows(current.key, step):
                return False
            spec = current.field(step)
            if spec.type == "link" and spec.to:
                current = schema.table(spec.to)
    return True


def visible_colours(schema: SchemaSpec, table: TableSpec, shows: Shows) -> list[ColourSpec]:
    """Return the table's colour rules that the user may be shown."""
    return [c for c in table.colors if reads_only_shown(schema, table, c, shows)]


def colours_of(session: orm.Session, models: BuiltModels, table: TableSpec, colours: list[ColourSpec],
               ids: Iterable[int], today: datetime.date) -> dict[int, Painted]:
    """Return the colours of the records `ids` (only those some rule paints)."""
    ids = sorted({int(pk) for pk in ids})
    if not colours or not ids:
        return {}
    this = models.metadata.tables[naming.table_name_for(table.key)]
    tables = table_of(models)
    flags = [sa.case((condition_sql(models.schema, tables, table.key, ex.dated(c.condition, today), this), 1),
                     else_=0).label(f"c{n}") for n, c in enumerate(colours)]
    painted: dict[int, Painted] = {}
    for chunk in chunks(ids):
        for row in session.execute(sa.select(this.c.id, *flags).where(this.c.id.in_(chunk))):
            holding = [c for c, flag in zip(colours, row[1:], strict=True) if flag]
            if not holding:
                continue
            found = painted.setdefault(row[0], Painted())
            for colour in holding:
                if colour.field is None:
                    found.row = found.row or colour
                else:
                    found.cells.setdefault(colour.field, colour)
    return painted


def tint(color: str, share: float = 0.16) -> str:
    """Return `color` (#rrggbb) mixed with white, `share` of it: a background that text stays readable on."""
    channels = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - (255 - c) * share):02x}" for c in channels)


def legend(colours: list[ColourSpec]) -> list[ColourSpec]:
    """Return the rules to explain beside a list, each colour and label once."""
    seen: set[tuple[str, str]] = set()
    found = []
    for colour in colours:
        if (colour.color, colour.label.zh) not in seen:
            seen.add((colour.color, colour.label.zh))
            found.append(colour)
    return found
