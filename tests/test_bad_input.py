"""Bad input never reaches a server error: each case from the penetration test answers 400, 404, 405,
413 or 422 with a message naming what was wrong, and nothing stored changes — on every database."""
from __future__ import annotations

import io
import json
from typing import Any

import pytest
import sqlalchemy as sa

from app.seed import load_demo_data
from conftest import Api, Browser, csrf_token

NOT_AN_OBJECT = "请求内容应为一个 JSON 对象,例如 {\"name\": \"...\"}"
NOT_FOUND = {"message": "找不到：没有这个地址或记录，或记录不在您可见的范围内"}


@pytest.fixture
def demo(app: Any) -> Any:
    load_demo_data(app, scale=0.02)
    return app


def snapshot(app: Any) -> dict[str, Any]:
    """Return every row of every schema table, to compare before and after a bad request."""
    with app.app_context():
        session = app.appbuilder.session
        tables = app.extensions["crm"].models.metadata.sorted_tables
        return {t.name: [tuple(r) for r in session.execute(sa.select(t).order_by(t.c.id))] for t in tables}


def first(app: Any, table: str) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model(table)
        return app.appbuilder.session.execute(sa.select(sa.func.min(model.id))).scalar()


TOO_LONG_TEXT = "字" * 30000
API_CASES = [
    # (method, url, body, status, message); {c} is the first customer's id, {line} the first order line's
    ("get", "/api/v1/customer/99999999999999999999", None, 404, NOT_FOUND),
    ("get", "/api/v1/customer/2147483648", None, 404, NOT_FOUND),
    ("get", "/api/v1/customer/-5", None, 404, NOT_FOUND),
    ("get", "/api/v1/customer/abc", None, 404, NOT_FOUND),
    ("put", "/api/v1/customer/abc", {"name": "x"}, 404, NOT_FOUND),
    ("delete", "/api/v1/customer/99999999999999999999", None, 404, NOT_FOUND),
    ("put", "/api/v1/customer/99999999999999999999", {"name": "x"}, 404, NOT_FOUND),
    ("post", "/api/v1/customer/", [], 400, {"message": NOT_AN_OBJECT}),
    ("post", "/api/v1/customer/", None, 400, {"message": NOT_AN_OBJECT}),
    ("post", "/api/v1/customer/", "abc", 400, {"message": NOT_AN_OBJECT}),
    ("put", "/api/v1/customer/{c}", [], 400, {"message": NOT_AN_OBJECT}),
    ("put", "/api/v1/customer/{c}", None, 400, {"message": NOT_AN_OBJECT}),
    ("post", "/api/v1/customer/", "RAW:{\"name\": ", 400, {"message": NOT_AN_OBJECT}),
    ("post", "/api/v1/customer/", "RAW:{\"name\": \"\\ud800\"}", 422,
     {"message": {"name": ["含有不允许的字符 U+D800(控制字符或不可见字符),请删除后重试"]}}),
    ("put", "/api/v1/customer/{c}", {"name": "a\u0000b"}, 422,
     {"message": {"name": ["含有不允许的字符 U+0000(控制字符或不可见字符),请删除后重试"]}}),
    ("put", "/api/v1/customer/{c}", {"name": "\u202egnp.exe"}, 422,
     {"message": {"name": ["含有不允许的字符 U+202E(控制字符或不可见字符),请删除后重试"]}}),
    ("put", "/api/v1/customer/{c}", {"name": "华\u200b源"}, 422,
     {"message": {"name": ["含有不允许的字符 U+200B(控制字符或不可见字符),请删除后重试"]}}),
    ("put", "/api/v1/customer/{c}", {"credit_limit": "1e30"}, 422, {"message": {"credit_limit": ["数值太大"]}}),
    ("put", "/api/v1/customer/{c}", {"credit_limit": 1e308}, 422, {"message": {"credit_limit": ["数值太大"]}}),
    ("put", "/api/v1/customer/{c}", {"notes": TOO_LONG_TEXT}, 422, {"message": {"notes": [
        "内容太长:最多 65535 字节(约 21845 个汉字),现有 90000 字节"]}}),
    ("put", "/api/v1/contact/{contact}", {"customer": {"foo": 1}}, 422,
     {"message": {"customer": ["应为记录 id(整数)"]}}),
    ("put", "/api/v1/contact/{contact}", {"customer": 99999999999999999999}, 422,
     {"message": {"customer": ["不存在 id 为 99999999999999999999 的客户"]}}),
    ("get", "/api/v1/customer/?q=(((", None, 400, {"message": "参数 q 不是有效的 rison 或 JSON"}),
    ("get", "/api/v1/customer/?q=(a:", None, 400, {"message": "参数 q 不是有效的 rison 或 JSON"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:name,opr:ct,value:!(a,b))))", None, 400,
     {"message": "filters[0]: 筛选条件“公司名称”的值无效:应为单个值,不是列表或对象"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:name,opr:ct,value:'a%00b')))", None, 400,
     {"message": "参数“q”含有不允许的字符 U+0000(控制字符或不可见字符),请删除后重试"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:credit_limit,opr:gt,value:abc)))", None, 400,
     {"message": "filters[0]: 筛选条件“信用额度（元）”的值无效:应为数字"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:hazardous_licence_expiry,opr:gt,value:'2025-13-01')))", None, 400,
     {"message": "filters[0]: 筛选条件“许可证有效期至”的值无效:没有这一天：2025年13月1日"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:owner,opr:rel_o_m,value:99999999999)))", None, 400,
     {"message": "filters[0]: 筛选条件“负责销售”的值无效:应为记录 id(正整数)"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:name)))", None, 400,
     {"message": "参数 q 的结构不符合要求:'opr' is a required property"}),
    ("get", "/api/v1/customer/?q=(filters:name)", None, 400,
     {"message": "参数 q 的结构不符合要求:'name' is not of type 'array'"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:name,opr:ct,value:a,extra:1)))", None, 200, None),
    ("get", "/api/v1/customer/?q=(page:-1,page_size:10)", None, 400, {"message": "page 应为 0 到 10000000 之间的整数"}),
    ("get", "/api/v1/customer/?q=%00", None, 400,
     {"message": "参数“q”含有不允许的字符 U+0000(控制字符或不可见字符),请删除后重试"}),
    ("put", "/api/v1/customer/_info", {}, 405, {"message": "这个地址不支持此请求方式。"}),
    ("delete", "/api/v1/customer/_info", None, 405, {"message": "这个地址不支持此请求方式。"}),
    ("put", "/api/v1/order_line/{line}", {"quantity": 99999999999999999999}, 422,
     {"message": {"quantity": ["数值太大"]}}),
    ("get", "/api/v1/customer/?q=(page:9999999999999999999)", None, 400,
     {"message": "page 应为 0 到 10000000 之间的整数"}),
    ("get", "/api/v1/follow_up/_info?q=(add_columns:(owner:(page:9999999999999999999)))", None, 400,
     {"message": "page 应为 0 到 10000000 之间的整数"}),
    ("get", "/api/v1/follow_up/_info?q=(add_columns:(customer:(page:0,page_size:-5)))", None, 400,
     {"message": "page_size 应为 0 到 10000000 之间的整数"}),
    ("get", "/api/v1/customer/?q=(filters:!((col:name,opr:ct,value:'" + "中" * 17000 + "')))", None, 400,
     {"message": "filters[0]: 筛选条件“公司名称”的值无效:搜索内容太长:最多 200 个字符"}),
    # choice and multi-choice values that are not options (they were stored, or ended in a 500)
    ("put", "/api/v1/customer/{c}", {"grade": 0}, 422, None),
    ("put", "/api/v1/customer/{c}", {"grade": False}, 422, None),
    ("put", "/api/v1/customer/{c}", {"grade": ["A", "B"]}, 422, None),
    ("put", "/api/v1/customer/{c}", {"grade": ["A"]}, 422, None),
    ("put", "/api/v1/customer/{c}", {"grade": {}}, 422, None),
    ("put", "/api/v1/customer/{c}", {"tags": [0, None, False]}, 422, None),
    ("put", "/api/v1/customer/{c}", {"tags": {"a": 1}}, 422, {"message": {"tags": ["应为选项列表"]}}),
    ("put", "/api/v1/customer/{c}", {"tags": 0}, 422, {"message": {"tags": ["应为选项列表"]}}),
    ("put", "/api/v1/customer/{c}", {"tags": [["key_account"]]}, 422, None),
    ("post", "/api/v1/payment/", {"amount_due": "9999999999999999.99"}, 422, None),
]


def test_bad_api_input_gets_a_clear_answer_and_changes_nothing(demo: Any) -> None:
    """Every case of API_CASES, on one app (each leaves the data as it was): all mismatches are listed."""
    api = Api(demo)
    ids = {"c": first(demo, "customer"), "contact": first(demo, "contact"), "line": first(demo, "order_line")}
    before = snapshot(demo)
    wrong = []
    for method, url, body, status, message in API_CASES:
        url = url.format(**ids)
        if isinstance(body, str) and body.startswith("RAW:"):
            answer = getattr(api, method)(url, data=body[4:], content_type="application/json")
        elif method in ("post", "put"):
            answer = getattr(api, method)(url, data=json.dumps(body), content_type="application/json")
        else:
            answer = getattr(api, method)(url)
        if answer.status_code != status or (message is not None and answer.json != message) \
                or "SQL" in answer.text or "Traceback" in answer.text:
            wrong.append((method, url[:80], str(body)[:40], answer.status_code, answer.text[:200]))
        if snapshot(demo) != before:
            wrong.append((method, url[:80], str(body)[:40], "changed what is stored"))
            before = snapshot(demo)
    assert not wrong, "\n".join(map(str, wrong))


def test_amounts_are_kept_exactly_on_every_database(demo: Any) -> None:
    api = Api(demo)
    customer = first(demo, "customer")
    largest = api.post("/api/v1/payment/", json={"number": "AR-MAX", "customer": customer,
                                                 "amount_due": "9999999999999.99"})
    assert largest.status_code == 201, largest.json
    assert api.get(f"/api/v1/payment/{largest.json['id']}").json["result"]["amount_due"] == "9999999999999.99"
    over = api.post("/api/v1/payment/", json={"number": "AR-OVER", "customer": customer,
                                              "amount_due": "10000000000000.00"})
    assert over.status_code == 422 and over.json["message"] == {"amount_due": ["数值太大"]}


def test_integer_fields_and_ids_stay_in_their_columns_range(make_app: Any, schema_dir: Any) -> None:
    path = schema_dir / "products.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("      sds: {type: attachment",
                                 "      shelf_days: {type: integer, label: 保质期天数}\n"
                                 "      sds: {type: attachment"), encoding="utf-8")
    api = Api(make_app(schema_dir=schema_dir))
    huge = api.post("/api/v1/product/", json={"name": "甲醇", "code": "M-1", "shelf_days": 2 ** 31})
    assert huge.status_code == 422
    assert huge.json["message"] == {"shelf_days": ["数值超出范围:应在 -2147483648 到 2147483647 之间"]}
    fine = api.post("/api/v1/product/", json={"name": "甲醇", "code": "M-1", "shelf_days": 2 ** 31 - 1})
    assert fine.status_code == 201, fine.json
    found = api.get(f"/api/v1/product/?q=(filters:!((col:shelf_days,opr:eq,value:{2 ** 63})))")
    assert found.status_code == 400
    assert found.json["message"] == ("filters[0]: 筛选条件“保质期天数”的值无效:数值超出范围:应在 -2147483648 到 "
                                     "2147483647 之间")


def test_a_body_over_the_limit_answers_413(demo: Any) -> None:
    api = Api(demo)
    before = snapshot(demo)
    big = b'{"name": "' + b"x" * (33 * 1024 * 1024) + b'"}'
    answer = api.post("/api/v1/customer/", data=big, content_type="application/json")
    assert answer.status_code == 413
    assert answer.json == {"message": "上传或提交的内容超过了允许的大小。"}
    page = Browser(demo).client.post("/t/customer/add", data=big, content_type="application/x-www-form-urlencoded")
    assert page.status_code == 413 and "内容太大" in page.text
    assert snapshot(demo) == before


SCREEN_CASES = [
    ("/t/customer/list/?psize_CustomerView=abc", 400, "参数“psize_CustomerView”应为整数，现为“abc”"),
    ("/t/customer/list/?page_CustomerView=abc", 400, "参数“page_CustomerView”应为整数，现为“abc”"),
    ("/t/customer/list/?q=%00", 400, "参数“q”含有不允许的字符 U+0000(控制字符或不可见字符),请删除后重试"),
    ("/t/customer/list/?_flt_0_name=a%00", 400, "含有不允许的字符 U+0000"),
    ("/t/customer/list/?_flt_9_status=active", 400, "字段“客户状态”没有第 9 种筛选方式"),
    ("/t/customer/list/?_flt_0_hazardous_licence_expiry=abc", 400,
     "筛选条件“许可证有效期至”的值无效:应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日"),
    ("/t/customer/list/?_flt_2_hazardous_licence_expiry=2025-02-30", 400,
     "筛选条件“许可证有效期至”的值无效:没有这一天：2025年2月30日"),
    ("/t/product/list/?_flt_0_is_active=maybe", 400, "筛选条件“在售”的值无效:应为 是 或 否"),
    ("/t/customer/list/?_flt_0_owner=99999999999", 400, "筛选条件“负责销售”的值无效:应为记录 id(正整数)"),
    ("/t/customer/show/99999999999999999999", 404, "这个页面或记录不存在，或不在您可见的范围内。"),
    ("/t/customer/edit/abc", 404, "这个页面或记录不存在，或不在您可见的范围内。"),
    ("/t/customer/add?_flt_9_owner=2", 400, "字段“负责销售”没有第 9 种筛选方式"),
    ("/t/customer/edit/{c}?_flt_5_status=active", 400, "字段“客户状态”没有第 5 种筛选方式"),
    ("/t/customer/list/?q=" + "中" * 17000, 400, "搜索内容太长：最多 200 个字符"),
    ("/users/show/99999999999999999999", 404, "这个页面或记录不存在"),
    ("/roles/edit/99999999999999999999", 404, "这个页面或记录不存在"),
    ("/groups/show/99999999999999999999", 404, "这个页面或记录不存在"),
    ("/audit/?to=9999-12-31", 200, "审计日志"),
    ("/audit/?page=99999999999999999999", 200, "审计日志"),
    ("/t/no_such_table/list/", 404, "这个页面或记录不存在，或不在您可见的范围内。"),
]


def test_bad_screen_arguments_get_a_page_in_chinese(demo: Any) -> None:
    browser = Browser(demo)
    wrong = []
    for url, status, text in SCREEN_CASES:
        page = browser.get(url.format(c=first(demo, "customer")))
        if page.status_code != status or text not in page.text or "Traceback" in page.text or "Not Found" in page.text:
            wrong.append((url[:80], page.status_code))
    assert not wrong, wrong


def test_a_link_preset_beyond_any_id_is_not_found(demo: Any) -> None:
    browser = Browser(demo)
    url = "/t/follow_up/add?_flt_0_customer=99999999999999999999"
    form = browser.get(url)  # the form is not offered for a parent that cannot exist
    assert form.status_code == 404 and "这个页面或记录不存在" in form.text
    token = csrf_token(browser.get("/t/follow_up/list/").text)
    answer = browser.client.post(url, data={"csrf_token": token, "channel": "phone", "visit_date": "2026-12-01",
                                            "content": "电话回访"})
    assert answer.status_code == 404 and "这个页面或记录不存在" in answer.text


def test_a_page_is_never_longer_than_the_cap(demo: Any) -> None:
    browser = Browser(demo)
    everything = browser.get("/t/order_line/list/?psize_OrderLineView=-1")
    assert everything.status_code == 200
    assert everything.text.count("/t/order_line/show/") == 100
    api = Api(demo)
    assert len(api.get("/api/v1/order_line/?q=(page_size:100000)").json["ids"]) == 100
    small = demo.extensions["crm"]
    assert small.schema and browser.get("/t/order_line/list/?psize_OrderLineView=25").text.count(
        "/t/order_line/show/") == 25


def test_an_upload_with_a_long_chinese_name_is_stored(demo: Any) -> None:
    browser = Browser(demo)
    product = first(demo, "product")
    name = "安全技术说明书" * 17 + ".pdf"  # 119 Chinese characters: 357 bytes, more than a file name may hold
    form = browser.get(f"/t/product/edit/{product}").text
    answer = browser.client.post(f"/t/product/edit/{product}", data={
        "csrf_token": csrf_token(form), "name": "甲醇", "code": "M-LONG", "sds": (io.BytesIO(b"%PDF-1.4"), name)},
        content_type="multipart/form-data")
    assert answer.status_code == 302, answer.text
    stored = Api(demo).get(f"/api/v1/product/{product}").json["result"]["sds"]
    assert stored.endswith(".pdf") and stored.split("__", 1)[1].startswith("安全技术说明书")
    assert len(stored.encode("utf-8")) <= 255
    page = browser.get(f"/t/product/show/{product}").text
    link = page.split('/t/product/file/sds/', 1)[1].split('"', 1)[0]
    download = browser.get(f"/t/product/file/sds/{link}")
    assert download.status_code == 200 and download.data == b"%PDF-1.4"
    download.close()


def test_attachments_take_only_the_file_types_the_field_accepts(demo: Any) -> None:
    browser, api = Browser(demo), Api(demo)
    product = first(demo, "product")
    for name, allowed in (("sds.pdf", True), ("photo.JPG", True), ("page.html", False), ("logo.svg", False),
                          ("run.php", False), ("noextension", False)):
        form = browser.get(f"/t/product/edit/{product}").text
        answer = browser.client.post(f"/t/product/edit/{product}", data={
            "csrf_token": csrf_token(form), "name": "甲醇", "code": "M-TYPE",
            "sds": (io.BytesIO(b"<script>x</script>"), name)}, content_type="multipart/form-data")
        stored = api.get(f"/api/v1/product/{product}").json["result"]["sds"]
        if allowed:
            assert answer.status_code == 302 and stored.endswith(name), name
        else:
            assert answer.status_code == 200, name
            shown = f".{name.rsplit('.', 1)[1]}" if "." in name else "没有扩展名的"
            assert f"不能上传{shown}文件;可上传:pdf, doc, docx" in answer.text, name
            assert stored is None or not stored.endswith(name), name


def test_accept_lists_the_file_types_of_a_field(make_app: Any, schema_dir: Any) -> None:
    from app.schema import SchemaError, load_schema
    path = schema_dir / "products.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("      sds: {type: attachment,", "      sds: {type: attachment, accept: [.PDF, svg],"),
                    encoding="utf-8")
    assert load_schema(schema_dir).table("product").field("sds").accept == ("pdf", "svg")
    path.write_text(text.replace("      sds: {type: attachment,", "      sds: {type: attachment, accept: [p d f],"),
                    encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        load_schema(schema_dir)
    assert "tables.product.fields.sds.accept[0]: 'p d f' is not a file extension\n" \
           "    hint: e.g. accept: [pdf, jpg, png, xlsx]" in str(caught.value)


def test_the_api_does_not_write_attachment_names(demo: Any) -> None:
    api = Api(demo)
    product = first(demo, "product")
    answer = api.put(f"/api/v1/product/{product}", json={"sds": "0123__someone-elses.pdf"})
    assert answer.status_code == 422 and answer.json["message"] == {"sds": ["Unknown field."]}
