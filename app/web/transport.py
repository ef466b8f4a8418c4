"""HTTPS: behind a reverse proxy, trust its forwarded scheme and client address; over HTTPS, mark
cookies Secure and ask browsers to stay on HTTPS; on every answer, the usual protective headers, a
Content-Security-Policy that allows only the panel's own scripts (inline ones carry the request's
nonce, which Flask-AppBuilder's templates ask for as csp_nonce()) and no caching of what a login shows."""
from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, g, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.serving import WSGIRequestHandler

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"
# Styles stay 'unsafe-inline': option colours are style attributes, and Bootstrap's and Select2's
# scripts set styles; scripts, the dangerous part, run only from the panel or with the nonce.
CSP = ("default-src 'self'; script-src 'self' 'nonce-{nonce}'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
       "form-action 'self'; frame-ancestors 'self'")
STATIC_ENDPOINTS = ("static", "appbuilder.static")


def csp_nonce() -> str:
    """Return this request's script nonce (made on first use)."""
    if "crm_csp_nonce" not in g:
        g.crm_csp_nonce = secrets.token_urlsafe(18)
    return str(g.crm_csp_nonce)


class PanelRequestHandler(WSGIRequestHandler):
    """The development server's handler (crm run), without Werkzeug's and Python's versions in Server."""

    def version_string(self) -> str:
        return "crm"


def secure_transport(app: Flask) -> None:
    """Install the proxy settings (CRM_PROXY_COUNT) and the header and cookie rules on `app`."""
    proxies = int(app.config.get("CRM_PROXY_COUNT") or 0)
    if proxies:
        # The audit log's IP address and request.is_secure come from the proxy's X-Forwarded-* headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    app.after_request(protect_response)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.session_interface = SchemeAwareSessionInterface()


class SchemeAwareSessionInterface(SecureCookieSessionInterface):
    """The session cookie is Secure whenever the request came over HTTPS (it is saved after the
    after-request hooks run, so they cannot mark it)."""

    def get_cookie_secure(self, app: Flask) -> bool:
        return bool(request.is_secure or super().get_cookie_secure(app))


def protect_response(response: Any) -> Any:
    """Add the protective headers; over HTTPS also HSTS and the Secure flag on every cookie set."""
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Content-Security-Policy", CSP.format(nonce=csp_nonce()))
    if request.endpoint not in STATIC_ENDPOINTS:
        # What a logged-in page or API answer shows must not stay in a shared or back-button cache.
        response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Expires", None)
        response.headers.pop("Pragma", None)
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
        cookies = response.headers.getlist("Set-Cookie")
        if cookies:
            response.headers.remove("Set-Cookie")
            for cookie in cookies:
                response.headers.add("Set-Cookie", cookie if "; secure" in cookie.lower() else f"{cookie}; Secure")
    return response
