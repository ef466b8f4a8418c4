"""Encrypted fields on screens and in the API: masks for users who may not reveal them, and the one
search that works on them (exact match through the blind index)."""
from __future__ import annotations

from typing import Any

from flask import current_app
from flask_appbuilder.models.filters import BaseFilter
from marshmallow import fields as ma_fields

from app.models.encryption import index_condition, masked
from app.schema.model import FieldSpec

from .i18n import lazy_text


def mask_formatter(spec: FieldSpec) -> Any:
    """Return a list/detail formatter showing the masked value (a dash when empty)."""
    return lambda value: masked(spec, value) or "—"


class MaskedApiField(ma_fields.Field):
    """An API field that answers the masked value and cannot be written."""

    def __init__(self, spec: FieldSpec, **kwargs: Any):
        super().__init__(dump_only=True, **kwargs)
        self.spec = spec
        self.metadata = {**self.metadata, "type": "string", "description": f"{spec.label.en} (masked)"}

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return masked(self.spec, value)


class BlindEqualFilter(BaseFilter):
    """Equality on a searchable encrypted field, through its blind index (no decryption)."""

    name = lazy_text("等于", "Equal to")
    arg_name = "eq_blind"

    def apply(self, query: Any, value: Any) -> Any:
        table = self.datamodel.obj.__table_spec__
        spec = table.field(self.column_name)
        column = getattr(self.datamodel.obj, self.column_name)
        return query.filter(index_condition(current_app.extensions["crm"].keyring, column, table.key, spec,
                                            str(value)))


def encrypted_condition(model: type, spec: FieldSpec, word: str) -> Any:
    """Return the keyword-search condition of a searchable encrypted field: the whole word matches."""
    table = model.__table_spec__  # type: ignore[attr-defined]
    return index_condition(current_app.extensions["crm"].keyring, getattr(model, spec.key), table.key, spec, word)
