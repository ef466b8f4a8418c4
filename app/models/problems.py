"""A write the records' own rules refuse, raised while the ORM flushes, said in both languages."""
from __future__ import annotations

from app.schema.model import Label


class RecordProblem(ValueError):
    """A record that may not be stored as it is: why (zh and en), and the field it is about."""

    def __init__(self, label: Label, field: str | None = None):
        super().__init__(label.en)
        self.label, self.field = label, field

    def text(self, lang: str) -> str:
        return self.label.text(lang)
