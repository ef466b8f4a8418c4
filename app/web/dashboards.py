"""The home page's dashboards (reports/ `dashboards:`), and the list a widget opens: the widget's own
rows, filtered by the same conditions through the same gate (`?crm_widget=role.key&crm_group=...`)."""
from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import sqlalchemy as sa
from flask import current_app, request, url_for
from flask_appbuilder.models.filters import BaseFilter
from markupsafe import Markup

from app.fields.values import INT_MAX, INT_MIN, bad_character
from app.reports.charts import chart_svg
from app.reports.dashboard import dashboards_for, may_see, run_widget, widget_conditions
from app.reports.fonts import chinese_font
from app.reports.spec import WidgetSpec
from app.schema import naming

from .reports import request_reader

NO_GROUP = object()


def list_url(table_key: str, role: str, key: str, group: Any = NO_GROUP) -> str:
    """Return the URL of the list showing a widget's rows (or one group's)."""
    args = {"crm_widget": f"{role}.{key}"}
    if group is not NO_GROUP:
        args["crm_group"] = json.dumps(group, ensure_ascii=False)
    return url_for(f"{naming.view_class_name_for(table_key)}.list") + "?" + urlencode(args)


def home_widgets() -> list[dict[str, Any]]:
    """Return the widgets of the current user's dashboards, computed, with their SVG charts and links."""
    reader = request_reader()
    book = current_app.extensions["crm"].reports
    font = chinese_font(current_app.config.get("CRM_PDF_FONT"))
    shown = []
    for dashboard in dashboards_for(reader, book):
        for widget in dashboard.widgets:
            if not may_see(reader, widget):
                continue
            result = run_widget(reader, dashboard.role, widget)
            svg = Markup(chart_svg(result.chart, font, 420, 220)) if result.chart and result.groups else None
            shown.append({"result": result, "url": list_url(result.table, dashboard.role, widget.key), "svg": svg,
                          "groups": [(label, list_url(result.table, dashboard.role, widget.key, value))
                                     for label, value in result.groups]})
    return shown


def requested_widget(table_key: str) -> tuple[str, WidgetSpec] | None:
    """Return (role, widget) named by the request's crm_widget argument, when the user has it and it
    counts rows of `table_key`."""
    name = request.args.get("crm_widget")
    if not name:
        return None
    role, _, key = name.partition(".")
    reader = request_reader()
    dashboards = {d.role: d for d in dashboards_for(reader, current_app.extensions["crm"].reports)}
    if role not in dashboards or key not in [w.key for w in dashboards[role].widgets]:
        return None
    widget = dashboards[role].widget(key)
    return (role, widget) if widget.report.table == table_key and may_see(reader, widget) else None


class WidgetFilter(BaseFilter):
    """A base filter of every list: with ?crm_widget=..., only the rows that widget counts."""

    name = "dashboard widget"
    table_key: str

    def apply(self, query: Any, value: Any) -> Any:
        if "crm_widget" not in request.args or not (request.endpoint or "").endswith(".list"):
            return query  # a record's own page is not narrowed by the list it was opened from
        found = requested_widget(self.table_key)
        if found is None:
            return query.filter(sa.false())  # a widget the user does not have shows nothing
        grouped = "crm_group" in request.args
        group = group_value(request.args["crm_group"]) if grouped else None
        if group is INVALID:
            return query.filter(sa.false())
        return query.filter(*widget_conditions(request_reader(), found[1], group, grouped))


INVALID = object()


def group_value(text: str) -> Any:
    """Return the group a crm_group argument names (JSON: text, a whole number or null), INVALID for
    anything no group of a widget can be: objects, lists, numbers beyond the database's integers,
    text a database cannot store."""
    try:
        value = json.loads(text)
    except ValueError:
        return INVALID
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, int) and INT_MIN <= value <= INT_MAX):
        return value
    if isinstance(value, str) and len(value) <= 200 and bad_character(value) is None:
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (\ud800)
            return INVALID
        return value
    return INVALID


def widget_filter(table_key: str) -> list[Any]:
    """Return the base_filters entry that narrows a list to a widget's rows when asked to."""
    return [["id", type("WidgetRows", (WidgetFilter,), {"table_key": table_key}), None]]


def widget_notice(table_key: str) -> str:
    """Return the line a list opened from a widget shows above its rows: 来自首页：<label>."""
    found = requested_widget(table_key) if request.args.get("crm_widget") else None
    if found is None:
        return ""
    reader = request_reader()
    label = found[1].report.label.text(reader.lang)
    return f"来自首页：{label}" if reader.lang == "zh" else f"From the home page: {label}"


def register_dashboard_helpers(app: Any) -> None:
    app.jinja_env.globals["crm_home_widgets"] = home_widgets
    app.jinja_env.globals["crm_widget_notice"] = widget_notice
