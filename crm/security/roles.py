"""Sync the built-in roles into Flask-AppBuilder's security tables (exact grants)."""
from __future__ import annotations

from typing import Any

from crm.models import naming
from crm.spec.model import SchemaSpec

from .permissions import VERBS, permission_name

STAFF_ROLE = "staff"


def sync_roles(appbuilder: Any, schema: SchemaSpec) -> None:
    """Create FAB's own permissions, give the admin role everything and `staff` full use of every table."""
    sm = appbuilder.sm
    appbuilder.add_permissions(update_perms=True)
    admin = sm.find_role(sm.auth_role_admin)
    staff = sm.find_role(STAFF_ROLE) or sm.add_role(STAFF_ROLE)
    wanted = []
    for table in schema.tables:
        view = naming.permission_view_name_for(table.key)
        for verb in VERBS:
            pv = sm.add_permission_view_menu(permission_name(verb), view)
            wanted.append(pv)
            if pv not in admin.permissions:
                sm.add_permission_role(admin, pv)
        menu = sm.add_permission_view_menu("menu_access", menu_name_for(table.key))
        wanted.append(menu)
        if menu not in admin.permissions:
            sm.add_permission_role(admin, menu)
    for extra in (("menu_access", DATA_MENU), ("can_this_form_get", "ResetMyPasswordView"),
                  ("can_this_form_post", "ResetMyPasswordView"), ("can_userinfo", "UserDBModelView")):
        pv = sm.find_permission_view_menu(*extra)
        if pv is not None:
            wanted.append(pv)
    staff.permissions = wanted
    appbuilder.session.commit()


DATA_MENU = "data"


def menu_name_for(table_key: str) -> str:
    return f"menu:{table_key}"
