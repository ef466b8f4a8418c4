"""Filter values from requests (the screens' _flt_ arguments, the API's `filters`), checked with the
field's value rules before they reach SQL: a wrong value is the user's mistake, answered with 400
and a message naming it, never a database error."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.fields.values import INT_MAX, INT_MIN, VALUE_TYPES, bad_character, is_empty, msg
from app.schema.model import FieldSpec, Label

from .records import record_id

TEXT_OPERATIONS = frozenset({"sw", "nsw", "ew", "new", "ct", "nct"})
LIST_OPERATIONS = frozenset({"in", "not_in"})
RECORD_OPERATIONS = frozenset({"rel_o_m", "nrel_o_m", "rel_m_m"})
MAX_SEARCH = 200  # characters of a text searched for (SQLite refuses LIKE patterns over 50,000 bytes)
PARSED_TYPES = frozenset({"integer", "rating", "decimal", "money", "percent", "date", "datetime", "boolean"})


class BadFilter(Exception):
    """A filter value that cannot be compared with the field; `label` says why."""

    def __init__(self, label: Label):
        super().__init__(label.en)
        self.label = label


def checked_filter_value(spec: FieldSpec | None, operation: str, value: Any) -> Any:
    """Return `value` ready for the filter `operation` (FAB's arg_name) on the field `spec`.

    Raises BadFilter naming what is wrong: a list where one value belongs, text with characters no
    database stores, a number or date that does not parse, an integer or id beyond the column's range.
    """
    if operation in LIST_OPERATIONS:
        if not isinstance(value, list):
            raise BadFilter(msg("应为值的列表", "expected a list of values"))
        return [checked_filter_value(spec, "eq", item) for item in value]
    if isinstance(value, (list, dict)):
        raise BadFilter(msg("应为单个值,不是列表或对象", "expected a single value, not a list or an object"))
    if operation in RECORD_OPERATIONS or (spec is not None and spec.is_relation):
        pk = record_id(value)
        if pk is None:
            raise BadFilter(msg("应为记录 id(正整数)", "expected a record id (a positive whole number)"))
        return pk
    problem = bad_character(value)
    if problem is not None:
        raise BadFilter(problem)
    if operation in TEXT_OPERATIONS:
        if value is None or isinstance(value, bool):
            raise BadFilter(msg("应为文本", "expected text"))
        if len(str(value)) > MAX_SEARCH:
            raise BadFilter(msg(f"搜索内容太长:最多 {MAX_SEARCH} 个字符",
                                f"too long to search for: at most {MAX_SEARCH} characters"))
        return str(value)
    if spec is None or spec.type not in PARSED_TYPES or is_empty(value):
        return value
    try:
        parsed = VALUE_TYPES[spec.type].parse(value, spec)
    except ValueError as exc:
        raise BadFilter(exc.args[0]) from None
    if isinstance(parsed, int) and not isinstance(parsed, bool) and not INT_MIN <= parsed <= INT_MAX:
        raise BadFilter(msg(f"数值超出范围:应在 {INT_MIN} 到 {INT_MAX} 之间",
                            f"out of range: must be between {INT_MIN} and {INT_MAX}"))
    if isinstance(parsed, Decimal) and abs(parsed) >= Decimal(10) ** 18:  # wider than any amount column
        raise BadFilter(msg("数值太大", "the number is too large"))
    return parsed


def filter_problem(spec: FieldSpec | None, column: str, error: BadFilter) -> Label:
    """Return the message for a refused filter on `column`, naming the field as people know it."""
    name = spec.label if spec is not None else Label(column, column)
    return Label(f"筛选条件“{name.zh}”的值无效:{error.label.zh}",
                 f"the filter on '{name.en}' has an invalid value: {error.label.en}")
