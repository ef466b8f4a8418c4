"""Excel and CSV: templates from the schema, imports that check every row and write all or nothing,
upserts, duplicate flags, batches and their revert, exports through the permission gate, and the
command line — on the test's database (SQLite, PostgreSQL, MariaDB)."""
from __future__ import annotations

import datetime
import io
import re
import zipfile
from decimal import Decimal
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app.cli import main
from app.security.acting import acting_as
from app.security.gate import field_access
from app.seed import load_demo_data
from app.transfer.batches import RevertRefused, revert_batch, visible_batches
from app.transfer.errorbook import render_error_book
from app.transfer.export import ExportRefused, ExportRequest, export_table
from app.transfer.importer import Importer, ImportRequest, ImportResult, company_key
from app.transfer.template import render_template

USCC = "91350100M000100Y43"  # a valid code (its check character is 3)
USCC_2 = "913608022565535658"


# -- helpers -------------------------------------------------------------------------------------

def workbook(headers: list[str], *rows: list[Any], keys: list[str] | None = None, sheet: str = "客户") -> bytes:
    """Return .xlsx bytes: a heading row, optionally the hidden key row, then the rows."""
    book = openpyxl.Workbook()
    ws = book.active
    assert ws is not None
    ws.title = sheet
    ws.append(headers)
    if keys:
        ws.append(keys)
        ws.row_dimensions[2].hidden = True
    for row in rows:
        ws.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def run_import(app: Any, table: str, name: str, data: bytes, username: str = "admin", **options: Any) -> ImportResult:
    state = app.extensions["crm"]
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        with acting_as(app, user):
            request = ImportRequest(table, name, data, **options)
            return Importer(state.models, app.appbuilder.session, app.appbuilder.sm.user_model, request).run()


def run_export(app: Any, table: str, username: str = "admin", fmt: str = "xlsx", **options: Any) -> bytes:
    state = app.extensions["crm"]
    out = io.BytesIO()
    with app.app_context():
        user = app.appbuilder.sm.find_user(username=username)
        with acting_as(app, user):
            export_table(state.models, app.appbuilder.session, ExportRequest(table, fmt, **options), out)
    return out.getvalue()


def texts(result: ImportResult) -> list[str]:
    return [p.text() for p in result.all_problems()]


def every_table(app: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Return every row of every table of the database, to show that nothing changed."""
    with app.app_context():
        engine = app.extensions["crm"].db.engine
    found = {}
    with engine.connect() as conn:
        for name in sorted(sa.inspect(conn).get_table_names()):
            table = sa.Table(name, sa.MetaData(), autoload_with=conn)
            found[name] = [tuple(r) for r in conn.execute(sa.select(table).order_by(*table.primary_key.columns))]
    return found


def user_id(app: Any, username: str) -> int:
    with app.app_context():
        return int(app.appbuilder.sm.find_user(username=username).id)


def customers(app: Any) -> dict[str, Any]:
    model = app.extensions["crm"].models.model("customer")
    with app.app_context():
        session = app.appbuilder.session
        rows = {c.name: c for c in session.execute(sa.select(model)).scalars()}
        for c in rows.values():
            session.expunge(c)
        return rows


def sheet_rows(body: bytes) -> list[tuple[Any, ...]]:
    return list(openpyxl.load_workbook(io.BytesIO(body)).worksheets[0].iter_rows(values_only=True))


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.02)
    return app


# -- templates -----------------------------------------------------------------------------------

def test_the_template_has_labels_a_hidden_key_row_dropdowns_and_notes(app: Any) -> None:
    state = app.extensions["crm"]
    with app.app_context():
        body = render_template(state.schema, "customer", field_access(state.schema, "customer", None))
    book = openpyxl.load_workbook(io.BytesIO(body))
    data, options, notes = book.worksheets
    headings = [c.value for c in data[1]]
    keys = [c.value for c in data[2]]
    assert headings[:4] == ["公司名称 *", "简称", "统一社会信用代码", "所属行业"]
    assert keys[:4] == ["name", "short_name", "uscc", "industry"]
    assert "open_receivables" not in keys and "未结应收款" not in headings  # computed: left out
    assert data.row_dimensions[2].hidden and options.sheet_state == "hidden"
    rules = {str(v.sqref): v.formula1 for v in data.data_validations.dataValidation}
    column = openpyxl.utils.get_column_letter(keys.index("grade") + 1)
    assert rules[f"{column}3:{column}2002"] == "='_options'!$B$2:$B$5"
    assert [options.cell(r, 2).value for r in range(2, 6)] == ["A类（战略客户）", "B类（重点客户）", "C类（普通客户）",
                                                              "D类（零散客户）"]
    province = openpyxl.utils.get_column_letter(keys.index("province") + 1)
    assert rules[f"{province}3:{province}2002"].endswith("$2:$D$35")  # 34 provinces: past Excel's inline limit
    assert data.cell(3, keys.index("hazardous_licence_expiry") + 1).number_format == "yyyy-mm-dd"
    assert notes.title == "说明"
    note_rows = {r[0]: r for r in notes.iter_rows(min_row=2, values_only=True)}
    assert note_rows["统一社会信用代码"][1:3] == ("统一社会信用代码", None)
    assert note_rows["公司名称"][2] == "是" and "不能与已有记录重复" in note_rows["公司名称"][4]


def test_a_salespersons_template_leaves_out_what_they_may_not_write(demo: Any) -> None:
    state = demo.extensions["crm"]
    with demo.app_context():
        user = demo.appbuilder.sm.find_user(username="zhangwei")
        body = render_template(state.schema, "customer", field_access(state.schema, "customer", user), "en")
    headings = [c.value for c in openpyxl.load_workbook(io.BytesIO(body)).worksheets[0][1]]
    assert headings[:3] == ["Company *", "Short name", "Unified social credit code"]
    assert "Credit limit (CNY)" not in headings and "Payment terms" not in headings


# -- imports: the happy path ---------------------------------------------------------------------

def test_a_filled_in_template_imports_every_field_type(demo: Any) -> None:
    state = demo.extensions["crm"]
    with demo.app_context():
        template = render_template(state.schema, "customer", field_access(state.schema, "customer", None))
    book = openpyxl.load_workbook(io.BytesIO(template))
    ws = book.worksheets[0]
    keys = [c.value for c in ws[2]]
    values = {"name": "华信新材料有限公司", "uscc": USCC, "industry": "涂料油墨", "grade": "A类（战略客户）",
              "status": "active", "province": "江苏省", "owner": "zhangwei", "credit_limit": 500000,
              "phone": 13812345678, "website": "https://www.huaxin.example", "tags": "重点客户、出口业务",
              "hazardous_licence_expiry": datetime.datetime(2027, 3, 31), "notes": "从展会认识"}
    for key, value in values.items():
        ws.cell(3, keys.index(key) + 1, value)
    out = io.BytesIO()
    book.save(out)
    result = run_import(demo, "customer", "客户导入模板.xlsx", out.getvalue())
    assert texts(result) == [] and result.counts == {"insert": 1, "update": 0, "unchanged": 0}
    stored = customers(demo)["华信新材料有限公司"]
    assert (stored.uscc, stored.industry, stored.grade, stored.status, stored.province) == (
        USCC, "coatings", "A", "active", "jiangsu")
    assert stored.credit_limit == Decimal("500000") and stored.phone == "13812345678"
    assert stored.tags == ["key_account", "export"] and stored.hazardous_licence_expiry == datetime.date(2027, 3, 31)
    assert stored.notes == "从展会认识"
    batch = visible_batches_as(demo, "admin")[0]
    assert (batch.file_name, batch.inserted, batch.table) == ("客户导入模板.xlsx", 1, "customer")


def visible_batches_as(app: Any, username: str) -> list[Any]:
    with app.app_context():
        with acting_as(app, app.appbuilder.sm.find_user(username=username)):
            return visible_batches(app.extensions["crm"].models, app.appbuilder.session)


def test_links_by_title_or_unique_field_users_by_name_and_booleans(demo: Any) -> None:
    company = next(iter(customers(demo).values()))
    body = workbook(["所属客户", "姓名", "手机", "邮箱", "主要联系人"],
                    [company.name, "王经理", "13900001111", "wang@example.com", "是"],
                    [company.uscc, "李工", None, None, "否"],
                    ["不存在的公司", "赵总", None, None, "maybe"])
    result = run_import(demo, "contact", "联系人.xlsx", body)
    assert texts(result) == [
        "联系人.xlsx!客户!A4: 所属客户: 找不到客户“不存在的公司”（可填公司名称或统一社会信用代码）",
        "联系人.xlsx!客户!E4: 主要联系人: 应为 是 或 否"]
    result = run_import(demo, "contact", "联系人.xlsx", body[:0] + workbook(
        ["所属客户", "姓名", "主要联系人"], [company.name, "王经理", "是"], [company.uscc, "李工", "否"]))
    assert texts(result) == [] and result.counts["insert"] == 2
    model = demo.extensions["crm"].models.model("contact")
    with demo.app_context():
        rows = demo.appbuilder.session.execute(sa.select(model).where(model.name.in_(["王经理", "李工"]))).scalars()
        assert sorted((c.name, c.customer_id, c.is_primary) for c in rows) == [
            ("李工", company.id, False), ("王经理", company.id, True)]


@pytest.mark.parametrize("encoding, name", [("utf-8-sig", "客户（UTF-8 BOM）.csv"), ("utf-8", "客户.csv"),
                                            ("gbk", "客户名单-GBK.csv"), ("gb18030", "客户·GB18030.csv")])
def test_csv_in_utf8_or_gbk_with_chinese_file_names(app: Any, encoding: str, name: str) -> None:
    text = ("公司名称,统一社会信用代码,客户等级,客户状态\r\n"
            "华信化工有限公司,91350100M000100Y43,B类（重点客户）,合作中\r\n")
    result = run_import(app, "customer", name, text.encode(encoding))
    assert texts(result) == [] and result.counts["insert"] == 1
    stored = customers(app)["华信化工有限公司"]
    assert (stored.uscc, stored.grade, stored.status) == (USCC, "B", "active")


def test_a_semicolon_csv_is_read_and_a_wrong_delimiter_is_named(app: Any) -> None:
    assert texts(run_import(app, "customer", "c.csv", "公司名称;客户等级\n华信化工;B\n".encode())) == []
    result = run_import(app, "customer", "c.csv", "公司名称|客户等级\n东方涂料|B\n".encode())
    assert texts(result) == ["c.csv!1: 只识别出一列“公司名称|客户等级”：各列应以逗号（,）分隔；请在 Excel 中另存为“CSV "
                             "UTF-8（逗号分隔）”"]


# -- imports: every problem at once, and nothing written -------------------------------------------

def test_one_bad_row_leaves_every_table_unchanged_and_every_problem_is_listed(demo: Any) -> None:
    before = every_table(demo)
    existing = next(iter(customers(demo).values()))
    body = workbook(["公司名称", "统一社会信用代码", "客户等级", "信用额度（元）", "网站", "负责销售",
                     "许可证有效期至"],
                    ["甲化工", USCC, "A", 100, None, "zhangwei", "2026-02-30"],
                    ["乙化工", "91350100M000100Y44", "Z", -5, "www.x.com", "nobody", "2027/1/1"],
                    [existing.name, None, None, "abc", None, None, None],
                    ["丙化工", USCC, None, None, None, None, None],
                    [None, None, "B", None, None, None, None])
    result = run_import(demo, "customer", "客户.xlsx", body)
    assert texts(result) == [
        "客户.xlsx!客户!G2: 许可证有效期至: 没有这一天：2026年2月30日",
        "客户.xlsx!客户!B3: 统一社会信用代码: 统一社会信用代码校验位不正确（应为 3）",
        "客户.xlsx!客户!C3: 客户等级: “Z”不是可选项；可选：A类（战略客户）、B类（重点客户）、C类（普通客户）、D类（零"
        "散客户"
        "）",
        "客户.xlsx!客户!D3: 信用额度（元）: 不能小于 0",
        "客户.xlsx!客户!E3: 网站: 不是有效的网址,应以 http:// 或 https:// 开头",
        "客户.xlsx!客户!F3: 负责销售: 找不到用户“nobody”（可填登录名或姓名）",
        f"客户.xlsx!客户!A4: 公司名称: 已存在相同的公司名称“{existing.name}”",
        "客户.xlsx!客户!D4: 信用额度（元）: 应为数字",
        "客户.xlsx!客户!B5: 统一社会信用代码: “91350100M000100Y43”与第 2 行重复",
        "客户.xlsx!客户!A6: 公司名称: 必填",
    ]
    assert every_table(demo) == before
    result = run_import(demo, "customer", "客户.xlsx", workbook(["公司名称"], [existing.name]))
    assert texts(result) == [f"客户.xlsx!客户!A2: 公司名称: 已存在相同的公司名称“{existing.name}”"]
    assert every_table(demo) == before


def test_a_problem_only_the_database_finds_is_traced_to_its_row_and_nothing_is_written(demo: Any) -> None:
    """A contact of another customer (`match:`) is refused at the flush; the import names the row."""
    model = demo.extensions["crm"].models.model("contact")
    with demo.app_context():
        contacts = demo.appbuilder.session.execute(sa.select(model).order_by(model.id)).scalars().all()
        mine, other = contacts[0], next(c for c in contacts if c.customer_id != contacts[0].customer_id)
        customer_name, other_name = str(mine.customer), str(other)
        other_label = f"{other_name} #{other.id}"
    before = every_table(demo)
    body = workbook(["客户", "联系人", "跟进日期", "主题"],
                    [customer_name, f"{mine.name} #{mine.id}", "2026-11-02", "回访一"],
                    [customer_name, other_label, "2026-11-03", "回访二"])
    result = run_import(demo, "follow_up", "回访.xlsx", body)
    assert len(result.problems) == 1 and result.problems[0].place() == "回访.xlsx!客户!B3"
    assert "不符" in result.problems[0].text()
    assert every_table(demo) == before


def test_hostile_and_broken_files_get_a_message_and_change_nothing(app: Any, tmp_path: Path) -> None:
    before = every_table(app)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/workbook.xml", "<workbook/>")
        z.writestr("xl/worksheets/sheet1.xml", b"0" * (50 << 20))
    formula = workbook(["公司名称", "信用额度（元）"], ["甲", "=1+1"])
    merged_book = openpyxl.Workbook()
    ws = merged_book.active
    assert ws is not None
    ws.append(["公司名称", None, "客户等级"])
    ws.append(["甲", "x", "A"])
    ws.merge_cells("A1:B1")
    merged = io.BytesIO()
    merged_book.save(merged)
    cases = {
        "report.docx": (b"PK\x03\x04" + b"\x00" * 100, "report.docx: 文件已损坏，不是有效的 .xlsx 工作簿"),
        "old.xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600, "old.xls: 文件已损坏，不是有效的 .xls 工作簿"),
        "locked.xlsx": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 600,
                        "locked.xlsx: 工作簿设置了打开密码，无法读取；请在 Excel 中取消密码后再导入"),
        "bomb.xlsx": (bomb.getvalue(), "bomb.xlsx: 文件解压后异常巨大（xl/worksheets/sheet1.xml 压缩了 "),
        "logo.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "logo.png: 这不是表格文件；请上传 .xlsx 或 .csv"),
        "empty.csv": (b"", "empty.csv: 文件是空的"),
        "formula.xlsx": (formula, "formula.xlsx!客户!B2: 信用额度（元）: 单元格是公式（=1+1），"
                                  "请改为数值（复制后“选择性粘贴 → 数值”）"),
        "merged.xlsx": (merged.getvalue(), "merged.xlsx!Sheet: 标题行有合并单元格 A1:B1：请取消合并，每列一个标题"),
        "headings.xlsx": (workbook(["公司名称"]), "headings.xlsx!客户: 工作表只有标题行，没有数据"),
        "blank.xlsx": (workbook([]), "blank.xlsx!客户: 工作表是空的：第一行应是标题行（字段名称）"),
        "columns.xlsx": (workbook(["公司名", "客户等级", "等级"], ["甲", "A", "B"]),
                         "columns.xlsx!客户!A1: 没有“公司名”这一列对应的字段（是否想写“公司名称”？）"),
    }
    for name, (data, message) in cases.items():
        problems = texts(run_import(app, "customer", name, data))
        assert problems and problems[0].startswith(message), (name, problems)
    assert texts(run_import(app, "customer", "columns.xlsx", cases["columns.xlsx"][0]))[1:] == [
        "columns.xlsx!客户!C1: 没有“等级”这一列对应的字段（是否想写“客户等级”？）",
        "columns.xlsx!客户!1: 缺少必填列“公司名称”"]
    big = run_import(app, "customer", "big.csv", b"a" * (2 << 20), max_bytes=1 << 20)
    assert texts(big) == ["big.csv: 文件有 2.0 MB，超过上限 1 MB（CRM_IMPORT_MAX_MB）；请分成几个文件导入"]
    mixed = "公司名称\n华信\n".encode() + "东方\n".encode("gbk")
    assert texts(run_import(app, "customer", "mixed.csv", mixed)) == [
        "mixed.csv: 文件混用了两种编码：第 1 行是 UTF-8，第 3 行不是；请在 Excel 中另存为“CSV UTF-8”后再导入"]
    assert every_table(app) == before


def test_the_dry_run_counts_and_offers_the_file_back_with_the_problems_marked(demo: Any) -> None:
    before = every_table(demo)
    body = workbook(["公司名称", "统一社会信用代码"], ["甲化工", USCC], ["乙化工", "bad"])
    result = run_import(demo, "customer", "客户.xlsx", body, dry_run=True)
    assert texts(result) == ["客户.xlsx!客户!B3: 统一社会信用代码: "
                             "统一社会信用代码应为18位数字或大写字母(不含 I、O、Z、S、V)"]
    marked = openpyxl.load_workbook(io.BytesIO(render_error_book("客户.xlsx", body, result, 1 << 20)))
    ws = marked.worksheets[0]
    assert [c.value for c in ws[1]] == ["公司名称", "统一社会信用代码", "错误"]
    assert ws["C3"].value == result.problems[0].text() and ws["B3"].fill.fgColor.rgb.endswith("F8CBAD")
    assert ws["C2"].value is None
    good = run_import(demo, "customer", "客户.xlsx", workbook(["公司名称"], ["甲化工"], ["乙化工"]), dry_run=True)
    assert texts(good) == [] and good.counts == {"insert": 2, "update": 0, "unchanged": 0}
    assert every_table(demo) == before


# -- upsert, duplicates, batches -----------------------------------------------------------------

def test_upsert_counts_inserts_updates_and_unchanged_rows(demo: Any) -> None:
    stored = list(customers(demo).values())[:2]
    body = workbook(["统一社会信用代码", "公司名称", "客户等级"],
                    [stored[0].uscc, stored[0].name, stored[0].grade],
                    [stored[1].uscc, stored[1].name, "D"],
                    [USCC, "新客户有限公司", "B"])
    dry = run_import(demo, "customer", "u.xlsx", body, mode="upsert", key="uscc", dry_run=True)
    assert texts(dry) == [] and dry.counts == {"insert": 1, "update": 1, "unchanged": 1}
    done = run_import(demo, "customer", "u.xlsx", body, mode="upsert", key="uscc")
    assert done.counts == dry.counts
    now = customers(demo)
    assert now[stored[1].name].grade == "D" and now["新客户有限公司"].grade == "B"
    assert now[stored[1].name].row_version == stored[1].row_version + 1
    assert now[stored[0].name].row_version == stored[0].row_version


def test_likely_duplicates_are_flagged_and_imported_only_when_allowed(demo: Any) -> None:
    existing = next(iter(customers(demo).values()))
    assert company_key("华信化工（中国）有限公司") == company_key("华信化工") == company_key(" 华信化工 有限公司")
    body = workbook(["公司名称"], [existing.name.replace("有限公司", "") + "（中国）有限公司"], ["东方涂料"],
                    ["东方涂料股份有限公司"])
    dry = run_import(demo, "customer", "d.xlsx", body, dry_run=True)
    assert texts(dry) == [] and [d.text() for d in dry.duplicates] == [
        f"d.xlsx!客户!A2: 公司名称: 可能与已有记录重复：#{existing.id}“{existing.name}”",
        "d.xlsx!客户!A4: 公司名称: 可能与第 3 行重复（名称相近）"]
    refused = run_import(demo, "customer", "d.xlsx", body)
    assert texts(refused) == ["d.xlsx: 有 2 处可能与已有记录或本文件中的其他行重复，未导入；"
                              "核对后勾选“仍然导入可能重复的行”（命令行：--allow-duplicates）"]
    assert run_import(demo, "customer", "d.xlsx", body, allow_duplicates=True).counts["insert"] == 3


def test_a_batch_reverts_as_a_whole_and_a_changed_record_refuses_it(demo: Any) -> None:
    state = demo.extensions["crm"]
    stored = next(iter(customers(demo).values()))
    before = every_table(demo)
    body = workbook(["统一社会信用代码", "公司名称", "简称", "客户等级"], [stored.uscc, stored.name, "改后简称", "D"],
                    [USCC, "新客户甲", None, "A"], [None, "新客户乙", None, "B"])
    first = run_import(demo, "customer", "b.xlsx", body, mode="upsert", key="name")
    assert first.counts == {"insert": 2, "update": 1, "unchanged": 0}
    with demo.app_context():
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            session = demo.appbuilder.session
            model = state.models.model("customer")
            record = session.execute(sa.select(model).where(model.name == "新客户甲")).scalar_one()
            record.city = "苏州"
            session.commit()
            with pytest.raises(RevertRefused) as refused:
                revert_batch(state.models, session, state.keyring, first.batch_id)
            assert refused.value.text("zh") == f"客户“新客户甲”（#{record.id}）在导入后被修改过，请先核对该记录"
            record.city = None
            session.commit()
    with demo.app_context():
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            session = demo.appbuilder.session
            session.execute(sa.text("SELECT 1"))
            model = state.models.model("customer")
            record = session.execute(sa.select(model).where(model.name == "新客户甲")).scalar_one()
            # the city was set back, but the record's version moved on: still refused
            with pytest.raises(RevertRefused):
                revert_batch(state.models, session, state.keyring, first.batch_id)
    second = run_import(demo, "customer", "c.xlsx", workbook(["公司名称", "客户等级"], ["新客户丙", "C"]))
    with demo.app_context():
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            done = revert_batch(state.models, demo.appbuilder.session, state.keyring, second.batch_id)
    assert done.status == "reverted" and "新客户丙" not in customers(demo)
    assert customers(demo)[stored.name].short_name == "改后简称"
    del before


def test_revert_sets_updated_records_back_and_deletes_inserted_ones(demo: Any) -> None:
    state = demo.extensions["crm"]
    stored = next(iter(customers(demo).values()))
    tables_before = every_table(demo)
    body = workbook(["公司名称", "简称", "信用额度（元）"], [stored.name, "改后简称", 123], ["新客户甲", None, None])
    batch = run_import(demo, "customer", "b.xlsx", body, mode="upsert", key="name").batch_id
    with demo.app_context():
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            revert_batch(state.models, demo.appbuilder.session, state.keyring, batch)
            with pytest.raises(RevertRefused) as again:
                revert_batch(state.models, demo.appbuilder.session, state.keyring, batch)
    assert again.value.text("zh").startswith(f"第 {batch} 批导入已于 ")
    now = customers(demo)
    assert "新客户甲" not in now
    assert (now[stored.name].short_name, now[stored.name].credit_limit) == (stored.short_name, stored.credit_limit)
    changed = {name for name, rows in every_table(demo).items() if rows != tables_before[name]}
    assert changed <= {"crm_audit", "crm_audit_head", "crm_import_batch", "crm_import_row", "customer"}


# -- the gate ------------------------------------------------------------------------------------

def test_a_salesperson_imports_only_into_their_own_rows_and_not_into_read_only_fields(demo: Any) -> None:
    before = every_table(demo)
    body = workbook(["公司名称", "负责销售"], ["销售甲的新客户", "lina"])
    assert texts(run_import(demo, "customer", "s.xlsx", body, username="zhangwei")) == [
        "s.xlsx!客户!B2: 负责销售: “lina”：这里只能填写您本人"]
    body = workbook(["公司名称", "信用额度（元）"], ["销售甲的新客户", 900000])
    assert texts(run_import(demo, "customer", "s.xlsx", body, username="zhangwei")) == [
        "s.xlsx!客户!B2: 信用额度（元）: 您无权修改此字段（只读），请清空这一列或保持原值"]
    others = [c for c in customers(demo).values() if c.owner_id is not None
              and c.owner_id != user_id(demo, "zhangwei")]
    body = workbook(["公司名称", "简称"], [others[0].name, "改名"])
    assert texts(run_import(demo, "customer", "s.xlsx", body, username="zhangwei", mode="upsert", key="name")) == [
        f"s.xlsx!客户!A2: 公司名称: 已有公司名称为“{others[0].name}”的记录，但它不在您可修改的范围内（例如负责人不是您"
        f"）"]
    assert every_table(demo) == before
    done = run_import(demo, "customer", "s.xlsx", workbook(["公司名称"], ["销售甲的新客户"]), username="zhangwei")
    assert texts(done) == []
    assert customers(demo)["销售甲的新客户"].owner_id == user_id(demo, "zhangwei")


def test_an_export_holds_only_reachable_rows_and_seen_fields(demo: Any) -> None:
    rows = sheet_rows(run_export(demo, "customer", "zhangwei"))
    mine = {c.name for c in customers(demo).values()
            if c.owner_id == user_id(demo, "zhangwei")}
    assert rows[1][:3] == ("id", "name", "short_name") and {r[1] for r in rows[2:]} == mine
    products = sheet_rows(run_export(demo, "product", "zhaomin"))
    assert "formula" not in products[1] and "配方成分" not in products[0]
    with pytest.raises(ExportRefused) as refused:
        run_export(demo, "invoice", "zhangwei")
    assert refused.value.text("zh") == "您无权导出发票"


def test_encrypted_fields_export_masked_unless_revealed_and_a_reveal_is_recorded(make_app: Any,
                                                                               schema_dir: Path) -> None:
    roles = schema_dir / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8") + """
  qa:
    label: {zh: 质检, en: QA}
    tables:
      product:    {can: [read, export]}
""", encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    load_demo_data(app, scale=0.02)
    with app.app_context():
        app.appbuilder.sm.add_user("qa1", "质", "检", "qa1@example.com", app.appbuilder.sm.find_role("qa"),
                                   "qa-password-2026")
    masked = sheet_rows(run_export(app, "product", "qa1"))
    column = masked[1].index("formula")
    assert {r[column] for r in masked[2:]} <= {"●●●●", None} and any(r[column] for r in masked[2:])
    revealed = sheet_rows(run_export(app, "product", "sunli"))
    assert any(r[column] not in (None, "●●●●") for r in revealed[2:])
    with app.app_context():
        engine = app.extensions["crm"].db.engine
    with engine.connect() as conn:
        actions = [tuple(r) for r in conn.execute(sa.text(
            "SELECT username, action FROM crm_audit WHERE action IN ('export', 'reveal') ORDER BY id"))]
    assert actions == [("qa1", "export"), ("sunli", "export"), ("sunli", "reveal")]


def test_formula_like_text_is_neutralised_in_xlsx_and_csv(app: Any) -> None:
    run_import(app, "customer", "c.csv", "公司名称,备注\r\n=cmd|' /C calc'!A0,+1\r\n＠SUM(A1),-2\r\n".encode())
    rows = sheet_rows(run_export(app, "customer"))
    notes = rows[1].index("notes")
    assert sorted((r[1], r[notes]) for r in rows[2:]) == [("'=cmd|' /C calc'!A0", "'+1"), ("'＠SUM(A1)", "'-2")]
    book = openpyxl.load_workbook(io.BytesIO(run_export(app, "customer")))
    assert all(c.data_type == "s" for row in book.worksheets[0].iter_rows(min_row=3) for c in row[1:2])
    text = run_export(app, "customer", fmt="csv").decode("utf-8-sig")
    assert "1,'=cmd|' /C calc'!A0," in text and ",'+1,1\r\n" in text  # the last column: the version
    again = run_import(app, "customer", "back.csv", text.encode("utf-8-sig"), mode="upsert")
    assert texts(again) == [] and again.counts["unchanged"] == 2  # the quote an export adds is taken off again


def test_an_export_imports_back_unchanged(demo: Any) -> None:
    for table in ("customer", "contact", "product", "follow_up"):
        for fmt in ("xlsx", "csv"):
            body = run_export(demo, table, fmt=fmt)
            result = run_import(demo, table, f"{table}.{fmt}", body, mode="upsert")
            assert texts(result) == [], (table, fmt)
            assert result.counts["insert"] == result.counts["update"] == 0, (table, fmt, result.counts)
    empty = every_table(demo)
    body = run_export(demo, "customer")
    assert run_import(demo, "customer", "again.xlsx", body, mode="upsert").counts["unchanged"] == len(customers(demo))
    changed = {name for name, rows in every_table(demo).items() if rows != empty[name]}
    assert changed <= {"crm_audit", "crm_audit_head", "crm_import_batch"}


# -- the command line ----------------------------------------------------------------------------

def test_the_command_line_exports_imports_and_reverts(demo: Any, tmp_path: Path, monkeypatch: Any) -> None:
    for key, value in demo.config.items():
        if key.startswith("CRM_") and isinstance(value, (str, int)) and not isinstance(value, bool):
            monkeypatch.setenv(key, str(value))
    monkeypatch.setenv("CRM_ADMIN_PASSWORD", "test-root-pass-2026")
    runner = CliRunner()
    template = tmp_path / "模板.xlsx"
    done = runner.invoke(main, ["export", "customer", "--template", "-o", str(template)])
    assert done.exit_code == 0, done.output
    exported = tmp_path / "mine.csv"
    done = runner.invoke(main, ["export", "customer", "--as", "zhangwei", "--filter", "status=合作中", "-o",
                                str(exported)])
    assert done.exit_code == 0, done.output
    lines = exported.read_text(encoding="utf-8-sig").splitlines()
    assert done.output.strip() == f"Wrote {len(lines) - 1:,} rows of customer to {exported}"
    bad = runner.invoke(main, ["export", "customer", "--filter", "colour=red", "-o", str(tmp_path / "x.xlsx")])
    assert bad.exit_code == 2 and "customer 没有可筛选的字段“colour”" in bad.output
    source = tmp_path / "新客户.csv"
    source.write_text("公司名称,客户等级\n命令行客户,B\n", encoding="gbk")
    dry = runner.invoke(main, ["import", "customer", str(source), "--dry-run"])
    assert dry.exit_code == 0 and "Dry run, nothing written: 1 to insert, 0 to update, 0 unchanged." in dry.output
    done = runner.invoke(main, ["import", "customer", str(source)])
    assert done.exit_code == 0 and "inserted" in done.output, done.output
    batch = done.output.split("as batch ")[1].split(":")[0]
    refused = runner.invoke(main, ["import", "customer", str(source), "--errors", str(tmp_path / "errors.xlsx")])
    assert refused.exit_code == 1
    assert "新客户.csv!A2: 公司名称: 已存在相同的公司名称“命令行客户”" in refused.output
    assert (tmp_path / "errors.xlsx").exists()
    listed = runner.invoke(main, ["imports", "list"])
    assert f"{batch:>5}" in listed.output and "新客户.csv" in listed.output
    reverted = runner.invoke(main, ["imports", "revert", batch])
    assert reverted.exit_code == 0, reverted.output
    assert "命令行客户" not in customers(demo)


# -- the screens ---------------------------------------------------------------------------------

def test_a_salesperson_imports_through_the_screen_checks_first_then_confirms(demo: Any) -> None:
    from app.seed import DEMO_PASSWORD
    from conftest import Browser
    browser = Browser(demo, "zhangwei", DEMO_PASSWORD)
    listing = browser.get("/t/customer/list/").text
    assert "crm-import-link" in listing and "crm-export-link" in listing
    template = browser.get("/t/customer/import/template")
    assert template.status_code == 200 and "filename*=UTF-8''%E5%AE%A2%E6%88%B7" in template.headers[
        "Content-Disposition"]
    body = workbook(["公司名称", "客户等级"], ["屏幕导入甲", "A类（战略客户）"], ["屏幕导入乙", "B"])
    page = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "屏幕导入.xlsx"), "mode": "insert"},
                          content_type="multipart/form-data")
    assert page.status_code == 200 and "检查通过：将新增 2 条、更新 0 条、0 条不变" in page.text
    assert "屏幕导入甲" not in customers(demo)
    upload = re.search(r'name="upload" value="([0-9a-f]{64})"', page.text)
    assert upload is not None
    done = browser.submit("/t/customer/import/", {"confirm": "1", "upload": upload.group(1),
                                                  "file_name": "屏幕导入.xlsx", "mode": "insert"})
    assert done.status_code == 302
    stored = customers(demo)
    assert stored["屏幕导入甲"].grade == "A" and stored["屏幕导入乙"].owner_id == user_id(demo, "zhangwei")
    bad = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "again.xlsx")},
                         content_type="multipart/form-data")
    assert "发现 2 个问题，未导入任何数据" in bad.text
    assert "again.xlsx!客户!A2: 公司名称: 已存在相同的公司名称“屏幕导入甲”" in bad.text
    marked = re.search(r'href="(/t/customer/import/errors/[^"]+)"', bad.text)
    assert marked is not None
    errors = browser.get(marked.group(1).replace("&amp;", "&"))
    assert errors.status_code == 200 and sheet_rows(errors.data)[0][-1] == "错误"
    batches = browser.get("/imports/").text
    assert "屏幕导入.xlsx" in batches
    batch = visible_batches_as(demo, "zhangwei")[0]
    reverted = browser.submit("/imports/", {}, post_url=f"/imports/{batch.id}/revert")
    assert reverted.status_code == 302 and "屏幕导入甲" not in customers(demo)


def test_the_screen_exports_the_lists_current_filter_and_refuses_without_the_verb(demo: Any) -> None:
    from app.seed import DEMO_PASSWORD
    from conftest import Browser
    browser = Browser(demo)
    everyone = sheet_rows(browser.get("/t/customer/export/xlsx").data)
    assert len(everyone) == len(customers(demo)) + 2
    grade_a = [c.name for c in customers(demo).values() if c.grade == "A"]
    filtered = sheet_rows(browser.get("/t/customer/export/xlsx?_flt_0_grade=A").data)
    assert sorted(r[1] for r in filtered[2:]) == sorted(grade_a)
    csv_body = browser.get("/t/customer/export/csv?_flt_0_grade=A").data.decode("utf-8-sig")
    assert len(csv_body.strip().splitlines()) == len(grade_a) + 1
    service = Browser(demo, "liuyang", DEMO_PASSWORD)
    assert "crm-export-link" not in service.get("/t/customer/list/").text
    assert service.get("/t/customer/export/xlsx").status_code in (302, 403)
    assert service.get("/t/customer/import/").status_code in (302, 403)
    assert service.get("/imports/").status_code in (302, 403)


def order_book(orders: list[list[Any]], lines: list[list[Any]]) -> bytes:
    book = openpyxl.Workbook()
    first = book.active
    assert first is not None
    first.title = "销售订单"
    first.append(["订单号", "客户", "下单日期", "销售员"])
    for row in orders:
        first.append(row)
    second = book.create_sheet("订单明细")
    second.append(["订单", "产品", "数量", "单价"])
    for row in lines:
        second.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_inline_children_come_from_a_second_sheet_keyed_by_the_parents_number(demo: Any) -> None:
    state = demo.extensions["crm"]
    company = next(iter(customers(demo).values())).name
    with demo.app_context():
        product = demo.appbuilder.session.execute(sa.select(state.models.model("product"))).scalars().first()
        product_name, price = product.name, product.unit_price
    before = every_table(demo)
    bad = order_book([["IMP-001", company, "2026-11-02", "zhangwei"]],
                     [["IMP-001", product_name, 2, 100], ["IMP-404", product_name, 1, None],
                      ["IMP-001", "无此产品", 1, 5]])
    assert texts(run_import(demo, "order", "订单.xlsx", bad)) == [
        "订单.xlsx!订单明细!A3: 订单: 找不到销售订单“IMP-404”（应为本文件“销售订单”表中某行的订单号）",
        "订单.xlsx!订单明细!B4: 产品: 找不到产品“无此产品”（可填产品名称或产品编码）"]
    assert every_table(demo) == before
    good = order_book([["IMP-001", company, "2026-11-02", "zhangwei"], ["IMP-002", company, "2026-11-03", None]],
                      [["IMP-001", product_name, 2, 100], ["IMP-001", product_name, 3, None],
                       ["IMP-002", product_name, 1.5, 20]])
    result = run_import(demo, "order", "订单.xlsx", good)
    assert texts(result) == [] and result.counts["insert"] == 2 and result.children == {"order_line": 3}
    order_model, line_model = state.models.model("order"), state.models.model("order_line")
    with demo.app_context():
        session = demo.appbuilder.session
        orders = {o.number: o for o in session.execute(sa.select(order_model).where(
            order_model.number.in_(["IMP-001", "IMP-002"]))).scalars()}
        assert orders["IMP-001"].total == Decimal(200) + 3 * price  # computed from the lines, unit price defaulted
        assert orders["IMP-002"].total == Decimal(30) and orders["IMP-001"].line_count == 2
        lines = session.execute(sa.select(sa.func.count()).select_from(line_model).where(
            line_model.order_id.in_([o.id for o in orders.values()]))).scalar()
        assert lines == 3
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            revert_batch(state.models, session, state.keyring, result.batch_id)
    assert every_table(demo)["order_line"] == before["order_line"]
    assert every_table(demo)["order"] == before["order"]


def test_an_export_of_more_rows_than_one_batch_has_every_row(app: Any) -> None:
    """Rows are loaded a batch at a time (1,000); every database gives all of them, in order."""
    state = app.extensions["crm"]
    with app.app_context():
        table = state.models.metadata.tables["customer"]
        with state.db.engine.begin() as conn:
            conn.execute(table.insert(), [{"name": f"批量客户{n:05d}", "grade": "C", "status": "active",
                                           "row_version": 1} for n in range(2345)])
    for fmt in ("xlsx", "csv"):
        body = run_export(app, "customer", fmt=fmt)
        if fmt == "xlsx":
            names = [r[1] for r in sheet_rows(body)[2:]]
        else:
            names = [line.split(",")[1] for line in body.decode("utf-8-sig").splitlines()[1:]]
        assert names == [f"批量客户{n:05d}" for n in range(2345)], fmt
