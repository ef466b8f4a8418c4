"""Which fields a file's columns hold: by the hidden key row, else by heading (key, Chinese or English
label, or an alias from the YAML).

One place decides which fields a template offers, an export writes and an import may fill, for a
given user's field access, and how each column is headed.
"""
from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import FieldAccess

ID_KEY = "id"
ID_LABEL = Label("编号", "ID")
# An export's last, hidden column: the record's version, so that importing the file back refuses to
# overwrite what someone changed after the export.
VERSION_KEY = naming.VERSION_COLUMN
VERSION_LABEL = Label("版本", "Version")
# The headings of those two columns in a table where a field is itself called 编号 or 版本.
OTHER_LABELS = {ID_KEY: Label("系统编号", "Record ID"), VERSION_KEY: Label("数据版本", "Record version")}
SPECIAL_KEYS = (ID_KEY, VERSION_KEY)
REQUIRED_MARK = " *"
SKIPPED_TYPES = ("attachment",)  # files travel as files, not as cells
# Headings of a list's own row numbers, which most office lists have: left out with a note.
ROW_NUMBER_HEADINGS = frozenset({"序号", "行号", "序", "no", "no.", "#", "rowno", "seq"})

normal = naming.heading_key


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its position (1-based), the field it holds (None: the id or version)."""

    index: int
    key: str
    spec: FieldSpec | None

    @property
    def label(self) -> Label:
        if self.spec is not None:
            return self.spec.label
        return VERSION_LABEL if self.key == VERSION_KEY else ID_LABEL


def exported_fields(table: TableSpec, access: FieldAccess) -> list[FieldSpec]:
    """Return the fields an export shows the user: every field they see, computed ones included."""
    return [f for f in table.fields if access.shows(f.key) and f.type not in SKIPPED_TYPES]


def template_fields(table: TableSpec, access: FieldAccess) -> list[FieldSpec]:
    """Return the fields a template asks for: those the user may write, without computed ones."""
    return [f for f in table.fields if access.writes(f.key) and not f.is_computed and f.type not in SKIPPED_TYPES]


def header_text(spec: FieldSpec | None, lang: str, mark_required: bool = True) -> str:
    """Return a column's heading: the label, with ' *' after a required field's."""
    label = (spec.label if spec is not None else ID_LABEL).text(lang)
    return label + (REQUIRED_MARK if mark_required and spec is not None and spec.required else "")


def heading_names(table: TableSpec, access: FieldAccess | None = None) -> dict[str, str]:
    """Return every accepted heading (normalised) → field key: keys, Chinese and English labels, the
    YAML's aliases (only of fields the user sees, `access`), then the id and version columns' headings
    that no field of the table is called (a field labelled 编号 keeps its heading)."""
    names: dict[str, str] = {}
    for spec in table.fields:
        if spec.type in SKIPPED_TYPES or (access is not None and not access.shows(spec.key)):
            continue
        for name in (spec.key, spec.label.zh, spec.label.en, *spec.aliases):
            names.setdefault(normal(name), spec.key)
    for key, label in ((ID_KEY, ID_LABEL), (VERSION_KEY, VERSION_LABEL)):
        for name in (key, label.zh, label.en, OTHER_LABELS[key].zh, OTHER_LABELS[key].en):
            names.setdefault(normal(name), key)
    return names


def special_label(table: TableSpec, key: str) -> Label:
    """Return the heading an export gives the id or version column: 编号 / 版本, unless a field of the
    table is called so (then 系统编号 / 数据版本), so that the file imports back."""
    label = ID_LABEL if key == ID_KEY else VERSION_LABEL
    taken = {normal(n) for f in table.fields for n in (f.key, f.label.zh, f.label.en, *f.aliases)}
    return OTHER_LABELS[key] if normal(label.zh) in taken or normal(label.en) in taken else label


def is_key_row(cells: list[Any], table: TableSpec) -> bool:
    """Return True for a template's or an export's hidden key row: every non-empty cell a field key
    (or id, or the version), at least two of them."""
    keys = {f.key for f in table.fields} | set(SPECIAL_KEYS)
    filled = [str(c).strip() for c in cells if c not in (None, "")]
    return len(filled) >= min(2, len(table.fields)) and all(c in keys for c in filled)


def is_row_number_heading(heading: Any) -> bool:
    return normal(heading) in ROW_NUMBER_HEADINGS


def suggestion(heading: str, fields: Iterable[FieldSpec], lang: str) -> str:
    """Return ' (did you mean …?)' for a heading close to the label, key or an alias of one of `fields`
    (those the user sees), else ''."""
    names: dict[str, FieldSpec] = {}
    for spec in fields:
        if spec.type not in SKIPPED_TYPES:
            for name in (spec.label.text(lang), spec.key, *spec.aliases):
                names.setdefault(normal(name), spec)
    close = difflib.get_close_matches(normal(heading), list(names), n=1, cutoff=0.6)
    if not close:
        return ""
    spec = names[close[0]]
    return f"（是否想写“{spec.label.zh}”？）" if lang == "zh" else f" (did you mean '{spec.label.en}'?)"
