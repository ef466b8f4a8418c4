"""Files → sheets of raw cells, streamed; a file that is no usable spreadsheet is refused, with why.

`.xlsx` goes to `xlsx` (expat and python-calamine), Excel 97-2003 `.xls` to `xls` (xlrd); `.csv` is
decoded here strictly as UTF-8 (with or without BOM), else as GB18030 (which Chinese Excel writes as
"GBK"), never guessed by a detector: on a short file a detector's guess is often wrong, and a strict
decode fails loudly.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import PurePath
from typing import Any

from .raw import RawBook, RawSheet, clean_file_name, refuse
from .xls import PASSWORD, read_xls
from .xlsx import DAMAGED, count_rows, read_xlsx

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # the container of .xls files and of password-protected .xlsx
ZIP_MAGIC = b"PK\x03\x04"
ENCRYPTED_MARK = "EncryptionInfo".encode("utf-16-le")
CSV_DELIMITERS = ",;\t"
CSV_CELL_LIMIT = 1 << 20  # characters in one CSV cell
HTML_START = re.compile(rb"(?:\xef\xbb\xbf)?\s*<(?:!doctype\s+html|html|table|\?xml[^>]*>\s*<html)", re.IGNORECASE)

__all__ = ["RawBook", "RawSheet", "clean_file_name", "read_book", "estimated_rows"]


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
    return RawBook(name, "csv", [RawSheet(None, csv_rows(name, data), estimated_rows=line_count(data))])


def line_count(data: bytes) -> int:
    """Return about how many lines a CSV has, whether they end in LF, CR LF or CR alone (Mac Excel)."""
    return max(data.count(b"\n"), data.count(b"\r"))


def estimated_rows(file: str, data: bytes, enough: int) -> int:
    """Return about how many rows a file's first sheet has, counting no further than `enough`, without
    reading its values (0 when that cannot be told: the import will say why)."""
    if data.startswith(ZIP_MAGIC):
        return count_rows(data, enough)
    if data.startswith(OLE_MAGIC):
        try:
            return read_book(file, data, len(data) + 1).sheets[0].estimated_rows
        except Exception:  # noqa: BLE001 - the import itself gives the message
            return 0
    return line_count(data)


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
    csv.field_size_limit(CSV_CELL_LIMIT)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    start = 1
    try:
        for row in reader:
            yield start, row
            start = reader.line_num + 1
    except csv.Error as exc:
        if "field larger than" in str(exc):
            raise refuse(name, f"第 {start} 行有一格超过 {CSV_CELL_LIMIT:,} 个字符",
                         f"a cell of line {start} has more than {CSV_CELL_LIMIT:,} characters") from None
        raise refuse(name, f"第 {start} 行起的引号（\"）没有配对，从这里往后的内容无法分清各列；请检查这一行的引号",
                     f"a quote (\") from line {start} on is never closed, so the columns after it cannot be told "
                     "apart; check that line's quotes") from None
