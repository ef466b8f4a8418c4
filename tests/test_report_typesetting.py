"""Chinese in PDFs: the embedded font draws every glyph a chemical report needs (checked by
rasterising), lines break by the Chinese rules, and parameters default the way the YAML says."""
from __future__ import annotations

import datetime
import io

import pypdfium2
import pytest
from reportlab.lib.styles import ParagraphStyle
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Paragraph

from app.reports.fonts import BUILT_FONT, chinese_font, font_file
from app.reports.params import default_value
from app.reports.spec import ParamSpec
from app.reports.typeset import NOT_AT_LINE_END, NOT_AT_LINE_START, ChineseParagraph, markup
from app.schema.model import Label

GLYPHS = ["中", "文", "℃", "±", "×", "“", "”", "—", "μ", "引", "号"]
PARAGRAPH = ("本公司主营硫酸（H₂SO₄）、盐酸、液碱等基础化工原料，产品执行《工业硫酸》国家标准；储存温度应低于 30℃，"
             "包装规格为 25 kg/桶×40 桶。客户反馈：“交货及时，质量稳定！”——但也提出：运输途中需注意防潮、防晒，"
             "并请提供最新版本的《化学品安全技术说明书》（SDS）。经研发部复核，纯度为 98.0%±0.5%，符合合同约定。"
             "下一步：安排回访，确认“批号 20251203-A”的使用情况；如有问题，请及时联系客服（电话 400-800-1234）。")


def test_the_font_is_built_by_the_install_and_is_truetype() -> None:
    assert font_file() == BUILT_FONT, "make install builds Noto Sans CJK SC into the virtual environment"
    assert BUILT_FONT.read_bytes()[:4] == b"\x00\x01\x00\x00"  # TrueType outlines, which reportlab embeds


def ink(image: object, box: tuple[int, int, int, int]) -> int:
    """Return how many dark pixels the box of the grey image holds."""
    return sum(image.crop(box).histogram()[:128])  # type: ignore[attr-defined]


def test_every_glyph_draws_ink() -> None:
    """中文 ℃ ± × “ ” — μ each drawn alone, and H₂SO₄ with its subscripts, leave ink where they are."""
    font = chinese_font()
    out = io.BytesIO()
    canvas = Canvas(out, pagesize=(400, 60 * (len(GLYPHS) + 1)))
    for n, glyph in enumerate(GLYPHS):
        canvas.setFont(font, 36)
        canvas.drawString(20, 60 * (len(GLYPHS) - n) + 10, glyph)
    formula = Paragraph(markup("H₂SO₄"), ParagraphStyle("f", fontName=font, fontSize=36, leading=40))
    formula.wrapOn(canvas, 300, 50)
    formula.drawOn(canvas, 20, 5)
    canvas.save()
    document = pypdfium2.PdfDocument(out.getvalue())
    page = document[0]
    image = page.render(scale=1).to_pil().convert("L")
    height = image.size[1]
    for n, glyph in enumerate(GLYPHS):
        baseline = height - (60 * (len(GLYPHS) - n) + 10)
        assert ink(image, (15, baseline - 40, 70, baseline + 12)) > 20, f"{glyph} drew no ink"
    assert ink(image, (15, height - 55, 250, height)) > 200
    assert "H2SO4" in page.get_textpage().get_text_range().replace("\r\n", "")
    document.close()


def lines_of(paragraph: Paragraph, width: float) -> list[str]:
    paragraph.wrap(width, 10_000)
    return ["".join(getattr(frag, "text", "") for frag in line.words) for line in paragraph.blPara.lines]


@pytest.mark.parametrize("width", [90, 120, 150, 175, 200, 240, 300])
def test_no_line_starts_with_closing_or_ends_with_opening_punctuation(width: int) -> None:
    font = chinese_font()
    style = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    lines = lines_of(ChineseParagraph(markup(PARAGRAPH), style), width)
    assert len(lines) > 5
    assert "".join(lines).replace(" ", "") == PARAGRAPH.replace(" ", "").replace("₂", "2").replace("₄", "4")
    for line in lines:
        assert line and line[0] not in NOT_AT_LINE_START, (width, line)
        assert line[-1] not in NOT_AT_LINE_END, (width, line)


def test_reportlabs_own_cjk_wrap_breaks_the_rules() -> None:
    """The reason ChineseParagraph exists: the same text through plain reportlab starts lines with ，or ："""
    font = chinese_font()
    style = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    broken = [line for width in (90, 120, 150, 175, 200, 240, 300)
              for line in lines_of(Paragraph(markup(PARAGRAPH), style), width)
              if line and (line[0] in NOT_AT_LINE_START or line[-1] in NOT_AT_LINE_END)]
    assert broken


def test_lines_in_the_pdf_keep_the_rules() -> None:
    """The same check on the text a PDF reader extracts, line by line."""
    from reportlab.platypus import SimpleDocTemplate
    font = chinese_font()
    out = io.BytesIO()
    style = ParagraphStyle("body", fontName=font, fontSize=10, leading=14, wordWrap="CJK")
    SimpleDocTemplate(out, pagesize=(260, 800), leftMargin=20, rightMargin=20).build(
        [ChineseParagraph(markup(PARAGRAPH * 2), style)])
    document = pypdfium2.PdfDocument(out.getvalue())
    text = document[0].get_textpage().get_text_range()
    document.close()
    lines = [line for line in text.split("\r\n") if line.strip()]
    assert len(lines) > 10
    assert all(line[0] not in NOT_AT_LINE_START and line.rstrip()[-1] not in NOT_AT_LINE_END for line in lines), lines


@pytest.mark.parametrize(("default", "expected"), [
    ("today", datetime.date(2026, 3, 15)), ("start_of_month", datetime.date(2026, 3, 1)),
    ("end_of_month", datetime.date(2026, 3, 31)), ("start_of_year", datetime.date(2026, 1, 1)),
    ("last_12_months", datetime.date(2025, 4, 1)),
])
def test_date_defaults(default: str, expected: datetime.date) -> None:
    param = ParamSpec("from", "date", Label("起始", "From"), default)
    assert default_value(param, datetime.date(2026, 3, 15)) == expected


def test_end_of_month_in_december_and_february() -> None:
    param = ParamSpec("to", "date", Label("截止", "To"), "end_of_month")
    assert default_value(param, datetime.date(2026, 12, 3)) == datetime.date(2026, 12, 31)
    assert default_value(param, datetime.date(2028, 2, 10)) == datetime.date(2028, 2, 29)
