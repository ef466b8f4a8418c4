"""Register the generated screens and APIs with Flask-AppBuilder, and link parents to children."""
from __future__ import annotations

from typing import Any

from app.models.build import BuiltModels
from app.schema import naming
from app.security.roles import DATA_MENU, menu_name_for

from .apis import build_api_class
from .i18n import lazy_label, lazy_text
from .views import RecordView, build_view_class


def register_screens(appbuilder: Any, models: BuiltModels) -> dict[str, RecordView]:
    """Add one menu entry, screen and API per table; return the screen instances by table key."""
    schema = models.schema
    endpoints = {t.key: naming.view_class_name_for(t.key) for t in schema.tables}
    views: dict[str, RecordView] = {}
    for table in schema.tables:
        view = appbuilder.add_view(
            build_view_class(models, table, endpoints), menu_name_for(table.key), icon=table.icon,
            label=lazy_label(table.label), category=DATA_MENU, category_icon="fa-database",
            category_label=lazy_text("业务数据", "Data"))
        views[table.key] = view
        appbuilder.add_api(build_api_class(models, table))
    for table in schema.tables:
        views[table.key].child_links = [(views[child.key], link) for child, link in schema.children_of(table.key)]
    return views
