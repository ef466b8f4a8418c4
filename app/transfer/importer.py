"""Import a sheet into a table: every row checked by the forms' rules, then all rows written in one
transaction or none (`run_import`); a dry run writes them too and rolls back, so that what only the
database and the ORM's rules can tell (a contact of another customer, a unique index) is found too.

Writes go through the ORM session like the screens' and the API's, so computed fields, `match:`,
encryption and the audit log apply unchanged. Runs as the request's user (current_user): the gate
decides the rows they reach and the fields they may write.
"""
from __future__ import annotations

import datetime
import hashlib
import itertools
import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from app.audit.batches import BATCH_ROW_TABLE, BATCH_TABLE
from app.audit.capture import logged_values, plain
from app.audit.log import Entry, append
from app.models.build import BuiltModels
from app.models.encryption import MASK
from app.models.problems import RecordProblem
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import (
    FieldAccess,
    assign_owner,
    current_user,
    field_access,
    pick_condition,
    picks_only_self,
    row_condition,
    user_pick_condition,
)

from .cells import Lookup, cell_value, fold, link_lookup, user_lookup
from .columns import ID_KEY, Column, heading_names, is_key_row, normal, suggestion
from .problems import FileRefused, Problem
from .read import RawBook, RawSheet, read_book

CHUNK = 500
# A written row: its row number, insert or update, its record's id, its values before (updates).
Written = tuple[int, str, int, "dict[str, Any] | None"]
MODES = ("insert", "upsert")
REQUIRED = Label("必填", "required")
Progress = Callable[[str, int, int], None]  # (phase: check | write, rows done, rows in all)


@dataclass
class ImportRequest:
    """What to import: the file (name and bytes) into which table, how, and in which language to answer."""

    table: str
    file_name: str
    data: bytes
    mode: str = "insert"
    key: str | None = None  # upsert: the unique field (or id) that finds the existing record
    dry_run: bool = False
    allow_duplicates: bool = False  # import rows flagged as likely duplicates anyway
    lang: str = "zh"
    max_bytes: int = 50 << 20


@dataclass(slots=True)
class PlannedRow:
    """One data row: where it is, its values, and what the import does with it."""

    row: int
    values: dict[str, Any]
    action: str = "insert"  # insert | update | unchanged
    record_id: int | None = None
    place: int = 0  # among the file's planned rows: how a child sheet's row names it


@dataclass
class ImportResult:
    """What an import did or (dry run) would do; nothing was written when `problems` is not empty."""

    file: str
    table: str
    mode: str
    dry_run: bool
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)  # likely duplicates: refused unless allowed
    notes: list[Problem] = field(default_factory=list)  # columns left out (computed ones), sheets skipped
    counts: dict[str, int] = field(default_factory=lambda: {"insert": 0, "update": 0, "unchanged": 0})
    children: dict[str, int] = field(default_factory=dict)  # inline child table → rows inserted from its sheet
    batch_id: int | None = None
    file_hash: str = ""
    bad_cells: dict[tuple[str | None, int], dict[int, str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def all_problems(self) -> list[Problem]:
        return sorted(self.problems, key=Problem.sort_key)


class ImportCancelled(Exception):
    """The import was cancelled while it ran; its transaction was rolled back."""


def is_masked(value: Any) -> bool:
    """Return True for a value as an export shows an encrypted field to a user who may not reveal it."""
    return isinstance(value, str) and (MASK in value or "****" in value or "***@" in value)


def same(spec: FieldSpec, stored: Any, new: Any) -> bool:
    """Return True when an import's value equals the stored one (250000 is 250000.00; a record is its id)."""
    old, value = plain(spec, stored), plain(spec, new)
    if isinstance(stored, Decimal) and isinstance(new, Decimal):
        return stored == new
    return bool(old == value)


def file_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# Words a company name is written with or without: 华信化工有限公司 = 华信化工 = 华信化工（中国）有限公司.
COMPANY_WORDS = re.compile(r"(股份有限公司|有限责任公司|有限公司|股份|集团|\(中国\)|中国|"
                           r"co\.?,?ltd\.?|limited|inc\.?|corp\.?)")


def company_key(name: Any) -> str:
    """Return a company name as likely duplicates are compared: full-width folded, spaces, 有限公司 and
    (中国) left out."""
    text = unicodedata.normalize("NFKC", str(name or "")).casefold()
    text = "".join(text.split())
    return COMPANY_WORDS.sub("", text).strip(".,()")


def sheet_name_of(book: RawBook) -> str:
    return book.sheets[0].name or book.file


def child_sheet_of(child_sheets: list[tuple[str, RawSheet]], child: Importer) -> RawSheet:
    return next(sheet for key, sheet in child_sheets if key == child.table.key)


class Importer:
    """One import of one file into one table, as the current user."""

    def __init__(self, models: BuiltModels, session: orm.Session, user_model: type, request: ImportRequest,
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                 before_commit: Callable[[ImportResult], None] | None = None):
        self.models, self.session, self.user_model, self.request = models, session, user_model, request
        self.table: TableSpec = models.schema.table(request.table)
        self.model: Any = models.model(request.table)
        self.user = current_user()
        self.access: FieldAccess = field_access(models.schema, request.table, self.user)
        self.lang = request.lang
        self.progress = progress or (lambda phase, done, total: None)
        self.before_commit = before_commit
        self.cancelled = cancelled or (lambda: False)
        self.result = ImportResult(request.file_name, request.table, request.mode, request.dry_run,
                                   file_hash=file_hash(request.data))
        self.file = request.file_name
        self.key: str | None = None
        self.lookups: dict[str, Lookup] = {}
        self.existing: dict[str, dict[Any, int]] = {}
        self.similar: dict[str, tuple[int, str]] = {}
        self.column_of: dict[str, int] = {}  # field key → its column in the sheet
        self.fixed_lookups: dict[str, Lookup] = {}  # a child sheet's link to the parents in the same file
        self.parent_names: dict[str, set[int]] = {}  # this file's rows, by title and unique values (folded)
        self.record_ids: dict[int, int] = {}  # place of a written row in the file → its record's id
        self.data_rows = 0  # non-empty rows read so far
        self.planned = 0  # rows that passed their checks so far
        self.expected = 0  # data rows the sheet says it has (for progress)

    # -- problems ---------------------------------------------------------------------------------
    def problem(self, zh: str, en: str, sheet: str | None = None, row: int | None = None,
                column: int | None = None, spec: FieldSpec | None = None) -> None:
        found = Problem(self.file, Label(zh, en), sheet, row, column, spec.label if spec else None)
        self.result.problems.append(found)
        if row is not None:
            self.result.bad_cells.setdefault((sheet, row), {})[column or 0] = found.text(self.lang)

    def cell_problem(self, sheet: str | None, row: int, column: int | None, spec: FieldSpec | None,
                     message: Label) -> None:
        self.problem(message.zh, message.en, sheet, row, column, spec)

    # -- the steps --------------------------------------------------------------------------------
    def run(self) -> ImportResult:
        """Return the result: problems, or the rows written (dry run: rolled back).

        The rows are read, checked and written a chunk at a time inside one transaction, so memory stays
        flat however long the file; after the first problem nothing more is written, every row is still
        checked, and the transaction is rolled back."""
        request = self.request
        if request.mode not in MODES:
            self.problem(f"导入方式“{request.mode}”无效，应为 insert 或 upsert",
                         f"unknown import mode '{request.mode}': use insert or upsert")
            return self.result
        try:
            book = read_book(request.file_name, request.data, request.max_bytes)
            self.file = self.result.file = book.file
            sheet = book.sheets[0]
            child_sheets = self.child_sheets(book)
            rows = self.prepare(book, sheet)
            if rows is None:
                return self.result
            self.write(book, sheet, rows, child_sheets)
        except FileRefused as exc:
            self.result.problems.append(exc.problem)
        return self.result

    def child_sheets(self, book: RawBook) -> list[tuple[str, RawSheet]]:
        """Return the sheets after the first that hold an inline child table's rows; note the others."""
        found = []
        for other in book.sheets[1:]:
            child = self.child_table_of(other.name)
            if child is not None:
                found.append((child, other))
                continue
            self.result.notes.append(Problem(self.file, Label(
                "此工作表未导入（只导入第一个工作表，以及明细表的工作表）",
                "this sheet was not imported (only the first one is, and those of inline child tables)"), other.name))
        return found

    def child_table_of(self, sheet_name: str | None) -> str | None:
        """Return the inline child table (`inline:` of this table) a sheet is named after, by key or label."""
        wanted = normal(sheet_name)
        for key in self.table.inline:
            child = self.models.schema.table(key)
            if wanted in (normal(child.key), normal(child.label.zh), normal(child.label.en)):
                return key
        return None

    def child_importer(self, book: RawBook, child_key: str) -> tuple[Importer, FieldSpec]:
        """Return the importer of a child sheet (order lines of the orders above) and its link to this
        table: that column names a row of this file by the parent's title or a unique field."""
        child_table = self.models.schema.table(child_key)
        link = next(f for f in child_table.fields if f.type == "link" and f.to == self.table.key)
        child = Importer(self.models, self.session, self.user_model, dataclass_replace(
            self.request, table=child_key, mode="insert", key=None), cancelled=self.cancelled)
        child.file = self.file
        child.result.problems = self.result.problems  # one list of problems for the whole file
        child.result.bad_cells = self.result.bad_cells
        keys = self.parent_keys()
        names = [self.table.field(k).label for k in keys]
        lookup = Lookup(self.table.label, hint=Label(
            f"（应为本文件“{sheet_name_of(book)}”表中某行的{'或'.join(n.zh for n in names)}）",
            f" (write the {' or '.join(n.en for n in names)} of a row of the sheet '{sheet_name_of(book)}')"))
        lookup.names = self.parent_names  # a row of this file (by its place), not a stored record
        child.fixed_lookups[link.key] = lookup
        return child, link

    def parent_keys(self) -> list[str]:
        return [self.table.title] + [f.key for f in self.table.fields if f.unique and f.key != self.table.title]

    def prepare(self, book: RawBook, sheet: RawSheet) -> Iterator[PlannedRow] | None:
        """Read the headings; return the sheet's data rows as they are checked (None when the headings
        do not allow reading them: the problems say why)."""
        rows = sheet.rows
        header = next(((n, cells) for n, cells in rows if any(c not in (None, "") for c in cells)), None)
        if header is None:
            self.problem("工作表是空的：第一行应是标题行（字段名称）", "the sheet is empty: its first row should hold "
                         "the headings (the field names)", sheet.name)
            return None
        header_row, headings = header
        first = next(rows, None)
        pending: list[tuple[int, list[Any]]] = []
        if first is not None and is_key_row(first[1], self.table):
            headings = [first[1][n] if n < len(first[1]) and first[1][n] not in (None, "") else h
                        for n, h in enumerate(headings)]
            header_row = first[0]
        elif first is not None:
            pending.append(first)
        columns = self.match_columns(sheet, header[0], headings, book.kind)
        self.check_merged(sheet, header_row)
        if columns is None:
            return None
        self.column_of = {c.key: c.index for c in columns}
        self.lookups = self.build_lookups(columns)
        self.existing = self.existing_values(columns)
        self.expected = max(sheet.estimated_rows - header_row, 0)
        return self.planned_rows(book, sheet, itertools.chain(pending, rows), columns, len(headings))

    def planned_rows(self, book: RawBook, sheet: RawSheet, rows: Iterable[tuple[int, list[Any]]],
                     columns: list[Column], width: int) -> Iterator[PlannedRow]:
        """Yield each data row that passed its checks (the others' problems are recorded)."""
        seen: dict[str, dict[Any, int]] = {}
        names: dict[str, int] = {}
        keys = self.parent_keys() if self.table.inline else []
        for number, cells in rows:
            if not any(c not in (None, "") and not (isinstance(c, str) and not c.strip()) for c in cells):
                continue
            self.data_rows += 1
            if book.kind == "csv" and len(cells) > width and any(c not in (None, "") for c in cells[width:]):
                self.problem(f"本行有 {len(cells)} 列，标题行只有 {width} 列；请检查分隔符或多余的逗号",
                             f"this row has {len(cells)} columns but the heading row only {width}; check the "
                             "delimiter or stray commas", sheet.name, number)
                continue
            found = self.plan_row(sheet, number, cells, columns, seen, names)
            if found is None:
                continue
            found.place = self.planned
            self.planned += 1
            for key in keys:  # so that a child sheet can name this row
                value = found.values.get(key)
                if value not in (None, ""):
                    self.parent_names.setdefault(fold(value), set()).add(-found.place - 1)
            yield found
        if not self.data_rows and not self.result.problems:
            self.problem("工作表只有标题行，没有数据", "the sheet has headings but no data rows", sheet.name)

    def match_columns(self, sheet: RawSheet, row: int, headings: list[Any], kind: str) -> list[Column] | None:
        """Return the columns that hold fields; problems for unknown, repeated and missing columns."""
        names = heading_names(self.table)
        columns: list[Column] = []
        taken: dict[str, int] = {}
        unknown = 0
        for index, heading in enumerate(headings, start=1):
            if heading in (None, "") or (isinstance(heading, str) and not heading.strip()):
                continue
            key = names.get(normal(heading))
            spec = self.table.field(key) if key not in (None, ID_KEY) else None
            if key is None or (spec is not None and not self.access.shows(key)):
                unknown += 1
                hint = suggestion(str(heading), self.table, self.lang)
                self.problem(f"没有“{heading}”这一列对应的字段{hint}",
                             f"no field is called '{heading}'{hint}", sheet.name, row, index)
                continue
            if key in taken:
                self.problem(f"“{heading}”与第 {taken[key]} 列是同一个字段",
                             f"'{heading}' is the same field as column {taken[key]}", sheet.name, row, index)
                continue
            taken[key] = index
            if spec is not None and spec.is_computed:
                self.result.notes.append(Problem(self.file, Label("由系统计算，导入时忽略此列",
                                                                  "computed by the panel; this column is ignored"),
                                                 sheet.name, row, index, spec.label))
                continue
            columns.append(Column(index, key, spec))
        if kind == "csv" and len(headings) == 1 and unknown == 1 and re.search(r"[|:;\t]", str(headings[0])):
            self.result.problems[-1] = Problem(self.file, Label(
                f"只识别出一列“{headings[0]}”：各列应以逗号（,）分隔；请在 Excel 中另存为“CSV UTF-8（逗号分隔）”",
                f"only one column '{headings[0]}' was found: columns should be separated by commas (,); save the "
                "file as 'CSV UTF-8 (comma delimited)' in Excel"), sheet.name, row)
            return None
        if self.request.mode == "insert":
            for spec in self.table.fields:
                if (spec.required and spec.key not in taken and spec.default is None and not spec.is_computed
                        and not spec.default_from and spec.type != "boolean" and self.access.writes(spec.key)):
                    self.problem(f"缺少必填列“{spec.label.zh}”", f"the required column '{spec.label.en}' is missing",
                                 sheet.name, row)
        key = self.request.key
        if self.request.mode == "upsert":
            key = key or (ID_KEY if ID_KEY in taken else next(
                (f.key for f in self.table.fields if f.unique and f.key in taken and not f.encrypted), None))
            if key is None:
                self.problem("按已有记录更新（upsert）需要一个唯一字段的列来找到记录，例如编号或"
                             + "、".join(f.label.zh for f in self.table.fields if f.unique),
                             "an upsert needs a column of a unique field to find each record, such as ID or "
                             + ", ".join(f.label.en for f in self.table.fields if f.unique), sheet.name, row)
            elif key != ID_KEY and (not self.table.has_field(key) or not self.table.field(key).unique):
                self.problem(f"--key {key}：不是唯一字段，无法据此找到记录",
                             f"--key {key}: not a unique field, so it cannot find records", sheet.name, row)
            elif key not in taken:
                self.problem(f"缺少用于查找记录的列“{key}”", f"the column '{key}' that finds the records is missing",
                             sheet.name, row)
        self.key = key
        return None if self.result.problems else columns

    def check_merged(self, sheet: RawSheet, header_row: int) -> None:
        for merged in sheet.merged:
            top = int(re.sub(r"[A-Z]+", "", merged.split(":")[0]))
            if top <= header_row + 1:
                self.problem(f"标题行有合并单元格 {merged}：请取消合并，每列一个标题",
                             f"the heading row has merged cells {merged}: unmerge them, one heading per column",
                             sheet.name)
            else:
                self.problem(f"合并单元格 {merged}：请取消合并并在每一行填写值",
                             f"merged cells {merged}: unmerge them and fill in each row", sheet.name)

    def build_lookups(self, columns: list[Column]) -> dict[str, Lookup]:
        """Return, per link and user column (and the owner the import assigns), who may be named there."""
        lookups: dict[str, Lookup] = {}
        for column in columns:
            spec = column.spec
            if spec is None or not spec.is_relation:
                continue
            if spec.key in self.fixed_lookups:
                lookups[spec.key] = self.fixed_lookups[spec.key]
            elif spec.type == "link":
                lookups[spec.key] = link_lookup(self.session, self.models.schema, self.models, spec,
                                                pick_condition(self.models, spec.to or "", self.user))
            else:
                lookups[spec.key] = user_lookup(self.session, self.user_model, user_pick_condition(
                    self.models, self.table.key, spec.key, self.user_model), self.user_rule(spec))
        return lookups

    def user_rule(self, spec: FieldSpec) -> Label:
        """Return who may be chosen in a user field, as the forms say it (only you / active sales ...)."""
        if picks_only_self(self.models, self.table.key, spec.key, self.user):
            return Label("：这里只能填写您本人", "only you may be named here")
        roles = self.models.schema.roles
        names = [roles[r].label if r in roles else Label(r, r) for r in spec.roles]
        return Label(f"：这里只能填写在职的{'、'.join(n.zh for n in names)}",
                     f"only active users who are {', '.join(n.en for n in names)} may be named here")

    def existing_values(self, columns: list[Column]) -> dict[str, dict[Any, int]]:
        """Return, per unique field in the file (and id), the stored values → record id."""
        table = self.models.metadata.tables[naming.table_name_for(self.table.key)]
        found: dict[str, dict[Any, int]] = {ID_KEY: {}}
        for column in columns:
            spec = column.spec
            if spec is not None and spec.unique and not spec.encrypted:
                col = table.c[naming.column_name_for(spec)]
                found[spec.key] = {value: pk for pk, value in self.session.execute(
                    sa.select(table.c.id, col).where(col.is_not(None)))}
        if self.request.mode == "upsert" and self.key == ID_KEY:
            found[ID_KEY] = {pk: pk for (pk,) in self.session.execute(sa.select(table.c.id))}
        title = self.table.field(self.table.title)
        if self.flags_similar_names() and not title.encrypted:
            col = table.c[naming.column_name_for(title)]
            for pk, value in self.session.execute(sa.select(table.c.id, col)):
                self.similar.setdefault(company_key(value), (pk, value))
        return found

    def flags_similar_names(self) -> bool:
        """Return True for a table of companies (one with a USCC field): same name, likely the same company."""
        return any(f.type == "uscc" for f in self.table.fields) and self.table.field(self.table.title).type == "string"

    def plan_row(self, sheet: RawSheet, number: int, cells: list[Any], columns: list[Column],
                 seen: dict[str, dict[Any, int]], names: dict[str, int]) -> PlannedRow | None:
        """Return one row's values (None when a cell is wrong: its problems are recorded)."""
        values: dict[str, Any] = {}
        bad = False
        record_id: int | None = None
        for column in columns:
            raw = cells[column.index - 1] if column.index - 1 < len(cells) else None
            if column.spec is None:  # the id column
                record_id = self.row_id(sheet, number, column, raw)
                bad = bad or record_id == -1
                continue
            spec = column.spec
            value, messages = cell_value(spec, raw, self.lookups)
            if messages == [REQUIRED] and (spec.default is not None or spec.default_from):
                continue  # left empty: the field's default (or its default_from) fills it in
            for message in messages:
                self.cell_problem(sheet.name, number, column.index, spec, message)
                bad = True
            if messages:
                continue
            values[spec.key] = value
        found = PlannedRow(number, values, record_id=record_id if record_id not in (None, -1) else None)
        if bad:
            self.check_unique(sheet, found, seen)  # so that a value repeated later is named there too
            return None
        if not self.place_row(sheet, found):
            return None
        if not self.check_unique(sheet, found, seen):
            return None
        self.flag_duplicate(sheet, found, names)
        return found

    def row_id(self, sheet: RawSheet, number: int, column: Column, raw: Any) -> int | None:
        """Return the id in an id cell (None when empty, -1 when it is no id; a problem is recorded)."""
        if raw in (None, "") or self.request.mode == "insert":
            return None
        text = str(raw).strip().removeprefix("#")
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        if isinstance(raw, int) or text.isdigit():
            return int(text)
        self.cell_problem(sheet.name, number, column.index, None, Label(f"“{raw}”不是记录编号（应为整数）",
                                                                       f"'{raw}' is no record id (a whole number)"))
        return -1

    def place_row(self, sheet: RawSheet, row: PlannedRow) -> bool:
        """Decide insert or update (upsert: by the key field); refuse writes to fields the user may not change."""
        key = self.key
        if self.request.mode == "upsert" and key is not None:
            value = row.record_id if key == ID_KEY else row.values.get(key)
            pk = self.existing.get(key, {}).get(value) if value is not None else None
            if key == ID_KEY and value is not None and pk is None:
                self.cell_problem(sheet.name, row.row, self.key_column(row), None,
                                  Label(f"没有编号为 {value} 的记录", f"there is no record with ID {value}"))
                return False
            if pk is not None:
                row.action, row.record_id = "update", pk
        if row.action == "insert":
            row.record_id = None
            for spec in self.table.fields:
                if (spec.required and row.values.get(spec.key) in (None, "", []) and spec.default is None
                        and not spec.is_computed and not spec.default_from and spec.type != "boolean"
                        and self.access.writes(spec.key)):
                    self.cell_problem(sheet.name, row.row, self.column_of.get(spec.key, 0) or None, spec,
                                      Label("必填", "required"))
                    return False
        for key_, value in list(row.values.items()):
            if self.access.writes(key_):
                continue
            spec = self.table.field(key_)
            if value in (None, "", []) or key_ in self.access.masked and is_masked(value):
                row.values.pop(key_)  # an empty or masked cell of a field the user may not write changes nothing
                continue
            row.values.pop(key_)
            row.values.setdefault("__readonly__", []).append((spec, value))
        return True

    def key_column(self, row: PlannedRow) -> int | None:
        return self.column_of.get(self.key or "") if self.key != ID_KEY else None

    def check_unique(self, sheet: RawSheet, row: PlannedRow, seen: dict[str, dict[Any, int]]) -> bool:
        """Refuse a unique value repeated in the file or held by another stored record."""
        ok = True
        for spec in self.table.fields:
            value = row.values.get(spec.key)
            if not spec.unique or value in (None, ""):
                continue
            earlier = seen.setdefault(spec.key, {}).get(value)
            if earlier is not None:
                self.cell_problem(sheet.name, row.row, self.column_of[spec.key], spec,
                                  Label(f"“{value}”与第 {earlier} 行重复", f"'{value}' repeats row {earlier}"))
                ok = False
                continue
            seen[spec.key][value] = row.row
            other = self.existing.get(spec.key, {}).get(value)
            if other is not None and other != row.record_id:
                self.cell_problem(sheet.name, row.row, self.column_of[spec.key], spec, Label(
                    f"已存在相同的{spec.label.zh}“{value}”", f"another record already has {spec.label.en} '{value}'"))
                ok = False
        return ok

    def flag_duplicate(self, sheet: RawSheet, row: PlannedRow, names: dict[str, int]) -> None:
        """Flag a new company whose normalised name an existing record or an earlier row already has."""
        if row.action != "insert" or not self.flags_similar_names():
            return
        name = row.values.get(self.table.title)
        key = company_key(name)
        if not key:
            return
        title = self.table.field(self.table.title)
        column = self.column_of.get(title.key)
        if key in self.similar:
            pk, stored = self.similar[key]
            self.result.duplicates.append(Problem(self.file, Label(
                f"可能与已有记录重复：#{pk}“{stored}”", f"likely a duplicate of the stored record #{pk} '{stored}'"),
                sheet.name, row.row, column, title.label))
        elif key in names:
            self.result.duplicates.append(Problem(self.file, Label(
                f"可能与第 {names[key]} 行重复（名称相近）",
                f"likely a duplicate of row {names[key]} (a similar name)"),
                sheet.name, row.row, column, title.label))
        else:
            names[key] = row.row

    # -- writing ----------------------------------------------------------------------------------
    def write(self, book: RawBook, sheet: RawSheet, rows: Iterator[PlannedRow],
              child_sheets: list[tuple[str, RawSheet]]) -> None:
        """Check and write every row in one transaction, a chunk per flush; roll back on any problem (and
        always on a dry run). Problems only the database finds are traced to their rows."""
        session = self.session
        session.rollback()  # start from a clean transaction of our own
        batch_id = self.start_batch()
        try:
            groups = [(self, self.stream(sheet, rows, 0))]
            done = self.data_rows
            for child_key, child_sheet in child_sheets:
                child, link = self.child_importer(book, child_key)
                child_rows = child.prepare(book, child_sheet)
                if child_rows is None:
                    continue
                groups.append((child, child.stream(child_sheet, child_rows, done, link, self.record_ids,
                                                   progress=self.progress)))
                done += child.data_rows
                self.result.children[child.table.key] = child.result.counts["insert"]
            self.progress(self.phase, done, done)
            self.refuse_duplicates()
            if not self.result.problems:
                for importer, written in groups:
                    importer.check_reach(sheet if importer is self else child_sheet_of(child_sheets, importer),
                                         written)
            if self.result.problems or self.request.dry_run:
                session.rollback()
                return
            if self.cancelled():
                raise ImportCancelled()
            self.finish_batch(batch_id, groups)
            self.result.batch_id = batch_id
            if self.before_commit is not None:
                self.before_commit(self.result)
            session.commit()
        except BaseException:
            session.rollback()
            self.result.batch_id = None
            raise

    @property
    def phase(self) -> str:
        return "check" if self.request.dry_run else "write"

    def writing(self) -> bool:
        """Return True while rows are still written: no problem yet, and no likely duplicate refused."""
        refused = self.result.duplicates and not self.request.allow_duplicates and not self.request.dry_run
        return not self.result.problems and not refused

    def refuse_duplicates(self) -> None:
        if self.result.duplicates and not self.request.allow_duplicates and not self.request.dry_run:
            count = len(self.result.duplicates)
            self.problem(f"有 {count} 行可能与已有记录或本文件中的其他行重复，未导入；"
                         "核对后勾选“仍然导入可能重复的行”（命令行：--allow-duplicates）",
                         f"{count} rows are likely duplicates of existing records or of other "
                         "rows in this file and were not imported; check them, then allow likely duplicates "
                         "(command line: --allow-duplicates)")

    def stream(self, sheet: RawSheet, rows: Iterator[PlannedRow], offset: int, link: FieldSpec | None = None,
               parents: dict[int, int] | None = None, progress: Progress | None = None) -> list[Written]:
        """Write the rows a chunk at a time while `writing()`; return what was written. A child sheet's
        rows get their parent's id (`parents`: place in the file → record id) through `link`."""
        report = progress or self.progress
        written: list[Written] = []
        chunk: list[PlannedRow] = []

        def flush() -> None:
            if self.writing() and chunk:
                if link is not None and parents is not None:
                    for row in chunk:
                        row.values[link.key] = parents.get(-row.values[link.key] - 1)
                written.extend(self.write_chunk(sheet, chunk))
                for row in chunk:
                    if row.record_id is not None:
                        self.record_ids[row.place] = row.record_id
            chunk.clear()
            report(self.phase, offset + self.data_rows, max(offset + self.expected, offset + self.data_rows))
        for row in rows:
            chunk.append(row)
            if len(chunk) == CHUNK:
                if self.cancelled():
                    raise ImportCancelled()
                flush()
        flush()
        return written

    def write_chunk(self, sheet: RawSheet, chunk: list[PlannedRow]) -> list[Written]:
        """Stage and flush one chunk in a savepoint; when the flush fails, find the rows to blame."""
        stored = self.load_stored([r.record_id for r in chunk if r.record_id is not None])
        linked = self.load_linked(chunk)  # noqa: F841 (held so that session.get finds them in the identity map)
        try:
            with self.session.begin_nested():
                with self.session.no_autoflush:
                    done = [self.stage(sheet, row, stored) for row in chunk]
                self.session.flush()
        except (RecordProblem, IntegrityError, SQLAlchemyError):
            done = []
            stored = self.load_stored([r.record_id for r in chunk if r.record_id is not None])
            for row in chunk:
                try:
                    with self.session.begin_nested():
                        with self.session.no_autoflush:
                            staged = self.stage(sheet, row, stored)
                        self.session.flush()
                    done.append(staged)
                except RecordProblem as exc:
                    self.database_problem(sheet, row, exc.field, exc.label)
                except SQLAlchemyError:
                    self.database_problem(sheet, row, None, Label("数据库拒绝保存此行（可能与其他记录冲突）",
                                                                  "the database refused this row (perhaps it "
                                                                  "conflicts with another record)"))
        found = []
        for staged in done:
            if staged is None:
                continue
            row, obj, before = staged
            row.record_id = obj.id  # a child sheet's rows link to their parent by it
            # Only the id and the values before are kept: the flushed records may leave memory.
            found.append((row.row, row.action, obj.id,
                          logged_values(self.model, obj.id, before) if row.action == "update" else None))
        return found

    def database_problem(self, sheet: RawSheet, row: PlannedRow, key: str | None, message: Label) -> None:
        spec = self.table.field(key) if key and self.table.has_field(key) else None
        self.cell_problem(sheet.name, row.row, self.column_of.get(key or "", 0) or None, spec, message)

    def load_linked(self, chunk: list[PlannedRow]) -> list[Any]:
        """Load, in one query per link, the records the chunk's rows link to; return them."""
        wanted: dict[str, set[int]] = {}
        for row in chunk:
            for key, value in row.values.items():
                if value is not None and key in self.lookups and not (isinstance(value, int) and value < 0):
                    wanted.setdefault(key, set()).add(value)
        loaded: list[Any] = []
        for key, ids in wanted.items():
            spec = self.table.field(key)
            target: Any = self.user_model if spec.type == "user" else self.models.model(spec.to or "")
            loaded += self.session.execute(sa.select(target).where(target.id.in_(sorted(ids)))).scalars().all()
        return loaded

    def load_stored(self, ids: list[int]) -> dict[int, Any]:
        if not ids:
            return {}
        return {obj.id: obj for obj in self.session.execute(sa.select(self.model).where(self.model.id.in_(ids)))
                .scalars()}

    def stage(self, sheet: RawSheet, row: PlannedRow,
              stored: dict[int, Any]) -> tuple[PlannedRow, Any, dict[str, Any]] | None:
        """Put one row's values on a new or stored record; return (row, record, values before) or None
        when it changes nothing (counted unchanged) or may not be written (a problem is recorded)."""
        values = dict(row.values)
        readonly = values.pop("__readonly__", [])
        if row.action == "update":
            obj = stored.get(row.record_id or 0)
            if obj is None:
                self.cell_problem(sheet.name, row.row, self.key_column(row), None, Label(
                    "要更新的记录已被删除", "the record to update was deleted meanwhile"))
                return None
        else:
            obj = self.model()
            self.session.add(obj)  # before its links are set: the backrefs would add it half-made
        for spec, value in readonly:
            if row.action == "insert" or not same(spec, getattr(obj, spec.key, None), self.as_stored(spec, value)):
                self.cell_problem(sheet.name, row.row, self.column_of.get(spec.key), spec, Label(
                    "您无权修改此字段（只读），请清空这一列或保持原值",
                    "you may not change this field (read-only); leave the column empty or as it is"))
                return None
        before: dict[str, Any] = {}
        for key, value in values.items():
            spec = self.table.field(key)
            new = self.as_stored(spec, value)
            if row.action == "update" and same(spec, getattr(obj, key, None), new):
                continue
            if row.action == "update":
                before[key] = getattr(obj, key, None)
            setattr(obj, key, new)
        if row.action == "update" and not before:
            self.result.counts["unchanged"] += 1
            row.action = "unchanged"
            return None
        if row.action == "insert":
            assign_owner(self.models, self.table.key, obj)
        self.result.counts[row.action] += 1
        return row, obj, before

    def as_stored(self, spec: FieldSpec, value: Any) -> Any:
        """Return a value as the record's attribute holds it: a link or user field holds the record."""
        if spec.is_relation and value is not None:
            target = self.user_model if spec.type == "user" else self.models.model(spec.to or "")
            return self.session.get(target, value)
        return value

    def check_reach(self, sheet: RawSheet, written: list[Written]) -> None:
        """Refuse rows that, once written, are outside the rows the user may create or update."""
        for verb, action in (("create", "insert"), ("update", "update")):
            condition = row_condition(self.models, self.table.key, self.user, verb)
            if condition is None:
                continue
            rows = {pk: number for number, done, pk, _ in written if done == action}
            reached: set[int] = set()
            ids = sorted(rows)
            for start in range(0, len(ids), CHUNK):
                chunk = ids[start:start + CHUNK]
                reached |= {pk for (pk,) in self.session.execute(
                    sa.select(self.model.id).where(self.model.id.in_(chunk), condition))}
            for pk in ids:
                if pk not in reached:
                    self.problem("导入后这条记录将不在您可管理的范围内（例如负责人须为您本人）",
                                 "after the import this record would be outside the records you may manage (for "
                                 "example, you must be its owner)", sheet.name, rows[pk])

    def start_batch(self) -> int:
        """Insert the batch row first: it opens the transaction the savepoints nest in."""
        user = self.user
        result: Any = self.session.execute(BATCH_TABLE.insert().values(
            at=datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0),
            user_id=getattr(user, "id", None), username=getattr(user, "username", None) or "(command line)",
            table_key=self.table.key, file_name=self.file[:255], file_hash=self.result.file_hash,
            mode=self.request.mode, inserted=0, updated=0, unchanged=0, status="done"))
        inserted = result.inserted_primary_key
        return int(inserted[0])

    def finish_batch(self, batch_id: int, groups: list[tuple[Importer, list[Written]]]
                     ) -> None:
        """Record the batch's counts and rows, its own table's and its child sheets' (with each record's
        version as stored now), and an audit entry."""
        rows = []
        for importer, written in groups:
            model = importer.model
            versions: dict[int, int] = {}
            version = getattr(model, naming.VERSION_COLUMN)
            ids = sorted(pk for _, _, pk, _ in written)
            for start in range(0, len(ids), CHUNK):
                versions.update({pk: number for pk, number in self.session.execute(sa.select(model.id, version).where(
                    model.id.in_(ids[start:start + CHUNK])))})
            for _, action, pk, kept in written:
                rows.append({"batch_id": batch_id, "table_key": importer.table.key, "record_id": pk,
                             "action": action, "version": versions[pk],
                             "before": json.dumps(kept, ensure_ascii=False) if kept is not None else None})
        for start in range(0, len(rows), CHUNK):
            self.session.execute(BATCH_ROW_TABLE.insert(), rows[start:start + CHUNK])
        counts = self.result.counts
        self.session.execute(BATCH_TABLE.update().where(BATCH_TABLE.c.id == batch_id).values(
            inserted=counts["insert"], updated=counts["update"], unchanged=counts["unchanged"]))
        user = self.user
        append(self.session.connection(), [Entry(
            "import", self.table.key, batch_id,
            {"batch": batch_id, "file": self.file, "sha256": self.result.file_hash, "mode": self.request.mode,
             **counts, **({"children": self.result.children} if self.result.children else {})},
            getattr(user, "id", None), getattr(user, "username", None) or "(command line)", None)])
