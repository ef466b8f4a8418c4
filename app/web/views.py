"""Generated CRUD screens: one ModelView class per table, built with one type() call each."""
from __future__ import annotations

import io
import os
import re
import uuid
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, g, jsonify, request, send_file, url_for
from flask_appbuilder import ModelView, expose, has_access
from flask_appbuilder.models.filters import BaseFilter
from flask_appbuilder.widgets import FormWidget, ListWidget
from markupsafe import Markup, escape
from werkzeug.utils import secure_filename

from app.fields.types import field_type, stored_file_label
from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.gate import (
    OutOfReach,
    assign_owner,
    can_reach,
    check_in_reach,
    pick_filters,
    request_field_access,
    row_rule_filter,
)
from app.security.keys import file_place
from app.security.permissions import METHOD_VERBS, permission_name

from .audit import record_history, record_reveal, revealed_fields
from .colours import painted
from .dashboards import widget_filter
from .encrypted import BlindEqualFilter, encrypted_condition, mask_formatter
from .errors import Refused
from .filtering import MAX_SEARCH, BadFilter, checked_filter_value, filter_problem
from .forms import build_filter_fields, build_form_fields
from .i18n import current_lang, lazy_label, lazy_text
from .picking import pick_page
from .records import RecordInterface, check_delete, record_id, user_display_name
from .saving import SavesKeepInput, VersionField
from .transfer import TransferMixin
from .variants import VIEW_ATTRIBUTES, FieldRulesMixin, fresh_filters

LIST_SKIP_SORT = ("multi_choice", "text", "attachment")


class KeywordFilter(BaseFilter):
    """Matches rows where every word is found in one of the table's search fields.

    A choice field matches on its option labels (Chinese or English) as well as its stored keys,
    since people type what they see.
    """

    name = "keyword"
    table: TableSpec
    fields: list[str]  # the table's search fields the user may see

    def apply(self, query: Any, value: Any) -> Any:
        every_word = sa.and_(*[sa.or_(*self.word_conditions(word)) for word in str(value).split()])
        # An encrypted field matches its whole value only, which may hold spaces ("AB 12").
        whole = [encrypted_condition(self.datamodel.obj, self.table.field(key), str(value))
                 for key in self.fields if "." not in key and self.table.field(key).encrypted]
        return query.filter(sa.or_(every_word, *whole) if whole else every_word)

    def word_conditions(self, word: str) -> list[Any]:
        """Return one SQL condition per search field that matches `word`; a link path (customer.name)
        matches the records whose linked record matches."""
        conditions = []
        for key in self.fields:
            if "." in key:
                link_key, _, target_key = key.partition(".")
                link = self.table.field(link_key)
                target_model = getattr(self.datamodel.obj, link_key).property.mapper.class_
                target_spec = target_model.__table_spec__.field(target_key)
                inner = field_conditions(target_model, target_spec, word)
                conditions.append(getattr(self.datamodel.obj, link.key).has(sa.or_(*inner)))
                continue
            conditions += field_conditions(self.datamodel.obj, self.table.field(key), word)
        return conditions


def field_conditions(model: Any, spec: FieldSpec, word: str) -> list[Any]:
    """Return the SQL conditions by which one field of `model` matches a typed word: its text; a phone
    number by its digits too (0792-5643496 is found by 07925643496 and 5643496); a choice by its labels."""
    column = getattr(model, spec.key)
    if spec.encrypted:  # only the whole value, through the blind index
        return [encrypted_condition(model, spec, word)]
    conditions = [column.ilike(f"%{word}%")]
    digits = re.sub(r"\D", "", word)
    if spec.type == "phone" and len(digits) >= 3:
        conditions.append(phone_digits(column).like(f"%{digits}%"))
    if spec.choices:
        keys = [o.key for o in spec.choices.options
                if word.lower() in o.label.zh.lower() or word.lower() in o.label.en.lower()]
        if keys:
            conditions.append(column.in_(keys))
    return conditions


def phone_digits(column: Any) -> Any:
    """Return SQL of a stored phone number with its separators taken out (+86 138-1234 5678 → 861381234578)."""
    for separator in ("-", " ", "+", "(", ")"):
        column = sa.func.replace(column, separator, "")
    return column


class ColouredListWidget(ListWidget):
    """Flask-AppBuilder's list, its rows and cells painted by the table's colour rules (`painted`)."""

    template = "crm/widgets/list.html"


class InlineFormWidget(FormWidget):
    """Flask-AppBuilder's form, with the child tables the table edits inline before its buttons."""

    template = "crm/widgets/form.html"


class RecordView(FieldRulesMixin, SavesKeepInput, TransferMixin, ModelView):
    """Behaviour shared by every generated screen; per-table settings are class attributes.

    Column lists, forms and filters follow the user's field rules (see app.web.variants).
    """

    table_spec: TableSpec
    models: BuiltModels
    child_links: list[tuple[RecordView, FieldSpec]] = []
    list_template = "crm/list.html"
    show_template = "crm/show.html"
    edit_template = "crm/edit.html"
    add_template = "crm/add.html"
    page_size = 25
    add_widget = InlineFormWidget
    edit_widget = InlineFormWidget
    list_widget = ColouredListWidget
    add_row_message = lazy_text("保存成功", "Saved")
    edit_row_message = lazy_text("保存成功", "Saved")
    method_permission_name = METHOD_VERBS
    field_rule_attributes = VIEW_ATTRIBUTES
    per_request_copies = {"_filters": fresh_filters}

    def _init_properties(self) -> None:
        super()._init_properties()
        # An option key is matched whole: "starts with" or "contains" would only confuse.
        search = self._filters.get_search_filters()
        iface = self.datamodel
        for spec in self.table_spec.fields:
            if spec.key in search and spec.type == "choice":
                search[spec.key] = [iface.FilterEqual(spec.key, iface), iface.FilterNotEqual(spec.key, iface)]
            elif spec.key in search and spec.type == "multi_choice":
                search[spec.key] = [iface.FilterContains(spec.key, iface), iface.FilterNotContains(spec.key, iface)]
            elif spec.key in search and spec.encrypted:
                search[spec.key] = [BlindEqualFilter(spec.key, iface)]
            else:
                continue
            # The URL names a filter by its place in this list (_flt_1_status): keep FAB's lookup in step.
            self._filters._all_filters[spec.key] = search[spec.key]

    def _init_forms(self) -> None:
        super()._init_forms()
        # The edit form carries the version it was filled from; a save based on an older one is refused.
        setattr(self.edit_form, naming.VERSION_COLUMN, VersionField())
        # FAB leaves the empty choice of a record select without text; WTForms then shows '__None'.
        for form in (self.add_form, self.edit_form):
            for spec in self.table_spec.fields:
                unbound = getattr(form, spec.key, None) if spec.is_relation else None
                if unbound is not None and "allow_blank" in unbound.kwargs:
                    unbound.kwargs["blank_text"] = "—"

    def render_template(self, template: str, **kwargs: Any) -> Any:
        return super().render_template(template, view=self, **kwargs)

    def masking_attributes(self, access: Any) -> dict[str, Any]:
        if not access.masked:
            return {}
        masks = {key: mask_formatter(self.table_spec.field(key)) for key in access.masked}
        return {"formatters_columns": {**type(self).formatters_columns, **masks}}

    def keyword_fields(self) -> list[str]:
        """Return the fields the keyword box searches for this user: the table's search fields they see,
        and link paths (customer.name) whose linked field they see too."""
        found = []
        for key in self.field_access().searched(self.table_spec.search):
            link_key, _, target_key = key.partition(".")
            target = self.table_spec.field(link_key).to if target_key else None
            if target is None or request_field_access(self.models, target).searches(target_key):
                found.append(key)
        return found

    def _get_list_widget(self, filters: Any, **kwargs: Any) -> Any:
        own_list = request.endpoint == f"{self.endpoint}.list"
        self.refuse_hidden_arguments(kwargs.get("order_column"), own_list)
        kwargs["page"], kwargs["page_size"] = capped_page(kwargs.get("page"), kwargs.get("page_size") or self.page_size)
        if own_list:
            self.check_filter_values(filters)
        keyword = request.args.get("q", "").strip()
        if len(keyword) > MAX_SEARCH:
            raise Refused(Label(f"搜索内容太长：最多 {MAX_SEARCH} 个字符",
                                f"the search is too long: at most {MAX_SEARCH} characters"))
        fields = self.keyword_fields()
        if keyword and fields and own_list:
            filters = filters.copy()
            search = type("Keyword", (KeywordFilter,), {"table": self.table_spec, "fields": fields})
            filters.add_filter(fields[0].split(".")[0], search, keyword)
        widgets = super()._get_list_widget(filters=filters, **kwargs)
        self.record_list_reveal(widgets["list"])
        args = widgets["list"].template_args
        args["painted"] = painted(self.table_spec, args.get("pks") or [])
        return widgets

    def _list(self, **kwargs: Any) -> Any:
        self.refuse_unknown_filters()
        return super()._list(**kwargs)

    def _add(self) -> Any:
        self.refuse_unknown_filters()  # presets of the add form come as _flt_ arguments too
        return super()._add()

    def refuse_unknown_filters(self) -> None:
        """Raise Refused for a _flt_<n>_<field> argument whose n names no filter of that field (FAB would
        fail looking it up)."""
        offered = self._filters.get_search_filters()
        for match in filter(None, map(re.compile(r"_flt_(\d)_(.*)").fullmatch, request.args)):
            index, key = int(match.group(1)), match.group(2)
            if key in offered and index >= len(offered[key]):
                spec = self.table_spec.field(key) if self.table_spec.has_field(key) else None
                name = spec.label if spec is not None else Label(key, key)
                raise Refused(Label(f"字段“{name.zh}”没有第 {index} 种筛选方式",
                                    f"the field '{name.en}' has no filter {index}"))

    def check_filter_values(self, filters: Any) -> None:
        """Check the values of the list's filters (from _flt_ arguments) with their fields' value rules;
        raise Refused (400) naming the first that cannot be compared with its field."""
        for n, (flt, value) in enumerate(zip(filters.filters, filters.values, strict=True)):
            key = flt.column_name
            spec = self.table_spec.field(key) if self.table_spec.has_field(key) else None
            operation = flt.arg_name or ""
            try:
                # FAB gives every _flt_ argument as the list of its values, each applied in turn
                filters.values[n] = ([checked_filter_value(spec, operation, v) for v in value]
                                     if isinstance(value, list) else checked_filter_value(spec, operation, value))
            except BadFilter as exc:
                raise Refused(filter_problem(spec, key, exc)) from None

    def refuse_hidden_arguments(self, order_column: str | None, own_list: bool) -> None:
        """Raise Refused when the request sorts this list by anything but its sortable columns, or filters
        it by a field the user may not see or reveal: the order or the matches would give values away
        (Flask-AppBuilder itself sorts by any column, even one of a linked table)."""
        access = self.field_access()
        if order_column and order_column not in self.order_columns:
            self.refuse(order_column, access, sorting=True)
        if own_list:
            for match in filter(None, map(re.compile(r"_flt_(\d)_(.*)").search, request.args)):
                if self.table_spec.has_field(match.group(2)) and not access.searches(match.group(2)):
                    self.refuse(match.group(2), access, sorting=False)

    def refuse(self, key: str, access: Any, sorting: bool) -> None:
        """Raise Refused naming why this user may not sort or filter by `key`."""
        spec = self.table_spec.field(key) if self.table_spec.has_field(key) else None
        if spec is not None and not access.shows(key):
            raise Refused(Label(f"您的角色看不到字段“{spec.label.zh}”，不能按它排序或筛选",
                                f"your role may not see the field '{spec.label.en}', "
                                "so it cannot sort or filter by it"))
        if spec is not None and not access.searches(key):
            raise Refused(Label(f"字段“{spec.label.zh}”对您的角色是隐去的（加密字段），不能按它排序或筛选",
                                f"the field '{spec.label.en}' is masked for your role (encrypted), so it cannot "
                                "sort or filter by it"))
        name = spec.label if spec is not None else Label(key, key)
        raise Refused(Label(f"这个列表不能按“{name.zh}”排序", f"this list cannot be sorted by '{name.en}'"))

    def _get_related_views_widgets(self, item: Any, orders: Any = None, pages: Any = None,
                                   page_sizes: Any = None, widgets: Any = None, **args: Any) -> Any:
        widgets = widgets or {}
        widgets["related_views"] = []
        widgets["related_titles"] = []
        for view, link in self.child_links:
            # A child list shows which records point here: not for a link field the user may not see.
            if (not self.appbuilder.sm.has_access("can_read", view.class_permission_name)
                    or not view.field_access().shows(link.key)):
                continue
            name = view.__class__.__name__
            order_column, order_direction = (orders or {}).get(name, ("", ""))
            filters = view.datamodel.get_filters()
            filters.add_filter_related_view(link.key, self.datamodel.FilterRelationOneToManyEqual, item.id)
            widgets["related_views"].append(view._get_view_widget(
                filters=filters, order_column=order_column, order_direction=order_direction,
                page=(pages or {}).get(name), page_size=(page_sizes or {}).get(name)))
            widgets["related_titles"].append(child_title(view.table_spec, link))
            widgets.setdefault("related_ids", []).append(naming.children_tab_for(view.table_spec.key, link.key))
        return widgets

    def pre_add(self, item: Any) -> None:
        assign_owner(self.models, self.table_spec.key, item)
        self.check_in_reach(item, "create")

    def pre_update(self, item: Any) -> None:
        self.check_in_reach(item, "update")

    def check_in_reach(self, item: Any, verb: str) -> None:
        """Refuse (FAB flashes the message) a write that would move the record out of the user's rows."""
        try:
            check_in_reach(self.models, self.table_spec.key, item, self.datamodel.session, verb)
        except OutOfReach as exc:
            raise ValueError(exc.text(current_lang())) from None

    def preset_links(self, exclude_cols: Any) -> dict[str, Any]:
        """Return field key → record of the links the add URL presets (?_flt_0_customer=4: the add
        button of a child tab), each one the user may pick; 404 for any other."""
        presets = {}
        for key in exclude_cols:
            spec = self.table_spec.field(key) if self.table_spec.has_field(key) else None
            if spec is None or not spec.is_relation:
                continue
            value = self._filters.get_filter_value(key)
            value = value[0] if isinstance(value, list) and len(value) == 1 else value  # FAB keeps a list per argument
            pk = record_id(value)
            target = self.models.model(spec.to or "") if spec.type == "link" else None
            if pk is None or target is None or not can_reach(self.models, spec.to or "", pk, self.datamodel.session,
                                                             picking=True):
                abort(404)
            presets[key] = self.datamodel.session.get(target, pk) or abort(404)
        return presets

    def _fill_form_exclude_cols(self, exclude_cols: Any, form: Any) -> None:
        for key, record in self.preset_links(exclude_cols).items():
            field = form._fields.get(key)
            if field is not None and hasattr(field, "preset"):
                field.preset(record)
            elif field is not None:
                field.data = record

    def _get_add_widget(self, form: Any, exclude_cols: Any = None, widgets: Any = None) -> Any:
        widgets = widgets or {}
        widgets["add"] = self.add_widget(form=form, include_cols=self.add_columns, exclude_cols=exclude_cols or [],
                                         fieldsets=self.add_fieldsets, inline=g.get("crm_inline") or [])
        # The parent a child is added from is shown, not offered: the form keeps it whatever is sent.
        widgets["read_only"] = [(self.label_columns[key], self.formatters_columns[key](record))
                                for key, record in self.preset_links(exclude_cols or []).items()]
        return widgets

    @expose("/pick/<field_key>")
    def pick(self, field_key: str) -> Any:
        """Answer a page of the records the user may pick in a link or user field (Select2's JSON)."""
        sm = self.appbuilder.sm
        if not sm.current_user or not any(sm.has_access(permission_name(verb), self.class_permission_name)
                                          for verb in ("create", "update")):
            abort(403)
        access = self.field_access()
        if not self.table_spec.has_field(field_key) or not self.table_spec.field(field_key).is_relation \
                or not access.shows(field_key):
            abort(404)
        words = request.args.get("q", "")[:MAX_SEARCH]
        page = record_id(request.args.get("page", "1")) or 1
        matched = record_id(request.args.get("match", ""))
        answer = pick_page(self.models, self.table_spec, self.table_spec.field(field_key), words, page - 1, matched)
        return jsonify(answer)

    @expose("/download/<string:filename>")
    @has_access
    def download(self, filename: str) -> Any:
        """FAB's download of any stored file is closed: attachments go through `file`, which checks the row."""
        abort(404)

    def _get_edit_widget(self, form: Any, exclude_cols: Any = None, widgets: Any = None) -> Any:
        widgets = widgets or {}
        widgets["edit"] = self.edit_widget(form=form, include_cols=self.edit_columns, exclude_cols=exclude_cols or [],
                                           fieldsets=self.edit_fieldsets, inline=g.get("crm_inline") or [])
        return widgets

    def _edit(self, pk: Any) -> Any:
        self.refuse_unknown_filters()
        widgets = super()._edit(pk)
        if widgets is not None:
            item = self.datamodel.get(pk, self._base_filters)
            widgets["read_only"] = self.read_only_values(item)
            self.record_reveal([item], [f.key for f in self.table_spec.fields])
        return widgets

    def _get_show_widget(self, pk: Any, item: Any, widgets: Any = None, **kwargs: Any) -> Any:
        widgets = super()._get_show_widget(pk, item, widgets=widgets, **kwargs)
        self.record_reveal([item], self.show_columns)
        widgets["history"] = record_history(self.models, self.table_spec, item.id)
        return widgets

    def record_reveal(self, items: list[Any], columns: list[str]) -> None:
        """Record in the audit log that encrypted values of `items` were shown in plain text."""
        fields = revealed_fields(self.table_spec, self.field_access(), list(columns))
        if fields:
            record_reveal(self.table_spec, fields, [(i.id, {k: getattr(i, k) for k in fields}) for i in items if i])

    def record_list_reveal(self, widget: Any) -> None:
        """Record the plain encrypted values a list (or a child list) showed."""
        fields = revealed_fields(self.table_spec, self.field_access(), list(self.list_columns))
        args = getattr(widget, "template_args", {})
        if fields and args.get("pks"):
            args["value_columns"] = values = list(args["value_columns"])  # FAB hands over a generator
            record_reveal(self.table_spec, fields, list(zip(args["pks"], values, strict=True)))

    def read_only_values(self, item: Any) -> list[tuple[Any, Any]]:
        """Return (label, shown value) of the fields the edit form shows but does not let this user change."""
        access = self.field_access()
        editable = set(self.edit_columns)
        return [(self.label_columns[f.key], self.formatters_columns[f.key](getattr(item, f.key)))
                for f in self.table_spec.fields if access.shows(f.key) and f.key not in editable]

    def pre_delete(self, item: Any) -> None:
        check_delete(self.models, self.table_spec, item, self.datamodel.session)

    def process_form(self, form: Any, is_created: bool) -> None:
        for spec in self.table_spec.fields:
            if spec.type == "attachment" and spec.key in form._fields:
                upload = request.files.get(spec.key)
                if upload and upload.filename:
                    ring = current_app.extensions["crm"].keyring if spec.encrypted else None
                    form._fields[spec.key].data = save_upload(upload, ring)
                else:
                    del form._fields[spec.key]  # keep the stored file when none was sent

    @expose("/file/<field_key>/<stored>")
    @has_access
    def file(self, field_key: str, stored: str) -> Any:
        """Send an attachment, found by its stored name in a record this user may read."""
        access = self.field_access()
        if (not self.table_spec.has_field(field_key) or self.table_spec.field(field_key).type != "attachment"
                or not access.shows(field_key)):
            abort(404)
        spec = self.table_spec.field(field_key)
        if field_key in access.masked:
            abort(403)  # an encrypted file, and the user may not reveal it
        filters = self.datamodel.get_filters().add_filter(field_key, self.datamodel.FilterEqual, stored)
        count, items = self.datamodel.query(filters.get_joined_filters(self._base_filters), page_size=1, page=0)
        path = os.path.join(current_app.config["UPLOAD_FOLDER"], stored)
        if not count or "/" in stored or not os.path.isfile(path):
            abort(404)
        if not spec.encrypted:
            return send_file(path, as_attachment=True, download_name=stored_file_label(stored))
        with open(path, "rb") as handle:
            data = handle.read()
        # A plain file in an encrypted field (stored before the field was encrypted, or swapped) is
        # refused like a damaged one; `crm keys rotate` encrypts the files stored before.
        data = current_app.extensions["crm"].keyring.open_bytes(data, file_place(stored))
        record_reveal(self.table_spec, [field_key], [(items[0].id, {field_key: stored})])
        return send_file(io.BytesIO(data), as_attachment=True, download_name=stored_file_label(stored))


def capped_page(page: Any, page_size: int) -> tuple[int | None, int]:
    """Return (page, page size) within bounds: no page before the first, at most CRM_MAX_PAGE_SIZE rows
    (FAB reads -1 as "all rows", which at a million orders is a page no browser can show)."""
    largest = int(current_app.config["CRM_MAX_PAGE_SIZE"])
    if page is not None and page < 0:
        page = 0
    return page, page_size if 0 < page_size <= largest else largest


def fitting_name(filename: str, limit: int = 200) -> str:
    """Return `filename` shortened to `limit` UTF-8 bytes, its extension kept: file systems take 255
    bytes per name, and 120 Chinese characters are 360."""
    if len(filename.encode("utf-8")) <= limit:
        return filename
    stem, dot, extension = filename.rpartition(".")
    if not dot or len(extension) > 10:
        stem, extension = filename, ""
    suffix = f".{extension}" if extension else ""
    budget = limit - len(suffix.encode("utf-8"))
    return stem.encode("utf-8")[:budget].decode("utf-8", "ignore") + suffix


def save_upload(upload: Any, ring: Any = None) -> str:
    """Store an uploaded file under UPLOAD_FOLDER (encrypted with `ring` when given); return its stored
    name `<random>__<name>`."""
    folder = current_app.config["UPLOAD_FOLDER"]
    os.makedirs(folder, exist_ok=True)
    name = secure_filename(upload.filename) or "file"
    # secure_filename drops Chinese characters; keep the original name for people when it had any.
    original = os.path.basename(upload.filename.replace("\\", "/"))
    stored = f"{uuid.uuid4().hex}__{fitting_name(original if original.strip('. ') else name)}"
    if ring is None:
        upload.save(os.path.join(folder, stored))
    else:
        with open(os.path.join(folder, stored), "wb") as target:
            target.write(ring.seal_bytes(upload.read(), file_place(stored)))
    return stored


def child_title(child: TableSpec, link: FieldSpec) -> Any:
    """Return the heading of a child list on a parent's page, e.g. 订单 or 订单(开票客户)."""
    same_parent = [f for f in child.fields if f.type == "link" and f.to == link.to]
    if len(same_parent) > 1:
        return lazy_text(f"{child.label.zh}({link.label.zh})", f"{child.label.en} ({link.label.en})")
    return lazy_label(child.label)


def relation_display(spec: FieldSpec, view_endpoints: dict[str, str]) -> Any:
    """Return a formatter that shows a related record as a link to its detail page."""
    def show(value: Any) -> Any:
        if value is None:
            return field_type(spec).display(None, spec, current_lang())
        if spec.type == "link" and spec.to in view_endpoints:
            url = url_for(f"{view_endpoints[spec.to]}.show", pk=value.id)
            return Markup('<a href="{}">{}</a>').format(url, str(value))
        return escape(user_display_name(value))
    return show


def value_display(spec: FieldSpec, view_endpoint: str) -> Any:
    """Return a formatter for a plain field, following the request's language."""
    if spec.type == "attachment":
        def show_file(value: Any) -> Any:
            if not value:
                return field_type(spec).display(value, spec, current_lang())
            url = url_for(f"{view_endpoint}.file", field_key=spec.key, stored=value)
            return Markup('<a href="{}"><i class="fa fa-paperclip"></i> {}</a>').format(
                url, stored_file_label(value))
        return show_file
    return lambda value: field_type(spec).display(value, spec, current_lang())


def filter_columns(table: TableSpec) -> list[str]:
    """Return the fields offered in the filter panel: the table's `filters:`, else all but files."""
    if table.filters:
        return list(table.filters)
    return [f.key for f in table.fields if f.type != "attachment" and (f.searchable or not f.encrypted)]


def build_view_class(models: BuiltModels, table: TableSpec, view_endpoints: dict[str, str]) -> type[RecordView]:
    """Return the ModelView class of one table."""
    fields = table.fields
    labels = {f.key: lazy_label(f.label) for f in fields}
    formatters = {f.key: (relation_display(f, view_endpoints) if f.is_relation
                          else value_display(f, naming.view_class_name_for(table.key))) for f in fields}
    editable = [f.key for f in fields if not f.readonly and not f.is_computed]
    attrs: dict[str, Any] = {
        "table_spec": table,
        "models": models,
        "datamodel": RecordInterface(models.model(table.key)),
        "route_base": naming.view_route_for(table.key),
        "class_permission_name": naming.permission_view_name_for(table.key),
        "base_filters": row_rule_filter(models, table.key) + widget_filter(table.key),
        "list_title": lazy_text(f"{table.label.zh}列表", f"{table.label.en} list"),
        "show_title": lazy_text(f"{table.label.zh}详情", f"{table.label.en} details"),
        "add_title": lazy_text(f"新增{table.label.zh}", f"Add {table.label.en}"),
        "edit_title": lazy_text(f"编辑{table.label.zh}", f"Edit {table.label.en}"),
        "list_columns": list(table.list),
        "show_columns": [f.key for f in fields],
        "add_columns": editable,
        "edit_columns": editable,
        "search_columns": filter_columns(table),
        "order_columns": [k for k in table.list if table.field(k).type not in LIST_SKIP_SORT
                          and not table.field(k).encrypted],  # ciphertext order means nothing
        "label_columns": labels,
        "description_columns": {f.key: lazy_label(f.help) for f in fields if f.help},
        "formatters_columns": formatters,
        "add_form_extra_fields": build_form_fields(models, table, for_add=True),
        "search_form_extra_fields": build_filter_fields(table),
        "edit_form_extra_fields": build_form_fields(models, table, for_add=False),
        # Record selects list only the records the user's row rules reach.
        "add_form_query_rel_fields": pick_filters(models, table.key),
        "edit_form_query_rel_fields": pick_filters(models, table.key),
        "search_form_query_rel_fields": pick_filters(models, table.key),
    }
    if table.order_by:
        attrs["base_order"] = (table.order_by.lstrip("-"), "desc" if table.order_by.startswith("-") else "asc")
    return type(naming.view_class_name_for(table.key), (RecordView,), attrs)
