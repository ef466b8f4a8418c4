"""Threaded servers apply every write to the record it names, exactly once: 8 threads × 25 PUTs on
different records against Flask's threaded server (what `crm run` uses) and gunicorn's gthread
workers. One view object serves every thread; what Flask-AppBuilder keeps on it while it serves a
request (the record a schema loads into, the active filters) must be each request's own."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from conftest import ADMIN_PASSWORD, Api

PROJECT_DIR = Path(__file__).resolve().parent.parent
THREADS, WRITES = 8, 25


def call(base: str, method: str, path: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(base + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json",
                                              **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.loads(answer.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8", "replace")


def hammer(base: str, ids: list[int]) -> list[tuple[int, int, Any]]:
    """Each thread PUTs its own record WRITES times; return (record, status, answer) of every PUT."""
    status, body = call(base, "POST", "/api/v1/security/login",
                        body={"username": "admin", "password": ADMIN_PASSWORD, "provider": "db"})
    assert status == 200, body
    token = body["access_token"]
    results: list[tuple[int, int, Any]] = []
    lock = threading.Lock()

    def writer(pk: int, n: int) -> None:
        for i in range(WRITES):
            answer = call(base, "PUT", f"/api/v1/customer/{pk}", token,
                          {"name": f"线程{n}-第{i}次", "short_name": f"T{n}", "grade": "AB"[i % 2]})
            with lock:
                results.append((pk, *answer))

    threads = [threading.Thread(target=writer, args=(pk, n)) for n, pk in enumerate(ids)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def check_every_write_landed(app: Any, ids: list[int], results: list[tuple[int, int, Any]]) -> None:
    from app.audit.log import AUDIT_TABLE
    failed = [r for r in results if r[1] != 200]
    assert not failed, failed[:5]
    assert all(answer["result"]["short_name"] == f"T{ids.index(pk)}" for pk, _, answer in results)
    with app.app_context():
        session = app.appbuilder.session
        model = app.extensions["crm"].models.model("customer")
        stored = {row.id: row for row in session.execute(sa.select(model)).scalars()}
        creates = session.execute(sa.select(sa.func.count()).select_from(AUDIT_TABLE).where(
            AUDIT_TABLE.c.action == "create", AUDIT_TABLE.c.table_key == "customer")).scalar()
        updates = session.execute(sa.select(sa.func.count()).select_from(AUDIT_TABLE).where(
            AUDIT_TABLE.c.action == "update", AUDIT_TABLE.c.table_key == "customer")).scalar()
    assert sorted(stored) == sorted(ids), "a PUT created a record instead of updating one"
    for n, pk in enumerate(ids):
        assert stored[pk].name == f"线程{n}-第{WRITES - 1}次" and stored[pk].short_name == f"T{n}"
    assert creates == len(ids)
    assert updates == THREADS * WRITES


@pytest.fixture
def customers(make_app: Any) -> tuple[Any, list[int]]:
    app = make_app()
    api = Api(app)
    ids = [api.post("/api/v1/customer/", json={"name": f"客户{n}"}).json["id"] for n in range(THREADS)]
    return app, ids


def test_the_threaded_development_server_applies_each_put_to_its_record(customers: Any) -> None:
    from werkzeug.serving import make_server

    from app.web.transport import PanelRequestHandler
    app, ids = customers
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=PanelRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        results = hammer(f"http://127.0.0.1:{httpd.server_port}", ids)
    finally:
        httpd.shutdown()
        thread.join()
    check_every_write_landed(app, ids, results)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def gunicorn(customers: Any, db_url: str, tmp_path: Path) -> Iterator[str]:
    """Serve the test's database with gunicorn: 2 gthread workers of 8 threads each."""
    port = free_port()
    env = {**os.environ, "CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": str(PROJECT_DIR / "schema"),
           "CRM_INSTANCE_DIR": str(tmp_path / "instance"), "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations"),
           "CRM_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789", "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "--worker-class", "gthread", "--workers", "2",
                               "--threads", "8", "--bind", f"127.0.0.1:{port}", "app.wsgi:app"],
                              env=env, cwd=PROJECT_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            if server.poll() is not None:
                pytest.fail(f"gunicorn stopped: {server.stdout.read() if server.stdout else ''}")
            try:
                urllib.request.urlopen(base + "/login/", timeout=2).close()
                break
            except OSError:
                time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_gunicorn_gthread_workers_apply_each_put_to_its_record(customers: Any, gunicorn: str) -> None:
    app, ids = customers
    check_every_write_landed(app, ids, hammer(gunicorn, ids))
