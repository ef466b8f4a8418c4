"""Files → sheets of raw cells, streamed; a file that is no usable spreadsheet is refused, with why.

`.xlsx` is read by openpyxl in read-only mode (rows one at a time); `.csv` is decoded strictly as
UTF-8 (with or without BOM), else as GB18030 (which Chinese Excel writes as "GBK"), never guessed
by a detector: on a short file a detector's guess is often wrong, and a strict decode fails loudly.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
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
SKIPPED_SHEETS = ("说明", "Notes", "_options")
DAMAGED = ("文件已损坏，不是有效的 .xlsx 工作簿", "the file is damaged: it is not a valid .xlsx workbook")


class Formula(str):
    """A cell that holds a formula (its text, =SUM(B2:B9)) rather than a value."""


@dataclass
class RawSheet:
    """One sheet: its name (None for a CSV), its rows as (Excel row number, cells), its merged ranges."""

    name: str | None
    rows: Iterator[tuple[int, list[Any]]]
    merged: list[str] = field(default_factory=list)
    estimated_rows: int = 0  # from the sheet's stated size: for progress, never trusted for anything else


@dataclass
class RawBook:
    file: str
    kind: str  # "xlsx" or "csv"
    sheets: list[RawSheet]


def refuse(file: str, zh: str, en: str) -> FileRefused:
    return FileRefused(file, Label(zh, en))


def read_book(file: str, data: bytes, max_bytes: int) -> RawBook:
    """Return the sheets of the file `file` (its name, any language) holding `data`; FileRefused when it
    is too large, no spreadsheet, encrypted, corrupt, a zip bomb, or a CSV in no encoding we read."""
    name = PurePath(file).name or "file"
    if len(data) > max_bytes:
        raise refuse(name, f"文件有 {len(data) / 1048576:.1f} MB，超过上限 {max_bytes / 1048576:.0f} MB"
                           "（CRM_IMPORT_MAX_MB）；请分成几个文件导入",
                     f"the file has {len(data) / 1048576:.1f} MB, over the limit of {max_bytes / 1048576:.0f} MB "
                     "(CRM_IMPORT_MAX_MB); split it into several files")
    if not data.strip():
        raise refuse(name, "文件是空的", "the file is empty")
    if data.startswith(OLE_MAGIC):
        if ENCRYPTED_MARK in data:
            raise refuse(name, "工作簿设置了打开密码，无法读取；请在 Excel 中取消密码后再导入",
                         "the workbook is protected by a password; remove the password in Excel and import again")
        raise refuse(name, "这是旧版 Excel 97-2003（.xls）文件；请在 Excel 中另存为 .xlsx 后再导入",
                     "this is an old Excel 97-2003 (.xls) file; save it as .xlsx in Excel and import again")
    if data.startswith(ZIP_MAGIC):
        return RawBook(name, "xlsx", read_xlsx(name, data))
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
        try:
            sheet = book.get_sheet_by_name(title)
        except Exception:
            raise refuse(name, "文件已损坏：工作表内容无法读取",
                         "the file is damaged: a sheet cannot be read") from None
        sheets.append(RawSheet(title, xlsx_rows(sheet, found.formulas), found.merged, int(sheet.height or 0)))
    if not sheets:
        raise refuse(name, "工作簿里没有可见的工作表", "the workbook has no visible sheet")
    return sheets


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


MERGE = re.compile(rb'<(?:\w+:)?mergeCell\s+ref="([A-Z]+[0-9]+:[A-Z]+[0-9]+)"')
FORMULA_CELL = re.compile(rb'<(?:\w+:)?c\s+r="([A-Z]+)([0-9]+)"[^>]*>\s*'
                          rb'<(?:\w+:)?f\b[^>]*?(?:/>|>([^<]*)</(?:\w+:)?f>)')
SHEET = re.compile(rb'<(?:\w+:)?sheet\b[^>]*?name="([^"]*)"[^>]*?r:id="([^"]+)"')
RELATION = re.compile(rb'<Relationship\b[^>]*?Id="([^"]+)"[^>]*?Target="([^"]+)"|'
                      rb'<Relationship\b[^>]*?Target="([^"]+)"[^>]*?Id="([^"]+)"')
OVERLAP = 4096  # bytes of one chunk read again with the next, so that no tag is cut in two


@dataclass
class SheetScan:
    merged: list[str] = field(default_factory=list)
    formulas: dict[tuple[int, int], str] = field(default_factory=dict)  # (row, column), 1-based → =text


def scan_sheets(archive: zipfile.ZipFile) -> dict[str, SheetScan]:
    """Return each sheet's merged ranges (A1:C1) and formula cells, read from its XML in chunks."""
    import html

    from openpyxl.utils import column_index_from_string
    targets: dict[bytes, str] = {}
    for found in RELATION.finditer(archive.read("xl/_rels/workbook.xml.rels")):
        rid, target = (found.group(1), found.group(2)) if found.group(1) else (found.group(4), found.group(3))
        path = target.decode().lstrip("/")
        targets[rid] = path if path.startswith("xl/") else f"xl/{path}"
    scanned: dict[str, SheetScan] = {}
    names = set(archive.namelist())
    for found in SHEET.finditer(archive.read("xl/workbook.xml")):
        sheet_name, path = html.unescape(found.group(1).decode()), targets.get(found.group(2))
        if path is None or path not in names:
            continue
        scan, ranges, tail = SheetScan(), [], b""
        with archive.open(path) as stream:
            while chunk := stream.read(1 << 20):
                text = tail + chunk
                ranges += [m.group(1).decode() for m in MERGE.finditer(text)]
                if b"<f" in text or b":f" in text:
                    for cell in FORMULA_CELL.finditer(text):
                        formula = html.unescape((cell.group(3) or b"").decode("utf-8", "replace"))
                        where = (int(cell.group(2)), column_index_from_string(cell.group(1).decode()))
                        scan.formulas[where] = "=" + formula if formula else "=…"
                tail = text[-OVERLAP:]
        scan.merged = list(dict.fromkeys(ranges))
        scanned[sheet_name] = scan
    return scanned


def xlsx_rows(sheet: Any, formulas: dict[tuple[int, int], str]) -> Iterator[tuple[int, list[Any]]]:
    """Yield (row number, cells) of a sheet from its first row and column; a formula cell comes as
    Formula(text), an empty cell as None."""
    top, left = sheet.start or (0, 0)
    for offset, row in enumerate(sheet.iter_rows()):
        number = top + offset + 1
        cells: list[Any] = [None] * left + [None if value == "" else value for value in row]
        if formulas:
            for column in range(1, len(cells) + 1):
                if (number, column) in formulas:
                    cells[column - 1] = Formula(formulas[(number, column)])
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
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise refuse(name, f"第 {reader.line_num} 行不是有效的 CSV：{exc}",
                     f"line {reader.line_num} is not valid CSV: {exc}") from None
