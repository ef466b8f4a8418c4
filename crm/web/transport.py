"""HTTPS: behind a reverse proxy, trust its forwarded scheme and client address; over HTTPS, mark
cookies Secure and ask browsers to stay on HTTPS; on every answer, the usual protective headers."""
from __future__ import annotations

from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
}
HSTS = "max-age=31536000"


def secure_transport(app: Flask) -> None:
    """Install the proxy settings (CRM_PROXY_COUNT) and the header and cookie rules on `app`."""
    proxies = int(app.config.get("CRM_PROXY_COUNT") or 0)
    if proxies:
        # The audit log's IP address and request.is_secure come from the proxy's X-Forwarded-* headers.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)  # type: ignore[method-assign]
    app.after_request(protect_response)
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
    if request.is_secure:
        response.headers.setdefault("Strict-Transport-Security", HSTS)
        cookies = response.headers.getlist("Set-Cookie")
        if cookies:
            response.headers.remove("Set-Cookie")
            for cookie in cookies:
                response.headers.add("Set-Cookie", cookie if "; secure" in cookie.lower() else f"{cookie}; Secure")
    return response
