"""Roles from the YAML: checked like the rest of the schema, synced exactly, enforced by one gate.

The matrix tests are generated from the roles in schema/roles.yaml: adding a role or a grant to the
YAML extends them without writing a test.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.schema import SchemaError, load_schema, load_schema_text
from conftest import Api, Browser

DEFAULT = load_schema(Path(__file__).resolve().parent.parent / "schema")
TABLE_VERBS = ("read", "create", "update", "delete")
PASSWORD = "role-pass-123"


def problems(text: str) -> str:
    base = "tables:\n  t:\n    fields:\n      name: {type: string}\n      owner: {type: user}\n" \
           "      parent: {type: link, to: t}\n"
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": base, "roles.yaml": text})
    return str(caught.value)


def test_role_mistakes_are_reported_with_file_line_and_hint() -> None:
    report = problems(
        "roles:\n"
        "  admin: {tables: {}}\n"
        "  sales:\n"
        "    extends: [boss]\n"
        "    tables:\n"
        "      tt: {can: [read]}\n"
        "      t: {can: [read, wirte], rows: {own: parent.name}, hide: [nme]}\n"
        "  loop:\n"
        "    extends: loop\n"
        "    tables: {t: {rows: own}}\n")
    expected = [
        "roles.yaml:2: roles.admin: 'admin' is a built-in role and cannot be declared\n"
        "    hint: admin has every right; pick another key for your role",
        "roles.yaml:4: roles.sales.extends: there is no role 'boss' to extend\n    hint: known roles: loop, sales",
        "roles.yaml:6: roles.sales.tables.tt: there is no table 'tt'\n    hint: did you mean 't'? known tables: t",
        "roles.yaml:7: roles.sales.tables.t.can: unknown verb 'wirte'\n"
        "    hint: known verbs: read, create, update, delete, export, import, report",
        "roles.yaml:7: roles.sales.tables.t.hide: 'nme' is not a field of t\n"
        "    hint: did you mean 'name'? known fields: name, owner, parent",
        "roles.yaml:7: roles.sales.tables.t.rows.own: 'parent.name' ends at a string field; own needs a user field",
        "roles.yaml:9: roles.loop.extends: role 'loop' extends itself\n    hint: remove one of the extends",
        "roles.yaml:10: roles.loop.tables.t.can: a grant needs can: [verbs]",
        "8 problems found in the schema; nothing was started.",
    ]
    for line in expected:
        assert line in report, (line, report)


def test_the_default_roles_are_valid() -> None:
    assert sorted(DEFAULT.roles) == ["auditor", "finance", "rnd", "sales", "sales_manager", "service"]


@pytest.fixture
def loaded(app: Any) -> Any:
    """The default app with a little demo data (owned by the demo sales users) and a user per role."""
    from app.security.users import add_user
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    with app.app_context():
        for role in DEFAULT.roles:
            add_user(app.appbuilder, f"u_{role}", role, PASSWORD)
    return app


def first_id(app: Any, table_key: str) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model(table_key)
        return app.appbuilder.session.execute(sa.select(sa.func.min(model.id))).scalar()


def expected_api_status(allowed: bool, verb: str) -> set[int]:
    if not allowed:
        return {403}
    return {"read": {200}, "create": {201, 422}, "update": {200, 404, 422}, "delete": {200, 404, 409}}[verb]


def test_every_role_every_table_every_verb_through_the_api(loaded: Any) -> None:
    """Generated from schema/roles.yaml: each verb is allowed exactly where a grant says so."""
    failures = []
    for role in DEFAULT.roles:
        api = Api(loaded, f"u_{role}", PASSWORD)
        grants = DEFAULT.grants_of(role)
        for table in DEFAULT.tables:
            can = grants[table.key].can if table.key in grants else ()
            pk = first_id(loaded, table.key)
            calls = {"read": lambda api=api, table=table: api.get(f"/api/v1/{table.key}/"),
                     "create": lambda api=api, table=table: api.post(f"/api/v1/{table.key}/", json={}),
                     "update": lambda api=api, table=table, pk=pk: api.put(f"/api/v1/{table.key}/{pk}", json={}),
                     "delete": lambda api=api, table=table: api.delete(f"/api/v1/{table.key}/{10 ** 9}")}
            for verb in TABLE_VERBS:
                status = calls[verb]().status_code
                if status not in expected_api_status(verb in can, verb):
                    failures.append(f"{role} {verb} {table.key}: {status}")
    assert not failures, failures


def test_every_role_sees_exactly_its_tables_on_screen(loaded: Any) -> None:
    failures = []
    for role in DEFAULT.roles:
        browser = Browser(loaded, f"u_{role}", PASSWORD)
        home = browser.get("/").text
        grants = DEFAULT.grants_of(role)
        for table in DEFAULT.tables:
            readable = table.key in grants and "read" in grants[table.key].can
            listing = browser.get(f"/t/{table.key}/list/")
            shown = listing.status_code == 200 and f'href="/t/{table.key}/list/"' in home
            refused = listing.status_code == 403 and "您的角色不能打开这个页面" in listing.text
            if (readable and not shown) or (not readable and not refused):
                failures.append(f"{role} {table.key}: list {listing.status_code}")
    assert not failures, failures


def own_customer_ids(app: Any, username: str) -> set[int]:
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        model = app.extensions["crm"].models.model("customer")
        return set(app.appbuilder.session.execute(sa.select(model.id).where(model.owner_id == user.id)).scalars())


def test_sales_reach_only_their_own_rows_everywhere(loaded: Any) -> None:
    mine = own_customer_ids(loaded, "zhangwei")
    others = own_customer_ids(loaded, "lina")
    assert mine and others
    api = Api(loaded, "zhangwei", "chem-demo-2026")
    listed = api.get("/api/v1/customer/?q=(page_size:100)").json
    assert {r["id"] for r in listed["result"]} == mine and listed["count"] == len(mine)
    other = min(others)
    assert api.get(f"/api/v1/customer/{other}").status_code == 404
    assert api.put(f"/api/v1/customer/{other}", json={"name": "改名"}).status_code == 404
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    assert browser.get(f"/t/customer/show/{other}").status_code in (302, 404)
    assert browser.get(f"/t/customer/edit/{other}").status_code in (302, 404)
    # through links: the contacts and order lines of other salespeople's customers and orders
    contacts = api.get("/api/v1/contact/?q=(page_size:100)").json["result"]
    assert contacts and all(c["customer"]["id"] in mine for c in contacts)
    with loaded.app_context():
        models = loaded.extensions["crm"].models
        order, line = models.model("order"), models.model("order_line")
        user = loaded.appbuilder.sm.find_user(username="zhangwei")
        my_lines = loaded.appbuilder.session.execute(
            sa.select(sa.func.count()).select_from(line).join(order, line.order_id == order.id)
            .where(order.salesperson_id == user.id)).scalar()
    assert api.get("/api/v1/order_line/").json["count"] == my_lines
    home = browser.get("/").text
    assert f">{len(mine)}<" in home.replace(" ", "").replace("\n", "")


def test_changing_a_role_in_the_yaml_changes_the_rights(make_app: Any, schema_dir: Path) -> None:
    from app.security.users import add_user
    app = make_app(schema_dir=schema_dir)
    with app.app_context():
        add_user(app.appbuilder, "cj", "finance", PASSWORD)
        add_user(app.appbuilder, "aud", "auditor", PASSWORD)
    assert Api(app, "cj", PASSWORD).get("/api/v1/invoice/").status_code == 200
    roles = schema_dir / "roles.yaml"
    text = roles.read_text(encoding="utf-8")
    text = text.replace("      invoice:    {can: [read, create, update, delete, export, import, report]}\n", "", 1)
    text = text[:text.index("  auditor:")]  # the auditor role is removed
    roles.write_text(text, encoding="utf-8")
    again = make_app(schema_dir=schema_dir)
    assert Api(again, "cj", PASSWORD).get("/api/v1/invoice/").status_code == 403
    assert Api(again, "cj", PASSWORD).get("/api/v1/payment/").status_code == 200
    assert Api(again, "aud", PASSWORD).get("/api/v1/customer/").status_code == 403
    with again.app_context():
        sm = again.appbuilder.sm
        finance = {str(p) for p in sm.find_role("finance").permissions}
        assert "can read on table:invoice" not in finance and "can export on table:invoice" not in finance
        assert sm.find_role("auditor").permissions == []


def customer_names(app: Any, ids: set[int]) -> set[str]:
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        return set(app.appbuilder.session.execute(sa.select(model.name).where(model.id.in_(ids))).scalars())


def test_record_selects_and_link_ids_stay_within_the_users_rows(loaded: Any) -> None:
    mine, others = own_customer_ids(loaded, "zhangwei"), own_customer_ids(loaded, "lina")
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    assert 'data-url="/t/contact/pick/customer"' in browser.get("/t/contact/add").text
    options, page = set(), 1
    while True:  # every page the select loads as the user types
        answer = browser.get(f"/t/contact/pick/customer?q=&page={page}").json
        options |= {row["text"] for row in answer["results"]}
        if not answer["pagination"]["more"]:
            break
        page += 1
    assert customer_names(loaded, mine) <= options
    assert not customer_names(loaded, others) & options
    api = Api(loaded, "zhangwei", "chem-demo-2026")
    other = min(others)
    refused = api.post("/api/v1/contact/", json={"name": "王经理", "customer": other})
    assert refused.status_code == 422
    assert refused.json["message"] == {"customer": [f"不存在 id 为 {other} 的客户"]}
    assert api.post("/api/v1/contact/", json={"name": "王经理", "customer": min(mine)}).status_code == 201


def test_a_record_a_salesperson_creates_is_theirs(loaded: Any) -> None:
    api = Api(loaded, "zhangwei", "chem-demo-2026")
    created = api.post("/api/v1/customer/", json={"name": "新开发的客户"})
    assert created.status_code == 201, created.json
    record = api.get(f"/api/v1/customer/{created.json['id']}").json["result"]
    assert record["owner"]["username"] == "zhangwei"
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    assert browser.submit("/t/customer/add", {"name": "屏幕上新建的客户", "status": "prospect"}).status_code == 302
    assert "屏幕上新建的客户" in browser.get("/t/customer/list/?q=屏幕上新建").text


def test_permission_review_lists_rights_and_users_and_shows_changes(tmp_path: Path, db_url: str) -> None:
    import os
    import shutil
    import subprocess
    import sys
    schema = tmp_path / "schema"
    shutil.copytree(Path(__file__).resolve().parent.parent / "schema", schema)
    env = {**os.environ, "CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": str(schema), "CRM_SECRET_KEY": "k" * 40,
           "CRM_INSTANCE_DIR": str(tmp_path / "inst"), "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations"),
           "CRM_ADMIN_PASSWORD": "test-root-pass-2026"}

    def crm(*args: str) -> Any:
        done = subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                              cwd=Path(__file__).parent.parent, timeout=120)
        assert done.returncode == 0, done.stderr
        return done

    crm("user", "add", "lisi", "--role", "sales", "--password", PASSWORD)
    first = crm("permissions", "review").stdout
    assert ("    customer: read, create, update, export, import, report; rows: own (owner); "
            "read-only: credit_limit, payment_terms\n"
            in first)
    assert "    product: read; rows: all; hidden: formula, process_notes\n" in first
    assert "  lisi: sales; active; last login never\n" in first
    assert first.endswith("Changes since the previous review:\n  first review: nothing to compare with\n")

    roles = schema / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace(
        "      invoice:    {can: [read], rows: {own: customer.owner}}\n", "", 1).replace(
        "hide: [formula, process_notes]", "hide: [formula]", 1), encoding="utf-8")
    crm("user", "add", "wangwu", "--role", "finance", "--password", PASSWORD)
    written = crm("permissions", "review", "-o", str(tmp_path / "review.csv")).stdout
    assert written.endswith("  ~ role sales, table invoice: read (rows: own (customer.owner)) → no access\n"
                            "  ~ role sales, table product: read (rows: all; hidden: formula, process_notes) → "
                            "read (rows: all; hidden: formula)\n"
                            "  + user wangwu (finance)\n")
    rows = (tmp_path / "review.csv").read_text(encoding="utf-8-sig").splitlines()
    assert "role,sales,customer,read create update export import report,own (owner),,credit_limit payment_terms" in rows
    assert "role,sales,product,read,all,formula," in rows
    assert "user,wangwu,finance,yes,,," in rows
    crm("permissions", "review", "-o", str(tmp_path / "review.pdf"))
    words = pdf_text((tmp_path / "review.pdf").read_bytes())
    assert "no change since the previous review" in words and "lisi" in words and "wangwu" in words
    refused = subprocess.run([sys.executable, "-m", "app.cli", "permissions", "review", "-o", "review.docx"],
                             capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert (refused.returncode, refused.stderr) == (2, "Error: -o review.docx: write a .pdf, .csv or .txt file\n")


def test_a_write_may_not_move_a_record_out_of_reach(loaded: Any) -> None:
    api = Api(loaded, "zhangwei", "chem-demo-2026")
    with loaded.app_context():
        lina = loaded.appbuilder.sm.find_user(username="lina").id
    mine = min(own_customer_ids(loaded, "zhangwei"))
    moved = api.put(f"/api/v1/customer/{mine}", json={"owner": lina})
    assert moved.status_code == 422
    assert moved.json["message"] == {"owner": ["这里只能选择您本人"]}
    assert api.get(f"/api/v1/customer/{mine}").json["result"]["owner"]["username"] == "zhangwei"
    given = api.post("/api/v1/customer/", json={"name": "送给别人的客户", "owner": lina})
    assert given.status_code == 422
    assert api.get("/api/v1/customer/?q=(filters:!((col:name,opr:eq,value:送给别人的客户)))").json["count"] == 0
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    page = browser.submit(f"/t/customer/edit/{mine}", {"name": "改了负责人", "status": "active", "owner": lina},
                          follow_redirects=True)
    assert "选择无效" in page.text  # the owner select offers only the salesperson themself
    assert api.get(f"/api/v1/customer/{mine}").json["result"]["name"] != "改了负责人"
    manager = Api(loaded, "u_sales_manager", PASSWORD)
    assert manager.put(f"/api/v1/customer/{mine}", json={"owner": lina}).status_code == 200


def test_a_link_preset_in_the_url_must_be_reachable(loaded: Any) -> None:
    mine, others = own_customer_ids(loaded, "zhangwei"), own_customer_ids(loaded, "lina")
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    shown = browser.get(f"/t/follow_up/add?_flt_0_customer={min(others)}").text
    assert not customer_names(loaded, {min(others)}) & set(re.findall(r">([^<>]+)<", shown))
    token_page = browser.get(f"/t/follow_up/add?_flt_0_customer={min(mine)}").text
    from conftest import csrf_token
    posted = browser.client.post(f"/t/follow_up/add?_flt_0_customer={min(others)}", data={
        "csrf_token": csrf_token(token_page), "visit_date": "2026-11-02", "channel": "phone", "subject": "探底"})
    assert posted.status_code == 404


def test_one_roles_rows_never_combine_with_another_roles_verb(loaded: Any) -> None:
    from app.security.users import add_user
    with loaded.app_context():
        sm = loaded.appbuilder.sm
        user = add_user(loaded.appbuilder, "both", "sales", PASSWORD)
        user.roles.append(sm.find_role("service"))  # service reads every customer, may not update
        loaded.appbuilder.session.commit()
    other = min(own_customer_ids(loaded, "lina"))
    api = Api(loaded, "both", PASSWORD)
    assert api.get(f"/api/v1/customer/{other}").status_code == 200
    assert api.put(f"/api/v1/customer/{other}", json={"city": "改"}).status_code == 404


def test_a_catalogue_without_a_grant_is_pickable_by_title(make_app: Any, schema_dir: Path) -> None:
    roles = schema_dir / "roles.yaml"
    text = roles.read_text(encoding="utf-8")
    mine = "      product:    {can: [read], hide: [formula, process_notes]}\n"
    roles.write_text(text.replace(mine, "", 1), encoding="utf-8")
    from app.seed import load_demo_data
    loaded = make_app(schema_dir=schema_dir)
    load_demo_data(loaded, scale=0.02)
    api = Api(loaded, "zhangwei", "chem-demo-2026")
    assert api.get("/api/v1/product/").status_code == 403
    drafts = "(filters:!((col:status,opr:eq,value:draft)))"  # a confirmed one may be over its credit limit
    order = api.get(f"/api/v1/order/?q={drafts}").json["result"][0]["id"]
    product = first_id(loaded, "product")
    line = api.post("/api/v1/order_line/", json={"order": order, "product": product, "quantity": "2",
                                                 "unit": "kg", "unit_price": "10"})
    assert line.status_code == 201, line.json
    form = Browser(loaded, "zhangwei", "chem-demo-2026").get("/t/order_line/add").text
    assert form.count('<option value="') > 5


def test_the_generic_file_download_is_closed(loaded: Any) -> None:
    browser = Browser(loaded, "zhangwei", "chem-demo-2026")
    assert browser.get("/t/customer/download/x__secret.pdf").status_code == 404


REGIONS = """
choices:
  region:
    - {key: east, label: 华东}
    - {key: south, label: 华南}
    - {key: north, label: 华北}
tables:
  staff:
    label: {zh: 员工区域, en: Staff regions}
    title: person
    fields:
      person: {type: user, required: true}
      region: {type: choice, options: region, required: true}
  account:
    label: {zh: 客户, en: Account}
    fields:
      name: {type: string, required: true}
      region: {type: choice, options: region}
roles:
  regional:
    tables:
      account: {can: [read, create, update], rows: {region: {user: staff.region}}}
"""


def test_rows_can_match_values_the_user_has_in_another_table(make_app: Any, tmp_path: Path) -> None:
    from app.security.users import add_user
    schema = tmp_path / "regions"
    schema.mkdir()
    (schema / "s.yaml").write_text(REGIONS, encoding="utf-8")
    app = make_app(schema_dir=schema)
    with app.app_context():
        ids = {name: add_user(app.appbuilder, name, "regional", PASSWORD).id for name in ("li", "wu")}
    admin = Api(app)
    for person, region in (("li", "east"), ("li", "south"), ("wu", "north")):
        assert admin.post("/api/v1/staff/", json={"person": ids[person], "region": region}).status_code == 201
    for name, region in (("东方化工", "east"), ("南方化工", "south"), ("北方化工", "north"), ("无区域", None)):
        admin.post("/api/v1/account/", json={"name": name, "region": region})
    li = Api(app, "li", PASSWORD)
    assert sorted(r["name"] for r in li.get("/api/v1/account/").json["result"]) == ["东方化工", "南方化工"]
    assert [r["name"] for r in Api(app, "wu", PASSWORD).get("/api/v1/account/").json["result"]] == ["北方化工"]
    refused = li.post("/api/v1/account/", json={"name": "越区客户", "region": "north"})
    assert refused.status_code == 422
    assert li.post("/api/v1/account/", json={"name": "华南新客户", "region": "south"}).status_code == 201
    # moving li out of the south region takes the southern accounts out of li's reach at once
    south = admin.get("/api/v1/staff/?q=(filters:!((col:region,opr:eq,value:south)))").json["result"][0]["id"]
    assert admin.delete(f"/api/v1/staff/{south}").status_code == 200
    assert [r["name"] for r in li.get("/api/v1/account/").json["result"]] == ["东方化工"]


def test_user_value_rule_mistakes_are_reported() -> None:
    from app.schema import load_schema_text
    bad = REGIONS.replace("{region: {user: staff.region}}", "{region: {user: staff.regoin}}") + \
        "  other:\n    tables:\n      account: {can: [read], rows: {name: {user: staff.region}}}\n" \
        "  third:\n    tables:\n      account: {can: [read], rows: {region: {user: account.region}}}\n"
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": bad})
    report = str(caught.value)
    assert "s.yaml:22: roles.regional.tables.account.rows.region.user: 'regoin' is not a field of staff\n" \
           "    hint: did you mean 'region'? known fields: person, region" in report
    assert "s.yaml:25: roles.other.tables.account.rows.name.user: 'name' is a string field but staff.region " \
           "is a choice field\n    hint: match fields of the same type and options" in report
    assert "s.yaml:28: roles.third.tables.account.rows.region.user: account needs exactly one user field to " \
           "say whose row it is; it has 0" in report


def pdf_text(body: bytes) -> str:
    import io

    from pypdf import PdfReader
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


def test_the_review_screen_shows_saves_and_downloads_the_review(loaded: Any) -> None:
    browser = Browser(loaded)
    page = browser.get("/permissions/review/")
    assert page.status_code == 200
    text = page.text
    assert "权限复核" in text and "还没有记录过复核" in text and "first review: nothing to compare with" in text
    assert "<td>配方成分、生产工艺说明</td>" in text and "<td>信用额度（元）、付款条件</td>" in text  # labels, not keys
    assert "u_sales" in text
    saved = browser.submit("/permissions/review/", {}, post_url="/permissions/review/save", follow_redirects=True)
    assert "的权限复核" in saved.text and "no change since the previous review" in saved.text
    pdf = browser.get("/permissions/review.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf" and pdf.data.startswith(b"%PDF")
    words = pdf_text(pdf.data)
    assert "权限复核 Permission review" in words and "formula, process_notes" in words and "u_sales" in words
    csv_file = browser.get("/permissions/review.csv")
    assert csv_file.data.decode("utf-8-sig").startswith("section,role / user,")
    for role in DEFAULT.roles:  # no role but admin may open it
        assert Browser(loaded, f"u_{role}", PASSWORD).get("/permissions/review/").status_code == 403


def test_the_review_pdf_holds_the_review_in_chinese_and_english() -> None:
    import datetime

    from app.reports.permission_review import render_review_pdf
    from app.security.review import build_review
    review = build_review(DEFAULT, [])
    words = pdf_text(render_review_pdf(review, ["+ user 张伟 (sales)"], datetime.datetime(2026, 11, 27, 9, 30)))
    assert "权限复核 Permission review · 2026-11-27 09:30" in words
    assert "+ user 张伟 (sales)" in words and "own (customer.owner)" in words
