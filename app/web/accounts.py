"""Flask-AppBuilder's login, account and user screens, made safe and readable.

The stock screens print raw Python values (True, None, [admin], microsecond timestamps); these
subclasses show them the way people read them. The login screens and the API login go through the
login guard (app.web.logins); logout is a POST; every new password passes the policy
(app.security.passwords), and changing one's own asks for the current one.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable
from typing import Any

from flask import abort, current_app, flash, g, has_request_context, redirect, request, url_for
from flask_appbuilder import expose
from flask_appbuilder.actions import action
from flask_appbuilder.api import safe
from flask_appbuilder.fieldwidgets import BS3PasswordFieldWidget
from flask_appbuilder.forms import DynamicForm
from flask_appbuilder.security.api import SecurityApi
from flask_appbuilder.security.decorators import has_access, no_cache
from flask_appbuilder.security.forms import LoginForm_db
from flask_appbuilder.security.schemas import LoginPost
from flask_appbuilder.security.sqla.manager import SecurityManager
from flask_appbuilder.security.views import (
    AuthDBView,
    ResetMyPasswordView,
    ResetPasswordView,
    RoleModelView,
    UserDBModelView,
    UserGroupModelView,
)
from flask_appbuilder.utils.base import get_safe_redirect
from flask_appbuilder.widgets import ListWidget, ShowWidget
from flask_babel import LazyString
from flask_jwt_extended import create_access_token, create_refresh_token
from flask_login import login_user, logout_user
from markupsafe import Markup
from marshmallow import ValidationError
from werkzeug.security import check_password_hash
from wtforms import PasswordField
from wtforms.validators import DataRequired, EqualTo, StopValidation

from app.schema.model import Label
from app.security.passwords import DEFAULT_MIN_LENGTH, password_problems
from app.security.permissions import SCREEN_LABELS, verb_label, verb_order

from .context import current_appbuilder
from .errors import api_message
from .i18n import current_lang, lazy_text
from .logins import (
    account_key,
    audit_login,
    end_user_sessions,
    guarded_login,
    lockout_message,
    login_guard,
    session_is_current,
    token_claims,
    token_revoked,
    unlock_message,
)
from .openapi import RESPONSES, correct_login, use_responses

BLANK = "—"
TOKEN_INVALID = Label("令牌无效，请重新登录：", "The token is not valid; log in again: ")
TOKEN_EXPIRED = Label("令牌已过期，请用 refresh 令牌换新，或重新登录",
                      "The token has expired; get a new one with the refresh token, or log in again")


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


USER_FORMATTERS: dict[str, Callable[[Any], str]] = {
    "active": yes_no, "roles": lambda roles: role_names(roles), "groups": names, "last_login": moment,
    "created_on": moment, "changed_on": moment, "created_by": person, "changed_by": person,
}


LOGIN_ENDED = Label("登录已失效，请重新登录", "this login has ended; log in again")

def min_password_length() -> int:
    return int(current_app.config.get("CRM_PASSWORD_MIN_LENGTH") or DEFAULT_MIN_LENGTH)


def policy_hint() -> str:
    """Return the policy in a sentence, in the request's language."""
    n = min_password_length()
    return (f"至少 {n} 个字符，不能是常见密码，不能包含用户名" if current_lang() == "zh" else
            f"at least {n} characters, not a common password, not containing the user name")


class PasswordPolicy:
    """WTForms validator: the password passes the policy for the account it is set on.

    `username_of(form)` names that account: the form's own user name field on the add-user form, the
    logged-in user on their own change form, the user being reset on an admin's reset form.
    """

    def __init__(self, username_of: Any):
        self.username_of = username_of

    def __call__(self, form: Any, field: Any) -> None:
        problems = password_problems(field.data or "", self.username_of(form), min_password_length())
        if problems:
            raise StopValidation("; ".join(p.text(current_lang()) for p in problems))


def new_password_fields(username_of: Any) -> dict[str, Any]:
    """Return the password and confirmation fields of a form that sets a password."""
    return {
        "password": PasswordField(lazy_text("新密码", "New password"), description=LazyString(policy_hint),
                                  validators=[DataRequired(), PasswordPolicy(username_of)],
                                  widget=BS3PasswordFieldWidget()),
        "conf_password": PasswordField(lazy_text("确认新密码", "Confirm the new password"),
                                       validators=[DataRequired(), EqualTo("password", message=lazy_text(
                                           "两次输入的密码不一致", "the passwords do not match"))],
                                       widget=BS3PasswordFieldWidget()),
    }


class CurrentPassword:
    """WTForms validator: the logged-in user's current password. Wrong guesses count like failed logins."""

    def __call__(self, form: Any, field: Any) -> None:
        user = g.user
        account = account_key(user.username)
        lockout = login_guard().lockout(account, request.remote_addr)
        if lockout is not None:
            raise StopValidation(lockout.text(current_lang()))
        if not check_password_hash(user.password or "", field.data or ""):
            login_guard().failed(account, request.remote_addr)
            audit_login("login_failed", user.username, user, during="password change")
            raise StopValidation("当前密码不正确" if current_lang() == "zh" else "the current password is wrong")


ChangeMyPasswordForm = type("ChangeMyPasswordForm", (DynamicForm,), {
    "current_password": PasswordField(lazy_text("当前密码", "Current password"),
                                      validators=[DataRequired(), CurrentPassword()], widget=BS3PasswordFieldWidget()),
    **new_password_fields(lambda form: g.user.username)})
ResetPasswordForm = type("ResetPasswordForm", (DynamicForm,), new_password_fields(lambda form: reset_target().username))


def reset_target() -> Any:
    """Return the user whose password an admin is resetting (?pk= on the reset form)."""
    from .records import record_id
    pk = record_id(request.args.get("pk"))
    user = current_appbuilder().sm.get_user_by_id(pk) if pk is not None else None
    if user is None:
        abort(404)
    return user


class CrmResetMyPasswordView(ResetMyPasswordView):
    """Change one's own password: the current one first; every other session and token then ends."""

    class_permission_name = "ResetMyPasswordView"
    form = ChangeMyPasswordForm
    form_title = lazy_text("修改密码", "Change password")
    message = lazy_text("密码已修改；在其他设备和程序上的登录都已退出",
                        "Password changed; you are logged out everywhere else")

    def form_post(self, form: Any) -> None:
        current_appbuilder().sm.reset_password(g.user.id, form.password.data)
        flash(str(self.message), "info")


class CrmResetPasswordView(ResetPasswordView):
    """An admin sets someone's password: the policy applies, and that user's sessions and tokens end."""

    class_permission_name = "ResetPasswordView"
    form = ResetPasswordForm
    form_title = lazy_text("重设用户密码", "Reset a user's password")
    message = lazy_text("密码已重设；该用户的所有登录都已退出", "Password reset; the user is logged out everywhere")

    def form_get(self, form: Any) -> None:
        reset_target()  # 404 for no such user, before the form is shown

    def form_post(self, form: Any) -> None:
        user = reset_target()
        current_appbuilder().sm.reset_password(user.id, form.password.data)
        flash(str(self.message), "info")


class CrmUserView(UserDBModelView):
    class_permission_name = "UserDBModelView"  # keep FAB's permission names
    formatters_columns = USER_FORMATTERS
    add_form_extra_fields = new_password_fields(lambda form: form.username.data)

    @expose("/show/<pk>", methods=["GET"])
    @has_access
    def show(self, pk: Any) -> Any:
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        actions = {name: self.actions.get(name) for name in ("resetpasswords", "unlock")}
        widgets = self._get_show_widget(pk, item, actions=actions)
        self.update_redirect()
        return self.render_template(self.show_template, pk=pk, title=self.show_title, widgets=widgets,
                                    appbuilder=self.appbuilder, related_views=self._related_views)

    @action("unlock", lazy_text("解除登录锁定", "Unlock login"),
            lazy_text("解除该用户因多次登录失败造成的锁定？", "Unlock this user after failed logins?"), "fa-unlock",
            multiple=False)
    def unlock(self, items: Any) -> Any:
        items = items if isinstance(items, list) else [items]  # FAB's action_post passes a list
        for item in items:
            login_guard().unlock(account_key(item.username))
            audit_login("unlock", item.username, item, by=g.user.username)
            flash(unlock_message(item.username).text(current_lang()), "info")
        return redirect(url_for(f"{type(self).__name__}.show", pk=items[0].id) if len(items) == 1
                        else url_for(f"{type(self).__name__}.list"))


def permissions(perms: list[Any] | None) -> Any:
    """Return a role's permission count on its list row, and on its detail page every permission as
    people read it: 联系人：查看、新增、修改 per table, then the panel's own screens."""
    if not perms:
        return BLANK
    if request.endpoint and request.endpoint.endswith(".list"):
        return lazy_text(f"{len(perms)} 项权限", f"{len(perms)} permissions")
    lang = current_lang()
    schema = current_app.extensions["crm"].schema
    labels = {f"table:{t.key}": t.label.text(lang) for t in schema.tables}
    labels |= {f"menu:{t.key}": t.label.text(lang) for t in schema.tables}
    labels |= {key: words[0] if lang == "zh" else words[1] for key, words in SCREEN_LABELS.items()}
    grouped: dict[str, list[str]] = {}
    for p in perms:
        view = p.view_menu.name
        grouped.setdefault(labels.get(view, view), []).append(verb_label(p.permission.name, lang))
    grouped = {name: sorted(set(verbs), key=verb_order) for name, verbs in grouped.items()}
    order = list(labels.values())
    lines = sorted(grouped.items(),
                   key=lambda item: (order.index(item[0]) if item[0] in order else len(order), item[0]))
    separator, colon = ("、", "：") if lang == "zh" else (", ", ": ")
    return Markup("<br>").join(f"{name}{colon}{separator.join(dict.fromkeys(verbs))}" for name, verbs in lines)


def role_names(roles: Iterable[Any] | None) -> str:
    """Return a user's roles by their labels (销售、财务), or a dash."""
    lang = current_lang()
    schema = current_app.extensions["crm"].schema
    shown = [schema.roles[r.name].label.text(lang) if r.name in schema.roles else
             ("管理员" if r.name == "admin" and lang == "zh" else r.name) for r in roles or ()]
    return ("、" if lang == "zh" else ", ").join(shown) or BLANK


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


class CrmAuthDBView(AuthDBView):
    """The login form, with the guard's lockout message; logout by POST (with its CSRF token) only."""

    @expose("/login/", methods=["GET", "POST"])
    @no_cache
    def login(self) -> Any:
        if g.user is not None and g.user.is_authenticated:
            return redirect(self._get_safe_next_url())
        form = LoginForm_db()
        if form.validate_on_submit():
            next_url = get_safe_redirect(request.args.get("next", ""))
            user = self.appbuilder.sm.auth_user_db(form.username.data, form.password.data)
            if not user:
                flash(lockout_message() or str(self.invalid_login_message), "warning")
                return redirect(self.appbuilder.get_url_for_login_with(next_url))
            login_user(user, remember=False)
            return redirect(next_url)
        return self.render_template(self.login_template, title=self.title, form=form, appbuilder=self.appbuilder)

    @expose("/logout/", methods=["POST"])
    def logout(self) -> Any:
        user = self._get_authenticated_user()
        if user is not None:
            end_user_sessions(user.id)
            audit_login("logout", user.username, user)
        logout_user()
        return redirect(current_app.config.get("LOGOUT_REDIRECT_URL", self.appbuilder.get_url_for_index))


class CrmSecurityApi(SecurityApi):
    """The API login: a locked account or address answers 429 with the reason, not 401."""

    responses = RESPONSES

    def add_api_spec(self, api_spec: Any) -> None:
        super().add_api_spec(api_spec)
        use_responses(api_spec)
        correct_login(api_spec._paths)

    @expose("/login", methods=["POST"])
    @safe
    def login(self) -> Any:
        body = request.get_json(silent=True) if request.is_json else None
        if not isinstance(body, dict):
            return self.response_400(message="请求内容应为 JSON 对象:{\"username\": ..., \"password\": ..., "
                                             "\"provider\": \"db\"}" if current_lang() == "zh" else
                                     'the body must be a JSON object: {"username": ..., "password": ..., '
                                     '"provider": "db"}')
        try:
            payload = LoginPost().load({"provider": "db", **body})  # the panel logs in against its database
        except ValidationError as error:
            return self.response_400(message=error.messages)
        if payload["provider"] != "db":
            return self.response_400(message={"provider": ["only db logins are configured"]})
        user = self.appbuilder.sm.auth_user_db(payload["username"], payload["password"])
        if user is None:
            message = lockout_message()
            if message is None:
                return self.response_401()
            answer = self.response(429, message=message)
            answer.headers["Retry-After"] = str(g.crm_lockout.seconds)
            return answer
        tokens = {"access_token": create_access_token(identity=str(user.id), fresh=True)}
        if payload.get("refresh"):
            tokens["refresh_token"] = create_refresh_token(identity=str(user.id))
        return self.response(200, **tokens)

    login.__doc__ = SecurityApi.login.__doc__


class CrmSecurityManager(SecurityManager):
    """FAB's security manager with the screens above, the login guard and session versions."""

    userdbmodelview = CrmUserView
    rolemodelview = CrmRoleView
    groupmodelview = CrmGroupView
    authdbview = CrmAuthDBView
    resetmypasswordview = CrmResetMyPasswordView
    resetpasswordview = CrmResetPasswordView
    security_api = CrmSecurityApi
    userstatschartview = None  # its chart loads Google's code from the internet; reports have their own

    def auth_user_db(self, username: Any, password: Any) -> Any:
        return guarded_login(username, password, super().auth_user_db)

    def _has_view_access(self, user: object, permission_name: str, view_name: str) -> bool:
        """FAB's check, asked once per request for each (user, permission, view): a page asks it for
        every menu entry and button, one query each (a role changed by an admin counts from the next request)."""
        if not has_request_context():
            return bool(super()._has_view_access(user, permission_name, view_name))
        cache: dict[tuple[Any, str, str], bool] = g.setdefault("crm_view_access", {})
        key = (getattr(user, "id", None), permission_name, view_name)
        if key not in cache:
            cache[key] = bool(super()._has_view_access(user, permission_name, view_name))
        return cache[key]

    def reset_password(self, userid: Any, password: str) -> None:
        """Set a password (every screen and command does it here); the user's other logins end."""
        super().reset_password(userid, password)
        me = has_request_context() and g.get("user") is not None and getattr(g.user, "id", None) == int(userid)
        end_user_sessions(int(userid), keep_this_one=me)

    def load_user(self, pk: Any) -> Any:
        # A session cookie from before the user's last logout or password change no longer logs in.
        user = super().load_user(pk)
        return user if user is not None and session_is_current(user.id) else None

    def load_user_jwt(self, _jwt_header: Any, jwt_data: Any) -> Any:
        # Tokens carry their own session version, checked by token_revoked before this runs.
        user = self.get_user_by_id(int(jwt_data["sub"]))
        if user is not None and user.is_active:
            g.user = user
            return user
        return None

    def create_jwt_manager(self, app: Any) -> Any:
        jwt_manager = super().create_jwt_manager(app)
        jwt_manager.additional_claims_loader(token_claims)
        jwt_manager.token_in_blocklist_loader(token_revoked)
        jwt_manager.invalid_token_loader(lambda reason: ({"message": TOKEN_INVALID.text(current_lang()) + reason}, 401))
        jwt_manager.revoked_token_loader(lambda header, data: ({"message": LOGIN_ENDED.text(current_lang())}, 401))
        jwt_manager.expired_token_loader(lambda header, data: ({"message": TOKEN_EXPIRED.text(current_lang())}, 401))
        jwt_manager.unauthorized_loader(lambda reason: ({"message": api_message(401)}, 401))
        return jwt_manager
