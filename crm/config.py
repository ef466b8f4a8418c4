"""Configuration: defaults here, each overridable by a CRM_* environment variable."""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
RATE_LIMIT_DATABASE = "crm-database"  # crm.security.limits_storage's scheme

ENV_SETTINGS = ("CRM_DATABASE_URL", "CRM_SCHEMA_DIR", "CRM_SECRET_KEY", "CRM_ADMIN_USERNAME",
                "CRM_ADMIN_PASSWORD", "CRM_INSTANCE_DIR", "CRM_MIGRATIONS_DIR", "CRM_SCHEMA_AUTO_APPLY",
                "CRM_PDF_FONT", "CRM_ENCRYPTION_KEYS", "CRM_PROXY_COUNT", "CRM_MAX_PAGE_SIZE",
                "CRM_RATE_LIMIT_STORAGE", "CRM_LOGIN_ACCOUNT_LIMIT", "CRM_LOGIN_ADDRESS_LIMIT",
                "CRM_PASSWORD_MIN_LENGTH", "CRM_TIMEZONE")


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings: defaults, then environment variables, then `overrides` (tests)."""
    overrides = overrides or {}
    env = {k: v for k, v in os.environ.items() if k in ENV_SETTINGS and v}
    settings = {**env, **overrides}
    instance = Path(settings.get("CRM_INSTANCE_DIR") or PROJECT_DIR / "instance").resolve()
    config: dict[str, Any] = {
        "CRM_INSTANCE_DIR": str(instance),
        "CRM_SCHEMA_DIR": str(Path(settings.get("CRM_SCHEMA_DIR") or PROJECT_DIR / "schema")),
        "CRM_DATABASE_URL": settings.get("CRM_DATABASE_URL") or f"sqlite:///{instance / 'crm.db'}",
        "CRM_ADMIN_USERNAME": settings.get("CRM_ADMIN_USERNAME") or "admin",
        "CRM_ADMIN_PASSWORD": settings.get("CRM_ADMIN_PASSWORD"),
        "CRM_SECRET_KEY": settings.get("CRM_SECRET_KEY"),
        # Revisions belong to a schema: by default they sit next to its folder (schema/ -> migrations/).
        "CRM_MIGRATIONS_DIR": str(Path(settings.get("CRM_MIGRATIONS_DIR")
                                       or Path(settings.get("CRM_SCHEMA_DIR") or PROJECT_DIR / "schema").resolve().parent
                                       / "migrations")),
        # 1: apply safe schema changes at start-up; 0: run only the reviewed revision files.
        "CRM_SCHEMA_AUTO_APPLY": str(settings.get("CRM_SCHEMA_AUTO_APPLY", "1")) not in ("0", "false", "no"),
        # A TrueType font file that draws Chinese, embedded in PDFs (default: a system font if found).
        "CRM_PDF_FONT": settings.get("CRM_PDF_FONT"),
        # Keys of encrypted fields, comma-separated (the first encrypts); default: instance/encryption.keys.
        "CRM_ENCRYPTION_KEYS": settings.get("CRM_ENCRYPTION_KEYS"),
        # How many reverse proxies (nginx, ...) stand in front: their X-Forwarded-* headers are trusted.
        "CRM_PROXY_COUNT": whole_number(settings.get("CRM_PROXY_COUNT"), "CRM_PROXY_COUNT"),
        # The most rows one page of a list (screen or API) shows.
        "CRM_MAX_PAGE_SIZE": whole_number(settings.get("CRM_MAX_PAGE_SIZE"), "CRM_MAX_PAGE_SIZE") or 100,
        # Where rate limits and failed logins are counted, shared by every worker: the database by
        # default, or a Redis URL (redis://127.0.0.1:6379/0) when several servers run.
        "CRM_RATE_LIMIT_STORAGE": settings.get("CRM_RATE_LIMIT_STORAGE") or "",
        # Failed logins after which an account is locked, and for how long (the rest of the window).
        "CRM_LOGIN_ACCOUNT_LIMIT": settings.get("CRM_LOGIN_ACCOUNT_LIMIT") or "5 per 15 minutes",
        # Failed logins from one address (any accounts) after which that address is paused.
        "CRM_LOGIN_ADDRESS_LIMIT": settings.get("CRM_LOGIN_ADDRESS_LIMIT") or "30 per 15 minutes",
        # The shortest password accepted (it must also not be a common one or contain the user name).
        "CRM_PASSWORD_MIN_LENGTH": whole_number(settings.get("CRM_PASSWORD_MIN_LENGTH"),
                                                "CRM_PASSWORD_MIN_LENGTH") or 10,
        # The time zone in which times are shown (history, audit log); they are stored in UTC.
        "CRM_TIMEZONE": time_zone(settings.get("CRM_TIMEZONE") or "Asia/Shanghai"),
    }
    config.update(FLASK_DEFAULTS)
    config.update({k: v for k, v in overrides.items() if k not in config or k in FLASK_DEFAULTS})
    config["SQLALCHEMY_DATABASE_URI"] = config["CRM_DATABASE_URL"]
    config["FAB_API_MAX_PAGE_SIZE"] = config["CRM_MAX_PAGE_SIZE"]
    config.setdefault("RATELIMIT_STORAGE_URI", config["CRM_RATE_LIMIT_STORAGE"] or f"{RATE_LIMIT_DATABASE}://")
    if config["RATELIMIT_STORAGE_URI"].startswith(RATE_LIMIT_DATABASE):
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"url": config["CRM_DATABASE_URL"]})
    config["UPLOAD_FOLDER"] = overrides.get("UPLOAD_FOLDER") or str(instance / "uploads")
    config["CRM_EXPORT_DIR"] = str(instance / "exports")
    return config


def time_zone(name: str) -> str:
    """Return an IANA time zone name as given; ValueError naming the setting when there is no such zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"CRM_TIMEZONE={name!r} is not a time zone; use a name such as Asia/Shanghai") from None
    return name


def whole_number(value: Any, name: str) -> int:
    """Return a setting as a whole number of at least 0 (0 when unset); ValueError naming the setting."""
    if value in (None, ""):
        return 0
    if str(value).strip().isdigit():
        return int(str(value).strip())
    raise ValueError(f"{name} must be a whole number, got {value!r}")


def secret_key(config: dict[str, Any]) -> str:
    """Return CRM_SECRET_KEY, or the key generated once into the instance folder."""
    if config.get("CRM_SECRET_KEY"):
        return str(config["CRM_SECRET_KEY"])
    path = Path(config["CRM_INSTANCE_DIR"]) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return path.read_text().strip()


FLASK_DEFAULTS: dict[str, Any] = {
    "APP_NAME": "化工客户管理",
    "APP_THEME": "",
    "BABEL_DEFAULT_LOCALE": "zh",
    "LANGUAGES": {"zh": {"flag": "cn", "name": "中文"}, "en": {"flag": "gb", "name": "English"}},
    "AUTH_TYPE": 1,  # database logins
    "AUTH_ROLE_ADMIN": "admin",
    "AUTH_ROLE_PUBLIC": "public",
    "FAB_UPDATE_PERMS": False,  # permissions are synced explicitly by crm.security.roles
    "FAB_API_SWAGGER_UI": True,
    "FAB_ADD_SECURITY_API": False,
    "FAB_ADD_MENU_API": False,  # the menu is drawn by the screens; no client reads it
    "SQLALCHEMY_TRACK_MODIFICATIONS": False,
    "WTF_CSRF_ENABLED": True,
    "SESSION_COOKIE_HTTPONLY": True,
    "SESSION_COOKIE_SAMESITE": "Lax",
    "MAX_CONTENT_LENGTH": 32 * 1024 * 1024,
    "RATELIMIT_ENABLED": True,
    # Flask-AppBuilder's throttle of login and logout posts per address (failed logins are counted
    # apart: CRM_LOGIN_ACCOUNT_LIMIT, CRM_LOGIN_ADDRESS_LIMIT).
    "AUTH_RATE_LIMITED": True,
    "AUTH_RATE_LIMIT": "60 per minute",
    "RATELIMIT_HEADERS_ENABLED": False,
}
