"""The one permission gate: what the current user may do with a table, and which of its rows.

Screens, APIs, the home page and every later surface (exports, reports, audit history) ask here;
none re-implements the rules. A user's roles are combined: a verb is allowed when any role allows
it, and a row is reachable when any role that reads the table reaches it.
"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context
from flask_appbuilder.models.filters import BaseFilter

from crm.models import naming
from crm.models.build import BuiltModels
from crm.spec.model import RowRule, SchemaSpec

ADMIN_ROLE = "admin"


def current_user() -> Any | None:
    """Return the logged-in user of this request, or None."""
    if not has_request_context():
        return None
    user = getattr(g, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def role_keys(user: Any) -> list[str]:
    return [role.name for role in getattr(user, "roles", None) or ()]


def row_condition(models: BuiltModels, table_key: str, user: Any) -> Any | None:
    """Return the SQL condition selecting the rows of `table_key` that `user` may reach; None for all.

    A user without any role that reads the table reaches no row.
    """
    schema = models.schema
    roles = role_keys(user)
    if ADMIN_ROLE in roles:
        return None
    conditions = []
    for role in roles:
        grant = schema.grants_of(role).get(table_key)
        if grant is None or "read" not in grant.can:
            continue
        rule = grant.rows or RowRule("all")
        if rule.kind == "all":
            return None
        conditions.append(rule_condition(models, table_key, rule, user))
    return sa.or_(*conditions) if conditions else sa.false()


def rule_condition(models: BuiltModels, table_key: str, rule: RowRule, user: Any) -> Any:
    """Return the condition of one row rule for `user` on `table_key`."""
    model = models.model(table_key)
    if rule.kind == "values":
        return getattr(model, rule.field or "").in_(rule.values)
    path = (rule.field or own_field(models.schema, table_key)).split(".")
    return own_condition(models, table_key, path, user.id)


def own_field(schema: SchemaSpec, table_key: str) -> str:
    """Return the table's only user field (the schema check makes sure there is exactly one)."""
    return next(f.key for f in schema.table(table_key).fields if f.type == "user")


def own_condition(models: BuiltModels, table_key: str, path: list[str], user_id: int) -> Any:
    """Return `<link>... .<user field> = user_id`, following links through subqueries."""
    table = models.metadata.tables[naming.table_name_for(table_key)]
    spec = models.schema.table(table_key).field(path[0])
    column = table.c[naming.column_name_for(spec)]
    if len(path) == 1:
        return column == user_id
    target = models.metadata.tables[naming.table_name_for(spec.to or "")]
    inner = own_condition(models, spec.to or "", path[1:], user_id)
    return column.in_(sa.select(target.c.id).where(inner))


class RowRuleFilter(BaseFilter):
    """A base filter every generated view and API carries: the rows the current user may reach.

    Flask-AppBuilder applies base filters to lists, detail pages, edits, deletes, related lists and
    API calls alike, so a row outside the user's reach is missing everywhere (and answers 404).
    """

    name = "row rules"
    models: BuiltModels
    table_key: str

    def apply(self, query: Any, value: Any) -> Any:
        user = current_user()
        if user is None:
            return query.filter(sa.false())
        condition = row_condition(self.models, self.table_key, user)
        return query if condition is None else query.filter(condition)


def row_rule_filter(models: BuiltModels, table_key: str) -> list[Any]:
    """Return the base_filters entry that applies the row rules of `table_key`."""
    cls = type("RowRules", (RowRuleFilter,), {"models": models, "table_key": table_key})
    return [["id", cls, None]]


def can_reach(models: BuiltModels, table_key: str, row_id: int, session: Any) -> bool:
    """Return True when the current user's row rules reach the record `row_id` of `table_key`."""
    condition = row_condition(models, table_key, current_user())
    if condition is None:
        return True
    model = models.model(table_key)
    return session.execute(sa.select(model.id).where(model.id == row_id, condition)).first() is not None


def owner_fields(models: BuiltModels, table_key: str, user: Any) -> list[str]:
    """Return the user fields that make a record the user's own under their row rules ({own: owner}).

    A record such a user creates with that field empty becomes theirs, so that it stays in reach.
    """
    if user is None or ADMIN_ROLE in role_keys(user) or row_condition(models, table_key, user) is None:
        return []
    fields = []
    for role in role_keys(user):
        grant = models.schema.grants_of(role).get(table_key)
        rule = grant.rows if grant else None
        if rule is not None and rule.kind == "own":
            key = rule.field or own_field(models.schema, table_key)
            if "." not in key and key not in fields:
                fields.append(key)
    return fields


def assign_owner(models: BuiltModels, table_key: str, item: Any) -> None:
    """Make a new record the creator's own where their row rules need it and the field is empty."""
    user = current_user()
    for key in owner_fields(models, table_key, user):
        if getattr(item, key, None) is None:
            setattr(item, key, user)


class OutOfReach(Exception):
    """A write would leave the record outside the rows the user may reach."""

    def text(self, lang: str) -> str:
        return ("保存后这条记录将不在您可见的范围内（例如负责人须为您本人），未保存" if lang == "zh" else
                "not saved: after this change the record would be outside the records you may see "
                "(for example, you must stay its owner)")


def check_in_reach(models: BuiltModels, table_key: str, item: Any, session: Any) -> None:
    """Raise OutOfReach (after rolling the session back) when the written `item` would leave the
    current user's rows; a record a user may not see must not be made by them either."""
    if row_condition(models, table_key, current_user()) is None:
        return
    session.add(item)
    session.flush()
    if not can_reach(models, table_key, item.id, session):
        session.rollback()
        raise OutOfReach()
