"""Excel 97-2003 .xls files, read by xlrd: only the sheets the import reads, each when its rows are
asked for; rows kept as they are (ragged, not padded to the widest), so a stray far cell costs
nothing. A formula comes as the value Excel saved with it. Anything xlrd cannot read, at any point,
is a damaged file, never an error of the panel."""
from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

from .raw import SKIPPED_SHEETS, CellError, Percent, RawSheet, refuse, refuse_far_cells

DAMAGED = ("文件已损坏，不是有效的 .xls 工作簿", "the file is damaged: it is not a valid .xls workbook")
PASSWORD = ("工作簿设置了打开密码，无法读取；请在 Excel 中取消密码后再导入",
            "the workbook is protected by a password; remove the password in Excel and import again")


def open_book(name: str, data: bytes) -> Any:
    import xlrd
    try:
        return xlrd.open_workbook(file_contents=data, formatting_info=True, on_demand=True, ragged_rows=True,
                                  logfile=io.StringIO())
    except xlrd.XLRDError as exc:
        raise refuse(name, *(PASSWORD if "encrypt" in str(exc).lower() else DAMAGED)) from None
    except Exception:  # a broken workbook raises anything from struct errors to the reader's own
        raise refuse(name, *DAMAGED) from None


def read_xls(name: str, data: bytes) -> list[RawSheet]:
    """Return the visible sheets of an Excel 97-2003 workbook, each read when its rows are asked for."""
    book = open_book(name, data)
    try:
        visibility = list(getattr(book, "_sheet_visibility", [0] * book.nsheets))
        titles = [(index, title) for index, title in enumerate(book.sheet_names())
                  if not visibility[index] and title not in SKIPPED_SHEETS]
    except Exception:
        raise refuse(name, *DAMAGED) from None
    if not titles:
        raise refuse(name, "工作簿里没有可见的工作表", "the workbook has no visible sheet")
    sheets = [RawSheet(title, iter(()), []) for _, title in titles]
    first = load_sheet(name, book, titles[0][0])  # its size, merged cells and hidden rows, for the headings
    sheets[0] = first
    for position, (index, _) in enumerate(titles[1:], start=1):
        sheets[position] = lazy_sheet(name, book, index, titles[position][1])
    return sheets


def lazy_sheet(name: str, book: Any, index: int, title: str) -> RawSheet:
    """Return a sheet whose rows (merged cells and hidden rows too) are read when first asked for."""
    sheet = RawSheet(title, iter(()), [])

    def rows() -> Iterator[tuple[int, list[Any]]]:
        loaded = load_sheet(name, book, index)
        sheet.merged[:], sheet.hidden_rows[:] = loaded.merged, loaded.hidden_rows
        yield from loaded.rows
    sheet.rows = rows()
    return sheet


def load_sheet(name: str, book: Any, index: int) -> RawSheet:
    from openpyxl.utils import get_column_letter
    try:
        sheet = book.sheet_by_index(index)
        refuse_far_cells(name, sheet.name, sheet.nrows, sheet.ncols)
        merged = [f"{get_column_letter(c0 + 1)}{r0 + 1}:{get_column_letter(c1)}{r1}"
                  for r0, r1, c0, c1 in sheet.merged_cells]
        hidden = sorted(r + 1 for r, info in sheet.rowinfo_map.items() if info.hidden)
    except Exception as exc:
        if hasattr(exc, "problem"):
            raise
        raise refuse(name, *DAMAGED) from None
    return RawSheet(sheet.name, xls_rows(name, book, sheet), merged, sheet.nrows, hidden)


def xls_rows(name: str, book: Any, sheet: Any) -> Iterator[tuple[int, list[Any]]]:
    """Yield (row number, cells) of an .xls sheet: dates as dates, errors as CellError, numbers shown
    as percentages as Percent, empty cells as None."""
    try:
        percent = percent_styles(book)
        for r in range(sheet.nrows):
            yield r + 1, [cell_value(book, cell, percent) for cell in sheet.row(r)]
    except GeneratorExit:
        raise
    except Exception:
        raise refuse(name, *DAMAGED) from None


def percent_styles(book: Any) -> set[int]:
    from .xlsx import shows_percent
    return {n for n, xf in enumerate(book.xf_list)
            if shows_percent(getattr(book.format_map.get(xf.format_key), "format_str", ""))}


def cell_value(book: Any, cell: Any, percent: set[int]) -> Any:
    import xlrd
    kind, value = cell.ctype, cell.value
    if kind in (xlrd.XL_CELL_EMPTY, xlrd.XL_CELL_BLANK) or value == "":
        return None
    if kind == xlrd.XL_CELL_DATE:
        try:
            return xlrd.xldate.xldate_as_datetime(value, book.datemode)
        except (ValueError, OverflowError, xlrd.xldate.XLDateError):
            return value  # a day number no calendar has: the field's own check names it
    if kind == xlrd.XL_CELL_BOOLEAN:
        return bool(value)
    if kind == xlrd.XL_CELL_ERROR:
        return CellError(xlrd.error_text_from_code.get(value, "#N/A"))
    if kind == xlrd.XL_CELL_NUMBER and cell.xf_index in percent:
        return Percent(value)
    return value
