"""HTTPS: protective headers always, HSTS and Secure cookies over HTTPS, proxies trusted only when set."""
from __future__ import annotations

from typing import Any

import pytest

from conftest import csrf_token


def test_headers_and_cookies_follow_the_scheme(app: Any) -> None:
    client = app.test_client()
    plain = client.get("/login/")
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    assert plain.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "Strict-Transport-Security" not in plain.headers
    assert all("Secure" not in c for c in plain.headers.getlist("Set-Cookie"))
    secure = app.test_client().get("/login/", base_url="https://crm.example.com")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000"
    cookies = secure.headers.getlist("Set-Cookie")
    assert cookies and all("; Secure" in c for c in cookies)
    assert all("HttpOnly" in c and "SameSite=Lax" in c for c in cookies)


def test_a_proxy_is_trusted_only_when_configured(make_app: Any) -> None:
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    direct = make_app()
    assert "Strict-Transport-Security" not in direct.test_client().get("/login/", headers=forwarded).headers
    proxied = make_app(CRM_PROXY_COUNT="1")
    client = proxied.test_client()
    # what the proxy passes on: HTTPS from the client, so the session cookie is Secure from here on
    # (and, like a browser over HTTPS, it names the page a form came from: Flask-WTF checks it)
    site = {"headers": {**forwarded, "Referer": "https://crm.example.com/"}, "base_url": "https://crm.example.com"}
    page = client.get("/login/", **site)
    assert page.headers["Strict-Transport-Security"] == "max-age=31536000"
    # the audit log records the client's address the proxy passed on, not the proxy's
    client.post("/login/", data={"username": "admin", "password": "test-root-pass-2026",
                                 "csrf_token": csrf_token(page.text)}, **site)
    token = csrf_token(client.get("/t/customer/add", **site).text)
    client.post("/t/customer/add", data={"csrf_token": token, "name": "代理后的客户", "status": "prospect"}, **site)
    import sqlalchemy as sa

    from app.audit.log import AUDIT_TABLE
    with proxied.app_context(), proxied.extensions["crm"].db.engine.connect() as conn:
        ips = set(conn.execute(sa.select(AUDIT_TABLE.c.ip).where(AUDIT_TABLE.c.action == "create",
                                                                   AUDIT_TABLE.c.table_key == "customer")).scalars())
    assert ips == {"203.0.113.9"}


def test_a_wrong_proxy_count_is_named(make_app: Any) -> None:
    with pytest.raises(ValueError) as refused:
        make_app(CRM_PROXY_COUNT="two")
    assert str(refused.value) == "CRM_PROXY_COUNT must be a whole number, got 'two'"
