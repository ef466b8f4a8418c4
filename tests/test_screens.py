"""CRUD through the generated screens, in Chinese, as a logged-in user would do it."""
from __future__ import annotations

import re
from typing import Any

import sqlalchemy as sa

from conftest import ADMIN_PASSWORD, Browser

VALID_USCC = "91350100M000100Y43"


def count(app: Any, table_key: str) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model(table_key)
        return app.appbuilder.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def first_id(app: Any, table_key: str, **where: Any) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model(table_key)
        query = sa.select(model.id).filter_by(**where)
        return app.appbuilder.session.execute(query).scalars().first()


def add_customer(browser: Browser, name: str, **extra: Any) -> Any:
    data = {"name": name, "uscc": "", "status": "active", "grade": "A", **extra}
    return browser.submit("/t/customer/add", data)


def test_menu_lists_every_table_in_chinese(browser: Browser) -> None:
    page = browser.get("/").text
    for label in ("客户", "联系人", "产品", "订单", "订单明细", "发票", "应收款", "客户反馈", "跟进记录"):
        assert f"> {label}" in page or f">{label}<" in page or label in page


def test_customer_create_list_search_edit_delete(app: Any, browser: Browser) -> None:
    response = add_customer(browser, "江苏华源精细化工有限公司", uscc=VALID_USCC, tags=["key_account"],
                            credit_limit="500000")
    assert response.status_code == 302
    add_customer(browser, "浙江远大化学品有限公司", status="prospect")
    listing = browser.get("/t/customer/list/").text
    assert "江苏华源精细化工有限公司" in listing
    assert 'style="background-color:#52c41a">合作中</span>' in listing
    assert "500,000.00" in listing

    found = browser.get("/t/customer/list/?q=华源").text
    assert "江苏华源精细化工有限公司" in found and "浙江远大化学品有限公司" not in found
    by_code = browser.get(f"/t/customer/list/?q={VALID_USCC[:8]}").text
    assert "江苏华源精细化工有限公司" in by_code

    pk = first_id(app, "customer", name="江苏华源精细化工有限公司")
    detail = browser.get(f"/t/customer/show/{pk}").text
    assert VALID_USCC in detail and "重点客户" in detail

    edited = browser.submit(f"/t/customer/edit/{pk}", {"name": "江苏华源精细化工股份有限公司", "status": "dormant",
                                                        "grade": "B", "uscc": VALID_USCC})
    assert edited.status_code == 302
    assert "江苏华源精细化工股份有限公司" in browser.get(f"/t/customer/show/{pk}").text

    browser.submit("/t/customer/list/", {}, post_url=f"/t/customer/delete/{pk}")
    assert count(app, "customer") == 1


def test_filters_and_sorting(app: Any, browser: Browser) -> None:
    add_customer(browser, "甲公司", status="active")
    add_customer(browser, "乙公司", status="prospect")
    filtered = browser.get("/t/customer/list/?_flt_0_status=prospect").text
    assert "乙公司" in filtered and "甲公司" not in filtered
    descending = browser.get("/t/customer/list/?_oc_CustomerView=name&_od_CustomerView=desc").text
    ascending = browser.get("/t/customer/list/?_oc_CustomerView=name&_od_CustomerView=asc").text
    assert descending.index("甲公司") < descending.index("乙公司")
    assert ascending.index("乙公司") < ascending.index("甲公司")


def test_keyword_search_matches_choice_labels(app: Any, browser: Browser) -> None:
    add_customer(browser, "甲公司")
    customer = first_id(app, "customer", name="甲公司")
    for subject, channel in (("季度回访", "visit"), ("报价确认", "phone")):
        response = browser.submit("/t/follow_up/add", {"customer": customer, "visit_date": "2026-11-02",
                                                       "channel": channel, "subject": subject})
        assert response.status_code == 302
    by_zh = browser.get("/t/follow_up/list/?q=上门").text
    assert "季度回访" in by_zh and "报价确认" not in by_zh
    by_en = browser.get("/t/follow_up/list/?q=visit").text
    assert "季度回访" in by_en and "报价确认" not in by_en


def test_filter_panel_offers_the_tables_filters(browser: Browser) -> None:
    page = browser.get("/t/follow_up/list/").text
    offered = re.findall(r'<a href="#" name="(\w+)" class="filter">', page)
    assert offered == ["channel", "owner", "customer", "visit_date", "next_date"]


def test_validation_errors_are_shown_next_to_each_field(app: Any, browser: Browser) -> None:
    response = add_customer(browser, "", uscc="91350100M000100Y44", website="www.example.com",
                            credit_limit="-5", phone="12345")
    assert response.status_code == 200
    page = response.text
    assert "必填" in page
    assert "统一社会信用代码校验位不正确" in page
    assert "不是有效的网址,应以 http:// 或 https:// 开头" in page
    assert "不能小于 0" in page
    assert "不是有效的电话号码" in page
    assert count(app, "customer") == 0


def test_unique_name_is_refused_with_a_message(app: Any, browser: Browser) -> None:
    add_customer(browser, "同名公司")
    response = add_customer(browser, "同名公司")
    assert response.status_code == 200
    assert "已存在相同的公司名称“同名公司”" in response.text
    assert count(app, "customer") == 1


def test_order_with_lines_shows_children_and_blocks_delete(app: Any, browser: Browser) -> None:
    add_customer(browser, "山东鲁北化工有限公司")
    customer = first_id(app, "customer")
    product = browser.submit("/t/product/add", {"code": "P-001", "name": "乙醇", "cas_number": "64-17-5",
                                                "category": "organic_solvent", "unit_price": "6500"})
    assert product.status_code == 302, re.findall(r'help-block[^<]*<[^>]*>([^<]*)', product.text)
    order = browser.submit("/t/order/add", {"number": "SO-2025-0001", "customer": str(customer),
                                            "order_date": "2025-03-01", "status": "confirmed",
                                            "currency": "CNY", "total": "13000"})
    assert order.status_code == 302, re.findall(r'help-block[^<]*<[^>]*>([^<]*)', order.text)
    order_id = first_id(app, "order")
    line = browser.submit("/t/order_line/add", {"order": str(order_id), "product": str(first_id(app, "product")),
                                                "quantity": "2", "unit": "t", "unit_price": "6500",
                                                "amount": "13000"})
    assert line.status_code == 302, re.findall(r'help-block[^<]*<[^>]*>([^<]*)', line.text)

    detail = browser.get(f"/t/customer/show/{customer}").text
    assert "SO-2025-0001" in detail and "订单" in detail
    order_page = browser.get(f"/t/order/show/{order_id}").text
    assert "乙醇" in order_page and "山东鲁北化工有限公司" in order_page

    response = browser.submit("/t/customer/list/", {}, post_url=f"/t/customer/delete/{customer}",
                              follow_redirects=True)
    assert "无法删除客户“山东鲁北化工有限公司”:仍有 1 条销售订单(字段“客户”)引用它。" in response.text
    assert count(app, "customer") == 1

    browser.submit("/t/order/list/", {}, post_url=f"/t/order/delete/{order_id}")
    assert count(app, "order") == 0 and count(app, "order_line") == 0


def test_forms_use_dropdowns_checkboxes_and_date_pickers(browser: Browser) -> None:
    page = browser.get("/t/customer/add").text
    assert re.search(r'<select[^>]*name="status"', page)
    assert 'type="checkbox"' in page and 'name="tags"' in page
    follow_up = browser.get("/t/follow_up/add").text
    assert 'data-provide="datepicker"' in follow_up
    assert re.search(r'<select(?=[^>]*name="customer")[^>]*data-url="/t/follow_up/pick/customer"', follow_up)
    assert '<option value="">—</option>' in follow_up


def test_english_can_be_chosen(browser: Browser) -> None:
    browser.get("/lang/en")
    page = browser.get("/t/customer/list/").text
    assert "Customer list" in page and "Company" in page


def test_staff_user_can_log_in_and_work(app: Any) -> None:
    with app.app_context():
        from app.security.users import add_user
        add_user(app.appbuilder, "zhang", "sales_manager", "staff-pass-1")
    staff = Browser(app, "zhang", "staff-pass-1")
    assert add_customer(staff, "员工新建客户").status_code == 302
    assert "员工新建客户" in staff.get("/t/customer/list/").text
    assert staff.get("/users/list/").status_code in (302, 403)
    assert ADMIN_PASSWORD


def test_attachments_upload_download_and_stay_on_edit(make_app: Any, schema_dir: Any) -> None:
    import io
    path = schema_dir / "products.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "sds: {type: attachment,", "sds: {type: attachment, required: true,"), encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    browser = Browser(app)
    product = {"code": "P-001", "name": "无水乙醇", "unit_price": "12.5"}
    missing = browser.submit("/t/product/add", product, content_type="multipart/form-data")
    assert missing.status_code == 200 and "必填" in missing.text
    assert count(app, "product") == 0

    sent = browser.submit("/t/product/add", {**product, "sds": (io.BytesIO(b"%PDF-1.4 SDS"), "乙醇SDS.pdf")},
                          content_type="multipart/form-data")
    assert sent.status_code == 302, sent.text
    pk = first_id(app, "product", code="P-001")
    detail = browser.get(f"/t/product/show/{pk}").text
    link = re.search(r'href="(/t/product/file/sds/[^"]+)"', detail)
    assert link and "乙醇SDS.pdf" in detail
    assert downloaded(browser, link.group(1)) == b"%PDF-1.4 SDS"

    kept = browser.submit(f"/t/product/edit/{pk}", {**product, "name": "无水乙醇(AR)"},
                          content_type="multipart/form-data")
    assert kept.status_code == 302, kept.text
    assert downloaded(browser, link.group(1)) == b"%PDF-1.4 SDS"
    assert browser.get("/t/product/file/sds/not-a-stored-file.pdf").status_code == 404


def downloaded(browser: Browser, url: str) -> bytes:
    response = browser.get(url)
    try:
        assert response.status_code == 200
        return response.data
    finally:
        response.close()
