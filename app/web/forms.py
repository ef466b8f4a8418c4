"""Form fields per table: one per field spec, with labels, help, defaults and validators."""
from __future__ import annotations

from typing import Any

from wtforms.validators import StopValidation

from app.fields.types import ChoiceSelectField, default_value, field_type
from app.models.build import BuiltModels
from app.schema.model import FieldSpec, TableSpec

from .context import current_appbuilder
from .i18n import current_lang, lazy_label
from .picking import PickField
from .records import unique_conflicts


def build_form_fields(models: BuiltModels, table: TableSpec, for_add: bool) -> dict[str, Any]:
    """Return field key → unbound WTForms field for every non-relation field of `table`."""
    result: dict[str, Any] = {}
    for spec in table.fields:
        if spec.is_relation:
            result[spec.key] = PickField(models, table, spec, lazy_label(spec.label), lazy_label(spec.help),
                                         validators=[RequiredRelation()] if spec.required else [])
            continue
        field = field_type(spec).form_field(spec, lazy_label(spec.label), lazy_label(spec.help), current_lang)
        validators = list(field.kwargs.get("validators") or [])
        if spec.unique:
            validators.append(UniqueInput(models, table, spec))
        if spec.required and spec.type == "attachment":
            validators.append(RequiredFile(models, table, spec))
        if spec.type == "attachment":
            validators.append(AllowedFile(spec))
        field.kwargs["validators"] = validators
        if for_add and spec.default is not None:
            field.kwargs["default"] = lambda _spec=spec: default_value(_spec)
        result[spec.key] = field
    return result


def build_filter_fields(table: TableSpec) -> dict[str, Any]:
    """Return the filter panel's value controls that differ from FAB's: a dropdown for option lists."""
    from flask_appbuilder.fieldwidgets import Select2Widget

    return {spec.key: ChoiceSelectField(spec, current_lang, lazy_label(spec.label), widget=Select2Widget())
            for spec in table.fields if spec.type in ("choice", "multi_choice")}


class UniqueInput:
    """WTForms validator: refuse a value another record of the table already has."""

    def __init__(self, models: BuiltModels, table: TableSpec, spec: FieldSpec):
        self.models, self.table, self.spec = models, table, spec

    def __call__(self, form: Any, field: Any) -> None:
        session = current_appbuilder().session
        model = self.models.model(self.table.key)
        own = getattr(form, "_id", None)
        problems = unique_conflicts(model, self.table, {self.spec.key: field.data}, own, session)
        if problems:
            raise StopValidation(problems[self.spec.key].text(current_lang()))


class RequiredFile:
    """WTForms validator for a required attachment: a file is sent, or the record being edited has one."""

    field_flags = {"required": True}

    def __init__(self, models: BuiltModels, table: TableSpec, spec: FieldSpec):
        self.models, self.table, self.spec = models, table, spec

    def __call__(self, form: Any, field: Any) -> None:
        if getattr(field.data, "filename", None) or self.stored(getattr(form, "_id", None)):
            return
        raise StopValidation("Required" if current_lang() == "en" else "必填")

    def stored(self, pk: Any) -> bool:
        """Return True when the record `pk` already has a file in this field."""
        if pk is None:
            return False
        model = self.models.model(self.table.key)
        record = current_appbuilder().session.get(model, pk)
        return bool(record is not None and getattr(record, self.spec.key))


def file_extension(filename: str) -> str:
    """Return a file name's extension, lower case and without the dot ('' when it has none)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name.strip(".") else ""


class AllowedFile:
    """WTForms validator for an upload: its extension is one the field accepts (`accept:`)."""

    def __init__(self, spec: FieldSpec):
        self.spec = spec

    def __call__(self, form: Any, field: Any) -> None:
        filename = getattr(field.data, "filename", None)
        if not filename:
            return
        extension = file_extension(filename)
        if extension not in self.spec.accepted_files:
            shown = f".{extension}" if extension else ("没有扩展名的" if current_lang() == "zh" else "extension-less")
            allowed = ", ".join(self.spec.accepted_files)
            raise StopValidation(f"不能上传{shown}文件;可上传:{allowed}" if current_lang() == "zh"
                                 else f"{shown} files cannot be uploaded here; allowed: {allowed}")


class RequiredRelation:
    """WTForms validator for a required link or user select."""

    field_flags = {"required": True}

    def __call__(self, form: Any, field: Any) -> None:
        if field.data is None or field.data == "":
            raise StopValidation("Required" if current_lang() == "en" else "必填")
