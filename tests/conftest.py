"""Fixtures: one fresh app per test on a real database (SQLite, PostgreSQL or MariaDB).

CRM_TEST_DATABASE picks the database (sqlite by default). Each run creates its own database on the
server and drops it at the end. A server that cannot be reached skips the run, or fails it when
CRM_TEST_REQUIRE_ALL=1 (CI).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as email_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from werkzeug.security import generate_password_hash

from app.factory import create_app

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = PROJECT_DIR / "schema"
SERVERS = {
    "postgresql": "postgresql+psycopg2://postgres@127.0.0.1:5432/{db}",
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/{db}?charset=utf8mb4",
}
ADMIN_PASSWORD = "test-root-pass-2026"
# The panel hashes passwords with Flask-AppBuilder's default, scrypt: about 0.2 s per login or new
# account, by design. The apps of the tests hash with few rounds instead, as Django's test settings
# do (the suite logs in thousands of times); the commands and servers tests start keep scrypt.
FAST_HASH = "pbkdf2:sha256:1000"
FAST_HASH_SETTINGS = {"FAB_PASSWORD_HASH_METHOD": FAST_HASH,
                      "AUTH_DB_FAKE_PASSWORD_HASH_CHECK": generate_password_hash("no-such-user", FAST_HASH)}


def database_kind() -> str:
    kind = os.environ.get("CRM_TEST_DATABASE", "sqlite")
    if kind not in ("sqlite", *SERVERS):
        raise pytest.UsageError(f"CRM_TEST_DATABASE={kind!r}: use sqlite, postgresql or mariadb")
    return kind


def pytest_report_header(config: Any) -> str:
    return f"database: {database_kind()}"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """On a server database run only the tests that touch a database, except those marked sqlite_only
    (they test what only SQLite can be made to do, such as fill up); the rest ran on SQLite."""
    if database_kind() == "sqlite":
        return
    keep = [item for item in items if "db_url" in getattr(item, "fixturenames", ())
            and item.get_closest_marker("sqlite_only") is None]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Iterator[None]:
    """With CRM_TEST_REQUIRE_ALL=1 (CI) a skipped test is a failed one: nothing may go untested."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CRM_TEST_REQUIRE_ALL") == "1" and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.longrepr = f"skipped, and CRM_TEST_REQUIRE_ALL=1 makes that a failure: {reason}"


@pytest.fixture(scope="session")
def server_database() -> Iterator[str | None]:
    """Create this run's database on the chosen server; yield its URL (None for SQLite)."""
    kind = database_kind()
    if kind == "sqlite":
        yield None
        return
    name = f"crm_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin_url = SERVERS[kind].format(db="postgres" if kind == "postgresql" else "")
    try:
        engine = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE {name}" + (" CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                                                              if kind == "mariadb" else "")))
    except sa.exc.OperationalError as exc:
        message = f"{kind} server not reachable ({str(exc).splitlines()[0]}): its tests were skipped"
        if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
            pytest.fail(message + " — CRM_TEST_REQUIRE_ALL=1 makes this a failure", pytrace=False)
        pytest.skip(message)
    try:
        yield SERVERS[kind].format(db=name)
    finally:
        with engine.connect() as conn:
            if kind == "postgresql":
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}"))
        engine.dispose()


@pytest.fixture
def db_url(server_database: str | None, tmp_path: Path) -> Iterator[str]:
    """Yield an empty database for one test; everything in it is dropped afterwards."""
    if server_database is None:
        yield f"sqlite:///{tmp_path / 'crm.db'}"
        return
    yield server_database
    drop_all_tables(server_database)


def drop_all_tables(url: str) -> None:
    """Empty a server database, whatever foreign keys (even cyclic ones) its tables have."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            conn.execute(sa.text("CREATE SCHEMA public"))
        else:
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=0"))
            for name in sa.inspect(conn).get_table_names():
                conn.execute(sa.text(f"DROP TABLE `{name}`"))
            conn.execute(sa.text("SET FOREIGN_KEY_CHECKS=1"))
    engine.dispose()


@pytest.fixture
def schema_dir(tmp_path: Path) -> Path:
    """A copy of the default schema that a test may edit."""
    target = tmp_path / "schema"
    shutil.copytree(DEFAULT_SCHEMA, target)
    return target


@pytest.fixture
def make_app(db_url: str, tmp_path: Path) -> Any:
    """Return a factory: make_app(schema_dir=..., **config) builds a fresh app on this test's database."""
    apps: list[Any] = []

    def factory(schema_dir: Path | str = DEFAULT_SCHEMA, **config: Any) -> Any:
        settings = {
            "CRM_DATABASE_URL": db_url,
            "CRM_SCHEMA_DIR": str(schema_dir),
            "CRM_INSTANCE_DIR": str(tmp_path / "instance"),
            "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations"),
            "CRM_SECRET_KEY": "test-secret-key-that-is-long-enough-0123456789",
            "TESTING": True,
            **FAST_HASH_SETTINGS,
            **config,
        }
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        with app.app_context():
            app.extensions["crm"].db.session.remove()
            app.extensions["crm"].db.engine.dispose()


@pytest.fixture
def app(make_app: Any) -> Any:
    """A fresh app with the default schema and no records."""
    return make_app()


def csrf_token(html: str) -> str:
    match = re.search(r'<input[^>]*name="csrf_token"[^>]*value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


class Browser:
    """A logged-in test client that fills in CSRF tokens like a browser would."""

    def __init__(self, app: Any, username: str = "admin", password: str = ADMIN_PASSWORD):
        self.app = app
        self.client = app.test_client()
        page = self.client.get("/login/")
        response = self.client.post("/login/", data={"username": username, "password": password,
                                                     "csrf_token": csrf_token(page.text)})
        assert response.status_code == 302, f"login as {username} failed"

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def submit(self, form_url: str, data: dict[str, Any], post_url: str | None = None, **kwargs: Any) -> Any:
        """Open the form page, then post `data` with its CSRF token; return the response to the post."""
        page = self.client.get(form_url)
        assert page.status_code == 200, page.status_code
        payload = {"csrf_token": csrf_token(page.text), **data}
        return self.client.post(post_url or form_url, data=payload, **kwargs)


@pytest.fixture
def browser(app: Any) -> Browser:
    return Browser(app)


class Api:
    """A REST client logged in through /api/v1/security/login with a JWT."""

    def __init__(self, app: Any, username: str = "admin", password: str = ADMIN_PASSWORD):
        self.client = app.test_client()
        response = self.client.post("/api/v1/security/login", json={
            "username": username, "password": password, "provider": "db", "refresh": False})
        assert response.status_code == 200, response.text
        self.headers = {"Authorization": f"Bearer {response.json['access_token']}"}

    def __getattr__(self, method: str) -> Any:
        call = getattr(self.client, method)
        return lambda url, headers=None, **kw: call(url, headers={**self.headers, **(headers or {})}, **kw)


@pytest.fixture
def api(app: Any) -> Api:
    return Api(app)


# -- the browser ---------------------------------------------------------------------------------

CHROMIUM = os.environ.get("CRM_TEST_CHROMIUM", "/usr/bin/chromium")


def skip_or_fail(message: str) -> None:
    if os.environ.get("CRM_TEST_REQUIRE_ALL") == "1":
        pytest.fail(message + " — CRM_TEST_REQUIRE_ALL=1 makes this a failure", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Yield a headless Chromium driven by Playwright."""
    if not os.access(CHROMIUM, os.X_OK):
        skip_or_fail(f"no Chromium at {CHROMIUM} (run scripts/install-browser.sh): browser tests skipped")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (make install): browser tests skipped")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


# -- background jobs ---------------------------------------------------------------------------

PROJECT = Path(__file__).resolve().parent.parent


def worker_env(app: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    for key in ("CRM_DATABASE_URL", "CRM_SCHEMA_DIR", "CRM_INSTANCE_DIR", "CRM_MIGRATIONS_DIR", "CRM_SECRET_KEY",
                "CRM_JOBS_URL"):
        env[key] = str(app.config[key])
    env["CRM_ADMIN_PASSWORD"] = ADMIN_PASSWORD
    env["PYTHONPATH"] = str(PROJECT)
    return env


def start_worker(app: Any, log: Path, **settings: str) -> subprocess.Popen[bytes]:
    """Start `crm worker` on the app's database and queue (with more CRM_* `settings`)."""
    with log.open("ab") as out:  # the worker keeps its own copy of the file
        return subprocess.Popen([sys.executable, "-m", "app.cli", "worker"], env={**worker_env(app), **settings},
                                cwd=PROJECT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


# -- local servers that capture what the panel sends -----------------------------------------------

class Mailbox:
    """An SMTP server on loopback (aiosmtpd) keeping every message it receives."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller
        self.messages: list[Any] = []
        port = free_port()

        class Handler:
            async def handle_DATA(inner, server: Any, session: Any, envelope: Any) -> str:  # noqa: N805
                self.messages.append(message_from_bytes(envelope.content, policy=email_policy))
                return "250 OK"
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.port = port

    def to(self, address: str) -> list[Any]:
        return [m for m in self.messages if m["To"] == address]

    def close(self) -> None:
        self.controller.stop()


class Receiver:
    """An HTTP server on loopback standing in for 企业微信 and 钉钉 robots: keeps each post, answers
    errcode 0 (or, while `failing`, an error)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.failing = False
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.posts.append((self.path, body))
                answer = {"errcode": 310000, "errmsg": "keywords not in content"} if outer.failing else {"errcode": 0}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def mailbox() -> Any:
    box = Mailbox()
    yield box
    box.close()


@pytest.fixture
def receiver() -> Any:
    server = Receiver()
    yield server
    server.close()
