"""The font PDFs are written with: one that draws Chinese.

reportlab's standard fonts have no Chinese glyphs. A TrueType font is embedded when one is found
(CRM_PDF_FONT, or a common system font); otherwise the built-in Adobe font STSong-Light is named,
which every PDF viewer draws with its own Chinese font. Either way the text in the file is Unicode,
so it can be searched and copied.
"""
from __future__ import annotations

from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

BUILT_IN_CJK = "STSong-Light"
SYSTEM_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "C:/Windows/Fonts/simhei.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
)


def chinese_font(configured: str | None = None) -> str:
    """Register and return the name of the font to write Chinese with: the TrueType file `configured`
    (CRM_PDF_FONT), else the first system font found, else the built-in STSong-Light."""
    if configured and not Path(configured).is_file():
        raise ValueError(f"CRM_PDF_FONT: there is no font file {configured}")
    for path in ([configured] if configured else []) + [p for p in SYSTEM_FONTS if Path(p).is_file()]:
        name = f"crm-{Path(path).stem}"
        if name not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(name, path))
        return name
    if BUILT_IN_CJK not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(BUILT_IN_CJK))
    return BUILT_IN_CJK
