"""Charts drawn on the server with reportlab's graphics: the same drawing goes into the PDF and, as
SVG, into the screens and dashboards — no chart library to load, no request leaving the machine."""
from __future__ import annotations

from typing import Any

from reportlab.graphics import renderSVG
from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.linecharts import HorizontalLineChart
from reportlab.graphics.charts.piecharts import Pie
from reportlab.graphics.shapes import Drawing, String
from reportlab.graphics.widgets.markers import makeMarker
from reportlab.lib import colors

from .result import ChartData

PALETTE = ("#1f6fb2", "#f08c2e", "#3aa357", "#d64545", "#8a62c9", "#8c6d4f", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")
MAX_SERIES = 10
MAX_CATEGORIES = 20  # more bars than this cannot be read: the largest are drawn
MAX_LABEL = 10  # characters of a category's name under its bar
SCREEN_FONTS = "'Noto Sans CJK SC', 'Source Han Sans SC', 'PingFang SC', 'Microsoft YaHei', sans-serif"


def chart_drawing(chart: ChartData, font: str, width: float = 480, height: float = 240) -> Drawing:
    """Return the chart as a reportlab Drawing: bars, stacked bars, lines or a pie, with a legend."""
    series, categories, title = largest(chart)
    drawing = Drawing(width, height, initialFontName=font)  # else Helvetica, a font not embedded
    drawing.add(String(0, height - 12, title, fontName=font, fontSize=10))
    if not categories:
        drawing.add(String(width / 2, height / 2, "无数据 · no data", fontName=font, fontSize=9, textAnchor="middle",
                           fillColor=colors.HexColor("#888888")))
        return drawing
    if chart.type == "pie":
        pie = Pie()
        pie.x, pie.y, pie.width, pie.height = 20, 20, height - 60, height - 60
        pie.data = [max(v or 0, 0) for v in series[0][1][:len(categories)]] if series else []
        pie.labels = None
        for n in range(len(pie.data)):
            pie.slices[n].fillColor = colors.HexColor(PALETTE[n % len(PALETTE)])
            pie.slices[n].strokeColor = colors.white
        drawing.add(pie)
        names = categories
        legend_x = height - 20
    else:
        plot: Any = HorizontalLineChart() if chart.type == "line" else VerticalBarChart()
        angled = len(categories) > 6
        longest = max((len(c[:MAX_LABEL]) for c in categories), default=1)
        plot.x, plot.y = 45, 20 + (min(longest, MAX_LABEL) * 6 if angled else 12)
        plot.width, plot.height = width - 200, height - plot.y - 35
        plot.data = [tuple(v if chart.type == "line" else v or 0 for v in values) for _, values in series] or [(0,)]
        plot.categoryAxis.categoryNames = [c[:MAX_LABEL] for c in categories] or [""]
        plot.categoryAxis.labels.fontName = font
        plot.categoryAxis.labels.fontSize = 7
        plot.categoryAxis.labels.angle = 40 if angled else 0
        plot.categoryAxis.labels.boxAnchor = "ne" if angled else "n"
        plot.valueAxis.labels.fontName = font
        plot.valueAxis.labels.fontSize = 7
        plot.valueAxis.valueMin = 0
        plot.valueAxis.forceZero = True
        plot.valueAxis.labelTextFormat = short_number
        if chart.type == "stacked_bar":
            plot.categoryAxis.style = "stacked"
        for n in range(len(plot.data)):
            color = colors.HexColor(PALETTE[n % len(PALETTE)])
            if chart.type == "line":
                plot.lines[n].strokeColor = color
                plot.lines[n].strokeWidth = 1.5
                plot.lines[n].symbol = makeMarker("FilledCircle", size=4, fillColor=color, strokeColor=color)
            else:
                plot.bars[n].fillColor = color
                plot.bars[n].strokeColor = None
        drawing.add(plot)
        names = [name for name, _ in series]
        legend_x = width - 145
    legend = Legend()
    legend.x, legend.y = legend_x, height - 30
    legend.fontName, legend.fontSize = font, 7
    legend.alignment = "right"
    legend.columnMaximum = 14
    legend.colorNamePairs = [(colors.HexColor(PALETTE[n % len(PALETTE)]), name[:18]) for n, name in enumerate(names)]
    drawing.add(legend)
    return drawing


def largest(chart: ChartData) -> tuple[list[tuple[str, list[float | None]]], list[str], str]:
    """Return the series, categories and title to draw: all of them, or the MAX_CATEGORIES largest
    categories (in their order) and the first MAX_SERIES series, with the title saying so."""
    series = chart.series[:MAX_SERIES]
    if len(chart.categories) <= MAX_CATEGORIES:
        return series, chart.categories, chart.title
    totals = [sum(values[n] or 0 for _, values in series) for n in range(len(chart.categories))]
    kept = sorted(sorted(range(len(totals)), key=lambda n: -totals[n])[:MAX_CATEGORIES])
    trimmed = [(name, [values[n] for n in kept]) for name, values in series]
    return trimmed, [chart.categories[n] for n in kept], f"{chart.title}（最大的 {MAX_CATEGORIES} 项）"


def short_number(value: float) -> str:
    """Return an axis number briefly: 1.2万, 350万, 1.5亿."""
    if abs(value) >= 100_000_000:
        return f"{value / 100_000_000:g}亿"
    if abs(value) >= 10_000:
        return f"{value / 10_000:g}万"
    return f"{value:g}"


def chart_svg(chart: ChartData, font: str, width: float = 480, height: float = 240) -> str:
    """Return the chart as an SVG document (the same drawing the PDF prints), for screens."""
    text = str(renderSVG.drawToString(chart_drawing(chart, font, width, height)))
    text = text[text.index("<svg"):] if "<svg" in text else text
    # as wide as its box (the viewBox keeps the proportions), in the reader's own Chinese font
    text = text.replace(f'<svg width="{width:g}" height="{height:g}" ', '<svg class="crm-chart" ', 1)
    return text.replace(f"font-family: {font};", f"font-family: {SCREEN_FONTS};")
