"""The permission review screen for admins: the same review as `crm permissions review`, with the
changes since the last saved review, a button that saves this one, and PDF and CSV downloads."""
from __future__ import annotations

from typing import Any

from flask import Response, current_app, flash, redirect, url_for
from flask_appbuilder import BaseView, expose, has_access

from crm.reports.permission_review import render_review_pdf
from crm.security.review import render_csv, saved_reviews, take_review

from .i18n import current_lang, lazy_text


class PermissionReviewView(BaseView):
    """Admin only: no YAML role is granted it (see crm.security.roles)."""

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
        table_labels = {t.key: t.label.text(lang) for t in schema.tables}
        return self.render_template("crm/review.html", review=review, changes=changes, taken_on=now,
                                    saved=saved_reviews(current_app.extensions["crm"].db.engine),
                                    role_labels=role_labels, table_labels=table_labels)

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
        body = render_review_pdf(review, changes, now, current_app.config.get("CRM_PDF_FONT"))
        return download(body, "application/pdf", f"permission-review-{now:%Y%m%d-%H%M}.pdf")

    @expose("/review.csv")
    @has_access
    def csv(self) -> Any:
        review, changes, now = self.current()
        body = "\ufeff" + render_csv(review, changes)  # with a BOM, so that Excel reads UTF-8
        return download(body.encode("utf-8"), "text/csv; charset=utf-8", f"permission-review-{now:%Y%m%d-%H%M}.csv")


def download(body: bytes, mimetype: str, filename: str) -> Response:
    """Return `body` as a file download called `filename`."""
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def register_review_screen(appbuilder: Any) -> None:
    """Add the review to the Security menu, next to users and roles."""
    appbuilder.add_view(PermissionReviewView, "permission_review", label=lazy_text("权限复核", "Permission review"),
                        icon="fa-check-square-o", category="Security")
