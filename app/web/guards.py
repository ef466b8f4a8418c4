"""Malformed requests refused before any view reads them, each with a message naming the argument.

Flask-AppBuilder turns some arguments into numbers or data structures without checking them
(`int()` of a page argument, prison's parser for the API's `q`), so a typo or a crafted URL would
end in a server error. The checks here run first, for screens and API alike.
"""
from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import prison
from flask import Flask, current_app, request
from werkzeug.exceptions import MethodNotAllowed, NotFound, RequestEntityTooLarge

from app.fields.values import bad_character
from app.schema.model import Label

from .errors import Refused
from .records import record_id

PAGE_ARGUMENT = re.compile(r"(page|psize)_\w+")
MAX_RISON_LENGTH = 20_000  # prison parses recursively: bound what it is given


def refuse_bad_page_arguments() -> None:
    """Raise Refused for a screen's page_<View> / psize_<View> argument that is not a whole number."""
    for name, value in request.args.items():
        if PAGE_ARGUMENT.fullmatch(name) and not re.fullmatch(r"-?\d{1,9}", value):
            raise Refused(Label(f"参数“{name}”应为整数，现为“{value[:40]}”",
                                f"the argument '{name}' must be a whole number, not '{value[:40]}'"))


def refuse_bad_characters() -> None:
    """Raise Refused for a query argument holding characters no database stores or compares (NUL, ...)."""
    for name, value in request.args.items():
        problem = bad_character(value)
        if problem is not None:
            raise Refused(Label(f"参数“{name[:40]}”{problem.zh}", f"the argument '{name[:40]}' {problem.en}"))


def refuse_bad_rison() -> None:
    """Raise Refused when the API's `q` argument is neither rison nor JSON (prison itself fails on
    some inputs with RecursionError or TypeError instead of its ParserException)."""
    value = request.args.get("q")
    if not value:
        return
    problem = Label("参数 q 不是有效的 rison 或 JSON", "the argument q is not valid rison or JSON")
    if len(value) > MAX_RISON_LENGTH:
        raise Refused(problem)
    try:
        prison.loads(value)
        return
    except prison.decoder.ParserException:
        pass
    except Exception:  # noqa: BLE001 (prison's own bugs: RecursionError, TypeError, IndexError)
        raise Refused(problem) from None
    try:
        json.loads(urllib.parse.parse_qs(f"q={urllib.parse.quote(value)}")["q"][0])
    except (ValueError, KeyError, RecursionError):
        raise Refused(problem) from None


def methods_without_record(method: str | None = None) -> tuple[set[str], bool]:
    """Return (the methods this path takes at an endpoint that names no record, whether some route
    reads the path as a record id): `…/_info` takes GET as itself, and PUT or DELETE as record '_info'."""
    adapter = current_app.url_map.bind_to_environ(request.environ)
    plain, as_record = set(), False
    for candidate in ("GET", "POST", "PUT", "DELETE"):
        if candidate == method:
            continue
        try:
            _endpoint, args = adapter.match(method=candidate)
        except (NotFound, MethodNotAllowed):
            continue
        if "pk" in args:
            as_record = True
        else:
            plain.add(candidate)
    return plain, as_record


def refuse_non_record_paths() -> None:
    """Answer a path whose record id is no id: 405 when the path names another endpoint that takes
    other methods (PUT …/_info), else 404, rather than looking for a record called '_info'."""
    pk = (request.view_args or {}).get("pk")
    if pk is None:
        return
    if str(pk).isdigit():
        if record_id(pk) is None:  # beyond every id (FAB's own user and role screens included)
            raise NotFound()
        return
    plain, _ = methods_without_record(request.method)
    if plain:
        raise MethodNotAllowed(valid_methods=sorted(plain))
    raise NotFound()


def not_a_record(error: MethodNotAllowed) -> bool:
    """Return True when a 405 only means the path's record id is no id (GET …/customer/-5: only PUT
    and DELETE read it, as a record): that is a record that does not exist, 404."""
    plain, as_record = methods_without_record()
    return as_record and not plain


def guard_request() -> Any:
    """Run the checks that fit this request (a before_request hook)."""
    if request.endpoint is None or request.endpoint == "static":
        return None
    limit = request.max_content_length  # MAX_CONTENT_LENGTH, or a view's own (an import's upload)
    if limit and (request.content_length or 0) > limit:
        raise RequestEntityTooLarge()
    refuse_non_record_paths()
    refuse_bad_characters()
    if request.path.startswith("/api/"):
        refuse_bad_rison()
    else:
        refuse_bad_page_arguments()
    return None


def install_guards(app: Flask) -> None:
    app.before_request(guard_request)
