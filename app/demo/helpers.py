"""Small random and formatting helpers of the demo builder; none of them keeps any state."""
from __future__ import annotations

import datetime
import random
from collections.abc import Mapping, Sequence
from decimal import Decimal

from app.fields.values import USCC_CHARS, uscc_check_char

CENT = Decimal("0.01")


def scaled(base: int, scale: float) -> int:
    """Return `base` rows scaled by `scale`, at least 1."""
    return max(1, round(base * scale))


def pick(rng: random.Random, keys: Sequence[str], weights: Mapping[str, float] | None = None) -> str | None:
    """Return one of `keys`, weighted by `weights` (missing keys weigh 1); None if there are no keys."""
    if not keys:
        return None
    if weights:
        w = [weights.get(k, 1.0) for k in keys]
        if sum(w) > 0:
            return rng.choices(keys, w)[0]
    return rng.choice(keys)


def pick_some(rng: random.Random, keys: Sequence[str], most: int) -> list[str]:
    """Return 0..`most` distinct keys, in the order the schema lists them."""
    chosen = set(rng.sample(list(keys), min(len(keys), rng.randint(0, most))))
    return [k for k in keys if k in chosen]


def state(keys: Sequence[str], wanted: str) -> str | None:
    """Return `wanted` if the schema still has that option, else its first option."""
    if wanted in keys:
        return wanted
    return keys[0] if keys else None


def day_between(rng: random.Random, start: datetime.date, end: datetime.date) -> datetime.date:
    """Return a random date from `start` to `end`, both included."""
    return start + datetime.timedelta(days=rng.randint(0, max(0, (end - start).days)))


def plus_days(day: datetime.date, days: int, cap: datetime.date | None = None) -> datetime.date:
    """Return `day` + `days`, no later than `cap`."""
    result = day + datetime.timedelta(days=days)
    return min(result, cap) if cap else result


def money(value: Decimal) -> Decimal:
    """Return `value` rounded to the cent."""
    return value.quantize(CENT)


def person_name(rng: random.Random, family: Sequence[tuple[str, str]],
                given: Sequence[tuple[str, str]]) -> tuple[str, str]:
    """Return a Chinese name and its pinyin for e-mail addresses, e.g. ('王建华', 'jianhua.wang').

    `family` and `given` hold (character, pinyin) pairs; the given name has one or two characters.
    """
    surname, s_py = rng.choice(family)
    chosen = rng.sample(given, rng.choice((1, 2, 2)))
    return surname + "".join(g for g, _ in chosen), "".join(p for _, p in chosen) + "." + s_py


def mobile(rng: random.Random, prefixes: Sequence[str]) -> str:
    """Return an 11-digit mobile number starting with one of `prefixes`."""
    return rng.choice(prefixes) + f"{rng.randint(0, 99_999_999):08d}"


def landline(rng: random.Random, area_code: str) -> str:
    """Return a landline number: 8 digits after a 3-digit area code, 7 after a 4-digit one."""
    digits = 8 if len(area_code) == 3 else 7
    return f"{area_code}-{rng.randint(2, 8)}{rng.randint(0, 10 ** (digits - 1) - 1):0{digits - 1}d}"


def org_code_check(body: str) -> str:
    """Return the check character of an 8-character organisation code (GB 11714)."""
    total = sum(int(c, 36) * w for c, w in zip(body, (3, 7, 9, 10, 5, 8, 4, 2), strict=True))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


def uscc(rng: random.Random, gb_code: str) -> str:
    """Return a unified social credit code of an enterprise registered in the province `gb_code`."""
    area = gb_code + f"{rng.randint(1, 12):02d}" + rng.choice(("02", "03", "05", "06", "11", "12", "81"))
    if rng.random() < 0.6:   # codes issued since 2015 start with MA
        body = "MA" + "".join(rng.choice(USCC_CHARS) for _ in range(6))
    else:
        body = "".join(rng.choice("0123456789") for _ in range(8))
    first17 = "91" + area + body + org_code_check(body)
    return first17 + uscc_check_char(first17)
