"""The daily digest: each active user's due items that were not sent yet, by e-mail and to the chat
robots of their roles; every sending recorded per item, user and channel, so nothing is sent twice
and failures are tried again (up to MAX_ATTEMPTS, each later than the one before).

The digest of a day runs once across every app server and worker: the first to insert the day's row
in crm_reminder_run runs it. A worker checks every few minutes, so a day missed while every worker
was down is caught up by the first check after one starts.
"""
from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy import orm

from app.security.gate import role_keys
from app.security.users import display_name

from .channels import SendFailed, send_email, send_robot
from .reminders import Item, due_items
from .store import RUN_TABLE, SENT_TABLE, now

MAX_ATTEMPTS = 5
STALE_RUN = datetime.timedelta(minutes=30)  # a run whose worker went silent this long is taken over
Sender = Callable[..., None]


@dataclass
class DigestReport:
    """What a digest did (or, dry, would do): per channel, the items sent and the sendings that failed."""

    day: datetime.date
    sent: dict[str, int] = field(default_factory=dict)  # channel → items
    failed: dict[str, str] = field(default_factory=dict)  # "channel user" → why
    planned: list[str] = field(default_factory=list)  # dry run: what would go where

    def summary(self) -> str:
        sent = ", ".join(f"{channel}: {count}" for channel, count in sorted(self.sent.items())) or "nothing new"
        return f"sent {sent}" + (f"; {len(self.failed)} failed" if self.failed else "")


def today_in(app: Any) -> datetime.datetime:
    return datetime.datetime.now(ZoneInfo(app.config["CRM_TIMEZONE"]))


def record_url(app: Any, item: Item) -> str:
    return f"{app.config['CRM_PANEL_URL']}/t/{item.table.key}/show/{item.record_id}"


def item_line(app: Any, item: Item, lang: str = "zh") -> str:
    mark = ("【逾期】" if lang == "zh" else "[overdue] ") if item.overdue else ""
    return f"{mark}{item.reminder.label.text(lang)} · {item.message.text(lang)}（{item.when(lang)}）"


def email_text(app: Any, user: Any, items: list[Item], day: datetime.date) -> tuple[str, str]:
    """Return the subject and body of a user's digest e-mail."""
    overdue = sum(1 for i in items if i.overdue)
    subject = f"【{app.config['APP_NAME']}】{day} 待办 {len(items)} 项" + (f"（逾期 {overdue} 项）" if overdue else "")
    lines = [f"{display_name(user, 'zh')}，您好：", "", f"今天（{day}）有 {len(items)} 项待办：", ""]
    for item in items:
        lines += [item_line(app, item), f"  {record_url(app, item)}", ""]
    lines += [f"在{app.config['APP_NAME']}首页的“我的待办”中可以标记完成或推迟：{app.config['CRM_PANEL_URL']}/"]
    return subject, "\n".join(lines)


def robot_text(app: Any, robot: dict[str, Any], people: list[tuple[Any, list[Item]]], day: datetime.date) -> str:
    """Return a robot's markdown message: each person's new items, with links."""
    total = sum(len(items) for _, items in people)
    lines = [f"### {app.config['APP_NAME']} · {day} 待办 {total} 项"]
    for user, items in people:
        lines.append(f"**{display_name(user, 'zh')}**（{len(items)} 项）")
        lines += [f"- {item_line(app, item)} [打开]({record_url(app, item)})" for item in items]
    return "\n".join(lines)


class Digest:
    """One run of the digest for a day, as the app's settings say where to send."""

    def __init__(self, app: Any, day: datetime.date, dry_run: bool = False, retry_only: bool = False,
                 email: Sender = send_email, robot: Sender = send_robot):
        self.app, self.day, self.dry_run, self.retry_only = app, day, dry_run, retry_only
        self.email, self.robot = email, robot
        self.session: orm.Session = app.appbuilder.session
        self.models = app.extensions["crm"].models
        self.report = DigestReport(day)

    def run(self) -> DigestReport:
        users = self.session.execute(sa.select(self.app.appbuilder.sm.user_model).where(
            self.app.appbuilder.sm.user_model.active.is_(True))).scalars().all()
        items = {user.id: due_items(self.models, self.session, user, self.day) for user in users}
        if self.app.config["CRM_SMTP_HOST"]:
            for user in users:
                if user.email:
                    self.send_email(user, items[user.id])
        for robot in self.app.config["CRM_ROBOTS"]:
            members = [u for u in users if set(role_keys(u)) & set(robot["roles"])]
            self.send_robot(robot, [(u, items[u.id]) for u in members])
        return self.report

    def unsent(self, user: Any, channel: str, items: list[Item]) -> list[Item]:
        """Return the items not yet sent to the user by the channel (a retry: those that failed before,
        fewer than MAX_ATTEMPTS times)."""
        rows = {(r.reminder, r.record_id, r.due_on): r for r in self.session.execute(sa.select(SENT_TABLE).where(
            SENT_TABLE.c.user_id == user.id, SENT_TABLE.c.channel == channel))}
        found = []
        for item in items:
            row = rows.get(item.key)
            if row is None and not self.retry_only or row is not None and row.status == "failed" \
                    and row.attempts < MAX_ATTEMPTS:
                found.append(item)
        return found

    def send_email(self, user: Any, items: list[Item]) -> None:
        new = self.unsent(user, "email", items)
        if not new:
            return
        subject, text = email_text(self.app, user, new, self.day)
        self.deliver("email", [(user, new)], lambda: self.email(self.app.config, user.email, subject, text),
                     f"e-mail to {user.email}: {subject}")

    def send_robot(self, robot: dict[str, Any], people: list[tuple[Any, list[Item]]]) -> None:
        channel = f"robot:{robot['name']}"
        new = [(user, self.unsent(user, channel, items)) for user, items in people]
        new = [(user, items) for user, items in new if items]
        if not new:
            return
        text = robot_text(self.app, robot, new, self.day)
        self.deliver(channel, new, lambda: self.robot(robot, f"{self.day} 待办", text),
                     f"{robot['kind']} robot {robot['name']}: {sum(len(i) for _, i in new)} items")

    def deliver(self, channel: str, people: list[tuple[Any, list[Item]]], send: Callable[[], None],
                described: str) -> None:
        """Send one message, then record its items as sent (or failed, with why) for each person."""
        if self.dry_run:
            self.report.planned.append(described)
            return
        error = None
        try:
            send()
        except SendFailed as exc:
            error = str(exc)
            self.report.failed[f"{channel} {people[0][0].username}"] = error
        for user, items in people:
            record(self.session, user, channel, items, error)
            if error is None:
                self.report.sent[channel] = self.report.sent.get(channel, 0) + len(items)
        self.session.commit()


def record(session: orm.Session, user: Any, channel: str, items: list[Item], error: str | None) -> None:
    """Record one sending of items to a user by a channel: sent, or failed (attempts counted)."""
    for item in items:
        where = (SENT_TABLE.c.reminder == item.reminder.key, SENT_TABLE.c.record_id == item.record_id,
                 SENT_TABLE.c.due_on == item.due_on, SENT_TABLE.c.user_id == user.id, SENT_TABLE.c.channel == channel)
        attempts = session.execute(sa.select(SENT_TABLE.c.attempts).where(*where)).scalar()
        values = {"status": "failed" if error else "sent", "attempts": (attempts or 0) + 1, "error": error,
                  "at": now()}
        if attempts is None:
            session.execute(SENT_TABLE.insert().values(reminder=item.reminder.key, record_id=item.record_id,
                                                       due_on=item.due_on, user_id=user.id, channel=channel, **values))
        else:
            session.execute(SENT_TABLE.update().where(*where).values(**values))


def digest_day(app: Any, moment: datetime.datetime) -> datetime.date:
    """Return the latest day whose digest time has come by `moment` (local time)."""
    hour, minute = (int(part) for part in app.config["CRM_REMINDER_TIME"].split(":"))
    due = moment.replace(hour=hour, minute=minute, second=0, microsecond=0)
    return moment.date() if moment >= due else moment.date() - datetime.timedelta(days=1)


def claim(session: orm.Session, day: datetime.date) -> bool:
    """Claim the day's digest for this worker: True when no other worker has it (or its worker went
    silent mid-run). The database decides: one row per day."""
    worker = f"{socket.gethostname()}:{os.getpid()}"
    row = session.execute(sa.select(RUN_TABLE.c.finished_at, RUN_TABLE.c.started_at)
                          .where(RUN_TABLE.c.day == day)).first()
    session.commit()
    if row is not None and (row.finished_at is not None or row.started_at >= now() - STALE_RUN):
        return False  # run, or running: no insert to fail every minute
    try:
        session.execute(RUN_TABLE.insert().values(day=day, started_at=now(), worker=worker))
        session.commit()
        return True
    except sa.exc.IntegrityError:
        session.rollback()
    taken = session.execute(RUN_TABLE.update().where(
        RUN_TABLE.c.day == day, RUN_TABLE.c.finished_at.is_(None), RUN_TABLE.c.started_at < now() - STALE_RUN)
        .values(started_at=now(), worker=worker))
    session.commit()
    return bool(taken.rowcount)  # type: ignore[attr-defined]


def retries_due(session: orm.Session) -> bool:
    """Return True when a failed sending waits for another try and its back-off has passed."""
    rows = session.execute(sa.select(SENT_TABLE.c.attempts, SENT_TABLE.c.at).where(
        SENT_TABLE.c.status == "failed", SENT_TABLE.c.attempts < MAX_ATTEMPTS)).all()
    moment = now()
    return any(moment - at >= datetime.timedelta(minutes=5 * 2 ** (attempts - 1)) for attempts, at in rows)


def tick(app: Any, moment: datetime.datetime | None = None, email: Sender = send_email,
         robot: Sender = send_robot) -> str:
    """Run the digest of the latest day due if no worker has, else retry failed sendings whose time
    has come; return what was done (for the worker's log)."""
    moment = moment or today_in(app)
    day = digest_day(app, moment)
    session = app.appbuilder.session
    if claim(session, day):
        report = Digest(app, moment.date(), email=email, robot=robot).run()
        session.execute(RUN_TABLE.update().where(RUN_TABLE.c.day == day).values(
            finished_at=now(), summary=report.summary()[:500]))
        session.commit()
        return f"digest of {day} ran: {report.summary()}"
    if retries_due(session):
        report = Digest(app, moment.date(), retry_only=True, email=email, robot=robot).run()
        return f"retried: {report.summary()}"
    return "nothing to do"
