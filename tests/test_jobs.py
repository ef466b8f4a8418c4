"""Background jobs (Huey): a large import or export from the screen runs as a job with real progress,
can be cancelled, and a worker killed in the middle of an import leaves nothing half-written — its job
runs again when a worker starts and then completes, once."""
from __future__ import annotations

import io
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from app.jobs.queue import Live
from app.jobs.store import load_job
from app.jobs.work import job_json, recover_jobs, run_job, start_job
from app.seed import DEMO_PASSWORD, load_demo_data
from conftest import Browser, start_worker


def customers_file(count: int, prefix: str = "任务客户") -> bytes:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append(["公司名称", "客户等级", "城市"])
    for n in range(count):
        sheet.append([f"{prefix}{n:06d}有限公司", "B", "苏州"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def count_customers(app: Any, prefix: str = "任务客户") -> int:
    model = app.extensions["crm"].models.model("customer")
    with app.app_context():
        engine = app.extensions["crm"].db.engine
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(model.__table__)
                                .where(model.__table__.c.name.like(f"{prefix}%"))).scalar() or 0)


def job_of(app: Any, job_id: str) -> Any:
    with app.app_context():
        engine = app.extensions["crm"].db.engine
    with engine.connect() as conn:
        return load_job(conn, job_id)


class Recorded(Live):
    """The live state of a job run in the test, with every report it made kept."""

    def __init__(self, queue: Any, job_id: str):
        super().__init__(queue, job_id)
        self.reports: list[tuple[str, int, int]] = []

    def report(self, phase: str, done: int, total: int) -> None:
        self.reports.append((phase, done, total))
        super().report(phase, done, total)


def run_here(app: Any, job_id: str) -> Recorded:
    live = Recorded(app.extensions["crm_jobs"].huey, job_id)
    run_job(app, job_id, live)
    return live


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app(CRM_JOB_ROWS=50)
    load_demo_data(app, scale=0.02)
    return app


def test_a_large_import_from_the_screen_runs_as_a_job_with_real_progress(demo: Any) -> None:
    browser = Browser(demo, "zhangwei", DEMO_PASSWORD)
    body = customers_file(1200)
    posted = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "大客户名单.xlsx"), "mode": "insert"},
                            content_type="multipart/form-data")
    assert posted.status_code == 302 and "/jobs/" in posted.location
    job_id = posted.location.rstrip("/").rsplit("/", 1)[1]
    page = browser.get(f"/jobs/{job_id}/").text
    assert 'class="progress-bar' in page and "排队中" in page
    live = run_here(demo, job_id)
    checks = [r for r in live.reports if r[0] == "check"]  # rows checked of the 1,200 the sheet says it has
    assert checks == [("check", 500, 1200), ("check", 1000, 1200), ("check", 1200, 1200), ("check", 1200, 1200)]
    assert job_json(demo, job_id)["status"] == "done" and count_customers(demo) == 0  # a dry run first
    page = browser.get(f"/jobs/{job_id}/").text
    assert "检查通过：将新增 1200 条、更新 0 条、0 条不变" in page
    confirmed = browser.submit(f"/jobs/{job_id}/", {}, post_url=f"/jobs/{job_id}/confirm")
    assert confirmed.status_code == 302
    second = confirmed.location.rstrip("/").rsplit("/", 1)[1]
    live = run_here(demo, second)
    writes = [r for r in live.reports if r[0] == "write"]
    assert writes == [("write", 500, 1200), ("write", 1000, 1200), ("write", 1200, 1200), ("write", 1200, 1200)]
    status = browser.get(f"/jobs/{second}/status").json
    assert (status["status"], status["percent"], status["done"], status["total"]) == ("done", 100, 1200, 1200)
    assert status["result"]["counts"]["insert"] == 1200 and count_customers(demo) == 1200
    assert "已导入（第 " in browser.get(f"/jobs/{second}/").text
    other = Browser(demo, "lina", DEMO_PASSWORD)
    assert other.get(f"/jobs/{second}/status").status_code == 404  # another user's job is not theirs to see


def test_a_large_import_with_problems_leaves_the_marked_file_and_only_its_owner_confirms(demo: Any) -> None:
    browser = Browser(demo, "zhangwei", DEMO_PASSWORD)
    body = customers_file(120)
    book = openpyxl.load_workbook(io.BytesIO(body))
    book.worksheets[0]["B40"] = "Z"
    bad = io.BytesIO()
    book.save(bad)
    posted = browser.submit("/t/customer/import/", {"file": (io.BytesIO(bad.getvalue()), "有错.xlsx")},
                            content_type="multipart/form-data")
    job_id = posted.location.rstrip("/").rsplit("/", 1)[1]
    run_here(demo, job_id)
    page = browser.get(f"/jobs/{job_id}/").text
    assert "发现 1 个问题，未导入任何数据" in page and "有错.xlsx!客户!B40: 客户等级: “Z”不是可选项" in page
    marked = browser.get(f"/jobs/{job_id}/download")
    assert "%E6%9C%89%E9%94%99-%E9%94%99%E8%AF%AF%E6%A0%87%E6%B3%A8.xlsx" in marked.headers["Content-Disposition"]
    sheets = openpyxl.load_workbook(io.BytesIO(marked.data)).worksheets
    assert sheets[0]["D40"].value.startswith("有错.xlsx!客户!B40") and sheets[1]["A2"].value == "有错.xlsx!客户!B40"
    good = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "好的.xlsx")},
                          content_type="multipart/form-data")
    checked = good.location.rstrip("/").rsplit("/", 1)[1]
    run_here(demo, checked)
    admin = Browser(demo)
    assert admin.submit("/imports/", {}, post_url=f"/jobs/{checked}/confirm").status_code == 404
    assert count_customers(demo) == 0


def test_a_large_export_runs_as_a_job_and_leaves_its_file_for_download(make_app: Any) -> None:
    demo = make_app(CRM_JOB_ROWS=3)
    load_demo_data(demo, scale=0.02)
    browser = Browser(demo)
    answer = browser.get("/t/follow_up/export/xlsx")
    assert answer.status_code == 302 and "/jobs/" in answer.location
    job_id = answer.location.rstrip("/").rsplit("/", 1)[1]
    live = run_here(demo, job_id)
    assert live.reports[-1][0] == "export" and live.reports[-1][1] == live.reports[-1][2]
    download = browser.get(f"/jobs/{job_id}/download")
    rows = list(openpyxl.load_workbook(io.BytesIO(download.data)).worksheets[0].iter_rows(values_only=True))
    with demo.app_context():
        model = demo.extensions["crm"].models.model("follow_up")
        total = demo.appbuilder.session.execute(sa.select(sa.func.count()).select_from(model)).scalar()
    assert len(rows) - 2 == total == live.reports[-1][2]


def test_a_cancelled_import_writes_nothing(demo: Any) -> None:
    with demo.app_context():
        user = demo.appbuilder.sm.find_user(username="admin")
    job_id = start_job(demo, "import", "customer", user, "zh", {"mode": "insert"}, customers_file(1500), "c.xlsx")
    demo.extensions["crm_jobs"].live(job_id).cancel()
    run_here(demo, job_id)
    assert job_of(demo, job_id).status == "cancelled" and count_customers(demo) == 0


def wait_for(condition: Any, seconds: float, what: str, log: Path) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen in {seconds} s; worker log:\n{log.read_text(errors='replace')}")


def test_a_worker_killed_mid_import_leaves_nothing_and_the_job_completes_after_restart(demo: Any,
                                                                                     tmp_path: Path) -> None:
    rows = 6000
    with demo.app_context():
        user = demo.appbuilder.sm.find_user(username="admin")
    job_id = start_job(demo, "import", "customer", user, "zh", {"mode": "insert"}, customers_file(rows), "big.xlsx")
    live = demo.extensions["crm_jobs"].live(job_id)
    log = tmp_path / "worker.log"
    worker = start_worker(demo, log)
    try:
        wait_for(lambda: (p := live.progress()) is not None and p.phase == "write" and p.done >= 500, 240,
                 "the worker writing its first rows", log)
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
        done_before = job_of(demo, job_id).status == "done"
        assert count_customers(demo) in ((rows,) if done_before else (0,))  # all or nothing, never part
        if not done_before:
            assert job_of(demo, job_id).status == "running"
        worker = start_worker(demo, log)
        wait_for(lambda: job_of(demo, job_id).status in ("done", "failed"), 300, "the job completing", log)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)
    job = job_of(demo, job_id)
    assert job.status == "done" and job.result["counts"]["insert"] == rows, job.result
    assert count_customers(demo) == rows
    with demo.app_context():
        engine = demo.extensions["crm"].db.engine
    with engine.connect() as conn:
        batches = conn.execute(sa.text("SELECT COUNT(*) FROM crm_import_batch")).scalar()
    assert batches == 1
    assert re.search(r"queued again 1 jobs", log.read_text()) or done_before
    print(f"killed {'after' if done_before else 'before'} the import committed")
    assert recover_jobs(demo, demo.extensions["crm_jobs"]) == []  # a finished job is never run again
