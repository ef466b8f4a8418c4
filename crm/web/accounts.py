"""Flask-AppBuilder's user, role and group screens, showing values the way people read them.

The stock screens print raw Python values (True, None, [admin], microsecond timestamps) and leave
some column names untranslated; these subclasses only change how values are shown.
"""
from __future__ import annotations

import datetime
from typing import Any, Iterable

from flask import request
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import RoleModelView, UserDBModelView, UserGroupModelView
from flask_appbuilder.widgets import ListWidget, ShowWidget

from .i18n import current_lang, lazy_text

BLANK = "—"


def yes_no(value: Any) -> str:
    """Return 是/否 (Yes/No) for a boolean, in the request's language."""
    if value is None:
        return BLANK
    return ("是" if value else "否") if current_lang() == "zh" else ("Yes" if value else "No")


def names(items: Iterable[Any] | None) -> str:
    """Return the names of related records joined with commas, or a dash when there are none."""
    shown = [str(getattr(item, "name", item)) for item in items or ()]
    return ", ".join(shown) or BLANK


def moment(value: datetime.datetime | None) -> str:
    """Return a timestamp to the minute, or a dash."""
    return value.strftime("%Y-%m-%d %H:%M") if value else BLANK


def person(value: Any) -> str:
    """Return who created or changed a record, or a dash."""
    return str(value) if value else BLANK


USER_FORMATTERS = {
    "active": yes_no, "roles": names, "groups": names, "last_login": moment,
    "created_on": moment, "changed_on": moment, "created_by": person, "changed_by": person,
}


class CrmUserView(UserDBModelView):
    class_permission_name = "UserDBModelView"  # keep FAB's permission names
    formatters_columns = USER_FORMATTERS


def permissions(perms: list[Any] | None) -> Any:
    """Return a role's permission count on its list row, and every permission on its detail page."""
    if not perms:
        return BLANK
    if request.endpoint and request.endpoint.endswith(".list"):
        return lazy_text(f"{len(perms)} 项权限", f"{len(perms)} permissions")
    return "; ".join(sorted(str(p) for p in perms))


class CrmRoleView(RoleModelView):
    class_permission_name = "RoleModelView"
    # FAB's role widgets print the raw permission list; the standard ones apply our formatters.
    list_widget = ListWidget
    show_widget = ShowWidget
    label_columns = {**RoleModelView.label_columns, "user": lazy_text("用户", "Users"),
                     "groups": lazy_text("用户组", "Groups")}
    show_columns = ["name", "user", "permissions"]
    formatters_columns = {"permissions": permissions, "user": names}


class CrmGroupView(UserGroupModelView):
    class_permission_name = "UserGroupModelView"
    label_columns = {"name": lazy_text("名称", "Name"), "label": lazy_text("显示名", "Label"),
                     "description": lazy_text("说明", "Description"), "users": lazy_text("用户", "Users"),
                     "roles": lazy_text("角色", "Roles")}
    formatters_columns = {"roles": names, "users": names}


class CrmSecurityManager(SecurityManager):
    """FAB's security manager with the screens above."""

    userdbmodelview = CrmUserView
    rolemodelview = CrmRoleView
    groupmodelview = CrmGroupView
