"""`match:` on links: a record's contact must belong to the record's own customer.

Checked on every ORM flush, so screens, the API and imports refuse a mismatch alike.
"""
from __future__ import annotations

import weakref
from typing import Any

from sqlalchemy import event, orm

from app.schema.model import FieldSpec, Label, TableSpec

from .build import BuiltModels
from .problems import RecordProblem

_MATCHED: weakref.WeakKeyDictionary[type, tuple[TableSpec, list[FieldSpec]]] = weakref.WeakKeyDictionary()


class MatchProblem(RecordProblem):
    """A link whose record does not share the matched link with this record."""


def install_matching(models: BuiltModels) -> None:
    """Check the `match:` links of `models` on every flush."""
    for table in models.schema.tables:
        links = [f for f in table.fields if f.type == "link" and f.match]
        if links:
            _MATCHED[models.model(table.key)] = (table, links)


def mismatch(table: TableSpec, spec: FieldSpec, obj: Any) -> Label | None:
    """Return why `obj`'s `spec` link does not match, or None when it does (or either side is empty)."""
    picked = getattr(obj, spec.key, None)
    mine = getattr(obj, spec.match or "", None)
    theirs = getattr(picked, spec.match or "", None) if picked is not None else None
    if picked is None or mine is None or theirs is None or theirs.id == mine.id:
        return None
    other = table.field(spec.match or "")
    return Label(f"“{spec.label.zh}”{picked}属于“{theirs}”，与“{other.label.zh}”{mine}不符；"
                 f"请选择{mine}的{spec.label.zh}",
                 f"{spec.label.en} {picked} belongs to {theirs}, not to the {other.label.en.lower()} {mine}; pick one "
                 f"of {mine}")


@event.listens_for(orm.Session, "before_flush")
def check_matches(session: orm.Session, flush_context: Any, instances: Any) -> None:
    with session.no_autoflush:
        for obj in (*session.new, *session.dirty):
            found = _MATCHED.get(type(obj))
            if found is None:
                continue
            table, links = found
            for spec in links:
                problem = mismatch(table, spec, obj)
                if problem is not None:
                    raise MatchProblem(problem, spec.key)
