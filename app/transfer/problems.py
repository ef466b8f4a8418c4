"""What is wrong with an imported file, and where: `文件名!工作表!C12: 字段: 消息`."""
from __future__ import annotations

from dataclasses import dataclass

from openpyxl.utils import get_column_letter

from app.schema.model import Label


@dataclass(frozen=True)
class Problem:
    """One problem of a file: the whole file, a sheet, a row or one cell, with the field it is about."""

    file: str
    message: Label
    sheet: str | None = None
    row: int | None = None
    column: int | None = None  # 1-based, as Excel counts
    field: Label | None = None

    @property
    def cell(self) -> str:
        """Return the cell (C12), the row (12) or '' for a problem of the whole sheet or file."""
        if self.row is None:
            return ""
        return f"{get_column_letter(self.column)}{self.row}" if self.column else str(self.row)

    def place(self) -> str:
        """Return `file!sheet!C12` (a CSV has no sheet: `file!C12`)."""
        parts = [self.file] + ([self.sheet] if self.sheet else []) + ([self.cell] if self.cell else [])
        return "!".join(parts)

    def text(self, lang: str = "zh") -> str:
        field = f"{self.field.text(lang)}: " if self.field is not None else ""
        return f"{self.place()}: {field}{self.message.text(lang)}"

    def sort_key(self) -> tuple[str, int, int]:
        return (self.sheet or "", self.row or 0, self.column or 10**6)  # a row's own problems after its cells


class FileRefused(Exception):
    """A file that cannot be read as a spreadsheet at all; nothing was changed."""

    def __init__(self, file: str, message: Label):
        super().__init__(message.en)
        self.problem = Problem(file, message)

    def text(self, lang: str = "zh") -> str:
        return self.problem.text(lang)
