"""The Flask-AppBuilder instance of the app handling the request, typed for the code that uses it."""
from __future__ import annotations

from typing import Any

from flask import current_app


def current_appbuilder() -> Any:
    """Return the current app's AppBuilder (Flask-AppBuilder registers itself as an extension; it is
    untyped, hence Any)."""
    return current_app.extensions["appbuilder"]
