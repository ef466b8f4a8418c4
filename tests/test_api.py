"""The REST API of every table: CRUD behind a JWT login, 422 with a message per field."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

from app.demo import build_demo_rows
from conftest import Api, Browser


def as_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


def sample_payloads(app: Any, user_id: int) -> dict[str, dict[str, Any]]:
    """Return one valid payload per table (links as row indexes), taken from the demo generator."""
    schema = app.extensions["crm"].schema
    rows = build_demo_rows(schema, [user_id], seed=7, scale=0.01)
    return {table: table_rows[0] for table, table_rows in rows.items() if table_rows}


def test_crud_every_table_through_the_api(app: Any, api: Api) -> None:
    from app.security.users import add_user
    schema = app.extensions["crm"].schema
    created: dict[str, int] = {}
    with app.app_context():  # user fields such as customer.owner offer salespeople only
        seller = add_user(app.appbuilder, "zhangwei", "sales", "chem-demo-2026").id
    for table_key, row in sample_payloads(app, seller).items():
        table = schema.table(table_key)
        payload = {}
        for f in table.fields:
            value = row.get(f.key)
            if f.type == "link":
                value = created.get(f.to or "") if value is not None else None
            payload[f.key] = as_json(value)
        payload = {k: v for k, v in payload.items() if v is not None and not table.field(k).readonly
                       and not table.field(k).is_computed}
        response = api.post(f"/api/v1/{table_key}/", json=payload)
        assert response.status_code == 201, (table_key, response.json)
        created[table_key] = response.json["id"]

        shown = api.get(f"/api/v1/{table_key}/{created[table_key]}").json["result"]
        for key, value in payload.items():
            if table.field(key).is_relation:
                assert shown[key]["id"] == value, (table_key, key)
            elif table.field(key).type in ("decimal", "money", "percent"):
                assert Decimal(shown[key]) == Decimal(value), (table_key, key, shown[key], value)
            else:
                assert shown[key] == value, (table_key, key, shown[key], value)

        title = table.title
        if not table.field(title).is_relation:
            new_title = f"{payload.get(title, '')}-改"[:50] if table.field(title).type == "string" else None
            if new_title:
                edited = api.put(f"/api/v1/{table_key}/{created[table_key]}", json={title: new_title})
                assert edited.status_code == 200, (table_key, edited.json)
                assert api.get(f"/api/v1/{table_key}/{created[table_key]}").json["result"][title] == new_title

        listing = api.get(f"/api/v1/{table_key}/")
        assert listing.status_code == 200 and listing.json["count"] == 1
    for table_key in reversed(list(created)):
        deleted = api.delete(f"/api/v1/{table_key}/{created[table_key]}")
        assert deleted.status_code == 200, (table_key, deleted.json)
        assert api.get(f"/api/v1/{table_key}/{created[table_key]}").status_code == 404


def test_invalid_values_get_422_with_a_message_per_field(api: Api) -> None:
    response = api.post("/api/v1/customer/", json={
        "name": "测试化工", "uscc": "91350100M000100Y44", "website": "example", "credit_limit": "abc",
        "status": "unknown", "tags": ["key_account", "nope"], "hazardous_licence_expiry": "2025-13-01"})
    assert response.status_code == 422
    message = response.json["message"]
    assert message["uscc"] == ["统一社会信用代码校验位不正确（应为 3）"]
    assert message["website"] == ["不是有效的网址,应以 http:// 或 https:// 开头"]
    assert message["credit_limit"] == ["应为数字"]
    assert message["status"][0].startswith("“unknown”不是可选项,可选:prospect(潜在客户)")
    assert message["tags"][0].startswith("“nope”不是可选项")
    assert message["hazardous_licence_expiry"] == ["没有这一天：2025年13月1日"]
    assert api.get("/api/v1/customer/").json["count"] == 0


def test_messages_follow_the_language_parameter(api: Api) -> None:
    response = api.post("/api/v1/customer/?_l_=en", json={"name": "X", "uscc": "123"})
    assert response.json["message"]["uscc"] == [
        "a unified social credit code has 18 digits or capital letters (no I, O, Z, S, V)"]


def test_required_fields_unique_values_and_missing_links(api: Api) -> None:
    missing = api.post("/api/v1/contact/", json={"mobile": "13812345678"})
    assert missing.status_code == 422
    assert missing.json["message"] == {"customer": ["必填"], "name": ["必填"]}

    assert api.post("/api/v1/customer/", json={"name": "唯一公司"}).status_code == 201
    duplicate = api.post("/api/v1/customer/", json={"name": "唯一公司"})
    assert duplicate.status_code == 422
    assert duplicate.json["message"] == {"name": ["已存在相同的公司名称“唯一公司”"]}

    dangling = api.post("/api/v1/contact/", json={"name": "王经理", "customer": 999})
    assert dangling.status_code == 422
    assert dangling.json["message"] == {"customer": ["不存在 id 为 999 的客户"]}


def test_put_validates_and_keeps_other_fields(api: Api) -> None:
    pk = api.post("/api/v1/customer/", json={"name": "甲化工", "grade": "A", "credit_limit": "1000.50"}).json["id"]
    bad = api.put(f"/api/v1/customer/{pk}", json={"credit_limit": "-1"})
    assert bad.status_code == 422 and bad.json["message"] == {"credit_limit": ["不能小于 0"]}
    good = api.put(f"/api/v1/customer/{pk}", json={"grade": "B"})
    assert good.status_code == 200
    record = api.get(f"/api/v1/customer/{pk}").json["result"]
    assert (record["grade"], record["credit_limit"], record["name"]) == ("B", "1000.50", "甲化工")


def test_delete_of_a_referenced_record_is_refused_with_a_reason(api: Api) -> None:
    customer = api.post("/api/v1/customer/", json={"name": "乙化工"}).json["id"]
    order = api.post("/api/v1/order/", json={"number": "SO-1", "customer": customer}).json
    assert "id" in order, order
    refused = api.delete(f"/api/v1/customer/{customer}")
    assert refused.status_code == 409
    assert refused.json["message"] == ("无法删除客户“乙化工”:仍有 1 条销售订单(字段“客户”)引用它。"
                                       "请先删除这些记录或改为引用其他客户。")
    assert api.get(f"/api/v1/customer/{customer}").status_code == 200


def test_links_show_only_id_and_title(app: Any, api: Api) -> None:
    from app.security.users import add_user
    with app.app_context():
        seller = add_user(app.appbuilder, "zhangwei", "sales", "chem-demo-2026").id
    customer = api.post("/api/v1/customer/", json={"name": "丙化工", "credit_limit": "99"}).json["id"]
    order = api.post("/api/v1/order/", json={"number": "SO-9", "customer": customer, "salesperson": seller})
    assert order.status_code == 201, order.json
    record = api.get(f"/api/v1/order/{order.json['id']}").json["result"]
    assert record["customer"] == {"id": customer, "name": "丙化工"}
    assert set(record["salesperson"]) == {"id", "username", "first_name", "last_name"}


def test_filters_paging_and_ordering(api: Api) -> None:
    for i in range(5):
        api.post("/api/v1/customer/", json={"name": f"公司{i}", "grade": "A" if i % 2 else "B"})
    query = "(filters:!((col:grade,opr:eq,value:A)),order_column:name,order_direction:desc,page:0,page_size:1)"
    response = api.get(f"/api/v1/customer/?q={query}")
    assert response.status_code == 200, response.json
    assert response.json["count"] == 2
    assert [r["name"] for r in response.json["result"]] == ["公司3"]


def test_api_requires_a_login_and_has_an_openapi_document(app: Any, api: Api) -> None:
    anonymous = app.test_client()
    assert anonymous.get("/api/v1/customer/").status_code == 401
    info = api.get("/api/v1/customer/_info")
    assert info.status_code == 200 and "add_columns" in info.json
    spec = api.get("/api/v1/_openapi").json
    for table in app.extensions["crm"].schema.tables:
        assert f"/api/v1/{table.key}/" in spec["paths"], table.key


def test_a_removed_option_stays_on_its_records_and_can_be_sent_back(make_app: Any, schema_dir: Any,
                                                                     db_url: str) -> None:
    from pathlib import Path

    from app.dbsync.sync import sync_schema
    from app.schema import load_schema
    api = Api(make_app(schema_dir=schema_dir))
    pk = api.post("/api/v1/customer/", json={"name": "零散客户", "grade": "D"}).json["id"]
    choices = schema_dir / "choices.yaml"
    choices.write_text("\n".join(line for line in choices.read_text(encoding="utf-8").splitlines()
                                 if "{key: D, label: {zh: D类" not in line) + "\n", encoding="utf-8")
    migrations = Path(str(schema_dir)).parent / "migrations"
    sync_schema(db_url, load_schema(schema_dir), migrations, include_review=True,
                resolutions={"customer.grade": "keep"})
    app = make_app(schema_dir=schema_dir, CRM_MIGRATIONS_DIR=str(migrations))
    api = Api(app)
    assert api.get(f"/api/v1/customer/{pk}").json["result"]["grade"] == "D"
    same = api.put(f"/api/v1/customer/{pk}", json={"grade": "D", "name": "零散客户(华东)"})
    assert same.status_code == 200, same.json
    assert api.put(f"/api/v1/customer/{pk}", json={"grade": "E"}).status_code == 422
    other = api.post("/api/v1/customer/", json={"name": "新客户", "grade": "D"})
    assert other.status_code == 422 and "grade" in other.json["message"]
    assert 'D (已停用)' in Browser(app).get(f"/t/customer/show/{pk}").text
