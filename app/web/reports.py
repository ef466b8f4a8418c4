"""The 报表 screen: the reports the user's roles may run, each with its parameter form, an HTML
preview (the chart as the same SVG the PDF draws) and the PDF download; the dossier is also a
打印档案 button on each record's page."""
from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from flask import Response, current_app, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from markupsafe import Markup

from app.reports.charts import chart_svg
from app.reports.fonts import FontMissing, chinese_font
from app.reports.params import ParamError
from app.reports.pdf import render_report_pdf
from app.reports.run import DEFAULT_ROW_LIMIT, Reader, ReportRefused, reports_for, run_report, user_choices
from app.reports.spec import ReportSpec
from app.reports.xlsx import render_report_xlsx
from app.security.gate import current_user
from app.security.roles import REPORTS_MENU, REPORTS_VIEW

from .context import current_appbuilder
from .errors import answer
from .i18n import current_lang, lazy_text

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def request_reader() -> Reader:
    """Return the report reader of the current request's user."""
    state = current_app.extensions["crm"]
    appbuilder = current_appbuilder()
    return Reader(state.models, appbuilder.session, current_user(), appbuilder.sm.user_model, current_lang(),
                  ZoneInfo(current_app.config.get("CRM_TIMEZONE") or "Asia/Shanghai"),
                  int(current_app.config.get("CRM_REPORT_ROW_LIMIT") or DEFAULT_ROW_LIMIT), request.remote_addr)


def given_params() -> dict[str, str]:
    """Return the parameters in the query string (a name the report does not declare is refused)."""
    return {k: v for k, v in request.args.items() if k not in ("_l_", "run")}


class ReportsView(BaseView):
    """Reports for every role with the `report` verb on some table (app.security.roles)."""

    route_base = "/reports"
    default_view = "index"
    class_permission_name = REPORTS_VIEW
    method_permission_name = {"index": "read", "show": "read", "pdf": "read", "xlsx": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        reader = request_reader()
        book = current_app.extensions["crm"].reports
        return self.render_template("crm/reports.html", reports=reports_for(reader, book), lang=reader.lang)

    @expose("/<key>/")
    @has_access
    def show(self, key: str) -> Any:
        reader = request_reader()
        report = self.report_or_404(key)
        result, problem, status = None, "", 200
        if request.args.get("run") or report.kind == "record" and request.args.get("id"):
            try:
                result = run_report(reader, report, given_params())
            except ParamError as exc:
                problem, status = exc.text(reader.lang), 400
            except ReportRefused as exc:
                if exc.status != 413:
                    return answer(exc.status, lazy_label_of(exc.status), exc.text(reader.lang))
                problem, status = exc.text(reader.lang), exc.status
        elif not reports_for_key(reader, key):
            return answer(403, lazy_label_of(403), not_allowed_text(report, reader.lang))
        chart = Markup(chart_svg(result.chart, chinese_font(current_app.config.get("CRM_PDF_FONT")), 720, 300)) \
            if result is not None and result.chart is not None else None
        users = users_for_params(reader, report)
        return self.render_template("crm/report.html", report=report, result=result, chart=chart, problem=problem,
                                    values=request.args, lang=reader.lang, users=users,
                                    choices=current_app.extensions["crm"].schema.choices), status

    @expose("/<key>/pdf")
    @has_access
    def pdf(self, key: str) -> Any:
        return self.download(key, "pdf")

    @expose("/<key>/xlsx")
    @has_access
    def xlsx(self, key: str) -> Any:
        return self.download(key, "xlsx")

    def download(self, key: str, kind: str) -> Any:
        """Answer the report as a PDF or a workbook, generated for the current user with the query's parameters."""
        reader = request_reader()
        report = self.report_or_404(key)
        try:
            result = run_report(reader, report, given_params())
        except ParamError as exc:
            return answer(400, lazy_label_of(400), exc.text(reader.lang))
        except ReportRefused as exc:
            return answer(exc.status, lazy_label_of(exc.status), exc.text(reader.lang))
        config = current_app.config
        stamp = result.generated_at.strftime("%Y%m%d-%H%M")
        if kind == "xlsx":
            return Response(render_report_xlsx(result, config["CRM_COMPANY_NAME"]), mimetype=XLSX_TYPE,
                            headers={"Content-Disposition": f'attachment; filename="{key}-{stamp}.xlsx"'})
        try:
            body = render_report_pdf(result, config.get("CRM_PDF_FONT"), config["CRM_COMPANY_NAME"],
                                     config.get("CRM_COMPANY_LOGO"))
        except FontMissing as exc:
            return answer(500, lazy_label_of(500), str(exc))
        return Response(body, mimetype="application/pdf",
                        headers={"Content-Disposition": f'attachment; filename="{key}-{stamp}.pdf"'})

    def report_or_404(self, key: str) -> ReportSpec:
        book = current_app.extensions["crm"].reports
        if key not in book.reports:
            from flask import abort
            abort(404)
        report: ReportSpec = book.reports[key]
        return report


def reports_for_key(reader: Reader, key: str) -> bool:
    return any(r.key == key for r in reports_for(reader, current_app.extensions["crm"].reports))


def not_allowed_text(report: ReportSpec, lang: str) -> str:
    return (f"您的角色不能生成“{report.label.zh}”报表；如需权限，请联系管理员。" if lang == "zh"
            else f"Your role may not run the report '{report.label.en}'; ask an administrator if you need it.")


def lazy_label_of(status: int) -> Any:
    from app.schema.model import Label
    return {400: Label("参数有误", "Wrong parameters"), 403: Label("没有权限", "Not allowed"),
            404: Label("找不到记录", "Not found"), 413: Label("报表过大", "Report too large"),
            500: Label("无法生成 PDF", "The PDF cannot be made")}[status]


def users_for_params(reader: Reader, report: ReportSpec) -> dict[str, list[tuple[int, str]]]:
    """Return, per user parameter, the (id, name) of the logins the form offers."""
    return {p.key: user_choices(reader, report, p.key) for p in report.params if p.type == "user"}


def report_buttons(record_id: Any) -> list[dict[str, str]]:
    """Return the record reports of the table whose page this is that the current user may run, as
    buttons for the page (打印客户档案)."""
    from app.schema import naming
    view = (request.endpoint or "").rpartition(".")[0]
    state = current_app.extensions["crm"]
    table_key = next((t.key for t in state.schema.tables if naming.view_class_name_for(t.key) == view), None)
    book = state.reports
    if table_key is None or not any(r.kind == "record" and r.table == table_key for r in book.reports.values()):
        return []
    reader = request_reader()
    return [{"label": f"打印{r.label.zh}" if reader.lang == "zh" else f"Print {r.label.en.lower()}",
             "url": url_for("ReportsView.pdf", key=r.key, id=record_id)}
            for r in reports_for(reader, book) if r.kind == "record" and r.table == table_key]


def register_reports_screen(appbuilder: Any) -> None:
    """Add the 报表 menu entry (shown to roles with the `report` verb on some table)."""
    appbuilder.add_view(ReportsView, REPORTS_MENU, label=lazy_text("报表", "Reports"), icon="fa-bar-chart")
    current_app.jinja_env.globals["crm_report_buttons"] = report_buttons
    from .dashboards import register_dashboard_helpers
    register_dashboard_helpers(current_app)
