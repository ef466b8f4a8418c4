"""Encryption, audit and backup against crafted data and awkward timing (found by a review of them)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.audit.log import AUDIT_TABLE
from conftest import Api, Browser
from test_encryption import PLAIN, add_recipes, raw_audit, secret_app  # noqa: F401


def audit_rows(app: Any, **where: Any) -> list[Any]:
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        query = sa.select(AUDIT_TABLE).order_by(AUDIT_TABLE.c.id)
        for key, value in where.items():
            query = query.where(AUDIT_TABLE.c[key] == value)
        return list(conn.execute(query))


def one_schema(make_app: Any, tmp_path: Path, text: str, name: str = "s") -> Any:
    folder = tmp_path / f"schema-{name}"
    folder.mkdir(exist_ok=True)
    (folder / "s.yaml").write_text(text, encoding="utf-8")
    return make_app(schema_dir=folder)


# --- audit capture bypasses -------------------------------------------------------------------

def test_cascade_deleted_children_are_audited(app: Any) -> None:
    api = Api(app)
    customer = api.post("/api/v1/customer/", json={"name": "级联化工"}).json["id"]
    contact = api.post("/api/v1/contact/", json={"customer": customer, "name": "张三"}).json["id"]
    assert api.delete(f"/api/v1/customer/{customer}").status_code == 200
    assert api.get(f"/api/v1/contact/{contact}").status_code == 404  # the database deleted it (cascade)
    assert audit_rows(app, table_key="contact", record_id=contact, action="delete"), \
        "the contact deleted by ON DELETE CASCADE left no audit entry"


def test_set_null_children_are_audited(app: Any) -> None:
    api = Api(app)
    customer = api.post("/api/v1/customer/", json={"name": "置空化工"}).json["id"]
    contact = api.post("/api/v1/contact/", json={"customer": customer, "name": "李四"}).json["id"]
    visit = api.post("/api/v1/follow_up/", json={"customer": customer, "contact": contact, "subject": "拜访",
                                                  "visit_date": "2024-05-01"})
    assert visit.status_code == 201, visit.json
    assert api.delete(f"/api/v1/contact/{contact}").status_code == 200
    assert api.get(f"/api/v1/follow_up/{visit.json['id']}").json["result"]["contact"] is None
    assert audit_rows(app, table_key="follow_up", record_id=visit.json["id"], action="update"), \
        "the follow-up whose contact the database set to NULL left no audit entry"


# --- plaintext reaching the database ----------------------------------------------------------

DEFAULT_SCHEMA = """
tables:
  recipe:
    label: {zh: 配方, en: Recipe}
    title: name
    fields:
      name: {type: string, label: {zh: 名称, en: Name}, required: true}
      code: {type: string, label: {zh: 内部编号, en: Internal code}, encrypted: true, default: DEFAULT-PLAIN-CODE}
"""


def test_default_of_an_encrypted_field_is_not_stored_in_plain_text(make_app: Any, tmp_path: Path) -> None:
    app = one_schema(make_app, tmp_path, DEFAULT_SCHEMA)
    api = Api(app)
    created = api.post("/api/v1/recipe/", json={"name": "默认值"})  # the API client leaves code out
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT code FROM recipe")).scalar()
    assert stored is None or stored.startswith("enc1:"), f"stored in plain text: {stored!r}"
    assert created.status_code == 201, created.json


# --- key rotation -----------------------------------------------------------------------------

def test_rotation_keeps_the_keys_of_the_audit_logs_sealed_values(secret_app: Any) -> None:  # noqa: F811
    from app.crypto import Keyring, new_key
    from app.security.keys import check_values, rotate_values
    add_recipes(secret_app)
    state = secret_app.extensions["crm"]
    old = state.keyring.primary
    ring = Keyring((new_key(), old), "test")
    with secret_app.app_context():
        engine = state.db.engine
        rotate_values(engine, state.models, ring)
        after = check_values(engine, state.models, ring)
    assert not after.per_key.get(old.id) and after.failures == []
    # the log is never rewritten: its sealed values keep the old key, which must therefore stay listed
    assert after.audit_keys[old.id] == 8


def test_rotation_does_not_overwrite_a_value_changed_meanwhile(secret_app: Any, make_app: Any,  # noqa: F811
                                                               monkeypatch: Any) -> None:
    import app.security.keys as keys
    from app.crypto import new_key
    first, _ = add_recipes(secret_app)
    old = secret_app.extensions["crm"].keyring.primary
    app = make_app(schema_dir=secret_app.config["CRM_SCHEMA_DIR"],  # restarted after `crm keys new`
                   CRM_ENCRYPTION_KEYS=f"{new_key().text()},{old.text()}")
    state, api = app.extensions["crm"], Api(app)
    real_seal, done = keys.seal, []

    def seal_while_a_user_saves(*args: Any) -> Any:
        # a user saves the formula after rotation read it, before rotation writes it
        if not done and args[2].key == "formula":
            done.append(api.put(f"/api/v1/recipe/{first}", json={"formula": "SAVED-DURING-ROTATION"}).status_code)
        return real_seal(*args)
    monkeypatch.setattr(keys, "seal", seal_while_a_user_saves)
    with app.app_context():
        keys.rotate_values(state.db.engine, state.models, state.keyring)
    assert done == [200]
    assert api.get(f"/api/v1/recipe/{first}").json["result"]["formula"] == "SAVED-DURING-ROTATION", \
        "rotation wrote back the value it read before the user's save"


# --- audit screen and search ----------------------------------------------------------------

def test_the_audit_screen_records_the_plain_values_it_shows(secret_app: Any) -> None:  # noqa: F811
    add_recipes(secret_app)
    reveals = len([e for e in raw_audit(secret_app) if e["action"] == "reveal"])
    page = Browser(secret_app).get("/audit/?table=recipe").text
    assert f"{PLAIN}-0" in page  # the admin is shown the decrypted formula ...
    assert len([e for e in raw_audit(secret_app) if e["action"] == "reveal"]) > reveals, \
        "... but no reveal entry records it"


def test_keyword_box_finds_a_searchable_value_with_a_space(secret_app: Any) -> None:  # noqa: F811
    api = Api(secret_app)
    assert api.post("/api/v1/recipe/", json={"name": "空格配方", "code": "AB 12"}).status_code == 201
    assert "空格配方" in Browser(secret_app).get("/t/recipe/list/?_flt_0_code=AB 12").text  # the filter finds it
    assert "空格配方" in Browser(secret_app).get("/t/recipe/list/?q=AB 12").text, "the keyword box does not"


# --- backups ----------------------------------------------------------------------------------

CYCLE_SCHEMA = """
tables:
  plant:
    label: {zh: 工厂, en: Plant}
    title: name
    fields:
      name: {type: string, label: {zh: 名称, en: Name}, required: true}
      manager: {type: link, to: worker, label: {zh: 厂长, en: Manager}, on_delete: set_null}
      parent: {type: link, to: plant, label: {zh: 上级, en: Parent}, on_delete: set_null}
      active: {type: boolean, label: {zh: 在用, en: Active}}
      capacity: {type: decimal, label: {zh: 产能, en: Capacity}, scale: 3}
      checked_at: {type: datetime, label: {zh: 检查时间, en: Checked at}}
      secret: {type: text, label: {zh: 秘密, en: Secret}, encrypted: true}
  worker:
    label: {zh: 员工, en: Worker}
    title: name
    fields:
      name: {type: string, label: {zh: 姓名, en: Name}, required: true}
      plant: {type: link, to: plant, label: {zh: 工厂, en: Plant}, on_delete: set_null}
"""


def test_backup_round_trip_with_cycles_and_next_inserts(make_app: Any, tmp_path: Path) -> None:
    from app.backup.jobs import scratch_database
    from app.factory import create_app
    from test_backup import cli, keys_of, table_sums
    app = one_schema(make_app, tmp_path, CYCLE_SCHEMA, "cycle")
    api = Api(app)
    first = api.post("/api/v1/plant/", json={"name": "一厂", "active": True, "capacity": "1.250",
                                             "secret": "CYCLE-SECRET"}).json["id"]
    worker = api.post("/api/v1/worker/", json={"name": "赵六", "plant": first}).json["id"]
    second = api.post("/api/v1/plant/", json={"name": "二厂", "parent": first, "manager": worker,
                                              "active": False}).json["id"]
    assert api.put(f"/api/v1/plant/{first}", json={"manager": worker, "parent": second}).status_code == 200
    with app.app_context(), app.extensions["crm"].db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE plant SET checked_at = :t WHERE id = :i"),
                     {"t": "2024-05-01 10:11:12.345678", "i": first})
    target = tmp_path / "cycle.crmbak"
    made = cli(app, "backup", "-o", str(target))
    assert made.returncode == 0, made.stderr
    original = table_sums(app.config["CRM_DATABASE_URL"])
    with scratch_database(app.config["CRM_DATABASE_URL"]) as empty:
        instance = tmp_path / "restored"
        done = cli(app, "restore", str(target), CRM_DATABASE_URL=empty, CRM_INSTANCE_DIR=str(instance),
                   CRM_ENCRYPTION_KEYS=keys_of(app))
        assert done.returncode == 0, done.stderr
        assert {k: v for k, v in table_sums(empty).items() if k in original} == original
        restored = create_app({"CRM_DATABASE_URL": empty, "CRM_SCHEMA_DIR": app.config["CRM_SCHEMA_DIR"],
                               "CRM_INSTANCE_DIR": str(instance), "CRM_MIGRATIONS_DIR": str(tmp_path / "m2"),
                               "CRM_ENCRYPTION_KEYS": keys_of(app), "CRM_SECRET_KEY": "k" * 40, "TESTING": True})
        try:
            again = Api(restored)
            shown = again.get(f"/api/v1/plant/{first}").json["result"]
            assert shown["secret"] == "CYCLE-SECRET" and shown["active"] is True and shown["capacity"] == "1.250"
            added = again.post("/api/v1/plant/", json={"name": "三厂", "parent": second})
            assert added.status_code == 201, added.json
            from app.security.users import add_user
            with restored.app_context():
                engine = restored.extensions["crm"].db.engine
                if engine.dialect.name != "sqlite" and engine.dialect.supports_sequences:
                    with engine.connect() as conn:  # FAB's tables take their ids from sequences (MariaDB too)
                        for table in ("ab_user", "ab_role", "ab_permission_view", "ab_view_menu"):
                            highest = conn.execute(sa.text(f"SELECT MAX(id) FROM {table}")).scalar()
                            following = conn.execute(sa.text(
                                f"SELECT NEXTVAL({table}_id_seq)" if engine.dialect.name != "postgresql"
                                else f"SELECT nextval('{table}_id_seq')")).scalar()
                            assert following > highest, (f"{table}: the next id {following} is already taken "
                                                         f"(max {highest})")
                add_user(restored.appbuilder, "newbie", "admin", "fresh-start-2026")
        finally:
            with restored.app_context():
                restored.extensions["crm"].db.session.remove()
                restored.extensions["crm"].db.engine.dispose()


def test_keys_check_detects_a_swapped_blind_index(secret_app: Any) -> None:  # noqa: F811
    import prison

    from app.security.keys import check_values
    first, second = add_recipes(secret_app)
    state = secret_app.extensions["crm"]
    with secret_app.app_context(), state.db.engine.begin() as conn:
        stored = dict(conn.execute(sa.text("SELECT id, code FROM recipe")).all())
        # a database administrator gives record 1 the search index of record 2's code
        forged = stored[second].split(":", 2)[:2] + [stored[first].split(":", 2)[2]]
        conn.execute(sa.text("UPDATE recipe SET code = :c WHERE id = :i"), {"c": ":".join(forged), "i": first})
    with secret_app.app_context():
        report = check_values(state.db.engine, state.models, state.keyring)
    api = Api(secret_app)
    found = api.get(f"/api/v1/recipe/?q={prison.dumps({'filters': [{'col': 'code', 'opr': 'eq', 'value': 'R-002'}]})}")
    codes = sorted(r["code"] for r in found.json["result"])  # ['R-001', 'R-002']: a record that is not R-002
    assert report.failures, f"crm keys check finds nothing wrong, while a search for R-002 answers {codes}"


def test_search_finds_an_encrypted_amount_as_it_is_shown(make_app: Any, tmp_path: Path) -> None:
    import prison
    app = one_schema(make_app, tmp_path, """
tables:
  lot:
    label: {zh: 批次, en: Lot}
    title: name
    filters: [price]
    fields:
      name: {type: string, label: {zh: 名称, en: Name}, required: true}
      price: {type: money, label: {zh: 价格, en: Price}, encrypted: true, searchable: true}
""", "money")
    api = Api(app)
    assert api.post("/api/v1/lot/", json={"name": "一批", "price": "1.5"}).status_code == 201
    assert "1.50" in Browser(app).get("/t/lot/list/").text  # shown with two decimals, like every amount
    found = api.get(f"/api/v1/lot/?q={prison.dumps({'filters': [{'col': 'price', 'opr': 'eq', 'value': '1.50'}]})}")
    assert [r["name"] for r in found.json["result"]] == ["一批"]
