"""Which fields a file's columns hold: by the hidden key row, else by header (key, Chinese or English label).

One place decides which fields a template offers, an export writes and an import may fill, for a
given user's field access, and how each column is headed.
"""
from __future__ import annotations

import difflib
import unicodedata
from dataclasses import dataclass
from typing import Any

from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import FieldAccess

ID_KEY = "id"
ID_LABEL = Label("编号", "ID")
REQUIRED_MARK = " *"
SKIPPED_TYPES = ("attachment",)  # files travel as files, not as cells


@dataclass(frozen=True)
class Column:
    """One column of a sheet: its position (1-based), the field it holds (None: the record id)."""

    index: int
    key: str
    spec: FieldSpec | None

    @property
    def label(self) -> Label:
        return self.spec.label if self.spec is not None else ID_LABEL


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


def normal(text: Any) -> str:
    """Return a heading as compared: full-width folded, spaces, the required mark and case ignored."""
    words = unicodedata.normalize("NFKC", str(text or "")).strip()
    for mark in ("(必填)", "*"):
        words = words.replace(mark, "")
    return "".join(words.split()).casefold()


def heading_names(table: TableSpec) -> dict[str, str]:
    """Return every accepted heading (normalised) → field key: keys, Chinese and English labels."""
    names: dict[str, str] = {normal(ID_KEY): ID_KEY, normal(ID_LABEL.zh): ID_KEY}
    for spec in table.fields:
        if spec.type in SKIPPED_TYPES:
            continue
        for name in (spec.key, spec.label.zh, spec.label.en):
            names.setdefault(normal(name), spec.key)
    return names


def is_key_row(cells: list[Any], table: TableSpec) -> bool:
    """Return True for a template's hidden second row: every non-empty cell a field key (or id)."""
    keys = {f.key for f in table.fields} | {ID_KEY}
    filled = [str(c).strip() for c in cells if c not in (None, "")]
    return bool(filled) and all(c in keys for c in filled)


def suggestion(heading: str, table: TableSpec, lang: str) -> str:
    """Return ' (did you mean …?)' for a heading close to a field's label or key, else ''."""
    labels = {spec.label.text(lang): spec for spec in table.fields if spec.type not in SKIPPED_TYPES}
    labels.update({spec.key: spec for spec in table.fields if spec.type not in SKIPPED_TYPES})
    close = difflib.get_close_matches(str(heading).strip(), list(labels), n=1, cutoff=0.5)
    if not close:
        return ""
    return (f"（是否想写“{labels[close[0]].label.zh}”？）" if lang == "zh"
            else f" (did you mean '{labels[close[0]].label.en}'?)")
