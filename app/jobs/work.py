"""Starting, running and recovering the jobs: an import (its dry run or the real one) or an export,
run as the user who asked, through the same Importer and export_table as the screens.

An import job ends in one transaction with the data it writes (the job's status is set inside it), so a
worker killed mid-import leaves nothing behind and its job is simply run again; a job that finished
is never run twice.
"""
from __future__ import annotations

import json
import logging
import traceback
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from app.security.acting import acting_as

from .queue import Live, build_queue
from .store import load_job, new_job, set_status, unfinished

log = logging.getLogger(__name__)
MAX_PROBLEMS_KEPT = 1000  # a job keeps this many problems to show; the marked workbook has them all


def jobs_dir(app: Any) -> Path:
    folder = Path(app.config["CRM_INSTANCE_DIR"]) / "jobs"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def engine_of(app: Any) -> sa.Engine:
    """Return the app's engine (Flask-SQLAlchemy hands it out inside an app context only)."""
    with app.app_context():
        engine: sa.Engine = app.extensions["crm"].db.engine
        return engine


def input_path(app: Any, job_id: str) -> Path:
    return jobs_dir(app) / f"{job_id}.input"


class JobQueue:
    """The app's queue and its one task; `enqueue` hands a job to whichever worker is free."""

    def __init__(self, app: Any):
        self.app = app
        self.huey = build_queue(app.config["CRM_JOBS_URL"])
        self.task = self.huey.task(name="crm.run_job", retries=0)(self._run)
        self.recover_task = self.huey.periodic_task(self._every_minute(), name="crm.recover_jobs")(self._recover)
        self.reminders_task = self.huey.periodic_task(self._every_minute(), name="crm.reminders")(self._reminders)

    @staticmethod
    def _every_minute() -> Any:
        from huey import crontab
        return crontab(minute="*")

    def _run(self, job_id: str) -> None:
        run_job(self.app, job_id, Live(self.huey, job_id))

    def _recover(self) -> None:
        recover_jobs(self.app, self)

    def _reminders(self) -> None:
        """Run the day's reminder digest when it is due and no worker has (app.automation.digest)."""
        run_reminders(self.app)

    def enqueue(self, job_id: str) -> None:
        self.task(job_id)

    def live(self, job_id: str) -> Live:
        return Live(self.huey, job_id)


def run_reminders(app: Any) -> str:
    """Run the reminders' tick in an app context of its own; return what it did (logged)."""
    from app.automation.digest import tick
    with app.app_context():
        try:
            done = tick(app)
        finally:
            app.appbuilder.session.remove()
    if done != "nothing to do":
        log.info("reminders: %s", done)
    return done


def start_job(app: Any, kind: str, table: str, user: Any, lang: str, params: dict[str, Any],
              data: bytes | None = None, file_name: str | None = None) -> str:
    """Record a job, keep its input file, queue it; return its id."""
    engine = engine_of(app)
    with engine.begin() as conn:
        job_id = new_job(conn, kind, table, user, lang, file_name, params)
    if data is not None:
        input_path(app, job_id).write_bytes(data)
    app.extensions["crm_jobs"].enqueue(job_id)
    return job_id


def run_job(app: Any, job_id: str, live: Live) -> None:
    """Run one job to its end (done, failed or cancelled); a finished job is left alone."""
    engine = engine_of(app)
    with app.app_context():
        with engine.begin() as conn:
            job = load_job(conn, job_id)
            if job is None or job.finished:
                return
            set_status(conn, job_id, "running", started_at=job.started_at or _now(), attempts=job.attempts + 1)
        live.report("start", 0, 0)
        user = app.appbuilder.sm.get_user_by_id(job.user_id) if job.user_id else None
        try:
            with acting_as(app, user, job.lang):
                if job.kind == "import":
                    run_import_job(app, job, live)
                else:
                    run_export_job(app, job, live)
        except Cancelled:
            app.appbuilder.session.rollback()
            with engine.begin() as conn:
                set_status(conn, job_id, "cancelled")
        except Exception as exc:  # a job's failure is recorded and shown, never lost in a log
            app.appbuilder.session.rollback()
            log.error("job %s failed:\n%s", job_id, traceback.format_exc())
            with engine.begin() as conn:
                set_status(conn, job_id, "failed", result={"error": f"{type(exc).__name__}: {exc}"})
        finally:
            app.appbuilder.session.remove()


class Cancelled(Exception):
    pass


def _now() -> Any:
    from .store import now
    return now()


def run_import_job(app: Any, job: Any, live: Live) -> None:
    from app.transfer.importer import ImportCancelled, Importer, ImportRequest
    state = app.extensions["crm"]
    params = job.params
    data = input_path(app, job.id).read_bytes()
    request = ImportRequest(job.table, job.file_name or "import", data, mode=params.get("mode", "insert"),
                            key=params.get("key"), dry_run=bool(params.get("dry_run")),
                            allow_duplicates=bool(params.get("allow_duplicates")),
                            confirm_rules=bool(params.get("confirm_rules")), lang=job.lang,
                            max_bytes=int(app.config["CRM_IMPORT_MAX_MB"]) << 20)
    session = app.appbuilder.session

    def finish(result: Any) -> None:  # inside the import's transaction: done exactly when the rows are
        set_status(session.connection(), job.id, "done", result=import_summary(result, job.lang))

    importer = Importer(state.models, session, app.appbuilder.sm.user_model, request,
                        progress=lambda phase, done, total: live.report(phase, done, total),
                        cancelled=live.cancelled, before_commit=finish)
    try:
        result = importer.run()
    except ImportCancelled:
        raise Cancelled() from None
    if not result.batch_id:  # a dry run, or problems: nothing was written, the job ends here
        marked = None
        if result.problems:  # the file with its problems marked, to download from the job's page
            from app.transfer.errorbook import render_error_book
            marked = f"{job.id}-errors.xlsx"
            (jobs_dir(app) / marked).write_bytes(render_error_book(request.file_name, data, result, request.max_bytes,
                                                                   job.lang))
        with engine_of(app).begin() as conn:
            set_status(conn, job.id, "done", result=import_summary(result, job.lang), result_file=marked)


def import_summary(result: Any, lang: str) -> dict[str, Any]:
    problems = result.all_problems()
    return {"counts": result.counts, "batch_id": result.batch_id, "dry_run": result.dry_run,
            "problem_count": len(problems), "problems": [p.text(lang) for p in problems[:MAX_PROBLEMS_KEPT]],
            "duplicates": [p.text(lang) for p in result.duplicates[:MAX_PROBLEMS_KEPT]],
            "notes": [p.text(lang) for p in result.notes], "rows": result.rows, "file": result.file,
            "children": result.children}


def run_export_job(app: Any, job: Any, live: Live) -> None:
    from app.transfer.export import ExportCancelled, ExportRequest, export_table
    state = app.extensions["crm"]
    params = job.params
    model = state.models.model(job.table)
    where = [model.id.in_(params["ids"])] if params.get("ids") is not None else []
    fmt = params.get("fmt", "xlsx")
    target = jobs_dir(app) / f"{job.id}.{fmt}"
    try:
        with open(target, "wb") as out:
            result = export_table(state.models, app.appbuilder.session, ExportRequest(
                job.table, fmt, job.lang, where, described=params.get("described", "")), out,
                progress=lambda done, total: live.report("export", done, total), cancelled=live.cancelled)
    except ExportCancelled:
        target.unlink(missing_ok=True)
        raise Cancelled() from None
    with engine_of(app).begin() as conn:
        set_status(conn, job.id, "done", result={"rows": result.rows}, result_file=target.name)


def recover_jobs(app: Any, queue: JobQueue) -> list[str]:
    """Queue again the jobs whose worker died while running them; return their ids."""
    engine = engine_of(app)
    again = []
    with engine.begin() as conn:
        for job_id in unfinished(conn):
            job = load_job(conn, job_id)
            if job is not None and job.status == "running" and queue.live(job_id).stale():
                set_status(conn, job_id, "queued")
                again.append(job_id)
    for job_id in again:
        queue.enqueue(job_id)
    return again


def job_json(app: Any, job_id: str) -> dict[str, Any] | None:
    """Return a job as the progress bar reads it: status, phase, rows done / total, rate, time left."""
    with engine_of(app).connect() as conn:
        job = load_job(conn, job_id)
    if job is None:
        return None
    live = app.extensions["crm_jobs"].live(job_id).progress()
    answer: dict[str, Any] = {"id": job.id, "kind": job.kind, "status": job.status, "table": job.table,
                              "result": job.result, "file": job.file_name}
    answer.update(live.as_json() if live is not None else {"phase": "queued", "done": 0, "total": 0, "percent": 0})
    if job.status == "done":
        answer["percent"] = 100
    return answer


def decoded(value: str | None) -> Any:
    return json.loads(value) if value else None


def jobs_for(app: Any, user: Any, limit: int = 50) -> list[Any]:
    from .store import JOB_TABLE
    with engine_of(app).connect() as conn:
        rows = conn.execute(sa.select(JOB_TABLE.c.id).where(JOB_TABLE.c.user_id == getattr(user, "id", None))
                            .order_by(JOB_TABLE.c.created_at.desc()).limit(limit)).all()
        return [load_job(conn, r.id) for r in rows]
