"""Daily entry on the screens: adding from a parent's tab, where a save leads, dates as people type them."""
from __future__ import annotations

import re
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Browser, csrf_token

PASSWORD = "chem-demo-2026"


def rows(app: Any, sql: str, **params: Any) -> list[Any]:
    with app.app_context():
        return list(app.appbuilder.session.execute(sa.text(sql), params).all())


def add_customer(browser: Browser, name: str = "江苏华源精细化工有限公司") -> int:
    response = browser.submit("/t/customer/add", {"name": name, "status": "active", "grade": "A"})
    assert response.status_code == 302, response.text
    return int(response.headers["Location"].rsplit("/", 1)[-1])


def test_a_contact_added_from_its_customers_tab_is_saved_and_leads_back_to_that_tab(app: Any, browser: Browser) -> None:
    customer = add_customer(browser)
    form = browser.get(f"/t/contact/add?_flt_0_customer={customer}")
    assert form.status_code == 200
    assert "添加到" in form.text and "江苏华源精细化工有限公司" in form.text  # the parent is shown, locked
    assert 'name="customer"' not in form.text
    response = browser.submit(f"/t/contact/add?_flt_0_customer={customer}",
                              {"name": "张伟", "mobile": "13812345678", "customer": "999"})
    assert response.status_code == 302
    assert response.headers["Location"] == f"/t/customer/show/{customer}#children-contact-customer"
    assert rows(app, "select name, mobile, customer_id from contact") == [("张伟", "13812345678", customer)]
    page = browser.get(response.headers["Location"])
    assert "保存成功" in page.text and 'id="children-contact-customer"' in page.text and "张伟" in page.text


def test_a_failed_save_from_a_parents_tab_keeps_the_input_and_the_parent(app: Any, browser: Browser) -> None:
    customer = add_customer(browser)
    response = browser.submit(f"/t/contact/add?_flt_0_customer={customer}", {"name": "张伟", "mobile": "12345"})
    assert response.status_code == 200
    assert "不是有效的电话号码" in response.text and 'value="张伟"' in response.text
    assert "江苏华源精细化工有限公司" in response.text
    assert rows(app, "select count(*) from contact") == [(0,)]


def test_a_sales_user_adds_a_follow_up_from_their_customers_tab(app: Any) -> None:
    from app.security.users import add_user
    with app.app_context():
        add_user(app.appbuilder, "zhangwei", "sales", PASSWORD, first_name="伟", last_name="张")
    sales = Browser(app, "zhangwei", PASSWORD)
    customer = add_customer(sales, "浙江龙盛化工有限公司")
    response = sales.submit(f"/t/follow_up/add?_flt_0_customer={customer}",
                            {"visit_date": "2026/12/01", "channel": "visit", "subject": "上门拜访",
                             "next_date": "2026年12月15日"})
    assert response.headers["Location"] == f"/t/customer/show/{customer}#children-follow_up-customer"
    with app.app_context():
        model = app.extensions["crm"].models.model("follow_up")
        saved = app.appbuilder.session.execute(sa.select(model)).scalar_one()
        assert (saved.subject, saved.visit_date.isoformat(), saved.next_date.isoformat(), saved.customer_id) == (
            "上门拜访", "2026-12-01", "2026-12-15", customer)
        assert saved.owner.username == "zhangwei"


@pytest.mark.parametrize("preset", ["abc", "0", "999999", "1&_flt_0_customer=2"])
def test_a_preset_parent_that_is_no_record_is_not_found(app: Any, browser: Browser, preset: str) -> None:
    add_customer(browser)
    page = browser.get("/t/contact/list/")
    posted = browser.client.post(f"/t/contact/add?_flt_0_customer={preset}",
                                 data={"csrf_token": csrf_token(page.text), "name": "张伟"})
    assert posted.status_code == 404 and "找不到页面或记录" in posted.text
    assert rows(app, "select count(*) from contact") == [(0,)]


def test_phones_are_found_by_their_digits_and_receivables_by_the_customers_name(app: Any, browser: Browser) -> None:
    browser.submit("/t/customer/add", {"name": "景德镇瓷釉化工", "phone": "0792-5643496"})
    add_customer(browser, "九江石化助剂厂")
    customer = rows(app, "select id from customer where name = '景德镇瓷釉化工'")[0][0]
    for number, pk in (("AR-0001", customer), ("AR-0002", customer + 1)):
        saved = browser.submit("/t/payment/add", {"number": number, "customer": pk, "amount_due": "1200",
                                                  "due_date": "2026-12-31"})
        assert saved.status_code == 302, saved.text
    for typed in ("0792-5643496", "07925643496", "5643496", "0792 5643496"):
        listed = browser.get("/t/customer/list/", query_string={"q": typed}).text
        assert "景德镇瓷釉化工" in listed and "九江石化助剂厂" not in listed, typed
    listed = browser.get("/t/payment/list/", query_string={"q": "瓷釉"}).text
    assert "AR-0001" in listed and "AR-0002" not in listed


def test_after_an_add_or_edit_the_user_lands_on_the_record(app: Any, browser: Browser) -> None:
    customer = add_customer(browser)
    edited = browser.submit(f"/t/customer/edit/{customer}", {"name": "江苏华源化工", "status": "active", "grade": "B"})
    assert edited.headers["Location"] == f"/t/customer/show/{customer}"
    page = browser.get(edited.headers["Location"])
    assert "保存成功" in page.text and "江苏华源化工" in page.text


@pytest.mark.parametrize("typed,stored", [
    ("2026-12-15", "2026-12-15"), ("2026/12/15", "2026-12-15"), ("2026.12.15", "2026-12-15"),
    ("2026年12月15日", "2026-12-15"), ("2027/3/31", "2027-03-31")])
def test_dates_typed_in_any_common_writing_are_kept(app: Any, browser: Browser, typed: str, stored: str) -> None:
    customer = add_customer(browser)
    response = browser.submit(f"/t/follow_up/add?_flt_0_customer={customer}",
                              {"visit_date": "2026-12-01", "subject": "电话回访", "next_date": typed})
    assert response.status_code == 302
    with app.app_context():
        model = app.extensions["crm"].models.model("follow_up")
        saved = app.appbuilder.session.execute(sa.select(model.next_date)).scalar()
    assert saved.isoformat() == stored


@pytest.mark.parametrize("typed,message", [
    ("2026-02-30", "没有这一天：2026年2月30日"),
    ("15/12/2026", "应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日")])
def test_an_impossible_date_is_refused_next_to_its_field(app: Any, browser: Browser, typed: str, message: str) -> None:
    customer = add_customer(browser)
    response = browser.submit(f"/t/follow_up/add?_flt_0_customer={customer}",
                              {"visit_date": "2026-12-01", "subject": "电话回访", "next_date": typed})
    assert response.status_code == 200
    assert message in response.text and f'value="{typed}"' in response.text
    assert rows(app, "select count(*) from follow_up") == [(0,)]


ERROR_PAGES = {
    400: ("无法执行", "Not possible"), 403: ("没有权限", "Not allowed"), 404: ("找不到页面或记录", "Not found"),
    405: ("不支持的操作", "Method not allowed"), 413: ("内容太大", "Too large"), 500: ("服务器出错", "Server error"),
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_every_error_page_is_the_panels_own_in_the_users_language(make_app: Any, lang: str) -> None:
    from app.security.users import add_user
    app = make_app(PROPAGATE_EXCEPTIONS=False, MAX_CONTENT_LENGTH=10_000)

    def broken() -> Any:
        raise RuntimeError("a bug nobody foresaw")
    app.add_url_rule("/broken", "broken", broken)
    with app.app_context():
        add_user(app.appbuilder, "u_service", "service", PASSWORD)
    admin, service = Browser(app), Browser(app, "u_service", PASSWORD)
    for person in (admin, service):
        person.get(f"/lang/{lang}")
    token = csrf_token(admin.get("/t/customer/list/").text)
    answers = {
        400: admin.get("/t/customer/list/?_flt_0_hazardous_licence_expiry=soon"),
        403: service.get("/users/list/"),
        404: admin.get("/t/order/show/4711"),
        405: admin.client.put("/t/customer/list/"),
        413: admin.client.post("/t/customer/add", data={"csrf_token": token, "notes": "长" * 20_000}),
        500: admin.get("/broken", headers={"Referer": "http://localhost/t/customer/list/"}),
    }
    expired = admin.client.post("/t/customer/add", data={"name": "甲", "csrf_token": "expired"})
    for status, response in answers.items():
        title = ERROR_PAGES[status][0 if lang == "zh" else 1]
        assert response.status_code == status, (status, response.status_code)
        assert f"</i> {title}</h2>" in response.text, (status, response.text[:300])
        assert 'class="navbar' in response.text  # inside the panel, with its menu
        assert "Werkzeug" not in response.text and "Internal Server Error" not in response.text
    assert 'href="/t/customer/list/"' in answers[500].text  # a way back to where the user was
    assert expired.status_code == 400 and ("页面已过期" if lang == "zh" else "The page has expired") in expired.text


@pytest.mark.parametrize("lang,words", [("zh-CN", ("未登录", "您的角色不能", "找不到", "必填")),
                                        ("en", ("Not logged in", "Your role may not", "Not found", "required"))])
def test_api_errors_follow_the_callers_language(app: Any, lang: str, words: tuple[str, ...]) -> None:
    from app.security.users import add_user
    from conftest import Api
    with app.app_context():
        add_user(app.appbuilder, "u_rnd", "rnd", PASSWORD)
    headers = {"Accept-Language": lang}
    unauthorised = app.test_client().get("/api/v1/customer/", headers=headers)
    forbidden = Api(app, "u_rnd", PASSWORD).delete("/api/v1/customer/1", headers=headers)
    missing = Api(app).get("/api/v1/customer/4711", headers=headers)
    invalid = Api(app).post("/api/v1/customer/", json={"city": "苏州"}, headers=headers)
    assert [r.status_code for r in (unauthorised, forbidden, missing, invalid)] == [401, 403, 404, 422]
    assert words[0] in unauthorised.json["message"] and words[1] in forbidden.json["message"]
    assert words[2] in missing.json["message"] and invalid.json["message"]["name"] == [words[3]]


def test_the_api_info_gives_labels_help_and_the_true_required(api: Any) -> None:
    info = {c["name"]: c
            for c in api.get("/api/v1/customer/_info", headers={"Accept-Language": "en"}).json["add_columns"]}
    assert (info["name"]["label"], info["name"]["required"], info["name"]["description"]) == ("Company", True, "")
    assert info["uscc"]["description"].startswith("The 18-character code") and info["city"]["required"] is False
    assert not any("Project-Id-Version" in str(c) for c in info.values())
    listing = api.get("/api/v1/contact/").json["label_columns"]
    assert listing["customer.name"] == "所属客户 · 公司名称" and "Owner First Name" not in str(listing)


def test_commands_print_nothing_from_flask_appbuilder_and_name_real_roles(db_url: str, tmp_path: Any,
                                                                           monkeypatch: Any, caplog: Any) -> None:
    from click.testing import CliRunner

    from app.cli import main
    for name, value in {"CRM_DATABASE_URL": db_url, "CRM_INSTANCE_DIR": str(tmp_path / "instance"),
                        "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations"),
                        "CRM_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789"}.items():
        monkeypatch.setenv(name, value)
    runner = CliRunner()
    helped = runner.invoke(main, ["user", "add", "--help"])
    assert "admin, sales, sales_manager, finance, service, rnd, auditor" in " ".join(helped.output.split())
    assert "staff" not in helped.output
    added = runner.invoke(main, ["user", "add", "zhangwei", "--role", "sales", "--password", "Longer-pass-2026x",
                                 "--last-name", "张", "--first-name", "伟"])
    assert added.exit_code == 0, added.output
    assert added.output.strip().splitlines()[-1] == "Added user 'zhangwei' with role 'sales'."
    said = [record.getMessage() for record in caplog.records] + [added.output]
    assert not [line for line in said if "flask fab" in line or "No user yet created" in line]


def test_history_shows_titles_names_labels_and_local_time(app: Any) -> None:
    import datetime as dt

    from app.audit.log import AUDIT_TABLE
    from app.security.users import add_user
    from conftest import Api
    with app.app_context():
        zhang = add_user(app.appbuilder, "zhangwei", "sales", PASSWORD, first_name="伟", last_name="张").id
    api = Api(app)
    mine = api.post("/api/v1/customer/", json={"name": "甲公司", "owner": zhang}).json["id"]
    theirs = api.post("/api/v1/customer/", json={"name": "乙公司"}).json["id"]
    pk = api.post("/api/v1/contact/", json={"customer": theirs, "name": "王强"}).json["id"]
    assert api.put(f"/api/v1/contact/{pk}", json={"customer": mine}).status_code == 200
    page = Browser(app).get(f"/t/contact/show/{pk}").text
    history = re.sub(r"<[^>]+>", " ", page[page.index('id="history"'):])
    assert re.search(r"所属客户\s*:?\s*乙公司\s*→\s*甲公司", " ".join(history.split())), history[:800]
    assert "Asia/Shanghai, UTC+08:00" in page
    with app.app_context():
        stored = app.appbuilder.session.execute(sa.select(AUDIT_TABLE.c.at).where(
            AUDIT_TABLE.c.table_key == "contact").order_by(AUDIT_TABLE.c.id.desc())).scalar()
    assert (stored + dt.timedelta(hours=8)).strftime("%Y-%m-%d %H:%M") in page
    sales = Browser(app, "zhangwei", PASSWORD).get(f"/t/contact/show/{pk}").text
    assert f"#{theirs}" in sales and "乙公司" not in sales  # a customer out of the viewer's reach: its id only
    customer_page = Browser(app).get(f"/t/customer/show/{mine}").text
    assert "张伟" in customer_page and f"#{zhang}" not in customer_page


def test_review_role_and_user_pages_speak_in_labels_and_chinese_verbs(app: Any, browser: Browser) -> None:
    from app.security.users import add_user
    with app.app_context():
        user = add_user(app.appbuilder, "zhangwei", "sales", PASSWORD, first_name="伟", last_name="张").id
        sales = app.appbuilder.sm.find_role("sales").id
    review = browser.get("/permissions/review/").text
    plain = " ".join(re.sub(r"<[^>]+>", " ", review).split())
    assert "查看、新增、修改" in plain and "本人的记录（所属客户 · 负责销售是本人）" in plain
    assert "read, export" not in plain and "own (customer.owner)" not in plain
    role = " ".join(re.sub(r"<[^>]+>", " ", browser.get(f"/roles/show/{sales}").text).split())
    assert "联系人：查看、新增、修改" in role and "can create on" not in role
    person = " ".join(re.sub(r"<[^>]+>", " ", browser.get(f"/users/show/{user}").text).split())
    assert "销售" in person
    assert "联系人：查看、新增、修改、导出、导入、菜单" in role and "menu:contact" not in role
