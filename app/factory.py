"""The app factory: call each step of the pipeline in order."""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask
from flask_appbuilder import AppBuilder
from flask_appbuilder.const import LOGMSG_WAR_SEC_NO_USER
from flask_appbuilder.models.sqla.base import SQLA
from flask_wtf.csrf import CSRFProtect

from app.audit.capture import install_audit
from app.automation.store import REMINDERS_METADATA
from app.crypto import Keyring, keyring_for
from app.dbsync.connect import check_database
from app.dbsync.sync import SyncResult, sync_schema
from app.jobs.store import JOBS_METADATA
from app.jobs.work import JobQueue
from app.models.build import BuiltModels, build_models
from app.models.computed import install_computations
from app.models.encryption import check_keys_open_stored_values, install_encryption
from app.models.matching import install_matching
from app.models.rules import install_rules
from app.reports.load import load_reports
from app.reports.spec import ReportBook
from app.schema import SchemaSpec, load_schema
from app.security import limits_storage  # noqa: F401  (registers the database storage with `limits`)
from app.security.gate import writer_roles
from app.security.roles import sync_roles
from app.security.users import ensure_admin
from app.settings import load_config, secret_key
from app.web.accounts import CrmSecurityManager
from app.web.audit import register_audit_screen, request_actor
from app.web.colours import register_colours
from app.web.errors import register_error_pages
from app.web.guards import install_guards
from app.web.home import HomeView, register_template_helpers
from app.web.logins import install_login_guard
from app.web.register import register_screens
from app.web.reports import register_reports_screen
from app.web.review import register_review_screen
from app.web.sharing import register_sharing
from app.web.tasks import register_tasks
from app.web.transfer import register_imports_screen, register_jobs_screen
from app.web.translations import compiled_translations_dir
from app.web.transport import secure_transport

PACKAGE_DIR = Path(__file__).resolve().parent


class WithoutFrameworkAdvice(logging.Filter):
    """Drops Flask-AppBuilder's console advice that does not apply here: the panel creates the first
    admin itself (ensure_admin), so "No user yet created, use flask fab command" only misleads."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != LOGMSG_WAR_SEC_NO_USER


logging.getLogger("flask_appbuilder.security.manager").addFilter(WithoutFrameworkAdvice())


@dataclass
class CrmState:
    """What the app was built from, kept on app.extensions['crm'] for commands and tests."""

    schema: SchemaSpec
    models: BuiltModels
    db: Any
    keyring: Keyring
    reports: ReportBook = field(default_factory=ReportBook)
    sync: SyncResult = field(default_factory=SyncResult)
    new_admin: tuple[str, str] | None = None


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Return the app: schema loaded and checked, database synced, screens, APIs and roles in place.

    Raises SchemaError before anything touches the database when the YAML has mistakes,
    DatabaseUnavailable when the database cannot be opened or written, and SchemaChangesPending when
    the database needs changes that may not be applied at start-up.
    """
    settings = load_config(config)
    schema = load_schema(settings["CRM_SCHEMA_DIR"])
    reports = load_reports(settings["CRM_REPORTS_DIR"], schema)
    Path(settings["CRM_INSTANCE_DIR"]).mkdir(parents=True, exist_ok=True)
    check_database(settings["CRM_DATABASE_URL"])  # before anything is made (a key file, tables)
    ring = keyring_for(settings)
    sync = sync_schema(settings["CRM_DATABASE_URL"], schema, Path(settings["CRM_MIGRATIONS_DIR"]),
                       auto_apply=settings["CRM_SCHEMA_AUTO_APPLY"], export_dir=Path(settings["CRM_EXPORT_DIR"]),
                       ring=ring, system_tables=[JOBS_METADATA, REMINDERS_METADATA])
    app = Flask("crm", instance_path=settings["CRM_INSTANCE_DIR"], root_path=str(PACKAGE_DIR))
    app.config.update(settings)
    app.config["SECRET_KEY"] = secret_key(settings)
    app.config["FAB_BASE_TEMPLATE"] = "crm/baselayout.html"
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = compiled_translations_dir()
    CSRFProtect(app)  # screens post forms with a token; the JWT API is exempt and takes no cookies
    db = SQLA()
    db.init_app(app)
    with app.app_context():
        appbuilder = AppBuilder(indexview=HomeView, security_manager_class=CrmSecurityManager)
        appbuilder.init_app(app, db.session)
        models = build_models(schema, appbuilder.sm.user_model)
        install_encryption(models, ring)
        install_computations(models)
        install_rules(models, writer_roles)
        install_matching(models)
        install_audit(models, ring, request_actor, appbuilder.sm.user_model)
        check_keys_open_stored_values(db.session, models, ring)
        register_screens(appbuilder, models)
        register_review_screen(appbuilder)
        register_audit_screen(appbuilder)
        register_reports_screen(appbuilder)
        register_imports_screen(appbuilder)
        register_jobs_screen(appbuilder)
        register_tasks(appbuilder)
        register_colours(app)
        register_sharing(appbuilder)
        install_login_guard(app)
        sync_roles(appbuilder, schema)
        new_admin = ensure_admin(appbuilder, settings)
    app.extensions["crm"] = CrmState(schema, models, db, ring, reports, sync, new_admin)
    app.extensions["crm_jobs"] = JobQueue(app)
    register_template_helpers(app)
    register_error_pages(app)
    install_guards(app)
    secure_transport(app)
    return app
