"""The current language and labels that follow it (Chinese first, English second)."""
from __future__ import annotations

from typing import Any

from flask import has_request_context, request
from flask_babel import LazyString, get_locale

from app.schema.model import Label


def current_lang() -> str:
    """Return 'en' when the user chose English, else 'zh'.

    A screen follows the language chosen in the menu (kept in the session); an API call follows its
    ?_l_= argument, else its Accept-Language header, else Chinese.
    """
    if not has_request_context():
        return "zh"
    if request.path.startswith("/api/") and "_l_" not in request.args:
        return "en" if request.accept_languages.best_match(("zh", "en")) == "en" else "zh"
    locale = get_locale()
    return "en" if locale is not None and locale.language == "en" else "zh"


def lazy_label(label: Label | None, fallback: str = "") -> Any:
    """Return a string that renders `label` in the language of the request being served."""
    if label is None:
        return fallback
    return LazyString(lambda: label.text(current_lang()))


def lazy_text(zh: str, en: str) -> Any:
    """Return a two-language text rendered in the request's language."""
    return lazy_label(Label(zh, en))
