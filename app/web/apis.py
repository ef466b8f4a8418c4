"""Generated REST APIs: one ModelRestApi class per table, with field rules from the specs."""
from __future__ import annotations

import sys
from typing import Any

import sqlalchemy as sa
from flask import request
from flask_appbuilder import ModelRestApi
from flask_appbuilder.api.convert import Model2SchemaConverter
from flask_appbuilder.exceptions import FABException
from marshmallow import ValidationError, pre_load, validates_schema
from marshmallow import fields as ma_fields
from werkzeug.exceptions import BadRequest, HTTPException

from app.crypto import DecryptFailed
from app.fields.types import SpecApiField, field_type
from app.models.build import BuiltModels
from app.models.computed import ComputeProblem
from app.models.problems import RecordProblem
from app.models.rules import RuleNeedsConfirming, confirming
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import (
    OutOfReach,
    assign_owner,
    can_pick_user,
    can_reach,
    check_in_reach,
    current_user,
    pick_filters,
    picks_only_self,
    row_rule_filter,
)
from app.security.permissions import METHOD_VERBS

from .audit import record_reveal, revealed_fields
from .context import current_appbuilder
from .encrypted import BlindEqualFilter, MaskedApiField
from .errors import api_message, data_error_message, http_error_message, undecryptable_message, write_failure
from .filtering import BadFilter, checked_filter_value, filter_problem
from .i18n import current_lang
from .openapi import RESPONSES, correct_components, correct_operations, use_responses
from .records import DeleteBlocked, RecordInterface, check_delete, record_id, unique_conflicts, user_display_name
from .variants import API_ATTRIBUTES, FieldRulesMixin, fresh_filters, fresh_schema

CONFIRM_HEADER = "X-Confirm-Rules"  # names the record rules whose warnings a write confirms (app.models.rules)
USER_COLUMNS = ("id", "username", "first_name", "last_name")


class RelatedIdField(ma_fields.Field):
    """A link or user given by id in a request: an existing record the user may pick, or null.

    Never an object: a nested object would let marshmallow-sqlalchemy build a new record (or login)
    in the linked table, past that table's permissions and rules. A record the user may not pick
    answers exactly like one that does not exist.
    """

    def __init__(self, spec: FieldSpec, target: type, target_label: Any, models: BuiltModels, table_key: str,
                 **kwargs: Any):
        super().__init__(allow_none=not spec.required, **kwargs)
        self.spec, self.target, self.target_label, self.models = spec, target, target_label, models
        self.table_key = table_key
        self.metadata = {**self.metadata, "type": "integer", "nullable": not spec.required,
                         "description": f"id of the {spec.to or 'user'}"}

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return None if value is None else value.id

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).isdigit():
            raise ValidationError("应为记录 id(整数)" if current_lang() == "zh"
                                  else "expected a record id (an integer)")
        pk = record_id(value)
        instance = getattr(self.parent, "instance", None)
        current = getattr(instance, self.spec.key, None) if instance is not None else None
        if current is not None and current.id == pk:
            return current  # kept as it is (a PUT sends back the whole record), even if no longer pickable
        row = current_appbuilder().session.get(self.target, pk) if pk is not None else None
        if row is not None and not self.may_pick(row.id):
            if self.spec.type == "user":  # said without telling whether that login exists
                raise ValidationError(user_pick_rule(self.models, self.table_key, self.spec))
            row = None
        if row is None:
            raise ValidationError(f"不存在 id 为 {value} 的{self.target_label.zh}" if current_lang() == "zh"
                                  else f"there is no {self.target_label.en} with id {value}")
        return row

    def may_pick(self, row_id: int) -> bool:
        """Return True when the current user may put the record `row_id` into this field."""
        session = current_appbuilder().session
        if self.spec.type == "link":
            return can_reach(self.models, self.spec.to or "", row_id, session, picking=True)
        return can_pick_user(self.models, self.table_key, self.spec.key, row_id)

    def deserialize(self, value: Any, attr: Any = None, data: Any = None, **kwargs: Any) -> Any:
        if value is None and self.spec.required:
            raise ValidationError("必填" if current_lang() == "zh" else "required")
        return super().deserialize(value, attr, data, **kwargs)


def user_pick_rule(models: BuiltModels, table_key: str, spec: FieldSpec) -> str:
    """Return which logins a user field takes from the current user, in their language."""
    zh = current_lang() == "zh"
    if picks_only_self(models, table_key, spec.key, current_user()):
        return "这里只能选择您本人" if zh else "only you may be chosen here"
    roles = [models.schema.roles[r].label.text(current_lang()) if r in models.schema.roles else r for r in spec.roles]
    return (f"这里只能选择在职的{'、'.join(roles)}" if zh else f"only active users who are {', '.join(roles)} may be "
            "chosen here")


class SpecSchemaMixin:
    """Schema-level rules: required fields on create, unique values against the database."""

    table_spec: TableSpec
    for_create: bool = False
    fields: dict[str, Any]      # marshmallow's, once the schema class is made
    crm_models: BuiltModels

    @pre_load
    def _default_from(self, data: Any, **kwargs: Any) -> Any:
        """Copy default_from values (a line's unit price from its product) into fields sent empty or,
        on create, not sent, before they are checked."""
        if not isinstance(data, dict):
            return data
        filled = dict(data)
        for f in self.table_spec.fields:
            if not f.default_from or f.key not in self.fields or filled.get(f.key) not in (None, ""):
                continue
            if f.key not in filled and not self.for_create:
                continue
            link_key, _, source_key = f.default_from.partition(".")
            target = self.table_spec.field(link_key).to or ""
            pk = record_id(filled.get(link_key))
            model = self.crm_models.model(target)
            linked = current_appbuilder().session.get(model, pk) if pk is not None else None
            value = getattr(linked, source_key, None) if linked is not None else None
            if value is not None:
                filled[f.key] = field_type(self.table_spec.field(f.key)).to_json(value)
        return filled

    @validates_schema(skip_on_field_errors=False, pass_original=True)
    def _check_record(self, data: dict[str, Any], original: Any, **kwargs: Any) -> None:
        errors: dict[str, list[str]] = {}
        lang = current_lang()
        sent = original if isinstance(original, dict) else {}
        if self.for_create:
            for f in self.table_spec.fields:
                if f.key in self.fields and (f.required and f.key not in sent and f.key not in data
                                             and f.default is None and not f.readonly
                        and f.type != "boolean"):
                    errors[f.key] = ["必填" if lang == "zh" else "required"]
        instance = getattr(self, "instance", None)
        own_id = getattr(instance, "id", None)
        session = current_appbuilder().session
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
        own_table = datamodel.obj is self.datamodel.obj
        if spec is None or (spec.is_relation and (column.children or not own_table)):
            # FAB's fields for ids and for the related records an answer shows (customer.id, customer.name)
            return super()._column2field(datamodel, column, nested, parent_schema_name)
        if spec.key in self.masked and own_table:
            return MaskedApiField(spec)
        if spec.is_relation:
            target = datamodel.get_related_model(column.name)
            target_spec = getattr(target, "__table_spec__", None)
            label = target_spec.label if target_spec else Label("用户", "user")
            return RelatedIdField(spec, target, label, self.models, datamodel.obj.__table_spec__.key)
        return SpecApiField(spec, current_lang)

    def _meta_schema_factory(self, columns: Any, model: Any, class_mixin: Any,
                             parent_schema_name: Any = None) -> Any:
        spec = getattr(model, "__table_spec__", None)
        if spec is not None and model is self.datamodel.obj:
            class_mixin = type("Mixin", (SpecSchemaMixin, class_mixin),
                               {"table_spec": spec, "for_create": self.for_create, "crm_models": self.models})
        return super()._meta_schema_factory(columns, model, class_mixin, parent_schema_name)


def _spec_of(model: type, key: str) -> FieldSpec | None:
    table = getattr(model, "__table_spec__", None)
    if table is None or not table.has_field(key):
        return None
    return table.field(key)


class RecordApi(FieldRulesMixin, ModelRestApi):
    """Behaviour shared by every generated API; per-table settings are class attributes.

    Columns, filters and schemas follow the user's field rules (see app.web.variants): a hidden field
    is never returned, filtered or sorted on, and a hidden or read-only field sent in a write is
    refused as an unknown field.
    """

    table_spec: TableSpec
    models: BuiltModels
    method_permission_name = METHOD_VERBS
    allow_browser_login = False  # JWT only: a session cookie never authorises an API call
    field_rule_attributes = API_ATTRIBUTES
    per_request_copies = {"_filters": fresh_filters, "add_model_schema": fresh_schema,
                          "edit_model_schema": fresh_schema}

    masked_fields: frozenset[str] = frozenset()
    responses = RESPONSES

    def add_api_spec(self, api_spec: Any) -> None:
        super().add_api_spec(api_spec)
        use_responses(api_spec)
        correct_operations(api_spec._paths, self.route_base)
        correct_components(api_spec.components.schemas, type(self).__name__)

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
        items = rison_args.get("filters") or []
        if not isinstance(items, list):
            raise FABException(self.text("filters 应为筛选条件的列表", "filters must be a list of filters"))
        checked = [self.checked_filter(n, item) for n, item in enumerate(items)]
        filters = self._filters  # this request's own copy (see FieldRulesMixin.per_request_copies)
        filters.clear_filters()
        filters.rest_add_filters(checked)
        return filters.get_joined_filters(self._base_filters)

    def checked_filter(self, n: int, item: Any) -> dict[str, Any]:
        """Return the n-th filter of a request with its value checked; raise FABException (400) naming it."""
        if not isinstance(item, dict) or not {"col", "opr", "value"} <= set(item) \
                or not isinstance(item["col"], str) or not isinstance(item["opr"], str):
            raise FABException(self.text(f"filters[{n}]:每个筛选条件需要 col、opr 和 value",
                                         f"filters[{n}]: each filter needs col, opr and value"))
        col, opr = item["col"], item["opr"]
        spec = self.table_spec.field(col) if self.table_spec.has_field(col) else None
        if spec is not None and spec.encrypted and opr == "eq":
            opr = BlindEqualFilter.arg_name  # an encrypted field's only filter is exact match
        try:
            value = checked_filter_value(spec, opr, item["value"])
        except BadFilter as exc:
            raise FABException(f"filters[{n}]: " + filter_problem(spec, col, exc).text(current_lang())) from None
        return {"col": col, "opr": opr, "value": value}

    def get_list_headless(self, **kwargs: Any) -> Any:
        problem = page_problem((kwargs.get("rison") or {}).get("page"))
        if problem is not None:
            return self.response_400(message=problem)
        return super().get_list_headless(**kwargs)

    def response_401(self) -> Any:
        return self.response(401, message=api_message(401))

    def response_403(self) -> Any:
        return self.response(403, message=api_message(403))

    def response_404(self) -> Any:
        return self.response(404, message=api_message(404))

    def _label_columns_json(self, cols: Any = None) -> dict[str, Any]:
        labels = api_labels(self.models, self.table_spec, current_lang())
        return {key: label for key, label in labels.items() if not cols or key in cols}

    @staticmethod
    def text(zh: str, en: str) -> str:
        """Return the message in the request's language."""
        return zh if current_lang() == "zh" else en

    def _get_field_info(self, field: Any, filter_rel_field: Any, page: Any = None, page_size: Any = None) -> Any:
        info = super()._get_field_info(field, filter_rel_field, page=page, page_size=page_size)
        if self.table_spec.has_field(field.name):
            spec = self.table_spec.field(field.name)
            info["label"] = spec.label.text(current_lang())
            info["description"] = spec.help.text(current_lang()) if spec.help else ""
            info["required"] = spec.required and spec.type != "boolean"  # an unticked box is a valid "no"
        if isinstance(field, RelatedIdField):
            problem = page_problem(page) or page_problem(page_size, "page_size")
            if problem is not None:
                raise BadRequest(problem)
            info["count"], info["values"] = self.pickable_records(field, page, page_size)
        return info

    def pickable_records(self, field: RelatedIdField, page: Any, page_size: Any) -> tuple[int, list[dict[str, Any]]]:
        """Return (count, [{id, value}]) of the records the user may put into a link or user field:
        the same records, through the same gate filter, as the screens' select offers."""
        datamodel = self.datamodel.get_related_interface(field.name)
        allowed = pick_filters(self.models, self.table_spec.key)[field.name or ""]
        filters = datamodel.get_filters([]).add_filter_list(allowed)
        page, page_size = self._sanitize_page_args(page, page_size)
        count, rows = datamodel.query(filters, page=page, page_size=page_size)
        shown = user_display_name if field.spec.type == "user" else str
        return count, [{"id": row.id, "value": shown(row)} for row in rows]

    def _init_model_schemas(self) -> None:
        # The add schema checks required fields; edits merge the stored record first, so they need not.
        def converter(for_create: bool) -> SpecSchemaConverter:
            conv = type("Converter", (SpecSchemaConverter,), {"for_create": for_create, "models": self.models,
                                                              "masked": self.masked_fields})
            return conv(self.datamodel, self.validators_columns)
        self.model2schemaconverter = converter(False)
        self.add_model_schema = converter(True).convert(self.add_columns, parent_schema_name=self.add_model_schema_name)
        self.edit_model_schema = self.model2schemaconverter.convert(self.edit_columns,
                                                                    parent_schema_name=self.edit_model_schema_name)
        super()._init_model_schemas()

    def pre_add(self, item: Any) -> None:
        assign_owner(self.models, self.table_spec.key, item)
        check_in_reach(self.models, self.table_spec.key, item, self.datamodel.session, "create")

    def pre_update(self, item: Any) -> None:
        check_in_reach(self.models, self.table_spec.key, item, self.datamodel.session, "update")

    def refuse_body(self) -> Any | None:
        """Return a 400 answer when a write's body is JSON but not an object, a 422 naming the computed
        fields it tries to write; None when it may be read."""
        body = request.get_json(silent=True) if request.is_json else None
        if request.is_json and not isinstance(body, dict):
            return self.response_400(message=self.text("请求内容应为一个 JSON 对象,例如 {\"name\": \"...\"}",
                                                        'the request body must be a JSON object, e.g. {"name": "..."}'))
        computed = [f for f in self.table_spec.fields if f.is_computed and f.key in (body or {})]
        if computed:
            return self.response(422, message={f.key: [self.text(
                f"“{f.label.zh}”由系统计算（{f.compute}），不能写入", f"{f.label.en} is computed ({f.compute}) and "
                "cannot be written")] for f in computed})
        return None

    def post_headless(self) -> Any:
        if not self.add_columns:  # a schema of no columns would be read by marshmallow as all of them
            return self.response_403()
        refused = self.refuse_body()
        if refused is not None:
            return refused
        try:
            with confirming(self.datamodel.session, confirmed_rules()):
                return super().post_headless()
        except OutOfReach as exc:
            return self.response_422(message=exc.text(current_lang()))

    def put_headless(self, pk: Any) -> Any:
        if not self.edit_columns:
            return self.response_403()
        refused = self.refuse_body() or self.refuse_outdated(pk)
        if refused is not None:
            return refused
        try:
            with confirming(self.datamodel.session, confirmed_rules()):
                return self.with_version(super().put_headless(pk), pk)
        except OutOfReach as exc:
            return self.response_422(message=exc.text(current_lang()))

    def get_headless(self, pk: Any, **kwargs: Any) -> Any:
        return self.with_version(super().get_headless(pk, **kwargs), pk)

    def stored_version(self, pk: Any) -> int | None:
        """Return the version of record `pk` among the user's rows; None when there is no such record."""
        item = self.datamodel.get(pk, self._base_filters)
        return getattr(item, naming.VERSION_COLUMN) if item is not None else None

    def with_version(self, answer: Any, pk: Any) -> Any:
        """Return a 200 answer about one record with its version as the ETag."""
        if answer.status_code == 200:
            version = self.stored_version(pk)
            if version is not None:
                answer.set_etag(str(version))
        return answer

    def refuse_outdated(self, pk: Any) -> Any | None:
        """Return a 412 answer with the record as stored when If-Match names another version; None
        when the request has no If-Match, names the current version or `*`, or there is no such record."""
        if "If-Match" not in request.headers:
            return None
        if not request.if_match:  # present, but no tag could be read from it
            return self.response_400(message=self.text(
                'If-Match 的格式不对：应为 GET 返回的 ETag，例如 "3"（带双引号），或 *',
                'If-Match is malformed: send the ETag a GET answered, such as "3" (with the quotes), or *'))
        version = self.stored_version(pk)
        if version is None or request.if_match.contains(str(version)):
            return None
        current = super().get_headless(pk)
        answer = self.response(412, message=self.text(
            f"此记录已被他人修改（现为第 {version} 版），未保存；请按返回的当前内容核对后再试",
            f"This record was changed by someone else (it is now version {version}); nothing was saved. Check "
            "the current record returned here and try again."), id=int(pk), result=(current.json or {}).get("result"))
        answer.set_etag(str(version))
        return answer

    def response_422(self, message: Any = None) -> Any:
        error = sys.exc_info()[1]
        if isinstance(message, str) and message.startswith("Database exception occurred") and error is not None:
            # FAB puts the database's own words in the answer (SQL, parameters): say what happened instead
            status, text = write_failure(error)
            return self.response(status, message=text)
        return super().response_422(message)

    def response_400(self, message: Any = None) -> Any:
        if isinstance(message, str) and message.startswith("400 Bad Request: "):
            message = message.removeprefix("400 Bad Request: ")  # a BadRequest raised below, caught by FAB's @safe
        if isinstance(message, str) and message.startswith("Not a valid rison schema "):
            # FAB checks q against its JSON schema before this view runs; say which part, in the user's language
            detail = message.removeprefix("Not a valid rison schema ")
            message = self.text(f"参数 q 的结构不符合要求:{detail}", f"the argument q is not as expected: {detail}")
        return super().response_400(message)

    def response_500(self, message: str | None = None) -> Any:
        # FAB's @safe answers every error but BadRequest with "Fatal error": say what happened instead.
        error = sys.exc_info()[1]
        if isinstance(error, DecryptFailed):
            return self.response(500, message=undecryptable_message(error))
        if isinstance(error, RuleNeedsConfirming):
            current_appbuilder().session.rollback()
            readable = [{"table": table, "id": pk, "title": title} for table, pk, title in error.records
                        if can_reach(self.models, table, pk, current_appbuilder().session)]
            return self.response(409, message=error.text(current_lang()), confirm=list(error.rules),
                                 **({"records": readable} if error.records else {}))
        if isinstance(error, RecordProblem):
            current_appbuilder().session.rollback()
            text = error.text(current_lang())
            return self.response(422, message={error.field: [text]} if error.field and not
                                 isinstance(error, ComputeProblem) else text)
        if isinstance(error, HTTPException):  # 413 for a body over MAX_CONTENT_LENGTH, ...
            return self.response(error.code or 400, message=http_error_message(error))
        if isinstance(error, sa.exc.DataError):
            current_appbuilder().session.rollback()
            return self.response_400(message=data_error_message())
        if isinstance(error, sa.exc.SQLAlchemyError):  # a write the database refused (locked, full, ...)
            current_appbuilder().session.rollback()
            status, text = write_failure(error)
            return self.response(status, message=text)
        return super().response_500(message)

    def pre_get(self, data: dict[str, Any]) -> None:
        self.record_reveal([(data["id"], data["result"])], list(data["result"]))

    def pre_get_list(self, data: dict[str, Any]) -> None:
        columns = list(data["result"][0]) if data.get("result") else []
        self.record_reveal(list(zip(data.get("ids", []), data.get("result", []), strict=True)), columns)

    def record_reveal(self, records: list[tuple[Any, dict[str, Any]]], columns: list[str]) -> None:
        """Record in the audit log that this answer held plain values of encrypted fields."""
        fields = revealed_fields(self.table_spec, self.field_access(), columns)
        if fields:
            record_reveal(self.table_spec, fields, records)

    def pre_delete(self, item: Any) -> None:
        check_delete(self.models, self.table_spec, item, self.datamodel.session)

    def delete_headless(self, pk: Any) -> Any:
        refused = self.refuse_outdated(pk)
        if refused is not None:
            return refused
        try:
            return super().delete_headless(pk)
        except DeleteBlocked as exc:
            return self.response(409, message=exc.text(current_lang()))


def confirmed_rules() -> list[str]:
    """Return the record rules whose warnings a write confirms: the names in its X-Confirm-Rules
    header, separated by commas (what a 409 answer listed under `confirm`)."""
    return [name.strip() for name in request.headers.get(CONFIRM_HEADER, "").split(",") if name.strip()]


MAX_PAGE = 10_000_000  # far past the last page of any table; beyond it, offsets overflow


def page_problem(value: Any, name: str = "page") -> str | None:
    """Return what is wrong with a page number (or size) in a request; None when it is fine or absent."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PAGE:
        return (f"{name} 应为 0 到 {MAX_PAGE} 之间的整数" if current_lang() == "zh"
                else f"{name} must be a whole number from 0 to {MAX_PAGE}")
    return None


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


USER_COLUMN_LABELS = {"id": Label("编号", "id"), "username": Label("登录名", "login"),
                      "first_name": Label("名", "first name"), "last_name": Label("姓", "last name")}


def api_labels(models: BuiltModels, table: TableSpec, lang: str) -> dict[str, str]:
    """Return the label of every column an API answer may hold, from the schema's labels: a linked
    record's columns read '客户 · 公司名称' ('Customer · Company')."""
    labels = {"id": "编号" if lang == "zh" else "id"}
    for f in table.fields:
        labels[f.key] = f.label.text(lang)
        if f.type == "link":
            target = models.schema.table(f.to or "")
            labels[f"{f.key}.id"] = f"{f.label.text(lang)} · {labels['id']}"
            title = target.field(target.title).label.text(lang) if target.has_field(target.title) else None
            labels[f"{f.key}.{target.title}"] = f"{f.label.text(lang)} · {title}" if title else f.label.text(lang)
        elif f.type == "user":
            for column, label in USER_COLUMN_LABELS.items():
                labels[f"{f.key}.{column}"] = f"{f.label.text(lang)} · {label.text(lang)}"
    return labels


def build_api_class(models: BuiltModels, table: TableSpec) -> type[RecordApi]:
    """Return the ModelRestApi class of one table."""
    read_columns = api_read_columns(models, table)
    # Files are uploaded through the screens; the API reads their names but does not write them
    # (a written name could point at another record's file).
    writable = [f.key for f in table.fields if not f.readonly and f.type != "attachment" and not f.is_computed]
    attrs: dict[str, Any] = {
        "table_spec": table,
        "models": models,
        "datamodel": RecordInterface(models.model(table.key)),
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
