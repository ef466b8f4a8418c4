"""The periodic permission review: every role's rights and every user's roles, and what changed since
the previous review.

A review is a snapshot (plain data) saved in `crm_permission_review`; the next review is compared
with it. Rendering to CSV or text needs neither Flask nor the database.
"""
from __future__ import annotations

import csv
import datetime
import io
import json
from typing import Any

import sqlalchemy as sa

from app.schema.model import SchemaSpec, TableGrant

from .gate import role_keys

REVIEW_TABLE = sa.Table(
    "crm_permission_review", sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("taken_on", sa.DateTime, nullable=False),
    sa.Column("snapshot", sa.Text, nullable=False),
)


def row_scope(rule: Any) -> str:
    """Return a row rule in words: all, own (owner), own (customer.owner), region in 华东, 华南."""
    if rule is None or rule.kind == "all":
        return "all"
    if rule.kind == "own":
        return f"own ({rule.field})" if rule.field else "own"
    if rule.user_values:
        return f"{rule.field} in the user's {rule.user_values}"
    return f"{rule.field} in {', '.join(rule.values)}"


def build_review(schema: SchemaSpec, users: list[Any]) -> dict[str, Any]:
    """Return the snapshot: per role its tables (verbs, rows, hidden and read-only fields), per user
    roles, active flag and last login."""
    roles: dict[str, Any] = {"admin": {"*": {"can": ["everything"], "rows": "all", "hidden": [], "readonly": []}}}
    for key in sorted(schema.roles):
        roles[key] = {table: grant_review(schema, grant) for table, grant in sorted(schema.grants_of(key).items())}
    people = {u.username: {"roles": sorted(role_keys(u)), "active": bool(u.active),
                           "last_login": u.last_login.strftime("%Y-%m-%d %H:%M") if u.last_login else ""}
              for u in sorted(users, key=lambda u: u.username)}
    return {"roles": roles, "users": people}


def grant_review(schema: SchemaSpec, grant: TableGrant) -> dict[str, Any]:
    """Return one grant in review form: verbs, rows in words, hidden and read-only fields in table order."""
    keys = [f.key for f in schema.table(grant.table).fields]
    shown = grant.shown_fields(keys)
    return {"can": list(grant.can), "rows": row_scope(grant.rows),
            "hidden": [k for k in keys if k not in shown],
            "readonly": [k for k in keys if k in shown and k in grant.readonly]}


def field_rules(grant: dict[str, Any]) -> str:
    """Return '; hidden: a, b; read-only: c' for the field rules of a reviewed grant ('' when none)."""
    parts = [f"; {name}: {', '.join(grant.get(key) or [])}" for key, name in
             (("hidden", "hidden"), ("readonly", "read-only")) if grant.get(key)]
    return "".join(parts)


def diff_reviews(before: dict[str, Any] | None, after: dict[str, Any]) -> list[str]:
    """Return what changed in rights and role membership (logins are not changes), one line each."""
    if before is None:
        return ["first review: nothing to compare with"]
    lines = []
    for role in sorted(set(before["roles"]) | set(after["roles"])):
        old, new = before["roles"].get(role), after["roles"].get(role)
        if old is None or new is None:
            lines.append(f"{'+' if old is None else '-'} role {role}")
            continue
        for table in sorted(set(old) | set(new)):
            a, b = old.get(table), new.get(table)
            if a != b:
                lines.append(f"~ role {role}, table {table}: {describe(a)} → {describe(b)}")
    for name in sorted(set(before["users"]) | set(after["users"])):
        old, new = before["users"].get(name), after["users"].get(name)
        if old is None or new is None:
            roles = f" ({', '.join(new['roles'])})" if new else ""
            lines.append(f"{'+' if old is None else '-'} user {name}{roles}")
        elif (old["roles"], old["active"]) != (new["roles"], new["active"]):
            lines.append(f"~ user {name}: {', '.join(old['roles'])}{'' if old['active'] else ' (inactive)'} → "
                         f"{', '.join(new['roles'])}{'' if new['active'] else ' (inactive)'}")
    return lines or ["no change since the previous review"]


def describe(grant: dict[str, Any] | None) -> str:
    return "no access" if grant is None else f"{', '.join(grant['can'])} (rows: {grant['rows']}{field_rules(grant)})"


def render_csv(review: dict[str, Any], changes: list[str]) -> str:
    """Return the review as CSV (UTF-8 with BOM when written, for Excel): rights, then users, then changes."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["section", "role / user", "table / roles", "actions / active", "rows / last login",
                     "hidden fields", "read-only fields"])
    for role, tables in review["roles"].items():
        for table, grant in tables.items():
            writer.writerow(["role", role, table, " ".join(grant["can"]), grant["rows"],
                             " ".join(grant.get("hidden", [])), " ".join(grant.get("readonly", []))])
    for name, user in review["users"].items():
        writer.writerow(["user", name, " ".join(user["roles"]), "yes" if user["active"] else "no", user["last_login"],
                         "", ""])
    for line in changes:
        writer.writerow(["change", line, "", "", "", "", ""])
    return out.getvalue()


def render_text(review: dict[str, Any], changes: list[str], taken_on: datetime.datetime) -> str:
    """Return the review for a terminal."""
    lines = [f"Permission review, {taken_on:%Y-%m-%d %H:%M}", "", "Roles:"]
    for role, tables in review["roles"].items():
        lines.append(f"  {role}")
        lines += [f"    {table}: {', '.join(g['can'])}; rows: {g['rows']}{field_rules(g)}"
                  for table, g in tables.items()]
    lines += ["", "Users:"]
    lines += [f"  {name}: {', '.join(u['roles']) or '(no role)'}; {'active' if u['active'] else 'inactive'}; "
              f"last login {u['last_login'] or 'never'}" for name, u in review["users"].items()]
    lines += ["", "Changes since the previous review:"] + [f"  {line}" for line in changes]
    return "\n".join(lines) + "\n"


def previous_review(conn: sa.Connection) -> dict[str, Any] | None:
    if not sa.inspect(conn).has_table(REVIEW_TABLE.name):
        return None
    row = conn.execute(sa.select(REVIEW_TABLE.c.snapshot).order_by(REVIEW_TABLE.c.id.desc()).limit(1)).first()
    return json.loads(row[0]) if row else None


def save_review(conn: sa.Connection, review: dict[str, Any], taken_on: datetime.datetime) -> None:
    REVIEW_TABLE.create(conn, checkfirst=True)
    conn.execute(REVIEW_TABLE.insert().values(taken_on=taken_on, snapshot=json.dumps(review, ensure_ascii=False)))


def take_review(engine: sa.Engine, schema: SchemaSpec, users: list[Any], save: bool
                ) -> tuple[dict[str, Any], list[str], datetime.datetime]:
    """Return (review, changes since the last saved review, time taken); with `save`, keep it for the next."""
    now = datetime.datetime.now().replace(microsecond=0)
    review = build_review(schema, users)
    with engine.begin() as conn:
        changes = diff_reviews(previous_review(conn), review)
        if save:
            save_review(conn, review, now)
    return review, changes, now


def saved_reviews(engine: sa.Engine, limit: int = 20) -> list[datetime.datetime]:
    """Return when the last `limit` reviews were saved, newest first."""
    with engine.connect() as conn:
        if not sa.inspect(conn).has_table(REVIEW_TABLE.name):
            return []
        query = sa.select(REVIEW_TABLE.c.taken_on).order_by(REVIEW_TABLE.c.id.desc()).limit(limit)
        return list(conn.execute(query).scalars())
