"""Benchmark of Excel import and export: 100,000 customers imported from one .xlsx (every row checked,
one transaction, audit entries and the batch written) and exported again, each in a process of its own
so that its peak memory is its own.

    .venv/bin/python bench/transfer.py [--url DATABASE_URL] [--rows 100000]

Builds a fresh database (a temporary SQLite file unless --url names an empty one) with the demo data,
writes the workbook (name, USCC with a valid check character, grade and status by label, province,
city, salesperson by login, credit limit, phone, tags, licence date), then times `crm import` and
`crm export` on it. Targets: import under 60 s, export under 20 s, each under 300 MB peak.
Results and the command that produced them go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))
TARGETS = {"import": 60.0, "export": 20.0}
MEMORY_TARGET_MB = 300


def settings(folder: str, url: str | None) -> dict[str, str]:
    return {"CRM_DATABASE_URL": url or f"sqlite:///{folder}/bench.db", "CRM_INSTANCE_DIR": f"{folder}/instance",
            "CRM_MIGRATIONS_DIR": f"{folder}/migrations", "CRM_SECRET_KEY": "bench-" * 8,
            "CRM_ADMIN_PASSWORD": "bench-transfer-2026"}


def write_workbook(path: Path, rows: int) -> None:
    from openpyxl import Workbook

    from app.fields.values import USCC_CHARS, uscc_check_char
    rng = random.Random(11)
    book = Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    sheet.append(["公司名称", "统一社会信用代码", "客户等级", "客户状态", "省份", "城市", "负责销售", "信用额度（元）",
                  "公司电话", "标签", "许可证有效期至"])
    grades, statuses = ["A类（战略客户）", "B类（重点客户）", "C类（普通客户）"], ["合作中", "洽谈中", "潜在客户"]
    provinces, sales = ["江苏省", "浙江省", "上海市", "广东省", "山东省"], ["zhangwei", "lina", "wangfang"]
    for n in range(rows):
        first17 = "913205" + "".join(rng.choice(USCC_CHARS) for _ in range(11))
        sheet.append([f"基准客户{n:06d}化工有限公司", first17 + uscc_check_char(first17), rng.choice(grades),
                      rng.choice(statuses), rng.choice(provinces), "苏州", rng.choice(sales), 10_000 + n,
                      f"0512-{6000_0000 + n}", "重点客户、出口业务" if n % 3 == 0 else None,
                      datetime.datetime(2027, 1, 1) + datetime.timedelta(days=n % 365)])
    book.save(path)


def step(kind: str, path: str) -> None:
    """Run one import or export in this process and print its time, rows and peak memory as JSON."""
    from app.factory import create_app
    from app.security.acting import acting_as
    from app.transfer.export import ExportRequest, export_table
    from app.transfer.importer import Importer, ImportRequest
    app = create_app()
    state = app.extensions["crm"]
    with app.app_context():
        admin = app.appbuilder.sm.find_user(username="admin")
        with acting_as(app, admin):
            began = time.perf_counter()
            if kind == "import":
                data = Path(path).read_bytes()
                result = Importer(state.models, app.appbuilder.session, app.appbuilder.sm.user_model,
                                  ImportRequest("customer", Path(path).name, data, max_bytes=200 << 20)).run()
                assert not result.problems, [p.text() for p in result.all_problems()[:5]]
                rows = result.counts["insert"]
            else:
                with open(path, "wb") as out:
                    rows = export_table(state.models, app.appbuilder.session, ExportRequest("customer"), out).rows
            seconds = time.perf_counter() - began
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"kind": kind, "rows": rows, "seconds": round(seconds, 1), "peak_mb": round(peak)}))


def run_step(kind: str, path: Path, env: dict[str, str]) -> dict[str, Any]:
    answer = subprocess.run([sys.executable, __file__, "--step", kind, str(path)], env=env, capture_output=True,
                            text=True, check=True)
    return json.loads(answer.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--step", nargs=2, metavar=("KIND", "FILE"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.step:
        step(*options.step)
        return
    from app.factory import create_app
    from app.seed import load_demo_data
    with tempfile.TemporaryDirectory() as folder:
        config = settings(folder, options.url)
        app = create_app(config)
        load_demo_data(app, scale=0.05)
        with app.app_context():
            dialect = app.extensions["crm"].db.engine.dialect.name
        workbook = Path(folder) / "customers.xlsx"
        began = time.perf_counter()
        write_workbook(workbook, options.rows)
        print(f"database: {dialect}; workbook of {options.rows:,} customers, {workbook.stat().st_size / 1e6:.1f} MB, "
              f"written in {time.perf_counter() - began:.1f} s")
        env = {**os.environ, **config, "PYTHONPATH": str(PROJECT_DIR)}
        for kind, path in (("import", workbook), ("export", Path(folder) / "export.xlsx")):
            found = run_step(kind, path, env)
            fast = found["seconds"] < TARGETS[kind] and found["peak_mb"] < MEMORY_TARGET_MB
            verdict = "ok" if fast else "OVER TARGET"
            print(f"{kind:<7} {found['rows']:>7,} rows  {found['seconds']:6.1f} s  "
                  f"{found['rows'] / max(found['seconds'], 0.01):8,.0f} rows/s  peak {found['peak_mb']} MB  "
                  f"(targets {TARGETS[kind]:.0f} s, {MEMORY_TARGET_MB} MB: {verdict})")


if __name__ == "__main__":
    main()
