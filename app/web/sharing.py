"""分享: a record's link, or its dossier PDF, sent to chosen colleagues by e-mail or to a 企业微信 /
钉钉 group robot, with a note. Only people who may read the record are offered (and accepted: a
crafted recipient is refused), a robot only when every role it serves reads the whole table, and a
PDF is made for each colleague with their own permissions. Every share is in the audit log."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access

from app.audit.log import Entry, append
from app.automation.channels import SendFailed, send_email, send_robot
from app.reports.fonts import FontMissing
from app.reports.pdf import render_report_pdf
from app.reports.run import Reader, ReportRefused, reports_for, run_report
from app.schema import naming
from app.schema.model import TableSpec
from app.security.gate import ADMIN_ROLE, current_user, may, role_keys, row_condition
from app.security.roles import SHARE_VIEW
from app.security.users import display_name

from .context import current_appbuilder
from .i18n import current_lang, lazy_text

MAX_NOTE = 500


@dataclass(frozen=True)
class Share:
    """What is shared: a record of a table, its title and address, and the sharer."""

    table: TableSpec
    record_id: int
    title: str
    url: str
    sharer: Any


def readers_of(table_key: str, record_id: int, exclude: Any) -> list[Any]:
    """Return the active users, other than `exclude`, who may read the record, by name."""
    state = current_app.extensions["crm"]
    session = current_appbuilder().session
    model: Any = state.models.model(table_key)
    found = []
    for user in session.execute(sa.select(current_appbuilder().sm.user_model)).scalars():
        if not user.active or user.id == getattr(exclude, "id", None) or not may(state.models, table_key, user, "read"):
            continue
        condition = row_condition(state.models, table_key, user, "read")
        query = sa.select(model.id).where(model.id == record_id)
        if session.execute(query.where(condition) if condition is not None else query).first() is not None:
            found.append(user)
    return sorted(found, key=lambda u: display_name(u, "zh"))


def robots_for(table_key: str) -> list[dict[str, Any]]:
    """Return the configured robots whose every role reads every record of the table (a group robot's
    message is read by all in its group)."""
    schema = current_app.extensions["crm"].schema
    found = []
    for robot in current_app.config.get("CRM_ROBOTS") or []:
        roles = robot.get("roles") or []
        grants = [schema.grants_of(role).get(table_key) for role in roles if role != ADMIN_ROLE]
        if roles and all(g is not None and "read" in g.can and (g.rows is None or g.rows.kind == "all")
                         for g in grants):
            found.append(robot)
    return found


def dossier_reports(table_key: str, user: Any) -> list[Any]:
    """Return the record reports (档案) of the table that `user` may run."""
    book = current_app.extensions["crm"].reports
    return [r for r in reports_for(reader_for(user), book) if r.kind == "record" and r.table == table_key]


def reader_for(user: Any) -> Reader:
    from zoneinfo import ZoneInfo
    state = current_app.extensions["crm"]
    return Reader(state.models, current_appbuilder().session, user, current_appbuilder().sm.user_model,
                  current_lang(), ZoneInfo(current_app.config.get("CRM_TIMEZONE") or "Asia/Shanghai"),
                  ip=request.remote_addr)


def dossier_pdf(report: Any, record_id: int, user: Any) -> bytes | None:
    """Return the dossier PDF as `user` may see it; None when their permissions do not let them run it."""
    config = current_app.config
    try:
        result = run_report(reader_for(user), report, {"id": str(record_id)})
        return render_report_pdf(result, config.get("CRM_PDF_FONT"), config["CRM_COMPANY_NAME"],
                                 config.get("CRM_COMPANY_LOGO"))
    except (ReportRefused, FontMissing):
        return None


class ShareView(BaseView):
    """分享 of one record: the form (colleagues, robots, link or PDF, a note) and the sending."""

    route_base = "/share"
    class_permission_name = SHARE_VIEW
    method_permission_name = {"share": "read"}

    @expose("/<table_key>/<int:record_id>", methods=["GET", "POST"])
    @has_access
    def share(self, table_key: str, record_id: int) -> Any:
        share = self.shared_or_404(table_key, record_id)
        readers = readers_of(table_key, record_id, share.sharer)
        robots = robots_for(table_key)
        reports = dossier_reports(table_key, share.sharer)
        mail = bool(current_app.config.get("CRM_SMTP_HOST"))
        if request.method == "GET":
            return self.form(share, readers, robots, reports, mail, {}, "")
        chosen = request.form.getlist("user")
        chosen_robots = request.form.getlist("robot")
        note = request.form.get("note", "").strip()
        by_id = {str(u.id): u for u in readers if u.email}
        by_name = {r["name"]: r for r in robots}
        problem = ""
        if any(pk not in by_id for pk in chosen) or any(name not in by_name for name in chosen_robots):
            abort(400)  # someone who may not read the record, or a crafted name: never sent
        if not chosen and not chosen_robots:
            problem = str(lazy_text("请至少选择一位同事或一个群", "Choose at least one colleague or group"))
        elif len(note) > MAX_NOTE:
            problem = str(lazy_text(f"附言最多 {MAX_NOTE} 个字", f"The note may have at most {MAX_NOTE} characters"))
        if problem:
            return self.form(share, readers, robots, reports, mail, request.form, problem), 400
        report = next((r for r in reports if r.key == request.form.get("pdf")), None)
        sent, failed = send_share(share, [by_id[pk] for pk in chosen], [by_name[n] for n in chosen_robots],
                                  note, report)
        self.record(share, sent, failed, note, report)
        if sent:
            flash(str(lazy_text(f"已分享给：{'、'.join(sent)}", f"Shared with: {', '.join(sent)}")), "success")
        if failed:
            flash(str(lazy_text(f"未能发送：{'；'.join(failed)}", f"Not sent: {'; '.join(failed)}")), "danger")
        return redirect(url_for(f"{naming.view_class_name_for(table_key)}.show", pk=record_id))

    def shared_or_404(self, table_key: str, record_id: int) -> Share:
        state = current_app.extensions["crm"]
        user = current_user()
        if table_key not in {t.key for t in state.schema.tables} or not may(state.models, table_key, user, "read"):
            abort(404)
        model: Any = state.models.model(table_key)
        condition = row_condition(state.models, table_key, user, "read")
        query = sa.select(model).where(model.id == record_id)
        record = current_appbuilder().session.execute(
            query.where(condition) if condition is not None else query).scalar_one_or_none()
        if record is None:
            abort(404)  # not a record this user reads: nothing to share, and nothing said about it
        url = f"{current_app.config['CRM_PANEL_URL']}/t/{table_key}/show/{record_id}"
        return Share(state.schema.table(table_key), record_id, str(record), url, user)

    def form(self, share: Share, readers: list[Any], robots: list[dict[str, Any]], reports: list[Any], mail: bool,
             values: Any, problem: str) -> Any:
        return self.render_template("crm/share.html", share=share, readers=readers, robots=robots, reports=reports,
                                    mail=mail, values=values, problem=problem, lang=current_lang(),
                                    role_names=lambda u: "、".join(role_keys(u)), name=display_name)

    def record(self, share: Share, sent: list[str], failed: list[str], note: str, report: Any) -> None:
        session = current_appbuilder().session
        user = share.sharer
        session.rollback()
        append(session.connection(), [Entry("share", share.table.key, share.record_id, {
            "to": sent, "failed": failed, "note": note, "pdf": report.key if report is not None else None},
            user.id, user.username, request.remote_addr)])
        session.commit()


def send_share(share: Share, users: list[Any], robots: list[dict[str, Any]], note: str, report: Any
               ) -> tuple[list[str], list[str]]:
    """Send the share; return (who and which groups got it, what failed and why)."""
    config = current_app.config
    lang = current_lang()
    sharer = display_name(share.sharer, lang)
    subject = f"{sharer}分享了{share.table.label.zh}：{share.title}"
    lines = (f"{sharer}分享给您：{share.table.label.zh}“{share.title}”", note and f"附言：{note}", f"打开：{share.url}")
    text = "\n".join(line for line in lines if line)
    sent, failed = [], []
    for user in users:
        name = display_name(user, lang)
        attachments: tuple[tuple[str, str, bytes], ...] = ()
        if report is not None:
            body = dossier_pdf(report, share.record_id, user)
            if body is None:
                failed.append(f"{name}: " + ("无权生成此档案" if lang == "zh" else "may not run this dossier"))
                continue
            attachments = ((f"{report.label.zh}-{share.record_id}.pdf", "application/pdf", body),)
        try:
            send_email(config, user.email, subject, text + ("\n附件：" + report.label.zh if report else ""),
                       attachments)
            sent.append(name)
        except SendFailed as exc:
            failed.append(f"{name}: {exc}")
    markdown = "\n".join(line for line in (f"**{sharer} 分享了{share.table.label.zh}**",
                                           f"[{share.title}]({share.url})", note and f"> {note}") if line)
    for robot in robots:
        try:
            send_robot(robot, subject, markdown)
            sent.append(robot["name"])
        except SendFailed as exc:
            failed.append(f"{robot['name']}: {exc}")
    return sent, failed


def register_sharing(appbuilder: Any) -> None:
    appbuilder.add_view_no_menu(ShareView)
    current_app.jinja_env.globals["crm_view_name"] = naming.view_class_name_for
