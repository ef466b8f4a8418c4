"""The password policy: long enough, not a common password, not built on the user name.

Applied wherever a password is set: `crm user add` / `crm user password`, the first admin, the user
screens and the change-password forms. The common passwords are zxcvbn's list of the 30,000 most
frequent ones from published breaches (a maintained list, rather than one of our own making).
"""
from __future__ import annotations

import re
from functools import lru_cache

from app.schema.model import Label

DEFAULT_MIN_LENGTH = 10


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """Return the common passwords, lower case (loaded on first use: the list is large)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS
    return frozenset(FREQUENCY_LISTS["passwords"])


def password_problems(password: str, username: str | None = None,
                      min_length: int = DEFAULT_MIN_LENGTH) -> list[Label]:
    """Return what is wrong with `password` for the account `username` (empty when it may be used)."""
    problems = []
    if len(password) < min_length:
        problems.append(Label(f"密码至少需要 {min_length} 个字符(现有 {len(password)} 个)",
                              f"the password needs at least {min_length} characters (this has {len(password)})"))
    lowered = password.lower()
    # "password2024!" is "password" with the usual suffix: as easy to guess as the word itself.
    stem = re.sub(r"[\d\W_]+$", "", lowered)
    if lowered in common_passwords() or (len(stem) >= 4 and stem in common_passwords()):
        problems.append(Label("这是常见密码(或常见密码加数字),很容易被猜到,请换一个",
                              "this is a common password (or one with digits added): easy to guess; choose another"))
    elif len(set(lowered)) < 4:
        problems.append(Label("密码太简单:至少要有 4 个不同的字符",
                              "the password is too simple: it needs at least 4 different characters"))
    if username and len(username) >= 3 and username.lower() in lowered:
        problems.append(Label("密码不能包含用户名", "the password must not contain the user name"))
    return problems
