"""Import a sheet into a table: every row checked by the forms' rules, then all rows written in one
transaction or none (`Importer.run`); a dry run writes them too and rolls back, so that what only the
database and the ORM's rules can tell (a contact of another customer, a unique index) is found too.

Writes go through the ORM session like the screens' and the API's, so computed fields, `match:`,
encryption and the audit log apply unchanged. Runs as the request's user (current_user): the gate
decides whether they may import, the rows they reach and the fields they may write.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import replace as dataclass_replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.fields.names import company_key, fold
from app.models.build import BuiltModels
from app.models.encryption import MASK
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import FieldAccess, current_user, field_access, may, pick_condition, row_condition

from .batches import Written, close_batch, earlier_import, open_batch
from .cells import Lookup, cell_value, field_user_lookup, link_lookup
from .columns import ID_KEY, Column, is_key_row, normal
from .headings import Layout, Sheet, is_blank, read_layout
from .problems import FileRefused, ImportCancelled, ImportResult, Problem
from .raw import RawBook, RawSheet
from .read import read_book
from .writing import Writer

MODES = ("insert", "upsert")
REQUIRED = Label("必填", "required")
# What a cell says to empty a field on an update (an empty cell keeps what is stored).
CLEAR_MARKS = frozenset({normal(m) for m in ("（清空）", "(清空)", "<清空>", "(clear)", "<clear>")})
TOTAL_WORDS = frozenset({"合计", "总计", "小计", "共计", "total", "subtotal", "grandtotal", "sum"})
Progress = Callable[[str, int, int], None]  # (phase: check | write, rows done, rows in all)

__all__ = ["ImportRequest", "ImportResult", "Importer", "ImportCancelled", "company_key"]


@dataclass
class ImportRequest:
    """What to import: the file (name and bytes) into which table, how, and in which language to answer."""

    table: str
    file_name: str
    data: bytes
    mode: str = "insert"
    key: str | None = None  # upsert: the unique field (key or label) or id that finds the existing record
    dry_run: bool = False
    allow_duplicates: bool = False  # import rows flagged as likely duplicates (and a file imported before)
    confirm_rules: bool = False  # pass the warnings of the record rules (refusals still refuse)
    lang: str = "zh"
    max_bytes: int = 50 << 20


@dataclass(slots=True)
class PlannedRow:
    """One data row: where it is, its values, and what the import does with it."""

    row: int
    values: dict[str, Any]
    action: str = "insert"  # insert | update | unchanged
    record_id: int | None = None
    version: int | None = None  # the record's version in an exported file
    cleared: set[str] = field(default_factory=set)  # fields the file empties ((清空))
    readonly: list[tuple[FieldSpec, Any]] = field(default_factory=list)  # values of fields the user may not write
    place: int = 0  # among the file's planned rows: how a child sheet's row names it
    found_by: Any = None  # upsert: the key value that found the stored record


def is_masked(value: Any) -> bool:
    """Return True for a value as an export shows an encrypted field to a user who may not reveal it."""
    return isinstance(value, str) and (MASK in value or "****" in value or "***@" in value)


def is_total_row(cells: list[Any]) -> bool:
    """Return True for a list's 合计 / 总计 row: its first filled cell says so."""
    first = next((c for c in cells if c not in (None, "") and str(c).strip()), None)
    return first is not None and normal(first).rstrip(":：") in TOTAL_WORDS


def rows_text(numbers: list[int]) -> str:
    return "、".join(str(n) for n in numbers[:10]) + (" 等" if len(numbers) > 10 else "")


class Importer:
    """One import of one file into one table, as the current user."""

    def __init__(self, models: BuiltModels, session: orm.Session, user_model: type, request: ImportRequest,
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                 before_commit: Callable[[ImportResult], None] | None = None, parent: Importer | None = None):
        self.models, self.session, self.user_model, self.request = models, session, user_model, request
        self.table: TableSpec = models.schema.table(request.table)
        self.model: Any = models.model(request.table)
        self.user = current_user()
        self.access: FieldAccess = field_access(models.schema, request.table, self.user)
        self.lang = request.lang
        self.progress = progress or (lambda phase, done, total: None)
        self.before_commit = before_commit
        self.cancelled = cancelled or (lambda: False)
        self.parent = parent  # the importer of the sheet whose rows a child sheet's rows belong to
        self.result: ImportResult = parent.result if parent else ImportResult(
            request.file_name, request.table, request.mode, request.dry_run,
            file_hash=hashlib.sha256(request.data).hexdigest())
        self.counts = self.result.counts if parent is None else {"insert": 0, "update": 0, "unchanged": 0}
        self.creates = may(models, self.table.key, self.user, "create")
        self.updates = may(models, self.table.key, self.user, "update")
        self.layout: Layout | None = None
        self.lookups: dict[str, Lookup] = {}
        self.existing: dict[str, dict[Any, tuple[int, Any]]] = {}  # unique field → folded value → (id, value)
        self.updatable: set[int] | None = set()  # ids of the records the user may update (None: all)
        self.matched: dict[int, int] = {}  # record id → the row that updates it
        self.similar: dict[str, tuple[int, str]] = {}
        self.parent_names: dict[str, set[int]] = {}  # this file's rows, by title and unique values (folded)
        self.failed_names: set[str] = set()  # ... of its rows that have problems
        self.current = PlannedRow(0, {})  # the row being planned
        self.actions: dict[int, str] = {}  # place of a planned row → insert | update | unchanged
        self.record_ids: dict[int, int] = {}  # place of a written row → its record's id
        self.link_to_parent: FieldSpec | None = None
        self.data_rows = 0  # non-empty rows read so far
        self.planned = 0  # rows that passed their checks so far
        self.expected = 0  # data rows the sheet says it has (for progress)
        self.writer = Writer(self)

    @property
    def key(self) -> str | None:
        return self.layout.key if self.layout else None

    def column_of(self, key: str | None) -> int | None:
        return self.layout.column_of(key) if self.layout and key else None

    def cell_problem(self, sheet: RawSheet, row: int, key: str | None, message: Label,
                     spec: FieldSpec | None = None) -> None:
        spec = spec or (self.table.field(key) if key and self.table.has_field(key) else None)
        self.result.problem(message, sheet.name, row, self.column_of(key), spec.label if spec else None)

    # -- the steps --------------------------------------------------------------------------------
    def run(self) -> ImportResult:
        """Return the result: problems, or the rows written (dry run: rolled back).

        The rows are read, checked and written a chunk at a time inside one transaction, so memory stays
        flat however long the file; after the first problem nothing more is written, every row is still
        checked, and the transaction is rolled back."""
        if not self.allowed():
            return self.result
        try:
            book = read_book(self.request.file_name, self.request.data, self.request.max_bytes)
            self.result.file = book.file
            sheet = book.sheets[0]
            child_sheets = self.child_sheets(book)
            self.flag_file_imported_before()
            rows = self.prepare(book, sheet)
            if rows is None:
                return self.result
            self.writer.write_all(book, sheet, rows, child_sheets)
        except FileRefused as exc:
            self.result.problems.append(exc.problem)
        return self.result

    def allowed(self) -> bool:
        """Refuse, before reading anything, an unknown mode or a user who may not import here."""
        table, mode = self.table.label, self.request.mode
        if mode not in MODES:
            self.result.problem(Label(f"导入方式“{mode}”无效，应为 insert 或 upsert",
                                      f"unknown import mode '{mode}': use insert or upsert"))
        elif not may(self.models, self.table.key, self.user, "import"):
            self.result.problem(Label(f"您无权导入{table.zh}", f"you may not import {table.en}"))
        elif mode == "insert" and not self.creates:
            self.result.problem(Label(f"您无权新增{table.zh}：只能按已有记录更新（upsert）",
                                      f"you may not add {table.en}: only an upsert of existing records is open to you"))
        elif not self.creates and not self.updates:
            self.result.problem(Label(f"您无权新增或修改{table.zh}", f"you may neither add nor change {table.en}"))
        return not self.result.problems

    def flag_file_imported_before(self) -> None:
        """Flag a file whose very bytes were imported into the table before (and not reverted): importing
        it again would add every row twice. (An upsert of it changes nothing, so it is not flagged.)"""
        if self.request.mode != "insert":
            return
        earlier = earlier_import(self.session, self.table.key, self.result.file_hash)
        if earlier is not None:
            self.result.duplicates.append(Problem(self.result.file, Label(
                f"这个文件已于 {earlier.at:%Y-%m-%d %H:%M} 由 {earlier.username} 导入过（第 {earlier.id} 批），"
                "再导入一次会重复新增其中的每一行",
                f"this very file was imported on {earlier.at:%Y-%m-%d %H:%M} by {earlier.username} (batch "
                f"{earlier.id}); importing it again adds each of its rows a second time")))

    def child_sheets(self, book: RawBook) -> list[tuple[str, RawSheet]]:
        """Return the sheets after the first that hold an inline child table's rows. Another sheet is
        noted as left out; for a table with inline children it is a problem (its lines would be lost)."""
        found = []
        for other in book.sheets[1:]:
            child = self.child_table_of(other.name)
            if child is not None:
                found.append((child, other))
            elif self.table.inline:
                names = [self.models.schema.table(k).label for k in self.table.inline]
                self.result.problem(Label(
                    f"无法识别工作表“{other.name}”：{'、'.join(n.zh for n in names)}应放在名为"
                    f"“{'”或“'.join(n.zh for n in names)}”的工作表里；不需要导入的工作表请删除",
                    f"the sheet '{other.name}' is not known: {', '.join(n.en for n in names)} go on a sheet named "
                    f"'{' or '.join(n.en for n in names)}'; delete sheets that are not to be imported"), other.name)
            else:
                self.result.note(Label("此工作表未导入（只导入第一个工作表）",
                                       "this sheet was not imported (only the first one is)"), other.name)
        return found

    def child_table_of(self, sheet_name: str | None) -> str | None:
        """Return the inline child table (`inline:` of this table) a sheet is named after, by key or label."""
        wanted = normal(sheet_name)
        for key in self.table.inline:
            child = self.models.schema.table(key)
            if wanted in (normal(child.key), normal(child.label.zh), normal(child.label.en)):
                return key
        return None

    def child_importer(self, book: RawBook, child_key: str) -> Importer:
        """Return the importer of a child sheet (order lines of the orders above): its link to this table
        names a row of this file by the parent's title or a unique field."""
        child = Importer(self.models, self.session, self.user_model, dataclass_replace(
            self.request, table=child_key, mode="insert", key=None), cancelled=self.cancelled, parent=self)
        link = next(f for f in child.table.fields if f.type == "link" and f.to == self.table.key)
        child.link_to_parent = link
        names = [self.table.field(k).label for k in self.parent_keys()]
        lookup = Lookup(self.table.label, hint=Label(
            f"（应为本文件“{book.sheets[0].name}”表中某行的{'或'.join(n.zh for n in names)}）",
            f" (write the {' or '.join(n.en for n in names)} of a row of the sheet '{book.sheets[0].name}')"))
        lookup.names = self.parent_names  # a row of this file (by its place), not a stored record
        lookup.refused = {name: Label(f"：它在“{book.sheets[0].name}”表中的那一行有问题，请先改正那一行",
                                      f"its row on the sheet '{book.sheets[0].name}' has problems; mend that row first")
                          for name in self.failed_names}
        child.lookups[link.key] = lookup
        return child

    def parent_keys(self) -> list[str]:
        return [self.table.title] + [f.key for f in self.table.fields if f.unique and f.key != self.table.title]

    def prepare(self, book: RawBook, sheet: RawSheet) -> Iterator[PlannedRow] | None:
        """Read the headings; return the sheet's data rows as they are checked (None when the headings
        do not allow reading them: the problems say why)."""
        extra = None
        if self.link_to_parent is not None and self.parent is not None:  # 订单号 heads the column of the order
            extra = {normal(n): self.link_to_parent.key for k in self.parent.parent_keys()
                     for n in (k, self.parent.table.field(k).label.zh, self.parent.table.field(k).label.en)}
        wanted = Sheet(self.table, self.access, self.request.mode, self.request.key, book.kind, self.lang, extra)
        layout = read_layout(sheet, wanted, self.result)
        if layout is None:
            return None
        self.layout = layout
        self.build_lookups(layout.columns)
        self.load_existing(layout.columns)
        self.expected = max(sheet.estimated_rows - layout.last_row, 0)
        hidden = [n for n in sheet.hidden_rows if n > layout.last_row]
        if hidden:
            self.result.note(Label(f"第 {rows_text(hidden)} 行在 Excel 中是隐藏的（可能被筛选掉了），也一并导入",
                                   f"rows {', '.join(map(str, hidden[:10]))} are hidden in Excel (perhaps filtered "
                                   "out) and are imported too"), sheet.name)
        return self.planned_rows(book, sheet, layout)

    def planned_rows(self, book: RawBook, sheet: RawSheet, layout: Layout) -> Iterator[PlannedRow]:
        """Yield each data row that passed its checks (the others' problems are recorded); key rows and
        合计 rows are left out with a note."""
        seen: dict[str, dict[Any, int]] = {}
        names: dict[str, int] = {}
        keys = self.parent_keys() if self.table.inline else []
        left_out: dict[str, list[int]] = {"key": [], "total": []}
        headless: set[int] = set()  # columns without a heading already named
        for number, cells in layout.rows:
            if is_blank(cells):
                continue
            skipped = "total" if is_total_row(cells) else "key" if self.is_key_row(cells) else None
            if skipped is not None:
                left_out[skipped].append(number)
                continue
            self.data_rows += 1
            if book.kind == "csv" and len(cells) > layout.width and any(c not in (None, "")
                                                                         for c in cells[layout.width:]):
                self.result.problem(Label(
                    f"本行有 {len(cells)} 列，标题行只有 {layout.width} 列；请检查分隔符或多余的逗号",
                    f"this row has {len(cells)} columns but the heading row only {layout.width}; check the "
                    "delimiter or stray commas"), sheet.name, number)
                continue
            self.check_headless(sheet, number, cells, layout, headless)
            found = self.plan_row(sheet, number, cells, seen, names)
            if found is None:
                self.failed_names |= {fold(v) for k in keys if (v := self.current.values.get(k)) not in (None, "")}
                continue
            found.place = self.planned
            self.planned += 1
            for key in keys:  # so that a child sheet can name this row
                value = found.found_by if key == self.key and found.found_by is not None else found.values.get(key)
                if value not in (None, ""):
                    self.parent_names.setdefault(fold(value), set()).add(-found.place - 1)
            yield found
        self.note_left_out(sheet, left_out)
        if not self.data_rows and not self.result.problems:
            self.result.problem(Label("工作表只有标题行，没有数据", "the sheet has headings but no data rows"),
                                sheet.name)

    def check_headless(self, sheet: RawSheet, number: int, cells: list[Any], layout: Layout,
                       named: set[int]) -> None:
        """Refuse data in a column without a heading (once per column): it would be lost unnoticed."""
        for index, cell in enumerate(cells, start=1):
            if (index in layout.blank or index > layout.width) and index not in named and \
                    cell not in (None, "") and str(cell).strip():
                named.add(index)
                self.result.problem(Label("这一列没有标题，却有数据（从这一行起）；请补上标题，或删除这一列",
                                          "this column has no heading but holds data (from this row on); give it a "
                                          "heading or delete it"), sheet.name, number, index)

    def is_key_row(self, cells: list[Any]) -> bool:
        return is_key_row(cells, self.table)

    def note_left_out(self, sheet: RawSheet, left_out: dict[str, list[int]]) -> None:
        if left_out["total"]:
            self.result.note(Label(f"第 {rows_text(left_out['total'])} 行是合计行，未导入",
                                   f"rows {', '.join(map(str, left_out['total'][:10]))} are totals and were not "
                                   "imported"), sheet.name)
        if left_out["key"]:
            self.result.note(Label(f"第 {rows_text(left_out['key'])} 行是模板的字段键行（排序后移到了这里），未导入",
                                   f"rows {', '.join(map(str, left_out['key'][:10]))} hold the template's field "
                                   "keys (moved there by sorting) and were not imported"), sheet.name)

    def build_lookups(self, columns: list[Column]) -> None:
        """Set, per link and user column, who may be named there."""
        for column in columns:
            spec = column.spec
            if spec is None or not spec.is_relation or spec.key in self.lookups:
                continue
            if spec.type == "link":
                self.lookups[spec.key] = link_lookup(self.session, self.models.schema, self.models, spec,
                                                     pick_condition(self.models, spec.to or "", self.user))
            else:
                self.lookups[spec.key] = field_user_lookup(self.session, self.user_model, self.models,
                                                           self.table.key, spec, self.user)

    def load_existing(self, columns: list[Column]) -> None:
        """Load, per unique field in the file, the stored values (folded) → (record id, value); for an
        upsert, the ids of the records the user may update; for a table of companies, their names."""
        table = self.models.metadata.tables[naming.table_name_for(self.table.key)]
        for column in columns:
            spec = column.spec
            if spec is not None and spec.unique and not spec.encrypted:
                col = table.c[naming.column_name_for(spec)]
                stored = self.session.execute(sa.select(table.c.id, col).where(col.is_not(None)))
                self.existing[spec.key] = {fold(v) if isinstance(v, str) else v: (pk, v) for pk, v in stored}
        if self.request.mode == "upsert":
            condition = self.write_condition("update")
            self.updatable = None if condition is None else {
                pk for (pk,) in self.session.execute(sa.select(self.model.id).where(condition))}
        title = self.table.field(self.table.title)
        if self.flags_similar_names() and not title.encrypted:
            col = table.c[naming.column_name_for(title)]
            for pk, value in self.session.execute(sa.select(table.c.id, col)):
                self.similar.setdefault(company_key(value), (pk, value))

    def write_condition(self, verb: str) -> Any | None:
        """Return the rows the user may `verb` (create, update) and import into; None for all."""
        verbs = (verb,) if self.parent else (verb, "import")  # a child sheet's lines go with their order
        conditions = [c for c in (row_condition(self.models, self.table.key, self.user, v) for v in verbs)
                      if c is not None]
        return sa.and_(*conditions) if conditions else None

    def flags_similar_names(self) -> bool:
        """Return True for a table of companies (one with a USCC field): same name, likely the same company."""
        return any(f.type == "uscc" for f in self.table.fields) and self.table.field(self.table.title).type == "string"

    # -- one row ----------------------------------------------------------------------------------
    def plan_row(self, sheet: RawSheet, number: int, cells: list[Any], seen: dict[str, dict[Any, int]],
                 names: dict[str, int]) -> PlannedRow | None:
        """Return one row's values (None when a cell is wrong: its problems are recorded)."""
        row = self.current = PlannedRow(number, {})
        bad = False
        assert self.layout is not None
        for column in self.layout.columns:
            raw = cells[column.index - 1] if column.index - 1 < len(cells) else None
            if raw is None or isinstance(raw, str) and not raw.strip():
                continue  # left empty: a new record gets the field's default, a stored one keeps its value
            if column.spec is None:
                bad = not self.read_special(sheet, row, column, raw) or bad
                continue
            bad = not self.read_cell(sheet, row, column.spec, raw) or bad
        if bad:
            self.check_unique(sheet, row, seen)  # so that a value repeated later is named there too
            return None
        if not self.place_row(sheet, row) or not self.check_unique(sheet, row, seen):
            return None
        if self.parent is not None and not self.check_parent(sheet, row):
            return None
        self.flag_duplicate(sheet, row, names)
        return row

    def read_special(self, sheet: RawSheet, row: PlannedRow, column: Column, raw: Any) -> bool:
        """Read the id or version cell (kept for an upsert, ignored when inserting); False when it is no number."""
        if self.request.mode == "insert":
            return True
        text = str(raw).strip().removeprefix("#")
        number: int | None = None
        if isinstance(raw, float) and raw.is_integer() and abs(raw) < 2**31:
            number = int(raw)
        elif text.isascii() and text.isdigit() and len(text) <= 10:  # never int() of 5,000 digits
            number = int(text)
        if isinstance(raw, bool) or number is None or number > 2**31:
            self.cell_problem(sheet, row.row, column.key, Label(
                f"“{raw}”不是{column.label.zh}（应为整数）",
                f"'{raw}' is no {column.label.en.lower()} (a whole number)"))
            return False
        if column.key == ID_KEY:
            row.record_id = number
        else:
            row.version = number
        return True

    def read_cell(self, sheet: RawSheet, row: PlannedRow, spec: FieldSpec, raw: Any) -> bool:
        """Put one cell's value on the row; False when it is wrong (its problems are recorded)."""
        if spec.key in self.access.masked:
            if is_masked(raw):
                return True  # the mask an export wrote: changes nothing
            self.cell_problem(sheet, row.row, spec.key, Label(
                "您无权查看或修改这个加密字段；请留空，或保持导出时的遮罩值",
                "you may neither see nor change this encrypted field; leave it empty or as the export masked it"))
            return False
        if isinstance(raw, str) and normal(raw) in CLEAR_MARKS:
            if spec.required:
                self.cell_problem(sheet, row.row, spec.key, Label("必填，不能清空", "required; it cannot be cleared"))
                return False
            row.values[spec.key] = None
            row.cleared.add(spec.key)
            return True
        value, messages = cell_value(spec, raw, self.lookups)
        for message in messages:
            self.cell_problem(sheet, row.row, spec.key, message)
        if not messages:
            row.values[spec.key] = value
        return not messages

    def place_row(self, sheet: RawSheet, row: PlannedRow) -> bool:
        """Decide insert or update (upsert: by the key column, among the records the user may update);
        refuse a record named twice, an insert the user may not make, a missing required value, and set
        aside values of fields the user may not write (compared with the stored ones when staged)."""
        if not self.find_record(sheet, row):
            return False
        if row.action == "insert":
            if not self.creates:
                self.cell_problem(sheet, row.row, self.key, Label(
                    f"系统中没有对应的记录，而您无权新增{self.table.label.zh}",
                    f"no stored record matches, and you may not add {self.table.label.en}"))
                return False
            for spec in self.table.fields:
                if (spec.required and row.values.get(spec.key) in (None, "", []) and spec.default is None
                        and not spec.is_computed and not spec.default_from and spec.type != "boolean"
                        and self.access.writes(spec.key)):
                    self.cell_problem(sheet, row.row, spec.key, REQUIRED)
                    return False
        for key, value in list(row.values.items()):
            if not self.access.writes(key):
                row.values.pop(key)
                row.readonly.append((self.table.field(key), value))
        return True

    def find_record(self, sheet: RawSheet, row: PlannedRow) -> bool:
        """Upsert: match the row to a stored record the user may update, by the key column; False (with
        a problem) for an id not among them, a key value another's record holds, or a record named twice."""
        key = self.key
        if self.request.mode != "upsert" or key is None:
            return True
        value = row.record_id if key == ID_KEY else row.values.get(key)
        row.record_id = None
        if value is None:
            return True
        if key == ID_KEY:
            pk: int | None = value if self.updatable is None or value in self.updatable else None
            if pk is None:
                self.cell_problem(sheet, row.row, ID_KEY, Label(
                    f"没有编号为 {value} 的记录（或您无权修改它）",
                    f"there is no record with ID {value} (or you may not change it)"))
                return False
        else:
            pk = self.existing.get(key, {}).get(fold(value) if isinstance(value, str) else value, (None, None))[0]
            if pk is not None and self.updatable is not None and pk not in self.updatable:
                label = self.table.field(key).label
                self.cell_problem(sheet, row.row, key, Label(
                    f"已有{label.zh}为“{value}”的记录，但它不在您可修改的范围内（例如负责人不是您）",
                    f"a record with {label.en} '{value}' exists, but it is not among those you may change"))
                return False
            if pk is not None:
                row.found_by = row.values.pop(key)  # it finds the record; its stored writing is kept
        if pk is None:
            return True
        if pk in self.matched:
            self.cell_problem(sheet, row.row, key, Label(
                f"与第 {self.matched[pk]} 行是同一条记录（#{pk}）；每条记录只能在文件中出现一次",
                f"the same record (#{pk}) as row {self.matched[pk]}; each record may appear once in a file"))
            return False
        self.matched[pk] = row.row
        row.action, row.record_id = "update", pk
        return True

    def check_unique(self, sheet: RawSheet, row: PlannedRow, seen: dict[str, dict[Any, int]]) -> bool:
        """Refuse a unique value repeated in the file or held by another stored record, however it is
        written (ＰＩＧ－００１ and pig-001 are PIG-001)."""
        ok = True
        for spec in self.table.fields:
            value = row.values.get(spec.key)
            if not spec.unique or value in (None, ""):
                continue
            folded = fold(value) if isinstance(value, str) else value
            earlier = seen.setdefault(spec.key, {}).get(folded)
            if earlier is not None:
                self.cell_problem(sheet, row.row, spec.key, Label(f"“{value}”与第 {earlier} 行重复",
                                                                  f"'{value}' repeats row {earlier}"))
                ok = False
                continue
            seen[spec.key][folded] = row.row  # only the row: a file of 100,000 rows keeps 100,000 of these
            other, stored = self.existing.get(spec.key, {}).get(folded, (None, None))
            if other is not None and other != row.record_id:
                differs = "" if stored == value else f"“{stored}”（仅全角半角、大小写或空格不同）"
                self.cell_problem(sheet, row.row, spec.key, Label(
                    f"已存在相同的{spec.label.zh}“{value}”" if not differs else f"与已有的{spec.label.zh}{differs}相同",
                    f"another record already has {spec.label.en} '{stored}'"))
                ok = False
        return ok

    def check_parent(self, sheet: RawSheet, row: PlannedRow) -> bool:
        """A child sheet's row belongs to a row of this file that adds a record: the lines of an order
        that exists already are not added to (a second import of the same file would double them)."""
        link = self.link_to_parent
        assert link is not None and self.parent is not None
        value = row.values.get(link.key)
        if not isinstance(value, int) or value >= 0 or self.parent.actions.get(-value - 1, "insert") == "insert":
            return True
        self.cell_problem(sheet, row.row, link.key, Label(
            f"{self.parent.table.label.zh}已存在，本次只会更新它：{self.table.label.zh}只能随新增的"
            f"{self.parent.table.label.zh}一起导入，已有的请在{self.parent.table.label.zh}页面修改",
            f"that {self.parent.table.label.en.lower()} exists and is only updated: {self.table.label.en} are imported "
            f"with new {self.parent.table.label.en.lower()} records only; change an existing one on its page"))
        return False

    def flag_duplicate(self, sheet: RawSheet, row: PlannedRow, names: dict[str, int]) -> None:
        """Flag a new company whose normalised name an existing record or an earlier row already has."""
        if row.action != "insert" or not self.flags_similar_names():
            return
        name = row.values.get(self.table.title)
        key = company_key(name)
        if not key:
            return
        title = self.table.field(self.table.title)
        column = self.column_of(title.key)
        if key in self.similar:
            pk, stored = self.similar[key]
            self.result.duplicates.append(Problem(self.result.file, Label(
                f"可能与已有记录重复：#{pk}“{stored}”", f"likely a duplicate of the stored record #{pk} '{stored}'"),
                sheet.name, row.row, column, title.label))
        elif key in names:
            self.result.duplicates.append(Problem(self.result.file, Label(
                f"可能与第 {names[key]} 行重复（名称相近）",
                f"likely a duplicate of row {names[key]} (a similar name)"),
                sheet.name, row.row, column, title.label))
        else:
            names[key] = row.row

    def record_written(self, written: dict[str, list[Written]], batch_id: int) -> None:
        """Record the batch (called by the writer inside the import's transaction, before it commits)."""
        details = {"file": self.result.file, "sha256": self.result.file_hash, "mode": self.request.mode,
                   **({"children": self.result.children} if self.result.children else {})}
        close_batch(self.session, self.models, batch_id, written, self.result.counts, details, self.user)

    def open_batch(self) -> int:
        return open_batch(self.session, self.user, self.table.key, self.result.file, self.result.file_hash,
                          self.request.mode)
