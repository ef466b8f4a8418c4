"""Colour rules on the screens: the painted rows and cells of a list page, the colours that hold for
a record on its page, and the legend that says what each colour means (app.models.colours works
them out; only rules over fields the user sees are used)."""
from __future__ import annotations

from typing import Any

from flask import current_app

from app.models.colours import Painted, colours_of, legend, tint, visible_colours
from app.schema.model import ColourSpec, TableSpec
from app.security.gate import current_user, field_access

from .context import current_appbuilder


def user_colours(table: TableSpec) -> list[ColourSpec]:
    """Return the colour rules of `table` the current user may be shown."""
    state = current_app.extensions["crm"]
    user = current_user()
    return visible_colours(state.schema, table, lambda t, k: field_access(state.schema, t, user).shows(k))


def painted(table: TableSpec, ids: Any) -> dict[int, Painted]:
    """Return the colours of the records `ids` as the current user is shown them."""
    from app.automation.digest import today_in
    colours = user_colours(table)
    if not colours:
        return {}
    return colours_of(current_appbuilder().session, current_app.extensions["crm"].models, table, colours,
                      [pk for pk in ids if isinstance(pk, int)], today_in(current_app).date())


def record_colours(table: TableSpec, pk: Any) -> list[ColourSpec]:
    """Return the colour rules that hold for one record (for its page)."""
    try:
        found = painted(table, [int(pk)]).get(int(pk))
    except (TypeError, ValueError):
        return []
    return found.all() if found else []


def colour_legend(table: TableSpec) -> list[ColourSpec]:
    return legend(user_colours(table))


def register_colours(app: Any) -> None:
    app.jinja_env.globals["crm_tint"] = tint
    app.jinja_env.globals["crm_colour_legend"] = colour_legend
    app.jinja_env.globals["crm_record_colours"] = record_colours
