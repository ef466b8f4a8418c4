"""Problems found in user input, each with a place, a path and a hint."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Issue:
    """One problem: where it is (file, line), what it concerns (path), what is wrong."""

    file: str
    line: int
    path: str
    message: str
    hint: str = ""
    code: str = ""

    def format(self) -> str:
        """Return the issue as `file:LINE: path: message` plus an indented hint line."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"
        if self.hint:
            text += f"\n    hint: {self.hint}"
        return text


class SchemaError(Exception):
    """Raised once with every issue found; str() is the full, sorted report."""

    def __init__(self, issues: list[Issue]):
        self.issues = sorted(issues)
        super().__init__(format_issues(self.issues))


def format_issues(issues: list[Issue]) -> str:
    """Return all issues, sorted, one block each, with a count line at the end."""
    ordered = sorted(issues)
    lines = [issue.format() for issue in ordered]
    noun = "problem" if len(ordered) == 1 else "problems"
    lines.append(f"{len(ordered)} {noun} found in the schema; nothing was started.")
    return "\n".join(lines)
