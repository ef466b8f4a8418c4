"""The font PDFs are written with: one that draws Chinese, embedded (as a subset) in every file.

reportlab embeds TrueType outlines only (it refuses the CFF outlines of the common .otf builds of
Noto Sans CJK and Source Han Sans). `make install` therefore builds a TrueType copy of Noto Sans CJK SC
(SIL Open Font License 1.1, which allows embedding and redistribution) from the .otf carried by a
PyPI package, with fontTools (see app/reports/fontbuild.py), into the virtual environment.
CRM_PDF_FONT names another TrueType file; without either, a system font is tried.
"""
from __future__ import annotations

import sys
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont

BUILT_FONT = Path(sys.prefix) / "share" / "chem-crm" / "fonts" / "NotoSansCJKsc-Regular.ttf"
# Tried only when the built font is missing; WenQuanYi Micro Hei draws ℃ blank, Droid Sans Fallback
# lacks ± × “ ” —, so they are a last resort.
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)


class FontMissing(RuntimeError):
    """No font that draws Chinese could be found."""


def font_file(configured: str | None = None) -> Path:
    """Return the TrueType file PDFs are written with: CRM_PDF_FONT, else the built Noto Sans CJK SC,
    else a system font; FontMissing when there is none."""
    if configured:
        if not Path(configured).is_file():
            raise FontMissing(f"CRM_PDF_FONT: there is no font file {configured}")
        return Path(configured)
    for path in (BUILT_FONT, *map(Path, SYSTEM_FONTS)):
        if path.is_file():
            return path
    raise FontMissing(f"no font that draws Chinese: run `make install` (it builds {BUILT_FONT}), "
                      "or set CRM_PDF_FONT to a TrueType font file")


def chinese_font(configured: str | None = None) -> str:
    """Register and return the name of the font to write Chinese with (see font_file)."""
    path = font_file(configured)
    name = f"crm-{path.stem}"
    if name not in pdfmetrics.getRegisteredFontNames():
        try:
            pdfmetrics.registerFont(TTFont(name, str(path)))
        except Exception as exc:  # reportlab raises its own TTFError, or struct errors on a broken file
            raise FontMissing(f"{path} cannot be used for PDFs: {exc}") from None
    return name
