"""The `crm` command: thin wrappers that print issues and results, never tracebacks for user mistakes."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import sqlalchemy as sa

from app.crypto import KeyProblem
from app.schema import SchemaError, load_schema


def _create_app(**overrides: Any) -> Any:
    from app.dbsync.sync import SchemaChangesPending
    from app.factory import create_app
    from app.security.users import UserError
    try:
        return create_app(overrides or None)
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except SchemaChangesPending as exc:
        click.echo(f"The database was not changed and the panel did not start: {exc}", err=True)
        sys.exit(1)
    except KeyProblem as exc:
        click.echo(f"Encryption keys: {exc}", err=True)
        sys.exit(1)
    except UserError as exc:
        click.echo(f"The panel did not start: {exc}", err=True)
        sys.exit(1)


def _report_start(app: Any) -> None:
    state = app.extensions["crm"]
    if state.sync.report():
        click.echo("Schema changes applied:\n" + "\n".join(f"  {line}" for line in state.sync.report().splitlines()))
    if state.new_admin:
        user, password = state.new_admin
        click.echo(f"Created the first admin. Log in as '{user}' with password: {password}")
        click.echo("(This password is shown only once; change it after logging in.)")


class PanelCommands(click.Group):
    """The command group: a database that cannot be used is one line and exit 1, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        from app.dbsync.connect import DatabaseUnavailable
        from app.settings import SettingError
        try:
            return super().invoke(ctx)
        except (DatabaseUnavailable, SettingError) as exc:
            click.echo(f"The panel did not start: {exc}", err=True)
            sys.exit(1)


@click.group(cls=PanelCommands)
def main() -> None:
    """Chemical-industry customer management panel."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--demo", is_flag=True, help="Load demo data when the database has no records yet.")
@click.option("--worker/--no-worker", default=True, show_default=True,
              help="Start a background-job worker beside the server (`crm worker` runs one on its own).")
def run(host: str, port: int, demo: bool, worker: bool) -> None:
    """Check the schema, sync the database and serve the panel (and a job worker beside it)."""
    import subprocess
    app = _create_app()
    _report_start(app)
    if demo:
        _load_demo(app, only_if_empty=True)
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"]) if worker else None
    click.echo(f"Serving on http://{host}:{port}/  (Ctrl+C to stop)"
               + (f"; background jobs run in worker process {process.pid}" if process else ""))
    from app.web.transport import PanelRequestHandler
    try:
        app.run(host=host, port=port, threaded=True, use_reloader=False, request_handler=PanelRequestHandler)
    finally:
        if process is not None:
            process.terminate()
            process.wait(timeout=30)


@main.command()
@click.option("--workers", type=int, default=1, show_default=True, help="Jobs run side by side.")
def worker(workers: int) -> None:
    """Run background jobs (imports and exports) from the queue CRM_JOBS_URL names, until stopped."""
    import logging

    from app.jobs.work import recover_jobs, run_reminders
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = _create_app()
    queue = app.extensions["crm_jobs"]
    again = recover_jobs(app, queue)
    click.echo(f"Worker on {app.config['CRM_JOBS_URL']}"
               + (f"; queued again {len(again)} jobs a stopped worker had left running" if again else ""))
    click.echo(f"Reminders: {run_reminders(app)}")  # a digest missed while no worker ran goes out now
    queue.huey.create_consumer(workers=workers, periodic=True, worker_type="thread").run()


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
    from app.seed import DemoNotEmpty, load_demo_data
    try:
        counts = load_demo_data(app)
    except DemoNotEmpty as exc:
        if only_if_empty:
            return
        click.echo(str(exc), err=True)
        sys.exit(1)
    click.echo("Loaded demo data: " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@main.command("config")
def show_config() -> None:
    """Print the settings in force, each with where it came from (default, config.py, environment)."""
    from app.settings import Setting, config_file, load_config, settings_in_force, shown
    path, settings, resolved = config_file(), settings_in_force(), load_config()
    click.echo(f"Settings read from {path}" if path else "No config file (CRM_CONFIG unset, no config.py): "
               "defaults and environment only")
    width = max(len(s.name) for s in settings)
    for setting in settings:
        if setting.value is None and resolved.get(setting.name) is not None:  # a folder or URL derived from others
            setting = Setting(setting.name, resolved[setting.name], setting.source)
        click.echo(f"{setting.name:<{width}}  {shown(setting)}  [{setting.source}]")


@main.group()
def schema() -> None:
    """Work with the YAML schema."""


@schema.command("check")
def schema_check() -> None:
    """Check every schema file and print all problems; exit 1 if there are any."""
    from app.settings import load_config
    directory = load_config()["CRM_SCHEMA_DIR"]
    try:
        spec = load_schema(directory)
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    from app.reports.load import load_reports
    try:
        book = load_reports(load_config()["CRM_REPORTS_DIR"], spec)
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    fields = sum(len(t.fields) for t in spec.tables)
    click.echo(f"Schema OK: {len(spec.tables)} tables, {fields} fields, {len(spec.choices)} option lists, "
               f"{len(book.reports)} reports.")


def _schema_and_settings() -> tuple[Any, dict[str, Any]]:
    """Return (checked schema, settings); exit 1 with the issues when the YAML has mistakes."""
    from app.dbsync.connect import check_database
    from app.settings import load_config
    settings = load_config()
    try:
        spec = load_schema(settings["CRM_SCHEMA_DIR"])
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    check_database(settings["CRM_DATABASE_URL"])
    return spec, settings


def _parse_resolutions(values: tuple[str, ...]) -> dict[str, str]:
    resolutions = {}
    for value in values:
        target, _, choice = value.partition("=")
        if not choice or "." not in target:
            click.echo(f"Error: --resolve {value}: write TABLE.FIELD=CHOICE, e.g. order.total=clear", err=True)
            sys.exit(2)
        resolutions[target] = choice
    return resolutions


@schema.command("plan")
@click.option("--resolve", "resolve", multiple=True, metavar="TABLE.FIELD=CHOICE",
              help="Show the plan with a resolution for a refused step (clear or keep).")
def schema_plan(resolve: tuple[str, ...]) -> None:
    """Print what the next start or 'crm schema apply' would change, each step safe or needs review."""
    from app.dbsync.sync import plan_changes
    spec, settings = _schema_and_settings()
    try:
        plan, pending = plan_changes(settings["CRM_DATABASE_URL"], spec, Path(settings["CRM_MIGRATIONS_DIR"]),
                                     _parse_resolutions(resolve), ring=_keyring(settings))
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    for revision in pending:
        click.echo(f"> run revision file {revision} (not applied to this database yet)")
    click.echo(plan.text())
    retiring = {step.target for step in plan.steps if step.kind == "retire_column"}
    retired = [f"{table}.{key}" for table, state in sorted(plan.state.items()) for key in sorted(state.retired)
               if f"{table}.{key}" not in retiring]
    if retired:
        click.echo("retired (data kept, hidden): " + ", ".join(retired))


@schema.command("apply")
@click.option("--review", is_flag=True, help="Also apply the steps that need review, after confirmation.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
@click.option("--resolve", "resolve", multiple=True, metavar="TABLE.FIELD=CHOICE",
              help="Resolution for a refused step: clear (values that do not fit are emptied, after a "
                   "backup) or keep (existing rows keep their values).")
def schema_apply(review: bool, yes: bool, resolve: tuple[str, ...]) -> None:
    """Apply the schema changes; with --review also those that need review."""
    from app.dbsync.sync import SchemaChangesPending, sync_schema
    spec, settings = _schema_and_settings()

    def confirm(plan: Any) -> bool:
        click.echo("These steps need review:")
        for step in plan.review:
            click.echo(f"  {step.line()}")
        return yes or click.confirm("Apply them (the affected tables are backed up first)?", default=False)
    try:
        result = sync_schema(settings["CRM_DATABASE_URL"], spec, Path(settings["CRM_MIGRATIONS_DIR"]),
                             include_review=review, resolutions=_parse_resolutions(resolve), confirm=confirm,
                             export_dir=Path(settings["CRM_EXPORT_DIR"]), ring=_keyring(settings))
    except SchemaChangesPending as exc:
        click.echo(f"Not applied: {exc}", err=True)
        sys.exit(1)
    except ValueError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(result.report() or "nothing to change")


@schema.command("drop-retired")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for scripts).")
def schema_drop_retired(yes: bool) -> None:
    """Export the data of retired fields and tables to dated CSV files, then drop them for good."""
    from app.dbsync.sync import SchemaChangesPending, drop_retired
    spec, settings = _schema_and_settings()

    def confirm(steps: Any) -> bool:
        for step in steps:
            click.echo(f"  {step.words}")
        return yes or click.confirm("Drop them (after writing their data to CSV files)?", default=False)
    try:
        result = drop_retired(settings["CRM_DATABASE_URL"], spec, Path(settings["CRM_MIGRATIONS_DIR"]),
                              Path(settings["CRM_EXPORT_DIR"]), confirm=confirm)
    except SchemaChangesPending as exc:
        click.echo(f"Not dropped: {exc}", err=True)
        sys.exit(1)
    click.echo(result.report() or "nothing retired, nothing dropped")


@schema.command("history")
def schema_history() -> None:
    """List the applied schema revisions, oldest first."""
    from app.dbsync.lock import locked_connection
    from app.dbsync.revisions import applied_revisions
    _spec, settings = _schema_and_settings()
    with locked_connection(settings["CRM_DATABASE_URL"]) as conn:
        rows = applied_revisions(conn)
    if not rows:
        click.echo("no schema revision applied yet")
    for row in rows:
        click.echo(f"{row['revision']}  {row['applied_on']:%Y-%m-%d %H:%M}  {row['applied_by']}")
        for line in row["summary"].splitlines():
            click.echo(f"    {line}")


@main.group()
def permissions() -> None:
    """Review who may do what."""


@permissions.command("review")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write the review to FILE.pdf, FILE.csv or FILE.txt.")
def permissions_review(output: str | None) -> None:
    """Print (or write) every role's rights and every user's roles, with the changes since the last review."""
    from app.reports.permission_review import render_review_pdf
    from app.security.review import render_csv, render_text, take_review
    suffix = Path(output).suffix.lower() if output else ".txt"
    if suffix not in (".pdf", ".csv", ".txt"):
        click.echo(f"Error: -o {output}: write a .pdf, .csv or .txt file", err=True)
        sys.exit(2)
    app = _create_app()
    with app.app_context():
        review, changes, now = take_review(app.extensions["crm"].db.engine, app.extensions["crm"].schema,
                                           app.appbuilder.sm.get_all_users(), save=True)
    config = app.config
    if output and suffix == ".pdf":
        Path(output).write_bytes(render_review_pdf(review, changes, now, config.get("CRM_PDF_FONT"),
                                                   config["CRM_COMPANY_NAME"], config.get("CRM_COMPANY_LOGO")))
    elif output and suffix == ".csv":
        Path(output).write_text(render_csv(review, changes), encoding="utf-8-sig")
    elif output:
        Path(output).write_text(render_text(review, changes, now), encoding="utf-8")
    else:
        click.echo(render_text(review, changes, now), nl=False)
    if output:
        click.echo(f"Wrote {output}; changes since the previous review:")
        for line in changes:
            click.echo(f"  {line}")


@main.group()
def report() -> None:
    """Reports declared under reports/: list them, or generate one as a PDF."""


@report.command("list")
def report_list() -> None:
    """Print every report: key, kind, table, label and parameters."""
    from app.reports.load import load_reports
    from app.settings import load_config
    settings = load_config()
    try:
        book = load_reports(settings["CRM_REPORTS_DIR"], load_schema(settings["CRM_SCHEMA_DIR"]))
    except SchemaError as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    for spec in book.reports.values():
        params = ", ".join(f"{p.key} ({p.type}{', required' if p.required else ''})" for p in spec.params)
        click.echo(f"{spec.key:<20} {spec.kind:<8} {spec.table:<12} {spec.label.zh} / {spec.label.en}"
                   + (f"   params: {params}" if params else ""))


@report.command("run")
@click.argument("name")
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE", help="A parameter; repeat for more.")
@click.option("--as", "as_user", metavar="USER", help="Generate it as this login sees it (default: everything).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True,
              help="Write the report to FILE.pdf or FILE.xlsx.")
def report_run(name: str, params: tuple[str, ...], as_user: str | None, lang: str, output: str) -> None:
    """Generate the report NAME as a PDF or an Excel workbook, through the same permission gate as the screens."""
    from zoneinfo import ZoneInfo

    from app.reports.fonts import FontMissing
    from app.reports.params import ParamError
    from app.reports.pdf import render_report_pdf
    from app.reports.run import DEFAULT_ROW_LIMIT, Reader, ReportRefused, run_report
    from app.reports.xlsx import render_report_xlsx
    suffix = Path(output).suffix.lower()
    if suffix not in (".pdf", ".xlsx"):
        click.echo(f"Error: -o {output}: write a .pdf or .xlsx file", err=True)
        sys.exit(2)
    given = {}
    for item in params:
        key, sep, value = item.partition("=")
        if not sep:
            click.echo(f"Error: --param {item}: write KEY=VALUE, e.g. --param from=2026-01-01", err=True)
            sys.exit(2)
        given[key.strip()] = value
    app = _create_app()
    state = app.extensions["crm"]
    if name not in state.reports.reports:
        known = ", ".join(state.reports.reports) or "none"
        click.echo(f"Error: there is no report '{name}'; known reports: {known}", err=True)
        sys.exit(2)
    with app.app_context():
        sm = app.appbuilder.sm
        user = sm.find_user(username=as_user) if as_user else None
        if as_user and user is None:
            click.echo(f"Error: --as {as_user}: there is no such user", err=True)
            sys.exit(2)
        reader = Reader(state.models, app.appbuilder.session, user, sm.user_model, lang,
                        ZoneInfo(app.config["CRM_TIMEZONE"]),
                        int(app.config.get("CRM_REPORT_ROW_LIMIT") or DEFAULT_ROW_LIMIT))
        try:
            result = run_report(reader, state.reports.reports[name], given)
            body = (render_report_xlsx(result, app.config["CRM_COMPANY_NAME"]) if suffix == ".xlsx" else
                    render_report_pdf(result, app.config.get("CRM_PDF_FONT"), app.config["CRM_COMPANY_NAME"],
                                      app.config.get("CRM_COMPANY_LOGO")))
        except ParamError as exc:
            click.echo(f"Error: {exc.text(lang)}", err=True)
            sys.exit(2)
        except ReportRefused as exc:
            click.echo(f"Error: {exc.text(lang)}", err=True)
            sys.exit(1)
        except FontMissing as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    Path(output).write_bytes(body)
    click.echo(f"Wrote {output} ({len(body):,} bytes): {result.title}")


def _acting_user(app: Any, as_user: str | None) -> Any:
    """Return the login a command acts as: --as USER, else the first admin; exit 2 naming a missing one."""
    sm = app.appbuilder.sm
    name = as_user or app.config["CRM_ADMIN_USERNAME"]
    user = sm.find_user(username=name)
    if user is None:
        click.echo(f"Error: --as {name}: there is no such user", err=True)
        sys.exit(2)
    return user


def _known_table(app: Any, table: str) -> None:
    schema = app.extensions["crm"].schema
    if not any(t.key == table for t in schema.tables):
        known = ", ".join(t.key for t in schema.tables)
        click.echo(f"Error: there is no table '{table}'; tables: {known}", err=True)
        sys.exit(2)


@main.command("import")
@click.argument("table")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check every row and report what would happen; write nothing.")
@click.option("--mode", type=click.Choice(["insert", "upsert"]), default="insert", show_default=True)
@click.option("--key", metavar="FIELD", help="upsert: the unique field (or id) that finds existing records.")
@click.option("--as", "as_user", metavar="USER", help="Import as this login (default: the first admin).")
@click.option("--allow-duplicates", is_flag=True, help="Import rows flagged as likely duplicates too.")
@click.option("--confirm-rules", is_flag=True, help="Pass the warnings of the record rules (refusals still refuse).")
@click.option("--errors", "errors_file", type=click.Path(dir_okay=False),
              help="When there are problems, write the file back with them marked (FILE.xlsx).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def import_file(table: str, file: str, dry_run: bool, mode: str, key: str | None, as_user: str | None,
                allow_duplicates: bool, confirm_rules: bool, errors_file: str | None, lang: str) -> None:
    """Import FILE (.xlsx or .csv) into TABLE: every row or none; exit 1 listing every problem."""
    from app.security.acting import acting_as
    from app.transfer.errorbook import render_error_book
    from app.transfer.importer import Importer, ImportRequest
    app = _create_app()
    _known_table(app, table)
    data = Path(file).read_bytes()
    max_bytes = int(app.config["CRM_IMPORT_MAX_MB"]) << 20
    request = ImportRequest(table, Path(file).name, data, mode=mode, key=key, dry_run=dry_run,
                            allow_duplicates=allow_duplicates, confirm_rules=confirm_rules, lang=lang,
                            max_bytes=max_bytes)
    with app.app_context():
        user = _acting_user(app, as_user)
        with acting_as(app, user, lang):
            def progress(phase: str, done: int, total: int) -> None:
                if total >= 2000:
                    what = "checked" if phase == "check" else "written"
                    click.echo(f"  {done:,} / {total:,} rows {what}", err=True)
            result = Importer(app.extensions["crm"].models, app.appbuilder.session, app.appbuilder.sm.user_model,
                              request, progress=progress).run()
    for note in result.notes:
        click.echo(f"note: {note.text(lang)}")
    for flagged in result.duplicates:
        click.echo(f"likely duplicate: {flagged.text(lang)}")
    counts = result.counts
    summary = (f"{counts['insert']} to insert, {counts['update']} to update, {counts['unchanged']} unchanged")
    if result.problems:
        for problem in result.all_problems():
            click.echo(problem.text(lang), err=True)
        if errors_file:
            Path(errors_file).write_bytes(render_error_book(Path(file).name, data, result, max_bytes, lang))
            click.echo(f"Wrote {errors_file} with the problems marked", err=True)
        click.echo(f"Nothing was imported: {len(result.problems)} problems.", err=True)
        sys.exit(1)
    if dry_run:
        click.echo(f"Dry run, nothing written: {summary}.")
    else:
        done = summary.replace("to insert", "inserted").replace("to update", "updated")
        click.echo(f"Imported {file} as batch {result.batch_id}: {done}.")


@main.command("export")
@click.argument("table")
@click.option("-o", "--output", type=click.Path(dir_okay=False), required=True, help="FILE.xlsx or FILE.csv")
@click.option("--template", is_flag=True, help="Write the import template of TABLE instead of its rows.")
@click.option("--filter", "filters", multiple=True, metavar="FIELD=VALUE", help="Only rows whose field has VALUE.")
@click.option("--as", "as_user", metavar="USER", help="Export as this login sees it (default: the first admin).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def export_file(table: str, output: str, template: bool, filters: tuple[str, ...], as_user: str | None,
                lang: str) -> None:
    """Export TABLE's rows (or its import template) as the user may see them."""
    from app.security.acting import acting_as
    from app.security.gate import field_access
    from app.transfer.export import ExportRefused, ExportRequest, export_table
    from app.transfer.filters import FilterProblem, cli_conditions
    from app.transfer.template import render_template
    suffix = Path(output).suffix.lower().lstrip(".")
    if suffix not in ("xlsx", "csv") or (template and suffix != "xlsx"):
        click.echo(f"Error: -o {output}: write a .xlsx{'' if template else ' or .csv'} file", err=True)
        sys.exit(2)
    app = _create_app()
    _known_table(app, table)
    state = app.extensions["crm"]
    with app.app_context():
        user = _acting_user(app, as_user)
        with acting_as(app, user, lang):
            if template:
                Path(output).write_bytes(render_template(state.schema, table, field_access(state.schema, table, user),
                                                         lang))
                click.echo(f"Wrote the import template of {table} to {output}")
                return
            try:
                where = cli_conditions(state.models, table, filters)
                with open(output, "wb") as out:
                    result = export_table(state.models, app.appbuilder.session, ExportRequest(
                        table, suffix, lang, where, described="; ".join(filters)), out)
            except (FilterProblem, ExportRefused) as exc:
                Path(output).unlink(missing_ok=True)
                click.echo(f"Error: {exc.text(lang)}", err=True)
                sys.exit(2)
    click.echo(f"Wrote {result.rows:,} rows of {table} to {output}")


@main.group()
def imports() -> None:
    """Import batches: list them, revert one."""


@imports.command("list")
@click.option("--as", "as_user", metavar="USER", help="The batches this login may see (default: the first admin).")
def imports_list(as_user: str | None) -> None:
    """Print the newest import batches: id, when, who, table, file, counts, status."""
    from app.security.acting import acting_as
    from app.transfer.batches import visible_batches
    app = _create_app()
    with app.app_context():
        with acting_as(app, _acting_user(app, as_user)):
            batches = visible_batches(app.extensions["crm"].models, app.appbuilder.session)
    for b in batches:
        click.echo(f"{b.id:>5}  {b.at:%Y-%m-%d %H:%M}  {b.username:<12} {b.table:<12} {b.file_name}  "
                   f"+{b.inserted} ~{b.updated} ={b.unchanged}  {b.status}")


@imports.command("revert")
@click.argument("batch", type=int)
@click.option("--as", "as_user", metavar="USER", help="Revert as this login (default: the first admin).")
def imports_revert(batch: int, as_user: str | None) -> None:
    """Revert import BATCH: delete what it inserted, set back what it updated; refused if any changed since."""
    from app.security.acting import acting_as
    from app.transfer.batches import RevertRefused, revert_batch
    app = _create_app()
    state = app.extensions["crm"]
    with app.app_context():
        with acting_as(app, _acting_user(app, as_user)):
            try:
                done = revert_batch(state.models, app.appbuilder.session, state.keyring, batch)
            except RevertRefused as exc:
                click.echo(f"Not reverted:\n{exc.text('zh')}", err=True)
                sys.exit(1)
    click.echo(f"Reverted batch {done.id} ({done.file_name}): {done.inserted} records deleted, {done.updated} set back")


@main.group()
def reminders() -> None:
    """Reminders (schema/reminders.yaml): list a user's due items, run the daily digest by hand."""


@reminders.command("list")
@click.option("--as", "as_user", metavar="USER", help="Whose items (default: the first admin).")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
def reminders_list(as_user: str | None, lang: str) -> None:
    """Print a user's due items, overdue first: when, reminder, message, record."""
    from app.automation.digest import today_in
    from app.automation.reminders import due_items
    app = _create_app()
    with app.app_context():
        user = _acting_user(app, as_user)
        items = due_items(app.extensions["crm"].models, app.appbuilder.session, user, today_in(app).date())
        for item in items:
            click.echo(f"{item.due_on}  {item.when(lang):<12} {item.reminder.label.text(lang)}: "
                       f"{item.message.text(lang)}  [{item.table.key} #{item.record_id}]")
    click.echo(f"{len(items)} due" if lang == "en" else f"共 {len(items)} 项")


@reminders.command("run")
@click.option("--dry-run", is_flag=True, help="Say what would be sent to whom; send and record nothing.")
def reminders_run(dry_run: bool) -> None:
    """Send today's digest now: each user's due items not sent yet, by e-mail and chat robot. Nothing
    already sent goes out again (the scheduled run of the day still runs, for anything new)."""
    from app.automation.digest import Digest, today_in
    app = _create_app()
    with app.app_context():
        report = Digest(app, today_in(app).date(), dry_run=dry_run).run()
    for planned in report.planned:
        click.echo(f"would send {planned}")
    for where, why in sorted(report.failed.items()):
        click.echo(f"failed: {where}: {why}", err=True)
    click.echo(f"Dry run: {len(report.planned)} messages" if dry_run
               else f"Reminders of {report.day}: {report.summary()}")
    if report.failed:
        sys.exit(1)


@main.group()
def keys() -> None:
    """Encryption keys of the encrypted fields: add one, rotate to it, check every value."""


@keys.command("new")
def keys_new() -> None:
    """Add a new first key (it encrypts from now on; the others still decrypt). Then run 'crm keys rotate'."""
    from app.crypto import KEY_FILE, KEYS_SETTING, load_keyring, new_key, write_key_file
    from app.settings import load_config
    settings = load_config()
    key = new_key()
    if settings.get("CRM_ENCRYPTION_KEYS"):
        click.echo(f"{KEYS_SETTING} is set, so the key file is not used. Put this key first in it, keep the "
                   f"others after it, restart, then run 'crm keys rotate':\n{key.text()}")
        return
    folder = Path(settings["CRM_INSTANCE_DIR"])
    ring = load_keyring(None, folder, create=True)
    write_key_file(folder / KEY_FILE, [key, *ring.keys])
    click.echo(f"Added key {key.id} first in {folder / KEY_FILE} (keys: {', '.join(k.id for k in [key, *ring.keys])}). "
               "Restart the panel, then run 'crm keys rotate'.")


@keys.command("rotate")
def keys_rotate() -> None:
    """Re-encrypt every value under the first key, in batches; safe to run again after an interruption."""
    from app.security.keys import check_files, check_values, rotate_files, rotate_values
    app = _create_app()
    state = app.extensions["crm"]
    with app.app_context():
        engine = state.db.engine
    uploads = Path(app.config["UPLOAD_FOLDER"])
    report = rotate_values(engine, state.models, state.keyring, progress=click.echo)
    rotate_files(engine, state.models, state.keyring, uploads, report, progress=click.echo)
    after = check_values(engine, state.models, state.keyring)
    check_files(engine, state.models, state.keyring, uploads, after)
    click.echo(f"Re-encrypted {report.rewritten:,} values under key {state.keyring.primary.id}.")
    for key in state.keyring.keys[1:]:
        if after.audit_keys.get(key.id):
            click.echo(f"Keep key {key.id}: {after.audit_keys[key.id]:,} values in the audit log are sealed with it "
                       "(the log is never rewritten, so they cannot move to the new key).")
    old = [k.id for k in state.keyring.keys[1:] if not after.per_key.get(k.id) and not after.audit_keys.get(k.id)]
    if old:
        click.echo(f"No value uses {', '.join(old)} any more: remove {'it' if len(old) == 1 else 'them'} from the "
                   "keys once your backups no longer need it.")
    for line in report.failures:
        click.echo(f"  not rotated: {line}", err=True)
    sys.exit(1 if report.failures else 0)


@keys.command("check")
def keys_check() -> None:
    """Decrypt every encrypted value; list those that do not decrypt (exit 1 when any)."""
    from app.security.keys import check_files, check_values
    app = _create_app()
    state = app.extensions["crm"]
    with app.app_context():
        report = check_values(state.db.engine, state.models, state.keyring)
        check_files(state.db.engine, state.models, state.keyring, Path(app.config["UPLOAD_FOLDER"]), report)
    counts = ", ".join(f"{count:,} under key {key}" for key, count in sorted(report.per_key.items())) or "no values"
    click.echo(f"Encrypted values that decrypt: {counts}.")
    if report.audit_keys:
        sealed = ", ".join(f"{count:,} under key {key}" for key, count in sorted(report.audit_keys.items()))
        click.echo(f"Sealed values in the audit log that decrypt: {sealed}.")
    for line in report.failures:
        click.echo(f"  does not decrypt: {line}", err=True)
    if report.failures:
        click.echo(f"{len(report.failures)} values do not decrypt.", err=True)
        sys.exit(1)


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="The backup file (default: "
              "instance/backups/crm-<date>-<time>.crmbak).")
@click.option("--keep", type=click.IntRange(min=1), help="Afterwards keep only the newest N backups in that folder.")
@click.option("--every", type=click.FloatRange(min=0.01), metavar="HOURS",
              help="Keep running and make a backup every HOURS hours (with --keep, a rolling set).")
@click.option("--verify", "verify_file", type=click.Path(exists=True, dir_okay=False),
              help="Do not back up: restore FILE into a scratch database and compare every table.")
def backup(output: str | None, keep: int | None, every: float | None, verify_file: str | None) -> None:
    """Write an encrypted backup of the database, the uploaded files and the schema; or verify one."""
    import time

    from app.backup.jobs import default_backup_path, make_backup, prune, verify_backup
    settings, ring = _settings_and_keys()
    if verify_file:
        _run_backup_job(lambda: verify_backup(settings["CRM_DATABASE_URL"], ring, Path(verify_file)),
                        lambda r: f"{verify_file}: sound — {r.tables} tables, {r.rows:,} rows restored in a "
                                  f"scratch database and identical to the backup, {r.files} files.")
        return
    folder = Path(output).parent if output else Path(settings["CRM_INSTANCE_DIR"]) / "backups"
    while True:
        target = Path(output) if output else default_backup_path(folder)
        _run_backup_job(lambda target=target: make_backup(settings["CRM_DATABASE_URL"], ring,
                                                          Path(settings["CRM_SCHEMA_DIR"]),
                                                          Path(settings["UPLOAD_FOLDER"]), target),
                        lambda r: f"Wrote {r.path} ({r.size:,} bytes): {r.tables} tables, {r.rows:,} rows, "
                                  f"{r.files} files, encrypted with key {ring.primary.id}.")
        for old in prune(folder, keep) if keep else []:
            click.echo(f"Removed the old backup {old}")
        if not every:
            return
        time.sleep(every * 3600)


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def restore(file: str) -> None:
    """Restore a backup into the empty database CRM_DATABASE_URL names (and its files into uploads)."""
    import datetime

    from app.backup.jobs import restore_backup
    settings, ring = _settings_and_keys()
    schema_copy = Path(settings["CRM_INSTANCE_DIR"]) / f"restored-schema-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    _run_backup_job(lambda: restore_backup(settings["CRM_DATABASE_URL"], ring, Path(file),
                                           Path(settings["UPLOAD_FOLDER"]), schema_copy),
                    lambda r: f"Restored {file}: {r.tables} tables, {r.rows:,} rows (every table checked against "
                              f"the backup), {r.files} files. The backup's schema is in {schema_copy}; "
                              "use it as CRM_SCHEMA_DIR if yours differs.")


def _settings_and_keys() -> tuple[dict[str, Any], Any]:
    from app.dbsync.connect import check_database
    from app.settings import load_config
    settings = load_config()
    check_database(settings["CRM_DATABASE_URL"])  # before a key file is made
    return settings, _keyring(settings)


def _keyring(settings: dict[str, Any]) -> Any:
    """Return the encryption keys of these settings; exit 1 naming the problem when they are wrong."""
    from app.crypto import keyring_for
    try:
        return keyring_for(settings)
    except KeyProblem as exc:
        click.echo(f"Encryption keys: {exc}", err=True)
        sys.exit(1)


def _run_backup_job(job: Any, success: Any) -> None:
    """Run a backup, restore or verify; print its result, or the reason it failed and exit 1."""
    from app.backup.container import BackupUnreadable
    from app.backup.restore import RestoreRefused
    try:
        report = job()
    except (BackupUnreadable, RestoreRefused, SchemaError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1)
    click.echo(success(report))


@main.group()
def audit() -> None:
    """The audit log of changes, reveals, imports and schema changes."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the hash chain of the audit log; list every entry that was changed, removed or added."""
    from app.audit.log import HEAD_TABLE, verify
    app = _create_app()
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        count, problems = verify(conn)
        last = conn.execute(sa.select(HEAD_TABLE.c.last_hash).where(HEAD_TABLE.c.id == 1)).scalar()
    for line in problems:
        click.echo(f"  {line}", err=True)
    if problems:
        click.echo(f"Audit log: {count:,} entries, {len(problems)} problems: it was tampered with.", err=True)
        sys.exit(1)
    click.echo(f"Audit log: {count:,} entries, the chain is intact. Last hash: {last}")


@main.group()
def user() -> None:
    """Manage login users."""


def schema_role_keys() -> list[str]:
    """Return the roles a user can be given: admin and those of the configured schema's roles.yaml."""
    from app.settings import load_config
    try:
        return ["admin", *load_schema(load_config()["CRM_SCHEMA_DIR"]).roles]
    except (SchemaError, OSError, KeyError):
        return ["admin"]


class RoleOption(click.Option):
    """--role, whose help names the roles the schema declares (read when the help is shown)."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        self.help = "One of: " + ", ".join(schema_role_keys()) + " (admin and the roles of schema/roles.yaml)."
        return super().get_help_record(ctx)


@user.command("add")
@click.argument("name")
@click.option("--role", required=True, cls=RoleOption)
@click.option("--password", help="At least 10 characters, not a common one; asked for when omitted.")
@click.option("--email", default="", help="Defaults to NAME@localhost.")
@click.option("--last-name", default="", help="Family name (姓), e.g. 张.")
@click.option("--first-name", default="", help="Given name (名), e.g. 伟.")
def user_add(name: str, role: str, password: str | None, email: str, last_name: str, first_name: str) -> None:
    """Add a login user with one role."""
    from app.security.users import UserError, add_user
    app = _create_app()
    if password is None:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with app.app_context():
        try:
            add_user(app.appbuilder, name, role, password, first_name=first_name, last_name=last_name, email=email)
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
    click.echo(f"Added user '{name}' with role '{role}'.")


@user.command("password")
@click.argument("name")
@click.option("--password", help="At least 10 characters, not a common one; asked for when omitted.")
def user_password(name: str, password: str | None) -> None:
    """Set a user's password; their sessions and API tokens end."""
    from app.security.users import UserError, check_password
    app = _create_app()
    if password is None:
        password = click.prompt("New password", hide_input=True, confirmation_prompt=True)
    with app.app_context():
        sm = app.appbuilder.sm
        found = sm.find_user(username=name)
        if found is None:
            click.echo(f"Error: there is no user '{name}'", err=True)
            sys.exit(1)
        try:
            check_password(app.appbuilder, name, password)
        except UserError as exc:
            click.echo(f"Error: {exc}", err=True)
            sys.exit(1)
        sm.reset_password(found.id, password)
    click.echo(f"Password of '{name}' changed; their sessions and API tokens have ended.")


@user.command("unlock")
@click.argument("name")
def user_unlock(name: str) -> None:
    """Unlock a login locked after too many failed attempts."""
    from app.audit.capture import ACCOUNTS
    from app.audit.log import Entry, append
    app = _create_app()
    with app.app_context():
        found = app.appbuilder.sm.find_user(username=name)
        if found is None:
            click.echo(f"Error: there is no user '{name}'", err=True)
            sys.exit(1)
        from app.web.logins import account_key
        app.extensions["crm_login_guard"].unlock(account_key(name))
        db = app.appbuilder.session
        append(db.connection(), [Entry("unlock", ACCOUNTS.key, found.id, {"by": "(command line)"}, None,
                                       "(command line)")])
        db.commit()
    click.echo(f"Login of '{name}' unlocked.")


if __name__ == "__main__":
    main()
