"""Protective headers on every answer: a Content-Security-Policy the panel's own pages satisfy (every
inline script carries the request's nonce), no caching of what a login shows, no server versions."""
from __future__ import annotations

import re
import threading
import urllib.request
from typing import Any

from conftest import Api, Browser

PAGES = ("/", "/t/customer/list/", "/t/customer/add", "/users/list/", "/users/add", "/roles/list/", "/audit/",
         "/resetmypassword/form", "/swagger/v1")


def test_every_inline_script_carries_the_nonce_of_its_policy(app: Any, browser: Browser) -> None:
    pk = Api(app).post("/api/v1/customer/", json={"name": "头部化工"}).json["id"]
    for url in (*PAGES, f"/t/customer/show/{pk}", f"/t/customer/edit/{pk}", "/login/"):
        page = (app.test_client() if url == "/login/" else browser).get(url)
        assert page.status_code == 200, url
        policy = page.headers["Content-Security-Policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy).group(1)
        assert ("script-src 'self' 'nonce-" in policy
                and "'unsafe-inline'" not in policy.split("script-src")[1].split(";")[0])
        scripts = re.findall(r"<script\b([^>]*)>", page.text)
        assert scripts, url
        for attributes in scripts:
            assert f'nonce="{nonce}"' in attributes, (url, attributes)
        assert not re.search(r"<[^>]+\son(click|load|error|change|submit|mouseover)\s*=", page.text, re.I), url
        assert "javascript:" not in page.text.lower(), url


def test_nothing_behind_a_login_is_cached(app: Any, browser: Browser, api: Api) -> None:
    assert browser.get("/t/customer/list/").headers["Cache-Control"] == "no-store"
    assert api.get("/api/v1/customer/").headers["Cache-Control"] == "no-store"
    assert "Expires" not in browser.get("/").headers
    static = browser.get("/static/crm/crm.css")
    assert static.status_code == 200 and static.headers.get("Cache-Control") != "no-store"
    static.close()


def test_the_development_server_does_not_name_its_versions(app: Any) -> None:
    from werkzeug.serving import make_server

    from app.web.transport import PanelRequestHandler
    httpd = make_server("127.0.0.1", 0, app, threaded=True, request_handler=PanelRequestHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{httpd.server_port}/login/") as answer:
            assert answer.headers["Server"] == "crm"
            assert answer.headers["X-Content-Type-Options"] == "nosniff"
    finally:
        httpd.shutdown()
        thread.join()
