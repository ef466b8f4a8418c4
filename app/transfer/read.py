"""Files → sheets of raw cells, streamed; a file that is no usable spreadsheet is refused, with why.

`.xlsx` is read by python-calamine one row at a time, after one pass over each sheet's XML that finds
what calamine does not say (merged, formula and error cells, percentages, hidden rows) and refuses a
sheet that reaches too far; Excel 97-2003 `.xls` by xlrd; `.csv` is decoded strictly as UTF-8 (with
or without BOM), else as GB18030 (which Chinese Excel writes as "GBK"), never guessed by a detector:
on a short file a detector's guess is often wrong, and a strict decode fails loudly.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from app.schema.model import Label

from .problems import FileRefused

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of .xls files and of password-protected .xlsx
ZIP_MAGIC = b"PK\x03\x04"
ENCRYPTED_MARK = "EncryptionInfo".encode("utf-16-le")
# A worksheet's XML packs 5 to 20 times; a member packed a hundred times tighter is a zip bomb.
MAX_RATIO, RATIO_FROM_BYTES, MAX_UNPACKED = 100, 1 << 20, 2 << 30
CSV_DELIMITERS = ",;\t"
HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html|table|\?xml[^>]*>\s*<html)", re.IGNORECASE)
# calamine holds a sheet as a dense grid from A1 to its last cell (about 32 bytes a cell): one cell at
# XFD1048576 in a 2 KB file would take 550 GB. A sheet of more cells than this is refused unread.
MAX_CELLS, MAX_COLUMNS = 5_000_000, 1000
SKIPPED_SHEETS = ("说明", "Notes", "_options")
DAMAGED = ("文件已损坏，不是有效的 .xlsx 工作簿", "the file is damaged: it is not a valid .xlsx workbook")
DAMAGED_XLS = ("文件已损坏，不是有效的 .xls 工作簿", "the file is damaged: it is not a valid .xls workbook")
PASSWORD = ("工作簿设置了打开密码，无法读取；请在 Excel 中取消密码后再导入",
            "the workbook is protected by a password; remove the password in Excel and import again")


class Formula(str):
    """A cell that holds a formula (its text, =SUM(B2:B9)) rather than a value."""


class CellError(str):
    """A cell that holds one of Excel's error values (#N/A, #DIV/0!, #REF!) rather than a value."""


class Percent(float):
    """A number shown as a percentage (0.13 shown as 13%): a percent field takes it as 13."""


@dataclass
class RawSheet:
    """One sheet: its name (None for a CSV), its rows as (Excel row number, cells), its merged ranges."""

    name: str | None
    rows: Iterator[tuple[int, list[Any]]]
    merged: list[str] = field(default_factory=list)
    estimated_rows: int = 0  # from the sheet's stated size: for progress, never trusted for anything else
    hidden_rows: list[int] = field(default_factory=list)  # rows hidden in Excel (filtered out, folded away)


@dataclass
class RawBook:
    file: str
    kind: str  # "xlsx" or "csv"
    sheets: list[RawSheet]


def refuse(file: str, zh: str, en: str) -> FileRefused:
    return FileRefused(file, Label(zh, en))


def clean_file_name(file: str) -> str:
    """Return an uploaded file's name as shown and stored: its last part, without control, invisible or
    direction-changing characters (a name shown backwards), at most 200 characters (its extension kept)."""
    name = "".join(c for c in PurePath(str(file).replace("\\", "/")).name
                   if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")).strip()
    if len(name) > 200:
        suffix = PurePath(name).suffix[:10]
        name = name[:200 - len(suffix)] + suffix
    return name or "file"


def read_book(file: str, data: bytes, max_bytes: int) -> RawBook:
    """Return the sheets of the file `file` (its name, any language) holding `data`; FileRefused when it
    is too large, no spreadsheet, encrypted, corrupt, a zip bomb, or a CSV in no encoding we read."""
    name = clean_file_name(file)
    if len(data) > max_bytes:
        raise refuse(name, f"文件有 {len(data) / 1048576:.1f} MB，超过上限 {max_bytes / 1048576:.0f} MB"
                           "（CRM_IMPORT_MAX_MB）；请分成几个文件导入",
                     f"the file has {len(data) / 1048576:.1f} MB, over the limit of {max_bytes / 1048576:.0f} MB "
                     "(CRM_IMPORT_MAX_MB); split it into several files")
    if not data.strip():
        raise refuse(name, "文件是空的", "the file is empty")
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_MARK in data:
            raise refuse(name, *PASSWORD)
        return RawBook(name, "xls", read_xls(name, data))
    if data.startswith(ZIP_MAGIC):
        return RawBook(name, "xlsx", read_xlsx(name, data))
    if HTML_START.match(data[:1024]):
        raise refuse(name, "这是网页（HTML）格式的表格，只是扩展名像 Excel（许多系统这样导出）；请用 Excel 或 WPS "
                           "打开后另存为 .xlsx 再导入",
                     "this is a web page (HTML) table with a spreadsheet's extension, as many systems export "
                     "them; open it in Excel or WPS, save it as .xlsx and import that")
    suffix = PurePath(name).suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raise refuse(name, *DAMAGED)
    if b"\x00" in data[:4096] and not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise refuse(name, "这不是表格文件；请上传 .xlsx 或 .csv",
                     "this is not a spreadsheet; upload a .xlsx or .csv file")
    return RawBook(name, "csv", [RawSheet(None, csv_rows(name, data), estimated_rows=data.count(b"\n"))])


def read_xlsx(name: str, data: bytes) -> list[RawSheet]:
    """Return the visible sheets of a workbook, read by python-calamine (Rust; some 70 times faster than
    openpyxl's read-only mode); merged ranges and formula cells come from one pass over the sheet XML."""
    from python_calamine import CalamineWorkbook
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        check_archive(name, archive)
        scanned = scan_sheets(archive)
        book = CalamineWorkbook.from_filelike(io.BytesIO(data))
        visible = [m.name for m in book.sheets_metadata if str(m.visible).endswith("Visible")
                   and str(m.typ).endswith("WorkSheet")]
    except FileRefused:
        raise
    except Exception:  # a broken workbook raises anything from KeyError to the reader's own errors
        raise refuse(name, *DAMAGED) from None
    sheets = []
    for title in visible:
        if title in SKIPPED_SHEETS:
            continue
        found = scanned.get(title, SheetScan())
        refuse_far_cells(name, title, found)
        try:
            sheet = book.get_sheet_by_name(title)
        except Exception:
            raise refuse(name, "文件已损坏：工作表内容无法读取",
                         "the file is damaged: a sheet cannot be read") from None
        sheets.append(RawSheet(title, xlsx_rows(sheet, found), found.merged, int(sheet.height or 0),
                               found.hidden_rows))
    if not sheets:
        raise refuse(name, "工作簿里没有可见的工作表", "the workbook has no visible sheet")
    return sheets


def read_xls(name: str, data: bytes) -> list[RawSheet]:
    """Return the visible sheets of an Excel 97-2003 workbook, read by xlrd (which keeps only the cells
    there are, so a stray far cell costs nothing). Formulas come as the values Excel saved with them."""
    import xlrd
    try:
        book = xlrd.open_workbook(file_contents=data, formatting_info=True, on_demand=True,
                                  logfile=io.StringIO())
    except xlrd.XLRDError as exc:
        if "encrypt" in str(exc).lower():
            raise refuse(name, *PASSWORD) from None
        raise refuse(name, *DAMAGED_XLS) from None
    except Exception:  # a broken workbook raises anything from struct errors to the reader's own
        raise refuse(name, *DAMAGED_XLS) from None
    sheets = []
    for index in range(book.nsheets):
        sheet = book.sheet_by_index(index)
        if sheet.visibility != 0 or sheet.name in SKIPPED_SHEETS:
            continue
        refuse_far_cells(name, sheet.name, SheetScan(rows=sheet.nrows, columns=sheet.ncols))
        merged = [f"{letter(c0 + 1)}{r0 + 1}:{letter(c1)}{r1}" for r0, r1, c0, c1 in sheet.merged_cells]
        hidden = sorted(r + 1 for r, info in sheet.rowinfo_map.items() if info.hidden)
        sheets.append(RawSheet(sheet.name, xls_rows(book, sheet), merged, sheet.nrows, hidden))
    if not sheets:
        raise refuse(name, "工作簿里没有可见的工作表", "the workbook has no visible sheet")
    return sheets


def letter(column: int) -> str:
    from openpyxl.utils import get_column_letter
    return str(get_column_letter(column))


def xls_rows(book: Any, sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """Yield (row number, cells) of an .xls sheet: dates as dates, errors as CellError, numbers shown
    as percentages as Percent, empty cells as None."""
    import xlrd
    percent = {n for n, xf in enumerate(book.xf_list)
               if shows_percent(getattr(book.format_map.get(xf.format_key), "format_str", ""))}
    for r in range(sheet.nrows):
        cells: list[Any] = []
        for cell in sheet.row(r):
            kind, value = cell.ctype, cell.value
            if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) or value == "":
                cells.append(None)
            elif kind == xlrd.XL_CELL_DATE:
                cells.append(xlrd.xldate.xldate_as_datetime(value, book.datemode))
            elif kind == xlrd.XL_CELL_BOOLEAN:
                cells.append(bool(value))
            elif kind == xlrd.XL_CELL_ERROR:
                cells.append(CellError(xlrd.error_text_from_code.get(value, "#N/A")))
            elif kind == xlrd.XL_CELL_NUMBER and cell.xf_index in percent:
                cells.append(Percent(value))
            else:
                cells.append(value)
        yield r + 1, cells


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


def refuse_far_cells(name: str, title: str, scan: SheetScan) -> None:
    """Refuse a sheet whose last cell lies so far out that reading it would take gigabytes."""
    from openpyxl.utils import get_column_letter
    if scan.columns > MAX_COLUMNS or scan.columns * scan.rows > MAX_CELLS:
        corner = f"{get_column_letter(min(scan.columns, 16384))}{scan.rows}"
        raise refuse(name, f"工作表“{title}”的数据区域过大（一直到单元格 {corner}："
                           f"{scan.rows} 行 × {scan.columns} 列）；"
                           "请删除多余的行和列（或远处的单元格），或分成几个文件导入",
                     f"the sheet '{title}' reaches too far (its last cell is {corner}: {scan.rows} rows × "
                     f"{scan.columns} columns); delete the extra rows and columns (or stray far cells), or split "
                     "the file")


MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
CELL_REF = re.compile(rb'<(?:\w+:)?c\s[^>]*?\br="([A-Z]{1,3})([0-9]+)"')
ERROR_CELL = re.compile(rb'<(?:\w+:)?c\s(?=[^>]*\bt="e")[^>]*?\br="([A-Z]+)([0-9]+)"[^>]*>\s*'
                        rb'(?:<(?:\w+:)?f\b[^>]*?(?:/>|>[^<]*</(?:\w+:)?f>)\s*)?<(?:\w+:)?v>([^<]*)<')
HIDDEN_ROW = re.compile(rb'<(?:\w+:)?row\s(?=[^>]*\bhidden="(?:1|true)")[^>]*?\br="([0-9]+)"')
FORMULA_CELL = re.compile(rb'<(?:\w+:)?c\s+r="([A-Z]+)([0-9]+)"[^>]*>\s*'
                          rb'<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)')
SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?name="([^"]*)"[^>]*?r:id="([^"]+)"')
RELATION = re.compile(rb'<Relationship\b[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"|'
                      rb'<Relationship\b[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"')
OVERLAP = 4096  # bytes of one chunk read again with the next, so that no tag is cut in two


@dataclass
class SheetScan:
    """What a sheet's XML says beyond its values: merged ranges, formula and error cells, cells shown
    as percentages, hidden rows, and how far its cells reach."""

    merged: list[str] = field(default_factory=list)
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column), 1-based → =text
    errors: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column) → #N/A
    percent: set[tuple[int, int]] = field(default_factory=set)
    hidden_rows: list[int] = field(default_factory=list)
    rows: int = 0
    columns: int = 0

    def marks(self) -> bool:
        return bool(self.formulas or self.errors or self.percent)


def scan_sheets(archive: zipfile.ZipFile) -> dict[str, SheetScan]:
    """Return each sheet's merged ranges (A1:C1) and formula cells, read from its XML in chunks."""
    import html

    targets: dict[bytes, str] = {}
    for found in RELATION.finditer(archive.read("xl/_rels/workbook.xml.rels")):
        rid, target = (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
        path = target.decode().lstrip("/")
        targets[rid] = path if path.startswith("xl/") else f"xl/{path}"
    scanned: dict[str, SheetScan] = {}
    names = set(archive.namelist())
    percent_styles = percent_style_ids(archive) if "xl/styles.xml" in names else set()
    for found in SHEET.finditer(archive.read("xl/workbook.xml")):
        sheet_name, path = html.unescape(found.group(1).decode()), targets.get(found.group(2))
        if path is None or path not in names:
            continue
        scan, ranges, tail, hidden = SheetScan(), [], b"", set()
        with archive.open(path) as stream:
            while chunk := stream.read(1 << 20):
                text = tail + chunk
                ranges += [m.group(1).decode() for m in MERGE.finditer(text)]
                scan_cells(text, scan, percent_styles)
                hidden |= {int(m.group(1)) for m in HIDDEN_ROW.finditer(text)}
                tail = text[-OVERLAP:]
        scan.merged = list(dict.fromkeys(ranges))
        scan.hidden_rows = sorted(hidden)
        scanned[sheet_name] = scan
    return scanned


def scan_cells(text: bytes, scan: SheetScan, percent_styles: set[bytes]) -> None:
    """Add a chunk's formula, error and percent cells, and its farthest cell, to `scan`. (A chunk
    overlaps the one before it: what is found twice is found the same.)"""
    import html

    from openpyxl.utils import column_index_from_string
    refs = CELL_REF.findall(text)
    if refs:
        widest = max((letters for letters, _ in refs), key=lambda w: (len(w), w))
        scan.columns = max(scan.columns, column_index_from_string(widest.decode()))
        scan.rows = max(scan.rows, max(int(number) for _, number in refs))
    scan.rows = max(scan.rows, max((int(n) for n in ROW_NUMBER.findall(text)), default=0))
    if b"<f" in text or b":f" in text:
        for cell in FORMULA_CELL.finditer(text):
            formula = html.unescape((cell.group(3) or b"").decode("utf-8", "replace"))
            where = (int(cell.group(2)), column_index_from_string(cell.group(1).decode()))
            scan.formulas[where] = "=" + formula if formula else "=…"
    if b't="e"' in text:
        for cell in ERROR_CELL.finditer(text):
            scan.errors[(int(cell.group(2)), column_index_from_string(cell.group(1).decode()))] = \
                html.unescape(cell.group(3).decode("utf-8", "replace")) or "#N/A"
    if percent_styles:
        for cell in STYLED_CELL.finditer(text):
            if cell.group(3) in percent_styles:
                scan.percent.add((int(cell.group(2)), column_index_from_string(cell.group(1).decode())))


STYLED_CELL = re.compile(rb'<(?:\w+:)?c\s[^>]*?\br="([A-Z]+)([0-9]+)"[^>]*?\bs="([0-9]+)"')
ROW_NUMBER = re.compile(rb'<(?:\w+:)?row\s[^>]*?\br="([0-9]+)"')


NUM_FMT = re.compile(rb'<(?:\w+:)?numFmt\s[^>]*?numFmtId="([0-9]+)"[^>]*?formatCode="([^"]*)"')
CELL_XFS = re.compile(rb'<(?:\w+:)?cellXfs\b[^>]*>(.*?)</(?:\w+:)?cellXfs>', re.DOTALL)
XF = re.compile(rb'<(?:\w+:)?xf\b([^>]*)')
PERCENT_FORMATS = {9, 10}  # Excel's built-in 0% and 0.00%


def percent_style_ids(archive: zipfile.ZipFile) -> set[bytes]:
    """Return the style indexes (the s="N" of a cell) whose number format shows a percentage: 0%,
    0.00%, or a custom format with an unquoted %. (Our exports write percent fields as 0.00"%",
    a quoted sign: the number is already the percentage.)"""
    styles = archive.read("xl/styles.xml")
    custom = {int(m.group(1)) for m in NUM_FMT.finditer(styles) if shows_percent(m.group(2).decode("utf-8", "replace"))}
    found: set[bytes] = set()
    block = CELL_XFS.search(styles)
    for index, xf in enumerate(XF.finditer(block.group(1)) if block else ()):
        number = re.search(rb'numFmtId="([0-9]+)"', xf.group(1))
        if number and int(number.group(1)) in PERCENT_FORMATS | custom:
            found.add(str(index).encode())
    return found


def shows_percent(code: str) -> bool:
    import html
    code = re.sub(r'"[^"]*"|\\.', "", html.unescape(code))
    return "%" in code

def xlsx_rows(sheet: Any, scan: SheetScan) -> Iterator[tuple[int, list[Any]]]:
    """Yield (row number, cells) of a sheet from its first row and column; a formula cell comes as
    Formula(text), an error as CellError(#N/A), a number shown as a percentage as Percent, an empty
    cell as None."""
    top, left = sheet.start or (0, 0)
    marks = scan.marks()
    for offset, row in enumerate(sheet.iter_rows()):
        number = top + offset + 1
        cells: list[Any] = [None] * left + [None if value == "" else value for value in row]
        if marks:
            for column in range(1, len(cells) + 1):
                where = (number, column)
                if where in scan.formulas:
                    cells[column - 1] = Formula(scan.formulas[where])
                elif where in scan.errors:
                    cells[column - 1] = CellError(scan.errors[where])
                elif where in scan.percent and isinstance(cells[column - 1], float | int) \
                        and not isinstance(cells[column - 1], bool):
                    cells[column - 1] = Percent(cells[column - 1])
        yield number, cells


def decode_csv(name: str, data: bytes) -> str:
    """Return the text of a CSV file: UTF-8 (BOM or not), else GB18030; refuse mixed or unknown encodings."""
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = data.splitlines()
    utf8 = [n for n, line in enumerate(lines, 1) if not line.isascii() and is_utf8(line)]
    other = [n for n, line in enumerate(lines, 1) if not line.isascii() and not is_utf8(line)]
    if utf8 and other:
        raise refuse(name, f"文件混用了两种编码：第 {utf8[0]} 行是 UTF-8，第 {other[0]} 行不是；"
                           "请在 Excel 中另存为“CSV UTF-8”后再导入",
                     f"the file mixes two encodings: line {utf8[0]} is UTF-8 and line {other[0]} is not; save it as "
                     "'CSV UTF-8' in Excel and import again")
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        raise refuse(name, "无法识别文件编码（既不是 UTF-8 也不是 GBK/GB18030）；请在 Excel 中另存为“CSV UTF-8”",
                     "the file's encoding is neither UTF-8 nor GBK/GB18030; save it as 'CSV UTF-8' in Excel") from None


def is_utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False


def csv_rows(name: str, data: bytes) -> Iterator[tuple[int, list[Any]]]:
    """Yield (line number, cells) of a CSV file, its delimiter (, ; or tab) taken from the header line."""
    text = decode_csv(name, data)
    header = text.split("\n", 1)[0]
    counts = {d: header.count(d) for d in CSV_DELIMITERS}
    delimiter = max(counts, key=lambda d: counts[d]) if any(counts.values()) else ","
    # strict: a quote left open is an error, not a cell that swallows every line after it.
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error:
        raise refuse(name, f"第 {start} 行起的引号（\"）没有配对，从这里往后的内容无法分清各列；请检查这一行的引号",
                     f"a quote (\") from line {start} on is never closed, so the columns after it cannot be told "
                     "apart; check that line's quotes") from None
