"""Record rules (`rules:` on a table): the schema checks, and each rule on screens, API and import alike.

The default schema's order rules: credit_limit refuses a confirmed order whose total plus the
customer's open receivables is over the customer's credit limit, unless the writer is in finance;
delivery_before_order warns when the delivery date is before the order date.
"""
from __future__ import annotations

import datetime
import io
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from app.models.rules import RuleRefused
from app.schema import SchemaError, load_schema_text
from app.security.acting import acting_as
from app.seed import DEMO_PASSWORD, demo_user_ids
from conftest import Api, Browser
from test_transfer import run_import, workbook

BASE = """
tables:
  customer:
    fields:
      name: {type: string, required: true}
      limit: {type: money}
      grade: {type: choice, options: [A, B]}
      secret: {type: string, encrypted: true}
  bill:
    fields:
      customer: {type: link, to: customer, required: true}
      amount: {type: money}
      note: {type: string}
    rules:
"""


def problems(rule: str) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"schema/t.yaml": BASE + "      " + rule + "\n"})
    return [f"{i.path}: {i.message} | {i.hint}" for i in caught.value.issues]


@pytest.mark.parametrize("rule,expected", [
    ("big: {when: amount > customer.limt, refuse: too much}",
     "tables.bill.rules.big.when: 'limt' is not a field of customer (in 'customer.limt') | did you mean 'limit'? "
     "known fields: name, limit, grade, secret"),
    ("big: {when: amount > note.limit, refuse: too much}",
     "tables.bill.rules.big.when: 'note' is a string field, not a link, so 'note.limit' leads nowhere | a dotted "
     "path follows link fields: customer.credit_limit"),
    ("big: {when: \"customer.grade = 'C'\", warn: grade C}",
     "tables.bill.rules.big.when: 'C' is not an option of customer.grade | known options: A, B"),
    ("big: {when: \"customer.secret = 'x'\", warn: secret}",
     "tables.bill.rules.big.when: 'customer.secret' is encrypted; a rule cannot compare it | compare fields that "
     "are not encrypted"),
    ("big: {when: amount > 1, refuse: too much, unless_roles: [finanse]}",
     "tables.bill.rules.big.unless_roles: there is no role 'finanse' | declare it under roles:"),
    ("big: {when: amount > 1, refuse: a, warn: b}",
     "tables.bill.rules.big: a rule either refuses or warns, not both | refuse: stops the write; warn: lets the "
     "user confirm it"),
    ("big: {refuse: too much}",
     "tables.bill.rules.big.when: a rule needs when: (the condition it catches) | e.g. when: total + "
     "customer.open_receivables > customer.credit_limit"),
    ("big: {when: amount >, refuse: too much}",
     "tables.bill.rules.big.when: expected a field, a number or '(', found the end (at character 9 of 'amount >') "
     "| e.g. when: total + customer.open_receivables > customer.credit_limit"),
    ("big: {when: amount > 1, refuse: 'over {amont}'}",
     "tables.bill.rules.big.refuse: the message names '{amont}', which is not a field of bill | did you mean "
     "'amount'? known fields: customer, amount, note; write {{ and }} for braces"),
    ("big: {when: amount > 1, refuse: too much, only: [create]}",
     "tables.bill.rules.big.only: unknown key 'only' | known rule keys: label, refuse, unless_roles, warn, when"),
])
def test_rule_mistakes_are_reported_with_file_line_and_a_hint(rule: str, expected: str) -> None:
    assert expected in problems(rule)


def test_a_compute_reading_another_records_field_is_told_to_use_a_rule_or_default_from() -> None:
    text = BASE.replace("      note: {type: string}", "      note: {type: string}\n"
                        "      share: {type: money, compute: amount / customer.limit}").removesuffix("    rules:\n")
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"schema/t.yaml": text})
    assert [i.message for i in caught.value.issues] == [
        "'customer.limit' is a field of another record; a computed value reads its own record's fields and sums of "
        "the records that link to it"]


# -- the default schema's order rules ------------------------------------------------------------

REFUSED = ("华信化工有限公司的信用额度为 1,000,000.00 元，未结应收款 1,900,000.00 元，加上本订单 900,000.00 元已超出"
           "额度：此订单需财务审批，请保存为草稿并请财务确认")


def orm_add(app: Any, table: str, **values: Any) -> int:
    """Insert a record as the command line would (no person: the rules do not check it)."""
    with app.app_context():
        session = app.appbuilder.session
        record = app.extensions["crm"].models.model(table)(**values)
        session.add(record)
        session.commit()
        return int(record.id)


@pytest.fixture
def trade(app: Any) -> Any:
    """A customer of zhangwei (sales) with a credit limit of 1,000,000 and 1,900,000 outstanding, and
    a product at 1,000 per kg."""
    with app.app_context():
        demo_user_ids(app)
        zhang = app.appbuilder.sm.find_user(username="zhangwei").id
    customer = orm_add(app, "customer", name="华信化工有限公司", owner_id=zhang, credit_limit=Decimal("1000000"))
    orm_add(app, "payment", number="AR-1", customer_id=customer, amount_due=Decimal("1900000"),
            paid_amount=Decimal("0"))
    app.ids = {"customer": customer,
               "product": orm_add(app, "product", code="P1", name="乙酸乙酯", unit_price=Decimal("1000"))}
    return app


def order_row(app: Any, pk: int) -> tuple[Any, ...]:
    with app.app_context():
        order = app.extensions["crm"].models.model("order")
        row = app.appbuilder.session.execute(sa.select(order.status, order.total, order.notes).where(
            order.id == pk)).one()
    return row.status, f"{row.total:.2f}", row.notes


def order_id(app: Any, number: str) -> int:
    """Return the id of an order (ids of rolled-back inserts are used up on PostgreSQL and MariaDB)."""
    with app.app_context():
        order = app.extensions["crm"].models.model("order")
        return int(app.appbuilder.session.execute(sa.select(order.id).where(order.number == number)).scalar_one())


def audit_rules(app: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        rows = app.appbuilder.session.execute(sa.text(
            "SELECT username, table_key, record_id, changes FROM crm_audit WHERE action = 'rule' ORDER BY id")).all()
    return [(u, t, r, json.loads(c)["rule"]) for u, t, r, c in rows]


def test_a_salesperson_cannot_confirm_an_order_over_the_credit_limit_on_the_screen(trade: Any) -> None:
    zhang = Browser(trade, "zhangwei", DEMO_PASSWORD)
    form = {"number": "SO-900", "customer": str(trade.ids["customer"]), "order_date": "2026-12-01",
            "status": "confirmed", "currency": "CNY",
            "order_line-0-product": str(trade.ids["product"]), "order_line-0-quantity": "900"}
    posted = zhang.submit("/t/order/add", form)
    assert posted.status_code == 200 and REFUSED in posted.text
    assert 'value="SO-900"' in posted.text and 'value="900"' in posted.text  # what was typed is still there
    assert Api(trade).get("/api/v1/order/").json["count"] == 0
    draft = zhang.submit("/t/order/add", {**form, "status": "draft"})
    assert draft.status_code == 302
    pk = int(draft.headers["Location"].rsplit("/", 1)[1])
    assert order_row(trade, pk) == ("draft", "900000.00", None)
    # finance approves it: their role is named in unless_roles; the pass is in the audit log
    finance = Browser(trade, "chenjing", DEMO_PASSWORD)
    page = finance.get(f"/t/order/edit/{pk}").text
    version = re.search(r'name="row_version"[^>]*value="(\d+)"', page) or re.search(
        r'value="(\d+)"[^>]*name="row_version"', page)
    approved = finance.submit(f"/t/order/edit/{pk}", {"status": "confirmed", "notes": "财务已审批",
                                                       "row_version": version.group(1) if version else ""})
    assert approved.status_code == 302, approved.text
    assert order_row(trade, pk) == ("confirmed", "900000.00", "财务已审批")
    assert audit_rules(trade) == [("chenjing", "order", pk, "order.credit_limit")]
    history = Browser(trade).get(f"/t/order/show/{pk}").text
    assert "通过规则" in history and "信用额度审批" in history


def test_the_api_refuses_names_the_numbers_and_leaves_the_order_as_it_was(trade: Any) -> None:
    zhang = Api(trade, "zhangwei", DEMO_PASSWORD)
    pk = zhang.post("/api/v1/order/", json={"number": "SO-1", "customer": trade.ids["customer"],
                                             "order_date": "2026-12-01"}).json["id"]
    line = zhang.post("/api/v1/order_line/", json={"order": pk, "product": trade.ids["product"], "quantity": "900"})
    assert line.status_code == 201  # a draft is not checked
    refused = zhang.put(f"/api/v1/order/{pk}", json={"status": "confirmed"})
    assert (refused.status_code, refused.json["message"]) == (422, REFUSED)
    assert order_row(trade, pk) == ("draft", "900000.00", None)
    english = zhang.put(f"/api/v1/order/{pk}", json={"status": "confirmed"}, headers={"Accept-Language": "en"})
    assert english.json["message"].startswith("华信化工有限公司 has a credit limit of 1,000,000.00 CNY and "
                                              "1,900,000.00 CNY of open receivables; with this order's 900,000.00")
    # a confirmation header does not pass a refusal
    crafted = zhang.put(f"/api/v1/order/{pk}", json={"status": "confirmed"},
                        headers={"X-Confirm-Rules": "order.credit_limit"})
    assert crafted.status_code == 422 and order_row(trade, pk)[0] == "draft"


def test_a_line_added_to_an_approved_order_is_checked_but_its_notes_are_not(trade: Any) -> None:
    zhang = Api(trade, "zhangwei", DEMO_PASSWORD)
    pk = zhang.post("/api/v1/order/", json={"number": "SO-2", "customer": trade.ids["customer"],
                                             "order_date": "2026-12-01"}).json["id"]
    zhang.post("/api/v1/order_line/", json={"order": pk, "product": trade.ids["product"], "quantity": "10"})
    assert Api(trade, "chenjing", DEMO_PASSWORD).put(f"/api/v1/order/{pk}", json={"status": "confirmed"}
                                                     ).status_code == 200
    assert zhang.put(f"/api/v1/order/{pk}", json={"notes": "周五发货"}).status_code == 200
    more = zhang.post("/api/v1/order_line/", json={"order": pk, "product": trade.ids["product"], "quantity": "5"})
    assert more.status_code == 422 and "加上本订单 15,000.00 元已超出额度" in more.json["message"]
    assert order_row(trade, pk) == ("confirmed", "10000.00", "周五发货")


def test_a_warning_is_confirmed_on_the_screen_and_the_confirmation_audited(trade: Any) -> None:
    browser = Browser(trade)
    form = {"number": "SO-3", "customer": str(trade.ids["customer"]), "order_date": "2026-12-10",
            "delivery_date": "2026-12-01", "status": "draft", "currency": "CNY"}
    posted = browser.submit("/t/order/add", form)
    assert posted.status_code == 200
    assert "未保存：请核对下面的提示，勾选确认后再次保存。" in posted.text
    assert re.search(r'<input type="checkbox" name="crm_confirm" value="order.delivery_before_order">\s*'
                     r'<strong>确认 交货日期早于下单日期</strong>：交货日期 2026-12-01 早于下单日期 2026-12-10，请确认',
                     posted.text)
    assert Api(trade).get("/api/v1/order/").json["count"] == 0
    confirmed = browser.submit("/t/order/add", {**form, "crm_confirm": "order.delivery_before_order"})
    assert confirmed.status_code == 302
    assert audit_rules(trade) == [("admin", "order", order_id(trade, "SO-3"), "order.delivery_before_order")]


def test_a_warning_through_the_api_is_409_until_its_rule_is_named(trade: Any) -> None:
    api = Api(trade)
    body = {"number": "SO-4", "customer": trade.ids["customer"], "order_date": "2026-12-10",
            "delivery_date": "2026-12-01"}
    warned = api.post("/api/v1/order/", json=body)
    assert warned.status_code == 409
    assert warned.json == {"message": "交货日期 2026-12-01 早于下单日期 2026-12-10，请确认",
                           "confirm": ["order.delivery_before_order"]}
    wrong = api.post("/api/v1/order/", json=body, headers={"X-Confirm-Rules": "order.credit_limit"})
    assert wrong.status_code == 409 and api.get("/api/v1/order/").json["count"] == 0
    passed = api.post("/api/v1/order/", json=body, headers={"X-Confirm-Rules": "order.delivery_before_order"})
    assert passed.status_code == 201
    assert audit_rules(trade) == [("admin", "order", passed.json["id"], "order.delivery_before_order")]


def test_imports_refuse_or_ask_to_confirm_row_by_row(trade: Any) -> None:
    data = workbook(["订单号", "客户", "下单日期", "订单状态", "交货日期"],
                    ["SO-10", "华信化工有限公司", "2026-12-10", "草稿", "2026-12-01"],
                    ["SO-11", "华信化工有限公司", "2026-12-10", "草稿", "2026-12-20"], sheet="销售订单")
    result = run_import(trade, "order", "orders.xlsx", data)
    assert [p.row for p in result.problems] == [2]
    assert result.problems[0].message.zh == ("交货日期 2026-12-01 早于下单日期 2026-12-10，请确认"
                                             "（如确认无误，勾选“确认规则提示”后重新导入；命令行：--confirm-rules）")
    assert Api(trade).get("/api/v1/order/").json["count"] == 0
    passed = run_import(trade, "order", "orders.xlsx", data, confirm_rules=True)
    assert passed.problems == [] and passed.counts["insert"] == 2
    assert audit_rules(trade) == [("admin", "order", order_id(trade, "SO-10"), "order.delivery_before_order")]


def approved_order(app: Any, quantity: str = "900") -> tuple[Api, int, int]:
    """An order of zhangwei over the customer's limit, confirmed by finance; returns (zhang's API, order, line)."""
    zhang = Api(app, "zhangwei", DEMO_PASSWORD)
    pk = zhang.post("/api/v1/order/", json={"number": "SO-A", "customer": app.ids["customer"],
                                             "order_date": "2026-12-01"}).json["id"]
    line = zhang.post("/api/v1/order_line/", json={"order": pk, "product": app.ids["product"], "quantity": quantity})
    assert Api(app, "chenjing", DEMO_PASSWORD).put(f"/api/v1/order/{pk}", json={"status": "confirmed"}
                                                   ).status_code == 200
    return zhang, pk, line.json["id"]


# -- found by a hostile review --------------------------------------------------------------------

def test_a_new_order_with_inline_lines_is_checked_as_new(trade: Any) -> None:
    """The reach check flushes a salesperson's new order before its lines: it is still new."""
    zhang = Browser(trade, "zhangwei", DEMO_PASSWORD)
    form = {"number": "SO-W", "customer": str(trade.ids["customer"]), "order_date": "2026-12-10",
            "delivery_date": "2026-12-01", "status": "draft", "currency": "CNY"}
    assert zhang.submit("/t/order/add", form).status_code == 200  # without lines: warned
    posted = zhang.submit("/t/order/add", {**form, "order_line-0-product": str(trade.ids["product"]),
                                           "order_line-0-quantity": "1"})
    assert posted.status_code == 200 and "交货日期 2026-12-01 早于下单日期 2026-12-10" in posted.text


def test_a_confirmed_order_with_a_zero_line_is_refused_over_the_limit(trade: Any) -> None:
    zhang = Browser(trade, "zhangwei", DEMO_PASSWORD)
    form = {"number": "SO-Z", "customer": str(trade.ids["customer"]), "order_date": "2026-12-01",
            "status": "confirmed", "currency": "CNY"}
    assert zhang.submit("/t/order/add", form).status_code == 200  # refused: 0 + 1,900,000 > 1,000,000
    posted = zhang.submit("/t/order/add", {**form, "order_line-0-product": str(trade.ids["product"]),
                                           "order_line-0-quantity": "0"})
    assert posted.status_code == 200 and "已超出额度" in posted.text
    assert Api(trade).get("/api/v1/order/").json["count"] == 0


def test_reverting_an_import_passes_the_warnings_of_what_it_puts_back(trade: Any) -> None:
    trade.config["PROPAGATE_EXCEPTIONS"] = False
    orm_add(trade, "order", number="SO-R", customer_id=trade.ids["customer"],
            order_date=datetime.date(2026, 12, 10), delivery_date=datetime.date(2026, 12, 1))
    result = run_import(trade, "order", "o.xlsx", workbook(["订单号", "交货日期"], ["SO-R", "2026-12-20"],
                                                           sheet="销售订单"), mode="upsert", key="number")
    assert result.counts["update"] == 1
    reverted = Browser(trade).submit("/imports/", {}, post_url=f"/imports/{result.batch_id}/revert")
    assert reverted.status_code == 302
    assert order_row(trade, order_id(trade, "SO-R"))[0] == "draft"


def test_a_star_in_x_confirm_rules_does_not_confirm_every_warning(trade: Any) -> None:
    body = {"number": "SO-4", "customer": trade.ids["customer"], "order_date": "2026-12-10",
            "delivery_date": "2026-12-01"}
    answer = Api(trade).post("/api/v1/order/", json=body, headers={"X-Confirm-Rules": "*"})
    assert answer.status_code == 409


def test_a_star_in_crm_confirm_does_not_confirm_every_warning(trade: Any) -> None:
    form = {"number": "SO-5", "customer": str(trade.ids["customer"]), "order_date": "2026-12-10",
            "delivery_date": "2026-12-01", "status": "draft", "currency": "CNY", "crm_confirm": "*"}
    assert Browser(trade).submit("/t/order/add", form).status_code == 200


def test_an_approved_order_can_be_marked_shipped_by_its_salesperson(trade: Any) -> None:
    zhang, pk, _ = approved_order(trade)
    assert zhang.put(f"/api/v1/order/{pk}", json={"status": "shipped"}).status_code == 200


def test_removing_a_line_from_an_approved_order_is_not_refused(trade: Any) -> None:
    zhang, pk, line = approved_order(trade)
    removed = zhang.delete(f"/api/v1/order_line/{line}")
    assert removed.status_code == 200, removed.json
    assert order_row(trade, pk)[1] == "0.00"


def test_an_imported_order_with_lines_logs_its_pass_once(trade: Any) -> None:
    book = openpyxl.Workbook()
    orders = book.active
    orders.title = "销售订单"
    orders.append(["订单号", "客户", "下单日期", "订单状态"])
    orders.append(["SO-I", "华信化工有限公司", "2026-12-01", "已确认"])
    lines = book.create_sheet("订单明细")
    lines.append(["订单", "产品", "数量"])
    lines.append(["SO-I", "乙酸乙酯", 10])
    out = io.BytesIO()
    book.save(out)
    result = run_import(trade, "order", "o.xlsx", out.getvalue())
    assert result.problems == [] and result.counts["insert"] == 1
    assert audit_rules(trade) == [("admin", "order", order_id(trade, "SO-I"), "order.credit_limit")]  # once


def test_a_refused_commit_stays_refused_when_committed_again(trade: Any) -> None:
    zhang = Api(trade, "zhangwei", DEMO_PASSWORD)
    pk = zhang.post("/api/v1/order/", json={"number": "SO-C", "customer": trade.ids["customer"],
                                             "order_date": "2026-12-01"}).json["id"]
    zhang.post("/api/v1/order_line/", json={"order": pk, "product": trade.ids["product"], "quantity": "900"})
    with trade.app_context():
        with acting_as(trade, trade.appbuilder.sm.find_user(username="zhangwei")):
            session = trade.appbuilder.session
            order = session.get(trade.extensions["crm"].models.model("order"), pk)
            order.status = "confirmed"
            with pytest.raises(RuleRefused):
                session.commit()
            with pytest.raises(RuleRefused):
                session.commit()
            session.rollback()
    assert order_row(trade, pk)[0] == "draft"


def test_a_quantity_in_a_message_keeps_its_decimal_places(make_app: Any, schema_dir: Path) -> None:
    sales = schema_dir / "sales.yaml"
    sales.write_text(sales.read_text(encoding="utf-8").replace(
        "    filters: [product, unit]\n",
        "    filters: [product, unit]\n    rules:\n      big:\n        when: quantity > 1000\n"
        "        warn: \"数量 {quantity}\"\n", 1), encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    api = Api(app)
    customer = api.post("/api/v1/customer/", json={"name": "甲公司"}).json["id"]
    product = api.post("/api/v1/product/", json={"code": "P1", "name": "甲醇", "unit_price": "1"}).json["id"]
    order = api.post("/api/v1/order/", json={"number": "SO-1", "customer": customer}).json["id"]
    warned = api.post("/api/v1/order_line/", json={"order": order, "product": product, "quantity": "1000.125"})
    assert warned.status_code == 409
    assert warned.json["message"] == "数量 1,000.125"  # the field's own three places


@pytest.mark.parametrize("rule", [
    "big: {when: note > 5, warn: x}",                        # varchar > numeric
    "big: {when: \"customer.grade = 1\", warn: x}",         # choice (varchar) = numeric
    "big: {when: \"amount > customer.name\", warn: x}",     # numeric > varchar
])
def test_a_rule_comparing_values_of_different_kinds_is_reported(rule: str) -> None:
    with pytest.raises(SchemaError):
        load_schema_text({"schema/t.yaml": BASE + "      " + rule + "\n"})
