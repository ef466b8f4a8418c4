"""Bring the database in line with the schema: replay revision files, plan, check, apply, record.

Used by start-up (`crm run`, create_app) and by `crm schema plan|apply`. A plan is applied whole or
not at all: when it holds a step that needs review, start-up refuses and names the command to run.
"""
from __future__ import annotations

import datetime
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import flask_appbuilder.security.sqla.models  # noqa: F401  (puts ab_user in Model.metadata)
import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from flask_appbuilder import Model

from app.audit.log import Entry, append, ensure_audit_tables
from app.schema.model import SchemaSpec
from app.security.login_state import ensure_login_tables

from .apply import USER_TABLE, Applier
from .ids import never_reuse_ids
from .lock import locked_connection
from .plan import Plan, Step, plan_schema
from .revisions import (
    FILES_TABLE,
    Interrupted,
    RevisionFile,
    end_journal,
    interrupted_plans,
    missing_files,
    pending_revisions,
    record_revision,
    start_journal,
    upgrade_revision,
)
from .rows import using_keyring
from .state import load_state, save_state

TMP_PREFIX = "_alembic_tmp_"


class SchemaChangesPending(Exception):
    """The plan has steps that may not be applied now; str() says which and what to run."""

    def __init__(self, message: str, plan: Plan):
        super().__init__(message)
        self.plan = plan


@dataclass
class SyncResult:
    applied: list[Step] = field(default_factory=list)
    replayed: list[str] = field(default_factory=list)
    revision: str | None = None
    revision_file: Path | None = None
    backups: list[str] = field(default_factory=list)
    exports: list[Path] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)
    files: list[RevisionFile] = field(default_factory=list)  # written once the sync has committed

    def write_files(self) -> None:
        """Write the revision files of what the database committed."""
        for file in self.files:
            file.write()

    def report(self) -> str:
        """Return what was done, for start-up and `crm schema apply` to print."""
        lines = [f"replayed revision {r}" for r in self.replayed]
        lines += [f"removed {name}, left over from an interrupted change" for name in self.cleaned]
        lines += [f"finished an interrupted change:\n{indent(summary)}" for summary in self.resumed]
        lines += [step.words for step in self.applied]
        if self.revision:
            where = f" ({self.revision_file})" if self.revision_file else ""
            lines.append(f"recorded as revision {self.revision}{where}")
        lines += [f"backup of the rows before the change: table {name}" for name in self.backups]
        lines += [f"data written before dropping: {path}" for path in self.exports]
        return "\n".join(lines)


def create_system_tables(conn: sa.Connection, others: Sequence[sa.MetaData] = ()) -> None:
    """Create Flask-AppBuilder's tables (users are link targets), the audit log and the login
    counters, and the tables of `others` (the jobs); login accounts, too, never reuse a deleted
    account's id."""
    users = Model.metadata.tables[USER_TABLE]
    users.dialect_options["sqlite"]["autoincrement"] = True
    Model.metadata.create_all(conn)
    ensure_audit_tables(conn)
    ensure_login_tables(conn)
    FILES_TABLE.create(conn, checkfirst=True)  # so that a restore finds it with its long text column
    for metadata in others:
        metadata.create_all(conn, checkfirst=True)
    never_reuse_ids(conn, Operations(MigrationContext.configure(conn)), USER_TABLE, USER_TABLE)


def plan_changes(url: str, schema: SchemaSpec, folder: Path | None,
                 resolutions: dict[str, str] | None = None, ring: Any = None) -> tuple[Plan, list[str]]:
    """Return (plan, ids of revision files not yet applied) without changing anything.

    `ring` holds the encryption keys, needed where a change reads or writes encrypted values.
    """
    with using_keyring(ring), locked_connection(url) as conn:
        pending = [r.revision for r in pending_revisions(conn, folder)]
        plan = plan_schema(conn, schema, resolutions)
        conn.rollback()
    return plan, pending


def sync_schema(url: str, schema: SchemaSpec, folder: Path | None, *, auto_apply: bool = True,
                include_review: bool = False, resolutions: dict[str, str] | None = None,
                confirm: Callable[[Plan], bool] | None = None, export_dir: Path | None = None,
                ring: Any = None, system_tables: Sequence[sa.MetaData] = ()) -> SyncResult:
    """Apply what the schema needs, under the schema lock, in one transaction; return what was done.

    Raises SchemaChangesPending when steps need review (and `include_review` is off), are refused
    by the rows, or when `auto_apply` is off and the YAML asks for more than the revision files.
    """
    result = SyncResult()
    with using_keyring(ring), locked_connection(url) as conn:
        create_system_tables(conn, system_tables)
        result.files = missing_files(conn, folder)
        result.cleaned = clean_interrupted(conn)
        result.resumed = finish_interrupted(conn, folder, export_dir, result)
        for rev in pending_revisions(conn, folder):
            upgrade_revision(conn, rev.revision, rev.down_revision, rev.steps, rev.state, rev.path, export_dir)
            result.replayed.append(rev.revision)
        plan = plan_schema(conn, schema, resolutions)
        refuse_if_needed(plan, auto_apply, include_review)
        if plan.review and confirm is not None and not confirm(plan):
            raise SchemaChangesPending("nothing was changed", plan)
        if plan.steps:
            steps = [step_data(s) for s in plan.steps]
            applier = apply_recorded(conn, folder, export_dir, steps, plan.text_words(), plan.state, result)
            result.applied, result.backups = plan.steps, applier.backups
            append(conn, [Entry("schema", changes={"revision": result.revision,
                                                   "steps": [s.words for s in plan.steps]},
                                username="(schema sync)")])
        elif load_state(conn) != plan.state:
            save_state(conn, plan.state)  # first start of a database made before states were recorded
    result.write_files()
    return result


def drop_retired(url: str, schema: SchemaSpec, folder: Path | None, export_dir: Path,
                 confirm: Callable[[list[Step]], bool] | None = None) -> SyncResult:
    """Export, then drop, every retired column and table; return what was done.

    Raises SchemaChangesPending when the database is not in line with the schema yet.
    """
    result = SyncResult()
    with locked_connection(url) as conn:
        result.files = missing_files(conn, folder)
        plan = plan_schema(conn, schema)
        if plan.steps or pending_revisions(conn, folder):
            raise SchemaChangesPending("the database has schema changes pending; apply them first:\n"
                                       + indent(plan.text()), plan)
        state = load_state(conn)
        steps = retired_steps(state)
        if not steps or (confirm is not None and not confirm(steps)):
            return result
        for table_state in state.values():
            table_state.retired.clear()
        state = {k: v for k, v in state.items() if not v.table_retired}
        summary = "\n".join(s.words for s in steps)
        applier = apply_recorded(conn, folder, export_dir, [step_data(s) for s in steps], summary, state, result)
        result.applied, result.exports = steps, applier.exports
    result.write_files()
    return result


def retired_steps(state: dict[str, Any]) -> list[Step]:
    """Return a drop step for every retired table and every retired column of a kept table."""
    steps = []
    for key, table_state in sorted(state.items()):
        if table_state.table_retired:
            steps.append(Step("drop_table", key, None, f"x drop retired table {key} (its rows are exported first)",
                              review=True))
            continue
        for field_key, before in sorted(table_state.retired.items()):
            steps.append(Step("drop_column", key, field_key, f"x drop retired column {key}.{field_key} "
                              "(its values are exported first)", review=True, data={"field": before}))
    return steps


def apply_recorded(conn: sa.Connection, folder: Path | None, export_dir: Path | None, steps: list[dict[str, Any]],
                   summary: str, state: dict[str, Any], result: SyncResult, resumed: Interrupted | None = None
                   ) -> Applier:
    """Apply steps with a journal, save the new state and record the revision; return the applier.

    The journal, the steps' data, the state and the revision are all in the caller's transaction;
    the revision file is only queued on `result` (written after the commit).
    """
    started = resumed.started_on if resumed else datetime.datetime.now().replace(microsecond=0)
    start_journal(conn, steps, summary, state, started)
    # A resumed plan keeps its first start's backup names: the backups it made are not made again.
    applier = Applier(conn, export_dir, backup_stamp=f"{started:%Y%m%d%H%M%S}", resuming=resumed is not None)
    try:
        applier.apply(steps)
    except Exception:
        if conn.dialect.name in ("mysql", "mariadb"):
            # The steps that ran are committed (MariaDB's DDL commits itself). The journal is for
            # crashes; after an error the next start plans again from what is there.
            conn.rollback()
            end_journal(conn)
            conn.commit()
        raise
    save_state(conn, state)
    result.revision, file = record_revision(conn, folder, steps, summary, state)
    if file:
        result.revision_file = file.path
        result.files.append(file)
    end_journal(conn)
    return applier


def finish_interrupted(conn: sa.Connection, folder: Path | None, export_dir: Path | None,
                       result: SyncResult) -> list[str]:
    """Finish the plans that a crash interrupted (MariaDB only keeps them); return their summaries."""
    done = []
    for plan in interrupted_plans(conn):
        end_journal(conn)
        finished = SyncResult()
        apply_recorded(conn, folder, export_dir, plan.steps, plan.summary, plan.state, finished, resumed=plan)
        result.files += finished.files
        done.append(plan.summary)
    return done


def step_data(step: Step) -> dict[str, Any]:
    """Return a step as plain data, as stored in revision files and history."""
    data = asdict(step)
    data.pop("blocked")
    return data


def refuse_if_needed(plan: Plan, auto_apply: bool, include_review: bool) -> None:
    if not plan.steps:
        return
    if not auto_apply:
        raise SchemaChangesPending(
            "the schema YAML asks for changes that no reviewed revision makes, and CRM_SCHEMA_AUTO_APPLY=0:\n"
            + indent(plan.text()) + "\nrun 'crm schema apply --review' where changes are made, commit the "
            "revision file it writes under migrations/versions, and deploy it", plan)
    if plan.blocked:
        raise SchemaChangesPending(
            "these schema changes are refused because existing rows do not fit them:\n"
            + indent("\n".join(s.line() for s in plan.blocked)) + "\nnothing was changed; fix the rows, or "
            "choose a resolution with 'crm schema apply --review --resolve TABLE.FIELD=CHOICE'", plan)
    if plan.review and not include_review:
        raise SchemaChangesPending(
            "these schema changes need review and were not applied:\n" + indent("\n".join(
                s.words for s in plan.review)) + "\nnothing was changed; see them with 'crm schema plan' and apply "
            "them with 'crm schema apply --review'", plan)


def indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def clean_interrupted(conn: sa.Connection) -> list[str]:
    """Drop `_alembic_tmp_*` tables that an interrupted SQLite table rebuild left; return their names."""
    names = [n for n in sa.inspect(conn).get_table_names() if n.startswith(TMP_PREFIX)]
    for name in names:
        conn.execute(sa.text(f"DROP TABLE {conn.dialect.identifier_preparer.quote(name)}"))
    return names
