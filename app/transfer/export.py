"""Export a table's rows as .xlsx or .csv, through the permission gate: the rows the user may export,
the fields they see, encrypted fields masked unless they may reveal them (then a recorded reveal),
and an audit entry of every export. Written streaming: openpyxl's write-only mode, rows a batch at a
time (`yield_per`), so memory stays flat however many rows there are.
"""
from __future__ import annotations

import csv
import datetime
import io
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.audit.log import Entry, append
from app.models.build import BuiltModels
from app.models.colours import Painted, colours_of, tint, visible_colours
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import current_user, field_access, may, row_condition

from .columns import ID_KEY, VERSION_KEY, exported_fields, special_label
from .values import export_value, neutralised, number_format, titles_unique

BATCH = 1000
FORMATS = ("xlsx", "csv")
Progress = Callable[[int, int], None]


@dataclass
class ExportRequest:
    """What to export: a table, as .xlsx or .csv, in a language; `where` narrows the rows further
    (a list's search and filters), `described` says how, for the audit entry."""

    table: str
    fmt: str = "xlsx"
    lang: str = "zh"
    where: list[Any] = field(default_factory=list)
    order_by: list[Any] = field(default_factory=list)
    described: str = ""


@dataclass
class ExportResult:
    rows: int
    fields: list[str]
    revealed: list[str]


class ExportRefused(Exception):
    def __init__(self, label: Label):
        super().__init__(label.en)
        self.label = label

    def text(self, lang: str) -> str:
        return self.label.text(lang)


class ExportCancelled(Exception):
    """The export was cancelled while it ran; its file is incomplete and is thrown away."""


def export_ids(models: BuiltModels, table: TableSpec, user: Any, request: ExportRequest) -> Any:
    """Return the select of the ids of the rows `user` may export, in the export's order."""
    model: Any = models.model(table.key)
    condition = row_condition(models, table.key, user, "export")
    query = sa.select(model.id)
    if condition is not None:
        query = query.where(condition)
    return query.where(*request.where).order_by(*request.order_by, model.id)


def records_in_batches(session: orm.Session, models: BuiltModels, table: TableSpec, ids: list[int]) -> Iterator[Any]:
    """Yield the records of `ids` in that order, a batch at a time, their links and users loaded alongside.
    (No server-side cursor: MySQL drivers cannot run the link queries while one streams.)"""
    model: Any = models.model(table.key)
    options = [orm.selectinload(getattr(model, f.key)) for f in table.fields if f.is_relation]
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        loaded = {obj.id: obj for obj in session.execute(sa.select(model).options(*options)
                                                         .where(model.id.in_(batch))).scalars()}
        yield from (loaded[pk] for pk in batch if pk in loaded)
        del loaded  # the session holds unchanged records weakly: the batch may leave memory


def export_table(models: BuiltModels, session: orm.Session, request: ExportRequest, out: IO[bytes],
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None) -> ExportResult:
    """Write the export to `out` and record it (and any reveal) in the audit log; return what was written."""
    if request.fmt not in FORMATS:
        raise ExportRefused(Label(f"不支持的格式“{request.fmt}”，可选 xlsx 或 csv",
                                  f"unknown format '{request.fmt}': use xlsx or csv"))
    user = current_user()
    table = models.schema.table(request.table)
    if not may(models, table.key, user, "export"):
        raise ExportRefused(Label(f"您无权导出{table.label.zh}", f"you may not export {table.label.en}"))
    access = field_access(models.schema, table.key, user)
    fields = exported_fields(table, access)
    revealed = [f.key for f in fields if f.seals_value and f.key not in access.masked]
    ids = [pk for (pk,) in session.execute(export_ids(models, table, user, request))]
    total = len(ids)
    unique_titles = {f.key: titles_unique(models.schema, f.to or "") for f in fields if f.type == "link"}
    shared_names = shared_user_names(session, request.lang) if any(f.type == "user" for f in fields) else frozenset()

    colours = visible_colours(models.schema, table, lambda t, k: field_access(models.schema, t, user).shows(k)) \
        if request.fmt == "xlsx" else []
    today = local_today()

    def rows() -> Iterable[tuple[list[Any], dict[int, str]]]:
        done = 0
        for start in range(0, total, BATCH):
            batch = ids[start:start + BATCH]
            paint = colours_of(session, models, table, colours, batch, today)
            for obj in records_in_batches(session, models, table, batch):
                done += 1
                if done % BATCH == 0:
                    if cancelled is not None and cancelled():
                        raise ExportCancelled()
                    if progress is not None:
                        progress(done, total)
                yield [obj.id] + [export_value(f, getattr(obj, f.key, None), request.lang, f.key in access.masked,
                                               unique_titles.get(f.key, True), shared_names) for f in fields] \
                    + [getattr(obj, naming.VERSION_COLUMN)], fills(paint.get(obj.id), fields)
                if revealed and any(getattr(obj, k, None) not in (None, "") for k in revealed):
                    reveal_ids.append(obj.id)
    reveal_ids: list[int] = []
    writer = write_xlsx if request.fmt == "xlsx" else write_csv
    count = writer(out, table, fields, rows(), request.lang)
    if progress is not None:
        progress(count, total)
    record_export(session, table, request, count, fields, revealed, reveal_ids)
    return ExportResult(count, [f.key for f in fields], revealed)


def local_today() -> datetime.date:
    """Return today's date where the panel is (CRM_TIMEZONE), for the colour rules' `today`."""
    from zoneinfo import ZoneInfo

    from flask import current_app
    return datetime.datetime.now(ZoneInfo(current_app.config.get("CRM_TIMEZONE") or "Asia/Shanghai")).date()


def fills(painted: Painted | None, fields: list[FieldSpec]) -> dict[int, str]:
    """Return the fill colour of each painted column of a row (column 0 is the id): the row's colour
    everywhere, a cell rule's on its field."""
    if painted is None:
        return {}
    found = {n: tint(painted.row.color) for n in range(len(fields) + 1)} if painted.row else {}
    for n, spec in enumerate(fields, start=1):
        if spec.key in painted.cells:
            found[n] = tint(painted.cells[spec.key].color, 0.35)
    return found


def shared_user_names(session: orm.Session, lang: str) -> frozenset[str]:
    """Return the names two or more users share (张伟): an export writes them with the login."""
    from flask import current_app

    from app.security.users import display_name
    model = current_app.extensions["appbuilder"].sm.user_model
    names = [display_name(user, lang) for user in session.execute(sa.select(model)).scalars()]
    return frozenset(name for name in names if names.count(name) > 1)


def record_export(session: orm.Session, table: TableSpec, request: ExportRequest, count: int,
                  fields: list[FieldSpec], revealed: list[str], reveal_ids: list[int]) -> None:
    user = current_user()
    who = (getattr(user, "id", None), getattr(user, "username", None) or "(command line)", None)
    entries = [Entry("export", table.key, None, {"format": request.fmt, "rows": count,
                                                 "fields": [f.key for f in fields],
                                                 "filters": request.described or None}, *who)]
    if revealed and reveal_ids:
        entries.append(Entry("reveal", table.key, reveal_ids[0] if len(reveal_ids) == 1 else None,
                             {"fields": revealed, "records": reveal_ids, "export": request.fmt}, *who))
    session.rollback()
    append(session.connection(), entries)
    session.commit()


def headers(table: TableSpec, fields: list[FieldSpec], lang: str) -> list[str]:
    """Return an export's headings: the id, the fields' labels, the version (kept hidden in a workbook)."""
    return ([special_label(table, ID_KEY).text(lang)] + [f.label.text(lang) for f in fields]
            + [special_label(table, VERSION_KEY).text(lang)])


def write_xlsx(out: IO[bytes], table: TableSpec, fields: list[FieldSpec],
               rows: Iterable[tuple[list[Any], dict[int, str]]], lang: str) -> int:
    """Write a workbook with XlsxWriter in constant-memory mode (each row goes to disk as it is written;
    about three times faster than openpyxl's write-only mode): headings, the hidden key row, then the
    rows; return how many rows were written. Text is always written as text, never as a formula."""
    import xlsxwriter

    from app.reports.xlsx import sheet_name
    with tempfile.TemporaryDirectory() as scratch:
        book = xlsxwriter.Workbook(out, {"constant_memory": True, "tmpdir": scratch, "in_memory": False,
                                         "strings_to_formulas": False, "strings_to_numbers": False,
                                         "strings_to_urls": False})
        sheet = book.add_worksheet(sheet_name(table.label.text(lang), set()))
        heading = book.add_format({"bold": True, "bg_color": "#E8EEF7"})
        formats = [None] + [book.add_format({"num_format": f}) if (f := number_format(spec)) else None
                            for spec in fields] + [None]
        for n, text in enumerate(headers(table, fields, lang)):
            sheet.set_column(n, n, 8 if n == 0 else min(max(len(text) * 2 + 4, 10), 40))
            sheet.write_string(0, n, text, heading)
        for n, key in enumerate([ID_KEY] + [f.key for f in fields] + [VERSION_KEY]):
            sheet.write_string(1, n, key)
        sheet.set_row(1, None, None, {"hidden": True})
        sheet.set_column(len(fields) + 1, len(fields) + 1, None, None, {"hidden": True})
        sheet.freeze_panes(2, 1)
        painted: dict[tuple[int, str], Any] = {}  # (column, fill) -> its format, made once

        def style(column: int, fill: str | None) -> Any:
            if fill is None:
                return formats[column]
            if (column, fill) not in painted:
                spec = {"bg_color": fill, "pattern": 1}
                if 0 < column <= len(fields) and (number := number_format(fields[column - 1])):
                    spec["num_format"] = number
                painted[(column, fill)] = book.add_format(spec)
            return painted[(column, fill)]
        count = 0
        for count, (values, colours) in enumerate(rows, start=1):
            row = count + 1
            for column, value in enumerate(values):
                fill = colours.get(column)
                if value is None:
                    if fill is not None:
                        sheet.write_blank(row, column, None, style(column, fill))
                    continue
                if isinstance(value, str):
                    sheet.write_string(row, column, neutralised(value), style(column, fill))
                elif isinstance(value, datetime.date):
                    sheet.write_datetime(row, column, value, style(column, fill))
                elif isinstance(value, bool):
                    sheet.write_boolean(row, column, value, style(column, fill))
                else:
                    sheet.write_number(row, column, value, style(column, fill))
        book.close()
    return count


def write_csv(out: IO[bytes], table: TableSpec, fields: list[FieldSpec],
              rows: Iterable[tuple[list[Any], dict[int, str]]], lang: str) -> int:
    """Write UTF-8 with a BOM (so that Excel opens the Chinese right), headings then rows; return the count."""
    text = io.TextIOWrapper(out, encoding="utf-8-sig", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(headers(table, fields, lang))
    count = 0
    for values, _colours in rows:  # a CSV file has no colours
        writer.writerow([csv_text(v) for v in values])
        count += 1
    text.flush()
    text.detach()
    return count


def csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, str):
        return neutralised(value)
    return str(value)
