"""How names in a file are compared with stored ones: the same text however it was typed (full-width or
half-width, spaces, case), and companies the same however their legal form is written."""
from __future__ import annotations

import re
import unicodedata
from typing import Any


def fold(text: Any) -> str:
    """Return text as names are compared: full-width folded, case ignored, and no spaces at all, so
    that 张 伟 (spaced to line up in a list) is 张伟 and ＰＩＧ－００１ is pig-001."""
    return "".join(unicodedata.normalize("NFKC", str(text)).split()).casefold()


# Words a company name is written with or without: 华信化工有限公司 = 华信化工 = 华信化工（中国）有限公司.
COMPANY_WORDS = re.compile(r"(股份有限公司|有限责任公司|有限公司|股份|集团|\(中国\)|中国|"
                           r"co\.?,?ltd\.?|limited|inc\.?|corp\.?)")


def company_key(name: Any) -> str:
    """Return a company name as likely duplicates are compared: folded, with 有限公司, 股份, 集团,
    (中国) and the like left out."""
    return COMPANY_WORDS.sub("", fold(name or "")).strip(".,()")
