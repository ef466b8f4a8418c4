"""One cell → one field value, by the rules of the forms and the API (app.fields.values), plus what a
spreadsheet adds: numbers typed into text fields, choices by label, links by title or a unique field,
users by login or name."""
from __future__ import annotations

import datetime
import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from app.fields.values import validate_value
from app.schema import naming
from app.schema.model import FieldSpec, Label, SchemaSpec
from app.security.users import display_name

from .read import Formula
from .values import unquoted

LIST_SEPARATORS = re.compile(r"[,，;；、\n]")
NUMERIC_TYPES = ("integer", "decimal", "money", "percent", "rating")
TEXT_TYPES = ("string", "text", "email", "phone", "url", "cas_number", "uscc", "choice", "multi_choice")


def fold(text: Any) -> str:
    """Return text as names are compared: full-width folded, spaces trimmed and collapsed, case ignored."""
    return " ".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


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
            return None, Label(f"找不到{self.what.zh}“{text}”{self.hint.zh}",
                               f"there is no {self.what.en.lower()} '{text}'{self.hint.en}")
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
    lookup = Lookup(target.label, hint=hint)
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
    return lookup


def user_lookup(session: Any, user_model: Any, condition: Any, rule: Label | None = None) -> Lookup:
    """Return the lookup of a user field: logins and full names (Chinese and English order) of the users
    `condition` allows; the others are named with `rule` (who may be chosen here) when they are used."""
    lookup = Lookup(Label("用户", "user"), hint=Label("（可填登录名或姓名）", " (write the login or the full name)"))
    allowed = None
    if condition is not None:
        allowed = {pk for (pk,) in session.execute(sa.select(user_model.id).where(condition))}
    for user in session.execute(sa.select(user_model)).scalars():
        names = {user.username} | {display_name(user, lang) for lang in ("zh", "en")}
        for name in names:
            if allowed is None or user.id in allowed:
                lookup.add(name, user.id)
            else:
                lookup.refused[fold(name)] = rule or Label("不能用在这里", "may not be chosen here")
    return lookup


def option_key(spec: FieldSpec, raw: str) -> str:
    """Return the option key a cell names by key or by label (zh or en); unknown text unchanged."""
    return option_names(spec).get(fold(raw), raw.strip())


@functools.lru_cache(maxsize=512)
def option_names(spec: FieldSpec) -> dict[str, str]:
    """Return every way to write an option of `spec` (key, Chinese and English label, folded) → its key."""
    assert spec.choices is not None
    names: dict[str, str] = {}
    for option in spec.choices.options:
        for name in (option.label.en, option.label.zh, option.key):  # the key wins a clash
            names[fold(name)] = option.key
    return names


FORMULA = Label("单元格是公式（{text}），请改为数值（复制后“选择性粘贴 → 数值”）",
                "the cell holds a formula ({text}); paste it as values instead (Paste Special → Values)")


def cell_value(spec: FieldSpec, raw: Any, lookups: dict[str, Lookup]) -> tuple[Any, list[Label]]:
    """Return (value for the record, messages) for one cell of the field `spec`; empty cells give None."""
    if isinstance(raw, Formula):
        return None, [Label(FORMULA.zh.format(text=str(raw)[:40]), FORMULA.en.format(text=str(raw)[:40]))]
    if isinstance(raw, str):
        raw = unquoted(raw.strip())
    if raw is None or raw == "":
        return validate_value(None, spec)
    if spec.type in TEXT_TYPES:
        raw = as_text(raw)
    if spec.type == "choice" and isinstance(raw, str):
        raw = option_key(spec, raw)
    elif spec.type == "multi_choice" and isinstance(raw, str):
        raw = [option_key(spec, part) for part in LIST_SEPARATORS.split(raw) if part.strip()]
    elif spec.type in ("decimal", "money", "percent") and isinstance(raw, float):
        raw = repr(raw)
    elif spec.is_relation:
        pk, problem = lookups[spec.key].find(raw)
        if problem is not None:
            return None, [problem]
        return pk, []
    return validate_value(raw, spec)

