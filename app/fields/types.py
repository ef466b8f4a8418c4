"""How each field type is stored, edited, sent over the API and shown: one class per type, by name."""
from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from markupsafe import Markup, escape
from marshmallow import ValidationError
from marshmallow import fields as ma_fields
from wtforms import BooleanField, FileField, SelectField, SelectMultipleField, StringField, TextAreaField
from wtforms import widgets as wt_widgets
from wtforms.validators import StopValidation

try:
    from wtforms.fields.choices import SelectChoice
except ImportError:  # WTForms before 3.3 takes plain (value, label) tuples
    def SelectChoice(value: Any, label: Any) -> Any:  # noqa: N802
        return (value, label)

from app.schema.model import FieldSpec

from .values import VALUE_TYPES, DecimalType, is_empty, validate_value

LangFn = Callable[[], str]
EMPTY = Markup('<span class="text-muted">—</span>')


class JSONList(sa.types.TypeDecorator[list[str]]):
    """A list of option keys stored as JSON text (portable across SQLite, PostgreSQL, MariaDB)."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None or value == []:
            return None
        return json.dumps(list(value), ensure_ascii=False)

    def process_result_value(self, value: Any, dialect: Any) -> list[str]:
        if not value:
            return []
        try:
            loaded = json.loads(value)
        except ValueError:
            return [value]
        return [str(v) for v in loaded] if isinstance(loaded, list) else [str(loaded)]


class FieldType:
    """Storage, form, API and display of one field type; subclasses override what differs."""

    name = ""

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        limit = spec.max_length or VALUE_TYPES[spec.type].default_max_length or 255
        return sa.String(limit)

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        return StringField(label, description=description, validators=[SpecInput(spec, lang)],
                           widget=BS3TextFieldWidget())

    def to_json(self, value: Any) -> Any:
        """Return `value` as a JSON-serialisable value for the API."""
        return value

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        """Return the value as HTML for lists and detail pages."""
        if is_empty(value):
            return EMPTY
        return escape(str(value))


class TextFieldType(FieldType):
    name = "text"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return sa.Text()

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        from flask_appbuilder.fieldwidgets import BS3TextAreaFieldWidget
        return TextAreaField(label, description=description, validators=[SpecInput(spec, lang)],
                             widget=BS3TextAreaFieldWidget())


class EmailFieldType(FieldType):
    name = "email"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if is_empty(value):
            return EMPTY
        return Markup('<a href="mailto:{0}">{0}</a>').format(value)


class PhoneFieldType(FieldType):
    name = "phone"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        """A number a phone can call with one tap (tel: keeps the digits, a leading + and an extension)."""
        if is_empty(value):
            return EMPTY
        number, extension = str(value), ""
        found = re.fullmatch(r"(0\d{2,3}-?\d{7,8})-(\d{1,6})", number)  # 0792-5643496-801: extension 801
        if found:
            number, extension = found.group(1), "," + found.group(2)
        dial = "".join(c for c in number if c.isdigit() or c == "+") + extension
        return Markup('<a href="tel:{}" class="crm-tel"><i class="fa fa-phone"></i> {}</a>').format(dial, value)


class UrlFieldType(FieldType):
    name = "url"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if is_empty(value):
            return EMPTY
        return Markup('<a href="{0}" target="_blank" rel="noopener noreferrer">{0}</a>').format(value)


class IntegerFieldType(FieldType):
    name = "integer"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return sa.Integer()

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        return EMPTY if value is None else escape(f"{value:,}")


class DecimalFieldType(FieldType):
    name = "decimal"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        vtype = VALUE_TYPES[spec.type]
        assert isinstance(vtype, DecimalType)
        return sa.Numeric(18, vtype.scale(spec), asdecimal=True)

    def to_json(self, value: Any) -> Any:
        return None if value is None else str(value)

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if value is None:
            return EMPTY
        text = format(Decimal(value).normalize(), "f")
        return escape(text)


class MoneyFieldType(DecimalFieldType):
    name = "money"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if value is None:
            return EMPTY
        return Markup('<span class="crm-money">{}</span>').format(f"{Decimal(value):,.2f}")


class PercentFieldType(DecimalFieldType):
    name = "percent"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if value is None:
            return EMPTY
        return escape(format(Decimal(value).normalize(), "f") + "%")


class BooleanFieldType(FieldType):
    name = "boolean"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return sa.Boolean()

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        return BooleanField(label, description=description, validators=[SpecInput(spec, lang)])

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if value is None:
            return EMPTY
        yes, no = ("Yes", "No") if lang == "en" else ("是", "否")
        return Markup('<span class="crm-bool crm-bool-{}">{}</span>').format(
            "yes" if value else "no", ("✔ " + yes) if value else no)


class DateFieldType(FieldType):
    name = "date"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return sa.Date()

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        return StringField(label, description=description, validators=[SpecInput(spec, lang)],
                           widget=DateInputWidget())

    def to_json(self, value: Any) -> Any:
        return None if value is None else value.isoformat()

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        return EMPTY if value is None else escape(value.isoformat())


class DateTimeFieldType(DateFieldType):
    name = "datetime"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return sa.DateTime()

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        return StringField(label, description=description, validators=[SpecInput(spec, lang)],
                           widget=DateTimeInputWidget())

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        return EMPTY if value is None else escape(value.strftime("%Y-%m-%d %H:%M"))


class DateInputWidget:
    """A text box with the calendar beside it that keeps what is typed.

    Flask-AppBuilder's date picker re-parses the text when the box loses focus and turns what it does
    not understand into another day (20261215 became today, 2026-2-30 became 2 March): here it never
    rewrites the text (force-parse off); app/static/crm/forms.js writes the forms people type
    (2026/12/15, 2026年12月15日) as 2026-12-15, and the server checks whatever is left.
    """

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("name", field.name)
        value = field.raw_data[0] if field.raw_data else (field.data or "")
        if isinstance(value, (datetime.date, datetime.datetime)):
            value = value.isoformat()
        return Markup(
            '<div class="input-group date appbuilder_date crm-date" data-provide="datepicker"'
            ' data-date-force-parse="false"'
            ' data-date-format="yyyy-mm-dd" data-date-autoclose="true">'
            '<span class="input-group-addon"><i class="fa fa-calendar cursor-hand"></i></span>'
            '<input class="form-control" autocomplete="off" placeholder="2026-12-15" {}></div>').format(
            wt_widgets.html_params(type="text", value=value, **kwargs))


class DateTimeInputWidget:
    """The browser's own date-and-time box (typed or picked); the server takes 2026-12-15 14:30 too."""

    def __call__(self, field: Any, **kwargs: Any) -> Markup:
        kwargs.setdefault("id", field.id)
        kwargs.setdefault("name", field.name)
        value = field.raw_data[0] if field.raw_data else field.data
        if isinstance(value, datetime.datetime):
            value = value.strftime("%Y-%m-%dT%H:%M")
        return Markup('<input class="form-control crm-datetime" {}>').format(
            wt_widgets.html_params(type="datetime-local", step="60", value=value or "", **kwargs))


def option_badge(key: str, spec: FieldSpec, lang: str) -> Markup:
    """Return a coloured badge for an option key; a key no longer in the options shows plainly, marked."""
    option = spec.choices.option(key) if spec.choices else None
    if option is None:
        retired = "retired" if lang == "en" else "已停用"
        return Markup('<span class="label label-default crm-badge" title="{1}">{0} ({1})</span>').format(key, retired)
    color = option.color or "#8c8c8c"
    return Markup('<span class="label crm-badge" style="background-color:{}">{}</span>').format(
        color, option.label.text(lang))


class ChoiceFieldType(FieldType):
    name = "choice"

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        from flask_appbuilder.fieldwidgets import Select2Widget
        return ChoiceSelectField(spec, lang, label, description=description,
                                 validators=[SpecInput(spec, lang)], widget=Select2Widget())

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        return EMPTY if is_empty(value) else option_badge(value, spec, lang)


class MultiChoiceFieldType(FieldType):
    name = "multi_choice"

    def column_type(self, spec: FieldSpec) -> sa.types.TypeEngine[Any]:
        return JSONList()

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        return MultiChoiceField(spec, lang, label, description=description, validators=[SpecInput(spec, lang)],
                                widget=wt_widgets.ListWidget(html_tag="ul", prefix_label=False),
                                option_widget=wt_widgets.CheckboxInput())

    def to_json(self, value: Any) -> Any:
        return list(value or [])

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if is_empty(value):
            return EMPTY
        return Markup(" ").join(option_badge(v, spec, lang) for v in value)


class RatingFieldType(IntegerFieldType):
    name = "rating"

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        choices = [SelectChoice("", "—")] + [SelectChoice(str(i), "★" * i) for i in range(1, 6)]
        return SelectField(label, description=description, choices=choices, validate_choice=False,
                           validators=[SpecInput(spec, lang)])

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if value is None:
            return EMPTY
        stars = int(value)
        return Markup('<span class="crm-rating" title="{}/5">{}<span class="text-muted">{}</span></span>').format(
            stars, "★" * stars, "☆" * (5 - stars))


class AttachmentFieldType(FieldType):
    name = "attachment"

    def form_field(self, spec: FieldSpec, label: Any, description: Any, lang: LangFn) -> Any:
        return FileField(label, description=description)

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        if is_empty(value):
            return EMPTY
        return escape(stored_file_label(value))


class RelationFieldType(IntegerFieldType):
    """link and user: the column is an integer foreign key; forms and lists use the relationship."""

    name = "link"

    def display(self, value: Any, spec: FieldSpec, lang: str) -> Markup:
        return EMPTY if value is None else escape(str(value))


class UserFieldType(RelationFieldType):
    name = "user"


def stored_file_label(stored: str) -> str:
    """Return the original file name of a stored attachment (`<random>__<name>`)."""
    return stored.split("__", 1)[-1]


FIELD_TYPES: dict[str, FieldType] = {t.name: t for t in (
    FieldType(), TextFieldType(), EmailFieldType(), PhoneFieldType(), UrlFieldType(), IntegerFieldType(),
    DecimalFieldType(),
    MoneyFieldType(), PercentFieldType(), BooleanFieldType(), DateFieldType(), DateTimeFieldType(),
    ChoiceFieldType(), MultiChoiceFieldType(), RatingFieldType(), AttachmentFieldType(),
    RelationFieldType(), UserFieldType(),
)}
for _plain in ("string", "cas_number", "uscc"):
    FIELD_TYPES[_plain] = FIELD_TYPES[""]
del FIELD_TYPES[""]
assert set(FIELD_TYPES) == set(VALUE_TYPES), set(VALUE_TYPES) ^ set(FIELD_TYPES)


def field_type(spec: FieldSpec) -> FieldType:
    """Return the FieldType that handles `spec`."""
    return FIELD_TYPES[spec.type]


# -- form pieces -------------------------------------------------------------------------------

class SpecInput:
    """WTForms validator: parse and check the input with the field's rules; store the parsed value."""

    def __init__(self, spec: FieldSpec, lang: LangFn):
        self.spec = spec
        self.lang = lang
        self.field_flags = {"required": True} if spec.required and spec.type != "boolean" else {}

    def __call__(self, form: Any, field: Any) -> None:
        value, problems = validate_value(field.data, self.spec)
        if problems and self.keeps_retired_option(field):
            return
        if problems:
            field.errors[:] = []
            raise StopValidation("; ".join(p.text(self.lang()) for p in problems))
        field.data = value

    def keeps_retired_option(self, field: Any) -> bool:
        return keeps_retired_option(self.spec, getattr(field, "object_data", None), field.data)


def keeps_retired_option(spec: FieldSpec, stored: Any, sent: Any) -> bool:
    """True when an edit leaves a choice as stored, though its option was since removed from the list:
    the very key stored (choice), or only current options and keys already stored (multi_choice)."""
    if spec.choices is None:
        return False
    if spec.type == "choice":
        return isinstance(sent, str) and isinstance(stored, str) and sent == stored
    if spec.type != "multi_choice" or not isinstance(sent, list) or not all(isinstance(k, str) for k in sent):
        return False
    stored_keys = {k for k in stored if isinstance(k, str)} if isinstance(stored, list) else set()
    return all(k in spec.choices.keys or k in stored_keys for k in sent)


def _option_choices(spec: FieldSpec, lang: LangFn, current: list[str]) -> list[Any]:
    assert spec.choices is not None
    choices = [SelectChoice(o.key, o.label.text(lang())) for o in spec.choices.options]
    retired = "retired" if lang() == "en" else "已停用"
    choices += [SelectChoice(k, f"{k} ({retired})") for k in current if k and k not in spec.choices.keys]
    return choices


class ChoiceSelectField(SelectField):
    """A dropdown of a choice list; an old value no longer in the list stays selectable as 'retired'."""

    def __init__(self, spec: FieldSpec, lang: LangFn, *args: Any, **kwargs: Any):
        super().__init__(*args, validate_choice=False, coerce=_coerce_key, **kwargs)
        self.spec, self.lang = spec, lang

    def iter_choices(self) -> Any:
        current = [self.data] if isinstance(self.data, str) else []
        self.choices = [SelectChoice("", "—")] + _option_choices(self.spec, self.lang, current)
        return super().iter_choices()


class MultiChoiceField(SelectMultipleField):
    """A set of checkboxes for a multi-choice list."""

    def __init__(self, spec: FieldSpec, lang: LangFn, *args: Any, **kwargs: Any):
        super().__init__(*args, validate_choice=False, coerce=str, **kwargs)
        self.spec, self.lang = spec, lang

    def iter_choices(self) -> Any:
        current = list(self.data or [])
        self.choices = _option_choices(self.spec, self.lang, current)
        return super().iter_choices()

    def process_data(self, value: Any) -> None:
        self.data = list(value or [])


def _coerce_key(value: Any) -> Any:
    return None if value in (None, "", "None") else str(value)


# -- API pieces --------------------------------------------------------------------------------

class SpecApiField(ma_fields.Field):  # type: ignore[type-arg]  # marshmallow 3 has no type parameter
    """A marshmallow field that validates with the field's rules and serialises per type."""

    def __init__(self, spec: FieldSpec, lang: LangFn, **kwargs: Any):
        super().__init__(allow_none=not spec.required, required=False, **kwargs)
        self.spec, self.lang = spec, lang
        self.metadata = {**self.metadata, **_openapi_metadata(spec)}

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        return field_type(self.spec).to_json(value)

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        parsed, problems = validate_value(value, self.spec)
        if problems and self.keeps_stored_option(value):
            return value
        if problems:
            raise ValidationError([p.text(self.lang()) for p in problems])
        return parsed

    def keeps_stored_option(self, value: Any) -> bool:
        """True when a PUT sends back the record's own choice whose option was since removed."""
        instance = getattr(self.parent, "instance", None)
        if instance is None:
            return False
        return keeps_retired_option(self.spec, getattr(instance, self.spec.key, None), value)

    def deserialize(self, value: Any, attr: Any = None, data: Any = None, **kwargs: Any) -> Any:
        # Run our own rules for null too, so 'required' answers with the field's message.
        if value is None:
            return self._deserialize(value, attr, data, **kwargs)
        return super().deserialize(value, attr, data, **kwargs)


def _openapi_metadata(spec: FieldSpec) -> dict[str, Any]:
    kinds = {"integer": "integer", "rating": "integer", "boolean": "boolean", "multi_choice": "array"}
    meta: dict[str, Any] = {"type": kinds.get(spec.type, "string"), "description": spec.label.text("en")}
    if spec.type in ("date", "datetime"):
        meta["format"] = "date" if spec.type == "date" else "date-time"
    if spec.choices:
        meta["enum" if spec.type == "choice" else "x-options"] = list(spec.choices.keys)
    return meta


def default_value(spec: FieldSpec) -> Any:
    """Return the value a new record starts with (today/now resolved at call time)."""
    if spec.default == "today" and spec.type == "date":
        return datetime.date.today()
    if spec.default in ("today", "now") and spec.type == "datetime":
        return datetime.datetime.now().replace(microsecond=0)
    if isinstance(spec.default, list):
        return list(spec.default)
    return spec.default

