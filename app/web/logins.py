"""Logins that resist guessing and end when they should, for the screens and the API alike.

- Failed logins are counted per account and per address (`limits`' fixed windows) in the storage
  Flask-Limiter uses, which every worker shares: the panel's database by default, Redis when
  CRM_RATE_LIMIT_STORAGE names it. Past the limit the account (or the address) is locked for the
  rest of the window, and says so; every login, failure, lockout and refused attempt is in the
  audit log; an admin unlocks an account on its user page or with `crm user unlock`.
- Each login carries the user's session version (app.security.login_state); logging out or changing
  a password raises it, so every older session cookie, access token and refresh token stops working.
"""
from __future__ import annotations

import hashlib
import math
import time
import unicodedata
from dataclasses import dataclass
from typing import Any

from flask import current_app, g, has_request_context, request, session
from flask_login import user_logged_in
from limits import parse as parse_limit
from limits.strategies import FixedWindowRateLimiter

from app.audit.capture import ACCOUNTS
from app.audit.log import Entry, append
from app.schema.model import Label
from app.security.login_state import end_sessions, session_version

from .context import current_appbuilder

SESSION_KEY = "crm_sv"  # the session version a session cookie was issued under
CLAIM = "crm_sv"  # ... and a JWT


@dataclass(frozen=True)
class Lockout:
    """Logins refused for `seconds` more: too many failures for the account or from the address."""

    seconds: int
    by_address: bool = False

    def text(self, lang: str) -> str:
        minutes = max(1, math.ceil(self.seconds / 60))
        if self.by_address:
            return (f"此地址登录失败次数过多，已暂停登录，请 {minutes} 分钟后再试。" if lang == "zh" else
                    f"Too many failed logins from this address: logins are paused; try again in {minutes} minutes.")
        return (f"登录失败次数过多，账户已临时锁定，请 {minutes} 分钟后再试，或请管理员解锁。" if lang == "zh" else
                f"Too many failed logins: the account is locked for {minutes} minutes, or until an "
                "administrator unlocks it.")


def account_key(username: Any) -> str:
    """Return the counter key of what was typed as a login name.

    A name that finds an account counts against that account, however it was typed: its e-mail
    address, other case, or spellings the database's collation takes as equal (MariaDB finds
    'ädmin' for 'admin') — the same lookup the password check makes. Other names count as themselves
    (hashed: any text may be typed)."""
    sm = current_appbuilder().sm
    name = str(username or "").strip()
    user = (sm.find_user(username=name) or sm.find_user(email=name)) if name else None
    if user is not None:
        return f"user-{user.id}"
    folded = unicodedata.normalize("NFKC", name).casefold()
    return hashlib.sha256(folded.encode("utf-8", "replace")).hexdigest()[:32]


class LoginGuard:
    """Counts failed logins per account and per address and says when logins are refused."""

    def __init__(self, storage: Any, account_limit: str, address_limit: str, prefix: str = ""):
        self.strategy = FixedWindowRateLimiter(storage)
        self.account = parse_limit(account_limit)
        self.address = parse_limit(address_limit)
        self.scope = f"crm-login{prefix}"  # RATELIMIT_KEY_PREFIX keeps installations sharing a Redis apart

    def lockout(self, account: str, address: str | None) -> Lockout | None:
        """Return the lockout in force for this account key or address, or None when a login may be tried."""
        for limit, kind, key in (self.account, "account", account), (self.address, "address", address or "-"):
            if not self.strategy.test(limit, self.scope, kind, key):
                reset = self.strategy.get_window_stats(limit, self.scope, kind, key).reset_time
                return Lockout(max(1, int(reset - time.time())), by_address=kind == "address")
        return None

    def failed(self, account: str, address: str | None) -> None:
        """Count a failed login against the account key and the address."""
        self.strategy.hit(self.account, self.scope, "account", account)
        self.strategy.hit(self.address, self.scope, "address", address or "-")

    def unlock(self, account: str) -> None:
        """Forget the account's failures (a successful login, or an admin unlocking it)."""
        self.strategy.clear(self.account, self.scope, "account", account)


def login_guard() -> LoginGuard:
    return current_app.extensions["crm_login_guard"]


def install_login_guard(app: Any) -> None:
    """Build the guard on Flask-Limiter's shared storage; mark each new session with its version."""
    limiter = app.appbuilder.sm.limiter
    app.extensions["crm_login_guard"] = LoginGuard(limiter.storage, app.config["CRM_LOGIN_ACCOUNT_LIMIT"],
                                                   app.config["CRM_LOGIN_ADDRESS_LIMIT"],
                                                   app.config.get("RATELIMIT_KEY_PREFIX") or "")
    user_logged_in.connect(on_login, app)


def on_login(sender: Any, user: Any, **extra: Any) -> None:
    start_session(user)


def audit_login(action: str, username: Any, user: Any = None, **details: Any) -> None:
    """Record a login event in the audit log (in its own commit: a refused login writes nothing else)."""
    name = str(username or "")[:100]
    entry = Entry(action, ACCOUNTS.key, getattr(user, "id", None), details or None, getattr(user, "id", None),
                  name, request.remote_addr if has_request_context() else None)
    db = current_appbuilder().session
    append(db.connection(), [entry])
    db.commit()


def guarded_login(username: Any, password: Any, check: Any) -> Any:
    """Return the user `check(username, password)` authenticates, or None; count and audit failures.

    A locked account or address is refused without looking at the password (g.crm_lockout says why).
    """
    guard = login_guard()
    address = request.remote_addr
    account = account_key(username)
    lockout = guard.lockout(account, address)
    if lockout is not None:
        g.crm_lockout = lockout
        audit_login("login_refused", username, reason="address locked" if lockout.by_address else "account locked")
        return None
    user = check(username, password)
    if user is None:
        guard.failed(account, address)
        audit_login("login_failed", username)
        lockout = guard.lockout(account, address)
        if lockout is not None:
            g.crm_lockout = lockout
            audit_login("lockout", username, seconds=lockout.seconds,
                        scope="address" if lockout.by_address else "account")
        return None
    guard.unlock(account)
    audit_login("login", username, user)
    return user


def lockout_message() -> str | None:
    """Return the lockout message of this request's refused login, if it was refused for that."""
    from .i18n import current_lang
    lockout = getattr(g, "crm_lockout", None)
    return lockout.text(current_lang()) if lockout is not None else None


def login_stamp(user_id: int) -> str | None:
    """Return what a session cookie or token must carry to stay valid for the login `user_id`: its
    session version, with the account's name and creation time — so that a deleted account's cookies
    never log in a new account that got the same id. None when there is no such login."""
    user = current_appbuilder().sm.get_user_by_id(user_id)
    if user is None:
        return None
    db = current_appbuilder().session
    version = session_version(db.connection(), user.id)
    created = user.created_on.isoformat(timespec="seconds") if user.created_on else ""
    return f"{version}:{user.username}:{created}"


def start_session(user: Any) -> None:
    """Mark the new session cookie with the login's stamp (flask_login's signal)."""
    session[SESSION_KEY] = login_stamp(user.id)
    current_appbuilder().session.commit()


def session_is_current(user_id: int) -> bool:
    """Return True when this request's session cookie was issued under the login's current stamp."""
    stamp = login_stamp(user_id)
    return stamp is not None and session.get(SESSION_KEY) == stamp


def token_claims(identity: Any) -> dict[str, Any]:
    """Return the claims added to every access and refresh token: the login's stamp."""
    try:
        return {CLAIM: login_stamp(int(identity))}
    finally:
        current_appbuilder().session.commit()


def token_revoked(jwt_header: Any, jwt_data: dict[str, Any]) -> bool:
    """Return True for a token issued before the login's last logout or password change, or for
    another account that had its id."""
    try:
        identity = int(jwt_data.get("sub", ""))
    except (TypeError, ValueError):
        return True
    stamp = login_stamp(identity)
    return stamp is None or jwt_data.get(CLAIM) != stamp


def end_user_sessions(user_id: int, keep_this_one: bool = False) -> None:
    """End every session and token of the user; with `keep_this_one`, this request's session goes on."""
    db = current_appbuilder().session
    end_sessions(db.connection(), user_id)
    db.commit()
    if keep_this_one:
        session[SESSION_KEY] = login_stamp(user_id)


def unlock_message(username: str) -> Label:
    return Label(f"已解除用户“{username}”的登录锁定", f"the login of '{username}' is unlocked")
