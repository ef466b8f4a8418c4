"""Role dashboards: each widget of the user's roles' dashboards computed like a report, through the
same gate (the rows the user reads, `mine:` their own), as a number, a chart or a small table, with
what a click on it opens: the list of the rows it counts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.security.gate import ADMIN_ROLE, role_keys

from .result import Cell, ChartData, Grid, ReportResult
from .run import Reader, table_report, where_of, withheld_fields
from .spec import DashboardSpec, ReportBook, WidgetSpec
from .summary import chart_of, group_condition, long_grid, measure_cell, ordered, summarise


@dataclass
class WidgetResult:
    """What one widget shows to one user; `groups` are (label, value) of its chart's or table's groups."""

    role: str
    key: str
    label: str
    show: str
    table: str
    number: Cell | None = None
    chart: ChartData | None = None
    grid: Grid | None = None
    groups: list[tuple[str, Any]] = field(default_factory=list)


def dashboards_for(reader: Reader, book: ReportBook) -> list[DashboardSpec]:
    """Return the dashboards of the user's roles, in the order their roles are listed."""
    if reader.user is None:
        return []
    roles = role_keys(reader.user)
    return [book.dashboards[r] for r in roles if r in book.dashboards]


def may_see(reader: Reader, widget: WidgetSpec) -> bool:
    """Return True when the user reads the widget's table and sees every field it computes with."""
    report = widget.report
    if reader.user is None or ADMIN_ROLE in role_keys(reader.user):
        return True
    schema = reader.models.schema
    reads = any("read" in g.can for g in (schema.grants_of(r).get(report.table) for r in role_keys(reader.user)) if g)
    return reads and not withheld_fields(reader, report)


def run_widget(reader: Reader, role: str, widget: WidgetSpec) -> WidgetResult:
    """Return the widget computed for the reader's user (the rows they read, like the lists)."""
    report = widget.report
    result = WidgetResult(role, widget.key, report.label.text(reader.lang), widget.show, report.table)
    if widget.show == "table":
        holder = ReportResult(report.key, result.label, "portrait", reader.now, reader.who(), lang=reader.lang)
        table_report(reader, report, {}, holder, verb="read")
        result.grid = holder.grids[0]
        return result
    levels, labels = summarise(reader, report, {}, verb="read")
    table = reader.models.schema.table(report.table)
    if widget.show == "number":
        result.number = measure_cell(report.measures[0], table, levels[0][0][0] if levels[0] else None)
        return result
    result.chart = chart_of(reader, table, report, levels, labels)
    result.grid = long_grid(reader, table, report, levels, labels)
    result.groups = [(labels[0][k][1], k) for k in ordered(labels[0])]
    return result


def widget_conditions(reader: Reader, widget: WidgetSpec, group: Any = None, grouped: bool = False) -> list[Any]:
    """Return the SQL conditions of the rows a widget counts (and of one of its groups): what the list
    opened from it shows, through the same gate as the list itself."""
    report = widget.report
    conditions = where_of(reader, report, {}, verb="read")
    if grouped and report.dimensions:
        table = reader.models.schema.table(report.table)
        conditions.append(group_condition(reader, table, report.dimensions[0], {}, group))
    return conditions
