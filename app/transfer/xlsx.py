""".xlsx files: the archive checked (a workbook, no zip bomb), each sheet's XML parsed once by expat
(linear in the file, whatever it holds) for what calamine does not say — how far its cells reach,
merged ranges, formula and error cells, cells shown as percentages, hidden rows — then its values read
by python-calamine (Rust) one row at a time, and only for the sheets the import reads.

Positions follow the format's rules, as calamine reads them: a cell's `r` (in any case), else the
cell after the one before it; a row's `r`, else the row after the one before it.
"""
from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from xml.parsers import expat

from .raw import (
    MAX_CELLS,
    MAX_COLUMNS,
    SKIPPED_SHEETS,
    CellError,
    Formula,
    Percent,
    RawSheet,
    refuse,
    refuse_far_cells,
)

DAMAGED = ("文件已损坏，不是有效的 .xlsx 工作簿", "the file is damaged: it is not a valid .xlsx workbook")
# A worksheet's XML packs 5 to 20 times; a member packed a hundred times tighter is a zip bomb.
MAX_RATIO, RATIO_FROM_BYTES, MAX_UNPACKED = 100, 1 << 20, 2 << 30
REF = re.compile(r"([A-Za-z]{1,3})([0-9]{1,7})")
PERCENT_FORMATS = {9, 10}  # Excel's built-in 0% and 0.00%
RELATIONSHIP_ID = "http://schemas.openxmlformats.org/officeDocument/2006/relationships}id"


class Enough(Exception):
    """Counted far enough."""


class Damaged(Exception):
    """The XML is not what a workbook holds (a DTD, a cell reference that is no reference)."""


@dataclass
class SheetScan:
    """What a sheet's XML says beyond its values."""

    merged: list[str] = field(default_factory=list)
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column), 1-based → =text
    errors: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) → #N/A
    percent: set[tuple[int, int]] = field(default_factory=set)
    hidden_rows: list[int] = field(default_factory=list)
    rows: int = 0
    columns: int = 0

    def marks(self) -> bool:
        return bool(self.formulas or self.errors or self.percent)


def column_number(letters: str) -> int:
    number = 0
    for letter in letters.upper():
        number = number * 26 + ord(letter) - 64
    return number


def parser(start: Any, end: Any = None, text: Any = None) -> Any:
    """Return an expat parser calling `start(local name, attributes)`, `end(local name)` and
    `text(data)`; a document type declaration (entities) is refused."""
    found = expat.ParserCreate(namespace_separator="}")

    def refuse_doctype(*args: Any) -> None:
        raise Damaged("a workbook's XML has no document type declaration")
    found.StartDoctypeDeclHandler = refuse_doctype
    found.StartElementHandler = lambda name, attrs: start(name.rpartition("}")[2], attrs)
    if end is not None:
        found.EndElementHandler = lambda name: end(name.rpartition("}")[2])
    if text is not None:
        found.CharacterDataHandler = text
    return found


def parse_member(archive: zipfile.ZipFile, member: str, handler: Any) -> None:
    """Feed an archive member to an expat parser in 1 MB pieces."""
    with archive.open(member) as stream:
        while piece := stream.read(1 << 20):
            handler.Parse(piece, False)
        handler.Parse(b"", True)


class SheetReader:
    """One pass over a sheet's XML; refuses, as soon as it is seen, a cell too far out."""

    def __init__(self, name: str, title: str, percent_styles: set[str]):
        self.name, self.title, self.percent_styles = name, title, percent_styles
        self.scan = SheetScan()
        self.row, self.column, self.cell = 0, 0, (0, 0)
        self.collecting: str | None = None  # "f" (formula text) or "v" (an error cell's value)
        self.text: list[str] = []
        self.error_cell = False
        self.hidden: list[int] = []
        self.handler = parser(self.start, self.end, self.characters)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "c":
            self.start_cell(attrs)
        elif name == "row":
            ref = attrs.get("r", "")
            self.row = int(ref) if ref.isdigit() and len(ref) <= 7 else self.row + 1
            self.column = 0
            self.reach(self.row, 1)
            if attrs.get("hidden") in ("1", "true"):
                self.hidden.append(self.row)
        elif name == "f":
            self.collect("f")
        elif name == "v" and self.error_cell:
            self.collect("v")
        elif name == "mergeCell" and attrs.get("ref"):
            self.scan.merged.append(attrs["ref"].upper())

    def start_cell(self, attrs: dict[str, str]) -> None:
        ref = attrs.get("r")
        if ref is None:
            self.column += 1
            row = self.row
        else:
            found = REF.fullmatch(ref)
            if found is None:
                raise Damaged(f"'{ref}' is no cell reference")
            self.column, row = column_number(found.group(1)), int(found.group(2))
        self.cell = (row, self.column)
        self.reach(row, self.column)
        self.error_cell = attrs.get("t") == "e"
        if attrs.get("s") in self.percent_styles:
            self.scan.percent.add(self.cell)

    def reach(self, row: int, column: int) -> None:
        scan = self.scan
        if row > scan.rows or column > scan.columns:
            scan.rows, scan.columns = max(scan.rows, row), max(scan.columns, column)
            if scan.columns > MAX_COLUMNS or scan.rows * scan.columns > MAX_CELLS:
                refuse_far_cells(self.name, self.title, scan.rows, scan.columns)

    def collect(self, what: str) -> None:
        self.collecting, self.text = what, []

    def characters(self, data: str) -> None:
        if self.collecting is not None:
            self.text.append(data)

    def end(self, name: str) -> None:
        if self.collecting == name:
            value = "".join(self.text)
            if name == "f":
                self.scan.formulas[self.cell] = "=" + value if value else "=…"
            else:
                self.scan.errors[self.cell] = value or "#N/A"
            self.collecting = None
        elif name == "c":
            self.error_cell = False


def scan_sheet(archive: zipfile.ZipFile, member: str, name: str, title: str, percent_styles: set[str]) -> SheetScan:
    reader = SheetReader(name, title, percent_styles)
    parse_member(archive, member, reader.handler)
    reader.scan.merged = list(dict.fromkeys(reader.scan.merged))
    reader.scan.hidden_rows = sorted(set(reader.hidden))
    return reader.scan


def sheet_members(archive: zipfile.ZipFile) -> dict[str, str]:
    """Return each sheet's name → its XML member, from the workbook and its relationships."""
    targets: dict[str, str] = {}
    sheets: list[tuple[str, str]] = []

    def relation(name: str, attrs: dict[str, str]) -> None:
        if name == "Relationship" and attrs.get("Id") and attrs.get("Target"):
            path = attrs["Target"].lstrip("/")
            targets[attrs["Id"]] = path if path.startswith("xl/") else f"xl/{path}"

    def sheet(name: str, attrs: dict[str, str]) -> None:
        if name == "sheet" and attrs.get("name") and attrs.get(RELATIONSHIP_ID):
            sheets.append((attrs["name"], attrs[RELATIONSHIP_ID]))
    parse_member(archive, "xl/_rels/workbook.xml.rels", parser(relation))
    parse_member(archive, "xl/workbook.xml", parser(sheet))
    names = set(archive.namelist())
    return {title: targets[rid] for title, rid in sheets if targets.get(rid) in names}


def percent_style_ids(archive: zipfile.ZipFile) -> set[str]:
    """Return the style indexes (a cell's s="N") whose number format shows a percentage: 0%, 0.00%,
    or a custom format with an unquoted %. (Our exports write percent fields as 0.00"%", a quoted
    sign: the number is already the percentage.)"""
    if "xl/styles.xml" not in archive.namelist():
        return set()
    custom: set[str] = set()
    formats: list[str] = []
    inside: list[bool] = [False]

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "numFmt" and shows_percent(attrs.get("formatCode", "")):
            custom.add(attrs.get("numFmtId", ""))
        elif name == "cellXfs":
            inside[0] = True
        elif name == "xf" and inside[0]:
            formats.append(attrs.get("numFmtId", "0"))

    def end(name: str) -> None:
        if name == "cellXfs":
            inside[0] = False
    parse_member(archive, "xl/styles.xml", parser(start, end))
    percent = {str(n) for n in PERCENT_FORMATS} | custom
    return {str(index) for index, number in enumerate(formats) if number in percent}


def shows_percent(code: str) -> bool:
    return "%" in re.sub(r'"[^"]*"|\\.', "", code)


def check_archive(name: str, archive: zipfile.ZipFile) -> None:
    """Refuse a zip that is no workbook (a .docx, a renamed .zip) or unpacks to far more than it holds."""
    members = archive.infolist()
    names = {m.filename for m in members}
    if "xl/workbook.xml" not in names:
        raise refuse(name, "这不是 Excel 工作簿（可能是 Word 文档或压缩包）；请上传 .xlsx 或 .csv",
                     "this is no Excel workbook (perhaps a Word document or a zip archive); upload a .xlsx or .csv")
    total = 0
    for member in members:
        total += member.file_size
        ratio = member.file_size / max(member.compress_size, 1)
        if (member.file_size > RATIO_FROM_BYTES and ratio > MAX_RATIO) or total > MAX_UNPACKED:
            raise refuse(name, f"文件解压后异常巨大（{member.filename} 压缩了 {ratio:.0f} 倍），可能是恶意文件，已拒绝",
                         f"the file unpacks to an abnormal size ({member.filename} is packed {ratio:.0f} times); "
                         "it may be malicious and was refused")


def read_xlsx(name: str, data: bytes) -> list[RawSheet]:
    """Return the visible sheets of a workbook; each sheet's XML is scanned now, its values read by
    calamine only when its rows are asked for."""
    from python_calamine import CalamineWorkbook

    from .problems import FileRefused
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        check_archive(name, archive)
        members = sheet_members(archive)
        percent_styles = percent_style_ids(archive)
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        visible = [m.name for m in book.sheets_metadata if str(m.visible).endswith("Visible")
                   and str(m.typ).endswith("WorkSheet") and m.name not in SKIPPED_SHEETS]
        if not visible:
            raise refuse(name, "工作簿里没有可见的工作表", "the workbook has no visible sheet")
        scan = scan_member(archive, members, name, visible[0], percent_styles)
    except FileRefused:
        raise
    except Exception:  # a broken workbook raises anything from KeyError to the parsers' own errors
        raise refuse(name, *DAMAGED) from None
    first = RawSheet(visible[0], xlsx_rows(name, book, visible[0], scan), scan.merged, scan.rows, scan.hidden_rows)
    return [first] + [lazy_sheet(name, archive, members, book, title, percent_styles) for title in visible[1:]]


def scan_member(archive: zipfile.ZipFile, members: dict[str, str], name: str, title: str,
                percent_styles: set[str]) -> SheetScan:
    return scan_sheet(archive, members[title], name, title, percent_styles) if title in members else SheetScan()


def lazy_sheet(name: str, archive: zipfile.ZipFile, members: dict[str, str], book: Any, title: str,
               percent_styles: set[str]) -> RawSheet:
    """Return a sheet scanned and read only when its rows are first asked for (a child sheet of the
    import); the other sheets of a workbook are never read at all."""
    from .problems import FileRefused
    sheet = RawSheet(title, iter(()), [])

    def rows() -> Iterator[tuple[int, list[Any]]]:
        try:
            scan = scan_member(archive, members, name, title, percent_styles)
        except FileRefused:
            raise
        except Exception:
            raise refuse(name, *DAMAGED) from None
        sheet.merged[:], sheet.hidden_rows[:], sheet.estimated_rows = scan.merged, scan.hidden_rows, scan.rows
        yield from xlsx_rows(name, book, title, scan)
    sheet.rows = rows()
    return sheet


def xlsx_rows(name: str, book: Any, title: str, scan: SheetScan) -> Iterator[tuple[int, list[Any]]]:
    """Yield (row number, cells) of a sheet from its first row and column; a formula cell comes as
    Formula(text), an error as CellError(#N/A), a number shown as a percentage as Percent, an empty
    cell as None. The sheet is read when the first row is asked for."""
    try:
        sheet = book.get_sheet_by_name(title)
    except Exception:
        raise refuse(name, "文件已损坏：工作表内容无法读取", "the file is damaged: a sheet cannot be read") from None
    top, left = sheet.start or (0, 0)
    marks = scan.marks()
    for offset, row in enumerate(sheet.iter_rows()):
        number = top + offset + 1
        cells: list[Any] = [None] * left + [None if value == "" else value for value in row]
        if marks:
            mark_cells(number, cells, scan)
        yield number, cells


def mark_cells(number: int, cells: list[Any], scan: SheetScan) -> None:
    for column in range(1, len(cells) + 1):
        where = (number, column)
        value = cells[column - 1]
        if where in scan.formulas:
            cells[column - 1] = Formula(scan.formulas[where])
        elif where in scan.errors:
            cells[column - 1] = CellError(scan.errors[where])
        elif where in scan.percent and isinstance(value, float | int) and not isinstance(value, bool):
            cells[column - 1] = Percent(value)


def count_rows(data: bytes, enough: int) -> int:
    """Return how many rows the first visible sheet reaches, counting no further than `enough` (0 when
    the file cannot be read: the import will say why)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = sheet_members(archive)
        first = next(iter(members.values()))
        rows = [0]

        def start(name: str, attrs: dict[str, str]) -> None:
            if name == "row":
                ref = attrs.get("r", "")
                rows[0] = int(ref) if ref.isdigit() and len(ref) <= 7 else rows[0] + 1
                if rows[0] > enough:
                    raise Enough()
        parse_member(archive, first, parser(start))
    except Enough:
        return enough + 1
    except Exception:  # noqa: BLE001 - any unreadable file: the import itself gives the message
        return 0
    return rows[0]
