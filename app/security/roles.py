"""Sync permissions and the built-in roles into Flask-AppBuilder's security tables, exactly, in one commit."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.schema import naming
from app.schema.model import SchemaSpec
from app.schema.roles import VERBS

from .permissions import permission_name

DATA_MENU = "data"
BUILT_IN = ("admin", "public")
# What every logged-in user needs besides the tables: their own account.
ACCOUNT_EXTRAS = (("can_this_form_get", "ResetMyPasswordView"), ("can_this_form_post", "ResetMyPasswordView"),
                  ("can_userinfo", "UserDBModelView"), ("can_read", "Jobs"), ("can_read", "Tasks"),
                  ("can_read", "Share"))


# The audit log screen (app.web.audit): its permission and menu entry.
AUDIT_VIEW = "Audit"
AUDIT_MENU = "audit_log"
AUDIT_PAIRS = {("can_read", AUDIT_VIEW), ("menu_access", AUDIT_MENU)}
# The reports screen (app.web.reports): for every role with the `report` verb on some table; which
# reports it lists is the gate's business (app.reports.run.may_run).
REPORTS_VIEW = "Reports"
REPORTS_MENU = "report_menu"  # not "reports": MariaDB compares names without case, and the view is Reports
REPORTS_PAIRS = {("can_read", REPORTS_VIEW), ("menu_access", REPORTS_MENU)}
# The import batches screen (app.web.transfer): for every role with the `import` verb on some table.
IMPORTS_VIEW = "Imports"
IMPORTS_MENU = "import_menu"
IMPORTS_PAIRS = {("can_read", IMPORTS_VIEW), ("menu_access", IMPORTS_MENU)}
# Background jobs (app.web.transfer.JobsView): every user may follow their own.
JOBS_VIEW = "Jobs"
# My tasks (app.web.tasks.TasksView): every user sees and settles their own due reminders.
TASKS_VIEW = "Tasks"
# Sharing a record (app.web.sharing.ShareView): every user, of the records they read, with colleagues who read them.
SHARE_VIEW = "Share"


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


def table_pairs(table_key: str, verbs: tuple[str, ...] | list[str]) -> set[tuple[str, str]]:
    """Return the (permission, view) pairs of `verbs` on one table, with its menu entry for read."""
    pairs = {(permission_name(verb), naming.permission_view_name_for(table_key)) for verb in verbs}
    if "read" in verbs:
        pairs |= {("menu_access", menu_name_for(table_key)), ("menu_access", DATA_MENU)}
    return pairs


def role_pairs(schema: SchemaSpec, role_key: str) -> set[tuple[str, str]]:
    """Return every (permission, view) pair a YAML role grants, its extended roles' included."""
    pairs = set(ACCOUNT_EXTRAS)
    for table_key, grant in schema.grants_of(role_key).items():
        pairs |= table_pairs(table_key, grant.can)
    if schema.audits(role_key):
        pairs |= AUDIT_PAIRS
    if any("report" in grant.can for grant in schema.grants_of(role_key).values()):
        pairs |= REPORTS_PAIRS
    if any("import" in grant.can for grant in schema.grants_of(role_key).values()):
        pairs |= IMPORTS_PAIRS
    return pairs


def sync_roles(appbuilder: Any, schema: SchemaSpec, attempts: int = 3) -> None:
    """Make the security tables match the schema: admin has every right, each YAML role exactly its
    grants, roles no longer in the YAML none.

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
    rename_table_views(appbuilder, schema)
    admin_pairs = wanted_permissions(appbuilder)
    for table in schema.tables:
        admin_pairs |= table_pairs(table.key, VERBS)
    wanted = {key: role_pairs(schema, key) for key in schema.roles}
    pvs = ensure_permission_views(appbuilder, admin_pairs.union(*wanted.values()))
    sm.find_role(sm.auth_role_admin).permissions = sorted((pvs[p] for p in admin_pairs), key=lambda pv: pv.id)
    for key, pairs in wanted.items():
        role = sm.find_role(key)
        if role is None:
            role = sm.role_model(name=key)
            session.add(role)
        role.permissions = sorted((pvs[p] for p in pairs if p in pvs), key=lambda pv: pv.id)
    for role in session.query(sm.role_model):
        if role.name not in wanted and role.name not in BUILT_IN:
            role.permissions = []  # a role removed from the YAML keeps its users but no rights
    session.commit()


def rename_table_views(appbuilder: Any, schema: SchemaSpec) -> None:
    """Carry the permissions of a renamed table (renamed_from) over to its new key."""
    views = {v.name: v for v in appbuilder.session.query(appbuilder.sm.viewmenu_model)}
    for table in schema.tables:
        if not table.renamed_from:
            continue
        for name_for in (naming.permission_view_name_for, menu_name_for):
            old, new = name_for(table.renamed_from), name_for(table.key)
            if old in views and new not in views:
                views[old].name = new
    appbuilder.session.flush()


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
