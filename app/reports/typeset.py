"""Chinese set the way Chinese readers expect: lines broken by the rules of Chinese typesetting and
chemical formulas with real sub- and superscripts (H₂SO₄), on top of reportlab's Paragraph.

reportlab's `wordWrap='CJK'` breaks before any character that overflows and only knows a few closing
marks: a line may start with ，；：？！》” and end with （《“. Here a break is moved back until the
next line starts with a character that may start one and the line ends with one that may end one
(禁则: 避头尾); when no such place is left, a closing mark hangs into the margin.
"""
from __future__ import annotations

from typing import Any

from reportlab.platypus import Paragraph
from reportlab.platypus.paragraph import ParaLines, cjkU, makeCJKParaLine
from reportlab.rl_config import _FUZZ

# May not start a line: closing brackets and quotes, sentence and clause marks, iteration marks, ℃ %.
NOT_AT_LINE_START = frozenset("，。、；：！？）》〉」』】〕｝］”’…—～·.,;:!?)]}%'\"℃°％‰")
# May not end a line: opening brackets and quotes, and signs that belong to what follows.
NOT_AT_LINE_END = frozenset("（《〈「『【〔｛［“‘([{￥$#＃")
# Runs that stay whole: a dash (——) or ellipsis (……) is two characters that read as one mark.
UNBREAKABLE_PAIRS = frozenset({"——", "……"})

SUBSCRIPTS = {chr(0x2080 + n): str(n) for n in range(10)} | {"₊": "+", "₋": "-"}
SUPERSCRIPTS = {"⁰": "0", "¹": "1", "²": "2", "³": "3", "⁴": "4", "⁵": "5", "⁶": "6", "⁷": "7", "⁸": "8",
                "⁹": "9", "⁺": "+", "⁻": "-"}


def escape(text: str) -> str:
    """Return `text` safe for a reportlab Paragraph (which reads a little XML)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def markup(text: str) -> str:
    """Return plain text as Paragraph markup: escaped, line breaks kept, and Unicode sub- and
    superscript digits (which CJK fonts rarely draw) set as <sub>/<super> of ordinary digits."""
    out: list[str] = []
    for ch in escape(text):
        if ch in SUBSCRIPTS:
            out.append(f"<sub>{SUBSCRIPTS[ch]}</sub>")
        elif ch in SUPERSCRIPTS:
            out.append(f"<super>{SUPERSCRIPTS[ch]}</super>")
        elif ch == "\n":
            out.append("<br/>")
        else:
            out.append(ch)
    return "".join(out).replace("</sub><sub>", "").replace("</super><super>", "")


def break_allowed(before: str, after: str) -> bool:
    """Return True when a line may end with `before` and the next begin with `after`."""
    if after in NOT_AT_LINE_START or before in NOT_AT_LINE_END or before + after in UNBREAKABLE_PAIRS:
        return False
    # inside a Latin word or a number (CAS 7664-93-9, 1,250.00): only at a space
    return not (is_latin(before) and is_latin(after))


def is_latin(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch in "-_/@&.,+")


def chinese_lines(units: list[Any], max_widths: list[float], calc_bounds: bool) -> Any:
    """Return reportlab's lines for the characters `units` (cjkU), broken by the Chinese rules."""
    lines: list[Any] = []
    start = at = 0
    used = 0.0
    width = max_widths[0]
    while at < len(units):
        unit = units[at]
        forced = hasattr(unit.frag, "lineBreak")
        used += unit.width
        if not forced and used <= width + _FUZZ:
            at += 1
            continue
        end = at + 1 if forced else best_break(units, start, at)
        taken = sum(u.width for u in units[start:end])
        lines.append(makeCJKParaLine(units[start:end], width, taken, width - taken, forced, calc_bounds))
        start = end
        while start < len(units) and units[start] == " " and not forced:
            start += 1  # a space the line broke at is not carried to the next line
        at, used = start, 0.0
        width = max_widths[min(len(lines), len(max_widths) - 1)]
    if start < len(units):
        taken = sum(u.width for u in units[start:])
        lines.append(makeCJKParaLine(units[start:], width, taken, width - taken, False, calc_bounds))
    return ParaLines(kind=1, lines=lines)


def best_break(units: list[Any], start: int, overflow: int) -> int:
    """Return where the line from `start` ends when the character at `overflow` does not fit: the
    nearest earlier place the rules allow, else the overflowing closing mark hangs on this line."""
    for end in range(overflow, start, -1):
        if units[end - 1] == " " or break_allowed(units[end - 1], units[end]):
            return end
    if units[overflow] in NOT_AT_LINE_START:
        return overflow + 1  # hanging punctuation
    return max(overflow, start + 1)


class ChineseParagraph(Paragraph):  # type: ignore[misc]  # reportlab ships no types
    """A Paragraph broken into lines by the Chinese rules (see the module's docstring)."""

    def breakLinesCJK(self, maxWidths: Any) -> Any:  # noqa: N802 (reportlab's name)
        if not isinstance(maxWidths, (list, tuple)):
            maxWidths = [maxWidths]
        if hasattr(self, "blPara") and self.__dict__.get("_splitpara"):
            return self.blPara
        self.height = 0
        units = [cjkU(ch, frag, "utf8") for frag in self.frags for ch in (frag.text or [""])]
        if not units:
            return super().breakLinesCJK(maxWidths)
        auto_leading = str(getattr(self, "autoLeading", getattr(self.style, "autoLeading", "")))
        return chinese_lines(units, list(maxWidths), auto_leading not in ("", "off"))
