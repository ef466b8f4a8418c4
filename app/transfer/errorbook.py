"""The file a dry run found problems in, given back as a workbook: every row where it was, an error
column at the end, and the bad cells filled red (each with its message as a comment)."""
from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

from .importer import ImportResult
from .read import Formula, read_book

BAD_FILL = PatternFill("solid", fgColor="F8CBAD")
ERROR_FONT = Font(color="C00000", bold=True)
MAX_COMMENTS = 2000  # comments are costly to Excel; past this many only the fill and the error column show


def render_error_book(file_name: str, data: bytes, result: ImportResult, max_bytes: int, lang: str = "zh") -> bytes:
    """Return .xlsx bytes of the imported file's first sheet with the problems marked."""
    book = read_book(file_name, data, max_bytes)
    sheet = book.sheets[0]
    out_book = Workbook(write_only=True)
    out = out_book.create_sheet((sheet.name or "Sheet1")[:31])
    heading = "错误" if lang == "zh" else "Errors"
    expected, comments, width = 1, 0, 0
    whole_sheet = [p.text(lang) for p in result.problems if p.row is None]
    for number, cells in sheet.rows:
        while expected < number:  # rows the reader skipped stay where they were
            out.append([])
            expected += 1
        marks = result.bad_cells.get((sheet.name, number), {})
        row: list[Any] = []
        for column, value in enumerate(cells, start=1):
            cell = WriteOnlyCell(out, str(value) if isinstance(value, Formula) else value)
            if isinstance(cell.value, str):
                cell.data_type = "s"
            if column in marks:
                cell.fill = BAD_FILL
                if comments < MAX_COMMENTS:
                    cell.comment = Comment(marks[column], "CRM")
                    comments += 1
            row.append(cell)
        width = width or len(cells)
        row += [None] * (width - len(row))
        if number == 1:
            row.append(heading_cell(out, heading))
        elif marks:
            cell = WriteOnlyCell(out, "\n".join(dict.fromkeys(marks.values())))
            cell.font = ERROR_FONT
            row.append(cell)
        out.append(row)
        expected = number + 1
    if whole_sheet:
        out.append([])
        for text in whole_sheet:
            cell = WriteOnlyCell(out, text)
            cell.font = ERROR_FONT
            out.append([cell])
    buffer = io.BytesIO()
    out_book.save(buffer)
    return buffer.getvalue()


def heading_cell(sheet: Any, text: str) -> Any:
    cell = WriteOnlyCell(sheet, text)
    cell.font = ERROR_FONT
    return cell
