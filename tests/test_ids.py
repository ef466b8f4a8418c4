"""Ids are never used twice: a record created after the newest one was deleted gets a new id, so the
deleted record's history and audit entries never show on it, on every database and for tables made
before SQLite tables were AUTOINCREMENT."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.audit.log import Entry, append
from app.dbsync.sync import sync_schema
from app.schema import load_schema_text
from conftest import Api, Browser


def test_a_new_record_never_takes_a_deleted_records_id_or_history(app: Any, api: Api) -> None:
    first = api.post("/api/v1/customer/", json={"name": "被删化工", "credit_limit": "990000"}).json["id"]
    assert api.put(f"/api/v1/customer/{first}", json={"name": "被删化工（改）"}).status_code == 200
    assert api.delete(f"/api/v1/customer/{first}").status_code == 200

    second = api.post("/api/v1/customer/", json={"name": "新来化工"}).json["id"]

    assert second > first
    page = Browser(app).get(f"/t/customer/show/{second}").text
    assert "新来化工" in page and "被删化工" not in page and "990" not in page
    with app.app_context():
        actions = app.appbuilder.session.execute(sa.text(
            "SELECT action FROM crm_audit WHERE table_key = 'customer' AND record_id = :id ORDER BY id"),
            {"id": second}).scalars().all()
    assert actions == ["create"]


def test_a_deleted_login_accounts_id_is_not_given_to_a_new_account(app: Any, api: Api) -> None:
    with app.app_context():
        security = app.appbuilder.sm
        role = security.find_role("销售")
        old = security.add_user("leaver", "离", "职", "leaver@example.com", role, password="Leaver-pass-2026!")
        old_id = old.id
        app.appbuilder.session.delete(old)
        app.appbuilder.session.commit()
        new = security.add_user("joiner", "新", "人", "joiner@example.com", role, password="Joiner-pass-2026!")
        assert new.id > old_id


OLD_STYLE = """
tables:
  product:
    title: code
    fields:
      code: {type: string, required: true, unique: true, max_length: 20}
      supplier: {type: link, to: supplier}
  supplier:
    title: name
    fields:
      name: {type: string}
"""


def test_tables_made_before_autoincrement_are_rebuilt_and_count_on_after_the_audit_log(
        db_url: str, tmp_path: Path) -> None:
    """A database whose tables may reuse ids (SQLite before AUTOINCREMENT): the next start rebuilds
    them, rows and links kept, and new ids start after every id the audit log knows."""
    engine = sa.create_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"
    with engine.begin() as conn:
        if sqlite:  # as the tables were made before: without AUTOINCREMENT
            conn.execute(sa.text("CREATE TABLE supplier (id INTEGER NOT NULL PRIMARY KEY, name VARCHAR(255))"))
            conn.execute(sa.text("CREATE TABLE product (id INTEGER NOT NULL PRIMARY KEY, code VARCHAR(20), "
                                 "supplier_id INTEGER CONSTRAINT fk_product_supplier REFERENCES supplier (id) "
                                 "ON DELETE RESTRICT)"))
            conn.execute(sa.text("CREATE UNIQUE INDEX uq_product_code ON product (code)"))
            conn.execute(sa.text("CREATE INDEX ix_product_supplier ON product (supplier_id)"))
    if not sqlite:
        sync_schema(db_url, load_schema_text({"schema.yaml": OLD_STYLE}), None)
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO supplier (name) VALUES ('甲供应商')"))
        conn.execute(sa.text("INSERT INTO product (code, supplier_id) VALUES ('P-1', 1), ('P-2', 1), ('P-3', NULL)"))
    # product 9 existed once: created and deleted, only the audit log remembers it
    from app.audit.log import ensure_audit_tables
    with engine.begin() as conn:
        ensure_audit_tables(conn)
        append(conn, [Entry("create", "product", 9, {"code": "P-9"}), Entry("delete", "product", 9)])

    result = sync_schema(db_url, load_schema_text({"schema.yaml": OLD_STYLE}), None)

    words = [step.words for step in result.applied]
    if sqlite:
        assert words == [
            "+ add version numbers to product records (so that a save based on an outdated copy is refused)",
            "~ never reuse the ids of deleted product records (SQLite AUTOINCREMENT)",
            "+ add version numbers to supplier records (so that a save based on an outdated copy is refused)",
            "~ never reuse the ids of deleted supplier records (SQLite AUTOINCREMENT)"]
        with engine.connect() as conn:
            for name in ("product", "supplier"):
                sql = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = :n"), {"n": name}).scalar()
                assert "AUTOINCREMENT" in sql
    else:
        assert words == []
    with engine.begin() as conn:
        rows = conn.execute(sa.text("SELECT id, code, supplier_id, row_version FROM product ORDER BY id")).all()
        assert [tuple(r) for r in rows] == [(1, "P-1", 1, 1), (2, "P-2", 1, 1), (3, "P-3", None, 1)]
        if sqlite:  # the rebuilt table counts on after the audit log; links and uniqueness still hold
            conn.execute(sa.text("INSERT INTO product (code) VALUES ('P-4')"))
            assert conn.execute(sa.text("SELECT id FROM product WHERE code = 'P-4'")).scalar() == 10
            assert conn.execute(sa.text("PRAGMA foreign_key_list(product)")).all()
            try:
                with conn.begin_nested():
                    conn.execute(sa.text("INSERT INTO product (code) VALUES ('P-1')"))
                raise AssertionError("the unique index was lost")
            except sa.exc.IntegrityError:
                pass
    engine.dispose()
    again = sync_schema(db_url, load_schema_text({"schema.yaml": OLD_STYLE}), None)
    assert again.applied == []


def test_a_table_made_again_counts_on_after_its_audited_ids(db_url: str, tmp_path: Path) -> None:
    """A retired table dropped and then declared again starts after the ids its old rows had."""
    from app.dbsync.sync import drop_retired
    text = OLD_STYLE
    without = OLD_STYLE.split("  supplier:\n")[0].replace("      supplier: {type: link, to: supplier}\n", "")
    sync_schema(db_url, load_schema_text({"schema.yaml": text}), None)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        from app.audit.log import ensure_audit_tables
        ensure_audit_tables(conn)
        conn.execute(sa.text("INSERT INTO supplier (name) VALUES ('一'), ('二'), ('三')"))
        append(conn, [Entry("create", "supplier", n, {"name": str(n)}) for n in (1, 2, 3)])
    sync_schema(db_url, load_schema_text({"schema.yaml": without}), None, include_review=True)
    drop_retired(db_url, load_schema_text({"schema.yaml": without}), None, tmp_path / "exports")

    sync_schema(db_url, load_schema_text({"schema.yaml": text}), None)

    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO supplier (name) VALUES ('新')"))
        assert conn.execute(sa.text("SELECT id FROM supplier")).scalar() == 4
    engine.dispose()


ITEMS = """
tables:
  supplier:
    title: name
    fields:
      name: {type: string, required: true}
  item:
    title: code
    fields:
      code: {type: string, required: true}
      supplier: {type: link, to: supplier, on_delete: set_null}
"""


def test_a_rebuilt_table_keeps_counting_after_its_deleted_ids(make_app: Any, tmp_path: Path) -> None:
    """Retiring a link rebuilds the SQLite table (copy, drop, rename): its counter goes with it."""
    schema = tmp_path / "s"
    schema.mkdir()
    (schema / "s.yaml").write_text(ITEMS, encoding="utf-8")
    api = Api(make_app(schema_dir=schema))
    ids = [api.post("/api/v1/item/", json={"code": f"I-{n}"}).json["id"] for n in range(3)]
    assert api.delete(f"/api/v1/item/{ids[-1]}").status_code == 200
    (schema / "s.yaml").write_text(ITEMS.replace("      supplier: {type: link, to: supplier, on_delete: set_null}\n",
                                                 ""), encoding="utf-8")

    new = Api(make_app(schema_dir=schema)).post("/api/v1/item/", json={"code": "I-new"}).json["id"]

    assert new > ids[-1]


def test_a_restored_backup_never_gives_a_deleted_records_id(app: Any, api: Api, tmp_path: Path) -> None:
    from app.backup.jobs import make_backup, restore_backup, scratch_database
    api.post("/api/v1/customer/", json={"name": "留下化工"})
    gone = api.post("/api/v1/customer/", json={"name": "被删化工"}).json["id"]
    assert api.delete(f"/api/v1/customer/{gone}").status_code == 200
    ring = app.extensions["crm"].keyring
    backup = tmp_path / "b.crmbackup"
    make_backup(app.config["CRM_DATABASE_URL"], ring, Path(app.config["CRM_SCHEMA_DIR"]),
                Path(app.config["UPLOAD_FOLDER"]), backup)
    with scratch_database(app.config["CRM_DATABASE_URL"]) as target:  # an empty database of the same kind
        restore_backup(target, ring, backup, tmp_path / "up", tmp_path / "schema-restored")

        engine = sa.create_engine(target)
        with engine.begin() as conn:
            conn.execute(sa.text("INSERT INTO customer (name) VALUES ('新来化工')"))
            assert conn.execute(sa.text("SELECT id FROM customer WHERE name = '新来化工'")).scalar() > gone
        engine.dispose()
