"""Audit entries from the ORM session: every create, update and delete of a schema table's record,
with each changed field's old and new value, written in the same transaction as the change.

Screens, the API and every later writer that goes through the ORM are covered without calling
anything. Values of encrypted fields are stored sealed (bound to the log, the table, field and
record), so the log holds no plaintext of them either.
"""
from __future__ import annotations

import datetime
import decimal
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm

from app.crypto import Keyring
from app.models.build import BuiltModels
from app.models.rules import pop_confirmations  # also puts the rules' checks before this module's writing
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec

from .log import Entry, append

Actor = Callable[[], tuple[Any, Any, Any]]  # () -> (user id, username, ip)


@dataclass(frozen=True)
class AuditContext:
    table: TableSpec
    ring: Keyring
    actor: Actor
    models: BuiltModels


_CONTEXTS: weakref.WeakKeyDictionary[type, AuditContext] = weakref.WeakKeyDictionary()
PENDING = "crm_audit_pending"


def account_field(key: str, kind: str, zh: str, en: str) -> FieldSpec:
    return FieldSpec(key=key, type=kind, label=Label(zh, en))


# Login accounts are audited too: who was given which role, who was switched off, whose password
# changed (never the password itself). Flask-AppBuilder's user model carries these attributes.
ACCOUNTS = TableSpec(key="ab_user", label=Label("用户账号", "User account"), title="username", list=(), search=(),
                     filters=(), fields=(
                         account_field("username", "string", "用户名", "Username"),
                         account_field("first_name", "string", "名", "First name"),
                         account_field("last_name", "string", "姓", "Last name"),
                         account_field("email", "string", "邮箱", "Email"),
                         account_field("active", "boolean", "启用", "Active"),
                         account_field("roles", "names", "角色", "Roles"),
                         account_field("groups", "names", "用户组", "Groups"),
                         account_field("password", "password", "密码", "Password")))


def install_audit(models: BuiltModels, ring: Keyring, actor: Actor, user_model: type | None = None) -> None:
    """Record the changes of every schema table's records, and of login accounts; `actor` says who
    and from where."""
    for table in models.schema.tables:
        _CONTEXTS[models.model(table.key)] = AuditContext(table, ring, actor, models)
    if user_model is not None:
        _CONTEXTS[user_model] = AuditContext(ACCOUNTS, ring, actor, models)


def audit_place(table_key: str, field_key: str, record_id: Any) -> str:
    """Return the authenticated place of a sealed value in the log."""
    return f"crm_audit:{table_key}.{field_key}#{record_id}"


def plain(spec: FieldSpec, value: Any) -> Any:
    """Return a field value as JSON: related records by id, numbers and dates as text, empty as None."""
    if value is None or value == "" or value == []:
        return None
    if spec.is_relation:
        return getattr(value, "id", value)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return sorted(str(getattr(v, "name", v)) for v in value) or None
    return value


def recorded(ctx: AuditContext, spec: FieldSpec, record_id: Any, value: Any) -> Any:
    """Return a value as it goes into the log: sealed for an encrypted field."""
    value = plain(spec, value)
    if spec.type == "password" and value is not None:
        return "••••"  # that it was set or changed, never the hash
    if spec.seals_value and value is not None:
        return {"sealed": ctx.ring.encrypt(str(value), audit_place(ctx.table.key, spec.key, record_id))}
    return value


def logged_values(model: type, record_id: Any, values: dict[str, Any]) -> dict[str, Any]:
    """Return {field: value} of a record of `model` as the log keeps values (encrypted ones sealed)."""
    ctx = _CONTEXTS[model]
    return {key: recorded(ctx, ctx.table.field(key), record_id, value) for key, value in values.items()}


def snapshot(ctx: AuditContext, obj: Any) -> dict[str, Any]:
    """Return every non-empty field of a record as {field: value}."""
    values = {}
    for spec in ctx.table.fields:
        value = getattr(obj, spec.key, None)
        if value not in (None, "", []):
            values[spec.key] = recorded(ctx, spec, obj.id, value)
    return values


def differences(ctx: AuditContext, obj: Any) -> dict[str, Any]:
    """Return {field: [old, new]} for every field of `obj` changed in this flush."""
    changes = {}
    for spec in ctx.table.fields:
        history = orm.attributes.get_history(obj, spec.key)
        if not history.has_changes():
            continue
        old: Any
        new: Any
        if spec.type == "names":  # a collection (an account's roles): the whole list before and after
            old, new = [*history.unchanged, *history.deleted], [*history.unchanged, *history.added]
        else:
            old = history.deleted[0] if history.deleted else None
            new = history.added[0] if history.added else None
        if plain(spec, old) != plain(spec, new):
            changes[spec.key] = [recorded(ctx, spec, obj.id, old), recorded(ctx, spec, obj.id, new)]
    return changes


@event.listens_for(orm.Session, "before_flush")
def collect(session: orm.Session, flush_context: Any, instances: Any) -> None:
    pending = session.info.setdefault(PENDING, [])
    with session.no_autoflush:
        for obj in list(session.new):
            if type(obj) in _CONTEXTS:
                pending.append((obj, "create", None))  # its id and links are known after the flush
        for obj in list(session.dirty):
            ctx = _CONTEXTS.get(type(obj))
            if ctx is not None and session.is_modified(obj, include_collections=ctx.table is ACCOUNTS):
                changes = differences(ctx, obj)
                if changes:
                    pending.append((obj, "update", changes))
        deleted = [obj for obj in session.deleted if type(obj) in _CONTEXTS]
        seen = {(type(obj), obj.id) for obj in deleted}
        for obj in deleted:
            pending.append((obj, "delete", snapshot(_CONTEXTS[type(obj)], obj)))
            pending += dependants(session, _CONTEXTS[type(obj)], obj, seen)


def dependants(session: orm.Session, ctx: AuditContext, parent: Any, seen: set[Any]) -> list[Any]:
    """Return the entries of the records the database itself changes when `parent` is deleted: the
    children deleted with it (on_delete: cascade, and theirs in turn) and those whose link it empties
    (on_delete: set_null). The ORM never loads them, so nothing else would record them."""
    found: list[Any] = []
    models = ctx.models
    for child_table, link in models.schema.children_of(ctx.table.key):
        if link.on_delete not in ("cascade", "set_null"):
            continue
        child_model: Any = models.model(child_table.key)
        column = models.metadata.tables[naming.table_name_for(child_table.key)].c[naming.column_name_for(link)]
        child_ctx = _CONTEXTS[child_model]
        for child in session.execute(sa.select(child_model).where(column == parent.id)).scalars():
            if (child_model, child.id) in seen:
                continue
            seen.add((child_model, child.id))
            if link.on_delete == "cascade":
                found.append((child, "delete", snapshot(child_ctx, child)))
                found += dependants(session, child_ctx, child, seen)
            else:
                found.append((child, "update", {link.key: [parent.id, None]}))
    return found


@event.listens_for(orm.Session, "after_flush")
def write(session: orm.Session, flush_context: Any) -> None:
    pending = session.info.pop(PENDING, [])
    entries = []
    for obj, action, changes in pending:
        ctx = _CONTEXTS[type(obj)]
        user_id, username, ip = ctx.actor()
        if action == "create":
            changes = snapshot(ctx, obj)
        entries.append(Entry(action, ctx.table.key, obj.id, changes, user_id, username, ip))
    if entries:
        append(session.connection(), entries)


@event.listens_for(orm.Session, "before_commit")
def write_rules_passed(session: orm.Session) -> None:
    """Log the record rules the committed writes passed (app.models.rules checks them just before)."""
    passed = pop_confirmations(session)
    if not passed or not _CONTEXTS:
        return
    user_id, username, ip = next(iter(_CONTEXTS.values())).actor()
    append(session.connection(), [Entry("rule", table_key, record_id, {"rule": rule, "message": message},
                                        user_id, username, ip) for table_key, record_id, rule, message in passed])


@event.listens_for(orm.Session, "after_soft_rollback")
def forget(session: orm.Session, previous_transaction: Any) -> None:
    session.info.pop(PENDING, None)
