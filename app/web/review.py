"""The permission review screen for admins: the same review as `crm permissions review`, with the
changes since the last saved review, a button that saves this one, and PDF and CSV downloads."""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access

from app.reports.permission_review import render_review_pdf
from app.security.permissions import verb_label, verb_order
from app.security.review import render_csv, saved_reviews, take_review

from .i18n import current_lang, lazy_text


class PermissionReviewView(BaseView):
    """Admin only: no YAML role is granted it (see app.security.roles)."""

    route_base = "/permissions"
    default_view = "review"
    class_permission_name = "PermissionReview"

    def current(self, save: bool = False) -> tuple[dict[str, Any], list[str], Any]:
        """Return (review, changes since the last saved one, time) for everyone in the database now."""
        state = current_app.extensions["crm"]
        return take_review(state.db.engine, state.schema, self.appbuilder.sm.get_all_users(), save)

    @expose("/review/")
    @has_access
    def review(self) -> Any:
        review, changes, now = self.current()
        schema = current_app.extensions["crm"].schema
        lang = current_lang()
        role_labels = {key: role.label.text(lang) for key, role in schema.roles.items()}
        role_labels["admin"] = "管理员" if lang == "zh" else "Administrator"
        table_labels = {t.key: t.label.text(lang) for t in schema.tables}
        table_labels["*"] = "全部表" if lang == "zh" else "all tables"
        return self.render_template("crm/review.html", review=review, changes=changes, taken_on=now,
                                    saved=saved_reviews(current_app.extensions["crm"].db.engine),
                                    role_labels=role_labels, table_labels=table_labels,
                                    verbs=lambda can: ("、" if lang == "zh" else ", ").join(
                                        verb_label(v, lang) for v in sorted(can, key=verb_order)),
                                    rows=lambda role, table: rows_in_words(schema, role, table, lang),
                                    fields=lambda table, keys: field_labels(schema, table, keys, lang))

    @expose("/review/save", methods=["POST"])
    @has_access
    def save(self) -> Any:
        _, changes, now = self.current(save=True)
        flash((f"已记录 {now:%Y-%m-%d %H:%M} 的权限复核" if current_lang() == "zh"
               else f"Review of {now:%Y-%m-%d %H:%M} saved"), "success")
        return redirect(url_for(".review"))

    @expose("/review.pdf")
    @has_access
    def pdf(self) -> Any:
        review, changes, now = self.current()
        config = current_app.config
        body = render_review_pdf(review, changes, now, config.get("CRM_PDF_FONT"), config["CRM_COMPANY_NAME"],
                                 config.get("CRM_COMPANY_LOGO"))
        return download(body, "application/pdf", f"permission-review-{now:%Y%m%d-%H%M}.pdf")

    @expose("/review.csv")
    @has_access
    def csv(self) -> Any:
        review, changes, now = self.current()
        body = "\ufeff" + render_csv(review, changes)  # with a BOM, so that Excel reads UTF-8
        return download(body.encode("utf-8"), "text/csv; charset=utf-8", f"permission-review-{now:%Y%m%d-%H%M}.csv")


def rows_in_words(schema: Any, role: str, table: str, lang: str) -> str:
    """Return which rows a role reaches in a table, in words: 全部, 本人的（负责销售）, 所属客户·负责销售是本人."""
    grant = schema.grants_of(role).get(table) if role in schema.roles else None
    rule = grant.rows if grant is not None else None
    zh = lang == "zh"
    if rule is None or rule.kind == "all":
        return "全部记录" if zh else "all records"
    if rule.kind == "own":
        path = path_labels(schema, table, rule.field or "", lang) if rule.field else ""
        return (f"本人的记录（{path}是本人）" if zh else f"own records ({path} is the user)") if path else (
            "本人的记录" if zh else "own records")
    label = path_labels(schema, table, rule.field or "", lang)
    if rule.user_values:
        return f"{label}在本人的{rule.user_values}之中" if zh else f"{label} among the user's {rule.user_values}"
    return f"{label}为 {'、'.join(rule.values)}" if zh else f"{label} is {', '.join(rule.values)}"


def path_labels(schema: Any, table: str, path: str, lang: str) -> str:
    """Return a field path (customer.owner) by its labels: 所属客户 · 负责销售."""
    labels, current = [], table
    for key in path.split("."):
        spec = schema.table(current).field(key) if schema.table(current).has_field(key) else None
        labels.append(spec.label.text(lang) if spec is not None else key)
        current = spec.to if spec is not None and spec.to else current
    return " · ".join(labels)


def field_labels(schema: Any, table: str, keys: list[str], lang: str) -> str:
    spec = next((t for t in schema.tables if t.key == table), None)
    shown = [spec.field(k).label.text(lang) if spec is not None and spec.has_field(k) else k for k in keys]
    return ("、" if lang == "zh" else ", ").join(shown) or "—"


def download(body: bytes, mimetype: str, filename: str) -> Response:
    """Return `body` as a file download called `filename`."""
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def register_review_screen(appbuilder: Any) -> None:
    """Add the review to the Security menu, next to users and roles."""
    appbuilder.add_view(PermissionReviewView, "permission_review", label=lazy_text("权限复核", "Permission review"),
                        icon="fa-check-square-o", category="Security")
