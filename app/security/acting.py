"""Work done for a user outside their request (the command line's --as, a background job) runs as if
in one of their requests, so that the one gate, the audit log and every rule see the same user."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, g


@contextmanager
def acting_as(app: Flask, user: Any, lang: str = "zh") -> Iterator[None]:
    """Run the block in a request context of `app` whose logged-in user is `user`."""
    with app.test_request_context("/", headers={"Accept-Language": lang}):
        g.user = user
        yield
