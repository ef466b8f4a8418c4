"""The file a dry run found problems in, given back as a workbook: every row where it was, an error
column at the end, the bad cells filled red (each with its message as a comment), and a second sheet
listing every problem, those of the whole file or sheet (a missing column) included."""
from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill

from .problems import ImportResult, Problem
from .read import read_book

BAD_FILL = PatternFill("solid", fgColor="F8CBAD")
ERROR_FONT = Font(color="C00000", bold=True)
MAX_COMMENTS = 2000  # comments are costly to Excel; past this many only the fill and the error column show
PROBLEMS_SHEET = {"zh": ("问题清单", ["位置", "字段", "问题"]), "en": ("Problems", ["Where", "Field", "Problem"])}


def render_error_book(file_name: str, data: bytes, result: ImportResult, max_bytes: int, lang: str = "zh") -> bytes:
    """Return .xlsx bytes of the imported file's first sheet with the problems marked, and the list of
    every problem on a sheet of its own. Every text is written as text: a cell never runs as a formula."""
    book = read_book(file_name, data, max_bytes)
    sheet = book.sheets[0]
    out_book = Workbook(write_only=True)
    out = out_book.create_sheet((sheet.name or "Sheet1")[:31])
    heading = "错误" if lang == "zh" else "Errors"
    expected, comments, width, first = 1, 0, 0, True
    for number, cells in sheet.rows:
        while expected < number:  # rows the reader skipped stay where they were
            out.append([])
            expected += 1
        marks = result.bad_cells.get((sheet.name, number), {})
        row: list[Any] = []
        for column, value in enumerate(cells, start=1):
            cell = text_cell(out, str(value) if isinstance(value, str) else value)
            if column in marks:
                cell.fill = BAD_FILL
                if comments < MAX_COMMENTS:
                    cell.comment = Comment(joined(marks[column], lang), "CRM")
                    comments += 1
            row.append(cell)
        width = width or len(cells)
        row += [None] * (width - len(row))
        if first:
            row.append(text_cell(out, heading, ERROR_FONT))
            first = False
        elif marks:
            row.append(text_cell(out, joined([p for found in marks.values() for p in found], lang), ERROR_FONT))
        out.append(row)
        expected = number + 1
    write_problem_list(out_book, result, lang)
    buffer = io.BytesIO()
    out_book.save(buffer)
    return buffer.getvalue()


def write_problem_list(book: Workbook, result: ImportResult, lang: str) -> None:
    title, headings = PROBLEMS_SHEET[lang]
    listed = book.create_sheet(title)
    listed.append([text_cell(listed, h, Font(bold=True)) for h in headings])
    for found in result.all_problems():
        label = found.field.text(lang) if found.field else ""
        listed.append([text_cell(listed, found.place()), text_cell(listed, label),
                       text_cell(listed, found.message.text(lang))])


def joined(problems: list[Problem], lang: str) -> str:
    return "\n".join(dict.fromkeys(p.text(lang) for p in problems))


def text_cell(sheet: Any, value: Any, font: Font | None = None) -> Any:
    """Return a write-only cell; text is stored as text (a file name like =1+2.xlsx never becomes a formula)."""
    cell = WriteOnlyCell(sheet, value)
    if isinstance(value, str):
        cell.data_type = "s"
    if font is not None:
        cell.font = font
    return cell
