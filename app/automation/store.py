"""The reminders' own tables, in the panel's database so every app server and worker shares them:
what a user did with an item (done, snoozed), what was sent to whom by which channel (so that nothing
is sent twice and failures are retried), and which day's digest ran (so that it runs once)."""
from __future__ import annotations

import datetime

import sqlalchemy as sa

REMINDERS_METADATA = sa.MetaData()

# An item is one reminder for one record falling due on one day: when the record's date moves (a new
# next follow-up date), it is a new item, not yet done or sent.
STATE_TABLE = sa.Table(
    "crm_reminder_state", REMINDERS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reminder", sa.String(63), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # done | snoozed
    sa.Column("until", sa.Date),  # snoozed: shown again from this day
    sa.Column("user_id", sa.Integer),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("reminder", "record_id", "due_on", name="uq_crm_reminder_state_item"),
)
SENT_TABLE = sa.Table(
    "crm_reminder_sent", REMINDERS_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("reminder", sa.String(63), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("due_on", sa.Date, nullable=False),
    sa.Column("user_id", sa.Integer, nullable=False),
    sa.Column("channel", sa.String(80), nullable=False),  # email | robot:<name>
    sa.Column("status", sa.String(16), nullable=False),  # sent | failed
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("error", sa.String(500)),
    sa.Column("at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("reminder", "record_id", "due_on", "user_id", "channel", name="uq_crm_reminder_sent_item"),
)
RUN_TABLE = sa.Table(
    "crm_reminder_run", REMINDERS_METADATA,
    sa.Column("day", sa.Date, primary_key=True),  # the digest of a day runs once, whichever worker wins
    sa.Column("started_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("worker", sa.String(255)),
    sa.Column("summary", sa.String(500)),
)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)
