"""Generated REST APIs: one ModelRestApi class per table, with field rules from the specs."""
from __future__ import annotations

import sys
from typing import Any

from flask import current_app
from flask_appbuilder import ModelRestApi
from flask_appbuilder.api.convert import Model2SchemaConverter
from flask_appbuilder.models.sqla.interface import SQLAInterface
from marshmallow import ValidationError, fields as ma_fields, validates_schema

from crm.fields.types import SpecApiField
from crm.models import naming
from crm.models.build import BuiltModels
from crm.security.crypto import DecryptFailed
from crm.security.gate import OutOfReach, assign_owner, can_reach, check_in_reach, row_rule_filter
from crm.security.permissions import METHOD_VERBS
from crm.spec.model import FieldSpec, TableSpec

from .encrypted import BlindEqualFilter, MaskedApiField
from .audit import record_reveal, revealed_fields
from .errors import undecryptable_message
from .i18n import current_lang
from .records import DeleteBlocked, check_delete, unique_conflicts
from .variants import API_ATTRIBUTES, FieldRulesMixin

USER_COLUMNS = ("id", "username", "first_name", "last_name")


class RelatedIdField(ma_fields.Field):
    """A link or user given by id in a request; answers with a clear message when there is no such row."""

    def __init__(self, spec: FieldSpec, target: type, target_label: Any, models: BuiltModels, **kwargs: Any):
        super().__init__(allow_none=not spec.required, **kwargs)
        self.spec, self.target, self.target_label, self.models = spec, target, target_label, models
        self.metadata.update({"type": "integer", "description": f"id of the {spec.to or 'user'}"})

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.id

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
            raise ValidationError("应为记录 id(整数)" if current_lang() == "zh" else "expected a record id (an integer)")
        session = current_app.appbuilder.session
        row = session.get(self.target, int(value))
        target_key = self.spec.to if self.spec.type == "link" else None
        if row is not None and target_key and not can_reach(self.models, target_key, row.id, session, picking=True):
            row = None  # out of the user's rows: answered exactly like a record that does not exist
        if row is None:
            raise ValidationError(f"不存在 id 为 {value} 的{self.target_label.zh}" if current_lang() == "zh"
                                  else f"there is no {self.target_label.en} with id {value}")
        return row

    def deserialize(self, value: Any, attr: Any = None, data: Any = None, **kwargs: Any) -> Any:
        if value is None and self.spec.required:
            raise ValidationError("必填" if current_lang() == "zh" else "required")
        return super().deserialize(value, attr, data, **kwargs)


class SpecSchemaMixin:
    """Schema-level rules: required fields on create, unique values against the database."""

    table_spec: TableSpec
    for_create: bool = False

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _check_record(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        lang = current_lang()
        sent = original if isinstance(original, dict) else {}
        if self.for_create:
            for f in self.table_spec.fields:
                if f.key in self.fields and (f.required and f.key not in sent and f.default is None and not f.readonly
                        and f.type != "boolean"):
                    errors[f.key] = ["必填" if lang == "zh" else "required"]
        instance = getattr(self, "instance", None)
        own_id = getattr(instance, "id", None)
        session = current_app.appbuilder.session
        model = self.opts.model  # type: ignore[attr-defined]
        for key, label in unique_conflicts(model, self.table_spec, data, own_id, session).items():
            errors.setdefault(key, []).append(label.text(lang))
        if errors:
            raise ValidationError(errors)


class SpecSchemaConverter(Model2SchemaConverter):
    """Builds marshmallow schemas whose fields follow the field specs (validation, JSON shape)."""

    for_create = False
    models: BuiltModels
    masked: frozenset[str] = frozenset()  # fields answered masked (encrypted, not revealed to the user)

    def _column2field(self, datamodel: Any, column: Any, nested: bool = True,
                      parent_schema_name: Any = None) -> Any:
        spec = _spec_of(datamodel.obj, column.name)
        if spec is None:
            return super()._column2field(datamodel, column, nested, parent_schema_name)
        if spec.is_relation and (column.children or not nested):
            return super()._column2field(datamodel, column, nested, parent_schema_name)
        if spec.key in self.masked and datamodel.obj is self.datamodel.obj:
            return MaskedApiField(spec)
        if spec.is_relation:
            target = datamodel.get_related_model(column.name)
            target_spec = getattr(target, "__table_spec__", None)
            from crm.spec.model import Label
            label = target_spec.label if target_spec else Label("用户", "user")
            return RelatedIdField(spec, target, label, self.models)
        return SpecApiField(spec, current_lang)

    def _meta_schema_factory(self, columns: Any, model: Any, class_mixin: Any,
                             parent_schema_name: Any = None) -> Any:
        spec = getattr(model, "__table_spec__", None)
        if spec is not None and model is self.datamodel.obj:
            class_mixin = type("Mixin", (SpecSchemaMixin, class_mixin),
                               {"table_spec": spec, "for_create": self.for_create})
        return super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name)


def _spec_of(model: type, key: str) -> FieldSpec | None:
    table = getattr(model, "__table_spec__", None)
    if table is None or not table.has_field(key):
        return None
    return table.field(key)


class RecordApi(FieldRulesMixin, ModelRestApi):
    """Behaviour shared by every generated API; per-table settings are class attributes.

    Columns, filters and schemas follow the user's field rules (see crm.web.variants): a hidden field
    is never returned, filtered or sorted on, and a hidden or read-only field sent in a write is
    refused as an unknown field.
    """

    table_spec: TableSpec
    models: BuiltModels
    method_permission_name = METHOD_VERBS
    allow_browser_login = False  # JWT only: a session cookie never authorises an API call
    field_rule_attributes = API_ATTRIBUTES

    masked_fields: frozenset[str] = frozenset()

    def masking_attributes(self, access: Any) -> dict[str, Any]:
        return {"masked_fields": access.masked}

    def finish_variant(self, variant: Any) -> None:
        variant._init_model_schemas()

    def _init_properties(self) -> None:
        super()._init_properties()
        search = self._filters.get_search_filters()
        for spec in self.table_spec.fields:
            if spec.key in search and spec.encrypted:
                search[spec.key] = [BlindEqualFilter(spec.key, self.datamodel)]

    def _handle_filters_args(self, rison_args: dict[str, Any]) -> Any:
        # An encrypted field's only filter is exact match; take the usual 'eq' for it.
        for item in rison_args.get("filters", []) or []:
            if isinstance(item, dict) and item.get("opr") == "eq" and self.table_spec.has_field(str(item.get("col"))) \
                    and self.table_spec.field(str(item["col"])).encrypted:
                item["opr"] = BlindEqualFilter.arg_name
        return super()._handle_filters_args(rison_args)

    def _init_model_schemas(self) -> None:
        # The add schema checks required fields; edits merge the stored record first, so they need not.
        def converter(for_create: bool) -> SpecSchemaConverter:
            conv = type("Converter", (SpecSchemaConverter,), {"for_create": for_create, "models": self.models,
                                                              "masked": self.masked_fields})
            return conv(self.datamodel, self.validators_columns)
        self.model2schemaconverter = converter(False)
        self.add_model_schema = converter(True).convert(self.add_columns)
        super()._init_model_schemas()

    def pre_add(self, item: Any) -> None:
        assign_owner(self.models, self.table_spec.key, item)
        check_in_reach(self.models, self.table_spec.key, item, self.datamodel.session, "create")

    def pre_update(self, item: Any) -> None:
        check_in_reach(self.models, self.table_spec.key, item, self.datamodel.session, "update")

    def post_headless(self) -> Any:
        if not self.add_columns:  # a schema of no columns would be read by marshmallow as all of them
            return self.response_403()
        try:
            return super().post_headless()
        except OutOfReach as exc:
            return self.response_422(message=exc.text(current_lang()))

    def put_headless(self, pk: Any) -> Any:
        if not self.edit_columns:
            return self.response_403()
        try:
            return super().put_headless(pk)
        except OutOfReach as exc:
            return self.response_422(message=exc.text(current_lang()))

    def response_500(self, message: str | None = None) -> Any:
        # FAB's @safe answers every error with "Fatal error"; a value that does not decrypt says which.
        error = sys.exc_info()[1]
        if isinstance(error, DecryptFailed):
            return self.response(500, message=undecryptable_message(error))
        return super().response_500(message)

    def pre_get(self, data: dict[str, Any]) -> None:
        self.record_reveal([(data["id"], data["result"])], list(data["result"]))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        columns = list(data["result"][0]) if data.get("result") else []
        self.record_reveal(list(zip(data.get("ids", []), data.get("result", []))), columns)

    def record_reveal(self, records: list[tuple[Any, dict[str, Any]]], columns: list[str]) -> None:
        """Record in the audit log that this answer held plain values of encrypted fields."""
        fields = revealed_fields(self.table_spec, self.field_access(), columns)
        if fields:
            record_reveal(self.table_spec, fields, records)

    def pre_delete(self, item: Any) -> None:
        check_delete(self.models, self.table_spec, item, self.datamodel.session)

    def delete_headless(self, pk: Any) -> Any:
        try:
            return super().delete_headless(pk)
        except DeleteBlocked as exc:
            return self.response(409, message=exc.text(current_lang()))


def api_read_columns(models: BuiltModels, table: TableSpec) -> list[str]:
    """Return the columns an API answer holds: id, plain fields, and id + title of each related row."""
    columns = ["id"]
    for f in table.fields:
        if f.type == "link":
            target = models.schema.table(f.to or "")
            columns += [f"{f.key}.id", f"{f.key}.{target.title}"]
        elif f.type == "user":
            columns += [f"{f.key}.{c}" for c in USER_COLUMNS]
        else:
            columns.append(f.key)
    return columns


def build_api_class(models: BuiltModels, table: TableSpec) -> type[RecordApi]:
    """Return the ModelRestApi class of one table."""
    read_columns = api_read_columns(models, table)
    writable = [f.key for f in table.fields if not f.readonly]
    attrs: dict[str, Any] = {
        "table_spec": table,
        "models": models,
        "datamodel": SQLAInterface(models.model(table.key)),
        "resource_name": table.key,
        "class_permission_name": naming.permission_view_name_for(table.key),
        "base_filters": row_rule_filter(models, table.key),
        "list_columns": read_columns,
        "show_columns": read_columns,
        "add_columns": writable,
        "edit_columns": writable,
        "search_columns": [f.key for f in table.fields if f.type != "attachment" and (f.searchable or not f.encrypted)],
        "order_columns": ["id"] + [f.key for f in table.fields if not f.is_relation and not f.encrypted
                                   and f.type not in ("multi_choice", "text", "attachment")],
        "label_columns": {f.key: f.label.text("zh") for f in table.fields},
        "description_columns": {f.key: f.help.text("zh") for f in table.fields if f.help},
    }
    return type(naming.api_class_name_for(table.key), (RecordApi,), attrs)
