"""One cell → one field value, by the rules of the forms and the API (app.fields.values), plus what a
spreadsheet adds: numbers typed into text fields, dates as Excel's day numbers, percentages shown as
13%, choices by label (or the unique start of one: 江苏 for 江苏省), links by title or a unique field,
users by login or name."""
from __future__ import annotations

import datetime
import difflib
import functools
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from app.fields.names import company_key, fold
from app.fields.values import validate_value
from app.schema import naming
from app.schema.model import FieldSpec, Label, SchemaSpec
from app.security.gate import picks_only_self, user_pick_condition
from app.security.users import display_name

from .raw import CellError, Formula, Percent
from .values import unquoted

LIST_SEPARATORS = re.compile(r"[,，;；、\n]")
NUMERIC_TYPES = ("integer", "decimal", "money", "percent", "rating")
TEXT_TYPES = ("string", "text", "email", "phone", "url", "cas_number", "uscc", "choice", "multi_choice")
EXCEL_DAYS = (1, 2958465)  # Excel's day numbers from 1900-01-01 to 9999-12-31
SHOWN_OPTIONS = 12


def as_text(raw: Any) -> Any:
    """Return a number or date Excel typed into a text column as the text a person sees there."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return str(int(raw))
    if isinstance(raw, (int, float)):
        return str(raw)
    if isinstance(raw, datetime.datetime):
        return raw.date().isoformat() if raw.time() == datetime.time() else raw.isoformat(sep=" ")
    if isinstance(raw, datetime.date):
        return raw.isoformat()
    return raw


@dataclass
class Lookup:
    """Names of the records (or logins) one link or user field may point at → their ids."""

    what: Label  # the target, as people call it (客户, 用户)
    names: dict[str, set[int]] = field(default_factory=dict)
    hint: Label = Label("", "")  # which names are accepted
    refused: dict[str, Label] = field(default_factory=dict)  # names that exist but may not be used here
    restricted: bool = False  # only some records may be named (the user's own customers)
    similar: dict[str, set[str]] = field(default_factory=dict)  # company_key → titles, for did-you-mean

    def add(self, name: Any, pk: int) -> None:
        if name not in (None, ""):
            self.names.setdefault(fold(name), set()).add(pk)

    def find(self, raw: Any) -> tuple[int | None, Label | None]:
        """Return (id, None), or (None, why: not found, or more than one record has that name)."""
        found = self.names.get(fold(as_text(raw)), set())
        if len(found) == 1:
            return next(iter(found)), None
        text = str(as_text(raw)).strip()
        if not found and fold(text) in self.refused:
            why = self.refused[fold(text)]
            return None, Label(f"“{text}”{why.zh}", f"'{text}': {why.en}")
        if not found:
            scope = Label("（或不在您可选择的范围内）", " (or not one you may choose)") if self.restricted \
                else Label("", "")
            close = self.similar.get(company_key(text), set())
            guess = Label(f"，是否指“{next(iter(close))}”？", f"; did you mean '{next(iter(close))}'?") \
                if len(close) == 1 else Label("", "")
            return None, Label(f"找不到{self.what.zh}“{text}”{scope.zh}{guess.zh}{self.hint.zh}",
                               f"there is no {self.what.en.lower()} '{text}'{scope.en}{guess.en}{self.hint.en}")
        return None, Label(f"有 {len(found)} 条{self.what.zh}都叫“{text}”，请改用能区分它们的值{self.hint.zh}",
                           f"{len(found)} {self.what.en.lower()} records are called '{text}'; use a value that "
                           f"tells them apart{self.hint.en}")


def link_lookup(session: Any, schema: SchemaSpec, models: Any, spec: FieldSpec, condition: Any) -> Lookup:
    """Return the lookup of a link: the target's title and unique fields (not encrypted ones), over the
    records `condition` lets the user pick (None: all)."""
    target = schema.table(spec.to or "")
    table = models.metadata.tables[naming.table_name_for(target.key)]
    keys = [target.title] + [f.key for f in target.fields if f.unique and not f.encrypted and f.key != target.title]
    keys = [k for k in keys if not target.field(k).encrypted]
    names = [target.field(k).label for k in keys]
    hint = Label(f"（可填{'或'.join(n.zh for n in names)}）", f" (write its {' or '.join(n.en for n in names)})")
    lookup = Lookup(target.label, hint=hint, restricted=condition is not None)
    companies = any(f.type == "uscc" for f in target.fields)
    columns = [table.c[naming.column_name_for(target.field(k))] for k in keys]
    query = sa.select(table.c.id, *columns)
    if condition is not None:
        model = models.model(target.key)
        query = query.where(table.c.id.in_(sa.select(model.id).where(condition)))
    for row in session.execute(query):
        for value in row[1:]:
            lookup.add(value, row[0])
        lookup.add(f"#{row[0]}", row[0])
        lookup.add(f"{row[1]} #{row[0]}", row[0])  # as an export writes a title that other records share
        if companies and row[1]:
            lookup.similar.setdefault(company_key(row[1]), set()).add(str(row[1]))
    return lookup


def user_rule(models: Any, table_key: str, spec: FieldSpec, user: Any) -> Label:
    """Return who may be chosen in a user field, as the forms say it (only you / active sales ...)."""
    if picks_only_self(models, table_key, spec.key, user):
        return Label("：这里只能填写您本人", "only you may be named here")
    roles = models.schema.roles
    names = [roles[r].label if r in roles else Label(r, r) for r in spec.roles]
    return Label(f"：这里只能填写在职的{'、'.join(n.zh for n in names)}",
                 f"only active users who are {', '.join(n.en for n in names)} may be named here")


def user_lookup(session: Any, user_model: Any, condition: Any, rule: Label | None = None) -> Lookup:
    """Return the lookup of a user field: logins, full names (Chinese and English order) and, for names
    two users share, `name (login)` as an export writes it, of the users `condition` allows; the others
    are named with `rule` (who may be chosen here) when they are used."""
    lookup = Lookup(Label("用户", "user"), hint=Label("（可填登录名或姓名）", " (write the login or the full name)"))
    allowed = None
    if condition is not None:
        allowed = {pk for (pk,) in session.execute(sa.select(user_model.id).where(condition))}
    for user in session.execute(sa.select(user_model)).scalars():
        names = {user.username} | {display_name(user, lang) for lang in ("zh", "en")}
        names |= {f"{name} ({user.username})" for name in list(names)}
        for name in names:
            if allowed is None or user.id in allowed:
                lookup.add(name, user.id)
            else:
                lookup.refused[fold(name)] = rule or Label("不能用在这里", "may not be chosen here")
    return lookup


def field_user_lookup(session: Any, user_model: Any, models: Any, table_key: str, spec: FieldSpec,
                      user: Any) -> Lookup:
    """Return the lookup of a user field of `table_key` as `user` may fill it in."""
    condition = user_pick_condition(models, table_key, spec.key, user_model)
    return user_lookup(session, user_model, condition, user_rule(models, table_key, spec, user))


def option_key(spec: FieldSpec, raw: str) -> str:
    """Return the option key a cell names by key or label (zh or en), by a label's part before or in
    its brackets (A类, 战略客户), or by the unique start of a label (江苏 for 江苏省); else the text."""
    names = option_names(spec)
    folded = fold(raw)
    if folded in names:
        return names[folded]
    starting = {key for name, key in names.items() if name.startswith(folded)} if len(folded) >= 2 else set()
    return starting.pop() if len(starting) == 1 else raw.strip()


@functools.lru_cache(maxsize=512)
def option_names(spec: FieldSpec) -> dict[str, str]:
    """Return every way to write an option of `spec` (key, labels and, where no other option shares
    them, a label's parts before and in its brackets; folded) → its key."""
    assert spec.choices is not None
    names: dict[str, str] = {}
    parts: dict[str, set[str]] = {}
    for option in spec.choices.options:
        for name in (option.label.en, option.label.zh, option.key):  # the key wins a clash
            names[fold(name)] = option.key
        for label in (option.label.zh, option.label.en):
            for part in re.split(r"[（()）]", fold(label)):
                if part:
                    parts.setdefault(part, set()).add(option.key)
    for part, keys in parts.items():
        if len(keys) == 1:
            names.setdefault(part, keys.pop())
    return names


def unknown_option(spec: FieldSpec, raw: str, lang: str = "zh") -> Label:
    """Return why a cell names no option: its labels (not the keys a person never sees), and the
    closest one."""
    assert spec.choices is not None
    labels = [o.label for o in spec.choices.options]
    more = len(labels) > SHOWN_OPTIONS
    shown_zh = "、".join(lb.zh for lb in labels[:SHOWN_OPTIONS]) + (f" 等 {len(labels)} 项" if more else "")
    shown_en = ", ".join(lb.en for lb in labels[:SHOWN_OPTIONS]) + (f" and {len(labels) - SHOWN_OPTIONS} more"
                                                                   if more else "")
    by_zh = {fold(lb.zh): lb for lb in labels} | {fold(lb.en): lb for lb in labels}
    close = difflib.get_close_matches(fold(raw), list(by_zh), n=1, cutoff=0.5)
    guess = by_zh[close[0]] if close else None
    return Label(f"“{raw}”不是可选项" + (f"（是否指“{guess.zh}”？）" if guess else "") + f"；可选：{shown_zh}",
                 f"'{raw}' is not an option" + (f" (did you mean '{guess.en}'?)" if guess else "")
                 + f"; options: {shown_en}")


SCIENTIFIC = re.compile(r"\d(?:\.\d+)?[eE]\+\d+")


def mangled_number(spec: FieldSpec, raw: Any) -> Label | None:
    """Return why a code Excel turned into a number cannot be read back: a credit code shown as
    9.13608E+17 has lost its last digits; a landline 021… stored as a number has lost its 0."""
    number = isinstance(raw, int | float) and not isinstance(raw, bool)
    scientific = isinstance(raw, str) and spec.type in ("uscc", "phone") and SCIENTIFIC.fullmatch(raw.strip())
    if spec.type in ("uscc", "phone", "string") and number and abs(raw) >= 1e15 or scientific:
        shown = f"{raw:.6G}" if number else raw.strip()  # as Excel shows it: 9.13608E+17
        return Label(f"Excel 把这个编号当成了数字（{shown}），末尾几位已经丢失；请把这一列设为“文本”格式后重新填写",
                     f"Excel took this code for a number ({shown}) and its last digits are lost; format the column "
                     "as Text and enter the codes again")
    if spec.type == "phone" and number and float(raw).is_integer():
        digits = str(int(raw))
        if not digits.startswith("1") and validate_value("0" + digits, spec)[1] == []:
            return Label(f"Excel 去掉了电话号码开头的 0（{digits}）；请把这一列设为“文本”格式，填写 0{digits}",
                         f"Excel dropped the phone number's leading 0 ({digits}); format the column as Text and "
                         f"write 0{digits}")
    return None


FORMULA = Label("单元格是公式（{text}），请改为数值（复制后“选择性粘贴 → 数值”）",
                "the cell holds a formula ({text}); paste it as values instead (Paste Special → Values)")


def cell_value(spec: FieldSpec, raw: Any, lookups: dict[str, Lookup]) -> tuple[Any, list[Label]]:
    """Return (value for the record, messages) for one cell of the field `spec`; empty cells give None."""
    if isinstance(raw, Formula):
        return None, [Label(FORMULA.zh.format(text=str(raw)[:40]), FORMULA.en.format(text=str(raw)[:40]))]
    if isinstance(raw, CellError):
        return None, [Label(f"单元格是错误值 {raw}（公式出错或引用失效）；请改为正确的值",
                            f"the cell holds the error {raw} (a broken formula or reference); enter the right value")]
    if isinstance(raw, str):
        raw = unquoted(raw.strip())
    if raw is None or raw == "":
        return validate_value(None, spec)
    mangled = mangled_number(spec, raw)
    if mangled is not None:
        return None, [mangled]
    if spec.type in TEXT_TYPES:
        raw = as_text(raw)
    if spec.type == "choice" and isinstance(raw, str):
        key = option_key(spec, raw)
        if spec.choices is not None and spec.choices.option(key) is None:
            return None, [unknown_option(spec, raw)]
        raw = key
    elif spec.type == "multi_choice" and isinstance(raw, str):
        raw = [option_key(spec, part) for part in LIST_SEPARATORS.split(raw) if part.strip()]
    elif spec.type == "percent" and isinstance(raw, Percent):
        raw = Decimal(repr(float(raw))) * 100  # 0.13 shown as 13% is 13
    elif spec.type in ("decimal", "money", "percent") and isinstance(raw, float):
        raw = repr(raw)
    elif spec.type == "date" and isinstance(raw, int | float) and not isinstance(raw, bool) \
            and EXCEL_DAYS[0] <= raw <= EXCEL_DAYS[1] and float(raw).is_integer():
        from openpyxl.utils.datetime import from_excel
        raw = from_excel(raw)  # a date Excel keeps as its day number (45717), in a cell not formatted as a date
    elif spec.is_relation:
        pk, problem = lookups[spec.key].find(raw)
        if problem is not None:
            return None, [problem]
        return pk, []
    return validate_value(raw, spec)
