"""分享: a record's link or dossier PDF sent to colleagues who may read it (e-mail captured by a local
SMTP server) and to a group robot (a local HTTP receiver), with a note; everything else refused."""
from __future__ import annotations

import json
import re
from typing import Any

import sqlalchemy as sa

from app.seed import DEMO_PASSWORD, demo_user_ids
from conftest import Browser, Mailbox, Receiver
from test_record_rules import orm_add


def shared_app(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> Any:
    robots = [{"name": "经理群", "kind": "wecom", "url": f"{receiver.url}/wecom?key=k1", "roles": ["sales_manager"]},
              {"name": "销售群", "kind": "wecom", "url": f"{receiver.url}/wecom?key=k2", "roles": ["sales"]}]
    app = make_app(CRM_SMTP_HOST="127.0.0.1", CRM_SMTP_PORT=mailbox.port, CRM_SMTP_FROM="crm@example.com",
                   CRM_ROBOTS=json.dumps(robots, ensure_ascii=False), CRM_PANEL_URL="https://crm.example.com")
    with app.app_context():
        demo_user_ids(app)
        app.ids = {u: app.appbuilder.sm.find_user(username=u).id for u in ("zhangwei", "lina", "zhaomin", "chenjing")}
    app.ids["customer"] = orm_add(app, "customer", name="华信化工有限公司", owner_id=app.ids["zhangwei"])
    return app


def shares(app: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        rows = app.appbuilder.session.execute(sa.text(
            "SELECT username, record_id, changes FROM crm_audit WHERE action = 'share' ORDER BY id")).all()
    return [(u, r, json.loads(c)) for u, r, c in rows]


def test_a_record_is_shared_with_colleagues_who_may_read_it(make_app: Any, mailbox: Mailbox,
                                                             receiver: Receiver) -> None:
    app = shared_app(make_app, mailbox, receiver)
    zhang = Browser(app, "zhangwei", DEMO_PASSWORD)
    url = f"/share/customer/{app.ids['customer']}"
    assert f'href="{url}"' in zhang.get(f"/t/customer/show/{app.ids['customer']}").text
    form = zhang.get(url).text
    offered = set(re.findall(r'name="user" value="(\d+)"', form))
    assert str(app.ids["zhaomin"]) in offered and str(app.ids["chenjing"]) in offered
    assert str(app.ids["lina"]) not in offered  # another salesperson does not read his customer
    assert re.findall(r'name="robot" value="([^"]+)"', form) == ["经理群"]  # 销售群: sales read their own rows only
    sent = zhang.submit(url, {"user": [str(app.ids["zhaomin"])], "robot": ["经理群"], "pdf": "customer_dossier",
                              "note": "请关注回款"})
    assert sent.status_code == 302 and sent.location.endswith(f"/t/customer/show/{app.ids['customer']}")
    mails = mailbox.to("zhaomin@localhost")
    assert len(mails) == 1 and mails[0]["Subject"] == "张伟分享了客户：华信化工有限公司"
    body = mails[0].get_body(("plain",)).get_content()
    assert "附言：请关注回款" in body and f"https://crm.example.com/t/customer/show/{app.ids['customer']}" in body
    pdf = [part for part in mails[0].iter_attachments()]
    assert [p.get_filename() for p in pdf] == [f"客户档案-{app.ids['customer']}.pdf"]
    assert pdf[0].get_content().startswith(b"%PDF")
    assert [b["markdown"]["content"] for p, b in receiver.posts] == [
        f"**张伟 分享了客户**\n[华信化工有限公司](https://crm.example.com/t/customer/show/{app.ids['customer']})\n"
        "> 请关注回款"]
    assert shares(app) == [("zhangwei", app.ids["customer"], {"to": ["赵敏", "经理群"], "failed": [],
                                                             "note": "请关注回款", "pdf": "customer_dossier"})]


def test_crafted_recipients_and_records_are_refused(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    app = shared_app(make_app, mailbox, receiver)
    zhang = Browser(app, "zhangwei", DEMO_PASSWORD)
    url = f"/share/customer/{app.ids['customer']}"
    assert zhang.submit(url, {"user": [str(app.ids["lina"])]}).status_code == 400
    assert zhang.submit(url, {"robot": ["销售群"]}).status_code == 400
    empty = zhang.submit(url, {"note": "x"})
    assert empty.status_code == 400 and "请至少选择一位同事或一个群" in empty.text
    lina = Browser(app, "lina", DEMO_PASSWORD)
    assert lina.get(url).status_code == 404  # not a record she reads
    assert zhang.get("/share/no_table/1").status_code == 404
    assert mailbox.messages == [] and receiver.posts == [] and shares(app) == []


def test_a_failed_sending_is_said_and_audited(make_app: Any, mailbox: Mailbox, receiver: Receiver) -> None:
    app = shared_app(make_app, mailbox, receiver)
    app.config["CRM_SMTP_PORT"] = 1  # nothing listens there
    zhang = Browser(app, "zhangwei", DEMO_PASSWORD)
    sent = zhang.submit(f"/share/customer/{app.ids['customer']}", {"user": [str(app.ids["chenjing"])],
                                                                   "robot": ["经理群"]})
    assert sent.status_code == 302
    page = zhang.get(sent.location).text
    assert "已分享给：经理群" in page and "未能发送：陈静: mail server 127.0.0.1:1" in page
    (who, record, changes), = shares(app)
    assert changes["to"] == ["经理群"] and changes["failed"][0].startswith("陈静: mail server 127.0.0.1:1")
