"""Reminders (issue 16, first part): declared in YAML and checked with file:line; each user's due items
on the home page (我的待办), done and snoozed; a daily digest by e-mail (captured by a local SMTP server)
and chat robots (a local HTTP receiver), sent once, retried after a failure, run once across workers
and caught up after downtime — on SQLite, PostgreSQL and MariaDB."""
from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import threading
import urllib.parse
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app.automation.digest import Digest, tick
from app.automation.reminders import due_items
from app.automation.store import RUN_TABLE, SENT_TABLE
from app.cli import main
from app.schema import SchemaError, load_schema_text
from app.seed import DEMO_PASSWORD, demo_user_ids
from conftest import Browser, Mailbox, Receiver

ZONE = ZoneInfo("Asia/Shanghai")


# -- data ------------------------------------------------------------------------------------------

TODAY = datetime.datetime.now(ZONE).date()


def user(app: Any, username: str) -> Any:
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username)


def add(app: Any, table: str, **values: Any) -> int:
    """Insert one record through the ORM (computed fields and the audit log as on the screens)."""
    model = app.extensions["crm"].models.model(table)
    with app.app_context():
        session = app.appbuilder.session
        record = model()
        for key, value in values.items():
            setattr(record, key, value)
        session.add(record)
        session.commit()
        return int(record.id)


def workplace(app: Any) -> dict[str, int]:
    """A small, known world: zhangwei's customer with a follow-up due in two days and a licence
    expiring in 20; lina's customer with a receivable overdue since yesterday and one paid; a
    follow-up of zhangwei's done long ago with no next date."""
    with app.app_context():
        demo_user_ids(app)
        sm = app.appbuilder.sm
        zhang, lina = sm.find_user(username="zhangwei"), sm.find_user(username="lina")
        session = app.appbuilder.session
        ids: dict[str, int] = {}
        models = app.extensions["crm"].models
        customer = models.model("customer")
        for key, name, owner, licence in (("mine", "华信化工有限公司", zhang, TODAY + datetime.timedelta(days=20)),
                                          ("hers", "东方涂料有限公司", lina, None)):
            record = customer(name=name, owner=owner, hazardous_licence_expiry=licence)
            session.add(record)
            session.commit()
            ids[key] = record.id
        follow = models.model("follow_up")
        for key, subject, next_date in (("visit", "季度回访", TODAY + datetime.timedelta(days=2)),
                                        ("old", "年初拜访", None)):
            record = follow(customer=session.get(customer, ids["mine"]), subject=subject, owner=zhang,
                            visit_date=TODAY - datetime.timedelta(days=30), next_date=next_date)
            session.add(record)
            session.commit()
            ids[key] = record.id
        payment = models.model("payment")
        for key, number, paid in (("overdue", "AR-0001", Decimal("0")), ("paid", "AR-0002", Decimal("5000"))):
            record = payment(number=number, customer=session.get(customer, ids["hers"]), amount_due=Decimal("5000"),
                             paid_amount=paid, due_date=TODAY - datetime.timedelta(days=1))
            session.add(record)
            session.commit()
            ids[key] = record.id
    return ids


def items_of(app: Any, username: str, day: datetime.date = TODAY) -> list[tuple[str, int, str, str]]:
    with app.app_context():
        found = due_items(app.extensions["crm"].models, app.appbuilder.session,
                          app.appbuilder.sm.find_user(username=username), day)
        return [(i.reminder.key, i.record_id, i.when("zh"), i.message.zh) for i in found]


@pytest.fixture
def world(app: Any) -> tuple[Any, dict[str, int]]:
    return app, workplace(app)


# -- the YAML --------------------------------------------------------------------------------------

def test_reminder_mistakes_are_reported_with_file_line_and_a_hint() -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": (
            "tables:\n"
            "  t:\n"
            "    fields:\n"
            "      name: {type: string}\n"
            "      due: {type: date}\n"
            "      owner: {type: user}\n"
            "      secret: {type: string, encrypted: true}\n"
            "      kind: {type: choice, options: [open, closed]}\n"
            "reminders:\n"
            "  late:\n"
            "    table: t\n"
            "    date: name\n"
            "    to: ownr\n"
            "    when: \"kind = 'shut'\"\n"
            "    message: \"{secret} 到期\"\n"
            "  nobody: {table: t, date: due, message: x}\n")})
    assert str(caught.value).splitlines() == [
        "s.yaml:11: reminders.late.date: t.name is a string field, not a date",
        "    hint: known date fields: due",
        "s.yaml:11: reminders.late.message: the message names the encrypted field 'secret'",
        "    hint: reminders go out by e-mail and chat; leave encrypted fields out of them",
        "s.yaml:11: reminders.late.to: table 't' has no field 'ownr' (in 'ownr')",
        "    hint: did you mean 'owner'? known fields: name, due, owner, secret, kind",
        "s.yaml:11: reminders.late.when: 'shut' is not an option of t.kind",
        "    hint: known options: open, closed",
        "s.yaml:16: reminders.nobody.to: a reminder needs to: (a user field of the record) or roles:",
        "    hint: e.g. to: owner, to: customer.owner, or roles: [finance]",
        "5 problems found in the schema; nothing was started."]


def test_done_mistakes_name_the_field() -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": (
            "tables:\n"
            "  t:\n"
            "    fields:\n"
            "      name: {type: string}\n"
            "      due: {type: date}\n"
            "      owner: {type: user}\n"
            "      total: {type: money, compute: 1 + 1}\n"
            "reminders:\n"
            "  late:\n"
            "    table: t\n"
            "    date: due\n"
            "    to: owner\n"
            "    message: x\n"
            "    done: {copy: [owner, nam], today: name, ask: [due, total, owner]}\n")})
    assert str(caught.value).splitlines() == [
        "s.yaml:14: reminders.late.done: owner both copied and asked",
        "    hint: a field is either copied or asked",
        "s.yaml:14: reminders.late.done.ask: t.owner is a user field, which the 完成 form does not ask for",
        "    hint: ask for string, text, choice, date, integer, decimal, money, percent, boolean fields",
        "s.yaml:14: reminders.late.done.ask: t.total is computed; a new record cannot be given it",
        "    hint: name fields that people fill in",
        "s.yaml:14: reminders.late.done.copy: table 't' has no field 'nam'",
        "    hint: did you mean 'name'? known fields: name, due, owner, total",
        "s.yaml:14: reminders.late.done.today: t.name is a string field, not a date",
        "    hint: today: names the date field set to the day the item is done",
        "5 problems found in the schema; nothing was started."]


# -- who is reminded of what -----------------------------------------------------------------------

def test_each_kind_of_reminder_reaches_the_people_it_names(world: Any) -> None:
    app, ids = world
    assert items_of(app, "zhangwei") == [
        ("follow_up_due", ids["visit"], "还有 2 天", "回访华信化工有限公司：季度回访"),
        ("licence_expiring", ids["mine"], "还有 20 天",
         f"华信化工有限公司的危化品经营许可证将于 {TODAY + datetime.timedelta(days=20)} 到期，请索取新证")]
    overdue = ("payment_overdue", ids["overdue"], "逾期 1 天",
               f"东方涂料有限公司的应收款 AR-0001 已于 {TODAY - datetime.timedelta(days=1)} 到期，未收 5,000.00 元")
    assert items_of(app, "lina") == [overdue]  # the customer's owner; the paid one is no reminder
    assert items_of(app, "chenjing") == [overdue]  # finance, by role
    assert items_of(app, "liuyang") == []  # service: named by no reminder
    assert items_of(app, "zhangwei", TODAY - datetime.timedelta(days=15)) == []  # neither within its notice yet


def test_a_reminder_of_records_grown_old_goes_to_a_role(app: Any) -> None:
    """`after_days`: a safety data sheet revised more than three years ago is due for review, for R&D
    (by role, whoever the record's owner)."""
    with app.app_context():
        demo_user_ids(app)
    stale = add(app, "product", code="P-OLD", name="老产品", sds_revision_date=TODAY - datetime.timedelta(days=1100))
    add(app, "product", code="P-NEW", name="新产品", sds_revision_date=TODAY - datetime.timedelta(days=400))
    soon = add(app, "produc"
                    "t", code="P-SOON", name="快到期产品", sds_revision_date=TODAY - datetime.timedelta(days=1080))
    assert items_of(app, "sunli") == [
        ("sds_review", stale, "逾期 5 天", "老产品（P-OLD）的安全技术说明书已三年未修订，请复审"),
        ("sds_review", soon, "还有 15 天", "快到期产品（P-SOON）的安全技术说明书已三年未修订，请复审")]
    assert items_of(app, "zhangwei") == []


# -- my tasks --------------------------------------------------------------------------------------

def test_my_tasks_on_the_home_page_are_done_and_snoozed_by_their_owner_only(world: Any) -> None:
    app, ids = world
    zhang = Browser(app, "zhangwei", DEMO_PASSWORD)
    home = zhang.get("/").text
    assert "我的待办" in home and "回访华信化工有限公司：季度回访" in home and "还有 2 天" in home
    lina = Browser(app, "lina", DEMO_PASSWORD)
    assert "逾期 1 天" in lina.get("/").text and "crm-task-overdue" in lina.get("/").text
    stolen = lina.submit("/", {}, post_url=f"/tasks/follow_up_due/{ids['visit']}/done")
    assert stolen.status_code == 404  # zhangwei's item is not hers to settle
    done = zhang.submit("/", {"back": "home"}, post_url=f"/tasks/follow_up_due/{ids['visit']}/done")
    visit_row = f'data-reminder="follow_up_due" data-record="{ids["visit"]}"'
    assert done.status_code == 302 and visit_row not in zhang.get("/").text
    snooze = f"/tasks/licence_expiring/{ids['mine']}/snooze"
    assert zhang.submit("/tasks/", {"days": "365"}, post_url=snooze).status_code == 400
    snoozed = zhang.submit("/tasks/", {"days": "7", "back": "tasks"}, post_url=snooze)
    assert snoozed.status_code == 302 and snoozed.location.endswith("/tasks/")
    assert items_of(app, "zhangwei") == []
    assert "没有待办事项。" in zhang.get("/tasks/").text
    assert [k for k, *_ in items_of(app, "zhangwei", TODAY + datetime.timedelta(days=7))] == ["licence_expiring"]
    model = app.extensions["crm"].models.model("follow_up")
    with app.app_context():  # a new next date is a new item: due again
        app.appbuilder.session.get(model, ids["visit"]).next_date = TODAY + datetime.timedelta(days=1)
        app.appbuilder.session.commit()
    assert [k for k, *_ in items_of(app, "zhangwei")] == ["follow_up_due"]


def follow_ups(app: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        model = app.extensions["crm"].models.model("follow_up")
        rows = app.appbuilder.session.execute(sa.select(
            model.id, model.customer_id, model.subject, model.owner_id, model.visit_date, model.channel,
            model.content, model.next_date).order_by(model.id)).all()
    return [tuple(r) for r in rows]


def test_a_follow_up_done_records_the_visit_and_plans_the_next(world: Any) -> None:
    app, ids = world
    zhang = Browser(app, "zhangwei", DEMO_PASSWORD)
    form_url = f"/tasks/follow_up_due/{ids['visit']}/record"
    assert f'href="{form_url}?back=home"' in zhang.get("/").text
    page = zhang.get(form_url).text
    assert "完成：待回访" in page and "回访华信化工有限公司：季度回访" in page
    assert all(f'name="{key}"' in page for key in ("channel", "content", "next_date"))
    assert Browser(app, "lina", DEMO_PASSWORD).get(form_url).status_code == 404  # not her item
    before = follow_ups(app)
    wrong = zhang.submit(form_url, {"channel": "visit", "content": "面谈新品", "next_date": "下周"})
    assert wrong.status_code == 200 and "应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日" in wrong.text
    assert 'value="下周"' in wrong.text and "面谈新品" in wrong.text and follow_ups(app) == before
    next_date = TODAY + datetime.timedelta(days=30)
    saved = zhang.submit(form_url, {"channel": "visit", "content": "面谈新品，客户要样品", "back": "home",
                                    "next_date": next_date.strftime("%Y/%m/%d")})
    assert saved.status_code == 302
    zhang_id = user(app, "zhangwei").id
    assert follow_ups(app)[len(before):] == [(before[-1][0] + 1, ids["mine"], "季度回访", zhang_id, TODAY, "visit",
                                              "面谈新品，客户要样品", next_date)]
    assert [k for k, *_ in items_of(app, "zhangwei")] == ["licence_expiring"]  # the visit is done
    later = items_of(app, "zhangwei", next_date - datetime.timedelta(days=2))
    assert ("follow_up_due", before[-1][0] + 1, "还有 2 天", "回访华信化工有限公司：季度回访") in later
    assert zhang.get(form_url).status_code == 404  # done once


# -- the digest --------------------------------------------------------------------------------------

def digest_app(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> Any:
    robots = [{"name": "销售群", "kind": "wecom", "url": f"{receiver.url}/wecom?key=k1", "roles": ["sales"]},
              {"name": "财务群", "kind": "dingtalk", "url": f"{receiver.url}/ding?access_token=t1",
               "secret": "SECsecret", "roles": ["finance"]}]
    return make_app(CRM_SMTP_HOST="127.0.0.1", CRM_SMTP_PORT=mailbox.port, CRM_SMTP_FROM="crm@example.com",
                    CRM_ROBOTS=json.dumps(robots, ensure_ascii=False), CRM_PANEL_URL="https://crm.example.com")


def at(hour: int, minute: int = 0, day: datetime.date = TODAY) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time(hour, minute), ZONE)


def test_the_daily_digest_goes_by_mail_and_robot_once(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    app = digest_app(make_app, mailbox, receiver)
    ids = workplace(app)
    with app.app_context():
        assert tick(app, at(7, 59)).startswith(f"digest of {TODAY - datetime.timedelta(days=1)} ran")  # catch-up
        assert tick(app, at(9)) .startswith(f"digest of {TODAY} ran")
        assert tick(app, at(9, 5)) == "nothing to do"
    mails = mailbox.to("zhangwei@localhost")
    assert len(mails) == 1  # once: the later runs had nothing new for him
    body = mails[0].get_content()
    assert mails[0]["Subject"] == f"【化工客户管理】{TODAY} 待办 2 项"
    assert "待回访 · 回访华信化工有限公司：季度回访（还有 2 天）" in body
    assert f"https://crm.example.com/t/follow_up/show/{ids['visit']}" in body
    assert mailbox.to("liuyang@localhost") == []
    wecom = [body for path, body in receiver.posts if path.startswith("/wecom")]
    assert len(wecom) == 1 and wecom[0]["msgtype"] == "markdown"
    content = wecom[0]["markdown"]["content"]
    assert "**张伟**（2 项）" in content and "**李娜**（1 项）" in content
    path, ding = next((p, b) for p, b in receiver.posts if p.startswith("/ding"))
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
    expected = base64.b64encode(hmac.new(b"SECsecret", f"{query['timestamp'][0]}\nSECsecret".encode(),
                                         hashlib.sha256).digest()).decode()
    assert query["access_token"] == ["t1"] and query["sign"] == [expected]  # a signed 钉钉 robot
    assert "【逾期】应收款逾期 · 东方涂料有限公司的应收款 AR-0001" in ding["markdown"]["text"]
    with app.app_context():
        again = Digest(app, TODAY).run()  # by hand (crm reminders run): nothing is sent twice
        assert again.sent == {} and len(mailbox.messages) == 3
        sent = app.appbuilder.session.execute(sa.select(SENT_TABLE.c.channel, sa.func.count()).group_by(
            SENT_TABLE.c.channel).order_by(SENT_TABLE.c.channel)).all()
    assert [tuple(r) for r in sent] == [("email", 4), ("robot:财务群", 1), ("robot:销售群", 3)]
    new = add(app, "follow_up", customer_id=ids["mine"], subject="样品跟进", owner_id=user(app, "zhangwei").id,
              visit_date=TODAY, next_date=TODAY + datetime.timedelta(days=1))
    with app.app_context():
        assert tick(app, at(8, 1, TODAY + datetime.timedelta(days=1))).startswith("digest of")
    later = mailbox.to("zhangwei@localhost")[-1].get_content()
    assert "样品跟进" in later and "季度回访" not in later  # only what he was not sent before
    assert new


def test_a_failed_sending_is_recorded_and_retried(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    app = digest_app(make_app, mailbox, receiver)
    workplace(app)
    receiver.failing = True
    with app.app_context():
        assert "failed" in tick(app, at(9))
        failed = app.appbuilder.session.execute(sa.select(SENT_TABLE.c.channel, SENT_TABLE.c.status,
                                                          SENT_TABLE.c.attempts, SENT_TABLE.c.error).where(
            SENT_TABLE.c.channel == "robot:销售群")).all()
        assert {tuple(r)[:3] for r in failed} == {("robot:销售群", "failed", 1)}
        assert failed[0].error == "robot 销售群 refused: 310000 keywords not in content"
        assert tick(app, at(9, 1)) == "nothing to do"  # the first retry waits five minutes
        receiver.failing = False
        earlier = datetime.datetime.now(datetime.UTC).replace(tzinfo=None) - datetime.timedelta(minutes=6)
        app.appbuilder.session.execute(SENT_TABLE.update().values(at=earlier))
        app.appbuilder.session.commit()
        assert tick(app, at(9, 10)).startswith("retried: ")
        statuses = app.appbuilder.session.execute(sa.select(SENT_TABLE.c.status, SENT_TABLE.c.attempts).where(
            SENT_TABLE.c.channel == "robot:销售群")).all()
    assert {tuple(r) for r in statuses} == {("sent", 2)}
    assert len([p for p, _ in receiver.posts if p.startswith("/wecom")]) == 2  # the failed one, then the retry
    assert len(mailbox.to("zhangwei@localhost")) == 1  # e-mail did not fail: not sent again


def test_two_workers_run_the_days_digest_once(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    first = digest_app(make_app, mailbox, receiver)
    workplace(first)
    second = digest_app(make_app, mailbox, receiver)
    answers: list[str] = []
    barrier = threading.Barrier(2)

    def worker(app: Any) -> None:
        with app.app_context():
            barrier.wait()
            answers.append(tick(app, at(9)))
            app.appbuilder.session.remove()
    threads = [threading.Thread(target=worker, args=(app,)) for app in (first, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(a.split(":")[0] for a in answers) == [f"digest of {TODAY} ran", "nothing to do"]
    assert len(mailbox.to("zhangwei@localhost")) == 1
    with first.app_context():
        runs = first.appbuilder.session.execute(sa.select(RUN_TABLE.c.day, RUN_TABLE.c.finished_at)).all()
    assert len(runs) == 1 and runs[0].finished_at is not None


def test_the_command_line_lists_and_sends_reminders(world: Any, monkeypatch: Any) -> None:
    app, ids = world
    for key, value in app.config.items():
        if key.startswith("CRM_") and isinstance(value, str | int) and not isinstance(value, bool):
            monkeypatch.setenv(key, str(value))
    runner = CliRunner()
    listed = runner.invoke(main, ["reminders", "list", "--as", "zhangwei"])
    assert listed.exit_code == 0, listed.output
    assert f"待回访: 回访华信化工有限公司：季度回访  [follow_up #{ids['visit']}]" in listed.output
    assert listed.output.endswith("共 2 项\n")
    dry = runner.invoke(main, ["reminders", "run", "--dry-run"])
    assert dry.exit_code == 0 and dry.output.endswith("Dry run: 0 messages\n")  # no mail server, no robots set


def test_two_worker_processes_started_together_send_the_digest_once(make_app: Any, mailbox: Mailbox,
                                                                     tmp_path: Any) -> None:
    """Real `crm worker` processes: each checks the reminders as it starts (a digest missed while no
    worker ran goes out then); the database lets one of them run the day's digest."""
    import os
    import signal
    import time

    from conftest import start_worker
    app = make_app()
    workplace(app)
    settings = {"CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(mailbox.port), "CRM_REMINDER_TIME": "00:00"}
    logs = [tmp_path / f"worker{n}.log" for n in (1, 2)]
    workers = [start_worker(app, log, **settings) for log in logs]
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not all("Reminders:" in log.read_text(errors="replace") for log in logs
                                                  if log.exists()):
            time.sleep(0.2)
        said = sorted(line.split("Reminders: ", 1)[1] for log in logs for line in log.read_text().splitlines()
                      if line.startswith("Reminders: "))
    finally:
        for worker in workers:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(timeout=30)
    assert len(said) == 2 and said[0].startswith(f"digest of {TODAY} ran: sent email: 4"), said
    assert said[1] == "nothing to do", said
    assert [m["Subject"] for m in mailbox.to("zhangwei@localhost")] == [f"【化工客户管理】{TODAY} 待办 2 项"]
