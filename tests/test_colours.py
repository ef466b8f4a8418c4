"""Colour rules (`colors:` on a table): the schema checks, and the colours in rendered lists (every
page), on record pages and in exported workbooks — only for rules over fields the user sees."""
from __future__ import annotations

import datetime
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest

from app.schema import SchemaError, load_schema_text
from app.seed import DEMO_PASSWORD, demo_user_ids
from conftest import Browser
from test_record_rules import orm_add
from test_transfer import run_export

TODAY = datetime.datetime.now(ZoneInfo("Asia/Shanghai")).date()
DAY = datetime.timedelta(days=1)

BASE = """
tables:
  bill:
    fields:
      number: {type: string}
      due: {type: date}
      amount: {type: money}
      state: {type: choice, options: [open, paid]}
    colors:
"""


def problems(rule: str) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"schema/t.yaml": BASE + "      " + rule + "\n"})
    return [f"{i.path}: {i.message} | {i.hint}" for i in caught.value.issues]


@pytest.mark.parametrize("rule,expected", [
    ("late: {when: due < today, color: red}",
     "tables.bill.colors.late.color: 'red' is not a colour of the form '#rrggbb' | quote a six-digit hex colour "
     "like '#f5222d' (exports fill cells with it; an unquoted # starts a comment)"),
    ("late: {when: dew < today, color: '#f5222d'}",
     "tables.bill.colors.late.when: 'dew' is not a field of bill | did you mean 'due'? known fields: number, due, "
     "amount, state"),
    ("late: {when: due < today * 2, color: '#f5222d'}",
     "tables.bill.colors.late.when: today can only be compared, or moved by a number of days (today + 30) | e.g. "
     "when: due_date < today + 30"),
    ("late: {when: \"state = 'late'\", color: '#f5222d'}",
     "tables.bill.colors.late.when: 'late' is not an option of state | known options: open, paid"),
    ("late: {when: due < today, color: '#f5222d', field: dew}",
     "tables.bill.colors.late.field: table 'bill' has no field 'dew' | did you mean 'due'? known fields: number, "
     "due, amount, state"),
    ("late: {when: due < today}",
     "tables.bill.colors.late.color: a colour rule needs color: | e.g. color: '#f5222d'"),
])
def test_colour_mistakes_are_reported_with_a_hint(rule: str, expected: str) -> None:
    assert expected in problems(rule)


@pytest.fixture
def ledger(app: Any) -> Any:
    """Customers with an expired, an expiring and a distant licence (zhangwei's), and receivables:
    overdue and open, overdue and paid, not yet due."""
    with app.app_context():
        demo_user_ids(app)
        zhang = app.appbuilder.sm.find_user(username="zhangwei").id
    ids = {name: orm_add(app, "customer", name=name, owner_id=zhang, grade=grade, hazardous_licence_expiry=expiry)
           for name, grade, expiry in (("过期化工", "C", TODAY - 40 * DAY), ("将到期化工", "A", TODAY + 10 * DAY),
                                       ("远期化工", "B", TODAY + 200 * DAY))}
    for number, due, paid in (("AR-LATE", TODAY - 5 * DAY, "0"), ("AR-PAID", TODAY - 5 * DAY, "100"),
                              ("AR-SOON", TODAY + 5 * DAY, "0")):
        ids[number] = orm_add(app, "payment", number=number, customer_id=ids["过期化工"], due_date=due,
                              amount_due=Decimal("100"), paid_amount=Decimal(paid))
    app.ids = ids
    return app


def painted_rows(html: str) -> dict[str, int]:
    """Return how many rows each colour rule paints."""
    found: dict[str, int] = {}
    for row in re.findall(r"<tr class=\"crm-painted-row\" data-colour=\"(\w+)\".*?</tr>", html, re.S):
        found[row] = found.get(row, 0) + 1
    return found


def painted_cells(html: str) -> list[tuple[str, str]]:
    """Return (colour rule, cell text) of each painted cell."""
    return [(key, re.sub(r"<[^>]+>", "", text).strip()) for key, text in
            re.findall(r'<td class="crm-painted-cell" data-colour="(\w+)"[^>]*>(.*?)</td>', html, re.S)]


def test_lists_paint_rows_and_cells_and_explain_the_colours(ledger: Any) -> None:
    browser = Browser(ledger)
    payments = browser.get("/t/payment/list/").text
    assert painted_rows(payments) == {"overdue": 1}
    late_row = re.search(r'<tr class="crm-painted-row" data-colour="overdue".*?</tr>', payments, re.S)
    assert late_row and "AR-LATE" in late_row.group(0) and "background-color: #fddcdd" in late_row.group(0)
    assert re.search(r'class="crm-legend-item" data-colour="overdue".*?逾期未收', payments, re.S)  # the legend
    customers = browser.get("/t/customer/list/").text
    assert sorted(painted_cells(customers)) == [
        ("licence_expired", str(TODAY - 40 * DAY)), ("licence_expiring", str(TODAY + 10 * DAY)),
        ("strategic", "A类（战略客户）")]
    legend = re.search(r'<p class="crm-colour-legend.*?</p>', customers, re.S)
    shown = [re.sub(r"\s+", " ", t).strip() for t in re.findall(r"</span>\s*([^<]+)</span>", legend.group(0))] \
        if legend else []
    assert shown == ["许可证已过期（许可证有效期至）", "许可证 30 天内到期（许可证有效期至）",
                     "A 类战略客户（客户等级）"]


def test_every_page_of_a_long_list_is_painted(ledger: Any) -> None:
    for n in range(30):
        orm_add(ledger, "payment", number=f"AR-{n:03d}", customer_id=ledger.ids["远期化工"],
                due_date=TODAY - (n + 1) * DAY, amount_due=Decimal("10"), paid_amount=Decimal("0"))
    browser = Browser(ledger)
    first = painted_rows(browser.get("/t/payment/list/").text)
    second = painted_rows(browser.get("/t/payment/list/?page_PaymentView=1").text)
    assert first == {"overdue": 25} and second == {"overdue": 6}  # 31 overdue, sorted by due date


def test_a_record_page_shows_which_colours_hold(ledger: Any) -> None:
    page = Browser(ledger).get(f"/t/customer/show/{ledger.ids['将到期化工']}").text
    badges = re.findall(r'<span class="label crm-record-colour" data-colour="(\w+)"[^>]*>([^<]+)</span>', page)
    assert badges == [("licence_expiring", "许可证 30 天内到期：许可证有效期至"),
                      ("strategic", "A 类战略客户：客户等级")]


def test_a_rule_over_a_field_the_user_may_not_see_paints_nothing(make_app: Any, schema_dir: Path) -> None:
    roles = schema_dir / "roles.yaml"
    text = roles.read_text(encoding="utf-8")
    roles.write_text(text.replace("      payment:    {can: [read], rows: {own: customer.owner}}",
                                  "      payment:    {can: [read], rows: {own: customer.owner}, hide: [outstanding]}",
                                  1), encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    with app.app_context():
        demo_user_ids(app)
        zhang = app.appbuilder.sm.find_user(username="zhangwei").id
    customer = orm_add(app, "customer", name="甲化工", owner_id=zhang)
    orm_add(app, "payment", number="AR-1", customer_id=customer, due_date=TODAY - DAY, amount_due=Decimal("100"),
            paid_amount=Decimal("0"))
    zhang_list = Browser(app, "zhangwei", DEMO_PASSWORD).get("/t/payment/list/").text
    assert "AR-1" in zhang_list and painted_rows(zhang_list) == {} and "逾期未收" not in zhang_list
    assert painted_rows(Browser(app).get("/t/payment/list/").text) == {"overdue": 1}  # admin sees outstanding


def test_exports_fill_the_painted_cells(ledger: Any) -> None:
    body = run_export(ledger, "payment")
    sheet = openpyxl.load_workbook(io.BytesIO(body)).worksheets[0]
    fills = {row[1].value: {c.fill.fgColor.rgb for c in row[:9] if c.fill.fill_type == "solid"}
             for row in sheet.iter_rows(min_row=3)}
    assert fills == {"AR-LATE": {"FFFDDCDD"}, "AR-PAID": set(), "AR-SOON": set()}
    customers = openpyxl.load_workbook(io.BytesIO(run_export(ledger, "customer"))).worksheets[0]
    keys = [c.value for c in next(customers.iter_rows(min_row=2, max_row=2))]
    column = keys.index("hazardous_licence_expiry")
    cells = {row[1].value: row[column].fill.fgColor.rgb if row[column].fill.fill_type == "solid" else None
             for row in customers.iter_rows(min_row=3)}
    assert cells == {"过期化工": "FFFCB2B6", "将到期化工": "FFFDD7AD", "远期化工": None}
