"""The jobs table: what was asked, by whom, and how it ended (in the panel's database, so every app
server sees it). Live progress lives in the queue's own storage (app.jobs.queue.Live), because on
SQLite the import's open transaction keeps every other writer out of the database until it ends."""
from __future__ import annotations

import datetime
import json
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

JOBS_METADATA = sa.MetaData()
LONG_TEXT = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
STATUSES = ("queued", "running", "done", "failed", "cancelled")

JOB_TABLE = sa.Table(
    "crm_job", JOBS_METADATA,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),  # import | export
    sa.Column("table_key", sa.String(63), nullable=False),
    sa.Column("user_id", sa.Integer, index=True),
    sa.Column("username", sa.String(255)),
    sa.Column("lang", sa.String(8), nullable=False, default="zh"),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("started_at", sa.DateTime),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("file_name", sa.String(255)),
    sa.Column("params", LONG_TEXT),  # JSON: what the job does (mode, key, format, filters ...)
    sa.Column("result", LONG_TEXT),  # JSON: counts, problems, the batch
    sa.Column("result_file", sa.String(255)),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
)


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    table: str
    user_id: int | None
    username: str | None
    lang: str
    status: str
    created_at: datetime.datetime
    started_at: datetime.datetime | None
    finished_at: datetime.datetime | None
    file_name: str | None
    params: dict[str, Any]
    result: dict[str, Any] | None
    result_file: str | None
    attempts: int

    @property
    def finished(self) -> bool:
        return self.status in ("done", "failed", "cancelled")


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None, microsecond=0)


def new_job(conn: sa.Connection, kind: str, table: str, user: Any, lang: str, file_name: str | None,
            params: dict[str, Any]) -> str:
    """Insert a queued job; return its id."""
    job_id = uuid.uuid4().hex
    conn.execute(JOB_TABLE.insert().values(
        id=job_id, kind=kind, table_key=table, user_id=getattr(user, "id", None),
        username=getattr(user, "username", None), lang=lang, status="queued", created_at=now(),
        file_name=file_name, params=json.dumps(params, ensure_ascii=False), attempts=0))
    return job_id


def load_job(conn: sa.Connection, job_id: str) -> Job | None:
    row = conn.execute(sa.select(JOB_TABLE).where(JOB_TABLE.c.id == job_id)).first()
    if row is None:
        return None
    values = dict(row._mapping)
    return Job(id=values["id"], kind=values["kind"], table=values["table_key"], user_id=values["user_id"],
               username=values["username"], lang=values["lang"], status=values["status"],
               created_at=values["created_at"], started_at=values["started_at"], finished_at=values["finished_at"],
               file_name=values["file_name"], params=json.loads(values["params"] or "{}"),
               result=json.loads(values["result"]) if values["result"] else None, result_file=values["result_file"],
               attempts=values["attempts"])


def set_status(conn: sa.Connection, job_id: str, status: str, **values: Any) -> None:
    if "result" in values and not isinstance(values["result"], str):
        values["result"] = json.dumps(values["result"], ensure_ascii=False)
    if status in ("done", "failed", "cancelled"):
        values.setdefault("finished_at", now())
    conn.execute(JOB_TABLE.update().where(JOB_TABLE.c.id == job_id).values(status=status, **values))


def unfinished(conn: sa.Connection) -> list[str]:
    return [r.id for r in conn.execute(sa.select(JOB_TABLE.c.id).where(JOB_TABLE.c.status.in_(("queued", "running")))
                                       .order_by(JOB_TABLE.c.created_at))]
