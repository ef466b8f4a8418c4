"""The settings in force: built-in defaults, then the root `config.py`, then `CRM_*` environment
variables, then the overrides a caller passes (tests). `settings_in_force` also says where each came from.

`config.py` is read with Flask's own `Config.from_pyfile` (its upper-case names, as in any
Flask-AppBuilder project); `CRM_CONFIG` names another file. A `CRM_*` name no setting has is refused
with the nearest real one, so a typo does not silently keep the default.
"""
from __future__ import annotations

import difflib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Config

PROJECT_DIR = Path(__file__).resolve().parent.parent
RATE_LIMIT_DATABASE = "crm-database"  # app.security.limits_storage's scheme

# Every CRM_* setting and its built-in default (None: derived, see the root config.py's comments).
CRM_DEFAULTS: dict[str, Any] = {
    "CRM_DATABASE_URL": None,
    "CRM_SCHEMA_DIR": None,
    "CRM_REPORTS_DIR": None,
    "CRM_INSTANCE_DIR": None,
    "CRM_MIGRATIONS_DIR": None,
    "CRM_SCHEMA_AUTO_APPLY": True,
    "CRM_SECRET_KEY": None,
    "CRM_ADMIN_USERNAME": "admin",
    "CRM_ADMIN_PASSWORD": None,
    "CRM_ENCRYPTION_KEYS": None,
    "CRM_TIMEZONE": "Asia/Shanghai",
    "CRM_COMPANY_NAME": "",
    "CRM_COMPANY_LOGO": None,
    "CRM_PDF_FONT": None,
    "CRM_REPORT_ROW_LIMIT": 20000,
    "CRM_IMPORT_MAX_MB": 50,
    "CRM_JOBS_URL": "",
    "CRM_JOB_ROWS": 2000,
    "CRM_PROXY_COUNT": 0,
    "CRM_MAX_PAGE_SIZE": 100,
    "CRM_RATE_LIMIT_STORAGE": "",
    "CRM_LOGIN_ACCOUNT_LIMIT": "5 per 15 minutes",
    "CRM_LOGIN_ADDRESS_LIMIT": "30 per 15 minutes",
    "CRM_PASSWORD_MIN_LENGTH": 10,
    "CRM_PANEL_URL": "http://127.0.0.1:8080",
    "CRM_REMINDER_TIME": "08:00",
    "CRM_SMTP_HOST": "",
    "CRM_SMTP_PORT": 25,
    "CRM_SMTP_SECURITY": "none",
    "CRM_SMTP_USER": "",
    "CRM_SMTP_PASSWORD": None,
    "CRM_SMTP_FROM": "",
    "CRM_ROBOTS": None,
}
# Shown masked by `crm config`: whoever reads a screen or a log should not learn them.
SECRET_SETTINGS = frozenset({"CRM_SECRET_KEY", "CRM_ADMIN_PASSWORD", "CRM_ENCRYPTION_KEYS", "CRM_SMTP_PASSWORD",
                             "CRM_ROBOTS"})  # a robot's address is its key
URL_SETTINGS = frozenset({"CRM_DATABASE_URL", "CRM_RATE_LIMIT_STORAGE", "CRM_JOBS_URL"})  # their passwords are masked


class SettingError(ValueError):
    """A setting that cannot be used: the message names it and says what it should be."""


@dataclass(frozen=True)
class Setting:
    """One setting in force: its value and where it came from (default, config.py, environment, caller)."""

    name: str
    value: Any
    source: str


def config_file() -> Path | None:
    """Return the config file to read: CRM_CONFIG if set (it must exist), else the root config.py if any."""
    named = os.environ.get("CRM_CONFIG")
    if named:
        path = Path(named)
        if not path.is_file():
            raise SettingError(f"CRM_CONFIG={named!r}: no such file; name a file such as "
                               f"{PROJECT_DIR / 'config.py'}")
        return path
    path = PROJECT_DIR / "config.py"
    return path if path.is_file() else None


def file_settings(path: Path | None) -> dict[str, Any]:
    """Return the upper-case names a config file sets; ValueError naming an unknown CRM_* name."""
    if path is None:
        return {}
    loaded = Config(str(path.parent))
    try:
        loaded.from_pyfile(str(path))
    except Exception as exc:  # a config file is Python: any mistake in it stops the start, named
        raise SettingError(f"{path}: {type(exc).__name__}: {exc}") from None
    for name in loaded:
        if name.startswith("CRM_") and name not in CRM_DEFAULTS and name != "CRM_CONFIG":
            raise SettingError(f"{path}: {name} is not a setting{nearest(name)}")
    return dict(loaded)


def environment_settings() -> dict[str, str]:
    """Return the CRM_* environment variables that name a setting (empty ones count as unset)."""
    return {k: v for k, v in os.environ.items() if k in CRM_DEFAULTS and v}


def nearest(name: str) -> str:
    close = difflib.get_close_matches(name, CRM_DEFAULTS, n=1)
    return f"; did you mean {close[0]}?" if close else ""


def settings_in_force(overrides: dict[str, Any] | None = None) -> list[Setting]:
    """Return every CRM_* setting and framework setting in force, with where its value came from."""
    path = config_file()
    layers = (("config.py" if path is None else str(path.name), file_settings(path)),
              ("environment", environment_settings()), ("caller", overrides or {}))
    names = [*CRM_DEFAULTS, *FLASK_DEFAULTS]
    names += [n for _, values in layers for n in values if n not in names and n.isupper()]
    found = []
    for name in names:
        value, source = CRM_DEFAULTS.get(name, FLASK_DEFAULTS.get(name)), "default"
        for layer, values in layers:
            if name in values and (layer == "caller" or values[name] is not None or name not in CRM_DEFAULTS):
                value, source = values[name], layer
        found.append(Setting(name, value, source))
    return found


def load_config(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return the settings for the app: the layers of `settings_in_force`, with derived folders filled in."""
    raw = {s.name: s.value for s in settings_in_force(overrides)}
    settings = {k: v for k, v in raw.items() if v not in (None, "")}
    instance = Path(settings.get("CRM_INSTANCE_DIR") or PROJECT_DIR / "instance").resolve()
    schema_dir = Path(settings.get("CRM_SCHEMA_DIR") or PROJECT_DIR / "schema")
    # What sits beside the schema folder by default: revisions (schema/ -> migrations/) and reports.
    beside_schema = schema_dir.resolve().parent
    config: dict[str, Any] = {k: v for k, v in raw.items() if k not in CRM_DEFAULTS}
    config.update({
        "CRM_INSTANCE_DIR": str(instance),
        "CRM_SCHEMA_DIR": str(schema_dir),
        "CRM_REPORTS_DIR": str(Path(settings.get("CRM_REPORTS_DIR") or beside_schema / "reports")),
        "CRM_MIGRATIONS_DIR": str(Path(settings.get("CRM_MIGRATIONS_DIR") or beside_schema / "migrations")),
        "CRM_DATABASE_URL": settings.get("CRM_DATABASE_URL") or f"sqlite:///{instance / 'crm.db'}",
        "CRM_ADMIN_USERNAME": settings.get("CRM_ADMIN_USERNAME") or "admin",
        "CRM_ADMIN_PASSWORD": settings.get("CRM_ADMIN_PASSWORD"),
        "CRM_SECRET_KEY": settings.get("CRM_SECRET_KEY"),
        "CRM_SCHEMA_AUTO_APPLY": yes_or_no(raw["CRM_SCHEMA_AUTO_APPLY"], "CRM_SCHEMA_AUTO_APPLY"),
        "CRM_PDF_FONT": settings.get("CRM_PDF_FONT"),
        "CRM_REPORT_ROW_LIMIT": whole_number(raw["CRM_REPORT_ROW_LIMIT"], "CRM_REPORT_ROW_LIMIT") or 20000,
        "CRM_IMPORT_MAX_MB": whole_number(raw["CRM_IMPORT_MAX_MB"], "CRM_IMPORT_MAX_MB") or 50,
        "CRM_JOBS_URL": jobs_url(str(raw["CRM_JOBS_URL"] or ""), instance),
        "CRM_JOB_ROWS": whole_number(raw["CRM_JOB_ROWS"], "CRM_JOB_ROWS") or 2000,
        "CRM_COMPANY_NAME": str(raw["CRM_COMPANY_NAME"] or ""),
        "CRM_COMPANY_LOGO": logo_file(settings.get("CRM_COMPANY_LOGO")),
        "CRM_ENCRYPTION_KEYS": settings.get("CRM_ENCRYPTION_KEYS"),
        "CRM_PROXY_COUNT": whole_number(raw["CRM_PROXY_COUNT"], "CRM_PROXY_COUNT"),
        "CRM_MAX_PAGE_SIZE": whole_number(raw["CRM_MAX_PAGE_SIZE"], "CRM_MAX_PAGE_SIZE") or 100,
        "CRM_RATE_LIMIT_STORAGE": str(raw["CRM_RATE_LIMIT_STORAGE"] or ""),
        "CRM_LOGIN_ACCOUNT_LIMIT": settings.get("CRM_LOGIN_ACCOUNT_LIMIT") or "5 per 15 minutes",
        "CRM_LOGIN_ADDRESS_LIMIT": settings.get("CRM_LOGIN_ADDRESS_LIMIT") or "30 per 15 minutes",
        "CRM_PASSWORD_MIN_LENGTH": whole_number(raw["CRM_PASSWORD_MIN_LENGTH"], "CRM_PASSWORD_MIN_LENGTH") or 10,
        "CRM_TIMEZONE": time_zone(settings.get("CRM_TIMEZONE") or "Asia/Shanghai"),
        "CRM_PANEL_URL": str(raw["CRM_PANEL_URL"] or "http://127.0.0.1:8080").rstrip("/"),
        "CRM_REMINDER_TIME": clock_time(str(raw["CRM_REMINDER_TIME"] or "08:00"), "CRM_REMINDER_TIME"),
        "CRM_SMTP_HOST": str(raw["CRM_SMTP_HOST"] or ""),
        "CRM_SMTP_PORT": whole_number(raw["CRM_SMTP_PORT"], "CRM_SMTP_PORT") or 25,
        "CRM_SMTP_SECURITY": one_of(str(raw["CRM_SMTP_SECURITY"] or "none"), "CRM_SMTP_SECURITY",
                                    ("none", "starttls", "ssl")),
        "CRM_SMTP_USER": str(raw["CRM_SMTP_USER"] or ""),
        "CRM_SMTP_PASSWORD": settings.get("CRM_SMTP_PASSWORD"),
        "CRM_SMTP_FROM": str(raw["CRM_SMTP_FROM"] or ""),
        "CRM_ROBOTS": robots(raw["CRM_ROBOTS"]),
    })
    config["SQLALCHEMY_DATABASE_URI"] = config["CRM_DATABASE_URL"]
    config["FAB_API_MAX_PAGE_SIZE"] = config["CRM_MAX_PAGE_SIZE"]
    config.setdefault("RATELIMIT_STORAGE_URI", config["CRM_RATE_LIMIT_STORAGE"] or f"{RATE_LIMIT_DATABASE}://")
    if config["RATELIMIT_STORAGE_URI"].startswith(RATE_LIMIT_DATABASE):
        config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"url": config["CRM_DATABASE_URL"]})
    config["UPLOAD_FOLDER"] = (overrides or {}).get("UPLOAD_FOLDER") or str(instance / "uploads")
    config["CRM_EXPORT_DIR"] = str(instance / "exports")
    return config


def shown(setting: Setting) -> str:
    """Return a setting's value as `crm config` prints it: secrets masked, URL passwords hidden."""
    if setting.value in (None, ""):
        return "(not set)"
    if setting.name in SECRET_SETTINGS:
        return "********"
    if setting.name in URL_SETTINGS:
        from sqlalchemy.engine import make_url
        try:
            return make_url(str(setting.value)).render_as_string(hide_password=True)
        except Exception:  # not a URL (it will be refused at start): show nothing that might be a secret
            return "(not a URL)"
    return repr(setting.value) if not isinstance(setting.value, str) else setting.value


def logo_file(value: Any) -> str | None:
    """Return the logo's path if it is a PNG or JPEG file; ValueError naming the setting otherwise."""
    if not value:
        return None
    path = Path(str(value))
    if not path.is_file():
        raise SettingError(f"CRM_COMPANY_LOGO={str(value)!r}: no such file")
    head = path.read_bytes()[:8]
    if not (head.startswith(b"\x89PNG") or head.startswith(b"\xff\xd8")):
        raise SettingError(f"CRM_COMPANY_LOGO={str(value)!r} is neither a PNG nor a JPEG image")
    return str(path)


def yes_or_no(value: Any, name: str) -> bool:
    """Return a yes/no setting (True, 1, yes, true / False, 0, no, false); ValueError naming the setting."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise SettingError(f"{name} must be yes or no (1/0, true/false), got {value!r}")


def time_zone(name: str) -> str:
    """Return an IANA time zone name as given; ValueError naming the setting when there is no such zone."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingError(f"CRM_TIMEZONE={name!r} is not a time zone; use a name such as Asia/Shanghai") from None
    return name


def clock_time(value: str, name: str) -> str:
    """Return a time of day as HH:MM; SettingError naming the setting otherwise."""
    import re
    found = re.fullmatch(r"\s*(\d{1,2}):(\d{2})\s*", value)
    if not found or int(found.group(1)) > 23 or int(found.group(2)) > 59:
        raise SettingError(f"{name}={value!r}: write a time of day such as 08:00")
    return f"{int(found.group(1)):02d}:{found.group(2)}"


def one_of(value: str, name: str, allowed: tuple[str, ...]) -> str:
    if value.strip().lower() not in allowed:
        raise SettingError(f"{name}={value!r}: use one of {', '.join(allowed)}")
    return value.strip().lower()


ROBOT_KINDS = ("wecom", "dingtalk")


def robots(value: Any) -> list[dict[str, Any]]:
    """Return the chat robots reminders go to: a list (in config.py) or JSON text (CRM_ROBOTS in the
    environment) of {name, kind: wecom|dingtalk, url, roles: [...], secret (DingTalk signing)}."""
    import json
    if value in (None, "", []):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise SettingError('CRM_ROBOTS is not JSON; write a list such as [{"name": "销售群", "kind": "wecom", '
                               '"url": "https://qyapi.weixin.qq.com/...", "roles": ["sales"]}]') from None
    if not isinstance(value, list):
        raise SettingError("CRM_ROBOTS must be a list of robots")
    found = []
    for n, robot in enumerate(value):
        where = f"CRM_ROBOTS[{n}]"
        if not isinstance(robot, dict) or not robot.get("name") or not str(robot.get("url", "")).startswith(
                ("https://", "http://")):
            raise SettingError(f"{where}: a robot needs a name and a url (https://...)")
        if robot.get("kind") not in ROBOT_KINDS:
            raise SettingError(f"{where}: kind must be wecom (企业微信) or dingtalk (钉钉), got {robot.get('kind')!r}")
        roles = robot.get("roles") or []
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise SettingError(f"{where}: roles must be a list of role keys")
        found.append({"name": str(robot["name"]), "kind": robot["kind"], "url": str(robot["url"]), "roles": roles,
                      "secret": robot.get("secret") or None})
    return found


def jobs_url(value: str, instance: Path) -> str:
    """Return where background jobs queue: redis://host:port/db, else an SQLite file (instance/jobs.db)."""
    if not value:
        return f"sqlite:///{instance / 'jobs.db'}"
    if value.startswith(("redis://", "rediss://", "sqlite:///")):
        return value
    raise SettingError(f"CRM_JOBS_URL={value!r}: write redis://host:6379/0 (several app servers) or "
                       "sqlite:///path/jobs.db (one machine); leave it empty for instance/jobs.db")


def whole_number(value: Any, name: str) -> int:
    """Return a setting as a whole number of at least 0 (0 when unset); ValueError naming the setting."""
    if value in (None, ""):
        return 0
    if isinstance(value, bool):
        raise SettingError(f"{name} must be a whole number, got {value!r}")
    if str(value).strip().isdigit():
        return int(str(value).strip())
    raise SettingError(f"{name} must be a whole number, got {value!r}")


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
    "FAB_UPDATE_PERMS": False,  # permissions are synced explicitly by app.security.roles
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
