"""Login users: the first admin, and users added from the command line."""
from __future__ import annotations

import secrets
from typing import Any


class UserError(Exception):
    """A user could not be added; the message says why and what to do."""


def ensure_admin(appbuilder: Any, settings: dict[str, Any]) -> tuple[str, str] | None:
    """Create the first admin when there are no users; return (username, password) if one was made."""
    sm = appbuilder.sm
    if sm.count_users() > 0:
        return None
    username = settings["CRM_ADMIN_USERNAME"]
    password = settings.get("CRM_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    try:
        add_user(appbuilder, username, sm.auth_role_admin, password, first_name="管理员")
    except UserError:
        appbuilder.session.rollback()
        if sm.find_user(username=username) is not None:
            return None  # another process starting at the same moment created it
        raise
    return username, password


def add_user(appbuilder: Any, username: str, role_name: str, password: str, first_name: str = "",
             last_name: str = "", email: str = "") -> Any:
    """Create a login with one role; raise UserError naming the problem."""
    sm = appbuilder.sm
    role = sm.find_role(role_name)
    if role is None:
        known = ", ".join(sorted(r.name for r in sm.get_all_roles() if r.name != sm.auth_role_public))
        raise UserError(f"unknown role '{role_name}'; known roles: {known}")
    if sm.find_user(username=username) is not None:
        raise UserError(f"a user '{username}' already exists")
    if len(password) < 8:
        raise UserError("the password must have at least 8 characters")
    user = sm.add_user(username, first_name or username, last_name, email or f"{username}@localhost",
                       role, password)
    if not user:
        raise UserError(f"could not add user '{username}' (is the email address already in use?)")
    return user
