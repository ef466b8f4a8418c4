"""A save the database refuses — it is locked, read-only or full — is an error the user sees: the form
comes back with what was typed and a message in their language, the API answers 503 or 507, nothing
is half-written and no raw SQL is shown."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import app.dbsync as dbsync_package
from conftest import Api, Browser

BUSY = "数据库忙，请稍后重试；未保存，您填写的内容仍在"
READ_ONLY = "数据库只读，未保存；请联系管理员"
FULL = "磁盘已满，未保存；请联系管理员清理磁盘空间"


@contextlib.contextmanager
def every_connection(app: Any, setup: Callable[[Any], None]) -> Iterator[None]:
    """Run `setup(dbapi connection)` on every connection the app opens meanwhile."""
    with app.app_context():
        engine = app.extensions["crm"].db.engine
        app.extensions["crm"].db.session.remove()

        def on_connect(dbapi_connection: Any, record: Any) -> None:
            setup(dbapi_connection)
        sa.event.listen(engine, "connect", on_connect)
        engine.dispose()
    try:
        yield
    finally:
        with app.app_context():
            app.extensions["crm"].db.session.remove()
            sa.event.remove(engine, "connect", on_connect)
            engine.dispose()


def execute(*statements: str) -> Callable[[Any], None]:
    def setup(dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        for statement in statements:
            cursor.execute(statement)
        cursor.close()
        if hasattr(dbapi_connection, "commit"):
            dbapi_connection.commit()
    return setup


READ_ONLY_SQL = {"sqlite": ("PRAGMA query_only = ON",),
                 "postgresql": ("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",),
                 "mysql": ("SET SESSION TRANSACTION READ ONLY",)}


def stored_name(app: Any, pk: int) -> str:
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        return app.appbuilder.session.execute(sa.select(model.name).where(model.id == pk)).scalar()


def count(app: Any) -> int:
    with app.app_context():
        model = app.extensions["crm"].models.model("customer")
        return app.appbuilder.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()


def dialect(app: Any) -> str:
    with app.app_context():
        return app.extensions["crm"].db.engine.dialect.name


def test_a_read_only_database_refuses_saves_in_words(app: Any) -> None:
    api, browser = Api(app), Browser(app)
    pk = api.post("/api/v1/customer/", json={"name": "只读化工"}).json["id"]
    form = f"/t/customer/edit/{pk}"
    page = browser.get(form)
    with every_connection(app, execute(*READ_ONLY_SQL[dialect(app)])):
        saved = browser.submit(form, {"name": "改名化工", "status": "active", "grade": "A"})
        assert saved.status_code == 200
        assert READ_ONLY in saved.text and 'value="改名化工"' in saved.text
        assert "SQL" not in saved.text and "记录已更新" not in saved.text
        added = browser.submit("/t/customer/add", {"name": "新客户甲", "status": "active", "grade": "A"})
        assert added.status_code == 200 and READ_ONLY in added.text and 'value="新客户甲"' in added.text
        put = api.put(f"/api/v1/customer/{pk}", json={"name": "接口改名"})
        assert put.status_code == 503 and put.json == {"message": READ_ONLY}
        post = api.post("/api/v1/customer/", json={"name": "接口新增"})
        assert post.status_code == 503 and post.json == {"message": READ_ONLY}
        gone = api.delete(f"/api/v1/customer/{pk}")
        assert gone.status_code == 503 and gone.json == {"message": READ_ONLY}
        assert browser.get("/t/customer/list/").status_code == 200  # reading still works
    assert page.status_code == 200
    assert stored_name(app, pk) == "只读化工" and count(app) == 1
    assert api.put(f"/api/v1/customer/{pk}", json={"name": "恢复后改名"}).status_code == 200


@contextlib.contextmanager
def row_held(app: Any, pk: int, monkeypatch: Any) -> Iterator[Callable[[Any], None]]:
    """Hold the customer's row (SQLite: the whole database) locked from another connection meanwhile;
    yield the connection setup that makes this app's writes give up waiting quickly."""
    kind = dialect(app)
    with app.app_context():
        url = app.extensions["crm"].db.engine.url
    engine = sa.create_engine(url)
    holder = engine.connect()
    if kind == "sqlite":
        monkeypatch.setattr(dbsync_package, "SQLITE_BUSY_MS", 300)
        holder.connection.driver_connection.isolation_level = None
        holder.exec_driver_sql("BEGIN IMMEDIATE")
        setup = execute()
    else:
        holder.execute(sa.text("SELECT id FROM customer WHERE id = :i FOR UPDATE"), {"i": pk})
        setup = execute("SET lock_timeout = '300ms'" if kind == "postgresql" else "SET innodb_lock_wait_timeout = 1")
    try:
        yield setup
    finally:
        if kind == "sqlite":
            holder.exec_driver_sql("ROLLBACK")
        else:
            holder.rollback()
        holder.close()
        engine.dispose()


def test_a_locked_record_is_busy_not_lost(app: Any, monkeypatch: Any) -> None:
    api, browser = Api(app), Browser(app)
    pk = api.post("/api/v1/customer/", json={"name": "锁定化工"}).json["id"]
    form = f"/t/customer/edit/{pk}"
    browser.get(form)
    with row_held(app, pk, monkeypatch) as setup, every_connection(app, setup):
        saved = browser.submit(form, {"name": "忙时改名", "status": "active", "grade": "B"})
        assert saved.status_code == 200 and BUSY in saved.text and 'value="忙时改名"' in saved.text
        put = api.put(f"/api/v1/customer/{pk}", json={"name": "接口忙时"})
        assert put.status_code == 503 and put.json == {"message": BUSY}
    assert stored_name(app, pk) == "锁定化工"


@pytest.mark.sqlite_only
def test_a_full_disk_is_said_and_nothing_is_half_written(app: Any) -> None:
    """A full disk is simulated with SQLite's max_page_count; the servers' own messages (PostgreSQL's
    "could not extend file … No space left on device", MariaDB's "The table … is full") are matched
    by the same words in app.web.errors."""
    api, browser = Api(app), Browser(app)
    with app.app_context():
        pages = app.extensions["crm"].db.session.execute(sa.text("PRAGMA page_count")).scalar()
    long_notes = "很长的备注" * 4000
    with every_connection(app, execute(f"PRAGMA max_page_count = {pages}")):
        added = browser.submit("/t/customer/add", {"name": "满盘化工", "status": "active", "grade": "A",
                                                  "notes": long_notes})
        assert added.status_code == 200 and FULL in added.text and 'value="满盘化工"' in added.text
        post = api.post("/api/v1/customer/", json={"name": "接口满盘", "notes": long_notes})
        assert post.status_code == 507 and post.json == {"message": FULL}
    assert count(app) == 0
