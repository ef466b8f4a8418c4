"""Field rules on Flask-AppBuilder's views and APIs: each request is answered from a variant of the
view built for the user's field access.

Flask-AppBuilder builds column lists, forms, filters and REST schemas once per view. Hiding a field
only in a template would still let a save write NULL into it and a crafted request read or write
it, so for every distinct field access (app.security.gate.field_access) the view is built again
with the hidden fields left out everywhere and the read-only ones left out of what is written.
The registered view reads those attributes from the variant of the current request.
"""
from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from flask import g, has_request_context

from app.models.build import BuiltModels
from app.schema.model import TableSpec
from app.security.gate import FULL_ACCESS, FieldAccess, request_field_access

# Attributes Flask-AppBuilder reads while serving a request, built from the column lists.
VIEW_ATTRIBUTES = frozenset({
    "list_columns", "show_columns", "add_columns", "edit_columns", "search_columns", "order_columns",
    "_filters", "add_form", "edit_form", "search_form", "formatters_columns", "base_order"})
API_ATTRIBUTES = frozenset({
    "list_columns", "show_columns", "add_columns", "edit_columns", "search_columns", "order_columns",
    "_filters", "list_select_columns", "show_select_columns", "model2schemaconverter", "base_order",
    "list_model_schema", "show_model_schema", "add_model_schema", "edit_model_schema"})

_lock = threading.Lock()


def fresh_filters(filters: Any) -> Any:
    """Return a copy of a view's Filters whose active filters are its own (FAB sets them per request)."""
    mine = copy.copy(filters)
    mine.filters, mine.values = list(filters.filters), list(filters.values)
    return mine


def fresh_schema(schema: Any) -> Any:
    """Return a new instance of a marshmallow schema (loading keeps the record being written on it)."""
    return type(schema)()


class FieldRulesMixin:
    """Answers the attributes in `field_rule_attributes` from the variant for the request's user."""

    table_spec: TableSpec
    models: BuiltModels
    base_order: Any  # the ModelView's (only declared here: the mixin comes first and must not shadow it)
    field_rule_attributes: frozenset[str] = frozenset()
    # Objects Flask-AppBuilder changes while it serves a request (the active filters, the record a
    # schema loads into). One view serves every thread, so each request works on its own copy.
    per_request_copies: dict[str, Callable[[Any], Any]] = {}
    is_variant = False

    def __getattribute__(self, name: str) -> Any:
        cls = type(self)
        if cls.is_variant or not has_request_context() or (
                name not in cls.field_rule_attributes and name not in cls.per_request_copies):
            return object.__getattribute__(self, name)
        variant = object.__getattribute__(self, "variant_for_request")() if name in cls.field_rule_attributes else None
        value = getattr(variant, name) if variant is not None else object.__getattribute__(self, name)
        make_copy = cls.per_request_copies.get(name)
        if make_copy is None or value is None:
            return value
        copies = g.setdefault("crm_view_copies", {})
        key = (id(self), name)
        if key not in copies:
            copies[key] = make_copy(value)
        return copies[key]

    def field_access(self) -> FieldAccess:
        """Return the current user's access to this view's table."""
        return request_field_access(self.models, self.table_spec.key)

    def variant_for_request(self) -> Any | None:
        """Return the variant for the current user's field access; None when nothing is withheld."""
        access = self.field_access()
        if access == FULL_ACCESS:
            return None
        variants = self.__dict__.setdefault("_field_rule_variants", {})
        if access not in variants:
            with _lock:
                if access not in variants:
                    variants[access] = self.build_variant(access)
        return variants[access]

    def build_variant(self, access: FieldAccess) -> Any:
        """Return a new, unregistered instance of this view built with `access`'s column lists."""
        cls = type(self)
        attrs: dict[str, Any] = {"is_variant": True}
        for name, keep in (("list_columns", access.shown), ("show_columns", access.shown),
                           ("search_columns", access.searched), ("order_columns", access.searched),
                           ("add_columns", access.writable), ("edit_columns", access.writable)):
            attrs[name] = keep(getattr(cls, name) or [])
        # Flask-AppBuilder reads an empty list as "all columns" (back-references to child tables
        # included): exclude them all instead.
        all_columns = [f.key for f in self.table_spec.fields] + list(self.datamodel.get_user_columns_list())
        for name in ("search", "add", "edit", "show"):
            if not attrs[f"{name}_columns"]:
                attrs[f"{name}_exclude_columns"] = all_columns
        if not attrs["list_columns"]:
            attrs["list_columns"] = [self.table_spec.title]
        if not attrs["order_columns"]:
            attrs["order_columns"] = [self.table_spec.title]
        if cls.base_order and not access.searches(cls.base_order[0]):
            attrs["base_order"] = None  # the default order would reveal the hidden field's order
        attrs.update(self.masking_attributes(access))
        variant = type(cls.__name__, (cls,), attrs)()
        self.finish_variant(variant)
        return variant

    def masking_attributes(self, access: FieldAccess) -> dict[str, Any]:
        """Return the class attributes that show `access.masked` fields masked."""
        return {}

    def finish_variant(self, variant: Any) -> None:
        """Complete what Flask-AppBuilder does for a view only when it is registered."""
