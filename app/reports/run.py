"""Run a report for one user through the permission gate: the rows their roles reach with the
`report` verb, only the fields they may see, encrypted values masked unless they may reveal them
(a revealed value is a recorded reveal), and an audit entry for each report generated."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm

from app.audit.log import Entry, append
from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import (
    ADMIN_ROLE,
    FieldAccess,
    field_access,
    own_condition,
    picks_only_self,
    role_keys,
    row_condition,
)
from app.security.users import display_name

from .params import default_value, resolve_params
from .result import BLANK, Cell, Grid, ReportResult, cell_of, number_text, value_text
from .spec import DATE_DEFAULTS, Condition, ParamSpec, ReportBook, ReportSpec, SectionSpec

DEFAULT_ROW_LIMIT = 20_000


class ReportRefused(Exception):
    """The user may not run this report, or not with these values; `text(lang)` says why."""

    status = 403

    def __init__(self, message: Label):
        super().__init__(message.en)
        self.message = message

    def text(self, lang: str) -> str:
        return self.message.text(lang)


class ReportNotFound(ReportRefused):
    status = 404


class ReportTooLarge(ReportRefused):
    status = 413


@dataclass
class Reader:
    """Who runs reports, on which database, in which language and time zone."""

    models: BuiltModels
    session: orm.Session
    user: Any | None  # None: the command line without --as, which reads everything
    user_model: type
    lang: str = "zh"
    zone: ZoneInfo = field(default_factory=lambda: ZoneInfo("Asia/Shanghai"))
    row_limit: int = DEFAULT_ROW_LIMIT
    ip: str | None = None
    _names: dict[int, str] | None = None

    @property
    def now(self) -> datetime.datetime:
        return datetime.datetime.now(self.zone)

    @property
    def today(self) -> datetime.date:
        return self.now.date()

    def access(self, table_key: str) -> FieldAccess:
        return field_access(self.models.schema, table_key, self.user)

    def rows_of(self, table_key: str, verb: str = "read") -> Any | None:
        """Return the condition of the rows the user may `verb`; None for all of them."""
        if self.user is None:
            return None
        return row_condition(self.models, table_key, self.user, verb)

    def names(self) -> dict[int, str]:
        """Return every login's display name by id (a report names salespeople, owners and handlers)."""
        if self._names is None:
            users: Any = self.session.execute(sa.select(self.user_model)).scalars()
            self._names = {u.id: display_name(u, self.lang) for u in users}
        return self._names

    def who(self) -> str:
        if self.user is None:
            return "命令行" if self.lang == "zh" else "command line"
        return display_name(self.user, self.lang)


def may_run(reader: Reader, report: ReportSpec) -> bool:
    """Return True when the user's roles grant `report` on the report's table (admin always may)."""
    if reader.user is None or ADMIN_ROLE in role_keys(reader.user):
        return True
    schema = reader.models.schema
    return any("report" in g.can and "read" in g.can
               for g in (schema.grants_of(r).get(report.table) for r in role_keys(reader.user)) if g is not None)


def reports_for(reader: Reader, book: ReportBook) -> list[ReportSpec]:
    """Return the reports the user may run, in file order."""
    return [r for r in book.reports.values() if may_run(reader, r) and not withheld_fields(reader, r)]


def withheld_fields(reader: Reader, report: ReportSpec) -> list[str]:
    """Return the labels of the fields the report computes with that the user may not see or reveal
    (for product.category: the link here, and the field of the linked table)."""
    schema = reader.models.schema
    withheld = []
    for key in sorted(report.computing_fields()):
        table = schema.table(report.table)
        for part in key.split("."):
            if not table.has_field(part):
                break
            spec = table.field(part)
            if not reader.access(table.key).searches(part):
                withheld.append(spec.label.text(reader.lang))
                break
            table = schema.table(spec.to) if spec.type == "link" and spec.to else table
    return withheld


def column_of(reader: Reader, table: TableSpec, key: str) -> tuple[Any, tuple[Any, Any] | None]:
    """Return the SQL column of a report key and, for a linked table's field (product.category), the
    (linked model, link column) to join it through; system columns (id, created_on) as they are."""
    model: Any = reader.models.model(table.key)
    link, dot, rest = key.partition(".")
    if dot:
        spec = table.field(link)
        target: Any = reader.models.model(spec.to or "")
        target_spec = reader.models.schema.table(spec.to or "").field(rest)
        return (getattr(target, naming.column_name_for(target_spec)),
                (target, getattr(model, naming.column_name_for(spec))))
    return getattr(model, naming.column_name_for(table.field(key)) if table.has_field(key) else key), None


def run_report(reader: Reader, report: ReportSpec, given: dict[str, Any]) -> ReportResult:
    """Return the report generated for the reader's user with the `given` parameters (text or typed);
    ReportRefused when they may not, ParamError for wrong values. Records an audit entry."""
    if not may_run(reader, report):
        raise ReportRefused(Label(f"您的角色没有“{report.label.zh}”报表的权限",
                                  f"Your role may not run the report '{report.label.en}'"))
    withheld = withheld_fields(reader, report)
    if withheld:
        names = "、".join(withheld)
        raise ReportRefused(Label(f"此报表用到了您无权查看的字段：{names}",
                                  f"the report uses fields you may not see: {names}"))
    values = resolve_params(report, given, reader.models.schema, reader.today)
    check_user_params(reader, report, values)
    result = ReportResult(report.key, report.label.text(reader.lang), report.orientation, reader.now,
                          reader.who(), params=shown_params(reader, report, values),
                          description=report.description.text(reader.lang) if report.description else "",
                          lang=reader.lang)
    if report.watermark is not None:
        result.watermark = report.watermark.text(reader.lang).replace("{user}", reader.who())
    if report.kind == "record":
        record_report(reader, report, values["id"], result)
    elif report.kind == "table":
        table_report(reader, report, values, result)
    else:
        from .summary import summary_report
        summary_report(reader, report, values, result)
    audit(reader, Entry("report", report.table, values.get("id") if report.kind == "record" else None,
                        {"report": report.key, "params": {k: plain(v) for k, v in values.items()}}))
    return result


def user_choices(reader: Reader, report: ReportSpec, key: str) -> list[tuple[int, str]]:
    """Return (id, name) of the logins a user parameter may name, by name: the active users of the
    `roles:` of the user field it filters (all active users without), and only the user themselves
    when their rows are reached through that very field (the gate's picks_only_self: a salesperson
    is not shown the list of everyone's logins)."""
    table = reader.models.schema.table(report.table)
    fields = [table.field(c.field) for c in report.where
              if c.value.param == key and table.has_field(c.field) and table.field(c.field).type == "user"]
    model: Any = reader.user_model
    query = sa.select(model).where(model.active.is_(True))
    if reader.user is not None and any(picks_only_self(reader.models, table.key, f.key, reader.user) for f in fields):
        query = query.where(model.id == reader.user.id)
    roles = {role for f in fields for role in f.roles}
    if roles:
        query = query.where(model.roles.any(model.roles.property.mapper.class_.name.in_(roles)))
    names = reader.names()
    return sorted(((u.id, names.get(u.id, u.username)) for u in reader.session.execute(query).scalars()),
                  key=lambda pair: pair[1])


def check_user_params(reader: Reader, report: ReportSpec, values: dict[str, Any]) -> None:
    """Refuse a user parameter naming a login the user may not choose there (see user_choices)."""
    from .params import ParamError
    for param in report.params:
        chosen = values.get(param.key)
        if param.type == "user" and chosen is not None and chosen not in dict(user_choices(reader, report, param.key)):
            raise ParamError([(param.key, Label(f"“{chosen}”不是可选的用户", f"'{chosen}' is not a user to choose"))])


def shown_params(reader: Reader, report: ReportSpec, values: dict[str, Any]) -> list[tuple[str, str]]:
    """Return (label, value) of each parameter as the report's heading prints it."""
    shown = []
    for param in report.params:
        value = values.get(param.key)
        if report.kind == "record" or value is None:
            continue
        if param.type == "user":
            text = reader.names().get(value, f"#{value}")
        elif param.type == "choice":
            option = reader.models.schema.choices[param.options or ""].option(value)
            text = option.label.text(reader.lang) if option else str(value)
        elif param.type == "link":
            record = reader.session.get(reader.models.model(param.to or ""), value)
            text = str(record) if record is not None else f"#{value}"
        else:
            text = str(value)
        shown.append((param.label.text(reader.lang), text))
    return shown


def plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime.date) else value


def audit(reader: Reader, entry: Entry) -> None:
    """Chain one entry for the reader's user onto the audit log, committed now."""
    user = reader.user
    entry = Entry(entry.action, entry.table_key, entry.record_id, entry.changes,
                  getattr(user, "id", None), getattr(user, "username", None) or "(command line)", reader.ip)
    append(reader.session.connection(), [entry])
    reader.session.commit()


def condition_sql(reader: Reader, table: TableSpec, condition: Condition, values: dict[str, Any]) -> Any | None:
    """Return the SQL of one `where:` condition, or None when it names a parameter left empty."""
    column, through = column_of(reader, table, condition.field)
    operand = param_value(reader, condition.value.param, values) if condition.value.param else condition.value.literal
    if operand is None or operand == []:
        return None
    op = condition.op
    if op == "empty":
        test = column.is_(None) if operand else column.is_not(None)
    elif op == "within_days":
        test = sa.and_(column.is_not(None), column <= reader.today + datetime.timedelta(days=int(operand)))
    elif op in ("in", "not_in"):
        items = operand if isinstance(operand, list) else [operand]
        test = column.in_(items) if op == "in" else sa.or_(column.not_in(items), column.is_(None))
    else:
        compare = {"=": column.__eq__, "!=": column.__ne__, "<": column.__lt__, "<=": column.__le__,
                   ">": column.__gt__, ">=": column.__ge__}[op]
        test = compare(operand) if op != "!=" else sa.or_(compare(operand), column.is_(None))
    if through is None:
        return test
    target, link = through
    return link.in_(sa.select(target.id).where(test))


def param_value(reader: Reader, name: str, values: dict[str, Any]) -> Any:
    """Return a parameter's value, or a built-in one ($today, $start_of_month, ...) worked out for today."""
    if name in values or name not in DATE_DEFAULTS:
        return values.get(name)
    return default_value(ParamSpec(name, "date", Label(name, name), name), reader.today)


def where_of(reader: Reader, report: ReportSpec, values: dict[str, Any], verb: str = "report") -> list[Any]:
    """Return the report's conditions with the gate's row rule for the user (and `mine:`, their own rows)."""
    table = reader.models.schema.table(report.table)
    conditions = [c for c in (condition_sql(reader, table, cond, values) for cond in report.where) if c is not None]
    reach = reader.rows_of(report.table, verb)
    if report.mine and reader.user is not None:
        conditions.append(own_condition(reader.models, report.table, report.mine.split("."), reader.user.id))
    return conditions + ([reach] if reach is not None else [])


# -- record reports ------------------------------------------------------------------------


def record_report(reader: Reader, report: ReportSpec, record_id: int, result: ReportResult) -> None:
    """Fill `result` with the record's fields and one grid per child table the user may read."""
    schema = reader.models.schema
    table = schema.table(report.table)
    model: Any = reader.models.model(table.key)
    reach = reader.rows_of(table.key, "report")
    query = sa.select(model).where(model.id == record_id)
    record = reader.session.execute(query if reach is None else query.where(reach)).scalar_one_or_none()
    if record is None:
        raise ReportNotFound(Label(f"没有编号为 {record_id} 的{table.label.zh}，或您无权查看",
                                   f"there is no {table.label.en.lower()} {record_id}, or you may not see it"))
    result.title = f"{result.title} · {record}"
    access = reader.access(table.key)
    shown = [table.field(k) for k in (report.columns or tuple(f.key for f in table.fields))
             if table.has_field(k) and access.shows(k)]
    result.facts = [(spec.label.text(reader.lang), value_text(spec, stored(record, spec), reader.lang,
                                                              reader.names(), spec.key in access.masked))
                    for spec in shown]
    note_reveals(reader, table, shown, access, [record])
    for section in report.sections:
        grid = section_grid(reader, section, record_id)
        if grid is not None:
            result.grids.append(grid)


def section_grid(reader: Reader, section: SectionSpec, record_id: int) -> Grid | None:
    """Return the grid of the children linking to the record, None when the user may not read them."""
    schema = reader.models.schema
    child = schema.table(section.table)
    if reader.user is not None and ADMIN_ROLE not in role_keys(reader.user) and not any(
            "read" in g.can for g in (schema.grants_of(r).get(child.key) for r in role_keys(reader.user)) if g):
        return None
    model: Any = reader.models.model(child.key)
    link = getattr(model, naming.column_name_for(child.field(section.via)))
    conditions = [link == record_id]
    reach = reader.rows_of(child.key)
    if reach is not None:
        conditions.append(reach)
    query = sa.select(model).where(*conditions).order_by(*order_clauses(model, child, section.order_by))
    items = list(reader.session.execute(query.limit(reader.row_limit + 1)).scalars())
    title = (section.label or child.label).text(reader.lang)
    if len(items) > reader.row_limit:
        raise ReportTooLarge(too_many(reader.row_limit, title))
    return rows_grid(reader, child, section.columns, section.totals, items, title, group_by=None)


def order_clauses(model: Any, table: TableSpec, order_by: tuple[str, ...]) -> list[Any]:
    clauses = []
    for key in order_by or ((table.order_by,) if table.order_by else ()):
        name = key.removeprefix("-")
        column = getattr(model, naming.column_name_for(table.field(name)) if table.has_field(name) else name)
        clauses.append(column.desc() if key.startswith("-") else column.asc())
    return clauses + [model.id.asc()]


def too_many(limit: int, what: str) -> Label:
    return Label(f"“{what}”超过 {limit:,} 行的上限；请缩小日期范围或增加筛选条件后再生成",
                 f"'{what}' has more than the limit of {limit:,} rows; narrow the dates or add a filter")


def note_reveals(reader: Reader, table: TableSpec, shown: list[FieldSpec], access: FieldAccess,
                 items: list[Any]) -> None:
    """Record a reveal for the encrypted values printed in plain text to a user (not the command line)."""
    if reader.user is None:
        return
    fields = [f.key for f in shown if f.seals_value and f.key not in access.masked]
    records = [i.id for i in items if any(getattr(i, k) not in (None, "") for k in fields)]
    if fields and records:
        audit(reader, Entry("reveal", table.key, records[0] if len(records) == 1 else None,
                            {"fields": fields, "records": records}))


# -- table reports -------------------------------------------------------------------------


def table_report(reader: Reader, report: ReportSpec, values: dict[str, Any], result: ReportResult,
                 verb: str = "report") -> None:
    """Fill `result` with the rows the user may reach, sorted, grouped with subtotals, and the totals."""
    table = reader.models.schema.table(report.table)
    model: Any = reader.models.model(table.key)
    conditions = where_of(reader, report, values, verb)
    count = reader.session.execute(sa.select(sa.func.count()).select_from(model).where(*conditions)).scalar_one()
    limit = min(report.row_limit or reader.row_limit, reader.row_limit)
    if count > limit and report.limit is None:
        raise ReportTooLarge(Label(f"此报表有 {count:,} 行，超过 {limit:,} 行的上限；请缩小日期范围或增加筛选条件",
                                   f"the report has {count:,} rows, more than the limit of {limit:,}; "
                                   "narrow the dates or add a filter"))
    order = ((report.group_by,) if report.group_by else ()) + report.order_by
    query = sa.select(model).where(*conditions).order_by(*order_clauses(model, table, order))
    if report.limit is not None:
        query = query.limit(min(report.limit, limit))
    relations = [getattr(model, k) for k in report.columns if table.has_field(k) and table.field(k).type == "link"]
    items = list(reader.session.execute(query.options(*(orm.selectinload(r) for r in relations))).scalars())
    result.grids.append(rows_grid(reader, table, report.columns, report.totals, items, "",
                                  group_by=report.group_by))


def rows_grid(reader: Reader, table: TableSpec, columns: tuple[str, ...], totals: tuple[str, ...], items: list[Any],
              title: str, group_by: str | None) -> Grid:
    """Return the grid of `items` with the columns the user may see, a subtotal row each time the
    `group_by` value changes, and a total row (the row count and the sums of `totals`)."""
    access = reader.access(table.key)
    specs = [table.field(k) for k in columns if table.has_field(k) and access.shows(k)]
    sums = [s.key for s in specs if s.key in totals]
    grid = Grid(title, [s.label.text(reader.lang) for s in specs],
                numeric=[s.type in ("integer", "decimal", "money", "percent", "rating") for s in specs])
    if not items:
        grid.note = "无记录" if reader.lang == "zh" else "no records"
    group_value: Any = object()
    group_items: list[Any] = []
    group_spec = table.field(group_by) if group_by else None
    for item in items:
        value = getattr(item, naming.column_name_for(group_spec)) if group_spec else None
        if group_by and value != group_value and group_items:
            grid.add(total_cells(reader, specs, sums, group_items, subtotal=True), "subtotal")
            group_items = []
        group_value = value
        group_items.append(item)
        grid.add([cell_of(s, stored(item, s), reader.lang, reader.names(), s.key in access.masked) for s in specs])
    if group_by and group_items:
        grid.add(total_cells(reader, specs, sums, group_items, subtotal=True), "subtotal")
    if items and (sums or group_by):
        grid.add(total_cells(reader, specs, sums, items, subtotal=False), "total")
    note_reveals(reader, table, specs, access, items)
    return grid


def stored(item: Any, spec: FieldSpec) -> Any:
    """Return a field's value on a record; for a user field the login's id (names come from one query)."""
    return getattr(item, naming.column_name_for(spec) if spec.type == "user" else spec.key)


def total_cells(reader: Reader, specs: list[FieldSpec], sums: list[str], items: list[Any],
                subtotal: bool) -> list[Cell]:
    """Return a total row: its heading and count in the first column, the sums under their columns."""
    zh = reader.lang == "zh"
    word = ("小计" if zh else "Subtotal") if subtotal else ("合计" if zh else "Total")
    cells = []
    for n, spec in enumerate(specs):
        if spec.key in sums:
            total = sum((Decimal(str(getattr(i, spec.key))) for i in items if getattr(i, spec.key) is not None),
                        Decimal(0))
            cells.append(Cell(number_text(total, spec), total))
        elif n == 0:
            cells.append(Cell(f"{word}（{len(items)} 条）" if zh else f"{word} ({len(items)})"))
        else:
            cells.append(Cell(""))
    if specs and specs[0].key in sums:  # the heading needs a column of its own
        cells[0] = Cell(f"{word} {cells[0].text}", cells[0].value)
    return cells or [Cell(BLANK)]
