"""A table's import template as .xlsx, generated from the YAML for one user: a column per field they may
fill in (computed fields left out), required ones marked, choices as dropdowns of their labels (the
lists on a hidden sheet, so that long lists work past Excel's 255-character inline limit), number and
date formats set, the field keys in a hidden second row, and a sheet explaining each column."""
from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.comments import Comment
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter, quote_sheetname
from openpyxl.worksheet.datavalidation import DataValidation

from app.schema.model import FieldSpec, Label, SchemaSpec, TableSpec
from app.security.gate import FieldAccess

from .columns import header_text, template_fields
from .values import number_format

OPTIONS_SHEET = "_options"
NOTES_SHEET = {"zh": "说明", "en": "Notes"}
DATA_ROWS = 2000  # how far down dropdowns and formats reach
REQUIRED_FILL = PatternFill("solid", fgColor="FDE2E1")
HEADER_FILL = PatternFill("solid", fgColor="E8EEF7")

TYPE_NAMES: dict[str, Label] = {
    "string": Label("文本", "text"), "text": Label("长文本", "long text"), "integer": Label("整数", "whole number"),
    "decimal": Label("数字", "number"), "money": Label("金额", "amount"), "percent": Label("百分比（填 15 表示 15%）",
                                                                                       "percentage (15 means 15%)"),
    "boolean": Label("是/否", "yes/no"), "date": Label("日期", "date"), "datetime": Label("日期时间", "date and time"),
    "choice": Label("下拉选项", "option"),
    "multi_choice": Label("多选（用顿号或逗号分隔）", "options (separated by commas)"),
    "email": Label("电子邮件", "e-mail"), "phone": Label("电话", "phone"), "url": Label("网址", "web address"),
    "link": Label("关联记录", "linked record"), "user": Label("用户（登录名或姓名）", "user (login or full name)"),
    "rating": Label("评分 1–5", "rating 1–5"), "cas_number": Label("CAS号", "CAS number"),
    "uscc": Label("统一社会信用代码", "unified social credit code"),
}
EXAMPLES: dict[str, str] = {
    "integer": "10", "decimal": "12.5", "money": "12800.00", "percent": "13", "boolean": "是", "date": "2026-12-15",
    "datetime": "2026-12-15 14:30", "email": "sales@example.com", "phone": "13812345678",
    "url": "https://www.example.com", "rating": "5", "cas_number": "7732-18-5", "uscc": "91350100M000100Y43",
}


def render_template(schema: SchemaSpec, table_key: str, access: FieldAccess, lang: str = "zh") -> bytes:
    """Return the .xlsx bytes of the import template of `table_key` for a user with `access`."""
    table = schema.table(table_key)
    fields = template_fields(table, access)
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.label.text(lang)[:31]
    options = book.create_sheet(OPTIONS_SHEET)
    options.sheet_state = "hidden"
    notes = book.create_sheet(NOTES_SHEET.get(lang, "说明"))
    option_column = 0
    for n, spec in enumerate(fields, start=1):
        letter = get_column_letter(n)
        cell = sheet.cell(1, n, header_text(spec, lang))
        cell.font = Font(bold=True, color="C0392B" if spec.required else "000000")
        cell.fill = REQUIRED_FILL if spec.required else HEADER_FILL
        cell.alignment = Alignment(horizontal="center", vertical="center", wrap_text=True)
        if spec.help is not None:
            cell.comment = Comment(spec.help.text(lang), "CRM")
        sheet.cell(2, n, spec.key)
        sheet.column_dimensions[letter].width = min(max(len(header_text(spec, lang)) * 2 + 4, 12), 40)
        fmt = number_format(spec)
        if fmt:
            for row in range(3, DATA_ROWS + 3):
                sheet.cell(row, n).number_format = fmt
        if spec.type == "choice" and spec.choices is not None:
            option_column += 1
            add_dropdown(sheet, options, spec, letter, option_column, lang)
    sheet.row_dimensions[2].hidden = True
    sheet.freeze_panes = "A3"
    write_notes(notes, table, fields, lang)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def add_dropdown(sheet: Any, options: Any, spec: FieldSpec, letter: str, column: int, lang: str) -> None:
    """List the field's option labels in a column of the hidden sheet and make the data cells a dropdown."""
    assert spec.choices is not None
    option_letter = get_column_letter(column)
    options.cell(1, column, spec.key)
    for row, option in enumerate(spec.choices.options, start=2):
        options.cell(row, column, option.label.text(lang))
    last = len(spec.choices.options) + 1
    source = f"{quote_sheetname(OPTIONS_SHEET)}!${option_letter}$2:${option_letter}${last}"
    rule = DataValidation(type="list", formula1=f"={source}", allow_blank=True, showErrorMessage=True,
                          errorTitle=spec.label.text(lang), error=("请从下拉列表中选择" if lang == "zh"
                                                                   else "pick a value from the list"))
    rule.add(f"{letter}3:{letter}{DATA_ROWS + 2}")
    sheet.add_data_validation(rule)


def write_notes(sheet: Any, table: TableSpec, fields: list[FieldSpec], lang: str) -> None:
    """One row per column: heading, type, required, options, rule and an example."""
    zh = lang == "zh"
    heads = (["列", "类型", "必填", "可选值", "规则", "示例"] if zh else
             ["Column", "Type", "Required", "Options", "Rule", "Example"])
    for n, text in enumerate(heads, start=1):
        cell = sheet.cell(1, n, text)
        cell.font, cell.fill = Font(bold=True), HEADER_FILL
    for row, spec in enumerate(fields, start=2):
        kind = TYPE_NAMES.get(spec.type, Label(spec.type, spec.type))
        if spec.type == "link" and spec.to:
            kind = Label(f"关联{spec.to}（填写名称或唯一编号）", f"link to {spec.to} (write its name or a unique code)")
        sheet.cell(row, 1, header_text(spec, lang, mark_required=False))
        sheet.cell(row, 2, kind.text(lang))
        sheet.cell(row, 3, ("是" if zh else "yes") if spec.required else "")
        if spec.choices is not None:
            sheet.cell(row, 4, "、".join(o.label.text(lang) for o in spec.choices.options))
        sheet.cell(row, 5, rule_text(spec, lang))
        sheet.cell(row, 6, example(spec, lang))
    for letter, width in zip("ABCDEF", (22, 22, 8, 60, 40, 24), strict=True):
        sheet.column_dimensions[letter].width = width


def rule_text(spec: FieldSpec, lang: str) -> str:
    zh = lang == "zh"
    parts = []
    if spec.unique:
        parts.append("不能与已有记录重复" if zh else "must not repeat a stored record")
    if spec.max_length:
        parts.append(f"最多 {spec.max_length} 个字符" if zh else f"at most {spec.max_length} characters")
    if spec.min is not None:
        parts.append(f"不小于 {spec.min}" if zh else f"at least {spec.min}")
    if spec.max is not None:
        parts.append(f"不大于 {spec.max}" if zh else f"at most {spec.max}")
    if spec.pattern:
        parts.append(spec.pattern_message.text(lang) if spec.pattern_message else
                      (f"格式：{spec.pattern}" if zh else f"format: {spec.pattern}"))
    if spec.default is not None:
        parts.append(f"留空时为 {spec.default}" if zh else f"empty means {spec.default}")
    if spec.help is not None:
        parts.append(spec.help.text(lang))
    return "；".join(parts) if zh else "; ".join(parts)


def example(spec: FieldSpec, lang: str) -> str:
    if spec.choices is not None and spec.choices.options:
        return spec.choices.options[0].label.text(lang)
    return EXAMPLES.get(spec.type, "")
