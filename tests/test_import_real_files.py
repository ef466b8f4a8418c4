"""Imports of files as Chinese offices make them, not from our template: a title row above the
headings, row numbers, a totals row, headings of their own, amounts in 万, dates as Excel day numbers,
percentages, codes in full-width forms, blank cells in an update, orders with their lines, the same
file twice. (Found by a review as a new user's first day; each test failed against the first version.)"""
from __future__ import annotations

import datetime
import io
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa

from app.schema import SchemaError, load_schema_text
from app.seed import load_demo_data
from app.transfer.errorbook import render_error_book
from test_transfer import (
    USCC,
    customers,
    every_table,
    order_book,
    run_export,
    run_import,
    sheet_rows,
    texts,
    user_id,
    workbook,
)


@pytest.fixture
def demo(make_app: Any) -> Any:
    app = make_app()
    load_demo_data(app, scale=0.02)
    return app


def saved(book: Any) -> bytes:
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_an_office_list_with_a_title_row_row_numbers_its_own_headings_and_a_totals_row(demo: Any) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "客户"
    sheet.append(["2025年客户名单"])
    sheet.merge_cells("A1:E1")
    sheet.append(["序号", "客户名称", "联系电话", "信用额度", "负责人"])
    sheet.append([1, "华东精细化工有限公司", "(021)12345678", "100万", "张 伟"])
    sheet.append([None, None, None, None, None])
    sheet.append([2, "滨海助剂有限公司", "138-1234-5678", "￥50,000元", "李娜"])
    sheet.append(["合计", None, None, 1050000, None])
    result = run_import(demo, "customer", "客户名单.xlsx", saved(book))
    assert texts(result) == [] and result.counts["insert"] == 2
    assert [n.text() for n in result.notes] == [
        "客户名单.xlsx!客户!1: 标题行上方的“2025年客户名单”当作表格标题，未导入",
        "客户名单.xlsx!客户!A2: “序号”列是表格自己的行号，未导入",
        "客户名单.xlsx!客户: 第 6 行是合计行，未导入"]
    stored = customers(demo)
    assert "合计" not in stored
    east, coast = stored["华东精细化工有限公司"], stored["滨海助剂有限公司"]
    assert (east.phone, east.credit_limit, east.owner_id) == ("021-12345678", Decimal(1_000_000),
                                                              user_id(demo, "zhangwei"))
    assert (coast.phone, coast.credit_limit, coast.owner_id) == ("13812345678", Decimal(50_000), user_id(demo, "lina"))


def test_choices_dates_and_codes_as_people_write_them(demo: Any) -> None:
    body = workbook(["公司名称", "省份", "客户等级", "统一社会信用代码", "许可证有效期至", "标签"],
                    ["甲", "江苏", "A类", "９１３５０１００m０００１００y４３", 45717, "重点客户"],
                    ["乙", "内蒙古", "战略客户", None, "2025-03-01 00:00:00", None],
                    ["丙", "江", "甲类", None, None, None])
    result = run_import(demo, "customer", "c.xlsx", body)
    assert texts(result) == [
        "c.xlsx!客户!B4: 省份: “江”不是可选项（是否指“浙江省”？）；可选：北京市、天津市、河北省、山西省、内蒙古自治区"
        "、辽宁省、吉林省、黑龙江省"
        "、"
        "上海市、江苏省、浙江省、安徽省 等 34 项",
        "c.xlsx!客户!C4: 客户等级: “甲类”不是可选项；可选：A类（战略客户）、B类（重点客户）、C类（普通客户）、D类（零"
        "散客户"
        "）"]
    result = run_import(demo, "customer", "c.xlsx", workbook(
        ["公司名称", "省份", "客户等级", "统一社会信用代码", "许可证有效期至"],
        ["甲", "江苏", "A类", "９１３５０１００m０００１００y４３", 45717],
        ["乙", "内蒙古", "战略客户", None, "2025-03-01 00:00:00"]))
    assert texts(result) == []
    stored = customers(demo)
    assert (stored["甲"].province, stored["甲"].grade, stored["甲"].uscc) == ("jiangsu", "A", USCC)
    assert stored["甲"].hazardous_licence_expiry == datetime.date(2025, 3, 1)
    assert (stored["乙"].province, stored["乙"].grade) == ("inner_mongolia", "A")
    assert stored["乙"].hazardous_licence_expiry == datetime.date(2025, 3, 1)


def test_cells_shown_as_percentages_are_read_as_the_percentage(demo: Any) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["产品编码", "产品名称", "纯度/含量（%）"])
    sheet.append(["PCT-001", "百分比格式", 0.98])
    sheet.append(["PCT-002", "数值格式", 99.5])
    sheet["C2"].number_format = "0.0%"
    sheet["C3"].number_format = '0.00"%"'  # as our exports write it: the number is the percentage already
    assert texts(run_import(demo, "product", "p.xlsx", saved(book))) == []
    model = demo.extensions["crm"].models.model("product")
    with demo.app_context():
        found = dict(demo.appbuilder.session.execute(sa.select(model.code, model.purity).where(
            model.code.in_(["PCT-001", "PCT-002"]))).all())
    assert found == {"PCT-001": Decimal("98.00"), "PCT-002": Decimal("99.50")}


def test_a_code_written_in_another_width_or_case_is_the_same_code(demo: Any) -> None:
    model = demo.extensions["crm"].models.model("product")
    with demo.app_context():
        code = demo.appbuilder.session.execute(sa.select(model.code)).scalars().first()
    wide = "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in code.lower())
    body = workbook(["产品编码", "产品名称"], [wide, "全角编码"], [code.lower(), "小写编码"])
    assert texts(run_import(demo, "product", "p.xlsx", body)) == [
        f"p.xlsx!客户!A2: 产品编码: 与已有的产品编码“{code}”（仅全角半角、大小写或空格不同）相同",
        f"p.xlsx!客户!A3: 产品编码: “{code.lower()}”与第 2 行重复"]


def test_blank_cells_keep_stored_values_in_an_update_and_clear_marks_empty_them(demo: Any) -> None:
    target = next(c for c in customers(demo).values() if c.city and c.grade and c.address)
    body = workbook(["编号", "客户等级", "城市", "详细地址", "备注"], [target.id, None, None, "（清空）", "补充"])
    result = run_import(demo, "customer", "u.xlsx", body, mode="upsert")
    assert texts(result) == [] and result.counts["update"] == 1
    after = customers(demo)[target.name]
    assert (after.grade, after.city, after.address, after.notes) == (target.grade, target.city, None, "补充")
    refused = run_import(demo, "customer", "u.xlsx", workbook(["编号", "公司名称"], [target.id, "(clear)"]),
                         mode="upsert")
    assert texts(refused) == ["u.xlsx!客户!B2: 公司名称: 必填，不能清空"]
    odd = run_import(demo, "customer", "u.xlsx", workbook(["编号", "备注"], [True, "x"], ["²", "y"]), mode="upsert")
    assert texts(odd) == ["u.xlsx!客户!A2: “True”不是编号（应为整数）", "u.xlsx!客户!A3: “²”不是编号（应为整数）"]


def test_an_upsert_finds_companies_by_their_credit_code_before_their_name(demo: Any) -> None:
    target = next(c for c in customers(demo).values() if c.uscc)
    body = workbook(["公司名称", "统一社会信用代码"], ["更名后的新名称有限公司", target.uscc])
    result = run_import(demo, "customer", "rename.xlsx", body, mode="upsert")
    assert texts(result) == [] and result.counts == {"insert": 0, "update": 1, "unchanged": 0}
    assert customers(demo)["更名后的新名称有限公司"].id == target.id
    by_label = run_import(demo, "customer", "rename.xlsx", body, mode="upsert", key="公司名称")
    assert texts(by_label) == [] and by_label.counts["unchanged"] == 1
    contacts = run_import(demo, "contact", "c.xlsx", workbook(["姓名"], ["王工"]), mode="upsert")
    assert texts(contacts) == ["c.xlsx!客户!1: 联系人没有唯一字段，按已有记录更新（upsert）需要“编号”列（先导出，再在"
                               "导出的文件上修改"
                               "）"]
    wrong = run_import(demo, "customer", "c.xlsx", body, mode="upsert", key="简称")
    assert texts(wrong) == ["c.xlsx!客户!1: “简称”不是唯一字段，无法据此找到记录；可用：编号、公司名称、统一社会信用代"
                            "码"]


def test_links_explain_a_name_that_is_not_there_for_this_user(demo: Any) -> None:
    others = next(c for c in customers(demo).values() if c.owner_id not in (None, user_id(demo, "zhangwei")))
    mine = next(c for c in customers(demo).values() if c.owner_id == user_id(demo, "zhangwei")
                and c.name.endswith("有限公司"))
    short = mine.name.removesuffix("有限公司").removesuffix("股份")
    body = workbook(["客户名称", "联系人"], [others.name, "王工"], [short, "李工"])
    assert texts(run_import(demo, "contact", "联系人.xlsx", body, "zhangwei")) == [
        f"联系人.xlsx!客户!A2: 所属客户: 找不到客户“{others.name}”（或不在您可选择的范围内）（可填公司名称或统一社会"
        f"信用代码"
        f"）",
        f"联系人.xlsx!客户!A3: 所属客户: 找不到客户“{short}”（或不在您可选择的范围内），是否指“{mine.name}”？"
        "（可填公司名称或统一社会信用代码）"]


def test_orders_with_their_lines_and_a_second_import_of_the_same_file(demo: Any) -> None:
    state = demo.extensions["crm"]
    company = next(iter(customers(demo).values())).name
    with demo.app_context():
        product = demo.appbuilder.session.execute(sa.select(state.models.model("product"))).scalars().first().name
    body = order_book([["IMP-101", company, "2026-11-02", "zhangwei"]], [["IMP-101", product, 2, 100]])
    book = openpyxl.load_workbook(io.BytesIO(body))
    book.worksheets[1]["A1"] = "订单号"  # the lines name their order by its number
    body = saved(book)
    first = run_import(demo, "order", "订单.xlsx", body)
    assert texts(first) == [] and first.children == {"order_line": 1}
    before = every_table(demo)
    again = run_import(demo, "order", "订单.xlsx", body)
    assert texts(again) == [
        "订单.xlsx: 有 1 处可能与已有记录或本文件中的其他行重复，未导入；核对后勾选“仍然导入可能重复的行”（命令行：--"
        "allow-duplicates"
        "）",
        "订单.xlsx!订单明细!A2: 订单: “IMP-101”：它在“销售订单”表中的那一行有问题，请先改正那一行",
        "订单.xlsx!销售订单!A2: 订单号: 已存在相同的订单号“IMP-101”"]
    assert [d.text() for d in again.duplicates] == [
        f"订单.xlsx: 这个文件已于 {first_batch_at(demo, first.batch_id)} 由 admin 导入过（第 {first.batch_id} 批），"
        "再导入一次会重复新增其中的每一行"]
    upsert = run_import(demo, "order", "订单.xlsx", body, mode="upsert")
    assert texts(upsert) == ["订单.xlsx!订单明细!A2: 订单: 销售订单已存在，本次只会更新它："
                             "订单明细只能随新增的销售订单一起导入，已有的请在销售订单页面修改"]
    book.worksheets[1].title = "明细"
    misnamed = run_import(demo, "order", "订单2.xlsx", saved(book))
    assert ("订单2.xlsx!明细: 无法识别工作表“明细”：订单明细应放在名为“订单明细”的工作表里；"
            "不需要导入的工作表请删除") in texts(misnamed)
    assert every_table(demo) == before


def first_batch_at(app: Any, batch_id: int | None) -> str:
    from app.audit.batches import BATCH_TABLE
    with app.app_context():
        at = app.appbuilder.session.execute(sa.select(BATCH_TABLE.c.at).where(BATCH_TABLE.c.id == batch_id)).scalar()
    return f"{at:%Y-%m-%d %H:%M}"


def test_merged_data_cells_hidden_rows_and_a_sorted_export_are_named(demo: Any) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["所属客户", "姓名"])
    company = next(iter(customers(demo).values())).name
    for name in ("甲", "乙", "丙"):
        sheet.append([company, name])
    sheet.merge_cells("A2:A4")
    assert texts(run_import(demo, "contact", "m.xlsx", saved(book))) == [
        "m.xlsx!Sheet: 合并单元格 A2:A4：请取消合并并在每一行填写值"]
    exported = openpyxl.load_workbook(io.BytesIO(run_export(demo, "customer")))
    rows = list(exported.worksheets[0].iter_rows(values_only=True))
    resorted = openpyxl.Workbook()
    target = resorted.active
    assert target is not None
    for row in [rows[0], *rows[2:], rows[1]]:  # sorted in Excel: the hidden key row went to the bottom
        target.append(list(row))
    target.row_dimensions[3].hidden = True
    result = run_import(demo, "customer", "sorted.xlsx", saved(resorted), mode="upsert")
    assert texts(result) == [] and result.counts["unchanged"] == len(rows) - 2
    notes = [n.text() for n in result.notes]
    assert "sorted.xlsx!Sheet: 第 3 行在 Excel 中是隐藏的（可能被筛选掉了），也一并导入" in notes
    assert f"sorted.xlsx!Sheet: 第 {len(rows)} 行是模板的字段键行（排序后移到了这里），未导入" in notes


def test_users_who_share_a_name_export_with_their_login_and_import_back(demo: Any) -> None:
    with demo.app_context():
        from app.security.users import add_user
        add_user(demo.appbuilder, "zhangwei2", "sales", "chem-demo-2026", first_name="伟", last_name="张")
    rows = sheet_rows(run_export(demo, "customer"))
    owners = {r[rows[1].index("owner")] for r in rows[2:]}
    assert "张伟 (zhangwei)" in owners and "张伟" not in owners
    result = run_import(demo, "customer", "back.xlsx", run_export(demo, "customer"), mode="upsert")
    assert texts(result) == [] and result.counts["unchanged"] == len(rows) - 2


def test_the_marked_file_lists_problems_of_the_whole_sheet_too(demo: Any) -> None:
    body = workbook(["简称"], ["甲"])
    result = run_import(demo, "customer", "c.xlsx", body)
    assert texts(result) == ["c.xlsx!客户!1: 缺少必填列“公司名称”"]
    listed = openpyxl.load_workbook(io.BytesIO(render_error_book("c.xlsx", body, result, 1 << 20))).worksheets[1]
    assert list(listed.iter_rows(values_only=True)) == [("位置", "字段", "问题"),
                                                       ("c.xlsx!客户!1", None, "缺少必填列“公司名称”")]


def test_a_web_page_saved_as_xls_is_named_for_what_it_is(demo: Any) -> None:
    page = "<html><body><table><tr><td>公司名称</td></tr><tr><td>甲</td></tr></table></body></html>"
    assert texts(run_import(demo, "customer", "导出.xls", page.encode())) == [
        "导出.xls: 这是网页（HTML）格式的表格，只是扩展名像 Excel（许多系统这样导出）；请用 Excel 或 WPS 打开后另存为"
        " .xlsx 再导"
        "入"]


def test_an_alias_that_names_another_field_is_a_schema_error() -> None:
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": (
            "tables:\n"
            "  t:\n"
            "    fields:\n"
            "      name: {type: string, label: 名称, aliases: [简称, 编码]}\n"
            "      code: {type: string, label: 编码}\n")})
    assert str(caught.value).startswith(
        "s.yaml:4: tables.t.fields.name.aliases: the alias '编码' already names the field 'code'\n"
        "    hint: an imported column with this heading could not be told apart; remove the alias or rename it")


def test_codes_excel_turned_into_numbers_are_named_for_what_happened(demo: Any) -> None:
    body = workbook(["公司名称", "统一社会信用代码", "公司电话"], ["甲", 913608022565535658, 2112345678],
                    ["乙", "9.13608E+17", 13812345678])
    assert texts(run_import(demo, "customer", "c.xlsx", body)) == [
        "c.xlsx!客户!B2: 统一社会信用代码: Excel 把这个编号当成了数字（9.13608E+17），末尾几位已经丢失；"
        "请把这一列设为“文本”格式后重新填写",
        "c.xlsx!客户!C2: 公司电话: Excel 去掉了电话号码开头的 0（2112345678）；请把这一列设为“文本”格式，填写 0211234"
        "5678",
        "c.xlsx!客户!B3: 统一社会信用代码: Excel 把这个编号当成了数字（9.13608E+17），末尾几位已经丢失；"
        "请把这一列设为“文本”格式后重新填写"]


def test_an_excel_97_workbook_imports_like_a_new_one(demo: Any) -> None:
    import xlwt
    book = xlwt.Workbook()
    sheet = book.add_sheet("客户")
    for column, heading in enumerate(["客户名称", "客户等级", "信用额度", "许可证有效期至", "备注"]):
        sheet.write(0, column, heading)
    sheet.write(1, 0, "旧格式化工有限公司")
    sheet.write(1, 1, "A类")
    sheet.write(1, 2, 250000)
    sheet.write(1, 3, datetime.date(2027, 1, 5), xlwt.easyxf(num_format_str="yyyy-mm-dd"))
    sheet.write(1, 4, "从旧系统导出")
    hidden = book.add_sheet("说明")
    hidden.visibility = 1
    out = io.BytesIO()
    book.save(out)
    result = run_import(demo, "customer", "旧系统.xls", out.getvalue())
    assert texts(result) == [] and result.counts["insert"] == 1
    stored = customers(demo)["旧格式化工有限公司"]
    assert (stored.grade, stored.credit_limit, stored.hazardous_licence_expiry, stored.notes) == (
        "A", Decimal(250000), datetime.date(2027, 1, 5), "从旧系统导出")
    merged = xlwt.Workbook()
    sheet = merged.add_sheet("客户")
    sheet.write(0, 0, "公司名称")
    sheet.write_merge(1, 2, 0, 0, "合并的公司")
    out = io.BytesIO()
    merged.save(out)
    assert texts(run_import(demo, "customer", "合并.xls", out.getvalue())) == [
        "合并.xls!客户: 合并单元格 A2:A3：请取消合并并在每一行填写值"]
    far = merged.add_sheet("远处")
    far.write(65535, 255, "x")
    out = io.BytesIO()
    merged.save(out)
    result = run_import(demo, "customer", "远处.xls", out.getvalue())  # a sheet the import does not read stays unread
    assert [n.text() for n in result.notes] == ["远处.xls!远处: 此工作表未导入（只导入第一个工作表）"]
    far_first = xlwt.Workbook()
    sheet = far_first.add_sheet("客户")
    sheet.write(0, 0, "公司名称")
    sheet.write(65535, 255, "x")
    out = io.BytesIO()
    far_first.save(out)
    assert texts(run_import(demo, "customer", "远处.xls", out.getvalue())) == [
        "远处.xls: 工作表“客户”的数据区域过大（一直到单元格 IV65536：65536 行 × 256 列）；"
        "请删除多余的行和列（或远处的单元格），或分成几个文件导入"]


def test_a_file_is_counted_for_a_background_job_without_reading_its_values() -> None:
    from app.transfer.read import estimated_rows
    assert estimated_rows("mac.csv", "公司名称\r甲\r乙\r".encode(), 100) == 3  # Mac Excel ends lines with CR alone
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("客户")
    for n in range(500):
        sheet.append([f"公司{n}"])
    body = saved(book)
    assert estimated_rows("c.xlsx", body, 1000) == 500 and estimated_rows("c.xlsx", body, 100) == 101


def test_a_field_called_like_the_id_column_keeps_its_heading_and_the_file_imports_back(make_app: Any,
                                                                                       schema_dir: Any) -> None:
    products = schema_dir / "products.yaml"
    products.write_text(products.read_text(encoding="utf-8").replace("label: {zh: 产品编码, en: Code}",
                                                                     "label: {zh: 编号, en: ID}"), encoding="utf-8")
    app = make_app(schema_dir=schema_dir)
    load_demo_data(app, scale=0.02)
    body = run_export(app, "product", fmt="csv")
    headings = body.decode("utf-8-sig").splitlines()[0].split(",")
    assert (headings[0], headings[1], headings[-1]) == ("系统编号", "编号", "版本")
    result = run_import(app, "product", "back.csv", body, mode="upsert")
    assert texts(result) == [] and result.counts["update"] == 0 and result.counts["unchanged"] > 0
