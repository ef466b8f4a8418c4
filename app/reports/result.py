"""A generated report as plain data — what the PDF, the HTML preview and the spreadsheet all print —
and the one way a stored value is written in a report."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.models.encryption import masked
from app.schema.model import FieldSpec

BLANK = "—"


@dataclass(frozen=True)
class Cell:
    """One printed value: its text and, for numbers and dates, the value itself (numbers are
    right-aligned, and both are typed cells in a workbook)."""

    text: str
    value: Any = None

    @property
    def is_number(self) -> bool:
        return isinstance(self.value, (int, float, Decimal)) and not isinstance(self.value, bool)


@dataclass
class Grid:
    """A printed table: headings, rows of cells, and which rows are subtotals or the total."""

    title: str
    headers: list[str]
    rows: list[list[Cell]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # per row: "row", "subtotal" or "total"
    numeric: list[bool] = field(default_factory=list)  # per column: right-aligned
    note: str = ""  # printed under the heading (e.g. "no records")

    def add(self, cells: list[Cell], kind: str = "row") -> None:
        self.rows.append(cells)
        self.kinds.append(kind)


@dataclass
class ChartData:
    """A chart: one series per name over the categories, drawn the same in the PDF and on screens."""

    type: str
    title: str
    categories: list[str]
    series: list[tuple[str, list[float | None]]]  # None: no rows in that group (a line has a gap there)


@dataclass
class ReportResult:
    """Everything a report prints, already through the permission gate and in the user's language."""

    key: str
    title: str
    orientation: str
    generated_at: datetime.datetime  # in CRM_TIMEZONE
    generated_by: str
    params: list[tuple[str, str]] = field(default_factory=list)
    facts: list[tuple[str, str]] = field(default_factory=list)  # record: label and value of each field
    grids: list[Grid] = field(default_factory=list)
    chart: ChartData | None = None
    watermark: str = ""
    description: str = ""
    lang: str = "zh"


def money_text(value: Decimal | float | int, scale: int = 2) -> str:
    """Return a number with thousands separators and `scale` decimals: 1,234,567.50."""
    return f"{Decimal(value):,.{scale}f}"


def number_text(value: Any, spec: FieldSpec | None = None) -> str:
    """Return a number as a report prints it: money and decimals to their scale, averages to 2 places."""
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    scale = spec.scale if spec is not None and spec.scale is not None else 2
    if spec is not None and spec.type == "money":
        scale = 2
    if spec is not None and spec.type == "decimal" and Decimal(value) == Decimal(value).to_integral_value():
        scale = 0  # 1,200 kg rather than 1,200.000 kg
    return money_text(value, scale)


def value_text(spec: FieldSpec, value: Any, lang: str, names: dict[int, str], shown_masked: bool = False) -> str:
    """Return how a report writes a stored value: option labels, 是/否, names, local dates, numbers."""
    if value is None or value == "" or value == []:
        return BLANK
    if shown_masked:
        return masked(spec, value) or BLANK
    if spec.type == "user":
        user_id = value if isinstance(value, int) else getattr(value, "id", None)
        return names.get(user_id, f"#{user_id}") if isinstance(user_id, int) else BLANK
    if spec.type == "link":
        return str(value)
    if spec.choices is not None:
        keys = value if isinstance(value, list) else [value]
        labels = [o.label.text(lang) if (o := spec.choices.option(k)) is not None else str(k) for k in keys]
        return "、".join(labels) if lang == "zh" else ", ".join(labels)
    if isinstance(value, bool):
        return ("是" if value else "否") if lang == "zh" else ("yes" if value else "no")
    if spec.type == "percent":
        return f"{number_text(value, spec)}%"
    if isinstance(value, (int, Decimal, float)):
        return number_text(value, spec)
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime.date):
        return value.isoformat()
    return str(value)


def cell_of(spec: FieldSpec, value: Any, lang: str, names: dict[int, str], shown_masked: bool = False) -> Cell:
    """Return the printed cell of a stored value (numbers keep their value, masked ones do not)."""
    kept = spec.type in ("integer", "decimal", "money", "percent", "rating", "date") and not shown_masked
    return Cell(value_text(spec, value, lang, names, shown_masked), value if kept else None)
