"""Reports declared under reports/: every default report generated as each role, on the test's
database, checked in the PDF's own text against aggregates the test computes in SQL itself; rows out
of reach and hidden fields absent; the font embedded; the screens, the command line and the checks."""
from __future__ import annotations

import calendar
import io
import re
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pypdf
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app.cli import main
from app.reports.load import load_reports_text
from app.reports.params import ParamError
from app.reports.pdf import render_report_pdf
from app.reports.result import money_text
from app.reports.run import Reader, ReportNotFound, ReportRefused, may_run, reports_for, run_report
from app.schema import SchemaError, load_schema
from app.seed import DEMO_PASSWORD, load_demo_data
from conftest import DEFAULT_SCHEMA, Browser

YEAR = {"from": "2025-01-01", "to": "2025-12-31"}
ROLES = {"zhangwei": "sales", "zhaomin": "sales_manager", "chenjing": "finance", "liuyang": "service",
         "sunli": "rnd", "zhoujie": "auditor", "admin": "admin"}
TITLES = {"customer_dossier": "客户档案", "licence_expiry": "危化品资质到期", "sales_performance": "销售业绩对比",
          "product_sales": "产品销售排行", "receivables_aging": "应收账款账龄", "satisfaction": "客户满意度",
          "follow_up_plan": "回访计划"}


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.12)
    return app


def reader_for(app: Any, username: str | None, lang: str = "zh") -> Reader:
    state = app.extensions["crm"]
    sm = app.appbuilder.sm
    user = sm.find_user(username=username) if username else None
    return Reader(state.models, app.appbuilder.session, user, sm.user_model, lang, ZoneInfo("Asia/Shanghai"))


def pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(body)).pages)


def fonts_of(body: bytes) -> list[tuple[str, bool]]:
    """Return (font name, embedded) of every font the PDF's pages use."""
    found = []
    for page in pypdf.PdfReader(io.BytesIO(body)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is None and "/DescendantFonts" in font:
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            found.append((str(font["/BaseFont"]), any(k in descriptor for k in ("/FontFile", "/FontFile2",
                                                                                "/FontFile3"))))
    return found


def sql_value(app: Any, query: str, **params: Any) -> Any:
    """Return the one value of a raw SQL query: what the test computes without the report code."""
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        return conn.execute(sa.text(query), params).scalar()


def money(value: Any) -> Decimal:
    """Return a sum from raw SQL as money (SQLite answers a float)."""
    return Decimal(str(value)).quantize(Decimal("0.01"))


def order_table(app: Any) -> str:
    """Return the order table's name quoted for raw SQL (order is a reserved word)."""
    with app.app_context():
        return "`order`" if app.extensions["crm"].db.engine.dialect.name == "mysql" else '"order"'


def user_id(app: Any, username: str) -> int:
    with app.app_context():
        return app.appbuilder.sm.find_user(username=username).id


def params_for(app: Any, key: str, customer_id: int) -> dict[str, Any]:
    return {"customer_dossier": {"id": customer_id}, "licence_expiry": {"days": 60},
            "sales_performance": YEAR, "product_sales": {}, "receivables_aging": {"as_of": "2025-12-31"},
            "satisfaction": YEAR, "follow_up_plan": YEAR}[key]


def test_every_default_report_as_every_role(demo: Any) -> None:
    """Each role runs the reports its `report` verb allows; the PDF says what the database holds for
    that role's rows, embeds its font, and the rest are refused."""
    book = demo.extensions["crm"].reports
    assert set(book.reports) == set(TITLES)
    with demo.app_context():
        own_customer = sql_value(demo, "SELECT MIN(id) FROM customer WHERE owner_id = :u", u=user_id(demo, "zhangwei"))
        for username, role in ROLES.items():
            reader = reader_for(demo, username)
            allowed = {r.key for r in reports_for(reader, book)}
            for key, report in book.reports.items():
                if key not in allowed:
                    with pytest.raises(ReportRefused):
                        run_report(reader, report, params_for(demo, key, own_customer))
                    continue
                result = run_report(reader, report, params_for(demo, key, own_customer))
                body = render_report_pdf(result, company="华信化工有限公司")
                text = pdf_text(body)
                assert TITLES[key] in text and "华信化工有限公司" in text, (role, key)
                assert "第 1 页 / 共" in text and "生成人" in text, (role, key)
                assert fonts_of(body) and all(embedded for _, embedded in fonts_of(body)), fonts_of(body)
            expected = {"sales": {"customer_dossier", "licence_expiry", "sales_performance", "follow_up_plan"},
                        "rnd": set(), "admin": set(TITLES)}
            if role in expected:
                assert allowed == expected[role], role


def test_sales_performance_totals_equal_the_database(demo: Any) -> None:
    seller = user_id(demo, "zhangwei")
    where = ("order_date BETWEEN '2025-01-01' AND '2025-12-31' AND status NOT IN ('draft', 'cancelled') "
             "AND currency = 'CNY'")  # one currency at a time: CNY unless another is chosen
    table = order_table(demo)
    everyone = sql_value(demo, f"SELECT SUM(total) FROM {table} WHERE {where}")
    mine = sql_value(demo, f"SELECT SUM(total) FROM {table} WHERE {where} AND salesperson_id = :u", u=seller)
    report = demo.extensions["crm"].reports.report("sales_performance")
    with demo.app_context():
        manager = run_report(reader_for(demo, "zhaomin"), report, YEAR)
        seller_view = run_report(reader_for(demo, "zhangwei"), report, YEAR)
        manager_text = pdf_text(render_report_pdf(manager))
        seller_text = pdf_text(render_report_pdf(seller_view))
    assert manager.grids[0].rows[-1][-1].value == money(everyone)
    assert money_text(money(everyone)) in manager_text
    assert seller_view.grids[0].headers == ["下单日期（月份）", "张伟", "合计"]  # the others' columns are not there
    assert seller_view.grids[0].rows[-1][-1].value == money(mine)
    assert money_text(money(mine)) in seller_text and money_text(money(everyone)) not in seller_text
    assert "李娜" not in seller_text and "王芳" not in seller_text
    month_rows = [r for r in seller_view.grids[0].rows if r[0].text.startswith("2025-")]
    assert month_rows
    for row in month_rows:
        month = sql_value(demo, f"SELECT SUM(total) FROM {table} WHERE {where} AND salesperson_id = :u "
                                "AND order_date BETWEEN :a AND :b", u=seller, a=f"{row[0].text}-01",
                          b=f"{row[0].text}-{calendar.monthrange(2025, int(row[0].text[5:]))[1]}")
        assert row[1].value == money(month), row[0].text
    assert manager.chart is not None and manager.chart.categories == [r[0].text for r in manager.grids[0].rows[:-1]]
    assert ("币种", "人民币") in manager.params


def test_satisfaction_averages_and_ageing_buckets_equal_the_database(demo: Any) -> None:
    satisfaction = demo.extensions["crm"].reports.report("satisfaction")
    ageing = demo.extensions["crm"].reports.report("receivables_aging")
    with demo.app_context():
        result = run_report(reader_for(demo, "liuyang"), satisfaction, YEAR)
        aged = run_report(reader_for(demo, "chenjing"), ageing, {"as_of": "2025-12-31"})
    grid = result.grids[0]
    assert grid.headers == ["反馈类型", "反馈日期（月份）", "反馈数", "平均满意度"]
    complaints = next(r for r in grid.rows if r[0].text == "投诉" and r[1].text == "小计")
    average = sql_value(demo, "SELECT AVG(satisfaction) FROM feedback WHERE type = 'complaint' "
                              "AND feedback_date BETWEEN '2025-01-01' AND '2025-12-31'")
    count = sql_value(demo, "SELECT COUNT(*) FROM feedback WHERE type = 'complaint' "
                            "AND feedback_date BETWEEN '2025-01-01' AND '2025-12-31'")
    assert complaints[2].value == count and complaints[3].text == f"{Decimal(str(average)):.2f}"
    assert result.chart is not None and result.chart.type == "line" and result.chart.categories[0] == "2025-01"
    # a month without feedback of a type is a gap in its line, never an average rating of 0
    assert all(v is None or 1 <= v <= 5 for _, values in result.chart.series for v in values)
    headers = aged.grids[0].headers
    buckets = ["未到期", "1–30 天", "31–60 天", "61–90 天", "90天以上"]
    assert headers[0] == "客户" and headers[-1] == "合计" and headers[1:-1] == [b for b in buckets if b in headers]
    open_total = sql_value(demo, "SELECT SUM(outstanding) FROM payment WHERE status != 'paid' AND outstanding > 0")
    assert aged.grids[0].rows[-1][-1].value == money(open_total)
    overdue = sql_value(demo, "SELECT SUM(outstanding) FROM payment WHERE status != 'paid' AND outstanding > 0 "
                              "AND due_date < '2025-10-02'")
    if "90天以上" in headers:
        assert aged.grids[0].rows[-1][headers.index("90天以上")].value == money(overdue)


def test_a_dossier_shows_the_customers_children_and_only_within_reach(demo: Any) -> None:
    seller = user_id(demo, "zhangwei")
    mine = sql_value(demo, "SELECT MIN(id) FROM customer WHERE owner_id = :u", u=seller)
    theirs = sql_value(demo, "SELECT MIN(id) FROM customer WHERE owner_id != :u", u=seller)
    name = sql_value(demo, "SELECT name FROM customer WHERE id = :c", c=mine)
    report = demo.extensions["crm"].reports.report("customer_dossier")
    with demo.app_context():
        result = run_report(reader_for(demo, "zhangwei"), report, {"id": mine})
        with pytest.raises(ReportNotFound) as refused:
            run_report(reader_for(demo, "zhangwei"), report, {"id": theirs})
        with pytest.raises(ParamError) as wrong:
            run_report(reader_for(demo, "zhangwei"), report, {"id": "abc", "colour": "red"})
    assert refused.value.text("zh") == f"没有编号为 {theirs} 的客户，或您无权查看"
    assert wrong.value.text("zh") == "colour: 此报表没有这个参数（可用：id）；id: “abc”不是记录编号"
    assert result.title == f"客户档案 · {name}"
    titles = [g.title for g in result.grids]
    assert titles == ["联系人", "销售订单", "应收款", "客户反馈", "跟进记录"]
    orders = result.grids[1]
    count = sql_value(demo, f"SELECT COUNT(*) FROM {order_table(demo)} WHERE customer_id = :c "
                            "AND salesperson_id = :u", c=mine, u=seller)  # a salesperson's own orders only
    assert len([k for k in orders.kinds if k == "row"]) == count
    outstanding = sql_value(demo, "SELECT SUM(outstanding) FROM payment WHERE customer_id = :c", c=mine)
    if outstanding is not None:
        receivables = result.grids[2]
        assert receivables.kinds[-1] == "total"
        assert receivables.rows[-1][receivables.headers.index("未收金额")].value == money(outstanding)
    assert dict(result.facts)["公司名称"] == name and result.watermark == "内部资料 · 张伟"


PRODUCT_REPORTS = """
reports:
  formulas:
    label: {zh: 配方清单, en: Formulas}
    kind: table
    table: product
    columns: [code, name, formula, unit_price]
    totals: [unit_price]
"""


def test_hidden_fields_are_not_printed_and_revealed_ones_are_recorded(make_app: Any, tmp_path: Path) -> None:
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    (reports_dir / "r.yaml").write_text(PRODUCT_REPORTS, encoding="utf-8")
    app = make_app(CRM_REPORTS_DIR=str(reports_dir))
    load_demo_data(app, scale=0.1)
    report = app.extensions["crm"].reports.report("formulas")
    with app.app_context():
        manager = run_report(reader_for(app, "zhaomin"), report, {})
        chemist = run_report(reader_for(app, "sunli"), report, {})
        formula = app.appbuilder.session.execute(
            sa.select(app.extensions["crm"].models.model("product"))).scalars().first().formula
    assert len(manager.grids[0].headers) == 3 and not any("配方" in h for h in manager.grids[0].headers)
    assert formula and formula not in pdf_text(render_report_pdf(manager))
    assert any("配方" in h for h in chemist.grids[0].headers)
    assert formula in [c.text for row in chemist.grids[0].rows for c in row]
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        actions = [row[0] for row in conn.execute(sa.text("SELECT action FROM crm_audit ORDER BY id"))]
    assert actions.count("report") == 2 and "reveal" in actions


def test_the_checks_name_file_line_and_a_hint() -> None:
    schema = load_schema(DEFAULT_SCHEMA)
    text = """reports:
  bad:
    label: 坏报表
    kind: summery
    table: order
  worse:
    kind: summary
    table: ordr
  worst:
    kind: summary
    table: order
    params:
      from: {type: date, default: yesterday}
    where:
      order_date: {">=": $form}
      stauts: {"=": draft}
    group: [customer, notes]
    measures:
      - {sum: number}
  tab:
    kind: table
    table: payment
    columns: [number, amount_due]
    totals: [outstanding]
"""
    with pytest.raises(SchemaError) as found:
        load_reports_text({"r.yaml": text}, schema)
    lines = str(found.value).splitlines()
    assert "r.yaml:4: reports.bad.kind: unknown kind 'summery'" in lines
    assert "    hint: did you mean 'summary'? known kinds: record, table, summary" in lines
    assert "r.yaml:8: reports.worse.table: unknown table 'ordr'" in lines
    assert "r.yaml:13: reports.worst.params.from.default: 'yesterday' is not a date default" in lines
    assert "r.yaml:15: reports.worst.where.order_date.>=: parameter 'form' is used but not declared" in lines
    assert "r.yaml:16: reports.worst.where.stauts: table 'order' has no field 'stauts'" in lines
    assert "r.yaml:17: reports.worst.group[1]: 'notes' (text) cannot be grouped by" in lines
    assert ("r.yaml:19: reports.worst.measures[0].sum: sum over 'number', a string field, cannot be computed"
            in lines)
    assert "r.yaml:21: reports.tab.totals: total 'outstanding' is not one of the columns" in lines
    assert lines[-1].endswith("problems found in the schema; nothing was started.")


def test_the_reports_screen_lists_previews_and_downloads(demo: Any) -> None:
    manager = Browser(demo, "zhaomin", DEMO_PASSWORD)
    listing = manager.get("/reports/")
    assert listing.status_code == 200
    for key in ("sales_performance", "product_sales", "receivables_aging", "satisfaction", "follow_up_plan"):
        assert f'data-report="{key}"' in listing.text
    form = manager.get("/reports/sales_performance/")
    assert form.status_code == 200 and 'name="from"' in form.text and "<svg" not in form.text
    preview = manager.get("/reports/sales_performance/?run=1&from=2025-01-01&to=2025-12-31")
    assert preview.status_code == 200 and "<svg" in preview.text and "2025-03" in preview.text
    wrong = manager.get("/reports/sales_performance/?run=1&from=2025-13-01")
    assert wrong.status_code == 400 and "from: “2025-13-01”不是日期，请写作 2026-12-31" in wrong.text
    pdf = manager.get("/reports/sales_performance/pdf?from=2025-01-01&to=2025-12-31")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf" and "销售业绩对比" in pdf_text(pdf.data)
    assert 'href="/reports/"' in manager.get("/").text  # the menu entry
    sheet = manager.get("/reports/sales_performance/xlsx?from=2025-01-01&to=2025-12-31")
    assert sheet.status_code == 200 and sheet.headers["Content-Disposition"].endswith('.xlsx"')
    rows = list(openpyxl.load_workbook(io.BytesIO(sheet.data)).active.iter_rows(values_only=True))
    table = order_table(demo)
    everyone = sql_value(demo, f"SELECT SUM(total) FROM {table} WHERE order_date BETWEEN '2025-01-01' AND "
                               "'2025-12-31' AND status NOT IN ('draft', 'cancelled') AND currency = 'CNY'")
    assert rows[0][0] == "销售业绩对比"
    total_row = [value for value in next(row for row in rows if row[0] == "合计") if value is not None]
    assert Decimal(str(total_row[-1])).quantize(Decimal("0.01")) == money(everyone)  # a number, not text

    seller = Browser(demo, "zhangwei", DEMO_PASSWORD)
    mine = sql_value(demo, "SELECT MIN(id) FROM customer WHERE owner_id = :u", u=user_id(demo, "zhangwei"))
    theirs = sql_value(demo, "SELECT MIN(id) FROM customer WHERE owner_id != :u", u=user_id(demo, "zhangwei"))
    page = seller.get(f"/t/customer/show/{mine}")
    assert f'href="/reports/customer_dossier/pdf?id={mine}"' in page.text and "打印客户档案" in page.text
    assert seller.get(f"/reports/customer_dossier/pdf?id={mine}").status_code == 200
    assert seller.get(f"/reports/customer_dossier/pdf?id={theirs}").status_code == 404
    assert seller.get("/reports/product_sales/").status_code == 403
    assert seller.get("/reports/receivables_aging/pdf").status_code == 403
    assert seller.get("/reports/no_such_report/").status_code == 404
    chemist = Browser(demo, "sunli", DEMO_PASSWORD)  # `report` on products only, and no report on them yet
    assert "您的角色没有可生成的报表。" in chemist.get("/reports/").text


def test_crm_report_run_writes_a_pdf_as_a_user(demo: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("CRM_DATABASE_URL", "CRM_INSTANCE_DIR", "CRM_MIGRATIONS_DIR", "CRM_SECRET_KEY"):
        monkeypatch.setenv(key, str(demo.config[key]))
    out = tmp_path / "业绩.pdf"
    done = CliRunner().invoke(main, ["report", "run", "sales_performance", "--param", "from=2025-01-01",
                                     "-p", "to=2025-12-31", "--as", "zhangwei", "-o", str(out)])
    assert done.exit_code == 0, done.output
    assert "张伟" in pdf_text(out.read_bytes()) and "李娜" not in pdf_text(out.read_bytes())
    refused = CliRunner().invoke(main, ["report", "run", "receivables_aging", "--as", "zhangwei", "-o", str(out)])
    assert refused.exit_code == 1 and "您的角色没有“应收账款账龄”报表的权限" in refused.output
    wrong = CliRunner().invoke(main, ["report", "run", "sales_performance", "-p", "from", "-o", str(out)])
    assert wrong.exit_code == 2 and "--param from: write KEY=VALUE" in wrong.output
    book = tmp_path / "回访.xlsx"
    done = CliRunner().invoke(main, ["report", "run", "follow_up_plan", "-p", "from=2025-01-01", "-p", "to=2025-12-31",
                                     "--as", "zhangwei", "-o", str(book)])
    assert done.exit_code == 0, done.output
    owners = {row[0] for row in openpyxl.load_workbook(book).active.iter_rows(min_row=7, values_only=True) if row[1]}
    assert owners == {"张伟"}
    listed = CliRunner().invoke(main, ["report", "list"])
    assert listed.exit_code == 0 and "customer_dossier" in listed.output and "id (link, required)" in listed.output


def test_a_table_report_over_the_row_limit_says_so(demo: Any) -> None:
    report = demo.extensions["crm"].reports.report("follow_up_plan")
    with demo.app_context():
        reader = reader_for(demo, "zhaomin")
        reader.row_limit = 10
        with pytest.raises(ReportRefused) as refused:
            run_report(reader, report, YEAR)
    assert refused.value.status == 413
    assert refused.value.text("zh").endswith("超过 10 行的上限；请缩小日期范围或增加筛选条件")


def test_may_run_follows_the_report_verb(demo: Any) -> None:
    book = demo.extensions["crm"].reports
    with demo.app_context():
        assert may_run(reader_for(demo, "chenjing"), book.report("receivables_aging"))
        assert not may_run(reader_for(demo, "liuyang"), book.report("receivables_aging"))
        assert may_run(reader_for(demo, None), book.report("receivables_aging"))  # the command line


def test_parameters_out_of_range_are_refused_not_crashed(demo: Any) -> None:
    """Values the database or the calendar cannot hold are a clear refusal, on screens too."""
    book = demo.extensions["crm"].reports
    with demo.app_context():
        reader = reader_for(demo, "zhaomin")
        cases = [("customer_dossier", {"id": "99999999999999999999999"}, "id: “99999999999999999999999”不是记录编号"),
                 ("sales_performance", {"salesperson": "3_0"}, "salesperson: “3_0”不是记录编号"),
                 ("licence_expiry", {"days": "-740000"}, "days: 数值超出范围（±36500）"),
                 ("receivables_aging", {"as_of": "0001-01-01"}, "as_of: “0001-01-01”超出范围（1900–2999 年）"),
                 ("sales_performance", {"currency": "RMB"}, "currency: “RMB”不是可选项（CNY、USD、EUR）")]
        for key, given, message in cases:
            with pytest.raises(ParamError) as refused:
                run_report(reader, book.report(key), given)
            assert refused.value.text("zh") == message
    lina = user_id(demo, "lina")
    with demo.app_context(), pytest.raises(ParamError) as someone_else:
        run_report(reader_for(demo, "zhangwei"), book.report("sales_performance"), {"salesperson": lina})
    assert someone_else.value.text("zh") == f"salesperson: “{lina}”不是可选的用户"
    manager = Browser(demo, "zhaomin", DEMO_PASSWORD)
    form = manager.get("/reports/sales_performance/").text
    offered = re.findall(r'<option value="\d+"\s*>([^<]+)</option>', form)
    assert set(offered) == {"张伟", "李娜", "王芳", "赵敏"}  # the salesperson field's roles: no R&D, no admin
    seller_form = Browser(demo, "zhangwei", DEMO_PASSWORD).get("/reports/sales_performance/").text
    assert re.findall(r'<option value="\d+"\s*>([^<]+)</option>', seller_form) == ["张伟"]
    assert manager.get("/reports/customer_dossier/pdf?id=99999999999999999999").status_code == 400
    assert manager.get("/reports/licence_expiry/?run=1&days=-740000").status_code == 400


def test_a_dossier_with_a_long_note_runs_onto_the_next_page(demo: Any) -> None:
    """A note of thousands of characters is printed in full below the fields, over pages."""
    state = demo.extensions["crm"]
    note = "本客户要求每批货物随附检验报告（COA），并在发货前确认包装、标签与运输方式。" * 120
    with demo.app_context():
        customer = state.db.session.get(state.models.model("customer"), 1)
        customer.notes = note
        state.db.session.commit()
        result = run_report(reader_for(demo, None), state.reports.report("customer_dossier"), {"id": 1})
        body = render_report_pdf(result)
    text = pdf_text(body).replace("\n", "")
    pages = len(pypdf.PdfReader(io.BytesIO(body)).pages)
    assert pages >= 2 and note[-40:] in text and f"第 {pages} 页 / 共 {pages} 页" in pdf_text(body)


def test_a_workbook_keeps_text_as_text_and_numbers_as_numbers() -> None:
    """A value written like a formula (=HYPERLINK(...) typed into a name) is never one in Excel."""
    import datetime as dt

    from app.reports.result import Cell, Grid, ReportResult
    from app.reports.xlsx import render_report_xlsx
    grid = Grid("客户", ["公司名称", "金额"], numeric=[False, True])
    grid.add([Cell('=HYPERLINK("http://evil.example","点我")'), Cell("1,250.50", Decimal("1250.50"))])
    grid.add([Cell("2025-03-01", dt.date(2025, 3, 1)), Cell("—")])
    grid.add([Cell("合计（1 条）"), Cell("1,250.50", Decimal("1250.50"))], "total")
    result = ReportResult("x", "测试", "portrait", dt.datetime(2026, 12, 3, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")),
                          "张伟", grids=[grid])
    sheet = openpyxl.load_workbook(io.BytesIO(render_report_xlsx(result))).active
    cells = {c.value: c for row in sheet.iter_rows() for c in row if c.value is not None}
    formula = cells['=HYPERLINK("http://evil.example","点我")']
    assert formula.data_type == "s"
    assert cells[1250.5].data_type == "n" and cells[1250.5].number_format == "#,##0.00"
    assert "生成时间 2026-12-03 09:00 · 生成人 张伟" in cells
    dated = cells[dt.datetime(2025, 3, 1)]  # openpyxl reads a date cell back as a datetime
    assert dated.is_date and dated.number_format == "yyyy-mm-dd"


def test_an_encrypted_field_a_role_sees_but_may_not_reveal_is_printed_masked(make_app: Any, schema_dir: Path,
                                                                              tmp_path: Path) -> None:
    roles = schema_dir / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8").replace(
        "      product:    {can: [read, export, report], hide: [formula, process_notes]}\n",
        "      product:    {can: [read, export, report]}\n"), encoding="utf-8")  # the auditor's grant
    reports_dir = tmp_path / "reports"
    reports_dir.mkdir()
    (reports_dir / "r.yaml").write_text(PRODUCT_REPORTS, encoding="utf-8")
    app = make_app(schema_dir=schema_dir, CRM_REPORTS_DIR=str(reports_dir))
    load_demo_data(app, scale=0.1)
    with app.app_context():
        auditor = run_report(reader_for(app, "zhoujie"), app.extensions["crm"].reports.report("formulas"), {})
    column = auditor.grids[0].headers.index("配方成分")
    assert {row[column].text for row, kind in zip(auditor.grids[0].rows, auditor.grids[0].kinds, strict=True)
            if kind == "row"} <= {"●●●●", "—"}
    with app.app_context(), app.extensions["crm"].db.engine.connect() as conn:
        actions = [row[0] for row in conn.execute(sa.text("SELECT action FROM crm_audit ORDER BY id"))]
    assert "reveal" not in actions and actions.count("report") == 1
