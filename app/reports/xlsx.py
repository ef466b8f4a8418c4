"""A generated report (ReportResult) as an Excel workbook, with openpyxl: the same rows and totals the
PDF prints, numbers as numbers (so they sum in Excel), one sheet per table of the report."""
from __future__ import annotations

import datetime
import io
import re
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter

from .result import Grid, ReportResult

HEADER_FILL = PatternFill("solid", fgColor="E8EEF7")
TOTAL_FILL = PatternFill("solid", fgColor="F4F6F9")
BOLD = Font(bold=True)
BAD_SHEET_CHARACTERS = re.compile(r"[\[\]:*?/\\]")


def render_report_xlsx(result: ReportResult, company: str = "") -> bytes:
    """Return the .xlsx bytes of `result`: a heading (title, parameters, generation), then the record's
    fields and each grid on a sheet of its own."""
    book = Workbook()
    first = book.active
    assert first is not None  # a new workbook has one sheet
    sheets: list[tuple[str, Grid | None]] = [(grid.title or result.title, grid) for grid in result.grids]
    if result.facts or not sheets:  # a record's own fields come first, on a sheet named after it
        sheets.insert(0, (result.title, None))
    used: set[str] = set()
    for n, (title, grid) in enumerate(sheets):
        sheet = first if n == 0 else book.create_sheet()
        sheet.title = sheet_name(title, used)
        row = heading(sheet, result, company) if n == 0 else 1
        if n == 0 and result.facts:
            for label, value in result.facts:
                put(sheet, row, 1, label).font = BOLD
                put(sheet, row, 2, value)
                row += 1
            row += 1
        if grid is not None:
            write_grid(sheet, grid, row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def heading(sheet: Any, result: ReportResult, company: str) -> int:
    """Write the report's title, parameters and who generated it when; return the next free row."""
    put(sheet, 1, 1, result.title).font = Font(bold=True, size=14)
    lines = [company] if company else []
    lines += [f"{label}：{value}" for label, value in result.params]
    zh = result.lang == "zh"
    stamp = result.generated_at.strftime("%Y-%m-%d %H:%M")
    lines.append(f"生成时间 {stamp} · 生成人 {result.generated_by}" if zh
                 else f"Generated {stamp} by {result.generated_by}")
    for n, line in enumerate(lines, start=2):
        put(sheet, n, 1, line)
    return len(lines) + 3


def write_grid(sheet: Any, grid: Grid, top: int) -> None:
    """Write a grid from row `top`: headings, rows (numbers as numbers), bold subtotal and total rows."""
    if grid.note:
        put(sheet, top, 1, grid.note)
        return
    for column, header in enumerate(grid.headers, start=1):
        cell = put(sheet, top, column, header)
        cell.font, cell.fill = BOLD, HEADER_FILL
    for offset, (cells, kind) in enumerate(zip(grid.rows, grid.kinds, strict=True), start=1):
        for column, printed in enumerate(cells, start=1):
            typed = printed.is_number or isinstance(printed.value, datetime.date)
            cell = put(sheet, top + offset, column, excel_value(printed.value) if typed else printed.text)
            if isinstance(printed.value, datetime.date):
                cell.number_format = "yyyy-mm-dd"
            elif printed.is_number:
                cell.number_format = "#,##0.00" if isinstance(printed.value, (Decimal, float)) else "#,##0"
                cell.alignment = Alignment(horizontal="right")
            if kind != "row":
                cell.font, cell.fill = BOLD, TOTAL_FILL
    sheet.freeze_panes = sheet.cell(top + 1, 1)
    for column, header in enumerate(grid.headers, start=1):
        longest = max([len(header)] + [len(r[column - 1].text) for r in grid.rows[:500]])
        sheet.column_dimensions[get_column_letter(column)].width = min(max(longest * 1.6, 8), 60)


def put(sheet: Any, row: int, column: int, value: Any) -> Any:
    """Write a cell and return it; text starting with = stays text (openpyxl would store a formula
    that Excel runs: formula injection from a customer's name or a note)."""
    cell = sheet.cell(row, column, safe_text(value))
    if isinstance(cell.value, str) and cell.value.startswith("="):
        cell.data_type = "s"
    return cell


def excel_value(value: Any) -> Any:
    """Return a number as Excel stores it (a Decimal becomes a float, which is what a cell holds)."""
    return float(value) if isinstance(value, Decimal) else value


def safe_text(text: Any) -> Any:
    """Return a value for a text cell (see put: text is never a formula)."""
    return text if isinstance(text, (datetime.date, int, float)) else str(text)


def sheet_name(title: str, used: set[str]) -> str:
    """Return a sheet name Excel accepts (≤ 31 characters, none of []:*?/\\), unique in the workbook."""
    base = BAD_SHEET_CHARACTERS.sub(" ", title).strip()[:28] or "Sheet"
    name, n = base, 2
    while name.lower() in used:
        name, n = f"{base[:26]} {n}", n + 1
    used.add(name.lower())
    return name
