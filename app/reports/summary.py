"""Summary reports: measures grouped by one or two dimensions, aggregated in SQL (one query per level
of totals, so an average total is the true average, not an average of averages)."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.schema import naming
from app.schema.model import SchemaSpec, TableSpec

from .load import field_at
from .result import BLANK, Cell, ChartData, Grid, ReportResult, number_text
from .run import Reader, column_of, where_of
from .spec import AGE_BUCKETS, Dimension, Measure, ReportSpec

NO_DATE = "~"  # sorts after every month, quarter and year


Levels = dict[int, list[tuple[Any, ...]]]  # rows per number of dimensions grouped by (-1: the second alone)
Labels = list[dict[Any, tuple[Any, str]]]  # per dimension: value -> (sort key, printed label)


def summarise(reader: Reader, report: ReportSpec, values: dict[str, Any],
              verb: str = "report") -> tuple[Levels, Labels]:
    """Return the summary's aggregates at every level of totals, and the labels of the dimensions' values."""
    table = reader.models.schema.table(report.table)
    dims = [dimension_sql(reader, table, d, values) for d in report.dimensions]
    conditions = where_of(reader, report, values, verb)
    levels = {n: aggregate(reader, table, report.measures, dims[:n], conditions) for n in range(len(dims) + 1)}
    if len(dims) == 2:
        levels[-1] = aggregate(reader, table, report.measures, dims[1:], conditions)
    labels = [labeller(reader, table, d, [row[n] for row in levels[len(dims)]])
              for n, d in enumerate(report.dimensions)]
    return levels, labels


def summary_report(reader: Reader, report: ReportSpec, values: dict[str, Any], result: ReportResult) -> None:
    """Fill `result` with the summary's grid (long, or pivoted) and its chart."""
    table = reader.models.schema.table(report.table)
    levels, labels = summarise(reader, report, values)
    dims = report.dimensions
    if len(dims) == 2 and report.pivot:
        result.grids.append(pivot_grid(reader, table, report, levels, labels))
    else:
        result.grids.append(long_grid(reader, table, report, levels, labels))
    if report.chart is not None:
        result.chart = chart_of(reader, table, report, levels, labels)


# -- SQL -----------------------------------------------------------------------------------


def group_condition(reader: Reader, table: TableSpec, dim: Dimension, values: dict[str, Any], value: Any) -> Any:
    """Return the condition selecting the rows of one group of a dimension (for a list filtered to a bar)."""
    expression, through = dimension_sql(reader, table, dim, values)
    test = expression.is_(None) if value is None else expression == value
    if through is None:
        return test
    target, link = through
    return link.in_(sa.select(target.id).where(test)) if value is not None else sa.or_(
        link.is_(None), link.in_(sa.select(target.id).where(test)))


def dimension_sql(reader: Reader, table: TableSpec, dim: Dimension, values: dict[str, Any]) -> tuple[Any, Any]:
    """Return the SQL expression a dimension groups by (the column, a month text, or an age bucket),
    and the (linked model, link column) it needs joined, if any."""
    column, through = column_of(reader, table, dim.field)
    if dim.by is None:
        return column, through
    if dim.by == "age":
        as_of = values.get(dim.as_of.param or "") or reader.today
        cases = [(column.is_(None), -1), (column >= as_of, 0)]
        cases += [(column >= as_of - datetime.timedelta(days=days), n + 1) for n, days in enumerate(AGE_BUCKETS)]
        return sa.case(*cases, else_=len(AGE_BUCKETS) + 1), through
    return date_step(reader.session.get_bind().dialect.name, column, dim.by), through


def date_step(dialect: str, column: Any, step: str) -> Any:
    """Return a date as the text of its month (2026-03), quarter (2026-Q1) or year (2026), in SQL."""
    if dialect == "sqlite":
        year = sa.func.strftime("%Y", column)
        if step == "month":
            return sa.func.strftime("%Y-%m", column)
        quarter = (sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) / 3
        return year if step == "year" else year + "-Q" + sa.cast(quarter, sa.String)
    if dialect == "postgresql":
        return sa.func.to_char(column, {"month": "YYYY-MM", "quarter": 'YYYY-"Q"Q', "year": "YYYY"}[step])
    if step == "month":
        return sa.func.date_format(column, "%Y-%m")
    if step == "year":
        return sa.cast(sa.func.year(column), sa.String(4))
    return sa.func.concat(sa.func.year(column), "-Q", sa.func.quarter(column))


def aggregate(reader: Reader, table: TableSpec, measures: tuple[Measure, ...], dims: list[tuple[Any, Any]],
              conditions: list[Any]) -> list[tuple[Any, ...]]:
    """Return one row per combination of `dims` ((expression, join)): the dimension values, then each
    measure; a linked table's field is reached through an outer join (rows without the link count)."""
    model: Any = reader.models.model(table.key)
    columns = []
    for measure in measures:
        if measure.function == "count":
            columns.append(sa.func.count(model.id))
        else:
            field = getattr(model, naming.column_name_for(table.field(measure.field or "")))
            columns.append(getattr(sa.func, measure.function)(field))
    labelled = [d.label(f"d{n}") for n, (d, _) in enumerate(dims)]
    query = sa.select(*labelled, *columns).select_from(model)
    for target in {through[0]: through for _, through in dims if through is not None}.values():
        query = query.outerjoin(target[0], target[1] == target[0].id)
    query = query.where(*conditions)
    if labelled:
        query = query.group_by(*(d for d, _ in dims))
    return [tuple(row) for row in reader.session.execute(query)]


# -- labels and order ----------------------------------------------------------------------


def labeller(reader: Reader, table: TableSpec, dim: Dimension, keys: list[Any]) -> dict[Any, tuple[Any, str]]:
    """Return, per dimension value, (sort key, printed label): option order and labels, names,
    linked records' titles, months in order, ages from 未到期 to 90天以上."""
    zh = reader.lang == "zh"
    spec = field_at(reader.models.schema, table, dim.field)
    found: dict[Any, tuple[Any, str]] = {}
    empty = "（空）" if zh else "(none)"
    if dim.by == "age":
        names = age_labels(zh)
        return {k: (k, names[k]) for k in keys}
    if spec is not None and spec.type == "link":
        model: Any = reader.models.model(spec.to or "")
        ids = [k for k in keys if k is not None]
        titles = {r.id: str(r) for r in reader.session.execute(sa.select(model).where(model.id.in_(ids))).scalars()}
        found = {k: ((0, titles.get(k, f"#{k}")), titles.get(k, f"#{k}")) for k in ids}
    elif spec is not None and spec.type == "user":
        names = reader.names()
        found = {k: ((0, names.get(k, f"#{k}")), names.get(k, f"#{k}")) for k in keys if k is not None}
    elif spec is not None and spec.choices is not None:
        order = {o.key: n for n, o in enumerate(spec.choices.options)}
        for k in keys:
            option = spec.choices.option(k)
            found[k] = ((order.get(k, len(order)), str(k)), option.label.text(reader.lang) if option else str(k))
    elif spec is not None and spec.type == "boolean":
        words = ("是", "否") if zh else ("yes", "no")
        found = {k: ((0, not k), words[0] if k else words[1]) for k in keys if k is not None}
    else:
        found = {k: ((0, k), str(k)) for k in keys if k is not None}
    if None in keys:
        found[None] = ((1, NO_DATE), empty)
    return found


def age_labels(zh: bool) -> dict[int, str]:
    """Return the age buckets' labels: 未到期, 1–30 天, ..., 90天以上, and 无到期日 for none."""
    names = {-1: "无到期日" if zh else "no due date", 0: "未到期" if zh else "not yet due"}
    low = 1
    for n, days in enumerate(AGE_BUCKETS):
        names[n + 1] = f"{low}–{days} 天" if zh else f"{low}–{days} days"
        low = days + 1
    names[len(AGE_BUCKETS) + 1] = f"{AGE_BUCKETS[-1]}天以上" if zh else f"over {AGE_BUCKETS[-1]} days"
    return names


def ordered(labels: dict[Any, tuple[Any, str]]) -> list[Any]:
    return sorted(labels, key=lambda k: labels[k][0])


def measure_cell(measure: Measure, table: TableSpec, value: Any) -> Cell:
    """Return an aggregated value as printed: counts whole, averages to 2 places, sums like the field."""
    if value is None:
        return Cell(BLANK)
    spec = table.field(measure.field) if measure.field else None
    number = Decimal(str(value))
    if measure.function == "count":
        return Cell(f"{int(value):,}", int(value))
    if measure.function == "avg":
        return Cell(number_text(number.quantize(Decimal("0.01"))), number)
    return Cell(number_text(number, spec), number)


# -- grids ---------------------------------------------------------------------------------


def long_grid(reader: Reader, table: TableSpec, report: ReportSpec, levels: dict[int, list[tuple[Any, ...]]],
              labels: list[dict[Any, tuple[Any, str]]]) -> Grid:
    """Return one row per group (and per pair of groups, with a subtotal under each first value)."""
    lang, width = reader.lang, len(report.dimensions)
    headers = [dimension_label(reader.models.schema, table, d, lang) for d in report.dimensions] + [m.label.text(lang)
                                                                                for m in report.measures]
    grid = Grid("", headers, numeric=[False] * width + [True] * len(report.measures))
    rows = {tuple(r[:width]): r[width:] for r in levels[width]}
    subtotals = {r[0]: r[1:] for r in levels.get(1, [])} if width == 2 else {}
    for first in ordered(labels[0]):
        if width == 1:
            grid.add([Cell(labels[0][first][1])] + measures_of(report, table, rows[(first,)]))
            continue
        for second in ordered(labels[1]):
            if (first, second) in rows:
                grid.add([Cell(labels[0][first][1]), Cell(labels[1][second][1])]
                         + measures_of(report, table, rows[(first, second)]))
        zh = lang == "zh"
        grid.add([Cell(labels[0][first][1]), Cell("小计" if zh else "Subtotal")]
                 + measures_of(report, table, subtotals[first]), "subtotal")
    if not rows:
        grid.note = "无记录" if lang == "zh" else "no records"
    elif levels[0]:
        grid.add([Cell("合计" if lang == "zh" else "Total")] + [Cell("")] * (width - 1)
                 + measures_of(report, table, levels[0][0]), "total")
    return grid


def measures_of(report: ReportSpec, table: TableSpec, values: tuple[Any, ...]) -> list[Cell]:
    return [measure_cell(m, table, v) for m, v in zip(report.measures, values, strict=True)]


def pivot_grid(reader: Reader, table: TableSpec, report: ReportSpec, levels: dict[int, list[tuple[Any, ...]]],
               labels: list[dict[Any, tuple[Any, str]]]) -> Grid:
    """Return the first measure with the first dimension down and the second across, totals both ways."""
    lang, measure = reader.lang, report.measures[0]
    across = ordered(labels[1])
    total_word = "合计" if lang == "zh" else "Total"
    headers = ([dimension_label(reader.models.schema, table, report.dimensions[0], lang)]
               + [labels[1][k][1] for k in across] + [total_word])
    grid = Grid(measure.label.text(lang), headers, numeric=[False] + [True] * (len(across) + 1))
    cells = {(r[0], r[1]): r[2] for r in levels[2]}
    row_totals = {r[0]: r[1] for r in levels[1]}
    column_totals = {r[0]: r[1] for r in levels[-1]}
    for down in ordered(labels[0]):
        grid.add([Cell(labels[0][down][1])] + [measure_cell(measure, table, cells.get((down, k))) for k in across]
                 + [measure_cell(measure, table, row_totals.get(down))])
    if not cells:
        grid.note = "无记录" if lang == "zh" else "no records"
    else:
        grid.add([Cell(total_word)] + [measure_cell(measure, table, column_totals.get(k)) for k in across]
                 + [measure_cell(measure, table, levels[0][0][0])], "total")
    return grid


def dimension_label(schema: SchemaSpec, table: TableSpec, dim: Dimension, lang: str) -> str:
    if dim.label is not None:
        return dim.label.text(lang)
    spec = field_at(schema, table, dim.field)
    base = spec.label.text(lang) if spec is not None else dim.field
    if dim.by in (None, "age"):
        return ("账龄" if lang == "zh" else "Age") if dim.by == "age" else base
    step = {"month": ("月份", "month"), "quarter": ("季度", "quarter"), "year": ("年份", "year")}[dim.by]
    return f"{base}（{step[0]}）" if lang == "zh" else f"{base} ({step[1]})"


def number_or_none(value: Any) -> float | None:
    """Return an aggregate for a chart; None where a group has no rows (a gap in a line, not a 0)."""
    return None if value is None else float(value)


def chart_of(reader: Reader, table: TableSpec, report: ReportSpec, levels: dict[int, list[tuple[Any, ...]]],
             labels: list[dict[Any, tuple[Any, str]]]) -> ChartData:
    """Return the chart's data: categories from the first dimension (the second's values as series)."""
    assert report.chart is not None
    index = report.chart.measure
    measure = report.measures[index]
    width = len(report.dimensions)
    # time runs along the axis: with a date dimension second (type by month), the months are the categories
    flip = width == 2 and report.dimensions[1].by in ("month", "quarter", "year")
    first, second = (1, 0) if flip else (0, 1)
    categories = ordered(labels[first])
    if width == 1:
        values = {r[0]: r[1 + index] for r in levels[1]}
        series = [(measure.label.text(reader.lang), [number_or_none(values.get(k)) for k in categories])]
    else:
        values = {(r[first], r[second]): r[2 + index] for r in levels[2]}
        series = [(labels[second][s][1], [number_or_none(values.get((k, s))) for k in categories])
                  for s in ordered(labels[second])]
    title = measure.label.text(reader.lang)
    return ChartData(report.chart.type, title, [labels[first][k][1] for k in categories], series)
