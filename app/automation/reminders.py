"""A user's due items: for each reminder of the schema, the records they may read and are reminded of
(the record's user field names them, or one of their roles is named), whose date has come within the
notice period, whose condition holds, and that they have not marked done or snoozed for this due day.

Worked out in SQL per reminder (the date window and the condition), so a table of any size costs one
query per reminder; the states of the few rows found are read in one more.
"""
from __future__ import annotations

import datetime
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from app.models.build import BuiltModels
from app.models.computed import condition_sql, table_of
from app.schema import naming
from app.schema.model import Label, ReminderSpec, TableSpec
from app.schema.reminders import PLACEHOLDER
from app.security.gate import own_condition, role_keys, row_condition
from app.security.users import display_name

from .store import STATE_TABLE, now

MAX_ITEMS = 500  # per reminder and user: a list past this is a backlog to clear, not a reminder


@dataclass(frozen=True)
class Item:
    """One reminder for one record, falling due on one day."""

    reminder: ReminderSpec
    table: TableSpec
    record_id: int
    title: str
    due_on: datetime.date
    message: Label
    today: datetime.date

    @property
    def days_left(self) -> int:
        """Days until it is due: 0 today, negative when overdue."""
        return (self.due_on - self.today).days

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def key(self) -> tuple[str, int, datetime.date]:
        return self.reminder.key, self.record_id, self.due_on

    def when(self, lang: str) -> str:
        days = self.days_left
        if lang == "zh":
            return f"逾期 {-days} 天" if days < 0 else "今天到期" if days == 0 else f"还有 {days} 天"
        return f"{-days} days overdue" if days < 0 else "due today" if days == 0 else f"due in {days} days"


def reminds(models: BuiltModels, spec: ReminderSpec, user: Any) -> Any | None:
    """Return the condition of the rows of which `spec` reminds `user`: their user field names them,
    or a role of theirs is named (then every row); None when it reminds them of none."""
    if set(spec.roles) & set(role_keys(user)):
        return sa.true()
    if spec.to is None:
        return None
    return own_condition(models, spec.table, spec.to.split("."), user.id)


def due_items(models: BuiltModels, session: orm.Session, user: Any, today: datetime.date,
              keys: tuple[str, ...] | None = None) -> list[Item]:
    """Return the user's due items, overdue first, then by due day; of the reminders `keys` (all)."""
    items: list[Item] = []
    for spec in models.schema.reminders.values():
        if keys is None or spec.key in keys:
            items += reminder_items(models, session, spec, user, today)
    return sorted(items, key=lambda i: (i.due_on, i.reminder.key, i.record_id))


def reminder_items(models: BuiltModels, session: orm.Session, spec: ReminderSpec, user: Any,
                   today: datetime.date) -> list[Item]:
    mine = reminds(models, spec, user)
    reach = row_condition(models, spec.table, user, "read")
    if mine is None:
        return []
    model: Any = models.model(spec.table)
    table = models.schema.table(spec.table)
    column = getattr(model, naming.column_name_for(table.field(spec.date)))
    last = today + datetime.timedelta(days=spec.notice_days - spec.after_days)  # the latest date due by now
    latest: Any = last if table.field(spec.date).type == "date" else datetime.datetime.combine(
        last + datetime.timedelta(days=1), datetime.time())
    conditions = [column.is_not(None), column <= latest if table.field(spec.date).type == "date" else column < latest,
                  mine]
    if reach is not None:
        conditions.append(reach)
    if spec.condition is not None:
        rows = models.metadata.tables[naming.table_name_for(spec.table)]
        conditions.append(model.id.in_(sa.select(rows.c.id).where(
            condition_sql(models.schema, table_of(models), spec.table, spec.condition, rows))))
    records = session.execute(sa.select(model).where(*conditions).order_by(column, model.id)
                              .limit(MAX_ITEMS)).scalars().all()
    found = [Item(spec, table, r.id, str(r), due_day(getattr(r, spec.date), spec), render(spec, r), today)
             for r in records]
    return [item for item in found if item.key not in settled(session, spec, found, today)]


def due_day(value: datetime.date | datetime.datetime, spec: ReminderSpec) -> datetime.date:
    day = value.date() if isinstance(value, datetime.datetime) else value
    return day + datetime.timedelta(days=spec.after_days)


def settled(session: orm.Session, spec: ReminderSpec, items: list[Item], today: datetime.date
            ) -> set[tuple[str, int, datetime.date]]:
    """Return the items marked done, or snoozed past today."""
    if not items:
        return set()
    rows = session.execute(sa.select(STATE_TABLE).where(
        STATE_TABLE.c.reminder == spec.key, STATE_TABLE.c.record_id.in_([i.record_id for i in items]))).all()
    return {(r.reminder, r.record_id, r.due_on) for r in rows
            if r.status == "done" or (r.status == "snoozed" and r.until is not None and r.until > today)}


def render(spec: ReminderSpec, record: Any) -> Label:
    """Return the reminder's message about `record`, each {field} filled in (in both languages)."""
    return Label(fill(spec.message.zh, record, "zh"), fill(spec.message.en, record, "en"))


def fill(template: str, record: Any, lang: str) -> str:
    def value(match: Any) -> str:
        found: Any = record
        for step in match.group(1).split("."):
            found = getattr(found, step, None) if found is not None else None
        return shown(found, record, match.group(1), lang)
    return PLACEHOLDER.sub(value, template)


def shown(value: Any, record: Any, path: str, lang: str) -> str:
    """Return a field's value as a reminder writes it: a record by its title, a user by name, an
    option by its label, an amount with separators."""
    if value is None or value == "" or value == []:
        return "—"
    if hasattr(value, "username"):
        return display_name(value, lang)
    if isinstance(value, Decimal):
        return f"{value:,.2f}"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()[:16].replace("T", " ")
    spec = field_spec(record, path)
    if spec is not None and spec.choices is not None:
        keys = value if isinstance(value, list) else [value]
        return "、".join(o.label.text(lang) if (o := spec.choices.option(k)) else str(k) for k in keys)
    return str(value)


def field_spec(record: Any, path: str) -> Any:
    """Return the FieldSpec a placeholder path ends at (through links), or None; a record knows its
    table's spec through its class."""
    *links, last = path.split(".")
    for step in links:
        record = getattr(record, step, None)
    table = getattr(type(record), "__table_spec__", None)
    return table.field(last) if table is not None and table.has_field(last) else None


def mark(models: BuiltModels, session: orm.Session, user: Any, reminder: str, record_id: int, status: str,
         today: datetime.date, until: datetime.date | None = None) -> Item | None:
    """Mark one of the user's due items done, or snoozed until a day; return it (None when it is not
    among their due items: someone else's, or no longer due). Committed."""
    spec = models.schema.reminders.get(reminder)
    if spec is None:
        return None
    item = next((i for i in reminder_items(models, session, spec, user, today) if i.record_id == record_id), None)
    if item is None:
        return None
    session.execute(STATE_TABLE.delete().where(STATE_TABLE.c.reminder == reminder,
                                               STATE_TABLE.c.record_id == record_id,
                                               STATE_TABLE.c.due_on == item.due_on))
    session.execute(STATE_TABLE.insert().values(reminder=reminder, record_id=record_id, due_on=item.due_on,
                                                status=status, until=until, user_id=getattr(user, "id", None),
                                                at=now()))
    session.commit()
    return item
