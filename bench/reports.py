"""Benchmark of the reports: sales_performance over 100,000 orders, a 10,000-row table report and the
dossier of a customer with 500 orders, each generated (SQL, gate, layout) and rendered to a PDF.

    .venv/bin/python bench/reports.py [--url DATABASE_URL] [--runs 5]

Builds a fresh database (a temporary SQLite file unless --url names an empty one) with the demo data,
adds the rows below with bulk inserts (the computed `total` written as the ORM would), then times
each report as the sales manager (the gate's checks included) and prints the median of the runs.
Results and the command that produced them go in docs/benchmarks.md.
"""
from __future__ import annotations

import argparse
import datetime
import random
import statistics
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

ORDERS = 100_000
FOLLOW_UPS = 10_000
DOSSIER_ORDERS = 500
TARGETS = {"sales_performance": 1.0, "follow_up_plan": 5.0, "customer_dossier": 0.5}


def fill(app: Any) -> int:
    """Insert the benchmark's rows; return the id of the customer with 500 orders."""
    import sqlalchemy as sa
    state = app.extensions["crm"]
    tables = state.models.metadata.tables
    rng = random.Random(7)
    with app.app_context(), state.db.engine.begin() as conn:
        customers = [row[0] for row in conn.execute(sa.select(tables["customer"].c.id))]
        users = [row[0] for row in conn.execute(sa.text("SELECT id FROM ab_user WHERE username IN "
                                                        "('zhangwei', 'lina', 'wangfang')"))]
        big = customers[0]
        statuses = ["confirmed", "in_production", "shipped", "completed", "completed", "cancelled"]
        start = datetime.date(2025, 1, 1)
        batch = []
        for n in range(ORDERS):
            batch.append({"number": f"BENCH-{n:07d}", "customer_id": big if n < DOSSIER_ORDERS else rng.choice(customers[1:]),
                          "order_date": start + datetime.timedelta(days=rng.randrange(365)),
                          "status": rng.choice(statuses), "currency": "CNY", "line_count": 1,
                          "total": Decimal(rng.randrange(1_000, 900_000)) / 10, "salesperson_id": rng.choice(users),
                          "row_version": 1})
            if len(batch) == 5_000:
                conn.execute(tables["order"].insert(), batch)
                batch = []
        follow_ups = [{"customer_id": rng.choice(customers[1:]), "visit_date": start, "channel": "phone",
                       "subject": f"回访 {n}", "next_date": datetime.date(2026, 1, 1) + datetime.timedelta(days=n % 28),
                       "owner_id": rng.choice(users), "row_version": 1} for n in range(FOLLOW_UPS)]
        for at in range(0, FOLLOW_UPS, 5_000):
            conn.execute(tables["follow_up"].insert(), follow_ups[at:at + 5_000])
    return big


def timed(function: Any, runs: int) -> float:
    seconds = []
    for _ in range(runs):
        began = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", help="an empty database (default: a temporary SQLite file)")
    parser.add_argument("--runs", type=int, default=5)
    options = parser.parse_args()
    from app.factory import create_app
    from app.reports.pdf import render_report_pdf
    from app.reports.run import Reader, run_report
    from app.seed import load_demo_data
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"CRM_DATABASE_URL": options.url or f"sqlite:///{folder}/bench.db",
                          "CRM_INSTANCE_DIR": f"{folder}/instance", "CRM_MIGRATIONS_DIR": f"{folder}/migrations",
                          "CRM_SECRET_KEY": "bench-" * 8, "CRM_ADMIN_PASSWORD": "bench-reports-2026"})
        load_demo_data(app, scale=0.2)
        big = fill(app)
        state = app.extensions["crm"]
        cases = {"sales_performance": {"from": "2025-01-01", "to": "2025-12-31"},
                 "follow_up_plan": {"from": "2026-01-01", "to": "2026-01-31"},
                 "customer_dossier": {"id": big}}
        with app.app_context():
            manager = app.appbuilder.sm.find_user(username="zhaomin")
            reader = Reader(state.models, app.appbuilder.session, manager, app.appbuilder.sm.user_model, "zh",
                            ZoneInfo("Asia/Shanghai"))
            print(f"database: {state.db.engine.dialect.name}; median of {options.runs} runs, as the sales manager")
            for key, params in cases.items():
                report = state.reports.report(key)
                result = run_report(reader, report, params)
                rows = sum(len(g.rows) for g in result.grids)
                query = timed(lambda report=report, params=params: run_report(reader, report, params), options.runs)
                whole = timed(lambda report=report, params=params: render_report_pdf(
                    run_report(reader, report, params)), options.runs)
                verdict = "ok" if whole < TARGETS[key] else "OVER TARGET"
                print(f"{key:<18} {rows:>6} rows printed  query+gate {query:6.3f} s  with PDF {whole:6.3f} s  "
                      f"(target {TARGETS[key]} s: {verdict})")


if __name__ == "__main__":
    main()
