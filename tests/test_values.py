"""Every field type's parsing and validation, with the exact messages users see."""
from __future__ import annotations

import datetime
from decimal import Decimal
from typing import Any

import pytest

from app.fields.values import VALUE_TYPES, cas_check_digit, uscc_check_char, validate_value
from app.schema.model import ChoiceListSpec, FieldSpec, Label, OptionSpec

LEVELS = ChoiceListSpec("level", (OptionSpec("low", Label("低", "Low")), OptionSpec("high", Label("高", "High"))))


def field(type_: str, **kw: Any) -> FieldSpec:
    return FieldSpec(key="f", type=type_, label=Label("字段", "Field"), **kw)


def check(type_: str, raw: Any, **kw: Any) -> tuple[Any, list[str]]:
    value, problems = validate_value(raw, field(type_, **kw))
    return value, [p.zh for p in problems]


@pytest.mark.parametrize("type_,raw,expected", [
    ("string", "  甲醇 ", "甲醇"),
    ("text", "第一行\n第二行", "第一行\n第二行"),
    ("integer", "1,200", 1200),
    ("decimal", "3.1416", Decimal("3.1416")),
    ("money", "¥1,234.50", Decimal("1234.50")),
    ("percent", "99.5%", Decimal("99.5")),
    ("boolean", "是", True),
    ("boolean", "off", False),
    ("date", "2025/03/01", datetime.date(2025, 3, 1)),
    ("date", "2026-12-15", datetime.date(2026, 12, 15)),
    ("date", "2026.12.15", datetime.date(2026, 12, 15)),
    ("date", "2026年12月15日", datetime.date(2026, 12, 15)),
    ("date", "2027/3/5", datetime.date(2027, 3, 5)),
    ("date", "２０２６年１２月１５日", datetime.date(2026, 12, 15)),
    ("date", "20261215", datetime.date(2026, 12, 15)),
    ("datetime", "2026/12/15 09:05", datetime.datetime(2026, 12, 15, 9, 5)),
    ("datetime", "2026-12-15T09:05", datetime.datetime(2026, 12, 15, 9, 5)),
    ("datetime", "2025-03-01 14:30", datetime.datetime(2025, 3, 1, 14, 30)),
    ("email", "sales@huayuan-chem.com", "sales@huayuan-chem.com"),
    ("phone", "138 1234 5678", "13812345678"),
    ("phone", "021-62345678", "021-62345678"),
    ("phone", "400-820-8820", "400-820-8820"),
    ("url", "https://www.example.com/sds", "https://www.example.com/sds"),
    ("rating", "4", 4),
    ("cas_number", "7732-18-5", "7732-18-5"),
    ("cas_number", "64-17-5", "64-17-5"),
    ("uscc", "91350100m000100y43", "91350100M000100Y43"),
    ("link", 5, 5),
    ("attachment", "abc__sds.pdf", "abc__sds.pdf"),
])
def test_valid_values_are_parsed(type_: str, raw: Any, expected: Any) -> None:
    assert check(type_, raw) == (expected, [])


@pytest.mark.parametrize("type_,raw,kw,message", [
    ("string", "x" * 6, {"max_length": 5}, "最多 5 个字符(现有 6 个)"),
    ("string", "AB-1", {"pattern": r"UN\d{4}", "pattern_message": Label("应为 UN 加四位数字", "")},
     "应为 UN 加四位数字"),
    ("integer", "1.5", {}, "应为整数"),
    ("integer", "3", {"min": 5}, "不能小于 5"),
    ("integer", "30", {"max": 10}, "不能大于 10"),
    ("decimal", "abc", {}, "应为数字"),
    ("money", "1.005", {}, "最多 2 位小数"),
    ("percent", "101", {}, "百分比应在 0 到 100 之间"),
    ("boolean", "maybe", {}, "应为 是 或 否"),
    ("date", "2025-02-30", {}, "没有这一天：2025年2月30日"),
    ("date", "15/12/2026", {}, "应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日"),
    ("date", "2020-01-01", {"min": datetime.date(2024, 1, 1)}, "不能早于 2024-01-01"),
    ("datetime", "yesterday", {}, "应为日期时间，如 2026-12-15 14:30"),
    ("email", "sales@", {}, "不是有效的电子邮件地址,例如 name@example.com"),
    ("phone", "12345", {}, "不是有效的电话号码:手机 13812345678,座机 021-12345678"),
    ("url", "www.example.com", {}, "不是有效的网址,应以 http:// 或 https:// 开头"),
    ("rating", "6", {}, "评分应为 1 到 5"),
    ("cas_number", "7732-18-4", {}, "CAS号校验位不正确（应为 5）"),
    ("cas_number", "7732185", {}, "CAS号格式应为 数字-两位数字-一位校验位,例如 7732-18-5"),
    ("uscc", "91350100M000100Y44", {}, "统一社会信用代码校验位不正确（应为 3）"),
    ("uscc", "91350100M00010", {}, "统一社会信用代码应为18位数字或大写字母(不含 I、O、Z、S、V)"),
    ("uscc", "9135010OM000100Y43", {}, "统一社会信用代码应为18位数字或大写字母(不含 I、O、Z、S、V)"),
    ("choice", "mid", {"choices": LEVELS}, "“mid”不是可选项,可选:low(低)、high(高)"),
    ("multi_choice", "low,mid", {"choices": LEVELS}, "“mid”不是可选项,可选:low(低)、high(高)"),
])
def test_invalid_values_get_a_message(type_: str, raw: Any, kw: dict[str, Any], message: str) -> None:
    assert check(type_, raw, **kw) == (None, [message]) or check(type_, raw, **kw)[1] == [message]


def test_required_and_empty_values() -> None:
    assert check("string", "  ", required=True) == (None, ["必填"])
    assert check("string", "", required=False) == (None, [])
    assert check("multi_choice", [], required=True, choices=LEVELS) == (None, ["必填"])
    assert check("boolean", None, required=True) == (None, [])


def test_multi_choice_accepts_lists_json_and_separators() -> None:
    assert check("multi_choice", ["high", "low", "high"], choices=LEVELS) == (["high", "low"], [])
    assert check("multi_choice", '["low"]', choices=LEVELS) == (["low"], [])
    assert check("multi_choice", "low、high", choices=LEVELS) == (["low", "high"], [])


def test_check_digit_algorithms() -> None:
    assert cas_check_digit("773218") == 5       # water
    assert cas_check_digit("131073") == 2       # sodium hydroxide 1310-73-2
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert uscc_check_char("91110000600037341") == "L"


def test_every_type_has_english_messages_too() -> None:
    for name in VALUE_TYPES:
        _, problems = validate_value(None, field(name, required=name != "boolean",
                                                 choices=LEVELS if "choice" in name else None))
        for problem in problems:
            assert problem.en and problem.zh, name
