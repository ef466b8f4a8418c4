"""`--filter FIELD=VALUE` (also != >= <= > < and ~ for "contains") → SQL conditions, values read as an
import reads cells (a choice by label, a link by title), so `--filter status=合作中` works."""
from __future__ import annotations

import operator
import re
from collections.abc import Iterable
from typing import Any

from flask import current_app

from app.models.build import BuiltModels
from app.schema import naming
from app.schema.model import Label
from app.security.gate import current_user, field_access, pick_condition

from .cells import cell_value, link_lookup, user_lookup

FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(!=|>=|<=|=|>|<|~)(.*)$")
OPERATORS = {"=": operator.eq, "!=": operator.ne, ">=": operator.ge, "<=": operator.le, ">": operator.gt,
             "<": operator.lt}


class FilterProblem(Exception):
    def __init__(self, label: Label):
        super().__init__(label.en)
        self.label = label

    def text(self, lang: str) -> str:
        return self.label.text(lang)


def cli_conditions(models: BuiltModels, table_key: str, filters: Iterable[str]) -> list[Any]:
    """Return one condition per filter; FilterProblem naming a malformed filter, an unknown field or a bad value."""
    table = models.schema.table(table_key)
    access = field_access(models.schema, table_key, current_user())
    model: Any = models.model(table_key)
    conditions = []
    for text in filters:
        found = FILTER.match(text)
        if not found:
            raise FilterProblem(Label(f"--filter {text}：应写成 字段=值，例如 status=active",
                                      f"--filter {text}: write FIELD=VALUE, e.g. status=active"))
        key, op, raw = found.groups()
        if not table.has_field(key) or not access.searches(key):
            known = ", ".join(f.key for f in table.fields if access.searches(f.key))
            raise FilterProblem(Label(f"--filter {text}：{table.key} 没有可筛选的字段“{key}”；可用：{known}",
                                      f"--filter {text}: {table.key} has no field '{key}' to filter by; "
                                      f"known: {known}"))
        spec = table.field(key)
        column = getattr(model, naming.column_name_for(spec))
        if op == "~":
            conditions.append(column.contains(raw.strip(), autoescape=True))
            continue
        lookups = {}
        if spec.type == "link":
            lookups[key] = link_lookup(models_session(), models.schema, models, spec,
                                       pick_condition(models, spec.to or "", current_user()))
        if spec.type == "user":
            lookups[key] = user_lookup(models_session(), current_app.extensions["appbuilder"].sm.user_model, None)
        value, problems = cell_value(spec, raw, lookups) if raw.strip() else (None, [])
        if problems:
            raise FilterProblem(Label(f"--filter {text}：{problems[0].zh}", f"--filter {text}: {problems[0].en}"))
        if value is None:
            conditions.append(column.is_(None) if op == "=" else column.is_not(None))
        elif spec.type == "multi_choice":
            conditions.append(column.contains(f'"{value[0]}"'))
        else:
            conditions.append(OPERATORS[op](column, value))
    return conditions


def models_session() -> Any:
    return current_app.extensions["appbuilder"].session
