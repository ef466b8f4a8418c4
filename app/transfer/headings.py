"""Where a sheet's data starts and which field each column holds.

The heading row is the first row (of the first few) that names a field, so a title row above it
(a merged 2025年客户名单 banner) is passed over; a template's or export's hidden key row right below
it maps the columns by key. Every column is matched by key, label or alias; a list's own row numbers
(序号) and computed fields are left out with a note; unknown, repeated and missing columns and merged
heading cells are problems. For an upsert, the column that finds existing records is chosen here.
"""
from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from app.schema.model import Label, TableSpec
from app.security.gate import FieldAccess

from .columns import (
    ID_KEY,
    SPECIAL_KEYS,
    Column,
    heading_names,
    is_key_row,
    is_row_number_heading,
    normal,
    suggestion,
)
from .problems import ImportResult, Problem
from .raw import RawSheet

TITLE_ROWS = 10  # how many rows above the headings may be a list's title
Rows = Iterator[tuple[int, list[Any]]]


@dataclass
class Layout:
    """A sheet's columns and the rows below its headings."""

    first_row: int  # the heading row
    last_row: int  # the hidden key row below it, when there is one, else the heading row
    columns: list[Column]
    width: int
    key: str | None  # upsert: the field (or id) that finds existing records
    rows: Rows
    blank: set[int] = field(default_factory=set)  # columns without a heading (1-based)

    def column_of(self, key: str) -> int | None:
        return next((c.index for c in self.columns if c.key == key), None)


@dataclass
class Sheet:
    """What the layout is read for: a table, as a user with these rights, in this mode."""

    table: TableSpec
    access: FieldAccess
    mode: str
    key: str | None
    kind: str  # xlsx or csv
    lang: str
    extra_names: dict[str, str] | None = None  # more headings → field (a child sheet's 订单号 for its order)


def is_blank(cells: list[Any]) -> bool:
    return not any(c not in (None, "") and not (isinstance(c, str) and not c.strip()) for c in cells)


def read_layout(sheet: RawSheet, wanted: Sheet, result: ImportResult) -> Layout | None:
    """Return the sheet's layout, or None when its headings do not allow reading its rows (the
    problems in `result` say why)."""
    names = {**heading_names(wanted.table, wanted.access), **(wanted.extra_names or {})}
    before = len(result.problems)  # a child sheet shares its parent's list
    found = find_heading_row(sheet, names, result)
    if found is None:
        result.problem(Label("工作表是空的：第一行应是标题行（字段名称）", "the sheet is empty: its first row "
                             "should hold the headings (the field names)"), sheet.name)
        return None
    (first, headings), rows = found
    last = first
    following = next(rows, None)
    if following is not None and is_key_row(following[1], wanted.table):
        check_key_row(sheet, first, headings, following[1], names, wanted, result)
        headings = [following[1][n] if n < len(following[1]) and following[1][n] not in (None, "") else h
                    for n, h in enumerate(headings)]
        last = following[0]
    elif following is not None:
        rows = itertools.chain([following], rows)
    columns = match_columns(sheet, first, headings, names, wanted, result)
    check_merged(sheet, first, last, result)
    if columns is None or len(result.problems) > before:
        return None
    key = upsert_key(sheet.name, first, columns, wanted, result)
    if len(result.problems) > before:
        return None
    blank = {n for n, h in enumerate(headings, start=1) if h in (None, "") or (isinstance(h, str) and not h.strip())}
    return Layout(first, last, columns, len(headings), key, rows, blank)


def find_heading_row(sheet: RawSheet, names: dict[str, str], result: ImportResult
                     ) -> tuple[tuple[int, list[Any]], Rows] | None:
    """Return the heading row and the rows after it: of the first TITLE_ROWS non-empty rows, the one
    naming the most fields (the first such), else the first non-empty row. A row above it may only be
    the list's title (one or two cells, noted); a fuller row there is a problem: it may be data."""
    rows = sheet.rows
    seen: list[tuple[int, list[Any]]] = []
    for number, cells in rows:
        if not is_blank(cells):
            seen.append((number, cells))
            if len(seen) == TITLE_ROWS:
                break
    if not seen:
        return None
    scores = [sum(1 for c in cells if c not in (None, "") and normal(c) in names) for _, cells in seen]
    best = scores.index(max(scores)) if max(scores) > 0 else 0
    heading_row = seen[best][0]
    for title_row, title in seen[:best]:
        filled = [str(c).strip() for c in title if c not in (None, "") and str(c).strip()]
        if len(filled) > 2:
            result.problem(Label(
                f"这一行在标题行（第 {heading_row} 行）上方，却填了 {len(filled)} 格：标题行上方只能是表格的标题；"
                "请删除这一行，或把标题行移到最上面",
                f"this row is above the heading row ({heading_row}) yet fills {len(filled)} cells: only the list's "
                "title may stand above the headings; delete the row or move the headings to the top"),
                sheet.name, title_row)
            continue
        text = "、".join(filled)[:60]
        result.note(Label(f"标题行上方的“{text}”当作表格标题，未导入",
                          f"'{text}' above the headings was taken as the list's title and not imported"),
                    sheet.name, title_row)
    return seen[best], itertools.chain(seen[best + 1:], rows)


def check_key_row(sheet: RawSheet, row: int, headings: list[Any], keys: list[Any], names: dict[str, str],
                  wanted: Sheet, result: ImportResult) -> None:
    """Refuse a template whose visible heading names another field than its hidden key below: the
    columns were moved or retitled, and the values would land in a field other than the one shown."""
    for index, (heading, key) in enumerate(zip(headings, keys, strict=False), start=1):
        shown = names.get(normal(heading)) if heading not in (None, "") else None
        if shown is not None and key not in (None, "") and str(key).strip() != shown:
            hidden = str(key).strip()
            label = wanted.table.field(hidden).label if wanted.table.has_field(hidden) else Label(hidden, hidden)
            result.problem(Label(f"列标题“{heading}”与模板隐藏行中的字段“{label.zh}”不一致；请不要移动或改写模板的列标题",
                                 f"the heading '{heading}' and the template's hidden field '{label.en}' disagree; do "
                                 "not move or retitle a template's columns"), sheet.name, row, index)


def match_columns(sheet: RawSheet, row: int, headings: list[Any], names: dict[str, str], wanted: Sheet,
                  result: ImportResult) -> list[Column] | None:
    """Return the columns that hold fields; problems for unknown and repeated columns, notes for those
    left out (row numbers, computed fields)."""
    table, lang = wanted.table, wanted.lang
    seen = [f for f in table.fields if wanted.access.shows(f.key)]
    columns: list[Column] = []
    taken: dict[str, int] = {}
    unknown = 0
    for index, heading in enumerate(headings, start=1):
        if heading in (None, "") or (isinstance(heading, str) and not heading.strip()):
            continue
        key = names.get(normal(heading))
        if key is None and is_row_number_heading(heading):
            result.note(Label(f"“{heading}”列是表格自己的行号，未导入", f"the column '{heading}' numbers the "
                              "list's rows and was not imported"), sheet.name, row, index)
            continue
        if key is None:
            unknown += 1
            hint = suggestion(str(heading), seen, lang)
            result.problem(Label(f"没有“{heading}”这一列对应的字段{hint}", f"no field is called '{heading}'{hint}"),
                           sheet.name, row, index)
            continue
        if key in taken:
            result.problem(Label(f"“{heading}”与第 {taken[key]} 列是同一个字段",
                                 f"'{heading}' is the same field as column {taken[key]}"), sheet.name, row, index)
            continue
        taken[key] = index
        spec = None if key in SPECIAL_KEYS else table.field(key)
        if spec is not None and spec.is_computed:
            result.note(Label("由系统计算，导入时忽略此列", "computed by the panel; this column is ignored"),
                        sheet.name, row, index, spec.label)
            continue
        columns.append(Column(index, key, spec))
    if wanted.kind == "csv" and len(headings) == 1 and unknown == 1 and re.search(r"[|:;\t]", str(headings[0])):
        result.problems[-1] = Problem(result.file, Label(
            f"只识别出一列“{headings[0]}”：各列应以逗号（,）分隔；请在 Excel 中另存为“CSV UTF-8（逗号分隔）”",
            f"only one column '{headings[0]}' was found: columns should be separated by commas (,); save the "
            "file as 'CSV UTF-8 (comma delimited)' in Excel"), sheet.name, row)
        return None
    if wanted.mode == "insert":
        for spec in table.fields:
            if (spec.required and spec.key not in taken and spec.default is None and not spec.is_computed
                    and not spec.default_from and spec.type != "boolean" and wanted.access.writes(spec.key)):
                result.problem(Label(f"缺少必填列“{spec.label.zh}”", f"the required column '{spec.label.en}' is "
                                     "missing"), sheet.name, row)
    return columns


def check_merged(sheet: RawSheet, first: int, last: int, result: ImportResult) -> None:
    """Refuse merged cells among the headings and the data; a merged title above the headings is fine."""
    for merged in sheet.merged:
        top, bottom = (int(re.sub(r"[A-Z]+", "", corner)) for corner in merged.split(":"))
        if bottom < first:
            continue
        if top <= last:
            result.problem(Label(f"标题行有合并单元格 {merged}：请取消合并，每列一个标题",
                                 f"the heading row has merged cells {merged}: unmerge them, one heading per column"),
                           sheet.name)
        else:
            result.problem(Label(f"合并单元格 {merged}：请取消合并并在每一行填写值",
                                 f"merged cells {merged}: unmerge them and fill in each row"), sheet.name)


def upsert_key(sheet_name: str | None, row: int, columns: list[Column], wanted: Sheet,
               result: ImportResult) -> str | None:
    """Return the column that finds existing records (upsert): --key (a key or label), else the id
    column, else a unique column — a code such as the USCC before the title, which gets renamed."""
    if wanted.mode != "upsert":
        return None
    table = wanted.table
    present = {c.key for c in columns}
    uniques = [f for f in table.fields if f.unique and not f.encrypted and wanted.access.shows(f.key)]
    if wanted.key:
        key = heading_names(table, wanted.access).get(normal(wanted.key))
        if key is None or (key != ID_KEY and key not in {f.key for f in uniques}):
            names = "、".join(f.label.zh for f in uniques)
            usable = f"；可用：编号、{names}" if names else "；可用：编号"
            result.problem(Label(f"“{wanted.key}”不是唯一字段，无法据此找到记录{usable}",
                                 f"'{wanted.key}' is not a unique field, so it cannot find records; use ID"
                                 + "".join(f", {f.label.en}" for f in uniques)), sheet_name, row)
            return None
        if key not in present:
            label = table.field(key).label if key != ID_KEY else Label("编号", "ID")
            result.problem(Label(f"缺少用于查找记录的列“{label.zh}”", f"the column '{label.en}' that finds the "
                                 "records is missing"), sheet_name, row)
        return key
    if ID_KEY in present:
        return ID_KEY
    ranked = sorted((f for f in uniques if f.key in present), key=lambda f: f.key == table.title)
    if ranked:
        return ranked[0].key
    if uniques:
        keys = Label("、".join(f.label.zh for f in uniques), ", ".join(f.label.en for f in uniques))
        result.problem(Label(f"按已有记录更新（upsert）需要一列来找到记录：编号或{keys.zh}",
                             f"an upsert needs a column that finds each record: ID or {keys.en}"), sheet_name, row)
    else:
        result.problem(Label(f"{table.label.zh}没有唯一字段，按已有记录更新（upsert）需要“编号”列（先导出，再在导出的文件上修改）",
                             f"{table.label.en} has no unique field: an upsert needs the ID column (export first, "
                             "then edit the exported file)"), sheet_name, row)
    return None
