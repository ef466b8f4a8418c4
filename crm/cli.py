"""The `crm` command: thin wrappers that print issues and results, never tracebacks for user mistakes."""
from __future__ import annotations

import sys
from typing import Any

import click

from crm.spec import SchemaError, load_schema


def _create_app(**overrides: Any) -> Any:
    from crm.app import create_app
    try:
        return create_app(overrides or None)
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)


def _report_start(app: Any) -> None:
    state = app.extensions["crm"]
    if state.created_tables:
        click.echo(f"Created tables: {', '.join(state.created_tables)}")
    if state.added_columns:
        click.echo(f"Added columns: {', '.join(state.added_columns)}")
    if state.new_admin:
        user, password = state.new_admin
        click.echo(f"Created the first admin. Log in as '{user}' with password: {password}")
        click.echo("(This password is shown only once; change it after logging in.)")


@click.group()
def main() -> None:
    """Chemical-industry customer management panel."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data when the database has no records yet.")
def run(host: str, port: int, demo: bool) -> None:
    """Check the schema, sync the database and serve the panel."""
    app = _create_app()
    _report_start(app)
    if demo:
        _load_demo(app, only_if_empty=True)
    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)")
    app.run(host=host, port=port, threaded=True, use_reloader=False)


@main.command()
@click.option("--demo", is_flag=True, help="Fill the tables with demo data (only when they are empty).")
def init(demo: bool) -> None:
    """Create the database tables and the first admin."""
    app = _create_app()
    _report_start(app)
    if demo:
        _load_demo(app, only_if_empty=False)
    click.echo("Database ready.")


def _load_demo(app: Any, only_if_empty: bool) -> None:
    from crm.seed import DemoNotEmpty, load_demo_data
    try:
        counts = load_demo_data(app)
    except DemoNotEmpty as exc:
        if only_if_empty:
            return
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("Loaded demo data: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@main.group()
def schema() -> None:
    """Work with the YAML schema."""


@schema.command("check")
def schema_check() -> None:
    """Check every schema file and print all problems; exit 1 if there are any."""
    from crm.config import load_config
    directory = load_config()["CRM_SCHEMA_DIR"]
    try:
        spec = load_schema(directory)
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    fields = sum(len(t.fields) for t in spec.tables)
    click.echo(f"Schema OK: {len(spec.tables)} tables, {fields} fields, {len(spec.choices)} option lists.")


@main.group()
def user() -> None:
    """Manage login users."""


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, help="admin, staff, ...")
@click.option("--password", help="At least 8 characters; asked for when omitted.")
@click.option("--email", default="", help="Defaults to NAME@localhost.")
def user_add(name: str, role: str, password: str | None, email: str) -> None:
    """Add a login user with one role."""
    from crm.security.users import UserError, add_user
    app = _create_app()
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.app_context():
        try:
            add_user(app.appbuilder, name, role, password, email=email)
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    click.echo(f"Added user '{name}' with role '{role}'.")


@user.command("password")
@click.argument("name")
@click.option("--password", help="At least 8 characters; asked for when omitted.")
def user_password(name: str, password: str | None) -> None:
    """Set a user's password."""
    app = _create_app()
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    if len(password) < 8:
        click.echo("Error: the password must have at least 8 characters", err=True)
        sys.exit(1)
    with app.app_context():
        sm = app.appbuilder.sm
        found = sm.find_user(username=name)
        if found is None:
            click.echo(f"Error: there is no user '{name}'", err=True)
            sys.exit(1)
        sm.reset_password(found.id, password)
    click.echo(f"Password of '{name}' changed.")


if __name__ == "__main__":
    main()
