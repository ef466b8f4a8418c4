"""The audit trail on screen: a record's history on its page, and the audit log screen across
tables. Both go through the permission gate: a user sees entries of the records they reach, and of
each entry only the fields they may see (masked ones masked, unless they may reveal them).
Revealing encrypted values is itself recorded here."""
from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from flask import current_app, has_request_context, request
from flask_appbuilder import BaseView, expose, has_access

from app.audit.capture import ACCOUNTS, audit_place
from app.audit.log import AUDIT_TABLE, Entry, append
from app.crypto import DecryptFailed
from app.schema import naming
from app.schema.model import FieldSpec, TableSpec
from app.security.gate import ADMIN_ROLE, FieldAccess, can_reach, current_user, field_access, role_keys, row_condition
from app.security.roles import AUDIT_VIEW

from .context import current_appbuilder
from .encrypted import masked
from .i18n import current_lang

PAGE_SIZE = 50
ACTION_LABELS = {"create": ("新建", "created"), "update": ("修改", "changed"), "delete": ("删除", "deleted"),
                 "reveal": ("查看加密字段", "revealed"), "import": ("导入", "imported"),
                 "rule": ("通过规则", "passed a rule"), "share": ("分享", "shared"),
                 "schema": ("结构变更", "schema change"), "login": ("登录", "logged in"),
                 "login_failed": ("登录失败", "failed login"),
                 "login_refused": ("登录被拒(已锁定)", "login refused (locked)"),
                 "lockout": ("登录锁定", "locked out"), "unlock": ("解除锁定", "unlocked"),
                 "logout": ("退出登录", "logged out")}


def request_actor() -> tuple[Any, Any, Any]:
    """Return (user id, username, IP) of whoever causes a change: the request's user, else the command line."""
    if not has_request_context():
        return None, "(command line)", None
    user = current_user()
    ip = request.remote_addr
    return (user.id, user.username, ip) if user is not None else (None, "(anonymous)", ip)


def revealed_fields(table: TableSpec, access: FieldAccess, columns: list[str]) -> list[str]:
    """Return the encrypted fields among `columns` that `access` shows in plain text."""
    return [f.key for f in table.fields if f.seals_value and f.key in columns and access.shows(f.key)
            and f.key not in access.masked]


def record_reveal(table: TableSpec, fields: list[str], records: list[tuple[Any, dict[str, Any]]]) -> None:
    """Record that the current user was shown the plain values of `fields` of `records` ((id, values))."""
    shown = [pk for pk, values in records if any(values.get(key) not in (None, "") for key in fields)]
    if not fields or not shown:
        return
    user_id, username, ip = request_actor()
    session = current_appbuilder().session
    entry = Entry("reveal", table.key, shown[0] if len(shown) == 1 else None,
                  {"fields": fields, "records": shown}, user_id, username, ip)
    append(session.connection(), [entry])
    session.commit()


@dataclass
class ShownEntry:
    """An audit entry as one user may see it."""

    at: str
    who: str
    ip: str
    action: str
    table: str
    record_id: Any
    changes: list[tuple[str, str, str]]  # (field label, before, after)


def shown_value(table: TableSpec, spec: FieldSpec, access: FieldAccess, record_id: Any, value: Any,
                revealed: set[tuple[str, str, Any]] | None = None) -> str:
    """Return a recorded value for display: unsealed only for a user who may reveal the field (and
    then noted in `revealed` as (table, field, record), to be recorded as a reveal)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, dict) and "sealed" in value:
        if spec.key in access.masked:
            return "●●●●"
        try:
            text = current_app.extensions["crm"].keyring.decrypt(value["sealed"],
                                                                  audit_place(table.key, spec.key, record_id))
        except DecryptFailed:
            return "⚠"
        if revealed is not None:
            revealed.add((table.key, spec.key, record_id))
        return text
    if spec.key in access.masked:
        return masked(spec, value) or "—"
    if spec.type in ("link", "user"):
        return linked_title(spec, value)
    if isinstance(value, list) and not spec.choices:
        return "、".join(str(v) for v in value)
    if spec.choices:
        keys = value if isinstance(value, list) else [value]
        return "、".join(o.label.text(current_lang()) if (o := spec.choices.option(k)) else str(k) for k in keys)
    if isinstance(value, bool):
        return ("是" if value else "否") if current_lang() == "zh" else ("yes" if value else "no")
    return str(value)


def linked_title(spec: FieldSpec, value: Any) -> str:
    """Return how a recorded link reads: the linked record's title when the viewer may read it (a
    user's name), else only its id; looked up once per request."""
    from flask import g

    from .records import user_display_name
    cache = g.setdefault("crm_history_titles", {})
    key = (spec.type, spec.to, value)
    if key not in cache:
        state = current_app.extensions["crm"]
        session = current_appbuilder().session
        title = f"#{value}"
        if isinstance(value, int) and spec.type == "user":
            user = session.get(current_appbuilder().sm.user_model, value)
            title = user_display_name(user) if user is not None else title
        elif isinstance(value, int) and spec.to in state.models.classes and can_reach(
                state.models, spec.to or "", value, session):
            record = session.get(state.models.model(spec.to), value)
            title = str(record) if record is not None else title
        cache[key] = title
    return cache[key]


def person(user_id: Any, username: Any) -> str:
    """Return who made an entry: their name (张伟) when the account still exists, else the login recorded."""
    spec = FieldSpec(key="who", type="user", label=ACCOUNTS.label)
    if isinstance(user_id, int):
        name = linked_title(spec, user_id)
        if not name.startswith("#"):
            return name
    return username or "—"


def local_time(at: datetime.datetime) -> str:
    """Return a stored (UTC) time in CRM_TIMEZONE, as 2026-12-02 03:11:05."""
    return at.replace(tzinfo=datetime.UTC).astimezone(time_zone()).strftime("%Y-%m-%d %H:%M:%S")


def time_zone() -> ZoneInfo:
    return ZoneInfo(current_app.config.get("CRM_TIMEZONE") or "Asia/Shanghai")


def zone_label() -> str:
    """Return the zone times are shown in, e.g. 'Asia/Shanghai, UTC+08:00'."""
    offset = datetime.datetime.now(time_zone()).strftime("%z")
    return f"{time_zone().key}, UTC{offset[:3]}:{offset[3:]}"


def shown_entry(row: Any, table: TableSpec | None, access: FieldAccess,
                revealed: set[tuple[str, str, Any]] | None = None) -> ShownEntry | None:
    """Return one entry with only the fields `access` shows; None for a reveal of fields it does not show."""
    lang = current_lang()
    data = json.loads(row.changes) if row.changes else None
    changes: list[tuple[str, str, str]] = []
    if table is not None and row.action in ("create", "update", "delete") and isinstance(data, dict):
        for spec in table.fields:
            if spec.key not in data or not access.shows(spec.key):
                continue
            value = data[spec.key]
            before, after = (value if row.action == "update" else ([None, value] if row.action == "create"
                                                                   else [value, None]))
            changes.append((spec.label.text(lang), shown_value(table, spec, access, row.record_id, before, revealed),
                            shown_value(table, spec, access, row.record_id, after, revealed)))
    elif row.action == "reveal" and table is not None and isinstance(data, dict):
        labels = [table.field(k).label.text(lang) for k in data.get("fields", [])
                  if table.has_field(k) and access.shows(k)]
        if not labels:
            return None
        changes.append(("、".join(labels), "", ", ".join(f"#{r}" for r in data.get("records", []))))
    elif row.action == "rule" and table is not None and isinstance(data, dict):
        _, _, key = str(data.get("rule", "")).rpartition(".")
        rule = next((r for r in table.rules if r.key == key), None)
        changes.append((rule.label.text(lang) if rule is not None else key, "", str(data.get("message", ""))))
    elif row.action == "schema" and isinstance(data, dict):
        changes += [("", "", step) for step in data.get("steps", [])]
    elif isinstance(data, dict):  # a login event's details: reason, scope, by whom
        changes += [(key, "", str(value)) for key, value in sorted(data.items())]
    zh, en = ACTION_LABELS.get(row.action, (row.action, row.action))
    return ShownEntry(at=local_time(row.at), who=person(row.user_id, row.username), ip=row.ip or "",
                      action=zh if lang == "zh" else en,
                      table=table.label.text(lang) if table is not None else "—",
                      record_id=row.record_id, changes=changes)


def record_history(models: Any, table: TableSpec, record_id: int, updates_only: bool = False,
                   limit: int = 200) -> list[ShownEntry]:
    """Return the entries of one record (only its updates, when asked), newest first, as the current
    user may see them."""
    access = field_access(models.schema, table.key, current_user())
    session = current_appbuilder().session
    query = sa.select(AUDIT_TABLE).where(AUDIT_TABLE.c.table_key == table.key, AUDIT_TABLE.c.record_id == record_id)
    if updates_only:
        query = query.where(AUDIT_TABLE.c.action == "update")
    rows = session.execute(query.order_by(AUDIT_TABLE.c.id.desc()).limit(limit)).all()
    revealed: set[tuple[str, str, Any]] = set()
    shown = [e for e in (shown_entry(row, table, access, revealed) for row in rows) if e is not None]
    record_history_reveals(models, revealed)
    return shown


def record_history_reveals(models: Any, revealed: set[tuple[str, str, Any]]) -> None:
    """Record the encrypted values an audit view showed in plain text, per table and field."""
    by_table: dict[str, dict[str, set[Any]]] = {}
    for table_key, field_key, record_id in revealed:
        by_table.setdefault(table_key, {}).setdefault(field_key, set()).add(record_id)
    for table_key, fields in sorted(by_table.items()):
        records = sorted({r for ids in fields.values() for r in ids})
        record_reveal(models.schema.table(table_key), sorted(fields), [(r, {k: "shown" for k in fields})
                                                                        for r in records])


def visible_entries(models: Any, user: Any) -> Any:
    """Return the SQL condition selecting the entries `user` may see: those of records they read, and
    (for admins and roles with audit: true) schema changes."""
    schema = models.schema
    roles = role_keys(user)
    conditions = []
    if ADMIN_ROLE in roles:
        return sa.true()
    # schema changes and login accounts, for those who may open the audit log at all
    conditions.append(sa.or_(AUDIT_TABLE.c.table_key.is_(None), AUDIT_TABLE.c.table_key == ACCOUNTS.key))
    for table in schema.tables:
        grants = [schema.grants_of(r).get(table.key) for r in roles]
        if not any(g is not None and "read" in g.can for g in grants):
            continue
        rows = row_condition(models, table.key, user, "read")
        condition = AUDIT_TABLE.c.table_key == table.key
        if rows is not None:
            model_table = models.metadata.tables[naming.table_name_for(table.key)]
            condition = sa.and_(condition, AUDIT_TABLE.c.record_id.in_(sa.select(model_table.c.id).where(rows)))
        conditions.append(condition)
    return sa.or_(*conditions)


class AuditView(BaseView):
    """The audit log across tables, for admins and roles with `audit: true`."""

    route_base = "/audit"
    default_view = "list"
    class_permission_name = AUDIT_VIEW
    method_permission_name = {"list": "read"}

    @expose("/")
    @has_access
    def list(self) -> Any:
        state = current_app.extensions["crm"]
        user = current_user()
        args = request.args
        query = sa.select(AUDIT_TABLE).where(visible_entries(state.models, user))
        if args.get("table"):
            query = query.where(AUDIT_TABLE.c.table_key == args["table"])
        if args.get("user"):
            query = query.where(AUDIT_TABLE.c.username == args["user"].strip())
        if args.get("action") in ACTION_LABELS:
            query = query.where(AUDIT_TABLE.c.action == args["action"])
        for name, op in (("from", "__ge__"), ("to", "__lt__")):
            day = parse_day(args.get(name, ""))
            if day is not None and not (name == "to" and day.date() == datetime.date.max):
                bound = day + datetime.timedelta(days=1) if name == "to" else day
                query = query.where(getattr(AUDIT_TABLE.c.at, op)(bound))
        page = int(args["page"]) if str(args.get("page", "")).isdigit() and len(args["page"]) < 8 else 0
        session = self.appbuilder.session
        total = session.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar()
        rows = session.execute(query.order_by(AUDIT_TABLE.c.id.desc()).offset(page * PAGE_SIZE).limit(PAGE_SIZE)).all()
        tables = {t.key: t for t in state.schema.tables} | {ACCOUNTS.key: ACCOUNTS}
        entries = []
        revealed: set[tuple[str, str, Any]] = set()
        for row in rows:
            table = tables.get(row.table_key or "")
            access = (field_access(state.schema, table.key, user) if table is not None and table is not ACCOUNTS
                      else FieldAccess())
            entry = shown_entry(row, table, access, revealed)
            if entry is not None:
                entries.append(entry)
        record_history_reveals(state.models, revealed)
        return self.render_template("crm/audit.html", entries=entries, total=total, page=page,
                                    pages=(total + PAGE_SIZE - 1) // PAGE_SIZE, tables=[*state.schema.tables, ACCOUNTS],
                                    actions=ACTION_LABELS, args=args)


def parse_day(text: str) -> datetime.datetime | None:
    """Return the start of a day written YYYY-MM-DD in CRM_TIMEZONE, as the UTC time it is stored in; None."""
    try:
        day = datetime.datetime.strptime(text.strip(), "%Y-%m-%d")
    except ValueError:
        return None
    if day.date() in (datetime.date.min, datetime.date.max):
        return day
    return day.replace(tzinfo=time_zone()).astimezone(datetime.UTC).replace(tzinfo=None)


def register_audit_screen(appbuilder: Any) -> None:
    from app.security.roles import AUDIT_MENU

    from .i18n import lazy_text
    appbuilder.add_view(AuditView, AUDIT_MENU, label=lazy_text("审计日志", "Audit log"), icon="fa-history")
