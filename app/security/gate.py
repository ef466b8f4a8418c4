"""The one permission gate: what the current user may do with a table, and which of its rows.

Screens, APIs, the home page and every later surface (exports, reports, audit history) ask here;
none re-implements the rules. A user's roles are combined: a verb is allowed when any role allows
it, and a row is reachable when any role that reads the table reaches it.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import g, has_request_context, request
from flask_appbuilder.models.filters import BaseFilter

from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import RowRule, SchemaSpec

ADMIN_ROLE = "admin"


def current_user() -> Any | None:
    """Return the logged-in user of this request, or None."""
    if not has_request_context():
        return None
    user = getattr(g, "user", None)
    return user if user is not None and getattr(user, "is_authenticated", False) else None


def role_keys(user: Any) -> list[str]:
    """Return the names of the user's roles, those given through Flask-AppBuilder groups included."""
    names = [role.name for role in getattr(user, "roles", None) or ()]
    for group in getattr(user, "groups", None) or ():
        names += [role.name for role in group.roles or () if role.name not in names]
    return names


def writer_roles() -> frozenset[str] | None:
    """Return the role names of the person writing now (the request's or job's user); None when no
    person writes (the command line, the demo builder): the record rules check people's writes."""
    user = current_user()
    return frozenset(role_keys(user)) if user is not None else None


def request_verb(table_key: str | None = None) -> str:
    """Return the verb of the endpoint being served (read for lists and pages, update for edits, ...).

    With `table_key`, only an endpoint of that table's own screen or API counts: the child records
    listed on a customer's edit page are read, not updated.
    """
    from .permissions import METHOD_VERBS
    endpoint = request.endpoint or "" if has_request_context() else ""
    view, _, method = endpoint.rpartition(".")
    if table_key is not None and view not in (naming.view_class_name_for(table_key),
                                              naming.api_class_name_for(table_key)):
        return "read"
    return METHOD_VERBS.get(method, "read")


def may(models: BuiltModels, table_key: str, user: Any, verb: str) -> bool:
    """Return True when a role of `user` grants `verb` (export, import, create ...) with read on the table."""
    roles = role_keys(user)
    return ADMIN_ROLE in roles or any(verb in g.can and "read" in g.can for g in
                                      (models.schema.grants_of(r).get(table_key) for r in roles) if g)


def row_condition(models: BuiltModels, table_key: str, user: Any, verb: str = "read") -> Any | None:
    """Return the SQL condition selecting the rows of `table_key` that `user` may `verb`; None for all.

    Only the roles that grant `verb` on the table count, so that one role's rows and another's verb
    never combine. A user without such a role reaches no row.
    """
    schema = models.schema
    roles = role_keys(user)
    if ADMIN_ROLE in roles:
        return None
    conditions = []
    for role in roles:
        grant = schema.grants_of(role).get(table_key)
        if grant is None or verb not in grant.can or "read" not in grant.can:
            continue
        rule = grant.rows or RowRule("all")
        if rule.kind == "all":
            return None
        conditions.append(rule_condition(models, table_key, rule, user))
    return sa.or_(*conditions) if conditions else sa.false()


def rule_condition(models: BuiltModels, table_key: str, rule: RowRule, user: Any) -> Any:
    """Return the condition of one row rule for `user` on `table_key`."""
    model = models.model(table_key)
    if rule.kind == "values" and rule.user_values:
        return getattr(model, rule.field or "").in_(user_values(models, rule.user_values, user.id))
    if rule.kind == "values":
        return getattr(model, rule.field or "").in_(rule.values)
    path = (rule.field or own_field(models.schema, table_key)).split(".")
    return own_condition(models, table_key, path, user.id)


def user_values(models: BuiltModels, source: str, user_id: int) -> Any:
    """Return the subquery of the values `<table>.<field>` holds in the rows of that table whose user
    field is `user_id` (the schema check makes sure there is exactly one user field)."""
    table_key, _, field_key = source.partition(".")
    spec = models.schema.table(table_key)
    table = models.metadata.tables[naming.table_name_for(table_key)]
    owner = table.c[naming.column_name_for(spec.field(own_field(models.schema, table_key)))]
    column = table.c[naming.column_name_for(spec.field(field_key))]
    return sa.select(column).where(owner == user_id, column.is_not(None))


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


@dataclass(frozen=True)
class FieldAccess:
    """The fields of one table a user may not see (hidden), may see but not write (readonly), and
    encrypted fields they see masked (not revealed: neither written nor searched)."""

    hidden: frozenset[str] = frozenset()
    readonly: frozenset[str] = frozenset()
    masked: frozenset[str] = frozenset()

    def shows(self, key: str) -> bool:
        return key.split(".", 1)[0] not in self.hidden

    def writes(self, key: str) -> bool:
        return self.shows(key) and key not in self.readonly and key not in self.masked

    def searches(self, key: str) -> bool:
        """Return True when the user may filter, search or sort by `key` (seen, and not masked)."""
        return self.shows(key) and key.split(".", 1)[0] not in self.masked

    def searched(self, keys: Iterable[str]) -> list[str]:
        """Return `keys` without those the user may not filter, search or sort by."""
        return [k for k in keys if self.searches(k)]

    def shown(self, keys: Iterable[str]) -> list[str]:
        """Return `keys` without the hidden ones (a dotted API column counts as its first field)."""
        return [k for k in keys if self.shows(k)]

    def writable(self, keys: Iterable[str]) -> list[str]:
        """Return `keys` without the hidden and read-only ones."""
        return [k for k in keys if self.writes(k)]


FULL_ACCESS = FieldAccess()


def field_access(schema: SchemaSpec, table_key: str, user: Any) -> FieldAccess:
    """Return what of `table_key`'s fields `user` may see and write.

    A field is shown when any role that reads the table shows it, and writable when any role that
    creates or updates the table may write it — as long as those roles reach the same rows. When
    they reach different rows (own customers in full, all customers without credit limits), one
    role's fields must not show on the other's rows, so only what every such role allows counts.
    Without a user (command line, start-up) nothing is withheld: the rules are about people in requests.
    """
    if user is None or ADMIN_ROLE in role_keys(user):
        return FULL_ACCESS
    table = schema.table(table_key)
    keys = [f.key for f in table.fields]
    grants = [g for g in (schema.grants_of(r).get(table_key) for r in role_keys(user)) if g and "read" in g.can]
    same_rows = len({g.rows or RowRule("all") for g in grants}) <= 1
    combine = set.union if same_rows else set.intersection
    writers = [g for g in grants if "create" in g.can or "update" in g.can]
    shown = combine(*[g.shown_fields(keys) for g in grants]) if grants else set()
    writable = combine(*[g.shown_fields(keys) - set(g.readonly) for g in writers]) if writers else set()
    revealed = combine(*[g.shown_fields(keys) if "reveal" in g.can else set() for g in grants]) if grants else set()
    masked = {f.key for f in table.fields if f.encrypted and f.key in shown and f.key not in revealed}
    return FieldAccess(hidden=frozenset(set(keys) - shown), readonly=frozenset(shown - writable),
                       masked=frozenset(masked))


def request_field_access(models: BuiltModels, table_key: str) -> FieldAccess:
    """Return the field access of the current request's user on `table_key` (all fields outside requests)."""
    user = current_user()
    if user is None:
        return FULL_ACCESS
    cache: dict[tuple[int, str], FieldAccess] = g.setdefault("crm_field_access", {})  # asked for many times per page
    if (user.id, table_key) not in cache:
        cache[user.id, table_key] = field_access(models.schema, table_key, user)
    return cache[user.id, table_key]


class RowRuleFilter(BaseFilter):
    """A base filter every generated view and API carries: the rows the current user may reach.

    Flask-AppBuilder applies base filters to lists, detail pages, edits, deletes, related lists and
    API calls alike, so a row outside the user's reach is missing everywhere (and answers 404).
    """

    name = "row rules"
    models: BuiltModels
    table_key: str

    picking = False  # True in the select that picks a linked record

    def apply(self, query: Any, value: Any) -> Any:
        user = current_user()
        if user is None:
            return query.filter(sa.false())
        condition = (pick_condition(self.models, self.table_key, user) if self.picking
                     else row_condition(self.models, self.table_key, user, request_verb(self.table_key)))
        return query if condition is None else query.filter(condition)


def pick_condition(models: BuiltModels, table_key: str, user: Any) -> Any | None:
    """Return the records a user may pick for a link to `table_key`.

    A table the user's roles grant nothing on (a catalogue such as product for sales) offers all its
    records, by title only; a table they work with offers the rows they read.
    """
    roles = role_keys(user)
    if ADMIN_ROLE not in roles and not any(table_key in models.schema.grants_of(r) for r in roles):
        return None
    return row_condition(models, table_key, user)


def picks_only_self(models: BuiltModels, table_key: str, field_key: str, user: Any) -> bool:
    """Return True when `user` may only pick themselves in the user field `field_key` of `table_key`.

    That is when every role of theirs that reads the table reaches its rows through this very field
    ({own: owner}): a record given to anyone else would leave their reach, and the list of every
    login would tell them who else works here. Everyone else may pick any user.
    """
    if user is None:
        return False
    rules = []
    for role in role_keys(user):
        if role == ADMIN_ROLE:
            return False
        grant = models.schema.grants_of(role).get(table_key)
        if grant is not None and "read" in grant.can:
            rules.append(grant.rows or RowRule("all"))
    return bool(rules) and all(r.kind == "own" and (r.field or own_field(models.schema, table_key)) == field_key
                               for r in rules)


def user_pick_condition(models: BuiltModels, table_key: str, field_key: str, user_model: type) -> Any | None:
    """Return the logins the current user may put into the user field `field_key` of `table_key`: only
    themselves (see picks_only_self), and only active users of the field's `roles:` when it has them;
    None for every login."""
    user = current_user()
    conditions = []
    if user is None:
        return sa.false()
    if picks_only_self(models, table_key, field_key, user):
        conditions.append(user_model.id == user.id)  # type: ignore[attr-defined]
    roles = models.schema.table(table_key).field(field_key).roles
    if roles:
        role_model = user_model.roles.property.mapper.class_  # type: ignore[attr-defined]
        conditions += [user_model.active.is_(True),  # type: ignore[attr-defined]
                       user_model.roles.any(role_model.name.in_(roles))]  # type: ignore[attr-defined]
    return sa.and_(*conditions) if conditions else None


def can_pick_user(models: BuiltModels, table_key: str, field_key: str, user_id: int) -> bool:
    """Return True when the current user may put the login `user_id` into `table_key`.`field_key`."""
    from flask import current_app
    user_model = current_app.extensions["appbuilder"].sm.user_model
    condition = user_pick_condition(models, table_key, field_key, user_model)
    if condition is None:
        return True
    return current_app.extensions["appbuilder"].session.execute(
        sa.select(user_model.id).where(user_model.id == user_id, condition)).first() is not None


class UserPickFilter(BaseFilter):
    """The filter of a user select: the logins the current user may pick (see picks_only_self)."""

    name = "user pick rules"
    models: BuiltModels
    table_key: str
    field_key: str

    def apply(self, query: Any, value: Any) -> Any:
        condition = user_pick_condition(self.models, self.table_key, self.field_key, self.datamodel.obj)
        return query if condition is None else query.filter(condition)


def pick_filters(models: BuiltModels, table_key: str) -> dict[str, list[Any]]:
    """Return, per link and user field of `table_key`, the filter that limits its choices to what the
    current user may pick: the same for screens' selects, the filter panel and the API's `_info`."""
    filters: dict[str, list[Any]] = {}
    for spec in models.schema.table(table_key).fields:
        if spec.type == "link":
            filters[spec.key] = row_rule_filter(models, spec.to or "", picking=True)
        elif spec.type == "user":
            cls = type("UserPicks", (UserPickFilter,), {"models": models, "table_key": table_key,
                                                        "field_key": spec.key})
            filters[spec.key] = [["id", cls, None]]
    return filters


def row_rule_filter(models: BuiltModels, table_key: str, picking: bool = False) -> list[Any]:
    """Return the base_filters entry that applies the row rules of `table_key` (or its picking rule)."""
    cls = type("RowRules", (RowRuleFilter,), {"models": models, "table_key": table_key, "picking": picking})
    return [["id", cls, None]]


def can_reach(models: BuiltModels, table_key: str, row_id: int, session: Any, verb: str = "read",
              picking: bool = False) -> bool:
    """Return True when the current user may `verb` (or pick, for a link) the record `row_id`."""
    user = current_user()
    condition = pick_condition(models, table_key, user) if picking else row_condition(models, table_key, user, verb)
    if condition is None:
        return True
    model: Any = models.model(table_key)
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


def check_in_reach(models: BuiltModels, table_key: str, item: Any, session: Any, verb: str) -> None:
    """Raise OutOfReach (after rolling the session back) when the written `item` would leave the rows
    the user may `verb` (create or update), or links to a record the user may not pick."""
    user = current_user()
    with session.no_autoflush:  # the links are checked before the record itself is written
        for spec in models.schema.table(table_key).fields:
            target = getattr(item, spec.key, None) if spec.type == "link" else None
            changed = verb == "create" or sa.inspect(item).attrs[spec.key].history.has_changes()
            if target is not None and changed and not can_reach(models, spec.to or "", target.id, session,
                                                                  picking=True):
                session.rollback()
                raise OutOfReach()
    if row_condition(models, table_key, user, verb) is None:
        return
    session.add(item)
    session.flush()
    if not can_reach(models, table_key, item.id, session, verb):
        session.rollback()
        raise OutOfReach()
