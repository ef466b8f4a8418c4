"""Links in writes and the choices every surface offers: an id of a record the user may pick, never an
object that builds a record, and the same choices on screens and in the API, all from the gate.

The reproductions come from the penetration test (issue 10): a nested object in PUT created
products, customers and a login account past every permission.
"""
from __future__ import annotations

import json
import re
from typing import Any

import pytest
import sqlalchemy as sa

from app.security.gate import pick_condition, picks_only_self, role_keys
from app.seed import DEMO_PASSWORD, load_demo_data
from conftest import ADMIN_PASSWORD, Api, Browser

PASSWORD = "role-pass-123"


@pytest.fixture
def demo(app: Any) -> Any:
    """The default app with a little demo data and one user per default role."""
    from app.security.users import add_user
    load_demo_data(app, scale=0.02)
    with app.app_context():
        for role in app.extensions["crm"].schema.roles:
            add_user(app.appbuilder, f"u_{role}", role, PASSWORD)
    return app


def scalar(app: Any, sql: str, **params: Any) -> Any:
    with app.app_context():
        return app.appbuilder.session.execute(sa.text(sql), params).scalar()


def user_id(app: Any, username: str) -> int:
    return scalar(app, "SELECT id FROM ab_user WHERE username = :u", u=username)


def test_a_link_written_as_an_object_builds_nothing(demo: Any) -> None:
    sales = Api(demo, "zhangwei", DEMO_PASSWORD)
    line = sales.get("/api/v1/order_line/?q=(page_size:1)").json["ids"][0]
    before = sales.get(f"/api/v1/order_line/{line}").json["result"]["product"]["id"]
    sneaked = sales.put(f"/api/v1/order_line/{line}", json={"product": {"id": 770001, "name": "X", "code": "EVIL-001"}})
    assert sneaked.status_code == 422
    assert sneaked.json["message"] == {"product": ["应为记录 id(整数)"]}
    assert scalar(demo, "SELECT count(*) FROM product WHERE id = 770001 OR code = 'EVIL-001'") == 0
    assert sales.get(f"/api/v1/order_line/{line}").json["result"]["product"]["id"] == before

    finance = Api(demo, "chenjing", DEMO_PASSWORD)
    backdoor = finance.put("/api/v1/customer/1", json={"owner": {
        "id": 880001, "username": "backdoor", "password": "pbkdf2:sha256:1$x$y", "active": True,
        "email": "b@x.com", "first_name": "b", "last_name": "d", "roles": [{"id": 1}]}})
    assert backdoor.status_code == 422
    assert backdoor.json["message"] == {"owner": ["应为记录 id(整数)"]}
    assert scalar(demo, "SELECT count(*) FROM ab_user WHERE username = 'backdoor' OR id = 880001") == 0
    english = finance.put("/api/v1/customer/1?_l_=en", json={"owner": {"id": 2}})
    assert english.json["message"] == {"owner": ["expected a record id (an integer)"]}


def test_a_link_to_no_record_is_refused_and_creates_none(demo: Any) -> None:
    api = Api(demo)
    follow_up = api.get("/api/v1/follow_up/?q=(page_size:1)").json["ids"][0]
    customers = scalar(demo, "SELECT count(*) FROM customer")
    before = api.get(f"/api/v1/follow_up/{follow_up}").json["result"]["customer"]["id"]
    for value in (999999, -7382745482880311, 99999999999999999999, 2 ** 40, "12abc", 1.5, [1], {"foo": 1}, True):
        answer = api.put(f"/api/v1/follow_up/{follow_up}", json={"customer": value})
        expected = (f"不存在 id 为 {value} 的客户" if isinstance(value, int) and not isinstance(value, bool)
                    and value > 0 else "应为记录 id(整数)")
        assert answer.status_code == 422 and answer.json["message"] == {"customer": [expected]}, value
        created = api.post("/api/v1/contact/", json={"name": "新联系人", "customer": value})
        assert created.status_code == 422 and created.json["message"] == {"customer": [expected]}, value
    assert scalar(demo, "SELECT count(*) FROM customer") == customers
    assert api.get(f"/api/v1/follow_up/{follow_up}").json["result"]["customer"]["id"] == before


def test_a_record_keeps_a_link_its_user_can_no_longer_pick(demo: Any) -> None:
    """A customer handed to another salesperson: the old follow-up still saves, sent back whole."""
    sales = Api(demo, "zhangwei", DEMO_PASSWORD)
    follow_up = sales.get("/api/v1/follow_up/?q=(page_size:1)").json["result"][0]
    customer = follow_up["customer"]["id"]
    follow_up_id = sales.get("/api/v1/follow_up/?q=(page_size:1)").json["ids"][0]
    Api(demo).put(f"/api/v1/customer/{customer}", json={"owner": user_id(demo, "lina")})
    assert sales.get(f"/api/v1/customer/{customer}").status_code == 404
    again = sales.put(f"/api/v1/follow_up/{follow_up_id}", json={"customer": customer, "content": "仍跟进此客户"})
    assert again.status_code == 200, again.json
    assert scalar(demo, "SELECT content FROM follow_up WHERE id = :i", i=follow_up_id) == "仍跟进此客户"
    other = scalar(demo, "SELECT min(id) FROM customer WHERE owner_id = :u AND id != :c",
                   u=user_id(demo, "lina"), c=customer)
    moved = sales.put(f"/api/v1/follow_up/{follow_up_id}", json={"customer": other})
    assert moved.status_code == 422 and moved.json["message"] == {"customer": [f"不存在 id 为 {other} 的客户"]}


def test_a_salesperson_may_only_name_themself_as_owner(demo: Any) -> None:
    sales = Api(demo, "zhangwei", DEMO_PASSWORD)
    given = sales.post("/api/v1/customer/", json={"name": "送人的客户", "owner": user_id(demo, "lina")})
    assert given.status_code == 422 and given.json["message"] == {"owner": ["这里只能选择您本人"]}
    nobody = sales.post("/api/v1/customer/", json={"name": "送人的客户", "owner": 424242})
    assert nobody.json["message"] == {"owner": ["不存在 id 为 424242 的用户"]}
    mine = sales.post("/api/v1/customer/", json={"name": "自己的客户", "owner": user_id(demo, "zhangwei")})
    assert mine.status_code == 201
    assert scalar(demo, "SELECT count(*) FROM customer WHERE name = '送人的客户'") == 0


# -- every option list, on every surface, is what the gate reaches -------------------------------------

def pick_options(browser: Browser, html: str, table: str, name: str) -> set[int]:
    """Return the record ids a form's select offers as the user types: every page its pick URL answers."""
    match = re.search(rf'<select[^>]*name="{name}"[^>]*data-url="([^"]+)"', html) or re.search(
        rf'<select[^>]*data-url="([^"]+)"[^>]*name="{name}"', html)
    assert match, f"no select {name} that loads its options"
    found: set[int] = set()
    page = 1
    while True:
        answer = browser.get(f"{match.group(1)}?q=&page={page}").json
        found |= {row["id"] for row in answer["results"]}
        if not answer["pagination"]["more"]:
            return found
        page += 1


def filter_panel_options(html: str) -> dict[str, set[int]]:
    """Return the record ids each link or user filter of a list page's filter panel offers."""
    start = html.index("new AdminFilters(")
    decoder = json.JSONDecoder()
    position = html.index("{", start)
    _labels, position = decoder.raw_decode(html, position)
    widgets, _ = decoder.raw_decode(html, html.index("{", position))
    return {key: {int(v) for v in re.findall(r'<option[^>]*value="(\d+)"', widget)}
            for key, widget in widgets.items() if widget.startswith("<select") and "__None" in widget}


def info_options(api: Api, table: str, key: str, which: str) -> set[int]:
    """Return the ids `_info` offers for a link or user field, every page of them."""
    found: set[int] = set()
    page = 0
    while True:
        q = f"(keys:!({which}),{which}:({key}:(page:{page},page_size:100)))"
        answer = api.get(f"/api/v1/{table}/_info?q={q}")
        assert answer.status_code == 200, answer.json
        field = next(f for f in answer.json[which] if f["name"] == key)
        found |= {v["id"] for v in field["values"]}
        if len(found) >= field["count"] or not field["values"]:
            return found
        page += 1


def gate_choices(app: Any, table: str, key: str, username: str) -> set[int]:
    """Return the ids the gate lets `username` put into `table`.`key`."""
    state = app.extensions["crm"]
    with app.app_context():
        session = app.appbuilder.session
        user = app.appbuilder.sm.find_user(username=username)
        spec = state.schema.table(table).field(key)
        if spec.type == "user":
            if picks_only_self(state.models, table, key, user):
                return {user.id}
            if spec.roles:  # active users of the field's roles
                return set(session.execute(sa.text(
                    "SELECT DISTINCT u.id FROM ab_user u JOIN ab_user_role ur ON ur.user_id = u.id "
                    "JOIN ab_role r ON r.id = ur.role_id WHERE u.active = :yes AND r.name IN :roles").bindparams(
                    sa.bindparam("roles", expanding=True)), {"yes": True, "roles": list(spec.roles)}).scalars())
            return set(session.execute(sa.text("SELECT id FROM ab_user")).scalars())
        model = state.models.model(spec.to)
        condition = pick_condition(state.models, spec.to, user)
        query = sa.select(model.id) if condition is None else sa.select(model.id).where(condition)
        assert role_keys(user)
        return set(session.execute(query).scalars())


def writes(app: Any, table: str, key: str, username: str) -> bool:
    """Return True when the user may write the field (not read-only for them: finance on an order's customer)."""
    from app.security.gate import field_access
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        return field_access(app.extensions["crm"].schema, table, user).writes(key)


def test_every_option_list_on_every_surface_is_what_the_gate_reaches(demo: Any) -> None:
    schema = demo.extensions["crm"].schema
    people = [("admin", ADMIN_PASSWORD), ("zhangwei", DEMO_PASSWORD)] + [(f"u_{r}", PASSWORD) for r in schema.roles]
    checked = 0
    for username, password in people:
        api, browser = Api(demo, username, password), Browser(demo, username, password)
        for table in schema.tables:
            relations = [f.key for f in table.fields if f.is_relation]
            if not relations:
                continue
            rights = api.get(f"/api/v1/{table.key}/_info?q=(keys:!(permissions))").json.get("permissions", [])
            listed = browser.get(f"/t/{table.key}/list/")
            panel = filter_panel_options(listed.text) if listed.status_code == 200 else {}
            some = api.get(f"/api/v1/{table.key}/?q=(page_size:1)").json.get("ids") or [None]
            for key in relations:
                expected = gate_choices(demo, table.key, key, username)
                if key in panel:
                    assert panel[key] == expected, (username, table.key, key, "filter panel")
                if "can_create" in rights:
                    assert info_options(api, table.key, key, "add_columns") == expected, (username, table.key, key)
                    add = browser.get(f"/t/{table.key}/add")
                    assert pick_options(browser, add.text, table.key, key) == expected, (username, table.key, key,
                                                                                        "add form")
                    checked += 1
                if "can_update" in rights and some[0] is not None and writes(demo, table.key, key, username):
                    assert info_options(api, table.key, key, "edit_columns") == expected, (username, table.key, key)
                    edit = browser.get(f"/t/{table.key}/edit/{some[0]}")
                    assert pick_options(browser, edit.text, table.key, key) == expected, (username, table.key, key,
                                                                                         "edit form")
                    checked += 1
    assert checked > 40
    # and, independently of the gate's own code: a salesperson picks among their own customers only
    own = {int(i) for i in Api(demo, "zhangwei", DEMO_PASSWORD).get("/api/v1/customer/?q=(page_size:100)").json["ids"]}
    owner = user_id(demo, "zhangwei")
    with demo.app_context():
        mine = set(demo.appbuilder.session.execute(sa.text("SELECT id FROM customer WHERE owner_id = :u"),
                                                   {"u": owner}).scalars())
    assert own == mine == gate_choices(demo, "follow_up", "customer", "zhangwei")
    assert gate_choices(demo, "customer", "owner", "zhangwei") == {owner}
    assert len(gate_choices(demo, "follow_up", "customer", "admin")) > len(mine)


def test_info_no_longer_lists_every_customer_to_a_salesperson(demo: Any) -> None:
    """The penetration test's request, word for word."""
    sales = Api(demo, "zhangwei", DEMO_PASSWORD)
    answer = sales.get("/api/v1/follow_up/_info"
                       "?q=(keys:!(edit_columns),edit_columns:(customer:(page:0,page_size:500)))")
    field = next(f for f in answer.json["edit_columns"] if f["name"] == "customer")
    owner = user_id(demo, "zhangwei")
    assert field["count"] == scalar(demo, "SELECT count(*) FROM customer WHERE owner_id = :u", u=owner)
    assert field["count"] < scalar(demo, "SELECT count(*) FROM customer")
    assert field["label"] == "客户" and field["description"] == ""
    users = next(f for f in answer.json["edit_columns"] if f["name"] == "owner")
    assert [v["id"] for v in users["values"]] == [owner] and users["values"][0]["value"] == "张伟"
