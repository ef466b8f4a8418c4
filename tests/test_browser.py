"""The screens in a real headless Chromium: what a user clicks, types and sees, JavaScript included.

Playwright drives Debian's Chromium (/usr/bin/chromium, or CRM_TEST_CHROMIUM), which
`make test` installs through scripts/install-browser.sh. Without it these tests are skipped, or fail
when CRM_TEST_REQUIRE_ALL=1 (CI).
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server

from conftest import ADMIN_PASSWORD


@pytest.fixture
def server(app: Any) -> Iterator[str]:
    """Serve the app on a free local port; yield its base URL."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request is noise here
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    thread.join()


@pytest.fixture
def page(chromium: Any, server: str) -> Iterator[Any]:
    """Yield a page logged in as the admin, with JavaScript errors collected in page.js_errors."""
    page = logged_in_page(chromium, server)
    yield page
    page.context.close()


def logged_in_page(chromium: Any, server: str) -> Any:
    """Return a page of a browser context of its own (its own cookies: another person), logged in as
    the admin, with JavaScript errors collected in page.js_errors."""
    context = chromium.new_context(locale="zh-CN", base_url=server)
    page = context.new_page()
    page.js_errors = []
    page.on("pageerror", lambda error: page.js_errors.append(str(error)))
    # A script or style the Content-Security-Policy blocks is an error of the page too.
    page.on("console", lambda message: page.js_errors.append(message.text)
            if message.type == "error" and "Content Security Policy" in message.text else None)
    page.goto("/login/")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", ADMIN_PASSWORD)
    page.click("input[type=submit], button[type=submit]")
    page.wait_for_url(f"{server}/")
    return page


def choose(page: Any, field: str, option_text: str) -> None:
    """Pick an option in a Select2 dropdown the way a user does: open it, click the option."""
    page.click(f"#{field} + .select2-container .select2-selection")
    page.click(f".select2-results__option:text-is('{option_text}')")


def open_add_form(page: Any, table: str) -> None:
    """Go to the table's list, then click its add button, as a user does."""
    page.goto(f"/t/{table}/list/")
    page.click(f"a[href^='/t/{table}/add']")
    page.wait_for_url(f"**/t/{table}/add**")


def test_add_a_customer_with_dropdowns_checkboxes_and_a_date(page: Any) -> None:
    open_add_form(page, "customer")
    page.fill("#name", "江苏华源精细化工有限公司")
    choose(page, "status", "合作中")
    choose(page, "grade", "A类（战略客户）")
    page.check("input[name=tags][value=key_account]")
    page.click("#hazardous_licence_expiry")
    calendar = page.locator(".datepicker-dropdown").inner_text().split()
    assert calendar[1].endswith("月") and calendar[3:10] == ["一", "二", "三", "四", "五", "六", "日"]
    page.keyboard.press("Escape")
    page.fill("#hazardous_licence_expiry", "2027-06-30")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/customer/show/**")
    assert "保存成功" in page.inner_text(".alert") and "2027-06-30" in page.inner_text("#Home")
    page.goto("/t/customer/list/")
    row = page.locator("table tr", has_text="江苏华源精细化工有限公司")
    badge = row.locator(".crm-badge", has_text="合作中")
    assert page.locator("[title='Remove all items']").count() == 0
    assert badge.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(82, 196, 26)"
    assert page.js_errors == []


def test_delete_asks_for_confirmation_in_chinese(page: Any) -> None:
    open_add_form(page, "customer")
    page.fill("#name", "待删除公司")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/customer/show/**")
    page.goto("/t/customer/list/")
    page.click("tr:has-text('待删除公司') a[id^='btn-delete-']")
    modal = page.locator("#modal-confirm")
    modal.wait_for(state="visible")
    assert "确定要删除这条记录吗？" in modal.inner_text()
    modal.locator("#modal-confirm-ok").click()
    page.wait_for_selector("text=记录已删除")
    assert page.locator("td", has_text="待删除公司").count() == 0
    assert page.js_errors == []


def test_validation_error_is_shown_next_to_its_field(page: Any) -> None:
    page.goto("/t/customer/add")
    page.fill("#name", "甲公司")
    page.fill("#uscc", "91350100M000100Y44")
    page.click("button[type=submit]")
    error = page.locator("#uscc").locator("xpath=ancestor::td[1]").inner_text()
    assert "统一社会信用代码校验位不正确" in error, error
    assert page.js_errors == []


def test_keyword_search_and_filter_panel(page: Any) -> None:
    for name, status in (("甲化工", "合作中"), ("乙化工", "潜在客户")):
        open_add_form(page, "customer")
        page.fill("#name", name)
        choose(page, "status", status)
        page.click("button[type=submit]")
        page.wait_for_url("**/t/customer/show/**")
    page.goto("/t/customer/list/")
    page.fill("input[name=q]", "甲")
    page.press("input[name=q]", "Enter")
    page.wait_for_url("**q=**")
    assert page.locator("td", has_text="甲化工").count() == 1
    assert page.locator("td", has_text="乙化工").count() == 0

    page.goto("/t/customer/list/")
    page.click("a.accordion-toggle:text-is('筛选')")
    page.click("text=添加筛选条件")
    page.click("a.filter[name=status]")
    assert page.locator("#filter_form select.filter-op").inner_text().split() == ["等于", "不等于"]
    page.click("#filter_form select.filter_val + .select2-container .select2-selection")
    page.click(".select2-results__option:text-is('合作中')")
    page.click("#filter_form button[type=submit]")
    page.wait_for_url("**_flt_**")
    assert page.locator("td", has_text="甲化工").count() == 1
    assert page.locator("td", has_text="乙化工").count() == 0
    assert page.js_errors == []


def test_english_switch(page: Any) -> None:
    page.goto("/lang/en")
    page.goto("/t/customer/list/")
    assert "Customer list" in page.inner_text("body")
    assert page.js_errors == []


def test_the_pages_run_under_the_content_security_policy(page: Any) -> None:
    """Every screen's scripts run (menus open, selects and date pickers work) and none is blocked."""
    open_add_form(page, "customer")
    page.fill("#name", "策略化工")
    choose(page, "status", "合作中")
    page.click("#hazardous_licence_expiry")
    assert page.locator(".datepicker-dropdown").is_visible()
    page.keyboard.press("Escape")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/customer/show/**")
    for url in ("/", "/users/list/", "/roles/list/", "/audit/", "/resetmypassword/form", "/t/order/list/",
                "/t/product/add", "/swagger/v1"):
        page.goto(url)
    page.wait_for_selector("#swagger-ui .info")  # drawn by Swagger UI's script: it ran
    assert page.js_errors == []


def test_logging_out_from_the_menu_ends_the_session(page: Any) -> None:
    page.goto("/t/customer/list/")
    page.click("a.dropdown-toggle:has(.fa-user)")
    page.click("form.crm-logout button")
    page.wait_for_url("**/")
    page.goto("/t/customer/list/")
    assert "/login/" in page.url
    assert page.locator("input[name=password]").count() == 1
    assert page.js_errors == []


def test_two_people_editing_one_record_lose_nothing(chromium: Any, server: str, app: Any) -> None:
    """Two browsers open the same customer's edit form; the second save is refused, shows what the first
    changed and keeps what was typed; saving again then stores the second person's form."""
    from conftest import Api
    pk = Api(app).post("/api/v1/customer/", json={"name": "双人化工", "city": "苏州"}).json["id"]
    first, second = logged_in_page(chromium, server), logged_in_page(chromium, server)
    for page in (first, second):
        page.goto(f"/t/customer/edit/{pk}")
    first.fill("#city", "上海")
    with first.expect_navigation():
        first.click("button[type=submit]")
    assert "/edit/" not in first.url

    second.fill("#credit_limit", "80000")
    with second.expect_navigation():
        second.click("button[type=submit]")

    assert f"/t/customer/edit/{pk}" in second.url
    assert "未保存：您打开此记录后，管理员 修改并保存了它" in second.locator(".alert").inner_text()
    assert "苏州 → 上海" in second.locator(".crm-conflict").inner_text()
    assert second.input_value("#credit_limit") == "80000"
    assert Api(app).get(f"/api/v1/customer/{pk}").json["result"]["credit_limit"] is None

    with second.expect_navigation():
        second.click("button[type=submit]")
    assert "/edit/" not in second.url
    stored = Api(app).get(f"/api/v1/customer/{pk}").json["result"]
    assert (stored["city"], float(stored["credit_limit"])) == ("苏州", 80000.0)
    assert first.js_errors == [] and second.js_errors == []
    first.context.close(), second.context.close()


def test_dates_typed_with_the_keyboard_are_kept(page: Any, app: Any) -> None:
    import sqlalchemy as sa
    page.goto("/t/customer/add")
    page.fill("#name", "江苏华源精细化工有限公司")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/customer/show/**")
    customer = page.url.rsplit("/", 1)[-1]
    for typed, shown in (("2026/12/15", "2026-12-15"), ("2026年12月15日", "2026-12-15"), ("20270331", "2027-03-31"),
                         ("2027.1.5", "2027-01-05")):
        page.goto(f"/t/follow_up/add?_flt_0_customer={customer}")
        page.fill("#subject", f"回访 {typed}")
        page.click("#next_date")
        page.keyboard.type(typed)
        page.keyboard.press("Tab")
        assert page.input_value("#next_date") == shown
        page.click("button[type=submit]")
        page.wait_for_url(f"**/t/customer/show/{customer}#children-follow_up-customer")
        page.locator("#children-follow_up-customer").wait_for(state="visible", timeout=5000)
    page.goto(f"/t/follow_up/add?_flt_0_customer={customer}")
    page.fill("#subject", "不存在的日子")
    page.click("#next_date")
    page.keyboard.type("2026-2-30")
    page.click("#subject")
    assert page.input_value("#next_date") == "2026-2-30"  # kept as typed, not turned into 2 March
    page.click("button[type=submit]")
    assert "没有这一天：2026年2月30日" in page.locator("#next_date").locator("xpath=ancestor::td").inner_text()
    with app.app_context():
        model = app.extensions["crm"].models.model("follow_up")
        saved = app.appbuilder.session.execute(sa.select(model.subject, model.next_date).order_by(model.id)).all()
    assert [(s, d.isoformat()) for s, d in saved] == [
        ("回访 2026/12/15", "2026-12-15"), ("回访 2026年12月15日", "2026-12-15"), ("回访 20270331", "2027-03-31"),
        ("回访 2027.1.5", "2027-01-05")]
    assert page.js_errors == []


def test_import_a_filled_in_template_with_a_progress_bar_then_export(chromium: Any, make_app: Any,
                                                                    tmp_path: Any) -> None:
    """The admin downloads the template from the list, fills in 300 rows, imports them through the screen
    (checked first, then confirmed; both run in a real worker with a progress bar reaching 100 %), and
    exports the list (a job too) and downloads the file."""
    import openpyxl
    import sqlalchemy as sa

    from app.seed import load_demo_data
    from conftest import start_worker
    app = make_app(CRM_JOB_ROWS=100)
    load_demo_data(app, scale=0.02)
    worker = start_worker(app, tmp_path / "worker.log")
    httpd = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        page = logged_in_page(chromium, f"http://127.0.0.1:{httpd.server_port}")
        page.goto("/t/customer/list/")
        with page.expect_download() as template:
            page.click("a.crm-template-link")
        path = tmp_path / "客户导入模板.xlsx"
        template.value.save_as(path)
        book = openpyxl.load_workbook(path)
        sheet = book.worksheets[0]
        keys = [c.value for c in sheet[2]]
        for n in range(300):
            sheet.cell(3 + n, keys.index("name") + 1, f"浏览器导入客户{n:03d}有限公司")
            sheet.cell(3 + n, keys.index("grade") + 1, "A类（战略客户）")
            sheet.cell(3 + n, keys.index("credit_limit") + 1, 10000 + n)
        book.save(path)
        page.click("a.crm-import-link")
        page.set_input_files("#crm-import-file", str(path))
        page.click("button.crm-import-check")
        page.wait_for_url("**/jobs/*/")
        page.wait_for_selector(".crm-import-summary", timeout=120_000)
        assert page.inner_text(".crm-import-summary") == "检查通过：将新增 300 条、更新 0 条、0 条不变"
        page.click(".crm-import-confirm button[type=submit]")
        page.wait_for_selector(".crm-job-end.alert-success", timeout=120_000)
        assert page.inner_text(".progress-bar") == "100%"
        assert page.inner_text(".crm-import-summary").startswith("已导入（第 ")
        model = app.extensions["crm"].models.model("customer")
        with app.app_context():
            stored = app.appbuilder.session.execute(sa.select(model.name, model.grade, model.credit_limit).where(
                model.name.like("浏览器导入客户%")).order_by(model.name)).all()
        assert len(stored) == 300 and stored[7] == ("浏览器导入客户007有限公司", "A", 10007)
        page.goto("/t/customer/list/")
        page.click("a.crm-export-link")
        page.wait_for_url("**/jobs/*/")
        page.wait_for_selector("a.crm-job-download", timeout=120_000)
        with page.expect_download() as exported:
            page.click("a.crm-job-download")
        out = tmp_path / "export.xlsx"
        exported.value.save_as(out)
        rows = list(openpyxl.load_workbook(out).worksheets[0].iter_rows(values_only=True))
        assert len(rows) - 2 == len(load_names(app)) and "浏览器导入客户299有限公司" in {r[1] for r in rows}
        assert page.js_errors == []
        page.context.close()
    finally:
        httpd.shutdown()
        thread.join()
        worker.kill()
        worker.wait(timeout=30)


def load_names(app: Any) -> list[str]:
    import sqlalchemy as sa
    model = app.extensions["crm"].models.model("customer")
    with app.app_context():
        return [n for (n,) in app.appbuilder.session.execute(sa.select(model.name))]


def test_a_rule_warning_is_confirmed_and_an_overdue_receivable_is_red(page: Any, app: Any) -> None:
    """In the browser: an order delivered before it is placed asks to be confirmed (the box ticked,
    it saves); a receivable past its due date shows in red in the list, with the legend."""
    import sqlalchemy as sa
    page.goto("/t/customer/add")
    page.fill("#name", "江苏华源精细化工有限公司")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/customer/show/**")
    page.goto("/t/order/add")
    page.fill("#number", "SO-2026-001")
    choose(page, "customer", "江苏华源精细化工有限公司")
    for field, typed in (("order_date", "2026-12-10"), ("delivery_date", "2026-12-01")):
        page.fill(f"#{field}", "")
        page.click(f"#{field}")
        page.keyboard.type(typed)
        page.keyboard.press("Tab")
    page.click("button[type=submit]")
    box = page.locator(".crm-confirm-rules")
    box.wait_for(state="visible", timeout=5000)
    warning = box.inner_text()
    assert "确认 交货日期早于下单日期" in warning and "交货日期 2026-12-01 早于下单日期 2026-12-10" in warning
    assert page.input_value("#number") == "SO-2026-001"  # what was typed is kept
    page.check("input[name=crm_confirm][value='order.delivery_before_order']")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/order/show/**")
    with app.app_context():
        order = app.extensions["crm"].models.model("order")
        stored = app.appbuilder.session.execute(sa.select(order.number, order.delivery_date)).all()
    assert [(n, d.isoformat()) for n, d in stored] == [("SO-2026-001", "2026-12-01")]
    page.goto("/t/payment/add")
    page.fill("#number", "AR-2026-001")
    choose(page, "customer", "江苏华源精细化工有限公司")
    page.fill("#amount_due", "5000")
    page.click("#due_date")
    page.keyboard.type("2020-01-31")
    page.keyboard.press("Tab")
    page.click("button[type=submit]")
    page.wait_for_url("**/t/payment/show/**")
    assert "逾期未收" in page.locator(".crm-record-colours").inner_text()
    page.goto("/t/payment/list/")
    row = page.locator("tr.crm-painted-row")
    assert row.count() == 1 and "AR-2026-001" in row.inner_text()
    assert "逾期未收" in page.locator(".crm-colour-legend").inner_text()
    assert page.js_errors == []
