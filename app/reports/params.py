"""A report's parameters as the user gives them (form fields, `--param key=value`): typed values,
defaults worked out from today, and a clear message for each value that is not right."""
from __future__ import annotations

import datetime
from typing import Any

from app.fields.values import INT_MAX
from app.schema.model import Label, SchemaSpec

from .spec import ParamSpec, ReportSpec

# Days counted from today stay within the calendar (a date ± 36,500 days), and typed dates are ones a
# business means: 1900 to 2999 leaves room for ageing (as_of − 90 days) without leaving Python's dates.
MAX_INTEGER = 36_500
FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2999, 12, 31)


class ParamError(ValueError):
    """Parameters that cannot be used: one (parameter, message) per problem, in both languages."""

    def __init__(self, problems: list[tuple[str, Label]]):
        self.problems = problems
        super().__init__("; ".join(f"{key}: {text.en}" for key, text in problems))

    def text(self, lang: str) -> str:
        return ("；" if lang == "zh" else "; ").join(f"{key}: {text.text(lang)}" for key, text in self.problems)


def default_value(param: ParamSpec, today: datetime.date) -> Any:
    """Return what a parameter is when the user leaves it empty: its default worked out for `today`."""
    if param.type != "date" or param.default is None:
        return param.default
    if param.default == "today":
        return today
    if param.default == "start_of_month":
        return today.replace(day=1)
    if param.default == "end_of_month":
        following = (today.replace(day=28) + datetime.timedelta(days=4)).replace(day=1)
        return following - datetime.timedelta(days=1)
    if param.default == "start_of_year":
        return today.replace(month=1, day=1)
    # last_12_months: the first day of the month eleven months back, so this month and eleven before
    month = today.month - 11
    year = today.year + (month - 1) // 12
    return datetime.date(year, (month - 1) % 12 + 1, 1)


def resolve_params(report: ReportSpec, given: dict[str, Any], schema: SchemaSpec,
                   today: datetime.date) -> dict[str, Any]:
    """Return every parameter's typed value from `given` (text or typed), defaults for the rest;
    ParamError naming each value that is wrong or missing, and each name the report does not have."""
    problems: list[tuple[str, Label]] = []
    values: dict[str, Any] = {}
    for key in given:
        if key not in [p.key for p in report.params]:
            known = "、".join(p.key for p in report.params) or "—"
            problems.append((key, Label(f"此报表没有这个参数（可用：{known}）",
                                        f"the report has no such parameter (it takes: {known})")))
    for param in report.params:
        raw = given.get(param.key)
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            values[param.key] = default_value(param, today)
        else:
            try:
                values[param.key] = typed(param, raw, schema)
            except ValueError as exc:
                problems.append((param.key, exc.args[0]))
                continue
        if param.required and values[param.key] is None:
            problems.append((param.key, Label("必填", "required")))
    if problems:
        raise ParamError(problems)
    return values


def typed(param: ParamSpec, raw: Any, schema: SchemaSpec) -> Any:
    """Return `raw` as a value of the parameter's type; ValueError(Label) when it is not one."""
    if param.type == "date":
        if isinstance(raw, datetime.date):
            return raw
        try:
            day = datetime.date.fromisoformat(str(raw).strip().replace("/", "-"))
        except ValueError:
            raise ValueError(Label(f"“{raw}”不是日期，请写作 2026-12-31",
                                   f"'{raw}' is not a date; write 2026-12-31")) from None
        if not FIRST_DAY <= day <= LAST_DAY:
            raise ValueError(Label(f"“{raw}”超出范围（{FIRST_DAY.year}–{LAST_DAY.year} 年）",
                                   f"'{raw}' is out of range ({FIRST_DAY.year}–{LAST_DAY.year})"))
        return day
    if param.type in ("integer", "link", "user"):
        text = str(raw).strip()
        try:
            if not (text.isascii() and text.lstrip("-").isdigit()):
                raise ValueError(text)  # int() also takes 3_0, ٣ and full-width digits
            number = int(text)
        except ValueError:
            what = Label("整数", "a whole number") if param.type == "integer" else Label("记录编号", "a record id")
            raise ValueError(Label(f"“{raw}”不是{what.zh}", f"'{raw}' is not {what.en}")) from None
        if param.type == "integer" and not -MAX_INTEGER <= number <= MAX_INTEGER:
            raise ValueError(Label(f"数值超出范围（±{MAX_INTEGER}）", f"out of range (±{MAX_INTEGER:,})"))
        if param.type != "integer" and not 1 <= number <= INT_MAX:
            raise ValueError(Label(f"“{raw}”不是记录编号", f"'{raw}' is not a record id"))
        return number
    if param.type == "choice":
        choices = schema.choices[param.options or ""]
        text = str(raw).strip()
        for option in choices.options:
            if text in (option.key, option.label.zh, option.label.en):
                return option.key
        raise ValueError(Label(f"“{raw}”不是可选项（{'、'.join(choices.keys)}）",
                               f"'{raw}' is not an option ({', '.join(choices.keys)})"))
    return str(raw)[:200]
