"""Every applied plan becomes an Alembic revision file under migrations/versions and a history row.

A revision file is in Alembic's format (revision, down_revision, upgrade()) and holds its steps and
the resulting recorded state as data, so that it can be read in review and replayed on another
database: every start runs the files a database has not applied yet, and with
`CRM_SCHEMA_AUTO_APPLY=0` only those. The history table in the database, not the folder, says what a
database has applied: two hosts on one database need not share a folder.

A revision counts as applied only once the database has committed it: its history row and the text
of its file are written in the plan's transaction, and the file itself only after the commit. A
crash before the commit leaves no file (nothing to replay); a crash after it leaves the text in
`crm_schema_files`, from which the next start writes the missing file.
"""
from __future__ import annotations

import contextlib
import datetime
import importlib.util
import json
import pprint
import socket
import sys
import types
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .alembic_files import ensure_alembic_files
from .state import LONG_TEXT, SYSTEM_METADATA, TableState, save_state

HISTORY_TABLE = sa.Table(
    "crm_schema_history", SYSTEM_METADATA,
    sa.Column("revision", sa.String(32), primary_key=True),
    sa.Column("down_revision", sa.String(32)),
    sa.Column("applied_on", sa.DateTime, nullable=False),
    sa.Column("applied_by", sa.String(200), nullable=False),
    sa.Column("summary", LONG_TEXT, nullable=False),
    sa.Column("steps", LONG_TEXT, nullable=False),
    sa.Column("file", sa.String(300)),
)
# A plan being applied: written in the plan's transaction before the first step and removed when it
# commits. PostgreSQL and SQLite roll it back with the plan; on MariaDB, whose DDL commits by itself,
# a row left here after a crash is the plan the next start finishes.
JOURNAL_TABLE = sa.Table(
    "crm_schema_journal", SYSTEM_METADATA,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("started_on", sa.DateTime, nullable=False),
    sa.Column("summary", LONG_TEXT, nullable=False),
    sa.Column("steps", LONG_TEXT, nullable=False),
    sa.Column("state", LONG_TEXT, nullable=False),
)
# The text of each revision file this database applied, written with its history row.
FILES_TABLE = sa.Table(
    "crm_schema_files", SYSTEM_METADATA,
    sa.Column("revision", sa.String(32), primary_key=True),
    sa.Column("file", sa.String(300), nullable=False),
    sa.Column("text", LONG_TEXT, nullable=False),
)
ALEMBIC_VERSION = sa.Table("alembic_version", sa.MetaData(), sa.Column("version_num", sa.String(32), primary_key=True))

FILE_TEMPLATE = '''"""{title}

Revision ID: {revision}
Revises: {down_revision}
Create Date: {created}

Plan:
{plan}
"""
from app.dbsync.revisions import upgrade_revision

revision = {revision!r}
down_revision = {down_revision!r}
branch_labels = None
depends_on = None

STEPS = {steps}

STATE = {state}


def upgrade() -> None:
    from alembic import op

    # Alembic moves alembic_version itself when it runs this file.
    upgrade_revision(op.get_bind(), revision, down_revision, STEPS, STATE, stamp=False)


def downgrade() -> None:
    raise NotImplementedError("schema changes are undone by restoring a backup; see docs/schema-changes.md")
'''


@dataclass
class RevisionFile:
    """A revision file to write once the transaction that recorded it has committed."""

    path: Path
    text: str

    def write(self) -> None:
        """Write the file whole (through a temporary file), unless it is there already."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ensure_alembic_files(self.path.parent.parent)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(self.text, encoding="utf-8")
        tmp.replace(self.path)


@dataclass
class Revision:
    """A revision file as read back: its ids, steps and resulting state."""

    revision: str
    down_revision: str | None
    steps: list[dict[str, Any]]
    state: dict[str, dict[str, Any]]
    path: Path


def applied_revisions(conn: sa.Connection) -> list[dict[str, Any]]:
    """Return the history rows, oldest first."""
    if not sa.inspect(conn).has_table(HISTORY_TABLE.name):
        return []
    query = sa.select(HISTORY_TABLE).order_by(HISTORY_TABLE.c.applied_on, HISTORY_TABLE.c.revision)
    return [dict(r) for r in conn.execute(query).mappings()]


def state_as_data(state: dict[str, TableState]) -> dict[str, dict[str, Any]]:
    return {k: {"fields": s.fields, "retired": s.retired, "table_retired": s.table_retired}
            for k, s in sorted(state.items())}


def state_from_data(data: dict[str, dict[str, Any]]) -> dict[str, TableState]:
    return {k: TableState(v["fields"], v["retired"], v["table_retired"]) for k, v in data.items()}


def start_journal(conn: sa.Connection, steps: list[dict[str, Any]], summary: str,
                  state: dict[str, TableState], started_on: datetime.datetime) -> None:
    """Note the plan about to be applied (see JOURNAL_TABLE)."""
    JOURNAL_TABLE.create(conn, checkfirst=True)
    conn.execute(JOURNAL_TABLE.insert().values(
        started_on=started_on, summary=summary,
        steps=json.dumps(steps, ensure_ascii=False, default=str),
        state=json.dumps(state_as_data(state), ensure_ascii=False)))


def end_journal(conn: sa.Connection) -> None:
    conn.execute(JOURNAL_TABLE.delete())


@dataclass
class Interrupted:
    """A plan a crash interrupted, as its journal row holds it."""

    steps: list[dict[str, Any]]
    summary: str
    state: dict[str, TableState]
    started_on: datetime.datetime


def interrupted_plans(conn: sa.Connection) -> list[Interrupted]:
    """Return the plans a crash interrupted, oldest first."""
    if not sa.inspect(conn).has_table(JOURNAL_TABLE.name):
        return []
    rows = conn.execute(sa.select(JOURNAL_TABLE).order_by(JOURNAL_TABLE.c.id)).mappings().all()
    return [Interrupted(json.loads(r["steps"]), r["summary"], state_from_data(json.loads(r["state"])), r["started_on"])
            for r in rows]


def new_revision_id(now: datetime.datetime) -> str:
    """Return an id that sorts in the order revisions are made: time to the microsecond, then random."""
    return f"{now:%Y%m%d%H%M%S%f}_{uuid.uuid4().hex[:8]}"


def record_revision(conn: sa.Connection, folder: Path | None, steps: list[dict[str, Any]], summary: str,
                    state: dict[str, TableState]) -> tuple[str, RevisionFile | None]:
    """Add the history row and (when `folder` is set) the file's text, in the caller's transaction;
    return (id, the file to write once that transaction has committed)."""
    now = datetime.datetime.now()
    history = applied_revisions(conn)
    down = history[-1]["revision"] if history else None
    revision = new_revision_id(now)
    now = now.replace(microsecond=0)
    file = revision_file(folder, revision, down, now, steps, summary, state) if folder else None
    insert_history(conn, revision, down, now, summary, steps, file.path if file else None)
    if file:
        FILES_TABLE.create(conn, checkfirst=True)
        conn.execute(FILES_TABLE.insert().values(revision=revision, file=str(file.path)[-300:], text=file.text))
    return revision, file


def missing_files(conn: sa.Connection, folder: Path | None) -> list[RevisionFile]:
    """Return the files of revisions this database committed into `folder` that the folder lacks
    (a crash came between the commit and the writing of the file)."""
    if folder is None or not sa.inspect(conn).has_table(FILES_TABLE.name):
        return []
    found = []
    for row in conn.execute(sa.select(FILES_TABLE.c.file, FILES_TABLE.c.text)):
        # by name: the folder may have moved since (a new release directory), or its path been cut
        path = folder / "versions" / Path(row.file).name
        if not path.exists():
            found.append(RevisionFile(path, row.text))
    return found


def insert_history(conn: sa.Connection, revision: str, down: str | None, now: datetime.datetime, summary: str,
                   steps: list[dict[str, Any]], path: Path | None, stamp: bool = True) -> None:
    """Add the history row and (with `stamp`) move alembic_version to `revision`."""
    HISTORY_TABLE.create(conn, checkfirst=True)
    conn.execute(HISTORY_TABLE.insert().values(
        revision=revision, down_revision=down, applied_on=now, summary=summary,
        applied_by=f"{socket.gethostname()}"[:200], steps=json.dumps(steps, ensure_ascii=False, default=str),
        file=str(path)[-300:] if path else None))
    if not stamp:
        return
    ALEMBIC_VERSION.create(conn, checkfirst=True)
    conn.execute(ALEMBIC_VERSION.delete())
    conn.execute(ALEMBIC_VERSION.insert().values(version_num=revision))


def revision_file(folder: Path, revision: str, down: str | None, now: datetime.datetime,
                  steps: list[dict[str, Any]], summary: str, state: dict[str, TableState]) -> RevisionFile:
    """Return migrations/versions/<id>_<words>.py and its text (not written yet)."""
    versions = folder / "versions"
    lines = summary.splitlines()
    title = lines[0].lstrip("+~-! ") if len(lines) == 1 else f"{len(lines)} schema changes"
    slug = "".join(c if c.isalnum() else "_" for c in title.lower())[:40].strip("_")
    path = versions / f"{revision}_{slug}.py"
    state_data = state_as_data(state)
    text = FILE_TEMPLATE.format(
        title=title, revision=revision, down_revision=down, created=now.isoformat(sep=" "),
        plan="\n".join(f"    {line}" for line in lines), steps=pprint.pformat(steps, width=110, sort_dicts=False),
        state=pprint.pformat(state_data, width=110))
    return RevisionFile(path, text)


@contextlib.contextmanager
def names_of_the_old_package() -> Iterator[None]:
    """Let revision files written before the package moved from crm/ to app/ run unchanged: they
    import `from crm.dbsync.revisions import upgrade_revision`, and they are the operator's records of
    what was applied, never rewritten. The old names point here only while a file is read."""
    added = [name for name in ("crm", "crm.dbsync", "crm.dbsync.revisions") if name not in sys.modules]
    for name in added:
        sys.modules[name] = sys.modules[__name__] if name == "crm.dbsync.revisions" else types.ModuleType(name)
    try:
        yield
    finally:
        for name in added:
            sys.modules.pop(name, None)


def read_revision_files(folder: Path) -> list[Revision]:
    """Return the revision files of `folder`, in order (each after the one it revises)."""
    found: dict[str, Revision] = {}
    for path in sorted((folder / "versions").glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"crm_revision_{path.stem}", path)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        with names_of_the_old_package():
            spec.loader.exec_module(module)
        found[module.revision] = Revision(module.revision, module.down_revision, module.STEPS, module.STATE, path)
    ordered: list[Revision] = []
    done: set[str] = set()
    while len(ordered) < len(found):
        ready = [r for r in found.values() if r.revision not in done and (r.down_revision in done or
                                                                            r.down_revision not in found)]
        if not ready:
            raise ValueError(f"{folder / 'versions'}: revisions revise each other in a circle")
        for rev in sorted(ready, key=lambda r: r.revision):
            ordered.append(rev)
            done.add(rev.revision)
    return ordered


def pending_revisions(conn: sa.Connection, folder: Path | None) -> list[Revision]:
    """Return the revision files this database has not applied yet."""
    if folder is None or not (folder / "versions").is_dir():
        return []
    applied = {row["revision"] for row in applied_revisions(conn)}
    return [r for r in read_revision_files(folder) if r.revision not in applied]


def upgrade_revision(conn: sa.Connection, revision: str, down_revision: str | None,
                     steps: list[dict[str, Any]], state: dict[str, dict[str, Any]], path: Path | None = None,
                     export_dir: Path | None = None, stamp: bool = True) -> None:
    """Apply one revision's steps, record its state and history (used by replay and by Alembic)."""
    from .apply import Applier

    if revision in {row["revision"] for row in applied_revisions(conn)}:
        return
    Applier(conn, export_dir).apply(steps)
    save_state(conn, state_from_data(state))
    summary = "\n".join(s["words"] for s in steps)
    insert_history(conn, revision, down_revision, datetime.datetime.now().replace(microsecond=0), summary, steps, path,
                   stamp)
