"""Pure value rules per field type: which YAML keys a type takes, parsing and checking values.

Nothing but the standard library: the schema layer, forms, the API and imports all use these rules,
and the schema layer (app.schema) sits on top of this module. So the two-language `Label` lives here,
and a field is whatever has the attributes `FieldSpec` declares (app.schema.model.FieldSpec has them).
"""
from __future__ import annotations

import datetime
import json
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol


@dataclass(frozen=True)
class Label:
    """A text shown to people, in Chinese and English; falls back to the other language."""

    zh: str
    en: str

    def text(self, lang: str | None = None) -> str:
        """Return the label in `lang` ('zh' or 'en'), or the other one if that is empty."""
        if lang and lang.startswith("en"):
            return self.en or self.zh
        return self.zh or self.en

    def __str__(self) -> str:
        return self.text()


class Option(Protocol):
    """One option of a choice list, as these rules read it."""

    @property
    def key(self) -> str: ...
    @property
    def label(self) -> Label: ...


class Choices(Protocol):
    """A choice list, as these rules read it."""

    @property
    def keys(self) -> tuple[str, ...]: ...
    @property
    def options(self) -> Sequence[Option]: ...


class FieldSpec(Protocol):
    """What the value rules read of a field (app.schema.model.FieldSpec is one)."""

    @property
    def type(self) -> str: ...
    @property
    def required(self) -> bool: ...
    @property
    def min(self) -> Any: ...
    @property
    def max(self) -> Any: ...
    @property
    def max_length(self) -> int | None: ...
    @property
    def pattern(self) -> str | None: ...
    @property
    def pattern_message(self) -> Label | None: ...
    @property
    def choices(self) -> Choices | None: ...
    @property
    def scale(self) -> int | None: ...

COMMON_KEYS = frozenset({"type", "label", "help", "required", "unique", "default", "readonly", "index",
                         "renamed_from", "default_from", "aliases"})
ENCRYPTION_KEYS = frozenset({"encrypted", "searchable"})


def msg(zh: str, en: str) -> Label:
    """Return a two-language message (a Label)."""
    return Label(zh=zh, en=en)


class ValueType:
    """Rules for the values of one field type; subclasses override what differs."""

    name = ""
    keys: frozenset[str] = frozenset()
    can_be_unique = True
    can_be_indexed = True
    can_be_encrypted = False
    default_max_length: int | None = None

    def allowed_keys(self) -> frozenset[str]:
        return COMMON_KEYS | self.keys | (ENCRYPTION_KEYS if self.can_be_encrypted else frozenset())

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        """Return `raw` (text or a YAML/JSON value) as this type's Python value; ValueError(Label)."""
        if isinstance(raw, str):
            return raw.strip()
        raise ValueError(msg("应为文本", "expected text"))

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        """Return the messages for a parsed, non-empty value that breaks the field's rules."""
        problems = []
        limit = spec.max_length or self.default_max_length
        if limit and isinstance(value, str) and len(value) > limit:
            problems.append(msg(f"最多 {limit} 个字符(现有 {len(value)} 个)",
                                f"at most {limit} characters (this has {len(value)})"))
        if spec.pattern and isinstance(value, str) and not re.fullmatch(spec.pattern, value):
            problems.append(spec.pattern_message or msg("格式不正确", "does not match the required format"))
        return problems

    def validate(self, raw: Any, spec: FieldSpec) -> tuple[Any, list[Label]]:
        """Return (parsed value, messages); empty input gives (None, required message or [])."""
        if is_empty(raw):
            return None, ([msg("必填", "required")] if spec.required else [])
        bad = bad_character(raw)
        if bad:
            return None, [bad]
        try:
            value = self.parse(raw, spec)
        except ValueError as exc:
            return None, [exc.args[0]]
        if is_empty(value):
            return None, ([msg("必填", "required")] if spec.required else [])
        return value, self.check(value, spec)


# Control characters (NUL among them, which PostgreSQL cannot store), lone surrogates (which no
# database can store as UTF-8), and invisible characters that change how text reads or sorts:
# zero-width spaces and joiners, direction marks and overrides (a name shown backwards), BOM.
FORBIDDEN_CHARACTERS = re.compile(
    "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\u200b-\u200f\u202a-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]")


def bad_character(raw: Any) -> Label | None:
    """Return the message for text (or a list of texts) holding a character no field may store."""
    texts = raw if isinstance(raw, (list, tuple)) else [raw]
    for text in texts:
        found = FORBIDDEN_CHARACTERS.search(text) if isinstance(text, str) else None
        if found:
            code = f"U+{ord(found.group()):04X}"
            return msg(f"含有不允许的字符 {code}(控制字符或不可见字符),请删除后重试",
                       f"contains a character that is not allowed: {code} (a control or invisible character); "
                       "remove it and try again")
    return None


def is_empty(value: Any) -> bool:
    """Return True for None, blank text and empty lists."""
    return value is None or (isinstance(value, str) and not value.strip()) or value == []


class StringType(ValueType):
    name = "string"
    can_be_encrypted = True
    keys = frozenset({"max_length", "pattern", "pattern_message"})
    default_max_length = 255


class TextType(ValueType):
    name = "text"
    can_be_encrypted = True
    keys = frozenset({"max_length", "pattern", "pattern_message"})
    can_be_unique = False
    can_be_indexed = False
    # MariaDB's TEXT holds 65,535 bytes; the same limit everywhere keeps every backup restorable into
    # any of the three databases. Encrypted texts are stored in LONGTEXT and take the same limit.
    max_bytes = 65535

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems = super().check(value, spec)
        size = len(value.encode("utf-8"))
        if size > self.max_bytes:
            problems.append(msg(f"内容太长:最多 {self.max_bytes} 字节(约 {self.max_bytes // 3} 个汉字),"
                                f"现有 {size} 字节",
                                f"too long: at most {self.max_bytes} bytes (about {self.max_bytes // 3} Chinese "
                                f"characters); this has {size}"))
        return problems


class RegexType(ValueType):
    """A text value that must match a fixed format."""

    regex = re.compile("")
    bad = msg("", "")

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems = super().check(value, spec)
        if not self.regex.fullmatch(value):
            problems.append(self.bad)
        return problems


class EmailType(RegexType):
    name = "email"
    can_be_encrypted = True
    default_max_length = 254
    regex = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
    bad = msg("不是有效的电子邮件地址,例如 name@example.com",
              "not a valid email address, e.g. name@example.com")


class PhoneType(RegexType):
    name = "phone"
    can_be_encrypted = True
    default_max_length = 32
    regex = re.compile(r"(?:\+?86[- ]?)?1[3-9]\d{9}|0\d{2,3}-?\d{7,8}(?:-\d{1,6})?|[48]00-?\d{3}-?\d{4}")
    bad = msg("不是有效的电话号码:手机 13812345678,座机 021-12345678",
              "not a valid phone number: mobile 13812345678 or landline 021-12345678")

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, int) and not isinstance(raw, bool):
            raw = str(raw)
        if not isinstance(raw, str):
            return super().parse(raw, spec)
        return phone_writing(super().parse(raw, spec))


def phone_writing(text: str) -> str:
    """Return a phone number as stored: full-width folded, no spaces, (021)1234 as 021-1234, 转801 as
    -801, a mobile's grouping dashes dropped (138-1234-5678)."""
    text = "".join(unicodedata.normalize("NFKC", text).split()).replace("—", "-").replace("–", "-")
    text = re.sub(r"^\((0\d{2,3})\)-?", r"\1-", text)
    text = re.sub(r"(?:转|ext\.?|x)(\d{1,6})$", r"-\1", text, flags=re.IGNORECASE)
    if re.fullmatch(r"(?:\+?86-?)?1[3-9]\d-?\d{4}-?\d{4}", text):
        text = text.replace("-", "")
    return text


class UrlType(RegexType):
    name = "url"
    default_max_length = 2048
    regex = re.compile(r"https?://[^\s/?#]+\.[^\s/?#]+(?:[/?#]\S*)?")
    bad = msg("不是有效的网址,应以 http:// 或 https:// 开头",
              "not a valid web address; it must start with http:// or https://")


class CasNumberType(ValueType):
    name = "cas_number"
    default_max_length = 12
    regex = re.compile(r"(\d{2,7})-(\d{2})-(\d)")

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        # As copied from a PDF or typed with a Chinese input method: full-width digits, en dashes.
        text = unicodedata.normalize("NFKC", super().parse(raw, spec))
        return re.sub(r"\s*[‐‑‒–—―－]\s*", "-", text).strip()

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems = super().check(value, spec)
        match = self.regex.fullmatch(value)
        if not match:
            return problems + [msg("CAS号格式应为 数字-两位数字-一位校验位,例如 7732-18-5",
                                   "a CAS number looks like 7732-18-5 (digits-two digits-check digit)")]
        expected = cas_check_digit(match.group(1) + match.group(2))
        if expected != int(match.group(3)):
            problems.append(msg(f"CAS号校验位不正确（应为 {expected}）",
                                f"the CAS number's check digit is wrong (it should be {expected})"))
        return problems


def cas_check_digit(digits: str) -> int:
    """Return the CAS check digit for the digits before it (without hyphens)."""
    return sum(i * int(d) for i, d in enumerate(reversed(digits), start=1)) % 10


USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """Return the check character (GB 32100-2015) for the first 17 characters of a USCC."""
    total = sum(USCC_CHARS.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=False))
    return USCC_CHARS[(31 - total % 31) % 31]


class UsccType(ValueType):
    name = "uscc"
    default_max_length = 18

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        return "".join(unicodedata.normalize("NFKC", super().parse(raw, spec)).split()).upper()

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        if len(value) != 18 or any(c not in USCC_CHARS for c in value):
            return [msg("统一社会信用代码应为18位数字或大写字母(不含 I、O、Z、S、V)",
                        "a unified social credit code has 18 digits or capital letters (no I, O, Z, S, V)")]
        expected = uscc_check_char(value[:17])
        if expected != value[17]:
            return [msg(f"统一社会信用代码校验位不正确（应为 {expected}）",
                        f"the unified social credit code's check character is wrong (it should be {expected})")]
        return []


class NumberType(ValueType):
    """Shared min/max checks for numbers; a number may be computed (compute:)."""

    keys = frozenset({"min", "max", "compute"})

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        if spec.min is not None and value < spec.min:
            return [msg(f"不能小于 {spec.min}", f"must be at least {spec.min}")]
        if spec.max is not None and value > spec.max:
            return [msg(f"不能大于 {spec.max}", f"must be at most {spec.max}")]
        return []


# Integer fields and ids are 32-bit columns on PostgreSQL and MariaDB.
INT_MIN, INT_MAX = -2**31, 2**31 - 1


class IntegerType(NumberType):
    name = "integer"

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        if not INT_MIN <= value <= INT_MAX:
            return [msg(f"数值超出范围:应在 {INT_MIN} 到 {INT_MAX} 之间",
                        f"out of range: must be between {INT_MIN} and {INT_MAX}")]
        return super().check(value, spec)

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            raise ValueError(msg("应为整数", "expected a whole number"))
        if isinstance(raw, int):
            return raw
        if isinstance(raw, float) and raw.is_integer():
            return int(raw)
        text = raw.replace(",", "").strip() if isinstance(raw, str) else ""
        if re.fullmatch(r"[-+]?\d{1,18}", text):  # more digits than any column holds: not int() of 5,000 digits
            return int(text)
        if re.fullmatch(r"[-+]?\d+", text):
            raise ValueError(msg(f"数值超出范围:应在 {INT_MIN} 到 {INT_MAX} 之间",
                                 f"out of range: must be between {INT_MIN} and {INT_MAX}"))
        raise ValueError(msg("应为整数", "expected a whole number"))


MAX_DIGITS = 15


class DecimalType(NumberType):
    name = "decimal"
    can_be_encrypted = True
    keys = frozenset({"min", "max", "scale", "compute"})
    default_scale = 4

    def scale(self, spec: FieldSpec) -> int:
        return spec.scale if spec.scale is not None else self.default_scale

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            raise ValueError(msg("应为数字", "expected a number"))
        text = "".join(unicodedata.normalize("NFKC", str(raw)).split()).replace(",", "").rstrip("%")
        text = text.lstrip("¥$€").removeprefix("RMB").removesuffix("元")
        scale = 1
        if self.name == "money" and text.endswith("万"):  # 100万 (a million yuan), as Chinese lists write it
            text, scale = text[:-1], 10000
        try:
            value = Decimal(text) * scale
        except InvalidOperation:
            raise ValueError(msg("应为数字", "expected a number")) from None
        if not value.is_finite():
            raise ValueError(msg("应为数字", "expected a number"))
        return value

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems = super().check(value, spec)
        places = self.scale(spec)
        # 15 digits in all: SQLite keeps numbers as doubles, exact to 15 digits (checked first: 1e30
        # has too many digits to round).
        if abs(value) >= Decimal(10) ** (MAX_DIGITS - places):
            return problems + [msg("数值太大", "the number is too large")]
        if value != value.quantize(Decimal(1).scaleb(-places)) if places else value != value.to_integral():
            problems.append(msg(f"最多 {places} 位小数", f"at most {places} decimal places"))
        return problems


class MoneyType(DecimalType):
    name = "money"
    default_scale = 2


class PercentType(DecimalType):
    name = "percent"
    can_be_encrypted = False
    default_scale = 2

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems = super().check(value, spec)
        if spec.min is None and value < 0 or spec.max is None and value > 100:
            problems.append(msg("百分比应在 0 到 100 之间", "a percentage must be between 0 and 100"))
        return problems


class BooleanType(ValueType):
    name = "boolean"
    can_be_unique = False
    TRUE = {"1", "true", "yes", "y", "on", "是", "真", "√"}
    FALSE = {"0", "false", "no", "n", "off", "否", "假", "×"}

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in self.TRUE:
            return True
        if text in self.FALSE:
            return False
        raise ValueError(msg("应为 是 或 否", "expected yes or no"))

    def validate(self, raw: Any, spec: FieldSpec) -> tuple[Any, list[Label]]:
        # An unticked box is a valid "no", so required does not apply.
        if is_empty(raw):
            return None, []
        try:
            return self.parse(raw, spec), []
        except ValueError as exc:
            return None, [exc.args[0]]


# How people type a date: 2026-12-15, 2026/12/15, 2026.12.15, 2026年12月15日, 20261215 (full-width
# digits too, as a Chinese input method gives them).
DATE_WRITINGS = (re.compile(r"(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
                            r"(?:[ T]00:00(?::00)?)?"),  # a date an ERP writes with a midnight time
                 re.compile(r"(\d{4})(\d{2})(\d{2})"))
DATE_EXPECTED = msg("应为日期，如 2026-12-15、2026/12/15 或 2026年12月15日",
                    "expected a date like 2026-12-15, 2026/12/15 or 2026.12.15")


def parse_date(text: str) -> datetime.date:
    """Return the date written in `text` in one of DATE_WRITINGS; ValueError(Label) naming what is wrong."""
    text = unicodedata.normalize("NFKC", text).strip()
    for writing in DATE_WRITINGS:
        found = writing.fullmatch(text)
        if found:
            year, month, day = (int(part) for part in found.groups())
            try:
                return datetime.date(year, month, day)
            except ValueError:
                raise ValueError(msg(f"没有这一天：{year}年{month}月{day}日",
                                     f"there is no such day: {year:04d}-{month:02d}-{day:02d}")) from None
    raise ValueError(DATE_EXPECTED)


class DateType(ValueType):
    name = "date"
    keys = frozenset({"min", "max"})

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime.datetime):
            return raw.date()
        if isinstance(raw, datetime.date):
            return raw
        return parse_date(str(raw))

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        if spec.min is not None and value < spec.min:
            return [msg(f"不能早于 {spec.min}", f"must not be before {spec.min}")]
        if spec.max is not None and value > spec.max:
            return [msg(f"不能晚于 {spec.max}", f"must not be after {spec.max}")]
        return []


class DateTimeType(ValueType):
    name = "datetime"

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, datetime.datetime):
            return raw.replace(tzinfo=None)
        if isinstance(raw, datetime.date):
            return datetime.datetime.combine(raw, datetime.time())
        text = unicodedata.normalize("NFKC", str(raw)).strip().replace("Z", "")
        try:
            return datetime.datetime.fromisoformat(text).replace(tzinfo=None)
        except ValueError:
            pass
        day, _, time = text.replace("T", " ").partition(" ")
        try:
            clock = datetime.time.fromisoformat(time.strip()) if time.strip() else datetime.time()
            return datetime.datetime.combine(parse_date(day), clock)
        except ValueError as exc:
            if exc.args and isinstance(exc.args[0], Label) and exc.args[0] is not DATE_EXPECTED:
                raise
            raise ValueError(msg("应为日期时间，如 2026-12-15 14:30",
                                 "expected a date and time like 2026-12-15 14:30")) from None


class ChoiceType(ValueType):
    name = "choice"
    keys = frozenset({"options"})
    default_max_length: int | None = 64

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            raw = str(raw)
        return super().parse(raw, spec)

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        assert spec.choices is not None
        if value not in spec.choices.keys:
            zh = "、".join(f"{o.key}({o.label.zh})" for o in spec.choices.options)
            en = ", ".join(f"{o.key} ({o.label.en})" for o in spec.choices.options)
            return [msg(f"“{value}”不是可选项,可选:{zh}", f"'{value}' is not one of the options: {en}")]
        return []


class MultiChoiceType(ChoiceType):
    name = "multi_choice"
    can_be_unique = False
    can_be_indexed = False
    default_max_length = None

    def parse(self, raw: Any, spec: FieldSpec) -> Any:
        if isinstance(raw, str):
            text = raw.strip()
            if text.startswith("["):
                try:
                    raw = json.loads(text)
                except ValueError:
                    raise ValueError(msg("应为选项列表", "expected a list of options")) from None
            else:
                raw = [part for part in re.split(r"[,,;;、]", text)]
        if not isinstance(raw, (list, tuple)):
            raise ValueError(msg("应为选项列表", "expected a list of options"))
        values = [str(v).strip() for v in raw if str(v).strip()]
        return list(dict.fromkeys(values))

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        problems: list[Label] = []
        for item in value:
            problems += ChoiceType.check(self, item, spec)
        return problems


class RelationType(IntegerType):
    """A link to another table's row (or to a login user), stored as its id."""

    name = "link"
    keys = frozenset({"to", "on_delete", "match"})

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        return []


class UserType(RelationType):
    name = "user"
    keys = frozenset({"on_delete", "roles"})


class AttachmentType(ValueType):
    name = "attachment"
    keys = frozenset({"accept"})
    default_max_length = 512
    can_be_unique = False
    can_be_encrypted = True

    def allowed_keys(self) -> frozenset[str]:
        return super().allowed_keys() - {"searchable"}  # the file is encrypted; its name is not searched


class RatingType(IntegerType):
    name = "rating"
    keys = frozenset()

    def check(self, value: Any, spec: FieldSpec) -> list[Label]:
        if not 1 <= value <= 5:
            return [msg("评分应为 1 到 5", "a rating is from 1 to 5")]
        return []


VALUE_TYPES: dict[str, ValueType] = {t.name: t for t in (
    StringType(), TextType(), IntegerType(), DecimalType(), MoneyType(), PercentType(),
    BooleanType(), DateType(), DateTimeType(), ChoiceType(), MultiChoiceType(), EmailType(),
    PhoneType(), UrlType(), RelationType(), UserType(), AttachmentType(), RatingType(),
    CasNumberType(), UsccType(),
)}

def validate_value(raw: Any, spec: FieldSpec) -> tuple[Any, list[Label]]:
    """Return (parsed value, messages) for one raw input of the field `spec`."""
    return VALUE_TYPES[spec.type].validate(raw, spec)
