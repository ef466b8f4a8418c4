"""A schema of the admin's own: new tables and fields, SQL reserved words, and refusal on mistakes."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.schema import SchemaError
from conftest import PROJECT_DIR, Api, Browser

RESERVED = """
tables:
  group:
    label: {zh: 分组, en: Group}
    fields:
      select: {type: string, required: true, unique: true}
      desc: {type: text}
      order: {type: integer, index: true}
  user:
    label: {zh: 用户档案, en: User profile}
    fields:
      from: {type: string}
      group: {type: link, to: group, on_delete: cascade}
      where: {type: choice, options: [{key: all, label: 全部}]}
    list: [from, group, where]
"""


def test_a_new_schema_gets_screens_and_apis_without_code(make_app: Any, tmp_path: Path) -> None:
    schema = tmp_path / "my-schema"
    schema.mkdir()
    (schema / "lab.yaml").write_text("""
tables:
  sample:
    label: {zh: 样品, en: Sample}
    title: code
    fields:
      code: {type: string, required: true, unique: true, max_length: 20}
      cas: {type: cas_number, label: CAS号}
      hazard: {type: multi_choice, options: [{key: toxic, label: 有毒, color: "#f5222d"},
                                             {key: flammable, label: 易燃}]}
      received: {type: date, default: today}
      score: {type: rating}
""", encoding="utf-8")
    app = make_app(schema_dir=schema)
    assert [step.words for step in app.extensions["crm"].sync.applied] == ["+ create table sample (5 fields)"]
    browser = Browser(app)
    created = browser.submit("/t/sample/add", {"code": "S-1", "cas": "64-17-5", "hazard": ["toxic", "flammable"],
                                               "score": "4"})
    assert created.status_code == 302
    listing = browser.get("/t/sample/list/").text
    assert "S-1" in listing and 'style="background-color:#f5222d">有毒</span>' in listing
    refused = browser.submit("/t/sample/add", {"code": "S-2", "cas": "64-17-4"})
    assert "CAS号校验位不正确" in refused.text
    api = Api(app)
    record = api.get("/api/v1/sample/1").json["result"]
    assert record["hazard"] == ["toxic", "flammable"] and record["score"] == 4 and record["received"]


def test_sql_reserved_words_work_as_keys(make_app: Any, tmp_path: Path) -> None:
    schema = tmp_path / "reserved"
    schema.mkdir()
    (schema / "r.yaml").write_text(RESERVED, encoding="utf-8")
    app = make_app(schema_dir=schema)
    api = Api(app)
    group = api.post("/api/v1/group/", json={"select": "甲", "desc": "说明", "order": 3})
    assert group.status_code == 201, group.json
    row = api.post("/api/v1/user/", json={"from": "上海", "group": group.json["id"], "where": "all"})
    assert row.status_code == 201, row.json
    found = api.get("/api/v1/group/?q=(filters:!((col:order,opr:eq,value:3)),order_column:select)")
    assert found.json["count"] == 1
    browser = Browser(app)
    assert "上海" in browser.get("/t/user/list/").text
    assert "说明" in browser.get(f"/t/group/show/{group.json['id']}").text
    assert api.delete(f"/api/v1/group/{group.json['id']}").status_code == 200
    assert api.get("/api/v1/user/").json["count"] == 0  # on_delete: cascade


def test_a_schema_with_mistakes_starts_nothing(make_app: Any, tmp_path: Path, db_url: str) -> None:
    schema = tmp_path / "broken"
    schema.mkdir()
    (schema / "t.yaml").write_text("tables:\n  t:\n    fields:\n      a: {type: strng}\n", encoding="utf-8")
    with pytest.raises(SchemaError) as caught:
        make_app(schema_dir=schema)
    assert "t.yaml:4: tables.t.fields.a.type: unknown field type 'strng'" in str(caught.value)
    if db_url.startswith("sqlite:///"):
        assert not Path(db_url.removeprefix("sqlite:///")).exists()


def run_crm(*args: str, schema_dir: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRM_SCHEMA_DIR": str(schema_dir), "CRM_INSTANCE_DIR": str(tmp_path / "inst"),
           "CRM_SECRET_KEY": "k" * 40, "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_DIR, timeout=120)


def test_schema_check_command(tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "t.yaml").write_text("tables:\n  t:\n    fields:\n      a: {type: strng}\n      b: {type: lnk}\n",
                                   encoding="utf-8")
    result = run_crm("schema", "check", schema_dir=broken, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "tables.t.fields.a.type: unknown field type 'strng'" in result.stderr
    assert "tables.t.fields.b.type: unknown field type 'lnk'" in result.stderr
    assert "2 problems found in the schema; nothing was started." in result.stderr
    assert "Traceback" not in result.stderr

    started = run_crm("run", "--port", "0", schema_dir=broken, tmp_path=tmp_path)
    assert started.returncode == 1 and "unknown field type 'strng'" in started.stderr
    assert not (tmp_path / "inst" / "crm.db").exists()

    ok = run_crm("schema", "check", schema_dir=PROJECT_DIR / "schema", tmp_path=tmp_path)
    assert ok.returncode == 0 and ok.stdout.startswith("Schema OK: 9 tables")


def test_user_add_command(tmp_path: Path) -> None:
    schema = PROJECT_DIR / "schema"
    added = run_crm("user", "add", "lisi", "--role", "sales", "--password", "sales-pass-2026", schema_dir=schema,
                    tmp_path=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "Added user 'lisi' with role 'sales'." in added.stdout
    wrong = run_crm("user", "add", "wang", "--role", "boss", "--password", "sales-pass-2026", schema_dir=schema,
                    tmp_path=tmp_path)
    assert wrong.returncode == 1
    assert ("Error: unknown role 'boss'; known roles: admin, auditor, finance, rnd, sales, sales_manager, service"
            in wrong.stderr)


def test_a_field_added_to_an_existing_table_appears_and_keeps_the_data(make_app: Any, schema_dir: Path) -> None:
    app = make_app(schema_dir=schema_dir)
    Api(app).post("/api/v1/contact/", json={"name": "已有联系人", "customer": Api(app).post(
        "/api/v1/customer/", json={"name": "已有客户"}).json["id"]})
    path = schema_dir / "customers.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace(
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n    list: [name, industry",
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n"
        "      reach_no: {type: string, label: {zh: REACH注册号, en: REACH no.}, index: true}\n"
        "      key_person: {type: link, to: contact, on_delete: set_null}\n"
        "    list: [name, industry", 1), encoding="utf-8")
    again = make_app(schema_dir=schema_dir)
    assert [step.words for step in again.extensions["crm"].sync.applied] == [
        "+ add column customer.reach_no (string, nullable)", "+ add column customer.key_person (link, nullable)"]
    api = Api(again)
    assert api.put("/api/v1/customer/1", json={"reach_no": "01-2119457610-43", "key_person": 1}).status_code == 200
    record = api.get("/api/v1/customer/1").json["result"]
    assert (record["name"], record["reach_no"], record["key_person"]["name"]) == (
        "已有客户", "01-2119457610-43", "已有联系人")
    assert "REACH注册号" in Browser(again).get("/t/customer/show/1").text


def test_demo_data_loads_once_into_an_empty_database(app: Any) -> None:
    from app.seed import DemoNotEmpty, load_demo_data
    counts = load_demo_data(app, scale=0.02)
    assert counts["customer"] >= 5 and counts["order_line"] >= counts["order"] > 0
    api = Api(app)
    assert api.get("/api/v1/order_line/").json["count"] == counts["order_line"]
    assert Browser(app, "zhangwei", "chem-demo-2026").get("/t/customer/list/").status_code == 200
    with pytest.raises(DemoNotEmpty):
        load_demo_data(app, scale=0.02)
