"""What is wrong with an imported file, and where: `文件名!工作表!C12: 字段: 消息`."""
from __future__ import annotations

from dataclasses import dataclass, field

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


class ImportCancelled(Exception):
    """The import was cancelled while it ran; its transaction was rolled back."""


class FileRefused(Exception):
    """A file that cannot be read as a spreadsheet at all; nothing was changed."""

    def __init__(self, file: str, message: Label):
        super().__init__(message.en)
        self.problem = Problem(file, message)

    def text(self, lang: str = "zh") -> str:
        return self.problem.text(lang)


@dataclass
class ImportResult:
    """What an import found and did (or, on a dry run, would do); nothing was written when `problems`
    is not empty. `bad_cells` holds each sheet row's problems by column (0: the row as a whole)."""

    file: str
    table: str
    mode: str
    dry_run: bool
    problems: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)  # likely duplicates: refused unless allowed
    notes: list[Problem] = field(default_factory=list)  # what was left out: computed columns, title rows ...
    counts: dict[str, int] = field(default_factory=lambda: {"insert": 0, "update": 0, "unchanged": 0})
    children: dict[str, int] = field(default_factory=dict)  # inline child table → rows inserted from its sheet
    batch_id: int | None = None
    file_hash: str = ""
    bad_cells: dict[tuple[str | None, int], dict[int, list[Problem]]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def all_problems(self) -> list[Problem]:
        return sorted(self.problems, key=Problem.sort_key)

    def problem(self, message: Label, sheet: str | None = None, row: int | None = None,
                column: int | None = None, field_label: Label | None = None) -> None:
        """Record a problem of the file, a sheet, a row or a cell (it stops the import)."""
        found = Problem(self.file, message, sheet, row, column, field_label)
        self.problems.append(found)
        if row is not None:
            self.bad_cells.setdefault((sheet, row), {}).setdefault(column or 0, []).append(found)

    def note(self, message: Label, sheet: str | None = None, row: int | None = None,
             column: int | None = None, field_label: Label | None = None) -> None:
        """Record what the import left out or read in a way the user should know of (it does not stop it)."""
        self.notes.append(Problem(self.file, message, sheet, row, column, field_label))
