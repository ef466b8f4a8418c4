"""Field rules (hide, readonly, show_only) on every surface, generated from the roles in the YAML.

Adding a role, a grant or a field rule to schema/roles.yaml extends these tests without writing one.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import prison
import pytest
import sqlalchemy as sa

from app.models.encryption import seal
from app.schema import load_schema, naming
from conftest import Api, Browser

DEFAULT = load_schema(Path(__file__).resolve().parent.parent / "schema")
PASSWORD = "role-pass-123"
MARK = "SECRETMARK"


def grant(role: str, table_key: str) -> Any:
    return DEFAULT.grants_of(role).get(table_key)


def readable(role: str) -> list[Any]:
    return [t for t in DEFAULT.tables if grant(role, t.key) and "read" in grant(role, t.key).can]


def expected_shown(role: str, table: Any) -> set[str]:
    return grant(role, table.key).shown_fields(f.key for f in table.fields)


def expected_writable(role: str, table: Any) -> set[str]:
    g = grant(role, table.key)
    return {k for k in expected_shown(role, table) if k not in g.readonly and not table.field(k).readonly
            and not table.field(k).is_computed}


def hidden_somewhere() -> list[tuple[Any, Any]]:
    """Return (table, field) for every field some default role may not see."""
    found = []
    for table in DEFAULT.tables:
        for f in table.fields:
            if any(grant(r, table.key) and f.key not in expected_shown(r, table) for r in DEFAULT.roles
                   if table in readable(r)):
                found.append((table, f))
    return found


@pytest.fixture
def marked(app: Any) -> Any:
    """Demo data with a marker in every row of every field a role hides, and a user per role."""
    from app.security.users import add_user
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    with app.app_context():
        models = app.extensions["crm"].models
        session = app.appbuilder.session
        ring = app.extensions["crm"].keyring
        for table, f in hidden_somewhere():
            column = models.metadata.tables[naming.table_name_for(table.key)].c[naming.column_name_for(f)]
            if not isinstance(column.type, (sa.String, sa.Text)) or f.type == "attachment":
                continue
            for (row_id,) in session.execute(sa.select(column.table.c.id)).all():
                value = f"{MARK}-{f.key}-{row_id}"
                stored = seal(ring, table.key, f, row_id, value) if f.encrypted else value
                session.execute(column.table.update().where(column.table.c.id == row_id).values({column: stored}))
        session.commit()
        for role in DEFAULT.roles:
            add_user(app.appbuilder, f"u_{role}", role, PASSWORD)
    return app


def clients(app: Any, role: str) -> tuple[Api, Browser]:
    """Log in as a demo user who has only this role (they own records), else as the role's test user."""
    with app.app_context():
        users = app.appbuilder.sm.get_all_users()
        demo = [u.username for u in users if [r.name for r in u.roles] == [role] and not u.username.startswith("u_")]
    username, password = (demo[0], "chem-demo-2026") if demo else (f"u_{role}", PASSWORD)
    return Api(app, username, password), Browser(app, username, password)


def test_the_default_roles_hide_formulas_from_everyone_but_rnd() -> None:
    hidden = {(t.key, f.key) for t, f in hidden_somewhere()}
    assert {("product", "formula"), ("product", "process_notes")} <= hidden
    assert [r for r in DEFAULT.roles
            if grant(r, "product") and "formula" in expected_shown(r, DEFAULT.table("product"))] == ["rnd"]


def surfaces(api: Api, browser: Browser, role: str, table: Any) -> dict[str, Any]:
    """Return url -> response for every way the table's data leaves the system for this role."""
    key, g = table.key, grant(role, table.key)
    every = [f.key for f in table.fields]
    listing = api.get(f"/api/v1/{key}/?q=(page_size:100)").json["result"]
    ids = [r["id"] for r in listing][:3]
    urls = [f"/api/v1/{key}/?q=(page_size:100)",
            f"/api/v1/{key}/?q={prison.dumps({'columns': every, 'page_size': 100})}",
            f"/api/v1/{key}/_info",
            f"/api/v1/{key}/_info?q={prison.dumps({'keys': ['add_columns', 'edit_columns', 'filters']})}",
            f"/t/{key}/list/"]
    for pk in ids:
        urls += [f"/api/v1/{key}/{pk}", f"/api/v1/{key}/{pk}?q={prison.dumps({'columns': every})}",
                 f"/t/{key}/show/{pk}"]
        if "update" in g.can:
            urls.append(f"/t/{key}/edit/{pk}")
    if "create" in g.can:
        urls.append(f"/t/{key}/add")
    for child, _link in DEFAULT.children_of(key):  # a parent's page lists its children
        if child in readable(role):
            child_ids = [r["id"] for r in api.get(f"/api/v1/{child.key}/").json["result"]][:2]
            urls += [f"/t/{child.key}/show/{pk}" for pk in child_ids]
    return {url: (api if url.startswith("/api/") else browser).get(url) for url in urls}


def test_no_hidden_value_appears_on_any_surface(marked: Any) -> None:
    leaks, checked = [], 0
    for role in DEFAULT.roles:
        api, browser = clients(marked, role)
        home = browser.get("/")  # the home page's counts and dashboard, once per role
        checked += 1
        assert home.status_code == 200, role
        if role != "rnd":  # the only role that sees a marked field
            assert MARK not in home.text, role
        for table in readable(role):
            hides_marked = any(t.key == table.key and f.key not in expected_shown(role, table)
                               for t, f in hidden_somewhere())
            for url, response in surfaces(api, browser, role, table).items():
                checked += 1
                assert response.status_code == 200, (role, url, response.status_code)
                if hides_marked and MARK in response.text:
                    leaks.append(f"{role} {url}")
    assert checked > 100 and not leaks, leaks


def test_the_marker_does_show_where_the_role_may_see_it(marked: Any) -> None:
    # The control for the test above: rnd sees formulas, so the marker is there to be found.
    api, browser = Api(marked, "u_rnd", PASSWORD), Browser(marked, "u_rnd", PASSWORD)
    pk = api.get("/api/v1/product/").json["result"][0]["id"]
    assert api.get(f"/api/v1/product/{pk}").json["result"]["formula"] == f"{MARK}-formula-{pk}"
    assert f"{MARK}-process_notes-{pk}" in browser.get(f"/t/product/show/{pk}").text
    assert f"{MARK}-formula-{pk}" in browser.get(f"/t/product/edit/{pk}").text


def test_every_role_sees_and_writes_exactly_its_fields(marked: Any) -> None:
    """Generated from the YAML: the columns of every answer, form and filter list per role and table."""
    failures = []
    for role in DEFAULT.roles:
        api, browser = clients(marked, role)
        for table in readable(role):
            key, g = table.key, grant(role, table.key)
            shown, writable = expected_shown(role, table), expected_writable(role, table)
            record = api.get(f"/api/v1/{key}/").json["result"][0]
            if set(record) - {"id"} != shown:
                failures.append(f"{role} {key} API fields: {sorted(set(record) ^ shown ^ {'id'})}")
            info = api.get(f"/api/v1/{key}/_info").json
            uploads = {f.key for f in table.fields if f.type == "attachment"}  # the API does not write files
            if "create" in g.can and {c["name"] for c in info["add_columns"]} != writable - uploads:
                failures.append(f"{role} {key} API add columns")
            if not set(info["filters"]) <= shown:
                failures.append(f"{role} {key} API filters: {sorted(set(info['filters']) - shown)}")
            if "update" in g.can:
                form = browser.get(f"/t/{key}/edit/{record['id']}").text
                inputs = set(re.findall(r'name="([a-z_]+)"', form)) & {f.key for f in table.fields}
                if inputs != writable:
                    failures.append(f"{role} {key} edit form: {sorted(inputs ^ writable)}")
            page = browser.get(f"/t/{key}/show/{record['id']}").text
            for f in table.fields:
                label = f.label.zh
                if f.key not in shown and f"<th>{label}</th>" in page.replace(" ", ""):
                    failures.append(f"{role} {key} show page labels {f.key}")
    assert not failures, failures


def test_filtering_or_sorting_by_a_hidden_field_is_refused(marked: Any) -> None:
    api, browser = Api(marked, "u_sales", PASSWORD), Browser(marked, "u_sales", PASSWORD)
    flt = prison.dumps({"filters": [{"col": "formula", "opr": "ct", "value": MARK}]})
    assert api.get(f"/api/v1/product/?q={flt}").json == {"message": "Filter column: formula not allowed to filter"}
    order = api.get(f"/api/v1/product/?q={prison.dumps({'order_column': 'formula', 'order_direction': 'asc'})}")
    assert (order.status_code, order.json) == (400, {"message": "Invalid order by column: formula"})
    view = naming.view_class_name_for("product")
    for url in (f"/t/product/list/?_flt_0_formula={MARK}", f"/t/product/list/?_oc_{view}=formula&_od_{view}=asc"):
        page = browser.get(url)
        assert page.status_code == 400 and "您的角色看不到字段“配方成分”，不能按它排序或筛选" in page.text, url
    rnd = Browser(marked, "u_rnd", PASSWORD)
    assert rnd.get(f"/t/product/list/?_oc_{view}=name&_od_{view}=asc").status_code == 200
    encrypted = rnd.get(f"/t/product/list/?_oc_{view}=formula&_od_{view}=asc")  # never by ciphertext
    assert encrypted.status_code == 400 and "这个列表不能按“配方成分”排序" in encrypted.text


def test_a_crafted_write_of_a_hidden_or_read_only_field_changes_nothing(marked: Any) -> None:
    api, browser = Api(marked, "zhangwei", "chem-demo-2026"), Browser(marked, "zhangwei", "chem-demo-2026")
    mine = api.get("/api/v1/customer/").json["result"][0]
    put = api.put(f"/api/v1/customer/{mine['id']}", json={"credit_limit": "99999999", "city": "厦门"})
    assert (put.status_code, put.json) == (422, {"message": {"credit_limit": ["Unknown field."]}})
    posted = api.post("/api/v1/customer/", json={"name": "自定额度的客户", "credit_limit": "1"})
    assert (posted.status_code, posted.json) == (422, {"message": {"credit_limit": ["Unknown field."]}})
    saved = browser.submit(f"/t/customer/edit/{mine['id']}", {
        "name": mine["name"], "status": "active", "city": "泉州", "owner": mine["owner"]["id"],
        "credit_limit": "99999999", "payment_terms": "letter_of_credit"})
    assert saved.status_code == 302
    after = api.get(f"/api/v1/customer/{mine['id']}").json["result"]
    assert (after["city"], after["credit_limit"], after["payment_terms"]) == \
        ("泉州", mine["credit_limit"], mine["payment_terms"])
    edit = browser.get(f"/t/customer/edit/{mine['id']}").text
    assert "只读字段" in edit and 'name="credit_limit"' not in edit
    product = Api(marked, "u_rnd", PASSWORD).get("/api/v1/product/").json["result"][0]
    sales = Api(marked, "u_sales_manager", PASSWORD)
    refused = sales.put(f"/api/v1/product/{product['id']}", json={"formula": "x"})
    assert refused.status_code == 403  # no update at all on products for a sales manager


LAB = """
tables:
  lab:
    label: {zh: 实验室, en: Lab}
    title: name
    search: [name, secret_code]
    fields:
      name: {type: string, label: {zh: 名称, en: Name}, required: true}
      secret_code: {type: string, label: {zh: 暗号, en: Secret code}}
      report: {type: attachment, label: {zh: 报告, en: Report}}
  sample:
    label: {zh: 样品, en: Sample}
    title: code
    list: [code, lab, hazard]
    fields:
      code: {type: string, label: {zh: 编号, en: Code}, required: true}
      lab: {type: link, to: lab, label: {zh: 实验室, en: Lab}}
      hazard: {type: string, label: {zh: 危害, en: Hazard}}
roles:
  viewer:
    tables:
      lab: {can: [read, update], hide: [secret_code, report]}
      sample: {can: [read], show_only: [code]}
  hazard_reader:
    tables:
      sample: {can: [read, update], show_only: [code, hazard], readonly: [code]}
"""


@pytest.fixture
def lab_app(make_app: Any, tmp_path: Path) -> Any:
    """A two-table schema whose roles hide a searched field, an attachment and a link, with rows."""
    from app.security.users import add_user
    schema = tmp_path / "lab-schema"
    schema.mkdir()
    (schema / "lab.yaml").write_text(LAB, encoding="utf-8")
    app = make_app(schema_dir=schema)
    admin = Api(app)
    lab = admin.post("/api/v1/lab/", json={"name": "一号实验室", "secret_code": f"{MARK}-code"}).json["id"]
    for n in range(3):
        admin.post("/api/v1/sample/", json={"code": f"S-{n}", "lab": lab, "hazard": f"{MARK}-hazard-{n}"})
    with app.app_context():
        models = app.extensions["crm"].models
        table = models.metadata.tables[naming.table_name_for("lab")]
        app.appbuilder.session.execute(table.update().values({naming.column_name_for(
            DEFAULT_LAB.table("lab").field("report")): "abc__report.pdf"}))
        app.appbuilder.session.commit()
        add_user(app.appbuilder, "viewer", "viewer", PASSWORD)
        add_user(app.appbuilder, "both", "viewer", PASSWORD)
        user = app.appbuilder.sm.find_user(username="both")
        user.roles.append(app.appbuilder.sm.find_role("hazard_reader"))
        app.appbuilder.session.commit()
    (Path(app.config["UPLOAD_FOLDER"])).mkdir(parents=True, exist_ok=True)
    (Path(app.config["UPLOAD_FOLDER"]) / "abc__report.pdf").write_bytes(f"%PDF {MARK}".encode())
    return app


def _load_lab() -> Any:
    from app.schema import load_schema_text
    return load_schema_text({"lab.yaml": LAB})


DEFAULT_LAB = _load_lab()


def test_hidden_search_fields_links_and_files_stay_hidden(lab_app: Any) -> None:
    api, browser = Api(lab_app, "viewer", PASSWORD), Browser(lab_app, "viewer", PASSWORD)
    lab = api.get("/api/v1/lab/").json["result"][0]
    assert lab == {"id": lab["id"], "name": "一号实验室"}
    # the keyword box searches only the fields the user sees, and says so
    listing = browser.get("/t/lab/list/").text
    assert 'placeholder="搜索:名称"' in listing
    assert "一号实验室" not in browser.get(f"/t/lab/list/?q={MARK}").text
    assert "一号实验室" in Browser(lab_app).get(f"/t/lab/list/?q={MARK}").text
    # the attachment cannot be fetched, and the lab's page does not list samples by their hidden link
    assert browser.get("/t/lab/file/report/abc__report.pdf").status_code == 404
    download = Browser(lab_app).get("/t/lab/file/report/abc__report.pdf")
    assert download.status_code == 200
    download.close()
    page = browser.get(f"/t/lab/show/{lab['id']}").text
    assert "S-0" not in page and MARK not in page
    assert "S-0" in Browser(lab_app).get(f"/t/lab/show/{lab['id']}").text
    samples = api.get("/api/v1/sample/").json["result"]
    assert sorted(samples[0]) == ["code", "id"]
    sample_page = browser.get(f"/t/sample/show/{samples[0]['id']}").text
    assert MARK not in sample_page and "一号实验室" not in sample_page
    # an edit saves what the user may write and leaves the hidden fields as they were
    saved = browser.submit(f"/t/lab/edit/{lab['id']}", {"name": "二号实验室", "secret_code": "",
                                                         "report": ""})
    assert saved.status_code == 302
    stored = Api(lab_app).get(f"/api/v1/lab/{lab['id']}").json["result"]
    assert (stored["name"], stored["secret_code"], stored["report"]) == ("二号实验室", f"{MARK}-code",
                                                                       "abc__report.pdf")


def test_two_roles_see_the_union_of_their_fields(lab_app: Any) -> None:
    api, browser = Api(lab_app, "both", PASSWORD), Browser(lab_app, "both", PASSWORD)
    sample = api.get("/api/v1/sample/").json["result"][0]
    assert sorted(sample) == ["code", "hazard", "id"]
    edit = browser.get(f"/t/sample/edit/{sample['id']}").text
    assert 'name="hazard"' in edit and 'name="code"' not in edit and 'name="lab"' not in edit
    refused = api.put(f"/api/v1/sample/{sample['id']}", json={"code": "X-1"})
    assert (refused.status_code, refused.json) == (422, {"message": {"code": ["Unknown field."]}})
    assert api.put(f"/api/v1/sample/{sample['id']}", json={"hazard": "易燃"}).status_code == 200
    stored = Api(lab_app).get(f"/api/v1/sample/{sample['id']}").json["result"]
    assert (stored["code"], stored["hazard"], stored["lab"]["name"]) == (sample["code"], "易燃", "一号实验室")
    view = naming.view_class_name_for("sample")
    refused_order = Browser(lab_app, "viewer", PASSWORD).get(f"/t/sample/list/?_oc_{view}=hazard&_od_{view}=asc")
    assert refused_order.status_code == 400 and "您的角色看不到字段“危害”" in refused_order.text
    assert browser.get(f"/t/sample/list/?_oc_{view}=hazard&_od_{view}=asc").status_code == 200


def test_field_rule_mistakes_are_reported() -> None:
    from app.schema import SchemaError, load_schema_text
    roles = ("roles:\n"
             "  clerk:\n"
             "    tables:\n"
             "      lab: {can: [read, create], hide: [name]}\n"
             "      sample: {can: [read, create], show_only: [lab, code], readonly: [code]}\n")
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"lab.yaml": LAB.split("roles:")[0], "roles.yaml": roles})
    assert str(caught.value) == (
        "roles.yaml:4: roles.clerk.tables.lab.hide: 'name' is required, so a role that can create lab records "
        "must be able to fill it\n"
        "    hint: give the field a default, let the role write it, or take create out of can\n"
        "roles.yaml:4: roles.clerk.tables.lab.hide: the title field 'name' of lab cannot be hidden\n"
        "    hint: records are shown and picked by their title everywhere; hide other fields or choose another "
        "title for the table\n"
        "roles.yaml:5: roles.clerk.tables.sample.readonly: 'code' is required, so a role that can create sample "
        "records must be able to fill it\n"
        "    hint: give the field a default, let the role write it, or take create out of can\n"
        "3 problems found in the schema; nothing was started.")
