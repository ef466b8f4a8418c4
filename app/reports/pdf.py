"""A generated report (ReportResult) as a PDF: the company's name and logo at the top of each page,
第 X 页 / 共 Y 页 with the generation time and who generated it at the foot, an optional watermark,
tables whose headings repeat on every page, and the chart drawn by app.reports.charts."""
from __future__ import annotations

import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, SimpleDocTemplate, Spacer, Table, TableStyle

from .charts import chart_drawing
from .fonts import chinese_font
from .result import Grid, ReportResult
from .typeset import SUBSCRIPTS, SUPERSCRIPTS, ChineseParagraph, markup

MARGIN = 14 * mm
HEADER_COLOR = colors.HexColor("#e8eef7")
TOTAL_COLOR = colors.HexColor("#f4f6f9")
CELL_PADDING = 6  # reportlab's default left and right padding of a table cell
ROW_PADDING = 2  # the top and bottom padding of the report tables' cells
LONG_TEXT = 160  # characters: a record's value longer than this is printed below its fields


def render_report_pdf(result: ReportResult, font: str | None = None, company: str = "",
                      logo: str | None = None) -> bytes:
    """Return the PDF bytes of `result` (A4 in its orientation; Chinese embedded as a font subset)."""
    name = chinese_font(font)
    styles = Styles(name)
    page = landscape(A4) if result.orientation == "landscape" else A4
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=page, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=(24 if company or logo else 16) * mm, bottomMargin=16 * mm,
                            title=result.title, author=company or "chem-crm", subject=result.key,
                            creator="chem-crm")
    story: list[Any] = [ChineseParagraph(markup(result.title), styles.title)]
    if result.description:
        story.append(ChineseParagraph(markup(result.description), styles.small))
    if result.params:
        story.append(ChineseParagraph(markup("；".join(f"{k}：{v}" for k, v in result.params)), styles.small))
    story.append(Spacer(1, 3 * mm))
    width = page[0] - 2 * MARGIN
    if result.facts:
        story += facts_flowables(result.facts, styles, width)
    if result.chart is not None:
        story += [Spacer(1, 3 * mm), chart_drawing(result.chart, name, width, 220 if width < 200 * mm else 240)]
    for grid in result.grids:
        story += grid_flowables(grid, styles, width)
    furniture = PageFurniture(name, company, logo, result)
    doc.build(story, onFirstPage=furniture.draw, onLaterPages=furniture.draw, canvasmaker=furniture.canvas_maker())
    return out.getvalue()


class Styles:
    """The paragraph styles of a report, in one font."""

    def __init__(self, font: str):
        self.body = ParagraphStyle("body", fontName=font, fontSize=8.5, leading=11.5, wordWrap="CJK")
        self.number = ParagraphStyle("number", parent=self.body, alignment=2)
        self.bold = ParagraphStyle("bold", parent=self.body, textColor=colors.HexColor("#1b2a3a"))
        self.small = ParagraphStyle("small", parent=self.body, fontSize=8, textColor=colors.HexColor("#555555"))
        self.heading = ParagraphStyle("heading", parent=self.body, fontSize=11.5, leading=15, spaceBefore=7,
                                      spaceAfter=3)
        self.title = ParagraphStyle("title", parent=self.body, fontSize=16, leading=21, spaceAfter=3)


def facts_flowables(facts: list[tuple[str, str]], styles: Styles, width: float) -> list[Any]:
    """Return a record's fields two to a row, and each long text (notes of pages) after them as a
    paragraph of its own, which may run onto the next page."""
    long = [(label, text) for label, text in facts if len(text) > LONG_TEXT or text.count("\n") > 3]
    short = [fact for fact in facts if fact not in long]
    flowables: list[Any] = [facts_table(short, styles, width)] if short else []
    for label, text in long:
        flowables += [ChineseParagraph(markup(label), styles.heading), ChineseParagraph(markup(text), styles.body)]
    return flowables


def facts_table(facts: list[tuple[str, str]], styles: Styles, width: float) -> Table:
    """Return a record's fields two to a row: label, value, label, value."""
    rows = []
    for n in range(0, len(facts), 2):
        row = []
        for label, value in facts[n:n + 2]:
            row += [ChineseParagraph(markup(label), styles.small), ChineseParagraph(markup(value), styles.body)]
        rows.append(row + [""] * (4 - len(row)))
    table = Table(rows, colWidths=[width * 0.17, width * 0.33, width * 0.17, width * 0.33], hAlign="LEFT")
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#c8d0da")),
                               ("FONTNAME", (0, 0), (-1, -1), styles.body.fontName),
                               ("BACKGROUND", (0, 0), (0, -1), TOTAL_COLOR),
                               ("BACKGROUND", (2, 0), (2, -1), TOTAL_COLOR),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return table


def grid_flowables(grid: Grid, styles: Styles, width: float) -> list[Any]:
    """Return a grid's heading and table (its header row repeated on each page)."""
    heading = [ChineseParagraph(markup(grid.title), styles.heading)] if grid.title else []
    if grid.note or not grid.rows:
        return [KeepTogether(heading + [ChineseParagraph(markup(grid.note or "—"), styles.small)])]
    numeric = grid.numeric or [False] * len(grid.headers)
    widths = column_widths(grid, width)
    rows: list[list[Any]] = [[ChineseParagraph(markup(h), styles.bold) for h in grid.headers]]
    for cells in grid.rows:
        rows.append([cell_flowable(c.text, styles.number if numeric[n] else styles.body, widths[n])
                     for n, c in enumerate(cells)])
    # Heights worked out once here: reportlab would otherwise measure every remaining row again at
    # each page break, which makes a long table's time grow with the square of its length.
    table = Table(rows, colWidths=widths, rowHeights=row_heights(rows, widths, styles.body.leading), repeatRows=1,
                  hAlign="LEFT", splitInRow=1)  # a row taller than a page may split
    style = [("GRID", (0, 0), (-1, -1), 0.3, colors.HexColor("#c8d0da")),
             ("FONTNAME", (0, 0), (-1, -1), styles.body.fontName), ("FONTSIZE", (0, 0), (-1, -1), styles.body.fontSize),
             ("LEADING", (0, 0), (-1, -1), styles.body.leading),
             ("BACKGROUND", (0, 0), (-1, 0), HEADER_COLOR), ("VALIGN", (0, 0), (-1, -1), "TOP"),
             ("TOPPADDING", (0, 0), (-1, -1), ROW_PADDING), ("BOTTOMPADDING", (0, 0), (-1, -1), ROW_PADDING)]
    style += [("ALIGN", (n, 1), (n, -1), "RIGHT") for n, right in enumerate(numeric) if right]
    for n, kind in enumerate(grid.kinds, start=1):
        if kind != "row":
            style.append(("BACKGROUND", (0, n), (-1, n), TOTAL_COLOR))
    table.setStyle(TableStyle(style))
    return [*heading, table]


def row_heights(rows: list[list[Any]], widths: list[float], leading: float) -> list[float]:
    """Return each row's height: one line for plain texts, a paragraph's wrapped height, plus padding."""
    heights = []
    for row in rows:
        tallest = leading
        for content, width in zip(row, widths, strict=True):
            if not isinstance(content, str):
                tallest = max(tallest, content.wrap(width - 2 * CELL_PADDING, 100_000)[1])
        heights.append(tallest + 2 * ROW_PADDING)
    return heights


def cell_flowable(text: str, style: ParagraphStyle, width: float) -> Any:
    """Return a cell's content: the plain text when it fits on one line (a table of 10,000 rows is
    drawn quickly), else a paragraph broken by the Chinese rules."""
    if (len(text) < 60 and "\n" not in text and not any(ch in SUBSCRIPTS or ch in SUPERSCRIPTS for ch in text)
            and stringWidth(text, style.fontName, style.fontSize) <= width - 2 * CELL_PADDING):
        return text
    return ChineseParagraph(markup(text), style)


def column_widths(grid: Grid, width: float) -> list[float]:
    """Return widths shared out by how long each column's texts are (numbers need less than names)."""
    lengths = []
    for n, header in enumerate(grid.headers):
        texts = [header] + [row[n].text for row in grid.rows[:200]] + [
            row[n].text for row, kind in zip(grid.rows, grid.kinds, strict=True) if kind != "row"][:50]
        longest = max(sum(2 if ord(ch) > 0x2E80 else 1 for ch in t) for t in texts)
        lengths.append(min(max(longest, 4), 40))
    total = sum(lengths)
    return [width * n / total for n in lengths]


class PageFurniture:
    """Draws what every page carries, and counts the pages so each can say 共 Y 页."""

    def __init__(self, font: str, company: str, logo: str | None, result: ReportResult):
        self.font, self.company, self.logo, self.result = font, company, logo, result

    def draw(self, canvas: Any, doc: Any) -> None:
        canvas.saveState()
        width, height = doc.pagesize
        left = MARGIN
        if self.logo:
            canvas.drawImage(self.logo, left, height - 20 * mm, width=24 * mm, height=10 * mm,
                             preserveAspectRatio=True, anchor="w", mask="auto")
            left += 27 * mm
        if self.company:
            canvas.setFont(self.font, 11)
            canvas.drawString(left, height - 15.5 * mm, self.company)
        canvas.setFont(self.font, 7.5)
        canvas.setFillColor(colors.HexColor("#555555"))
        canvas.drawRightString(width - MARGIN, height - 15.5 * mm if self.company or self.logo else height - 10 * mm,
                               self.result.title[:80])
        stamp = self.result.generated_at
        words = ("生成时间", "生成人") if self.result.lang == "zh" else ("Generated", "by")
        canvas.drawString(MARGIN, 8 * mm, f"{words[0]} {stamp:%Y-%m-%d %H:%M} {zone_name(stamp)} · {words[1]} "
                                          f"{self.result.generated_by}")
        if self.result.watermark:
            canvas.setFont(self.font, 30)
            canvas.setFillColor(colors.Color(0.6, 0.6, 0.6, alpha=0.16))
            canvas.translate(width / 2, height / 2)
            canvas.rotate(35)
            for offset in (-height / 3, 0, height / 3):
                canvas.drawCentredString(0, offset, self.result.watermark)
        canvas.restoreState()

    def canvas_maker(self) -> Any:
        """Return a canvas class that holds pages back until the last, then writes 第 X 页 / 共 Y 页."""
        font, zh = self.font, self.result.lang == "zh"

        class NumberedCanvas(Canvas):  # type: ignore[misc]  # reportlab ships no types
            def __init__(self, *args: Any, **kwargs: Any):
                super().__init__(*args, **{**kwargs, "initialFontName": font})  # not Helvetica: not embedded
                self.pages: list[dict[str, Any]] = []

            def showPage(self) -> None:  # noqa: N802 (reportlab's name)
                self.pages.append(dict(self.__dict__))
                self._startPage()

            def save(self) -> None:
                total = len(self.pages)
                for state in self.pages:
                    self.__dict__.update(state)
                    self.setFont(font, 7.5)
                    number = self._pageNumber
                    self.drawRightString(self._pagesize[0] - MARGIN, 8 * mm,
                                         f"第 {number} 页 / 共 {total} 页" if zh else f"page {number} of {total}")
                    super().showPage()
                super().save()

        return NumberedCanvas


def zone_name(stamp: Any) -> str:
    """Return the time zone of a time as people read it: Asia/Shanghai UTC+08:00."""
    offset = stamp.strftime("%z")
    key = getattr(stamp.tzinfo, "key", "") or ""
    return f"{key} UTC{offset[:3]}:{offset[3:]}".strip()
