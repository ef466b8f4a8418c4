"""What a file reader gives the importer: sheets of raw cells, read lazily, and the marks of cells that
are not plain values (formulas, Excel errors, percentages); and the limits every reader keeps."""
from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from app.schema.model import Label

from .problems import FileRefused

# A reader that holds a sheet as a dense grid from A1 to its last cell (calamine: about 32 bytes a
# cell) would need 550 GB for one cell at XFD1048576 in a 2 KB file: a sheet reaching farther than
# this is refused before it is read.
MAX_CELLS, MAX_COLUMNS = 5_000_000, 1000
SKIPPED_SHEETS = ("说明", "Notes", "_options")  # a template's notes and dropdown lists


class Formula(str):
    """A cell that holds a formula (its text, =SUM(B2:B9)) rather than a value."""


class CellError(str):
    """A cell that holds one of Excel's error values (#N/A, #DIV/0!, #REF!) rather than a value."""


class Percent(float):
    """A number shown as a percentage (0.13 shown as 13%): a percent field takes it as 13."""


@dataclass
class RawSheet:
    """One sheet: its name (None for a CSV), its rows as (Excel row number, cells), read only when the
    rows are first asked for, its merged ranges and the rows hidden in Excel."""

    name: str | None
    rows: Iterator[tuple[int, list[Any]]]
    merged: list[str] = field(default_factory=list)
    estimated_rows: int = 0  # from the sheet's stated size: for progress, never trusted for anything else
    hidden_rows: list[int] = field(default_factory=list)  # rows hidden in Excel (filtered out, folded away)


@dataclass
class RawBook:
    file: str
    kind: str  # xlsx, xls or csv
    sheets: list[RawSheet]


def refuse(file: str, zh: str, en: str) -> FileRefused:
    return FileRefused(file, Label(zh, en))


def refuse_far_cells(name: str, title: str, rows: int, columns: int) -> None:
    """Refuse a sheet whose last cell lies so far out that reading it would take gigabytes."""
    from openpyxl.utils import get_column_letter
    if columns > MAX_COLUMNS or columns * rows > MAX_CELLS:
        corner = f"{get_column_letter(min(columns, 16384))}{rows}"
        raise refuse(name, f"工作表“{title}”的数据区域过大（一直到单元格 {corner}："
                           f"{rows} 行 × {columns} 列）；请删除多余的行和列（或远处的单元格），或分成几个文件导入",
                     f"the sheet '{title}' reaches too far (its last cell is {corner}: {rows} rows × "
                     f"{columns} columns); delete the extra rows and columns (or stray far cells), or split "
                     "the file")


def clean_file_name(file: str) -> str:
    """Return an uploaded file's name as shown and stored: its last part, without control, invisible or
    direction-changing characters (a name shown backwards), at most 200 characters (its extension kept)."""
    name = "".join(c for c in PurePath(str(file).replace("\\", "/")).name
                   if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")).strip()
    if len(name) > 200:
        suffix = PurePath(name).suffix[:10]
        name = name[:200 - len(suffix)] + suffix
    return name or "file"
