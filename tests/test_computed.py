"""Computed fields: the schema checks, and values right after every kind of write on every database."""
from __future__ import annotations

import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import orm

from app.schema import SchemaError, load_schema_text
from conftest import Api, Browser

BASE = """
tables:
  customer:
    fields:
      name: {type: string, required: true}
      open_amount: {type: money, compute: "sum(bill.outstanding where status != 'paid')"}
  bill:
    fields:
      customer: {type: link, to: customer, required: true}
      due: {type: money}
      paid: {type: money}
      status: {type: choice, options: [open, paid]}
      outstanding: {type: money, compute: due - paid}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"schema/t.yaml": text})
    return [f"{i.path}: {i.message} | {i.hint}" for i in caught.value.issues]


@pytest.mark.parametrize("change,expected", [
    ("outstanding: {type: money, compute: due - payed}",
     "tables.bill.fields.outstanding.compute: 'payed' is not a field of bill | did you mean 'paid'? known fields: "
     "customer, due, paid, status, outstanding"),
    ("outstanding: {type: money, compute: due - status}",
     "tables.bill.fields.outstanding.compute: bill.status is a choice field; a compute can only calculate with "
     "numbers | use integer, decimal, money or percent fields"),
    ("outstanding: {type: money, compute: sum(customer.name)}",
     "tables.bill.fields.outstanding.compute: customer has no link to bill, so no customer record belongs to one "
     "| an aggregate adds up the records that link to this one"),
    ("outstanding: {type: money, compute: sum(bils.due)}",
     "tables.bill.fields.outstanding.compute: sum() names a table 'bils' that does not exist | did you mean "
     "'bill'? known tables: customer, bill"),
    ("outstanding: {type: money, compute: today() - due}",
     "tables.bill.fields.outstanding.compute: today() changes every day, but a computed value is stored when its "
     "record is written (at character 1 of 'today() - due') | compare dates with today in a list filter or a colour "
     "rule instead of a stored compute"),
    ("outstanding: {type: money, compute: due -}",
     "tables.bill.fields.outstanding.compute: expected a field, a number or '(', found the end (at character 6 of "
     "'due -') | see docs/schema.md, Computed fields"),
    ("outstanding: {type: money, compute: due - paid, required: true}",
     "tables.bill.fields.outstanding.required: a computed field cannot have required | its value always comes from "
     "compute:; remove required"),
    ("outstanding: {type: string, compute: due - paid}",
     "tables.bill.fields.outstanding.compute: unknown key 'compute' | known keys for a string field: aliases, "
     "default, default_from, encrypted, help, index, label, max_length, pattern, pattern_message, readonly, "
     "renamed_from, required, searchable, type, unique"),
])
def test_compute_mistakes_are_reported_with_where_and_a_hint(change: str, expected: str) -> None:
    text = BASE.replace("outstanding: {type: money, compute: due - paid}", change)
    assert expected in problems(text)


def test_aggregate_mistakes_name_the_link_the_option_and_the_circle() -> None:
    two_links = BASE.replace("      status:", "      payer: {type: link, to: customer}\n      status:")
    assert problems(two_links) == [
        "tables.customer.fields.open_amount.compute: bill links to customer through customer, payer; name the one "
        "to follow, e.g. sum(bill[customer].outstanding) | an aggregate adds up the records that link to this one"]
    assert load_schema_text({"schema/t.yaml": two_links.replace("sum(bill.outstanding", "sum(bill[payer].outstanding")})
    wrong_option = BASE.replace("status != 'paid'", "status != 'payed'")
    assert problems(wrong_option) == [
        "tables.customer.fields.open_amount.compute: 'payed' is not an option of bill.status | did you mean 'paid'? "
        "known options: open, paid"]
    circle = BASE.replace("compute: due - paid", "compute: due - extra").replace(
        "      status:", "      extra: {type: money, compute: outstanding + 1}\n      status:")
    assert problems(circle) == [
        "tables.bill.fields.outstanding.compute: computed fields read one another in a circle: bill.outstanding → "
        "bill.extra → bill.outstanding | one of them must be an ordinary field"]


@pytest.mark.parametrize("default_from,expected", [
    ("customerx.name", "tables.bill.fields.note.default_from: 'customerx' is not a link field of bill | did you "
                       "mean 'customer'? known links: customer"),
    ("due.name", "tables.bill.fields.note.default_from: 'due' is a money field, not a link | known links: customer"),
    ("customer.nam", "tables.bill.fields.note.default_from: 'nam' is not a field of customer | did you mean "
                     "'name'? known fields: name, open_amount"),
    ("customer.open_amount", "tables.bill.fields.note.default_from: customer.open_amount is a money field and "
                             "cannot fill the string field note | copy from a field of the same type"),
])
def test_default_from_mistakes(default_from: str, expected: str) -> None:
    text = BASE.replace("      status:", f"      note: {{type: string, default_from: {default_from}}}\n      status:")
    assert problems(text) == [expected]


# -- values after writes, on every database ------------------------------------------------------

@pytest.fixture
def shop(app: Any) -> Any:
    """The default app with two customers, two products and an order of the first customer."""
    api = Api(app)
    ids = {"c1": api.post("/api/v1/customer/", json={"name": "甲公司"}).json["id"],
           "c2": api.post("/api/v1/customer/", json={"name": "乙公司"}).json["id"],
           "p1": api.post("/api/v1/product/", json={"code": "P1", "name": "甲醇", "unit_price": "100"}).json["id"],
           "p2": api.post("/api/v1/product/", json={"code": "P2", "name": "乙醇", "unit_price": "12.5"}).json["id"]}
    ids["o1"] = api.post("/api/v1/order/", json={"number": "SO-1", "customer": ids["c1"]}).json["id"]
    ids["o2"] = api.post("/api/v1/order/", json={"number": "SO-2", "customer": ids["c1"]}).json["id"]
    app.ids, app.api = ids, api
    return app


def order_of(app: Any, pk: int) -> tuple[str, int]:
    stored = app.api.get(f"/api/v1/order/{pk}").json["result"]
    return stored["total"], stored["line_count"]


def add_line(app: Any, order: int, product: int, quantity: str, **more: Any) -> Any:
    return app.api.post("/api/v1/order_line/", json={"order": order, "product": product, "quantity": quantity, **more})


def test_order_totals_follow_every_write_of_their_lines(shop: Any) -> None:
    ids, api = shop.ids, shop.api
    first = add_line(shop, ids["o1"], ids["p1"], "2")
    assert first.status_code == 201 and first.json["result"]["unit_price"] == "100.00"  # from the product
    assert order_of(shop, ids["o1"]) == ("200.00", 1)
    second = add_line(shop, ids["o1"], ids["p2"], "3", unit_price="10").json["id"]
    assert order_of(shop, ids["o1"]) == ("230.00", 2)
    assert api.put(f"/api/v1/order_line/{second}", json={"quantity": "4.5"}).status_code == 200
    assert api.get(f"/api/v1/order_line/{second}").json["result"]["amount"] == "45.00"
    assert order_of(shop, ids["o1"]) == ("245.00", 2)
    assert api.put(f"/api/v1/order_line/{second}", json={"order": ids["o2"]}).status_code == 200  # moved
    assert order_of(shop, ids["o1"]) == ("200.00", 1) and order_of(shop, ids["o2"]) == ("45.00", 1)
    assert api.delete(f"/api/v1/order_line/{second}").status_code == 200
    assert order_of(shop, ids["o2"]) == ("0.00", 0)


def test_an_order_deleted_takes_its_lines_and_a_receivable_deleted_leaves_the_customer_right(shop: Any) -> None:
    ids, api = shop.ids, shop.api
    add_line(shop, ids["o1"], ids["p1"], "1")
    bills = [api.post("/api/v1/payment/", json={"number": f"R-{n}", "customer": ids["c1"], "order": ids["o1"],
                                                 "amount_due": due, "paid_amount": paid, "status": status}).json["id"]
             for n, (due, paid, status) in enumerate([("500", "120", "partial"), ("80", "80", "paid"),
                                                      ("70", "0", "unpaid")])]
    customer = lambda: api.get(f"/api/v1/customer/{ids['c1']}").json["result"]["open_receivables"]  # noqa: E731
    assert customer() == "450.00"
    assert api.put(f"/api/v1/payment/{bills[0]}", json={"paid_amount": "500", "status": "paid"}).status_code == 200
    assert customer() == "70.00"
    assert api.put(f"/api/v1/payment/{bills[2]}", json={"customer": ids["c2"]}).status_code == 200
    assert customer() == "0.00"
    assert api.get(f"/api/v1/customer/{ids['c2']}").json["result"]["open_receivables"] == "70.00"
    assert api.delete(f"/api/v1/order/{ids['o1']}").status_code == 200  # lines cascade, receivables set null
    with shop.app_context():
        model = shop.extensions["crm"].models.model("order_line")
        assert shop.appbuilder.session.execute(sa.select(sa.func.count()).select_from(model)).scalar() == 0
    assert api.get(f"/api/v1/payment/{bills[2]}").json["result"]["order"] is None


def test_a_cascade_through_another_table_recomputes_the_totals_it_touches(make_app: Any, schema_dir: Path) -> None:
    """Deleting a product whose lines cascade (a custom schema) changes orders the ORM never loaded."""
    sales = schema_dir / "sales.yaml"
    sales.write_text(sales.read_text(encoding="utf-8").replace(
        "product: {type: link, to: product, label: {zh: 产品, en: Product}, required: true, on_delete: restrict}",
        "product: {type: link, to: product, label: {zh: 产品, en: Product}, required: true, on_delete: cascade}"),
        encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    api = Api(app)
    customer = api.post("/api/v1/customer/", json={"name": "甲公司"}).json["id"]
    kept, dropped = (api.post("/api/v1/product/", json={"code": c, "name": c, "unit_price": "10"}).json["id"]
                     for c in ("KEEP", "DROP"))
    order = api.post("/api/v1/order/", json={"number": "SO-9", "customer": customer}).json["id"]
    for product in (kept, dropped, dropped):
        assert api.post("/api/v1/order_line/",
                        json={"order": order, "product": product, "quantity": "1"}).status_code == 201
    assert api.get(f"/api/v1/order/{order}").json["result"]["total"] == "30.00"
    assert api.delete(f"/api/v1/product/{dropped}").status_code == 200
    stored = api.get(f"/api/v1/order/{order}").json["result"]
    assert (stored["total"], stored["line_count"]) == ("10.00", 1)


def test_lines_written_through_the_orm_in_bulk_are_counted(shop: Any) -> None:
    """An import writes through the ORM session: many lines, one commit."""
    ids = shop.ids
    with shop.app_context():
        models = shop.extensions["crm"].models
        session = shop.appbuilder.session
        line = models.model("order_line")
        session.add_all([line(order_id=ids["o1"], product_id=ids["p2"], quantity=Decimal(n)) for n in range(1, 11)])
        session.commit()
    assert order_of(shop, ids["o1"]) == ("687.50", 10)  # 55 × 12.50


def test_several_people_adding_lines_to_one_order_leave_the_right_total(shop: Any) -> None:
    ids = shop.ids
    with shop.app_context():
        engine = shop.extensions["crm"].db.engine
        line = shop.extensions["crm"].models.model("order_line")
    errors: list[BaseException] = []
    start = threading.Barrier(6)

    def add_lines() -> None:
        try:
            start.wait()
            for _ in range(5):
                for attempt in range(20):
                    try:
                        with orm.Session(engine) as session, session.begin():
                            session.add(line(order_id=ids["o1"], product_id=ids["p1"], quantity=Decimal(1)))
                        break
                    except sa.exc.OperationalError as exc:  # SQLite: the database is busy; try again
                        if "locked" not in str(exc) or attempt == 19:
                            raise
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
    threads = [threading.Thread(target=add_lines) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert order_of(shop, ids["o1"]) == ("3000.00", 30)


def test_a_computed_field_cannot_be_written(shop: Any) -> None:
    ids, api = shop.ids, shop.api
    refused = add_line(shop, ids["o1"], ids["p1"], "2", amount="999999")
    assert (refused.status_code, refused.json) == (422, {"message": {"amount": [
        "“金额”由系统计算（quantity * unit_price），不能写入"]}})
    pk = add_line(shop, ids["o1"], ids["p1"], "2").json["id"]
    put = api.put(f"/api/v1/order/{ids['o1']}", json={"total": "1"})
    assert put.status_code == 422 and put.json["message"] == {"total": [
        "“订单金额”由系统计算（sum(order_line.amount)），不能写入"]}
    browser = Browser(shop)
    form = browser.get(f"/t/order_line/edit/{pk}").text
    assert 'name="amount"' not in form and "200.00" in form  # shown, read-only
    posted = browser.submit(f"/t/order_line/edit/{pk}", {"order": ids["o1"], "product": ids["p1"], "quantity": "3",
                                                          "unit_price": "100", "amount": "999999"})
    assert posted.status_code == 302
    assert api.get(f"/api/v1/order_line/{pk}").json["result"]["amount"] == "300.00"
    assert order_of(shop, ids["o1"]) == ("300.00", 1)


def test_a_line_added_on_screen_takes_the_products_price_when_left_empty(shop: Any) -> None:
    ids = shop.ids
    browser = Browser(shop)
    posted = browser.submit(f"/t/order_line/add?_flt_0_order={ids['o1']}",
                            {"product": ids["p2"], "quantity": "4", "unit_price": ""})
    assert posted.headers["Location"] == f"/t/order/show/{ids['o1']}#children-order_line-order"
    assert order_of(shop, ids["o1"]) == ("50.00", 1)


def test_a_result_too_large_for_its_field_is_refused_with_a_message(shop: Any) -> None:
    answer = add_line(shop, shop.ids["o1"], shop.ids["p1"], "999999999999", unit_price="9999999999999")
    assert answer.status_code == 422
    assert answer.json["message"] == "“金额”的计算结果 9999999999989000000000001.00 数值太大"
    assert order_of(shop, shop.ids["o1"]) == ("0.00", 0)


def test_adding_a_compute_to_a_populated_table_recomputes_every_row(make_app: Any, schema_dir: Path,
                                                                      db_url: str) -> None:
    from app.dbsync.sync import plan_changes
    sales = schema_dir / "sales.yaml"
    computed = sales.read_text(encoding="utf-8")
    plain = computed.replace("        compute: sum(order_line.amount)\n", "")
    sales.write_text(plain, encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    with app.app_context():
        engine = app.extensions["crm"].db.engine
    with engine.begin() as conn:
        conn.execute(sa.text('UPDATE "order" SET total = 999' if engine.dialect.name != "mysql"
                             else "UPDATE `order` SET total = 999"))
        orders = conn.execute(sa.text("SELECT count(*) FROM " + ('"order"' if engine.dialect.name != "mysql"
                                                                 else "`order`"))).scalar()
    sales.write_text(computed, encoding="utf-8")
    from app.schema import load_schema
    plan, _ = plan_changes(db_url, load_schema(schema_dir), schema_dir.parent / "migrations")
    assert plan.text() == f"~ compute order.total — {orders:,} rows recomputed   [safe]"
    app = make_app(schema_dir=schema_dir)
    with app.app_context():
        models = app.extensions["crm"].models
        order, line = models.model("order"), models.model("order_line")
        sums = sa.select(sa.func.coalesce(sa.func.sum(line.amount), 0)).where(
            line.order_id == order.id).scalar_subquery()
        wrong = app.appbuilder.session.execute(sa.select(sa.func.count()).select_from(order).where(
            sa.func.abs(order.total - sums) > Decimal("0.005"))).scalar()
    assert wrong == 0


def test_a_contact_of_another_customer_is_refused_on_every_surface(shop: Any) -> None:
    ids, api = shop.ids, shop.api
    mine = api.post("/api/v1/contact/", json={"customer": ids["c1"], "name": "张伟"}).json["id"]
    theirs = api.post("/api/v1/contact/", json={"customer": ids["c2"], "name": "李娜"}).json["id"]
    refused = api.put(f"/api/v1/order/{ids['o1']}", json={"contact": theirs})
    assert (refused.status_code, refused.json) == (422, {"message": {"contact": [
        "“客户联系人”李娜属于“乙公司”，与“客户”甲公司不符；请选择甲公司的客户联系人"]}})
    assert api.put(f"/api/v1/order/{ids['o1']}", json={"contact": mine}).status_code == 200
    browser = Browser(shop)
    offered = browser.get(f"/t/order/pick/contact?match={ids['c1']}").json["results"]
    assert [row["text"] for row in offered] == ["张伟"]
    posted = browser.submit(f"/t/order/edit/{ids['o1']}", {"number": "SO-1", "customer": ids["c1"],
                                                            "order_date": "2026-12-01", "contact": theirs})
    assert posted.status_code == 200 and "李娜属于“乙公司”" in posted.text
    assert api.get(f"/api/v1/order/{ids['o1']}").json["result"]["contact"]["id"] == mine


def test_user_fields_offer_only_active_users_of_their_roles_named_family_name_first(shop: Any) -> None:
    from app.security.users import add_user
    with shop.app_context():
        add_user(shop.appbuilder, "zhangwei", "sales", "chem-demo-2026", first_name="伟", last_name="张")
        add_user(shop.appbuilder, "chenjing", "rnd", "chem-demo-2026", first_name="静", last_name="陈")
        gone = add_user(shop.appbuilder, "wangfang", "sales", "chem-demo-2026", first_name="芳", last_name="王")
        gone.active = False
        shop.appbuilder.session.commit()
        rnd = shop.appbuilder.sm.find_user(username="chenjing").id
    browser = Browser(shop)
    offered = browser.get("/t/order/pick/salesperson").json["results"]
    assert [row["text"] for row in offered] == ["张伟"]
    assert [r["text"] for r in browser.get("/t/order/pick/salesperson?q=张伟").json["results"]] == ["张伟"]
    refused = shop.api.put(f"/api/v1/order/{shop.ids['o1']}", json={"salesperson": rnd})
    assert refused.status_code == 422
