"""Login users: the first admin, and users added from the command line."""
from __future__ import annotations

import secrets
from typing import Any

from .passwords import DEFAULT_MIN_LENGTH, password_problems


def display_name(user: Any, lang: str) -> str:
    """Return a user's full name as `lang` writes it — 张伟 (family name first, no space) in Chinese,
    Wei Zhang in English — or the login name when the account has no name."""
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    if lang == "en" and first and last and (first + last).isascii():
        return f"{first} {last}"
    return f"{last}{first}" or user.username


class UserError(Exception):
    """A user could not be added; the message says why and what to do."""


def ensure_admin(appbuilder: Any, settings: dict[str, Any]) -> tuple[str, str] | None:
    """Create the first admin when there are no users; return (username, password) if one was made."""
    sm = appbuilder.sm
    if sm.count_users() > 0:
        return None
    username = settings["CRM_ADMIN_USERNAME"]
    password = settings.get("CRM_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    if settings.get("CRM_ADMIN_PASSWORD"):
        try:
            check_password(appbuilder, username, password)
        except UserError as exc:
            raise UserError(f"CRM_ADMIN_PASSWORD is not accepted for the first admin: {exc}") from None
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
    check_password(appbuilder, username, password)
    user = sm.add_user(username, first_name or username, last_name, email or f"{username}@localhost",
                       role, password)
    if not user:
        raise UserError(f"could not add user '{username}' (is the email address already in use?)")
    return user


def check_password(appbuilder: Any, username: str, password: str) -> None:
    """Raise UserError with every way `password` breaks the policy for the account `username`."""
    from flask import current_app
    minimum = int(current_app.config.get("CRM_PASSWORD_MIN_LENGTH") or DEFAULT_MIN_LENGTH)
    problems = password_problems(password, username, minimum)
    if problems:
        raise UserError("; ".join(p.en for p in problems))
