"""Imports and exports attacked: another user's records through an upsert, values guessed through an
upsert's "unchanged", files made to exhaust memory or to carry formulas and headers, uploads and jobs of
other users, reverts that would write invalid data — each answered with a message, nothing changed.
(Found by a hostile review of the first version; each test failed against it.)"""
from __future__ import annotations

import io
import re
import shutil
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from app.cli import main
from app.security.acting import acting_as
from app.seed import DEMO_PASSWORD, load_demo_data
from app.transfer.batches import RevertRefused, revert_batch
from conftest import Browser
from test_transfer import customers, every_table, run_export, run_import, sheet_rows, texts, user_id, workbook


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.02)
    return app


def others_customer(app: Any, username: str = "zhangwei") -> Any:
    mine = user_id(app, username)
    return next(c for c in customers(app).values() if c.owner_id not in (None, mine))


def test_an_upsert_cannot_take_over_another_salespersons_customer_by_id_or_by_name(demo: Any) -> None:
    """zhangwei names lina's customer by its ID or its name and sets himself as its owner: refused,
    without telling whether an ID exists."""
    other = others_customer(demo)
    before = every_table(demo)
    by_id = workbook(["编号", "负责销售"], [other.id, "zhangwei"], keys=["id", "owner"])
    assert texts(run_import(demo, "customer", "t.xlsx", by_id, "zhangwei", mode="upsert")) == [
        f"t.xlsx!客户!A3: 没有编号为 {other.id} 的记录（或您无权修改它）"]
    assert texts(run_import(demo, "customer", "t.xlsx", workbook(["编号", "负责销售"], [999999, "zhangwei"]),
                            "zhangwe"
                            "i", mode="upsert")) == ["t.xlsx!客户!A2: 没有编号为 999999 的记录（或您无权修改它）"]
    by_name = workbook(["公司名称", "负责销售"], [other.name, "张伟"])
    assert texts(run_import(demo, "customer", "t.xlsx", by_name, "zhangwei", mode="upsert", key="name")) == [
        f"t.xlsx!客户!A2: 公司名称: 已有公司名称为“{other.name}”的记录，但它不在您可修改的范围内（例如负责人不是您）"]
    assert every_table(demo) == before
    browser = Browser(demo, "zhangwei", DEMO_PASSWORD)
    page = browser.submit("/t/customer/import/", {"file": (io.BytesIO(by_id), "t.xlsx"), "mode": "upsert"},
                          content_type="multipart/form-data")
    assert "发现 1 个问题，未导入任何数据" in page.text and 'name="confirm"' not in page.text
    assert every_table(demo)["customer"] == before["customer"]


def test_an_upsert_cannot_move_another_salespersons_contact_into_ones_own_customer(demo: Any) -> None:
    model = demo.extensions["crm"].models.model("contact")
    mine = next(c for c in customers(demo).values() if c.owner_id == user_id(demo, "zhangwei"))
    with demo.app_context():
        theirs = next(c for c in demo.appbuilder.session.execute(sa.select(model)).scalars()
                      if c.customer.owner_id not in (None, user_id(demo, "zhangwei")))
        contact_id = theirs.id
    before = every_table(demo)
    body = workbook(["编号", "所属客户"], [contact_id, mine.name])
    assert texts(run_import(demo, "contact", "c.xlsx", body, "zhangwei", mode="upsert")) == [
        f"c.xlsx!客户!A2: 没有编号为 {contact_id} 的记录（或您无权修改它）"]
    assert every_table(demo) == before


def test_an_upsert_tells_nothing_of_values_the_user_may_not_see(make_app: Any, tmp_path: Path) -> None:
    """A role that may update products but not reveal formulas guesses the formula: every guess, the
    right one included, gets the same refusal; another's customer's grade cannot be probed either."""
    schema = tmp_path / "schema"
    shutil.copytree(Path(__file__).resolve().parent.parent / "schema", schema)
    roles = schema / "roles.yaml"
    roles.write_text(roles.read_text(encoding="utf-8") + (
        "  qa:\n    label: {zh: 质检, en: QA}\n    tables:\n"
        "      product: {can: [read, update, import], hide: [process_notes]}\n"), encoding="utf-8")
    app = make_app(schema_dir=schema)
    load_demo_data(app, scale=0.02)
    model = app.extensions["crm"].models.model("product")
    with app.app_context():
        from app.security.users import add_user
        add_user(app.appbuilder, "qa1", "qa", DEMO_PASSWORD)
        product = app.appbuilder.session.execute(sa.select(model).where(model.formula.is_not(None))).scalars().first()
        pid, formula = product.id, product.formula
    guesses = workbook(["编号", "配方成分"], [pid, "水 100%"], keys=["id", "formula"])
    right = workbook(["编号", "配方成分"], [pid, formula], keys=["id", "formula"])
    refusal = "p.xlsx!Sheet!B3: 配方成分: 您无权查看或修改这个加密字段；请留空，或保持导出时的遮罩值"
    for body in (guesses, right):
        found = texts(run_import(app, "product", "p.xlsx", body, "qa1", mode="upsert", dry_run=True))
        assert [t.replace("!客户!", "!Sheet!") for t in found] == [refusal]
    hidden = workbook(["编号", "生产工艺说明"], [pid, "x"])
    assert texts(run_import(app, "product", "p.xlsx", hidden, "qa1", mode="upsert")) == [
        "p.xlsx!客户!B1: 没有“生产工艺说明”这一列对应的字段"]  # no did-you-mean naming a hidden field either


def test_the_same_record_twice_in_one_file_is_refused(demo: Any) -> None:
    target = next(iter(customers(demo).values()))
    body = workbook(["编号", "备注"], [target.id, "第一次"], [target.id, "第二次"])
    assert texts(run_import(demo, "customer", "twice.xlsx", body, mode="upsert")) == [
        f"twice.xlsx!客户!A3: 与第 2 行是同一条记录（#{target.id}）；每条记录只能在文件中出现一次"]


def test_importing_an_export_back_never_overwrites_a_change_made_after_the_export(demo: Any) -> None:
    exported = run_export(demo, "customer")
    book = openpyxl.load_workbook(io.BytesIO(exported))
    sheet = book.worksheets[0]
    keys = [c.value for c in sheet[2]]
    assert keys[-1] == "row_version" and sheet.column_dimensions[openpyxl.utils.get_column_letter(len(keys))].hidden
    first_id = sheet.cell(3, 1).value
    model = demo.extensions["crm"].models.model("customer")
    with demo.app_context():  # someone changes the phone after the export
        record = demo.appbuilder.session.get(model, first_id)
        record.phone, name = "0571-88886666", record.name
        demo.appbuilder.session.commit()
    sheet.cell(3, keys.index("notes") + 1, "导出后补充的备注")
    edited = io.BytesIO()
    book.save(edited)
    result = run_import(demo, "customer", "导出.xlsx", edited.getvalue(), mode="upsert")
    assert texts(result) == ["导出.xlsx!客户!3: 这条记录在导出之后被修改过（导出时是第 1 版，现在是第 2 版）；"
                             "请重新导出，在新文件上修改后再导入"]
    assert customers(demo)[name].phone == "0571-88886666"


def test_a_revert_that_would_write_invalid_data_is_refused_with_the_reason(demo: Any) -> None:
    state = demo.extensions["crm"]
    stored = list(customers(demo).values())
    renamed, taker = stored[0], stored[1]
    result = run_import(demo, "customer", "rename.xlsx", workbook(["编号", "公司名称"], [renamed.id, "改名后的公司"]),
                        mode="upsert")
    assert texts(result) == [] and result.counts["update"] == 1
    model = state.models.model("customer")
    with demo.app_context():
        demo.appbuilder.session.get(model, taker.id).name = renamed.name  # another takes the old name meanwhile
        demo.appbuilder.session.commit()
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            with pytest.raises(RevertRefused) as refused:
                revert_batch(state.models, demo.appbuilder.session, state.keyring, result.batch_id)
    assert refused.value.text("zh") == (f"客户“改名后的公司”（#{renamed.id}）原来的公司名称“{renamed.name}”"
                                        f"现在已被 #{taker.id} 使用，无法恢复")
    assert texts(run_import(demo, "customer", "n.xlsx", workbook(["公司名称"], ["将被删除的公司"]))) == []
    assert texts(run_import(demo, "contac"
                                  "t", "n.xlsx", workbook(["所属客户", "姓名"], ["将被删除的公司", "周工"]))) == []
    contact_model = state.models.model("contact")
    with demo.app_context():
        contact = demo.appbuilder.session.execute(sa.select(contact_model).where(contact_model.name == "周工")).scalar()
        old_customer, contact_id = contact.customer_id, contact.id
    moved = run_import(demo, "contact", "move.xlsx", workbook(["编号", "所属客户"], [contact_id, stored[3].name]),
                       mode="upsert")
    assert texts(moved) == []
    with demo.app_context():
        demo.appbuilder.session.delete(demo.appbuilder.session.get(model, old_customer))
        demo.appbuilder.session.commit()
        with acting_as(demo, demo.appbuilder.sm.find_user(username="admin")):
            with pytest.raises(RevertRefused) as refused:
                revert_batch(state.models, demo.appbuilder.session, state.keyring, moved.batch_id)
        assert demo.appbuilder.session.get(contact_model, contact_id).customer_id == stored[3].id
    assert f"原来的所属客户（#{old_customer}）已被删除，无法恢复" in refused.value.text("zh")


def test_a_sheet_reaching_a_far_cell_is_refused_before_it_is_read(demo: Any, make_app: Any) -> None:
    """One cell at XFD1048576 in a 2 KB file would take 550 GB to read as a grid."""
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "客户"
    sheet.append(["公司名称"])
    sheet.append(["远方化工"])
    sheet["XFD1048576"] = "x"
    out = io.BytesIO()
    book.save(out)
    assert len(out.getvalue()) < 10_000
    message = ("far.xlsx: 工作表“客户”的数据区域过大（一直到单元格 XFD1048576：1048576 行 × 16384 列）；"
               "请删除多余的行和列（或远处的单元格），或分成几个文件导入")
    assert texts(run_import(demo, "customer", "far.xlsx", out.getvalue())) == [message]
    checked_here = make_app(CRM_JOB_ROWS=10_000_000)  # counted without reading: 1,048,576 rows, under this
    page = Browser(checked_here).submit("/t/customer/import/", {"file": (io.BytesIO(out.getvalue()), "far.xlsx")},
                                        content_type="multipart/form-data")
    assert page.status_code == 200 and message in page.text


def test_a_csv_quote_left_open_does_not_swallow_the_rows_after_it(demo: Any) -> None:
    before = every_table(demo)
    body = '公司名称,备注\n甲公司,"开始\n乙公司,x\n丙公司,y\n'.encode()
    assert texts(run_import(demo, "customer", "q.csv", body)) == [
        'q.csv: 第 2 行起的引号（"）没有配对，从这里往后的内容无法分清各列；请检查这一行的引号']
    assert every_table(demo) == before


def test_excel_error_values_are_refused_not_read_as_empty(demo: Any) -> None:
    target = next(c for c in customers(demo).values() if c.city)
    body = workbook(["编号", "城市", "信用额度（元）"], [target.id, "#N/A", "#DIV/0!"])
    assert texts(run_import(demo, "customer", "e.xlsx", body, mode="upsert")) == [
        "e.xlsx!客户!B2: 城市: 单元格是错误值 #N/A（公式出错或引用失效）；请改为正确的值",
        "e.xlsx!客户!C2: 信用额度（元）: 单元格是错误值 #DIV/0!（公式出错或引用失效）；请改为正确的值"]
    assert customers(demo)[target.name].city == target.city


def test_names_from_the_request_never_become_formulas_headers_or_database_errors(demo: Any) -> None:
    browser = Browser(demo)
    body = workbook(["公司名称", "统一社会信用代码"], ["甲化工", "bad"])
    page = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "=1+2\u202e\x00.xlsx")},
                          content_type="multipart/form-data")
    assert page.status_code == 200 and "=1+2.xlsx!客户!B2" in page.text
    link = re.search(r'href="(/t/customer/import/errors/[^"]+)"', page.text)
    assert link is not None
    marked = browser.get(link.group(1).replace("&amp;", "&"))
    sheet = openpyxl.load_workbook(io.BytesIO(marked.data)).worksheets[0]
    assert sheet["C2"].value.startswith("=1+2.xlsx!") and sheet["C2"].data_type == "s"
    listed = openpyxl.load_workbook(io.BytesIO(marked.data)).worksheets[1]
    assert [c.value for c in listed[1]] == ["位置", "字段", "问题"] and listed["A2"].data_type == "s"
    token = link.group(1).split("/")[-1].split("?")[0]
    crafted = browser.get(f"/t/customer/import/errors/{token}?name=a%0d%0aSet-Cookie:%20x=1%22;%20filename=%22evil.exe")
    assert crafted.status_code == 200
    disposition = crafted.headers["Content-Disposition"]
    assert "\n" not in disposition and disposition.count("filename=") == 1 and "Set-Cookie" not in crafted.headers
    result = run_import(demo, "customer", "a\x00b\u202e.xlsx", workbook(["公司名称"], ["名字干净的公司"]))
    assert texts(result) == [] and result.file == "ab.xlsx"


def test_an_upload_and_a_job_belong_to_the_user_who_made_them(demo: Any) -> None:
    zhang = Browser(demo, "zhangwei", DEMO_PASSWORD)
    body = workbook(["公司名称"], ["张伟上传的公司"])
    page = zhang.submit("/t/customer/import/", {"file": (io.BytesIO(body), "mine.xlsx")},
                        content_type="multipart/form-data")
    token = re.search(r'name="upload" value="([0-9a-f]{64})"', page.text)
    assert token is not None
    lina = Browser(demo, "lina", DEMO_PASSWORD)
    assert lina.get(f"/t/customer/import/errors/{token.group(1)}?name=x.xlsx").status_code == 404
    stolen = lina.submit("/t/customer/import/", {"confirm": "1", "upload": token.group(1), "file_name": "x.xlsx"})
    assert "上传的文件已失效，请重新选择文件" in stolen.text and "张伟上传的公司" not in customers(demo)


def test_only_roles_with_import_may_import_on_any_surface(demo: Any, tmp_path: Path, monkeypatch: Any) -> None:
    """liuyang (service) may add contacts on the screens but not import them; sales may not import
    follow-ups: refused by the importer itself, so the command line and jobs refuse too."""
    before = every_table(demo)
    company = next(iter(customers(demo).values())).name
    contacts = workbook(["所属客户", "姓名"], [company, "客服导入"])
    assert texts(run_import(demo, "contact", "c.xlsx", contacts, "liuyang")) == ["c.xlsx: 您无权导入联系人"]
    path = tmp_path / "跟进记录.csv"
    path.write_text(f"客户,跟进日期,主题\n{company},2026-12-01,电话回访\n", encoding="utf-8")
    for key, value in demo.config.items():
        if key.startswith("CRM_") and isinstance(value, str | int) and not isinstance(value, bool):
            monkeypatch.setenv(key, str(value))
    answer = CliRunner().invoke(main, ["import", "follow_up", str(path), "--as", "zhangwei"])
    assert answer.exit_code == 1 and "跟进记录.csv: 您无权导入跟进记录" in answer.output
    assert every_table(demo) == before


def test_a_dry_run_counts_each_row_once_when_the_database_refuses_a_chunk(demo: Any) -> None:
    model = demo.extensions["crm"].models.model("contact")
    with demo.app_context():
        contacts = demo.appbuilder.session.execute(sa.select(model).order_by(model.id)).scalars().all()
        mine, other = contacts[0], next(c for c in contacts if c.customer_id != contacts[0].customer_id)
        customer_name, own, foreign = str(mine.customer), f"{mine.name} #{mine.id}", f"{other} #{other.id}"
    body = workbook(["客户", "联系人", "跟进日期", "主题"], [customer_name, own, "2026-11-02", "回访一"],
                    [customer_name, foreign, "2026-11-03", "回访二"], [customer_name, own, "2026-11-04", "回访三"])
    result = run_import(demo, "follow_up", "回访.xlsx", body, dry_run=True)
    assert [p.place() for p in result.problems] == ["回访.xlsx!客户!B3"]
    assert result.counts == {"insert": 2, "update": 0, "unchanged": 0}
    assert sheet_rows(run_export(demo, "follow_up"))[0][0] == "编号"


def test_an_import_may_be_as_large_as_its_own_limit_and_says_so_beyond_it(make_app: Any) -> None:
    """MAX_CONTENT_LENGTH stays the limit of every other request; an import's upload may reach
    CRM_IMPORT_MAX_MB, and a larger file gets the import's own message naming the setting."""
    app = make_app(MAX_CONTENT_LENGTH=1 << 20, CRM_IMPORT_MAX_MB=2)
    browser = Browser(app)
    rows = "".join(f"批量公司{n:06d},{'备注' * 20}\n" for n in range(12000))
    body = ("公司名称,备注\n" + rows).encode()
    assert (1 << 20) < len(body) < (2 << 20)
    page = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "大文件.csv")},
                          content_type="multipart/form-data")
    assert page.status_code == 302 and "/jobs/" in page.location  # over CRM_JOB_ROWS: checked as a job
    page.request.input_stream.close()  # the test client put the large body in a temporary file
    too_big = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body * 2), "太大.csv")},
                             content_type="multipart/form-data")
    assert too_big.status_code == 413
    assert "文件超过导入上限 2 MB（CRM_IMPORT_MAX_MB）；请分成几个文件导入" in too_big.text
    too_big.request.input_stream.close()
    just_over = browser.submit("/t/customer/import/", {"file": (io.BytesIO(body + body[:700_000]), "稍大.csv")},
                               content_type="multipart/form-data")
    assert just_over.status_code == 200
    assert "稍大.csv: 文件有 2.3 MB，超过上限 2 MB（CRM_IMPORT_MAX_MB）" in just_over.text
    assert "crm-import-errors" not in just_over.text  # nothing was kept, so there is no marked file to offer
    just_over.request.input_stream.close()
    other = browser.client.post("/t/customer/add", data={"name": "x" * (2 << 20)})
    assert other.status_code == 413
    other.request.input_stream.close()


# -- a second review: files written to slip past the first fixes -------------------------------------

def with_sheet_xml(sheet_data: str) -> bytes:
    """Return a workbook whose one sheet's <sheetData> is `sheet_data` (valid XML written in ways
    openpyxl never writes: single quotes, cells without r, lower case references)."""
    import zipfile
    book = openpyxl.Workbook()
    book.active["A1"] = "公司名称"  # type: ignore[index]
    base = io.BytesIO()
    book.save(base)
    source = zipfile.ZipFile(io.BytesIO(base.getvalue()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                start, end = text.index("<sheetData"), text.index("</sheetData>") + len("</sheetData>")
                data = (text[:start] + f"<sheetData>{sheet_data}</sheetData>" + text[end:]).encode()
            target.writestr(item, data)
    return out.getvalue()


HEADING = "<row r='1'><c r='A1' t='inlineStr'><is><t>公司名称</t></is></c></row>"


@pytest.mark.parametrize("case, sheet_data, message", [
    ("single quotes", HEADING + "<row r='1048576'><c r='XFD1048576'><v>1</v></c></row>",
     "工作表“Sheet”的数据区域过大（一直到单元格 XFD1048576：1048576 行 × 16384 列）"),
    ("lower case", HEADING + '<row r="20000"><c r="all20000"><v>1</v></c></row>',
     "工作表“Sheet”的数据区域过大（一直到单元格 ALL20000：20000 行 × 1000 列）"),
    ("cells without r", HEADING + "<row>" + "<c><v>1</v></c>" * 1001 + "</row>",
     "工作表“Sheet”的数据区域过大（一直到单元格 ALM2：2 行 × 1001 列）"),
    ("rows without r", HEADING + "<row><c r='ALL2'><v>1</v></c></row>" + "<row/>" * 6000,
     "工作表“Sheet”的数据区域过大（一直到单元格 ALL5001：5001 行 × 1000 列）"),
    ("a tag never closed", HEADING + "<c <c " * 40000, "文件已损坏，不是有效的 .xlsx 工作簿"),
    ("a reference that is non"
     "e", HEADING + '<row r="2"><c r="A-2"><v>1</v></c></row>', "文件已损坏，不是有效的 .xlsx 工作簿"),
])
def test_sheet_xml_written_any_valid_way_is_read_as_calamine_reads_it(app: Any, case: str, sheet_data: str,
                                                                      message: str) -> None:
    """The sheet is parsed as XML (expat, linear whatever it holds), not matched by patterns: quotes,
    case and implicit positions cannot hide a far cell, and junk fails at once."""
    found = texts(run_import(app, "customer", "x.xlsx", with_sheet_xml(sheet_data)))
    assert len(found) == 1 and found[0].startswith(f"x.xlsx: {message}"), (case, found)


def test_error_and_formula_cells_are_found_however_their_attributes_are_written(app: Any) -> None:
    body = with_sheet_xml(
        HEADING.replace("公司名称", "公司名称</t></is></c><c r='B1' t='inlineStr'><is><t>城市") +
        "<row r='2'><c t='inlineStr' r='A2'><is><t>甲</t></is></c><c t=\"e\"><v>#REF!</v></c></row>"
        "<row r='3'><c r='A3' t='inlineStr'><is><t>乙</t></is></c><c s='0' r='B3'><f>1+1</f><v>2</v></c></row>")
    assert texts(run_import(app, "customer", "m.xlsx", body)) == [
        "m.xlsx!Sheet!B2: 城市: 单元格是错误值 #REF!（公式出错或引用失效）；请改为正确的值",
        "m.xlsx!Sheet!B3: 城市: 单元格是公式（=1+1），请改为数值（复制后“选择性粘贴 → 数值”）"]


def test_damaged_excel_97_files_are_refused_never_a_server_error(app: Any) -> None:
    import random

    import xlwt
    book = xlwt.Workbook()
    sheet = book.add_sheet("客户")
    sheet.write(0, 0, "公司名称")
    sheet.write(0, 1, "许可证有效期至")
    sheet.write(1, 0, "甲")
    sheet.write(1, 1, 1e10, xlwt.easyxf(num_format_str="yyyy-mm-dd"))  # a day no calendar has
    out = io.BytesIO()
    book.save(out)
    good = out.getvalue()
    assert texts(run_import(app, "customer", "d.xls", good)) == [
        "d.xls!客户!B2: 许可证有效期至: 应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日"]
    rng = random.Random(7)
    for _ in range(60):
        broken = bytearray(good)
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(512, len(broken))] = rng.randrange(256)
        result = run_import(app, "customer", "broken.xls", bytes(broken), dry_run=True)
        assert all(isinstance(t, str) for t in texts(result))  # a message or an import, never an exception


def test_the_heading_row_is_the_one_naming_most_fields_and_nothing_is_dropped_unseen(demo: Any) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["客户"])  # an alias of the company name, standing alone as the list's title
    sheet.append(["公司名称", "城市", "信用额度（元）"])
    sheet.append(["标题识别化工", "苏州", 10000])
    result = run_import(demo, "customer", "t.xlsx", saved(book))
    assert texts(result) == [] and result.counts["insert"] == 1
    stored = customers(demo)["标题识别化工"]
    assert (stored.city, stored.credit_limit) == ("苏州", 10000) and "公司名称" not in customers(demo)
    above = openpyxl.Workbook()
    sheet = above.active
    assert sheet is not None
    sheet.append(["排序后跑到上面的化工", "无锡", 5000])
    sheet.append(["公司名称", "城市", "信用额度（元）"])
    sheet.append(["正常的化工", "南京", 6000])
    assert texts(run_import(demo, "customer", "t.xlsx", saved(above))) == [
        "t.xlsx!Sheet!1: 这一行在标题行（第 2 行）上方，却填了 3 格：标题行上方只能是表格的标题；请删除这一行，"
        "或把标题行移到最上面"]
    headless = workbook(["公司名称", "城市"], ["正常的化工", "南京", None, "没有标题的一格"], ["另一家化工", None, "x"])
    assert texts(run_import(demo, "customer", "h.xlsx", headless)) == [
        "h.xlsx!客户!D2: 这一列没有标题，却有数据（从这一行起）；请补上标题，或删除这一列",
        "h.xlsx!客户!C3: 这一列没有标题，却有数据（从这一行起）；请补上标题，或删除这一列"]


def saved(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_a_template_whose_headings_were_moved_over_its_hidden_keys_is_refused(app: Any) -> None:
    body = workbook(["备注", "公司名称"], ["这是备注", "甲"], keys=["short_name", "name"])
    assert texts(run_import(app, "customer", "t.xlsx", body)) == [
        "t.xlsx!客户!A1: 列标题“备注”与模板隐藏行中的字段“简称”不一致；请不要移动或改写模板的列标题"]


def test_odd_numbers_and_a_first_row_named_like_a_total_are_answered(demo: Any) -> None:
    target = next(iter(customers(demo).values()))
    big = "9" * 5000
    assert texts(run_import(demo, "customer", "n.xlsx", workbook(["编号", "备注"], [big, "x"]), mode="upsert")) == [
        f"n.xlsx!客户!A2: “{big}”不是编号（应为整数）"]
    feedback = workbook(["客户", "反馈类型", "主题", "反馈内容", "满意度"], [target.name, "complaint", "x", "y", big])
    assert texts(run_import(demo, "feedback", "f.xlsx", feedback)) == [
        "f.xlsx!客户!E2: 满意度: 数值超出范围:应在 -2147483648 到 2147483647 之间"]
    totals_first = workbook(["公司名称"], ["合计"], ["真的客户"])
    result = run_import(demo, "customer", "t.xlsx", totals_first)
    assert texts(result) == [] and [n.text() for n in result.notes] == ["t.xlsx!客户: 第 2 行是合计行，未导入"]


def test_a_user_keeps_only_a_few_checked_uploads(demo: Any) -> None:
    browser = Browser(demo)
    body = workbook(["公司名称"], ["甲"])
    for _ in range(8):
        browser.submit("/t/customer/import/", {"file": (io.BytesIO(body), "same.xlsx")},
                       content_type="multipart/form-data")
    folder = Path(demo.config["CRM_INSTANCE_DIR"]) / "imports" / str(user_id(demo, "admin"))
    assert len(list(folder.iterdir())) == 5


def test_an_unchanged_row_of_an_old_export_is_no_conflict(demo: Any) -> None:
    exported = run_export(demo, "customer")
    rows = sheet_rows(exported)
    model = demo.extensions["crm"].models.model("customer")
    with demo.app_context():  # changed after the export, and changed back: its version moved on twice
        record = demo.appbuilder.session.get(model, rows[2][0])
        phone, record.phone = record.phone, "0571-88886666"
        demo.appbuilder.session.commit()
        demo.appbuilder.session.get(model, rows[2][0]).phone = phone
        demo.appbuilder.session.commit()
    result = run_import(demo, "customer", "old.xlsx", exported, mode="upsert")
    assert texts(result) == [] and result.counts == {"insert": 0, "update": 0, "unchanged": len(rows) - 2}
