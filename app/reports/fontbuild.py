"""Build the TrueType font the PDFs embed: `python -m app.reports.fontbuild` (run by `make install`).

Noto Sans CJK SC draws every Chinese character a company name or address needs, and ℃ ± × μ “ ” —
as well; it is under the SIL Open Font License 1.1 (app/reports/NOTO-OFL.txt), which allows
embedding and redistribution. Its release is an .otf with CFF outlines, which reportlab cannot embed,
so the glyphs are converted to TrueType quadratic outlines with fontTools' cu2qu. The .otf comes from
the PyPI package mplfonts (its wheel is only unpacked, not installed).
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .fonts import BUILT_FONT

SOURCE_PACKAGE = "mplfonts==0.0.11"
SOURCE_MEMBER = "mplfonts/fonts/NotoSansCJKsc-Regular.otf"
DROPPED_TABLES = ("VORG", "vhea", "vmtx", "DSIG", "BASE")  # vertical layout and signatures: not used


def convert(otf: Path, ttf: Path) -> None:
    """Write `otf` (CFF outlines) to `ttf` with TrueType outlines (within 1 unit of the curves)."""
    from fontTools.pens.cu2quPen import Cu2QuPen
    from fontTools.pens.ttGlyphPen import TTGlyphPen
    from fontTools.ttLib import TTFont, newTable

    font = TTFont(str(otf))
    glyph_set = font.getGlyphSet()
    order = font.getGlyphOrder()
    glyf = newTable("glyf")
    glyf.glyphOrder = order
    glyf.glyphs = {}
    for name in order:
        pen = TTGlyphPen(glyph_set)
        glyph_set[name].draw(Cu2QuPen(pen, 1.0, reverse_direction=True))
        glyf.glyphs[name] = pen.glyph()
    for tag in ("CFF ", *DROPPED_TABLES):
        if tag in font:
            del font[tag]
    font["loca"] = newTable("loca")
    font["glyf"] = glyf
    maxp = font["maxp"]
    maxp.tableVersion = 0x00010000
    for attr in ("maxTwilightPoints", "maxStorage", "maxFunctionDefs", "maxInstructionDefs",
                 "maxStackElements", "maxSizeOfInstructions", "maxComponentElements"):
        setattr(maxp, attr, 0)
    maxp.maxZones = 1
    post = font["post"]
    post.formatType, post.extraNames, post.mapping = 3.0, [], {}  # no glyph names: 65,535 of them
    font["head"].glyphDataFormat = 0
    font.sfntVersion = "\x00\x01\x00\x00"
    ttf.parent.mkdir(parents=True, exist_ok=True)
    partial = ttf.with_suffix(".partial")
    font.save(str(partial))
    partial.replace(ttf)  # never a half-written font where the panel looks for one


def fetch_source(folder: Path) -> Path:
    """Download the source package's wheel from PyPI into `folder` and return the unpacked .otf."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
                    "--dest", str(folder), SOURCE_PACKAGE], check=True)
    wheel = next(folder.glob("mplfonts-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        target = folder / Path(SOURCE_MEMBER).name
        target.write_bytes(archive.read(SOURCE_MEMBER))
    return target


def main() -> None:
    if BUILT_FONT.is_file():
        print(f"PDF font present: {BUILT_FONT}")
        return
    print(f"Building the PDF font {BUILT_FONT} (Noto Sans CJK SC as TrueType; about a minute, once)")
    with tempfile.TemporaryDirectory() as folder:
        convert(fetch_source(Path(folder)), BUILT_FONT)
    print(f"PDF font built: {BUILT_FONT} ({BUILT_FONT.stat().st_size // 1024 // 1024} MB)")


if __name__ == "__main__":
    main()
