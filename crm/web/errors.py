"""Error pages for people: a refused screen says so in the user's language, inside the panel."""
from __future__ import annotations

from typing import Any

from flask import Flask, current_app, render_template, request
from werkzeug.exceptions import BadRequest

from crm.security.crypto import DecryptFailed
from crm.spec.model import Label

from .i18n import current_lang


class Refused(BadRequest):
    """A request the user's field rules do not allow (400), with the reason in both languages."""

    def __init__(self, reason: Label):
        super().__init__(reason.en)
        self.reason = reason


def forbidden(error: Any) -> Any:
    """Answer 403: JSON for the API (Flask-AppBuilder's shape), a page for the screens."""
    if request.path.startswith("/api/"):
        return {"message": "Forbidden"}, 403
    zh = current_lang() == "zh"
    page = render_template(
        "crm/forbidden.html", base_template=current_app.appbuilder.base_template, appbuilder=current_app.appbuilder,
        title="没有权限" if zh else "Not allowed",
        message=("您的角色不能打开这个页面或执行这个操作；如需权限，请联系管理员。" if zh else
                 "Your role may not open this page or do this; ask an administrator if you need it."),
        back="返回首页" if zh else "Back to the home page")
    return page, 403


def refused(error: Refused) -> Any:
    """Answer 400 for a refused request: JSON for the API, a page naming the reason for the screens."""
    lang = current_lang()
    if request.path.startswith("/api/"):
        return {"message": error.reason.text(lang)}, 400
    zh = lang == "zh"
    page = render_template(
        "crm/forbidden.html", base_template=current_app.appbuilder.base_template, appbuilder=current_app.appbuilder,
        title="无法执行" if zh else "Not possible", message=error.reason.text(lang),
        back="返回首页" if zh else "Back to the home page")
    return page, 400


def undecryptable_message(error: DecryptFailed) -> str:
    """Return what a user is told about a value that does not decrypt: which one and why, never the value."""
    current_app.logger.error("encrypted value does not open: %s", error)
    zh = current_lang() == "zh"
    return (("加密数据无法解密：" if zh else "An encrypted value cannot be decrypted: ") + str(error)
            + ("。请管理员运行 crm keys check。" if zh else ". An administrator should run crm keys check."))


def undecryptable(error: DecryptFailed) -> Any:
    """Answer 500 when a stored encrypted value does not open."""
    zh = current_lang() == "zh"
    message = undecryptable_message(error)
    if request.path.startswith("/api/"):
        return {"message": message}, 500
    page = render_template(
        "crm/forbidden.html", base_template=current_app.appbuilder.base_template, appbuilder=current_app.appbuilder,
        title="无法解密" if zh else "Cannot decrypt", message=message, back="返回首页" if zh else "Back to the home page")
    return page, 500


def register_error_pages(app: Flask) -> None:
    app.register_error_handler(403, forbidden)
    app.register_error_handler(Refused, refused)
    app.register_error_handler(DecryptFailed, undecryptable)
