"""Each default role's working day, in Chinese, in a real Chromium: what the screens show and what the
database holds afterwards. Every journey runs at desktop size and once more at a phone's 390×844;
screenshots of the main screens are kept under test-results/screenshots/ (or $CRM_TEST_ARTIFACTS).
They run on SQLite: what the databases do differently is proven by the tests of computed values and
inline rows, which run on all three.
"""
from __future__ import annotations

import datetime
import os
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.serving import make_server

from app.fields.values import uscc_check_char
from conftest import PROJECT_DIR, database_kind
from test_browser import logged_in_page

pytestmark = pytest.mark.sqlite_only
PASSWORD = "chem-demo-2026"
VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
ARTIFACTS = Path(os.environ.get("CRM_TEST_ARTIFACTS") or PROJECT_DIR / "test-results" / "screenshots")


@pytest.fixture(params=["desktop", "phone"])
def viewport(request: Any) -> str:
    return request.param


@pytest.fixture
def demo(app: Any) -> Any:
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    return app


def serve(app: Any) -> tuple[Any, str]:
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_port}"


@pytest.fixture
def site(demo: Any) -> Iterator[str]:
    server, url = serve(demo)
    yield url
    server.shutdown()


class Person:
    """A logged-in browser tab of one user, at one viewport, that keeps screenshots of what it saw."""

    def __init__(self, chromium: Any, site: str, username: str, viewport: str):
        self.viewport, self.username = viewport, username
        self.context = chromium.new_context(locale="zh-CN", base_url=site, viewport=VIEWPORTS[viewport])
        self.page = page = self.context.new_page()
        self.errors: list[str] = []
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.goto("/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", PASSWORD)
        page.click("input[type=submit], button[type=submit]")
        page.wait_for_url(f"{site}/")

    def shot(self, name: str) -> None:
        folder = ARTIFACTS / database_kind() / self.viewport
        folder.mkdir(parents=True, exist_ok=True)
        # A full-page shot stretches the window for a moment, and a phone-sized page then drops the next
        # tap: a phone keeps what its screen shows.
        self.page.screenshot(path=str(folder / f"{self.username}-{name}.png"), full_page=self.viewport == "desktop")

    def pick(self, field: str, typed: str, option: str) -> None:
        """Choose a record in a link select the way a user does: open it, type, click the option."""
        self.page.click(f"[name='{field}'] + .select2-container .select2-selection")
        self.page.locator(".select2-container--open .select2-search__field").fill(typed)
        self.page.click(f".select2-results__option:text-is('{option}')")

    def choose(self, field: str, option: str) -> None:
        self.page.click(f"#{field} + .select2-container .select2-selection")
        self.page.click(f".select2-results__option:text-is('{option}')")

    def save(self, landing: str) -> None:
        self.page.click("button[type=submit]")
        try:
            self.page.wait_for_url(landing, timeout=10_000)
        except Exception:
            self.shot("not-saved")
            raise AssertionError(f"not saved; the page says: {self.page.inner_text('body')[:1500]}") from None
        assert "保存成功" in self.page.inner_text(".alert"), self.page.inner_text("body")[:500]

    def search(self, table: str, words: str) -> str:
        self.page.goto(f"/t/{table}/list/")
        self.page.fill("input[name=q]", words)
        self.page.press("input[name=q]", "Enter")
        self.page.wait_for_url("**q=**")
        return self.page.inner_text("table.table-bordered")

    def close(self) -> None:
        assert self.errors == []
        self.context.close()


def query(app: Any, statement: Any) -> list[Any]:
    with app.app_context():
        return list(app.appbuilder.session.execute(statement).all())


def model(app: Any, table: str) -> Any:
    return app.extensions["crm"].models.model(table)


def new_uscc(body: str = "91320500MA1XY8123") -> str:
    first17 = (body + "3")[:17]
    return first17 + uscc_check_char(first17)


def test_a_salespersons_day(chromium: Any, site: str, demo: Any, viewport: str) -> None:
    me = Person(chromium, site, "zhangwei", viewport)
    page = me.page
    page.goto("/t/customer/add")
    page.fill("#name", "苏州星火新材料科技有限公司")
    page.fill("#phone", "0512-65781234")
    code = new_uscc()
    page.fill("#uscc", code.lower())
    me.save("**/t/customer/show/**")
    customer = int(page.url.rsplit("/", 1)[-1].split("#")[0])

    for name, mobile in (("周明", "13912345678"), ("吴倩", "13812345679")):
        page.goto(f"/t/customer/show/{customer}")
        page.click("a[href='#children-contact-customer']")
        page.click("#children-contact-customer a[href*='/t/contact/add']")
        assert "苏州星火新材料科技有限公司" in page.inner_text(".crm-read-only")  # the parent, locked
        page.fill("#name", name)
        page.fill("#mobile", mobile)
        me.save(f"**/t/customer/show/{customer}#children-contact-customer")
        assert page.locator("#children-contact-customer").is_visible()
    me.shot("customer-with-contacts")
    contact = model(demo, "contact")
    assert query(demo, sa.select(contact.name).where(contact.customer_id == customer).order_by(contact.id)) == [
        ("周明",), ("吴倩",)]

    product = model(demo, "product")
    catalogue = query(demo, sa.select(product.name, product.unit_price).order_by(product.id).limit(3))
    page.goto("/t/order/add")
    page.fill("#number", "SO-2026-9001")
    me.pick("customer", "星火新材料", "苏州星火新材料科技有限公司")
    me.pick("contact", "", "吴倩")
    for n, ((name, price), quantity) in enumerate(zip(catalogue, ("2", "1.5", "10"), strict=True)):
        if n:
            page.click(".crm-inline-add")
        me.pick(f"order_line-{n}-product", name[:2], name)
        assert page.input_value(f"[name='order_line-{n}-unit_price']") == f"{price:.2f}"
        page.fill(f"[name='order_line-{n}-quantity']", quantity)
    expected = sum((Decimal(q) * p for (_, p), q in zip(catalogue, ("2", "1.5", "10"), strict=True)), Decimal(0))
    assert f"{expected:,.2f}" in page.inner_text(".crm-inline-totals")
    me.shot("order-with-lines")
    me.save("**/t/order/show/**")
    order_model, line = model(demo, "order"), model(demo, "order_line")
    (order_id, total, count, salesperson), = query(demo, sa.select(
        order_model.id, order_model.total, order_model.line_count, order_model.salesperson_id).where(
        order_model.number == "SO-2026-9001"))
    assert (total, count) == (expected.quantize(Decimal("0.01")), 3)
    assert [p for (p,) in query(demo, sa.select(line.unit_price).where(line.order_id == order_id).order_by(line.id))] \
        == [p for _, p in catalogue]
    me.shot("order")

    page.goto(f"/t/customer/show/{customer}")
    page.click("a[href='#children-follow_up-customer']")
    page.click("#children-follow_up-customer a[href*='/t/follow_up/add']")
    page.fill("#subject", "报价后电话回访")
    page.click("#next_date")
    page.keyboard.type("2026/12/20")
    page.keyboard.press("Tab")
    me.save(f"**/t/customer/show/{customer}#children-follow_up-customer")
    follow_up = model(demo, "follow_up")
    assert query(demo, sa.select(follow_up.next_date).where(follow_up.customer_id == customer)) == [
        (datetime.date(2026, 12, 20),)]

    for words in ("星火新材料", "65781234", "0512-65781234", code):
        assert "苏州星火新材料科技有限公司" in me.search("customer", words), words
    me.shot("customer-search")
    me.close()


def test_finance_finds_overdue_receivables_and_a_customers_open_balance(chromium: Any, site: str, demo: Any,
                                                                        viewport: str) -> None:
    me = Person(chromium, site, "chenjing", viewport)
    payment = model(demo, "payment")
    overdue = {n for (n,) in query(demo, sa.select(payment.number).where(payment.status == "overdue"))}
    assert overdue
    listed = me.search("payment", "已逾期")
    me.shot("overdue-receivables")
    assert all(number in listed for number in sorted(overdue)[:20])
    customer = model(demo, "customer")
    (pk, name, balance), = query(demo, sa.select(customer.id, customer.name, customer.open_receivables)
                                 .where(customer.open_receivables > 0).order_by(customer.open_receivables.desc())
                                 .limit(1))
    outstanding = query(demo, sa.select(sa.func.sum(payment.amount_due - payment.paid_amount))
                        .where(payment.customer_id == pk, payment.status != "paid"))[0][0]
    assert balance == Decimal(outstanding).quantize(Decimal("0.01"))
    me.page.goto(f"/t/customer/show/{pk}")
    assert f"{balance:,.2f}" in me.page.inner_text("#Home") and name in me.page.inner_text("body")
    me.shot("customer-balance")
    me.close()


def test_service_logs_a_complaint_and_closes_it(chromium: Any, site: str, demo: Any, viewport: str) -> None:
    me = Person(chromium, site, "liuyang", viewport)
    customer = model(demo, "customer")
    (name,), = query(demo, sa.select(customer.name).order_by(customer.id).limit(1))
    page = me.page
    page.goto("/t/feedback/add")
    me.pick("customer", name[:4], name)
    me.choose("type", "投诉")
    page.fill("#subject", "到货包装破损")
    page.fill("#content", "三桶中有一桶渗漏，要求补发。")
    me.save("**/t/feedback/show/**")
    pk = int(page.url.rsplit("/", 1)[-1])
    page.goto(f"/t/feedback/edit/{pk}")
    me.choose("status", "已关闭")
    page.fill("#resolution", "已补发一桶，客户确认。")
    me.save(f"**/t/feedback/show/{pk}")
    me.shot("complaint-closed")
    feedback = model(demo, "feedback")
    assert query(demo, sa.select(feedback.type, feedback.status, feedback.resolution).where(feedback.id == pk)) == [
        ("complaint", "closed", "已补发一桶，客户确认。")]
    me.close()


def test_rnd_reads_a_formula_that_sales_cannot_see(chromium: Any, site: str, demo: Any, viewport: str) -> None:
    product = model(demo, "product")
    pk, = query(demo, sa.select(product.id).where(product.formula.is_not(None)).order_by(product.id).limit(1))[0]
    with demo.app_context():
        formula = demo.appbuilder.session.get(product, pk).formula
    rnd = Person(chromium, site, "sunli", viewport)
    rnd.page.goto(f"/t/product/show/{pk}")
    assert formula in rnd.page.inner_text("#Home")
    rnd.shot("formula")
    rnd.close()
    sales = Person(chromium, site, "zhangwei", viewport)
    sales.page.goto(f"/t/product/show/{pk}")
    text = sales.page.inner_text("#Home")
    assert formula not in text and "配方成分" not in text
    sales.close()


def test_an_admin_adds_a_field_in_the_yaml_and_uses_it(chromium: Any, make_app: Any, schema_dir: Path,
                                                       viewport: str) -> None:
    make_app(schema_dir=schema_dir)
    customers = schema_dir / "customers.yaml"
    text = customers.read_text(encoding="utf-8")
    customers.write_text(text.replace(
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n    list: [name, industry, grade, status, province, "
        "owner, credit_limit, hazardous_licence_expiry]",
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n"
        "      wechat_group: {type: string, label: {zh: 客户微信群, en: WeChat group}, max_length: 64}\n"
        "    list: [name, industry, grade, status, province, owner, credit_limit, wechat_group]", 1).replace(
        "filters: [status, grade, industry,", "filters: [wechat_group, status, grade, industry,", 1), encoding="utf-8")
    restarted = make_app(schema_dir=schema_dir)
    server, url = serve(restarted)
    try:
        page = logged_in_page(chromium, url)
        page.set_viewport_size(VIEWPORTS[viewport])
        page.goto("/t/customer/add")
        page.fill("#name", "常州新材料有限公司")
        page.fill("#wechat_group", "常州新材料-采购群")
        page.click("button[type=submit]")
        page.wait_for_url("**/t/customer/show/**")
        page.goto("/t/customer/list/")
        assert ("客户微信群" in page.inner_text("table.table-bordered thead")
                and "常州新材料-采购群" in page.inner_text("table.table-bordered"))
        assert page.locator("#filter_form a.filter[name='wechat_group']").count() == 1  # offered as a filter
        page.goto("/t/customer/list/?_flt_0_wechat_group=" + "常州")  # starts with
        assert "常州新材料有限公司" in page.inner_text("table.table-bordered")
        ARTIFACTS.joinpath(database_kind(), viewport).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / database_kind() / viewport / "admin-new-field.png"), full_page=True)
        assert page.js_errors == []
        page.context.close()
    finally:
        server.shutdown()
    customer = model(restarted, "customer")
    assert query(restarted, sa.select(customer.wechat_group).where(customer.name == "常州新材料有限公司")) == [
        ("常州新材料-采购群",)]


def test_on_a_phone_lists_scroll_filters_fit_the_menu_works_and_numbers_dial(chromium: Any, site: str,
                                                                            demo: Any) -> None:
    me = Person(chromium, site, "zhaomin", "phone")
    page = me.page
    page.goto("/t/customer/list/")
    box = page.locator("div.table-responsive:has(> table.table-bordered)").first
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")  # wider than the screen: it scrolls
    box.evaluate("el => { el.scrollLeft = 600; }")
    title = page.locator("table.table-bordered thead th").nth(1).bounding_box()
    assert title is not None and 0 <= title["x"] < 50  # the company name stays in view
    me.shot("customer-list-scrolled")
    page.click("a[href='#accordion1'], .panel-heading a:has-text('筛选')")
    page.click("#filter_form button.dropdown-toggle")
    page.click("#filter_form a.filter[name='hazardous_licence_expiry']")
    value = page.locator("#filter_form input.filter_val").first
    assert value.bounding_box()["width"] > 200
    me.shot("filter")
    page.click("button.navbar-toggle")
    page.click("a.dropdown-toggle:has-text('业务数据')")
    page.click("a[href='/t/contact/list/']")
    page.wait_for_url("**/t/contact/list/**")
    customer = model(demo, "customer")
    pk, phone = query(demo, sa.select(customer.id, customer.phone).where(customer.phone.is_not(None)).limit(1))[0]
    page.goto(f"/t/customer/show/{pk}")
    dial = page.locator("a[href^='tel:']").first
    assert dial.inner_text().strip() == phone and dial.get_attribute("href").startswith("tel:0")
    me.close()
