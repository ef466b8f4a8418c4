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


def test_a_sheet_reaching_a_far_cell_is_refused_before_it_is_read(demo: Any) -> None:
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
    browser = Browser(demo)
    page = browser.submit("/t/customer/import/", {"file": (io.BytesIO(out.getvalue()), "far.xlsx")},
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
