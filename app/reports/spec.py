"""Validated, immutable report definitions built from the YAML under `reports/`.

Three kinds: a `record` (one record with chosen fields and its child tables), a `table` (rows with
parameters, grouping, subtotals and totals) and a `summary` (measures grouped by one or two
dimensions, aggregated in SQL, as a table and a chart). See docs/reports.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.schema.model import Label

KINDS = ("record", "table", "summary")
PARAM_TYPES = ("date", "integer", "choice", "user", "link", "string")
DATE_DEFAULTS = ("today", "start_of_month", "end_of_month", "start_of_year", "last_12_months")
OPERATORS = ("=", "!=", "<", "<=", ">", ">=", "in", "not_in", "empty", "within_days")
MEASURES = ("count", "sum", "avg", "min", "max")
DATE_STEPS = ("month", "quarter", "year", "age")
CHARTS = ("bar", "stacked_bar", "line", "pie")
ORIENTATIONS = ("portrait", "landscape")
NUMERIC_TYPES = ("integer", "decimal", "money", "percent", "rating")
AGE_BUCKETS = (30, 60, 90)


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a report: what the form asks for and what it is when left empty."""

    key: str
    type: str
    label: Label
    default: Any = None  # a value of the type, or for dates one of DATE_DEFAULTS
    required: bool = False
    options: str | None = None  # choice: the option list
    to: str | None = None  # link: the table
    line: int = 0


@dataclass(frozen=True)
class Value:
    """A condition's operand: a literal, or the value of a parameter (`$name` in the YAML)."""

    literal: Any = None
    param: str | None = None


@dataclass(frozen=True)
class Condition:
    """`field op value`; a condition on a parameter left empty does not apply."""

    field: str
    op: str
    value: Value
    line: int = 0


@dataclass(frozen=True)
class Dimension:
    """What a summary groups by: a field (a link by its title, a user by name), a date by a step."""

    field: str
    by: str | None = None  # a DATE_STEPS member for a date field
    as_of: Value = Value()  # age: the day ages are counted to (a date parameter)
    label: Label | None = None


@dataclass(frozen=True)
class Measure:
    """count, or sum/avg/min/max of a number field, with its column heading."""

    function: str
    field: str | None
    label: Label


@dataclass(frozen=True)
class ChartSpec:
    type: str
    measure: int = 0  # which measure the chart draws


@dataclass(frozen=True)
class SectionSpec:
    """A child table in a record report: the children linking to the record through `via`."""

    table: str
    via: str
    columns: tuple[str, ...]
    order_by: tuple[str, ...] = ()
    totals: tuple[str, ...] = ()
    label: Label | None = None


@dataclass(frozen=True)
class ReportSpec:
    """One report as declared, after every check against the schema."""

    key: str
    label: Label
    kind: str
    table: str
    orientation: str = "portrait"
    description: Label | None = None
    watermark: Label | None = None
    params: tuple[ParamSpec, ...] = ()
    where: tuple[Condition, ...] = ()
    columns: tuple[str, ...] = ()  # table: the columns; record: the record's fields
    order_by: tuple[str, ...] = ()
    group_by: str | None = None  # table: subtotal rows per value of this column
    totals: tuple[str, ...] = ()
    sections: tuple[SectionSpec, ...] = ()
    dimensions: tuple[Dimension, ...] = ()
    measures: tuple[Measure, ...] = ()
    chart: ChartSpec | None = None
    pivot: bool = False  # summary over two dimensions: the second across, one column per value
    row_limit: int | None = None
    mine: str | None = None  # only the user's own rows: a user field of the table, or a path (customer.owner)
    limit: int | None = None  # table: print only the first rows (a dashboard's latest five)
    file: str = ""
    line: int = 0

    def param(self, key: str) -> ParamSpec:
        """Return the parameter called `key`; KeyError if there is none."""
        for p in self.params:
            if p.key == key:
                return p
        raise KeyError(key)

    def computing_fields(self) -> set[str]:
        """Return the report table's fields without which it cannot be computed at all: its conditions,
        dimensions and measures (a column the user may not see is left out instead)."""
        return ({c.field for c in self.where} | {d.field for d in self.dimensions}
                | {m.field for m in self.measures if m.field})


WIDGET_SHOWS = ("number", "chart", "table")


@dataclass(frozen=True)
class WidgetSpec:
    """One card of a dashboard: a number, a chart or a small table, computed like a report."""

    key: str
    show: str  # one of WIDGET_SHOWS
    report: ReportSpec  # a summary (number, chart) or a table, with the widget's label


@dataclass(frozen=True)
class DashboardSpec:
    """The home page of one role: its widgets in order."""

    role: str
    widgets: tuple[WidgetSpec, ...]
    file: str = ""
    line: int = 0

    def widget(self, key: str) -> WidgetSpec:
        for w in self.widgets:
            if w.key == key:
                return w
        raise KeyError(key)


@dataclass(frozen=True)
class ReportBook:
    """Every report of the reports folder, in file order, and the dashboards by role."""

    reports: dict[str, ReportSpec] = field(default_factory=dict)
    source_dir: str = ""
    dashboards: dict[str, DashboardSpec] = field(default_factory=dict)

    def report(self, key: str) -> ReportSpec:
        return self.reports[key]
