"""Render page 1 of each default report from the demo data into docs/reports/<key>.png.

    .venv/bin/python scripts/render-report-pages.py

Builds a throw-away SQLite database with the demo data (seed 2024), runs every report in reports/ as
the command line does (everything, in Chinese) with the parameters below, and rasterises page 1.
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from zoneinfo import ZoneInfo

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

# The demo data covers 2024 and 2025: the reports are shown over 2025.
PARAMS = {"customer_dossier": {"id": 1}, "sales_performance": {"from": "2025-01-01", "to": "2025-12-31"},
          "satisfaction": {"from": "2025-01-01", "to": "2025-12-31"}, "receivables_aging": {"as_of": "2025-12-31"},
          "follow_up_plan": {"from": "2025-12-01", "to": "2025-12-31"}, "licence_expiry": {"days": 30}}


def main() -> None:
    import pypdfium2

    from app.factory import create_app
    from app.reports.pdf import render_report_pdf
    from app.reports.run import Reader, run_report
    from app.seed import load_demo_data
    out = PROJECT_DIR / "docs" / "reports"
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        app = create_app({"CRM_DATABASE_URL": f"sqlite:///{folder}/demo.db", "CRM_INSTANCE_DIR": f"{folder}/instance",
                          "CRM_MIGRATIONS_DIR": f"{folder}/migrations", "CRM_SECRET_KEY": "render-" * 8,
                          "CRM_ADMIN_PASSWORD": "render-pages-2026"})
        load_demo_data(app)
        state = app.extensions["crm"]
        with app.app_context():
            reader = Reader(state.models, app.appbuilder.session, None, app.appbuilder.sm.user_model, "zh",
                            ZoneInfo("Asia/Shanghai"))
            for key, report in state.reports.reports.items():
                result = run_report(reader, report, PARAMS.get(key, {}))
                document = pypdfium2.PdfDocument(render_report_pdf(result, company="华信化工有限公司"))
                document[0].render(scale=1.1).to_pil().save(out / f"{key}.png", optimize=True)
                document.close()
                print(f"docs/reports/{key}.png")


if __name__ == "__main__":
    main()
