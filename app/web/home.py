"""The home page: one card per table with its record count, and template helpers."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Flask, current_app, url_for
from flask_appbuilder import IndexView

from app.schema import naming
from app.security.gate import current_user, row_condition

from .audit import zone_label
from .context import current_appbuilder
from .i18n import current_lang
from .records import user_display_name


class HomeView(IndexView):
    index_template = "crm/index.html"


def home_cards() -> list[dict[str, Any]]:
    """Return label, icon, count and URL of each table the current user may read."""
    state = current_app.extensions["crm"]
    sm = current_appbuilder().sm
    session = current_appbuilder().session
    cards = []
    for table in state.schema.tables:
        if not sm.has_access("can_read", naming.permission_view_name_for(table.key)):
            continue
        model = state.models.model(table.key)
        query = sa.select(sa.func.count()).select_from(model)
        condition = row_condition(state.models, table.key, current_user())
        count = session.execute(query if condition is None else query.where(condition)).scalar()
        cards.append({"label": table.label.text(current_lang()), "icon": table.icon, "count": count,
                      "url": url_for(f"{naming.view_class_name_for(table.key)}.list")})
    return cards


def search_placeholder(view: Any) -> str:
    """Return the keyword box hint, naming the fields it searches."""
    lang = current_lang()
    names = ("、" if lang == "zh" else ", ").join(view.table_spec.field(k.split(".")[0]).label.text(lang)
                                                   for k in view.keyword_fields())
    return f"搜索:{names}" if lang == "zh" else f"Search {names}"


def with_page(args: Any, page: int) -> str:
    """Return the query string of `args` with `page` replaced (for pagination links)."""
    from urllib.parse import urlencode
    return urlencode({**{k: v for k, v in args.items() if k != "page"}, "page": page})


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.globals["crm_home_cards"] = home_cards
    app.jinja_env.globals["crm_search_placeholder"] = search_placeholder
    app.jinja_env.globals["crm_lang"] = current_lang
    app.jinja_env.globals["crm_user_name"] = user_display_name
    app.jinja_env.globals["crm_time_zone"] = zone_label
    app.jinja_env.filters["crm_with_page"] = with_page
