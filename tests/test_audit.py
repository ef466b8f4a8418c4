"""The audit trail: every change with who, when, where and old/new values; hash-chained; shown through
the permission gate; reveals and schema changes recorded."""
from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.audit.log import AUDIT_TABLE, Entry, append, verify
from conftest import Api, Browser

PASSWORD = "role-pass-123"


@pytest.fixture
def demo(app: Any) -> Any:
    from app.security.users import add_user
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    with app.app_context():
        add_user(app.appbuilder, "u_auditor", "auditor", PASSWORD)
    return app


def entries(app: Any, **where: Any) -> list[Any]:
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        query = sa.select(AUDIT_TABLE).order_by(AUDIT_TABLE.c.id)
        for key, value in where.items():
            query = query.where(AUDIT_TABLE.c[key] == value)
        return list(conn.execute(query))


def test_creates_updates_and_deletes_are_recorded_with_who_where_and_values(demo: Any) -> None:
    api = Api(demo)
    created = api.post("/api/v1/customer/", json={"name": "审计化工", "grade": "A", "credit_limit": "5000"})
    pk = created.json["id"]
    (entry,) = entries(demo, table_key="customer", record_id=pk, action="create")
    assert (entry.username, entry.ip) == ("admin", "127.0.0.1")
    assert json.loads(entry.changes) == {"name": "审计化工", "grade": "A", "credit_limit": "5000",
                                         "status": "prospect"}
    browser = Browser(demo)
    saved = browser.submit(f"/t/customer/edit/{pk}", {"name": "审计化工(改)", "grade": "B", "status": "active",
                                                      "credit_limit": "5000"})
    assert saved.status_code == 302
    (update,) = entries(demo, table_key="customer", record_id=pk, action="update")
    assert json.loads(update.changes) == {"name": ["审计化工", "审计化工(改)"], "grade": ["A", "B"],
                                          "status": ["prospect", "active"]}
    assert api.delete(f"/api/v1/customer/{pk}").status_code == 200
    (deleted,) = entries(demo, table_key="customer", record_id=pk, action="delete")
    assert json.loads(deleted.changes)["name"] == "审计化工(改)"
    page = browser.get("/t/order/list/").text  # any page: the log does not get in the way
    assert "订单" in page


def test_encrypted_values_are_logged_sealed_and_shown_only_to_who_may_reveal(demo: Any) -> None:
    rnd = Api(demo, "sunli", "chem-demo-2026")
    product = rnd.get("/api/v1/product/").json["result"][0]["id"]
    assert rnd.put(f"/api/v1/product/{product}", json={"formula": "AUDIT-SECRET-FORMULA"}).status_code == 200
    (update,) = entries(demo, table_key="product", record_id=product, action="update")
    assert "AUDIT-SECRET-FORMULA" not in update.changes and '"sealed": "enc1:' in update.changes
    history = Browser(demo, "sunli", "chem-demo-2026").get(f"/t/product/show/{product}").text
    assert "AUDIT-SECRET-FORMULA" in history and "历史" in history
    reveals = entries(demo, table_key="product", action="reveal")
    assert reveals and reveals[-1].username == "sunli" and json.loads(reveals[-1].changes)["records"] == [product]
    # a role that may not see formulas sees neither the value nor the field in the history
    sales_page = Browser(demo, "zhangwei", "chem-demo-2026").get(f"/t/product/show/{product}").text
    assert "AUDIT-SECRET-FORMULA" not in sales_page and "配方成分" not in sales_page
    audit_page = Browser(demo, "u_auditor", PASSWORD).get("/audit/?table=product").text
    assert "AUDIT-SECRET-FORMULA" not in audit_page and "配方成分" not in audit_page
    assert "孙立" in audit_page  # who: the account's name


def test_the_audit_screen_follows_the_gate(demo: Any) -> None:
    Api(demo).post("/api/v1/customer/", json={"name": "屏幕审计化工"})
    assert Browser(demo, "u_auditor", PASSWORD).get("/audit/").status_code == 200
    assert "屏幕审计化工" in Browser(demo).get("/audit/?table=customer&action=create").text
    assert "屏幕审计化工" in Browser(demo, "u_auditor", PASSWORD).get("/audit/?user=admin").text
    assert Browser(demo, "zhangwei", "chem-demo-2026").get("/audit/").status_code == 403
    home = Browser(demo, "u_auditor", PASSWORD).get("/").text
    assert 'href="/audit/"' in home


def test_the_hash_chain_detects_an_edited_removed_or_added_entry(demo: Any) -> None:
    api = Api(demo)
    for n in range(3):
        api.post("/api/v1/customer/", json={"name": f"链条化工{n}"})
    engine_url = demo.config["CRM_DATABASE_URL"]
    engine = sa.create_engine(engine_url)
    with engine.begin() as conn:
        count, problems = verify(conn)
        assert count >= 4 and problems == []
        ids = [r.id for r in conn.execute(sa.select(AUDIT_TABLE.c.id).order_by(AUDIT_TABLE.c.id))]
        conn.execute(AUDIT_TABLE.update().where(AUDIT_TABLE.c.id == ids[-2]).values(username="someone-else"))
        assert verify(conn)[1] == [f"entry {ids[-2]} was changed after it was written (its content does not "
                                   "match its hash)"]
        conn.rollback()
    with engine.begin() as conn:
        conn.execute(AUDIT_TABLE.delete().where(AUDIT_TABLE.c.id == ids[-2]))
        assert verify(conn)[1] == [f"entry {ids[-1]} does not follow entry {ids[-3]}: an entry between them was "
                                   "removed or added, or one was changed"]
        conn.rollback()
    with engine.begin() as conn:
        conn.execute(AUDIT_TABLE.delete().where(AUDIT_TABLE.c.id == ids[-1]))
        assert verify(conn)[1] == [f"the log ends at entry {ids[-2]} but its head records entry {ids[-1]}: the "
                                   "newest entries were removed, or the head was changed"]
        conn.rollback()
    engine.dispose()


def test_concurrent_writers_keep_one_chain(demo: Any) -> None:
    url = demo.config["CRM_DATABASE_URL"]
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        engine = sa.create_engine(url, connect_args={"timeout": 30} if url.startswith("sqlite") else {})
        try:
            for i in range(15):
                with engine.begin() as conn:
                    append(conn, [Entry("import", "customer", None, {"writer": n, "i": i})])
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            engine.dispose()
    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        count, problems = verify(conn)
    engine.dispose()
    imports = [e for e in entries(demo, action="import") if e.username != "(demo data)"]
    assert problems == [] and len(imports) == 60


def test_schema_changes_and_the_command_line_verify(make_app: Any, schema_dir: Path, db_url: str,
                                                    tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    make_app(schema_dir=schema_dir)
    products = schema_dir / "products.yaml"
    products.write_text(products.read_text(encoding="utf-8").replace(
        "      is_active:", "      shelf_life: {type: integer, label: 保质期(月)}\n      is_active:", 1),
        encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    (schema_entry,) = [e for e in entries(app, action="schema")
                       if "+ add column product.shelf_life" in e.changes]
    assert schema_entry.username == "(schema sync)"
    config = app.config
    env = {**os.environ, "CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": str(schema_dir),
           "CRM_INSTANCE_DIR": config["CRM_INSTANCE_DIR"], "CRM_MIGRATIONS_DIR": config["CRM_MIGRATIONS_DIR"],
           "CRM_SECRET_KEY": "k" * 40}
    done = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], capture_output=True, text=True,
                          env=env, cwd=Path(__file__).parent.parent, timeout=120)
    assert done.returncode == 0 and "the chain is intact" in done.stdout, done.stderr
    with app.app_context(), app.extensions["crm"].db.engine.begin() as conn:
        conn.execute(AUDIT_TABLE.update().where(AUDIT_TABLE.c.id == schema_entry.id).values(ip="10.0.0.1"))
    tampered = subprocess.run([sys.executable, "-m", "app.cli", "audit", "verify"], capture_output=True,
                              text=True, env=env, cwd=Path(__file__).parent.parent, timeout=120)
    assert tampered.returncode == 1
    assert f"entry {schema_entry.id} was changed after it was written" in tampered.stderr


def test_login_accounts_are_audited_without_their_passwords(demo: Any) -> None:
    from app.security.users import add_user
    with demo.app_context():
        sm = demo.appbuilder.sm
        user = add_user(demo.appbuilder, "newhire", "sales", PASSWORD)
        user.roles.append(sm.find_role("service"))
        user.active = False
        demo.appbuilder.session.commit()
        sm.reset_password(user.id, "another-pass-456")
        user_id = user.id
    created, *updates = entries(demo, table_key="ab_user", record_id=user_id)
    assert created.action == "create" and created.username == "(command line)"
    assert json.loads(created.changes)["roles"] == ["sales"] and json.loads(created.changes)["password"] == "••••"
    changes = [json.loads(e.changes) for e in updates]
    assert {"roles": [["sales"], ["sales", "service"]], "active": [True, False]} in changes
    assert {"password": ["••••", "••••"]} in changes
    everything = " ".join(str(e.changes) for e in entries(demo))
    assert "pbkdf2" not in everything and "scrypt" not in everything and PASSWORD not in everything
    page = Browser(demo, "u_auditor", PASSWORD).get("/audit/?table=ab_user").text
    assert "sales、service" in page and "用户账号" in page
