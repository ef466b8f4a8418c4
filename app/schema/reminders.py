"""The `reminders:` section: which records fall due when, for whom, and what the reminder says.
Parsed and checked here (every problem with file, line and a hint); worked out by app.automation.

    reminders:
      follow_up_due:
        label: {zh: 待回访, en: Follow-up due}
        table: follow_up
        date: next_date          # a date field; due on it (plus after_days)
        notice_days: 3           # shown from 3 days before; overdue after
        to: owner                # a user field of the record, or a path to one: customer.owner
        roles: [sales_manager]   # and/or everyone in these roles who may read the record
        when: "status != 'done'" # only while this holds (fields of the record)
        message: {zh: "回访{customer}：{subject}", en: "Follow up {customer}: {subject}"}
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import expressions
from .checks import condition_problems
from .issues import Issue
from .model import DoneSpec, Label, ReminderSpec, SchemaSpec, TableSpec
from .parse import Parser, describe, did_you_mean
from .yamlsrc import Node

REMINDER_KEYS = ("label", "table", "date", "notice_days", "after_days", "when", "to", "roles", "message", "done")
DONE_KEYS = ("copy", "today", "ask")
ASKED_TYPES = ("string", "text", "choice", "date", "integer", "decimal", "money", "percent", "boolean")
DATE_TYPES = ("date", "datetime")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
MAX_DAYS = 36500
Report = Callable[..., None]  # (where, message, hint) of one reminder


def collect_reminders(roots: list[Node], parser: Parser) -> dict[str, ReminderSpec]:
    """Return every reminder declared under `reminders:` in any file (shape problems go to the parser)."""
    reminders: dict[str, ReminderSpec] = {}
    for root in roots:
        section = root.value.get("reminders") if root.is_map else None
        if section is None or not parser.expect_map(section, "reminders", "reminders"):
            continue
        for key, node in section.value.items():
            path = f"reminders.{key}"
            line = section.key_lines.get(key)
            if not parser.check_key(section, key, path, line):
                continue
            if key in reminders:
                parser.error(node, path, f"reminder '{key}' is declared twice",
                             f"it is also declared in {reminders[key].file}:{reminders[key].line}", line=line)
                continue
            reminder = parse_reminder(parser, node, key, path)
            if reminder is not None:
                reminders[key] = reminder
    return reminders


def parse_reminder(parser: Parser, node: Node, key: str, path: str) -> ReminderSpec | None:
    if not parser.expect_map(node, path, "a reminder like {table: follow_up, date: next_date, to: owner, "
                                         "message: 回访{customer}}"):
        return None
    parser.unknown_keys(node, path, REMINDER_KEYS, "reminder keys")
    values = node.value
    missing = [k for k in ("table", "date", "message") if k not in values]
    for name in missing:
        parser.error(node, f"{path}.{name}", f"a reminder needs {name}:",
                     "e.g. table: follow_up, date: next_date, message: {zh: 回访{customer}, en: Visit {customer}}")
    if missing:
        return None
    table = parser.text(values["table"], f"{path}.table")
    date = parser.text(values["date"], f"{path}.date")
    if table is None or date is None:
        return None
    attrs: dict[str, Any] = {"key": key, "table": table, "date": date, "file": node.file, "line": node.line,
                   "label": parser.label(values["label"], f"{path}.label") if "label" in values else Label(key, key),
                   "message": parser.label(values["message"], f"{path}.message")}
    for name in ("notice_days", "after_days"):
        if name in values:
            attrs[name] = days(parser, values[name], f"{path}.{name}")
    if "to" in values:
        attrs["to"] = parser.text(values["to"], f"{path}.to")
    if "roles" in values:
        attrs["roles"] = parser.key_list(values["roles"], f"{path}.roles")
    if "when" in values:
        parse_when(parser, values["when"], f"{path}.when", attrs)
    if "done" in values:
        attrs["done"] = parse_done(parser, values["done"], f"{path}.done")
    if "to" not in values and "roles" not in values:
        parser.error(node, f"{path}.to", "a reminder needs to: (a user field of the record) or roles:",
                     "e.g. to: owner, to: customer.owner, or roles: [finance]")
        return None
    return ReminderSpec(**attrs)


def parse_done(parser: Parser, node: Node, path: str) -> DoneSpec | None:
    if not parser.expect_map(node, path, "what 完成 records, like {copy: [customer], today: visit_date, "
                                         "ask: [content, next_date]}"):
        return None
    parser.unknown_keys(node, path, DONE_KEYS, "done keys")
    values = node.value
    return DoneSpec(copy=parser.key_list(values["copy"], f"{path}.copy") if "copy" in values else (),
                    today=parser.text(values["today"], f"{path}.today") if "today" in values else None,
                    ask=parser.key_list(values["ask"], f"{path}.ask") if "ask" in values else (),
                    line=node.line)


def days(parser: Parser, node: Node, path: str) -> int:
    if isinstance(node.value, int) and not isinstance(node.value, bool) and 0 <= node.value <= MAX_DAYS:
        return int(node.value)
    parser.error(node, path, f"expected a whole number of days from 0 to {MAX_DAYS}, got {describe(node)}")
    return 0


def parse_when(parser: Parser, node: Node, path: str, attrs: dict[str, Any]) -> None:
    source = parser.text(node, path)
    if source is None:
        return
    try:
        condition = expressions.parse_condition(source)
    except expressions.ExpressionError as exc:
        parser.error(node, path, f"{exc.message} (at character {exc.position + 1} of '{source}')",
                     exc.hint or "e.g. when: outstanding > 0 and status != 'paid'")
        return
    if expressions.aggregates(condition):
        parser.error(node, path, "a reminder's condition compares the record's own fields",
                     "declare a computed field (compute: sum(...)) and compare that")
        return
    attrs["when"], attrs["condition"] = source, condition


def check_reminders(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of each reminder against the schema: its table, date field, recipients,
    condition and message."""
    issues: list[Issue] = []
    tables = {t.key: t for t in schema.tables}
    for reminder in schema.reminders.values():
        def issue(where: str, message: str, hint: str = "", r: ReminderSpec = reminder) -> None:
            issues.append(Issue(r.file, r.line, f"reminders.{r.key}.{where}", message, hint))
        table = tables.get(reminder.table)
        if table is None:
            issue("table", f"there is no table '{reminder.table}'",
                  did_you_mean(reminder.table, list(tables), "tables"))
            continue
        check_date(table, reminder, issue)
        check_recipients(schema, table, reminder, issue)
        if reminder.done is not None:
            issues.extend(Issue(reminder.file, reminder.done.line or reminder.line, f"reminders.{reminder.key}.{where}",
                                message, hint) for where, message, hint in done_problems(table, reminder.done))
        if reminder.condition is not None:
            for message, hint in condition_problems(table, reminder.condition):
                issue("when", message, hint)
        placeholders = PLACEHOLDER.findall(reminder.message.zh) + PLACEHOLDER.findall(reminder.message.en)
        for placeholder in dict.fromkeys(placeholders):
            problem = placeholder_problem(schema, table, placeholder)
            if problem:
                issue("message", *problem)
    return issues


def done_problems(table: TableSpec, done: DoneSpec) -> list[tuple[str, str, str]]:
    """Return (where, message, hint) for each field of a `done:` the new record cannot be given."""
    problems = []
    keys = [f.key for f in table.fields]
    named = [("done.copy", k) for k in done.copy] + [("done.ask", k) for k in done.ask] + (
        [("done.today", done.today)] if done.today else [])
    for where, key in named:
        if key not in keys:
            problems.append((where, f"table '{table.key}' has no field '{key}'", did_you_mean(key, keys, "fields")))
        elif table.field(key).is_computed:
            problems.append((where, f"{table.key}.{key} is computed; a new record cannot be given it",
                             "name fields that people fill in"))
    for key in done.ask:
        if key in keys and table.field(key).type not in ASKED_TYPES:
            problems.append(("done.ask", f"{table.key}.{key} is a {table.field(key).type} field, which the 完成 "
                             "form does not ask for", "ask for " + ", ".join(ASKED_TYPES) + " fields"))
    if done.today and done.today in keys and table.field(done.today).type != "date":
        problems.append(("done.today", f"{table.key}.{done.today} is a {table.field(done.today).type} field, not "
                         "a date", "today: names the date field set to the day the item is done"))
    twice = sorted(set(done.copy) & set(done.ask))
    if twice:
        problems.append(("done", f"{', '.join(twice)} both copied and asked", "a field is either copied or asked"))
    return problems


def check_date(table: TableSpec, reminder: ReminderSpec, issue: Report) -> None:
    dates = [f.key for f in table.fields if f.type in DATE_TYPES]
    if not table.has_field(reminder.date):
        issue("date", f"table '{table.key}' has no field '{reminder.date}'",
              did_you_mean(reminder.date, dates, "date fields"))
    elif table.field(reminder.date).type not in DATE_TYPES:
        issue("date", f"{table.key}.{reminder.date} is a {table.field(reminder.date).type} field, not a date",
              did_you_mean(reminder.date, dates, "date fields"))


def check_recipients(schema: SchemaSpec, table: TableSpec, reminder: ReminderSpec, issue: Report) -> None:
    if reminder.to is not None:
        problem = user_path_problem(schema, table, reminder.to)
        if problem:
            issue("to", *problem)
    known = sorted(schema.roles)
    for role in reminder.roles:
        if role not in schema.roles and role != "admin":
            issue("roles", f"there is no role '{role}'",
                  did_you_mean(role, known, "roles") if known else "declare it under roles:")


def user_path_problem(schema: SchemaSpec, table: TableSpec, path: str) -> tuple[str, str] | None:
    """Return why `path` (owner, customer.owner) does not lead, through links, to a user field."""
    current = table
    steps = path.split(".")
    for n, step in enumerate(steps):
        if not current.has_field(step):
            return (f"table '{current.key}' has no field '{step}' (in '{path}')",
                    did_you_mean(step, [f.key for f in current.fields], "fields"))
        spec = current.field(step)
        last = n == len(steps) - 1
        if last and spec.type != "user":
            return (f"'{path}' ends at a {spec.type} field, not a user", "to: names who is reminded: a user "
                    "field of the record, or of a record it links to (customer.owner)")
        if not last and spec.type != "link":
            return (f"'{step}' is not a link, so '{path}' leads nowhere", "a dotted path follows link fields")
        if not last:
            current = schema.table(spec.to or "")
    return None


def placeholder_problem(schema: SchemaSpec, table: TableSpec, placeholder: str) -> tuple[str, str] | None:
    """Return why {placeholder} of a message names no field that may be shown (encrypted fields may not:
    a reminder travels by e-mail and chat)."""
    link, dot, rest = placeholder.partition(".")
    if not table.has_field(link):
        return (f"the message names '{{{placeholder}}}', which is not a field of {table.key}",
                did_you_mean(link, [f.key for f in table.fields], "fields") + "; write {{ and }} for braces")
    spec = table.field(link)
    if dot:
        if spec.type != "link" or not schema.table(spec.to or "").has_field(rest):
            return (f"the message names '{{{placeholder}}}', which leads to no field",
                    "a dotted placeholder follows a link field: {customer.city}")
        spec = schema.table(spec.to or "").field(rest)
    if spec.encrypted:
        return (f"the message names the encrypted field '{placeholder}'",
                "reminders go out by e-mail and chat; leave encrypted fields out of them")
    return None
