"""Link and user selects that load their options as the user types, through the permission gate.

A form's select holds only the record chosen; the browser asks `/t/<table>/pick/<field>?q=...` for a
page of the records the user may pick (their reachable rows, a login of the field's roles, a contact
of the chosen customer for `match: customer`), searched by title and search fields. The server takes
an id only when that same rule lets the user pick it.
"""
from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from flask import url_for
from markupsafe import Markup, escape
from wtforms import Field
from wtforms.validators import StopValidation
from wtforms.widgets import html_params

from app.fields.types import field_type
from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import FieldSpec, TableSpec
from app.security.gate import pick_condition, request_field_access, user_pick_condition

from .context import current_appbuilder
from .i18n import current_lang
from .records import record_id, user_display_name

PAGE = 20
NOT_A_CHOICE = ("选择无效", "Not a valid choice")


# Any: a generated model class, whose columns are made at start-up and so unknown to mypy.
def target_model(models: BuiltModels, spec: FieldSpec) -> Any:
    return current_appbuilder().sm.user_model if spec.type == "user" else models.model(spec.to or "")


def shown(spec: FieldSpec, record: Any) -> str:
    """Return how a picked record reads: a user's name (姓名 in Chinese), a record's title."""
    return user_display_name(record) if spec.type == "user" else str(record)


def pick_conditions(models: BuiltModels, table: TableSpec, spec: FieldSpec, matched: Any = None) -> list[Any]:
    """Return the SQL conditions on the target of a link or user field: what the user may pick there,
    and for `match:` the records whose matched link is `matched` (an id)."""
    model = target_model(models, spec)
    condition = (user_pick_condition(models, table.key, spec.key, model) if spec.type == "user"
                 else pick_condition(models, spec.to or "", current_user_or_none()))
    conditions = [condition] if condition is not None else []
    if spec.match and matched is not None:
        target = models.schema.table(spec.to or "")
        conditions.append(getattr(model, naming.column_name_for(target.field(spec.match))) == matched)
    return conditions


def current_user_or_none() -> Any:
    from app.security.gate import current_user
    return current_user()


def search_columns(models: BuiltModels, spec: FieldSpec) -> list[Any]:
    """Return the columns a typed word is looked for in: a login's names, a record's title and search fields."""
    model = target_model(models, spec)
    if spec.type == "user":
        full = sa.func.coalesce(model.last_name, "") + sa.func.coalesce(model.first_name, "")
        return [model.username, model.first_name, model.last_name, full]
    target = models.schema.table(spec.to or "")
    keys = dict.fromkeys([target.title, *(k for k in target.search if "." not in k)])
    return [getattr(model, key) for key in keys if target.has_field(key) and not target.field(key).encrypted
            and not target.field(key).is_relation and target.field(key).type != "multi_choice"]


def fill_values(models: BuiltModels, table: TableSpec, spec: FieldSpec, record: Any) -> dict[str, Any]:
    """Return field key → value of this table's default_from fields that copy from the picked record:
    only values the user may see on the linked table, in plain text."""
    values = {}
    access = request_field_access(models, spec.to or "") if spec.type == "link" else None
    for f in table.fields:
        link_key, _, source_key = (f.default_from or "").partition(".")
        if access is None or not access.shows(source_key) or source_key in access.masked:
            continue
        if link_key == spec.key and getattr(record, source_key, None) is not None:
            source = models.schema.table(spec.to or "").field(source_key)
            values[f.key] = field_type(source).to_json(getattr(record, source_key))
    return values


def pick_page(models: BuiltModels, table: TableSpec, spec: FieldSpec, words: str, page: int,
              matched: Any = None) -> dict[str, Any]:
    """Return one page of pickable records in Select2's shape: results [{id, text, fill}], more."""
    session = current_appbuilder().session
    model = target_model(models, spec)
    query = sa.select(model).where(*pick_conditions(models, table, spec, matched))
    columns = search_columns(models, spec)
    for word in words.split()[:5]:
        query = query.where(sa.or_(*[column.ilike(f"%{word}%") for column in columns]))
    order = model.username if spec.type == "user" else getattr(
        model, models.schema.table(spec.to or "").title)
    rows = session.execute(query.order_by(order, model.id).offset(page * PAGE).limit(PAGE + 1)).scalars().all()
    return {"results": [{"id": row.id, "text": shown(spec, row), "fill": fill_values(models, table, spec, row)}
                        for row in rows[:PAGE]],
            "pagination": {"more": len(rows) > PAGE}}


class PickWidget:
    """A select of the chosen record only; app/static/crm/forms.js loads the rest as the user types."""

    def __call__(self, field: PickField, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs["class_"] = " ".join(dict.fromkeys(["form-control", "crm-pick", *str(kwargs.pop("class_", "")).split(),
                                                   *str(kwargs.pop("class", "")).split()]))
        kwargs.update({"name": field.name, "data-url": field.url(), "data-placeholder": "—",
                       "data-allow-clear": "false" if field.spec.required else "true"})
        prefix = field.name[:len(field.name) - len(field.short_name)]  # an inline row's "order_line-0-"
        kwargs["data-prefix"] = prefix
        if field.spec.match:
            kwargs["data-match"] = prefix + field.spec.match
        html = [f"<select {html_params(**kwargs)}>", '<option value="">—</option>']
        if field.data is not None:
            html.append(f'<option value="{field.data.id}" selected>{escape(shown(field.spec, field.data))}</option>')
        html.append("</select>")
        return Markup("".join(html))


class PickField(Field):
    """A link or user field of a form: its data is the record, taken only when the user may pick it."""

    widget = PickWidget()

    def __init__(self, models: BuiltModels, table: TableSpec, spec: FieldSpec, label: Any = None,
                 description: Any = None, **kwargs: Any):
        super().__init__(label, description=description, **kwargs)
        self.models, self.table, self.spec = models, table, spec
        self.bad_choice = False

    def url(self) -> str:
        return url_for(f"{naming.view_class_name_for(self.table.key)}.pick", field_key=self.spec.key)

    def process_formdata(self, valuelist: list[Any]) -> None:
        self.bad_choice = False
        if not valuelist or valuelist[0] in ("", None, "__None"):
            self.data = None
            return
        pk = record_id(valuelist[0])
        kept = self.object_data
        if kept is not None and pk == getattr(kept, "id", None):
            self.data = kept  # the stored choice stays, even when it could no longer be picked
            return
        model = target_model(self.models, self.spec)
        found = None
        if pk is not None:
            found = current_appbuilder().session.execute(
                sa.select(model).where(model.id == pk, *pick_conditions(self.models, self.table, self.spec))
            ).scalar_one_or_none()
        self.data, self.bad_choice = found, found is None

    def preset(self, record: Any) -> None:
        """Take `record` whatever was sent: the parent a child is added from (its link is locked)."""
        self.data, self.bad_choice = record, False

    def pre_validate(self, form: Any) -> None:
        if self.bad_choice:
            raise StopValidation(NOT_A_CHOICE[0] if current_lang() == "zh" else NOT_A_CHOICE[1])

    def _value(self) -> str:
        return str(self.data.id) if self.data is not None else ""


def fill_map(table: TableSpec) -> str:
    """Return JSON of link key → the form fields a pick fills (for the browser's default_from)."""
    mapping: dict[str, list[str]] = {}
    for f in table.fields:
        if f.default_from:
            mapping.setdefault(f.default_from.partition(".")[0], []).append(f.key)
    return json.dumps(mapping)
