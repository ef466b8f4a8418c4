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


def answer(status: int, title: Label, message: str, api_message: str | None = None) -> Any:
    """Return an error answer: JSON for the API, a page in the panel (in the user's language) for screens."""
    if request.path.startswith("/api/"):
        return {"message": api_message or message}, status
    lang = current_lang()
    page = render_template(
        "crm/forbidden.html", base_template=current_app.appbuilder.base_template, appbuilder=current_app.appbuilder,
        title=title.text(lang), message=message, back="返回首页" if lang == "zh" else "Back to the home page")
    return page, status


def forbidden(error: Any) -> Any:
    """Answer 403 (in Flask-AppBuilder's JSON shape for the API)."""
    message = Label("您的角色不能打开这个页面或执行这个操作；如需权限，请联系管理员。",
                    "Your role may not open this page or do this; ask an administrator if you need it.")
    return answer(403, Label("没有权限", "Not allowed"), message.text(current_lang()), api_message="Forbidden")


def refused(error: Refused) -> Any:
    """Answer 400 for a request the field rules refuse, naming the reason."""
    return answer(400, Label("无法执行", "Not possible"), error.reason.text(current_lang()))


def undecryptable_message(error: DecryptFailed) -> str:
    """Return what a user is told about a value that does not decrypt: which one and why, never the value."""
    current_app.logger.error("encrypted value does not open: %s", error)
    zh = current_lang() == "zh"
    return (("加密数据无法解密：" if zh else "An encrypted value cannot be decrypted: ") + str(error)
            + ("。请管理员运行 crm keys check。" if zh else ". An administrator should run crm keys check."))


def undecryptable(error: DecryptFailed) -> Any:
    """Answer 500 when a stored encrypted value does not open."""
    return answer(500, Label("无法解密", "Cannot decrypt"), undecryptable_message(error))


def register_error_pages(app: Flask) -> None:
    app.register_error_handler(403, forbidden)
    app.register_error_handler(Refused, refused)
    app.register_error_handler(DecryptFailed, undecryptable)
