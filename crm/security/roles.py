"""Sync permissions and the built-in roles into Flask-AppBuilder's security tables, exactly, in one commit."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from crm.models import naming
from crm.spec.model import SchemaSpec

from .permissions import VERBS, permission_name

STAFF_ROLE = "staff"
DATA_MENU = "data"
# What every logged-in staff member needs besides the tables: the data menu and their own account.
STAFF_EXTRAS = (("menu_access", DATA_MENU), ("can_this_form_get", "ResetMyPasswordView"),
                ("can_this_form_post", "ResetMyPasswordView"), ("can_userinfo", "UserDBModelView"))


def menu_name_for(table_key: str) -> str:
    return f"menu:{table_key}"


def wanted_permissions(appbuilder: Any) -> set[tuple[str, str]]:
    """Return every (permission, view or menu) pair the registered screens, APIs and menus need."""
    pairs = set()
    for view in appbuilder.baseviews:
        for perm in view.base_permissions or ():
            pairs.add((perm, view.class_permission_name))
    for item in appbuilder.menu.get_list():
        pairs.add(("menu_access", item.name))
        pairs.update(("menu_access", child.name) for child in item.childs or ())
    return pairs


def sync_roles(appbuilder: Any, schema: SchemaSpec, attempts: int = 3) -> None:
    """Create missing permissions; give admin all of them and `staff` full use of every table.

    Processes starting together may add the same new permission at once; the one that loses the
    race (a unique violation) rolls back and syncs again, now seeing the other's rows.
    """
    for attempt in range(1, attempts + 1):
        try:
            sync_roles_once(appbuilder, schema)
            return
        except sa.exc.IntegrityError:
            appbuilder.session.rollback()
            if attempt == attempts:
                raise


def sync_roles_once(appbuilder: Any, schema: SchemaSpec) -> None:
    sm = appbuilder.sm
    session = appbuilder.session
    pvs = ensure_permission_views(appbuilder, wanted_permissions(appbuilder))
    admin = sm.find_role(sm.auth_role_admin)
    admin.permissions = sorted(pvs.values(), key=lambda pv: pv.id)
    staff = sm.find_role(STAFF_ROLE)
    if staff is None:
        staff = sm.role_model(name=STAFF_ROLE)
        session.add(staff)
    table_pairs = [(permission_name(verb), naming.permission_view_name_for(t.key))
                   for t in schema.tables for verb in VERBS]
    table_pairs += [("menu_access", menu_name_for(t.key)) for t in schema.tables]
    staff.permissions = [pvs[pair] for pair in [*table_pairs, *STAFF_EXTRAS] if pair in pvs]
    session.commit()


def ensure_permission_views(appbuilder: Any, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """Return every existing and newly added permission-on-view row, keyed by (permission, view)."""
    sm = appbuilder.sm
    session = appbuilder.session
    permissions = {p.name: p for p in session.query(sm.permission_model)}
    views = {v.name: v for v in session.query(sm.viewmenu_model)}
    existing = {(pv.permission.name, pv.view_menu.name): pv for pv in session.query(sm.permissionview_model)
                if pv.permission is not None and pv.view_menu is not None}
    for perm_name, view_name in sorted(pairs - set(existing)):
        if perm_name not in permissions:
            permissions[perm_name] = sm.permission_model(name=perm_name)
            session.add(permissions[perm_name])
        if view_name not in views:
            views[view_name] = sm.viewmenu_model(name=view_name)
            session.add(views[view_name])
        pv = sm.permissionview_model(permission=permissions[perm_name], view_menu=views[view_name])
        session.add(pv)
        existing[(perm_name, view_name)] = pv
    session.flush()
    return existing
