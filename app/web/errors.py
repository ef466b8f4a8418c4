"""Error pages for people: a refused screen says so in the user's language, inside the panel."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, g, render_template, request
from flask_login import current_user
from sqlalchemy.orm import exc as orm_exc
from werkzeug.exceptions import BadRequest, HTTPException, MethodNotAllowed, NotFound

from app.crypto import DecryptFailed
from app.schema.model import Label

from .context import current_appbuilder
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
    if "user" not in g:  # refused before Flask-AppBuilder's own before-request ran (a 413 in CSRF's)
        g.user = current_user
    page = render_template(
        "crm/forbidden.html", base_template=current_appbuilder().base_template, appbuilder=current_appbuilder(),
        title=title.text(lang), message=message, back="返回首页" if lang == "zh" else "Back to the home page",
        previous=previous_page(), previous_text="返回上一页" if lang == "zh" else "Back", status=status)
    return page, status


def previous_page() -> str | None:
    """Return the page the user came from when it is one of the panel's own (never another site's)."""
    referrer = request.referrer or ""
    own = request.host_url
    if referrer.startswith(own) and referrer != request.url:
        return "/" + referrer.removeprefix(own).lstrip("/")
    return None


# What the API answers in Flask-AppBuilder's shape ({"message": ...}), in the caller's language.
API_MESSAGES: dict[int, Label] = {
    401: Label("未登录：请先通过 POST /api/v1/security/login 取得令牌，并以 Authorization: Bearer <令牌> 发送",
               "Not logged in: get a token from POST /api/v1/security/login and send it as "
               "Authorization: Bearer <token>"),
    403: Label("您的角色不能执行这个操作；如需权限，请联系管理员",
               "Your role may not do this; ask an administrator if you need it"),
    404: Label("找不到：没有这个地址或记录，或记录不在您可见的范围内",
               "Not found: there is no such address or record, or it is not among the records you may see"),
}


def api_message(status: int) -> str:
    """Return the API's message for an HTTP status in the caller's language."""
    return API_MESSAGES[status].text(current_lang())


def forbidden(error: Any) -> Any:
    """Answer 403 (in Flask-AppBuilder's JSON shape for the API)."""
    message = Label("您的角色不能打开这个页面或执行这个操作；如需权限，请联系管理员。",
                    "Your role may not open this page or do this; ask an administrator if you need it.")
    return answer(403, Label("没有权限", "Not allowed"), message.text(current_lang()), api_message=api_message(403))


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


# What Werkzeug's English one-line pages mean, said to the people using the panel.
HTTP_ERRORS: dict[int, tuple[Label, Label]] = {
    400: (Label("请求无效", "Bad request"),
          Label("请求的内容或参数无效。", "The request or one of its parameters is not valid.")),
    404: (Label("找不到页面或记录", "Not found"),
          Label("这个页面或记录不存在，或不在您可见的范围内。",
                "This page or record does not exist, or is not among the records you may see.")),
    405: (Label("不支持的操作", "Method not allowed"),
          Label("这个地址不支持此请求方式。", "This address does not accept this kind of request.")),
    413: (Label("内容太大", "Too large"),
          Label("上传或提交的内容超过了允许的大小。", "What was sent is larger than the panel accepts.")),
    429: (Label("请求太频繁", "Too many requests"),
          Label("请求太频繁，请稍后再试。", "Too many requests; please try again later.")),
    500: (Label("服务器出错", "Server error"),
          Label("服务器出错，未能完成这个请求；错误已记入日志，请稍后再试或联系管理员。",
                "The server failed to complete this request; the error is in the log. Try again later or ask an "
                "administrator.")),
}


def http_error_message(error: HTTPException) -> str:
    """Return an HTTP error's message in the request's language (Werkzeug's own text for others)."""
    if error.code == 413 and (request.endpoint or "").endswith(".import_rows"):
        limit = current_app.config["CRM_IMPORT_MAX_MB"]
        return Label(f"文件超过导入上限 {limit} MB（CRM_IMPORT_MAX_MB）；请分成几个文件导入",
                     f"the file is over the import limit of {limit} MB (CRM_IMPORT_MAX_MB); split it into "
                     "several files").text(current_lang())
    known = HTTP_ERRORS.get(error.code or 0)
    return known[1].text(current_lang()) if known else str(error.description)


def http_error(error: HTTPException) -> Any:
    """Answer an HTTP error (404, 405, 413, ...) inside the panel, in the user's language."""
    from .guards import not_a_record
    if isinstance(error, MethodNotAllowed) and not_a_record(error):
        error = NotFound()
    if request.path.startswith("/api/") and error.code in API_MESSAGES:
        return {"message": api_message(error.code)}, error.code  # FAB's shape, for every API path
    title = HTTP_ERRORS.get(error.code or 0, (Label(error.name, error.name), None))[0]
    response = answer(error.code or 500, title, http_error_message(error))
    if error.code == 405 and isinstance(response, tuple):
        allowed = error.get_headers()  # keep the Allow header Werkzeug worked out
        return response[0], response[1], [h for h in allowed if h[0] == "Allow"]
    return response


# Why a write can fail that is not the user's mistake, as the database says it, and what to answer.
WRITE_FAILURES: tuple[tuple[tuple[str, ...], int, Label], ...] = (
    (("database is locked", "lock wait timeout", "lock timeout", "could not obtain lock", "deadlock",
      "database table is locked"),
     503, Label("数据库忙，请稍后重试；未保存，您填写的内容仍在",
                "The database is busy; try again in a moment. Nothing was saved; what you typed is kept.")),
    (("disk is full", "database or disk is full", "no space left", "could not extend file", "' is full",
      "disk full"),
     507, Label("磁盘已满，未保存；请联系管理员清理磁盘空间",
                "The disk is full; nothing was saved. Ask an administrator to free disk space.")),
    (("readonly", "read-only", "read only"),
     503, Label("数据库只读，未保存；请联系管理员",
                "The database is read-only; nothing was saved. Ask an administrator.")),
)
UNKNOWN_FAILURE = Label("数据库拒绝了这次保存，未保存；请联系管理员（详情已记入日志）",
                        "The database refused this save; nothing was saved. Ask an administrator (the details are "
                        "in the log).")


# Two saves of one record at the same moment: the second found the version it read already raised.
SAVED_MEANWHILE = Label("此记录刚被他人修改，您的更改未保存；请重新打开记录，核对后再改",
                        "Someone else changed this record a moment ago; your changes were not saved. Open the "
                        "record again, check it and make your change again.")


READ_FAILURE = Label("数据库出错，未能读取；请联系管理员（详情已记入日志）",
                     "The database failed to answer; nothing was read. Ask an administrator (the details are in "
                     "the log).")


def write_failure(error: BaseException) -> tuple[int, str]:
    """Return (HTTP status, message in the user's language) for a write the database refused (a read
    that fails for another reason than a busy database is said as such)."""
    link: BaseException | None = error
    while link is not None:
        if isinstance(link, orm_exc.StaleDataError):
            return 409, SAVED_MEANWHILE.text(current_lang())
        link = link.__cause__ or link.__context__
    cause = error
    while cause.__cause__ is not None and not isinstance(cause, sa.exc.DBAPIError):
        cause = cause.__cause__  # Flask-AppBuilder wraps the database's error in its own
    text = " ".join(str(getattr(cause, "orig", cause)).lower().split())
    current_app.logger.error("a write failed: %s", text[:500])
    for words, status, message in WRITE_FAILURES:
        if any(word in text for word in words):
            return status, message.text(current_lang())
    if isinstance(cause, sa.exc.IntegrityError):
        return 409, Label("与其他记录冲突（重复的值，或引用的记录已不存在），未保存",
                          "It conflicts with other records (a duplicate value, or a record it refers to is gone); "
                          "nothing was saved.").text(current_lang())
    if request.method in ("GET", "HEAD"):
        return 500, READ_FAILURE.text(current_lang())
    return 500, UNKNOWN_FAILURE.text(current_lang())


def data_error_message() -> str:
    """Return what a user is told when the database refuses a value as the wrong kind or too large."""
    return ("请求中的某个值不能存入或用于比较（类型不符或超出范围），未执行。" if current_lang() == "zh" else
            "A value in the request cannot be stored or compared (wrong kind or out of range); nothing was done.")


def data_error(error: sa.exc.DataError) -> Any:
    """Answer 400 when the database refuses a value; the transaction is rolled back first."""
    current_app.logger.warning("database refused a value: %s", str(error).splitlines()[0])
    current_appbuilder().session.rollback()
    return answer(400, HTTP_ERRORS[400][0], data_error_message())


def csrf_error(error: Any) -> Any:
    """Answer 400 for a form sent without its page's token (an old page, or another site posting)."""
    message = Label("页面已过期或来源不明（缺少有效的安全令牌），未执行。请刷新页面后重试。",
                    "The page has expired or did not come from the panel (no valid security token); nothing "
                    "was done. Reload the page and try again.")
    return answer(400, HTTP_ERRORS[400][0], message.text(current_lang()))


def server_error(error: HTTPException) -> Any:
    """Answer 500 for a failure nobody foresaw (Flask has logged it): nothing half-done stays in the session."""
    try:
        current_appbuilder().session.rollback()
    except Exception:  # noqa: BLE001 - the answer must go out even when the database is what failed
        current_app.logger.exception("rollback after a server error failed")
    return http_error(error)


def register_error_pages(app: Flask) -> None:
    from flask_wtf.csrf import CSRFError
    for code in HTTP_ERRORS:
        app.register_error_handler(code, server_error if code == 500 else http_error)
    app.register_error_handler(CSRFError, csrf_error)
    app.register_error_handler(403, forbidden)
    app.register_error_handler(Refused, refused)
    app.register_error_handler(DecryptFailed, undecryptable)
    app.register_error_handler(sa.exc.DataError, data_error)
