"""The permission review as a PDF: every role's rights, every user's roles and last login, and the
changes since the previous review. Takes the plain review data; needs neither Flask nor a database."""
from __future__ import annotations

import datetime
import io
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from .fonts import chinese_font

BLANK = "—"


def render_review_pdf(review: dict[str, Any], changes: list[str], taken_on: datetime.datetime,
                      font: str | None = None, company: str = "", logo: str | None = None) -> bytes:
    """Return the PDF bytes of a permission review (landscape A4, Chinese headings with English),
    each page headed by the company's name and logo when given (CRM_COMPANY_NAME, CRM_COMPANY_LOGO)."""
    name = chinese_font(font)
    body = ParagraphStyle("body", fontName=name, fontSize=8.5, leading=11, wordWrap="CJK")
    heading = ParagraphStyle("heading", parent=body, fontSize=12, leading=16, spaceBefore=8, spaceAfter=4)
    title = ParagraphStyle("title", parent=body, fontSize=16, leading=20, spaceAfter=6)

    def cell(text: str) -> Paragraph:
        return Paragraph(escape(text) or BLANK, body)

    role_rows = [["角色 Role", "表 Table", "操作 Actions", "行范围 Rows", "隐藏字段 Hidden", "只读字段 Read-only"]]
    for role, tables in review["roles"].items():
        for table, grant in tables.items():
            role_rows.append([role, table, ", ".join(grant["can"]), grant["rows"],
                              ", ".join(grant.get("hidden", [])), ", ".join(grant.get("readonly", []))])
    user_rows = [["用户 User", "角色 Roles", "启用 Active", "最近登录 Last login"]]
    for username, user in review["users"].items():
        user_rows.append([username, ", ".join(user["roles"]), "是 yes" if user["active"] else "否 no",
                          user["last_login"] or "从未 never"])
    story = [
        Paragraph(f"权限复核 Permission review · {taken_on:%Y-%m-%d %H:%M}", title),
        Paragraph("角色权限 Rights per role", heading),
        grid([[cell(v) for v in row] for row in role_rows], [30, 30, 55, 45, 55, 55], name),
        Paragraph("用户 Users", heading),
        grid([[cell(v) for v in row] for row in user_rows], [45, 90, 25, 40], name),
        Paragraph("自上次复核以来的变化 Changes since the previous review", heading),
    ]
    story += [Paragraph(escape(line), body) for line in changes] + [Spacer(1, 4 * mm)]
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=landscape(A4), leftMargin=12 * mm, rightMargin=12 * mm,
                            topMargin=(22 if company or logo else 12) * mm, bottomMargin=12 * mm,
                            title="Permission review", author=company or "chem-crm")
    furniture = page_furniture(name, company, logo)
    doc.build(story, onFirstPage=furniture, onLaterPages=furniture)
    return out.getvalue()


def grid(rows: list[list[Any]], widths_mm: list[int], font: str) -> Table:
    """Return a table with a repeated, shaded header row."""
    table = Table(rows, colWidths=[w * mm for w in widths_mm], repeatRows=1)
    table.setStyle(TableStyle([
        ("FONTNAME", (0, 0), (-1, -1), font),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef7")),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#b0b8c4")),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
    ]))
    return table


def page_furniture(font: str, company: str, logo: str | None) -> Any:
    """Return the page callback: the company's logo and name at the top, the page number at the foot."""
    def draw(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        top = doc.pagesize[1] - 8 * mm
        left = 12 * mm
        if logo:
            canvas.drawImage(logo, left, top - 10 * mm, width=24 * mm, height=10 * mm, preserveAspectRatio=True,
                             anchor="w", mask="auto")
            left += 27 * mm
        if company:
            canvas.setFont(font, 11)
            canvas.drawString(left, top - 6.5 * mm, company)
        canvas.setFont(font, 8)
        canvas.drawRightString(doc.pagesize[0] - 12 * mm, 6 * mm, f"第 {doc.page} 页 page {doc.page}")
        canvas.restoreState()
    return draw


def escape(text: str) -> str:
    """Return `text` safe for a reportlab Paragraph (which reads a little XML)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
