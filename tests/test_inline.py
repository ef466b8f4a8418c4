"""An order entered with its lines in one form: one save writes all of it or nothing."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import Api, Browser

PASSWORD = "chem-demo-2026"


@pytest.fixture
def catalogue(app: Any) -> Any:
    api = Api(app)
    app.ids = {"c1": api.post("/api/v1/customer/", json={"name": "甲公司"}).json["id"],
               "p1": api.post("/api/v1/product/", json={"code": "P1", "name": "甲醇", "unit_price": "100"}).json["id"],
               "p2": api.post("/api/v1/product/", json={"code": "P2", "name": "乙醇", "unit_price": "12.5"}).json["id"]}
    app.api = api
    return app


def lines(app: Any) -> list[tuple[Any, ...]]:
    with app.app_context():
        line = app.extensions["crm"].models.model("order_line")
        rows = app.appbuilder.session.execute(sa.select(line.order_id, line.product_id, line.quantity,
                                                        line.unit_price, line.amount).order_by(line.id)).all()
    return [(o, p, f"{q:.3f}", f"{u:.2f}", f"{a:.2f}") for o, p, q, u, a in rows]


def order_form(app: Any, **rows: str) -> dict[str, str]:
    return {"number": "SO-1", "customer": str(app.ids["c1"]), "order_date": "2026-12-01", **rows}


def test_an_order_and_its_lines_are_saved_in_one_form(catalogue: Any) -> None:
    ids, browser = catalogue.ids, Browser(catalogue)
    form = browser.get("/t/order/add").text
    assert 'name="order_line-0-product"' in form and "添加一行" in form
    posted = browser.submit("/t/order/add", order_form(
        catalogue, **{"order_line-0-product": str(ids["p1"]), "order_line-0-quantity": "2",
                      "order_line-0-unit_price": "",  # taken from the product
                      "order_line-4-product": str(ids["p2"]), "order_line-4-quantity": "4",
                      "order_line-4-unit_price": "10", "order_line-7-unit": "kg"}))  # an untouched row
    assert posted.status_code == 302 and posted.headers["Location"] == "/t/order/show/1"
    assert lines(catalogue) == [(1, ids["p1"], "2.000", "100.00", "200.00"), (1, ids["p2"], "4.000", "10.00", "40.00")]
    stored = catalogue.api.get("/api/v1/order/1").json["result"]
    assert (stored["total"], stored["line_count"]) == ("240.00", 2)


def test_a_bad_row_saves_nothing_and_is_marked_on_its_row(catalogue: Any) -> None:
    ids, browser = catalogue.ids, Browser(catalogue)
    posted = browser.submit("/t/order/add", order_form(
        catalogue, **{"order_line-0-product": str(ids["p1"]), "order_line-0-quantity": "2",
                      "order_line-1-product": str(ids["p2"]), "order_line-1-quantity": "两吨"}))
    assert posted.status_code == 200
    errors = re.findall(r'class="crm-inline-errors">.*?</tr>', posted.text, re.S)
    assert len(errors) == 1 and "数量：应为数字" in errors[0]
    assert 'value="两吨"' in posted.text and 'value="SO-1"' in posted.text
    assert lines(catalogue) == []
    assert catalogue.api.get("/api/v1/order/").json["count"] == 0


def test_an_edit_changes_adds_and_removes_lines_in_one_save(catalogue: Any) -> None:
    ids, browser = catalogue.ids, Browser(catalogue)
    browser.submit("/t/order/add", order_form(catalogue, **{
        "order_line-0-product": str(ids["p1"]), "order_line-0-quantity": "2",
        "order_line-1-product": str(ids["p2"]), "order_line-1-quantity": "4"}))
    form = browser.get("/t/order/edit/1").text
    assert form.count('name="order_line-0-id"') == 1 and 'name="order_line-1-id" value="2"' in form
    posted = browser.submit("/t/order/edit/1", order_form(catalogue, **{
        "order_line-0-id": "1", "order_line-0-row_version": "1", "order_line-0-product": str(ids["p1"]),
        "order_line-0-quantity": "3", "order_line-0-unit_price": "100",
        "order_line-1-id": "2", "order_line-1-row_version": "1", "order_line-1-product": str(ids["p2"]),
        "order_line-1-quantity": "4", "order_line-1-unit_price": "12.5", "order_line-1-_delete": "1",
        "order_line-2-product": str(ids["p2"]), "order_line-2-quantity": "1"}))
    assert posted.status_code == 302
    assert lines(catalogue) == [(1, ids["p1"], "3.000", "100.00", "300.00"), (1, ids["p2"], "1.000", "12.50", "12.50")]
    assert catalogue.api.get("/api/v1/order/1").json["result"]["total"] == "312.50"


def test_a_row_someone_changed_meanwhile_is_not_overwritten(catalogue: Any) -> None:
    ids, browser = catalogue.ids, Browser(catalogue)
    browser.submit("/t/order/add", order_form(catalogue, **{
        "order_line-0-product": str(ids["p1"]), "order_line-0-quantity": "2"}))
    assert catalogue.api.put("/api/v1/order_line/1", json={"quantity": "5"}).status_code == 200
    posted = browser.submit("/t/order/edit/1", order_form(catalogue, **{
        "order_line-0-id": "1", "order_line-0-row_version": "1", "order_line-0-product": str(ids["p1"]),
        "order_line-0-quantity": "9", "order_line-0-unit_price": "100"}))
    assert posted.status_code == 200 and "这一行在您打开后已被他人修改" in posted.text
    assert lines(catalogue)[0][2] == "5.000"


def test_rows_follow_the_users_verbs_and_reach(make_app: Any, schema_dir: Path) -> None:
    from app.security.users import add_user
    roles = schema_dir / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace(
        "order_line: {can: [read, create, update, delete], rows: {own: order.salesperson}}",
        "order_line: {can: [read, create, update], rows: {own: order.salesperson}}"), encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    api = Api(app)
    with app.app_context():
        zhang = add_user(app.appbuilder, "zhangwei", "sales", PASSWORD, first_name="伟", last_name="张").id
        add_user(app.appbuilder, "lina", "sales", PASSWORD, first_name="娜", last_name="李")
    customer = api.post("/api/v1/customer/", json={"name": "甲公司", "owner": zhang}).json["id"]
    product = api.post("/api/v1/product/", json={"code": "P1", "name": "甲醇", "unit_price": "100"}).json["id"]
    order = api.post("/api/v1/order/", json={"number": "SO-1", "customer": customer, "salesperson": zhang}).json["id"]
    other = api.post("/api/v1/order/", json={"number": "SO-2", "customer": customer}).json["id"]
    line = api.post("/api/v1/order_line/", json={"order": order, "product": product, "quantity": "1"}).json["id"]
    foreign = api.post("/api/v1/order_line/", json={"order": other, "product": product, "quantity": "1"}).json["id"]
    sales = Browser(app, "zhangwei", PASSWORD)
    form = sales.get(f"/t/order/edit/{order}").text
    assert f'name="order_line-0-id" value="{line}"' in form and 'name="order_line-0-_delete"' not in form
    base = {"number": "SO-1", "customer": str(customer), "order_date": "2026-12-01", "salesperson": str(zhang)}
    removed = sales.submit(f"/t/order/edit/{order}", {**base, "order_line-0-id": str(line),
                                                       "order_line-0-product": str(product),
                                                       "order_line-0-quantity": "1", "order_line-0-_delete": "1"})
    assert removed.status_code == 200 and "您的角色不能删除订单明细" in removed.text
    stolen = sales.submit(f"/t/order/edit/{order}", {**base, "order_line-0-id": str(foreign),
                                                      "order_line-0-product": str(product),
                                                      "order_line-0-quantity": "7"})
    assert stolen.status_code == 200 and "这一行已被他人删除或不在您可见的范围内" in stolen.text
    assert api.get(f"/api/v1/order_line/{foreign}").json["result"]["quantity"] == "1.000"
    assert api.get(f"/api/v1/order_line/{line}").status_code == 200


def test_a_pick_never_fills_in_a_value_the_user_may_not_see(make_app: Any, schema_dir: Path) -> None:
    from app.security.users import add_user
    roles = schema_dir / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace(
        "      product:    {can: [read], hide: [formula, process_notes]}\n\n  sales_manager:",
        "      product:    {can: [read], hide: [formula, process_notes, unit_price]}\n\n  sales_manager:", 1),
        encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    Api(app).post("/api/v1/product/", json={"code": "P1", "name": "甲醇", "unit_price": "100"})
    with app.app_context():
        add_user(app.appbuilder, "zhangwei", "sales", PASSWORD)
    sales, admin = Browser(app, "zhangwei", PASSWORD), Browser(app)
    assert sales.get("/t/order_line/pick/product").json["results"][0]["fill"] == {}
    assert admin.get("/t/order_line/pick/product").json["results"][0]["fill"] == {"unit_price": "100.00"}
