"""A stored value → a cell of an export (and back: what an import accepts of it), the same for every
surface: choices as labels, links as titles, users as names, numbers and dates typed, text that a
spreadsheet would run as a formula neutralised."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from app.models.encryption import masked
from app.schema.model import FieldSpec, SchemaSpec
from app.security.users import display_name

# Text that starts with one of these is a formula (or a DDE command) to Excel, LibreOffice and WPS.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "＝", "＋", "－", "＠")
QUOTE = "'"


def is_formula_like(text: str) -> bool:
    return text.startswith(FORMULA_STARTS)


def neutralised(text: str) -> str:
    """Return text a spreadsheet shows but never runs: a leading ' before what starts a formula (OWASP)."""
    return QUOTE + text if is_formula_like(text) else text


def unquoted(text: str) -> str:
    """Return an imported cell without the ' an export put before formula-like text."""
    return text[1:] if text.startswith(QUOTE) and is_formula_like(text[1:]) else text


def titles_unique(schema: SchemaSpec, table_key: str) -> bool:
    """Return True when the records of `table_key` are told apart by their title alone (a unique title)."""
    table = schema.table(table_key)
    return table.field(table.title).unique


def link_text(record: Any, unique_title: bool) -> str:
    """Return a linked record as an export writes it: its title, with #id when titles may repeat."""
    title = str(record)
    return title if unique_title or title.startswith("#") else f"{title} #{record.id}"


def export_value(spec: FieldSpec, value: Any, lang: str, masked_field: bool, unique_title: bool = True,
                 shared_names: frozenset[str] = frozenset()) -> Any:
    """Return what a cell shows of a stored value: typed for numbers and dates, text otherwise; a user
    by name, with the login where users share the name (张伟 (zhangwei))."""
    if value is None or value == "" or value == []:
        return None
    if masked_field:
        return masked(spec, value)
    if spec.type == "user":
        name = display_name(value, lang)
        return f"{name} ({value.username})" if name in shared_names else name
    if spec.type == "link":
        return link_text(value, unique_title)
    if spec.type == "choice" and spec.choices is not None:
        option = spec.choices.option(value)
        return option.label.text(lang) if option else str(value)
    if spec.type == "multi_choice" and spec.choices is not None:
        return "、".join(o.label.text(lang) if (o := spec.choices.option(k)) else str(k) for k in value)
    if spec.type == "boolean":
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if isinstance(value, (Decimal, int, float, datetime.date)):
        return value
    return str(value)


def number_format(spec: FieldSpec) -> str | None:
    """Return the Excel number format of a field's cells, or None for text."""
    if spec.type == "date":
        return "yyyy-mm-dd"
    if spec.type == "datetime":
        return "yyyy-mm-dd hh:mm"
    if spec.type in ("money",):
        return "#,##0.00"
    if spec.type == "percent":
        return '0.00"%"'
    if spec.type == "decimal":
        return "0." + "0" * (spec.scale if spec.scale is not None else 4) if (spec.scale or 4) else "0"
    if spec.type in ("integer", "rating"):
        return "0"
    return None
