"""Excel on every list: 下载导入模板 and 导入 for roles with `import`, 导出 (the list's current search and
filters) for roles with `export`; the import is checked first (a dry run listing every problem, with the
file offered back marked), then written on the user's confirmation. 导入记录 lists batches and reverts one.
"""
from __future__ import annotations

import datetime
import io
import re
import secrets
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import sqlalchemy as sa
from flask import Response, abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access
from flask_appbuilder.urltools import get_filter_args, get_order_args

from app.schema.model import Label
from app.security.gate import current_user, field_access, may
from app.security.roles import IMPORTS_MENU, IMPORTS_VIEW, JOBS_VIEW
from app.transfer.batches import RevertRefused, revert_batch, visible_batches
from app.transfer.errorbook import render_error_book
from app.transfer.export import ExportRefused, ExportRequest, export_table
from app.transfer.importer import Importer, ImportRequest
from app.transfer.problems import FileRefused
from app.transfer.read import clean_file_name, estimated_rows
from app.transfer.template import render_template

from .context import current_appbuilder
from .errors import answer
from .i18n import current_lang, lazy_text

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
UPLOAD_NAME = re.compile(r"^[0-9a-f]{64}$")  # a kept upload's random name


def attachment(body: bytes, name: str, mimetype: str) -> Response:
    """Return a download whose file name may be Chinese (RFC 6266 filename*); a name from the request
    can neither break the header nor add parameters to it."""
    name = clean_file_name(name)
    ascii_name = re.sub(r'[^A-Za-z0-9._ -]', "_", name)
    return Response(body, mimetype=mimetype, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"})


UPLOAD_HOURS = 24  # a checked file waits this long for its confirmation
UPLOADS_KEPT = 5  # ... and a user's newest few only


def uploads_root() -> Path:
    return Path(current_app.config["CRM_INSTANCE_DIR"]) / "imports"


def uploads_dir() -> Path:
    """Return the current user's folder of checked uploads (another user's are not reachable by name)."""
    folder = uploads_root() / str(int(getattr(current_user(), "id", 0) or 0))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def keep_upload(data: bytes) -> str:
    """Keep an uploaded file until it is confirmed; return its random name. Uploads older than a day
    (every user's) and all but a user's newest few are thrown away."""
    old = time.time() - UPLOAD_HOURS * 3600
    for path in uploads_root().glob("*/*"):
        if path.stat().st_mtime < old:
            path.unlink(missing_ok=True)
    folder = uploads_dir()
    for path in sorted(folder.iterdir(), key=lambda p: p.stat().st_mtime)[:-(UPLOADS_KEPT - 1)]:
        path.unlink(missing_ok=True)
    token = secrets.token_hex(32)
    (folder / token).write_bytes(data)
    return token


def kept_upload(token: str) -> Path | None:
    path = uploads_dir() / token
    return path if UPLOAD_NAME.fullmatch(token) and path.exists() else None


def child_labels() -> dict[str, Label]:
    return {t.key: t.label for t in current_app.extensions["crm"].schema.tables}


def stamp() -> str:
    return datetime.datetime.now().strftime("%Y%m%d-%H%M")


if TYPE_CHECKING:
    from flask_appbuilder import ModelView as ViewBase
else:
    ViewBase = object


class TransferMixin(ViewBase):
    """The import and export endpoints of a table's screen; verbs through METHOD_VERBS (import, export)."""

    table_spec: Any
    models: Any

    def may(self, verb: str) -> bool:
        return may(self.models, self.table_spec.key, current_user(), verb)

    @expose("/import/template")
    @has_access
    def import_template(self) -> Any:
        schema = self.models.schema
        lang = current_lang()
        body = render_template(schema, self.table_spec.key, field_access(schema, self.table_spec.key, current_user()),
                               lang)
        return attachment(body, f"{self.table_spec.label.text(lang)}-导入模板.xlsx", XLSX_TYPE)

    @expose("/export/<fmt>")
    @has_access
    def export_rows(self, fmt: str) -> Any:
        """Export the rows the list shows now (its search, filters and order), every page of them."""
        if fmt not in ("xlsx", "csv"):
            abort(404)
        lang = current_lang()
        where = [self.models.model(self.table_spec.key).id.in_(self.listed_ids())]
        out = io.BytesIO()
        described = "&".join(f"{k}={v}" for k, v in request.args.items() if k.startswith("_flt_") or k == "q")
        if not may(self.models, self.table_spec.key, current_user(), "export"):
            return answer(403, Label("无权导出", "Not allowed"), f"您无权导出{self.table_spec.label.zh}"
                          if lang == "zh" else f"you may not export {self.table_spec.label.en}")
        session = current_appbuilder().session
        ids = [pk for (pk,) in session.execute(self.listed_ids().limit(int(current_app.config["CRM_JOB_ROWS"]) + 1))]
        if len(ids) > int(current_app.config["CRM_JOB_ROWS"]):
            from app.jobs.work import start_job
            all_ids = [pk for (pk,) in session.execute(self.listed_ids())]
            job_id = start_job(current_app, "export", self.table_spec.key, current_user(), lang,
                               {"fmt": fmt, "ids": all_ids, "described": described})
            return redirect(url_for("JobsView.show", job_id=job_id))
        try:
            export_table(self.models, current_appbuilder().session,
                         ExportRequest(self.table_spec.key, fmt, lang, where, self.listed_order(), described), out)
        except ExportRefused as exc:
            return answer(403, Label("无权导出", "Not allowed"), exc.text(lang))
        mimetype = XLSX_TYPE if fmt == "xlsx" else "text/csv; charset=utf-8"
        return attachment(out.getvalue(), f"{self.table_spec.label.text(lang)}-{stamp()}.{fmt}", mimetype)

    def listed_ids(self) -> Any:
        """Return the select of the ids the list shows for this request's search and filters (all pages)."""
        self.refuse_unknown_filters()
        get_filter_args(self._filters)
        self.check_filter_values(self._filters)
        filters = self._filters.copy()
        keyword = request.args.get("q", "").strip()[:200]
        fields = self.keyword_fields()
        if keyword and fields:
            from .views import KeywordFilter
            search = type("Keyword", (KeywordFilter,), {"table": self.table_spec, "fields": fields})
            filters.add_filter(fields[0].split(".")[0], search, keyword)
        model = self.datamodel.obj
        query = self.datamodel.session.query(model.id)
        query = self.datamodel.apply_filters(query, filters.get_joined_filters(self._base_filters))
        return sa.select(query.subquery().c.id)

    def listed_order(self) -> list[Any]:
        model = self.datamodel.obj
        orders = get_order_args().get(self.__class__.__name__)
        column, direction = orders if orders else (self.base_order or (None, None))
        if column and self.table_spec.has_field(column) and column in self.order_columns:
            attribute = getattr(model, column)
            return [attribute.desc() if direction == "desc" else attribute.asc()]
        return []

    @expose("/import/", methods=["GET", "POST"])
    @has_access
    def import_rows(self) -> Any:
        """GET: the upload form. POST: a dry run of the uploaded file, then (confirmed) the import."""
        if request.method == "GET":
            return self.import_page()
        options = self.import_options()
        if request.form.get("confirm"):
            return self.confirmed_import(options)
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            return self.import_page(message=Label("请选择要导入的 .xlsx 或 .csv 文件",
                                                  "choose a .xlsx or .csv file to import"))
        name = clean_file_name(upload.filename)
        data = upload.read()  # at most CRM_IMPORT_MAX_MB + 1 MB: the request's limit (allow_import_files)
        if len(data) > self.max_bytes():  # the importer says so; nothing too large is kept
            result = self.importer(name, data, options, dry_run=True).run()
            return self.import_page(result=result, file_name=name, options=options)
        limit = int(current_app.config["CRM_JOB_ROWS"])
        if estimated_rows(name, data, limit) > limit:  # counted without reading the values
            from app.jobs.work import start_job
            job_id = start_job(current_app, "import", self.table_spec.key, current_user(), current_lang(),
                               {**options, "dry_run": True}, data, name)
            return redirect(url_for("JobsView.show", job_id=job_id))
        token = keep_upload(data)
        result = self.importer(name, data, options, dry_run=True).run()
        return self.import_page(result=result, upload=token, file_name=name, options=options)

    def confirmed_import(self, options: dict[str, Any]) -> Any:
        token, name = request.form.get("upload", ""), clean_file_name(request.form.get("file_name", ""))
        path = kept_upload(token)
        if path is None:
            return self.import_page(message=Label("上传的文件已失效，请重新选择文件",
                                                  "the upload expired; choose the file again"))
        data = path.read_bytes()
        result = self.importer(name, data, options, dry_run=False).run()
        if result.problems:
            return self.import_page(result=result, upload=token, file_name=name, options=options)
        path.unlink(missing_ok=True)
        counts = result.counts
        flash(str(lazy_text(f"已导入“{name}”（第 {result.batch_id} 批）：新增 {counts['insert']} 条，"
                            f"更新 {counts['update']} 条，未变 {counts['unchanged']} 条",
                            f"Imported '{name}' (batch {result.batch_id}): {counts['insert']} added, "
                            f"{counts['update']} updated, {counts['unchanged']} unchanged")), "success")
        return redirect(url_for(f"{self.endpoint}.list"))

    @expose("/import/errors/<upload>")
    @has_access
    def import_errors(self, upload: str) -> Any:
        """The uploaded file with its problems marked (the dry run is repeated, so nothing is kept but the file)."""
        path = kept_upload(upload)
        if path is None:
            abort(404)
        name = clean_file_name(request.args.get("name", "import.xlsx"))
        data = path.read_bytes()
        options = self.import_options(request.args)
        result = self.importer(name, data, options, dry_run=True).run()
        try:
            body = render_error_book(name, data, result, self.max_bytes(), current_lang())
        except FileRefused as exc:
            return answer(400, Label("无法读取文件", "The file cannot be read"), exc.text(current_lang()))
        return attachment(body, f"{Path(name).stem}-错误标注.xlsx", XLSX_TYPE)

    def import_options(self, source: Any = None) -> dict[str, Any]:
        source = source if source is not None else request.form
        mode = source.get("mode", "insert")
        return {"mode": mode if mode in ("insert", "upsert") else "insert", "key": source.get("key") or None,
                "allow_duplicates": bool(source.get("allow_duplicates")),
                "confirm_rules": bool(source.get("confirm_rules"))}

    def max_bytes(self) -> int:
        return int(current_app.config.get("CRM_IMPORT_MAX_MB") or 50) << 20

    def importer(self, name: str, data: bytes, options: dict[str, Any], dry_run: bool) -> Importer:
        request_ = ImportRequest(self.table_spec.key, name, data, dry_run=dry_run, lang=current_lang(),
                                 max_bytes=self.max_bytes(), **options)
        appbuilder = current_appbuilder()
        return Importer(self.models, appbuilder.session, appbuilder.sm.user_model, request_)

    def import_page(self, message: Label | None = None, **kwargs: Any) -> Any:
        keys = [f for f in self.table_spec.fields if f.unique and not f.encrypted]
        return self.render_template("crm/import.html", table=self.table_spec, lang=current_lang(),
                                    message=message.text(current_lang()) if message else "", unique_fields=keys,
                                    child_labels=child_labels(), **kwargs)


class ImportsView(BaseView):
    """导入记录: the batches the user may see, each revertible as a whole (app.transfer.batches)."""

    route_base = "/imports"
    default_view = "index"
    class_permission_name = IMPORTS_VIEW
    method_permission_name = {"index": "read", "revert": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        state = current_app.extensions["crm"]
        batches = visible_batches(state.models, current_appbuilder().session)
        labels = {t.key: t.label for t in state.schema.tables}
        return self.render_template("crm/imports.html", batches=batches, labels=labels, lang=current_lang())

    @expose("/<int:batch_id>/revert", methods=["POST"])
    @has_access
    def revert(self, batch_id: int) -> Any:
        state = current_app.extensions["crm"]
        lang = current_lang()
        try:
            done = revert_batch(state.models, current_appbuilder().session, state.keyring, batch_id)
        except RevertRefused as exc:
            flash(("未撤销：" if lang == "zh" else "Not reverted: ") + exc.text(lang), "danger")
            return redirect(url_for("ImportsView.index"))
        flash(str(lazy_text(f"已撤销第 {done.id} 批导入（{done.file_name}）",
                            f"Reverted batch {done.id} ({done.file_name})")), "success")
        return redirect(url_for("ImportsView.index"))


def allow_import_files() -> None:
    """Let an import's upload be as large as CRM_IMPORT_MAX_MB, so that the import's own message names
    the limit; other requests keep MAX_CONTENT_LENGTH. (Runs before Flask-WTF's CSRF check reads the form.)"""
    if request.method == "POST" and (request.endpoint or "").endswith(".import_rows"):
        request.max_content_length = max(current_app.config.get("MAX_CONTENT_LENGTH") or 0,
                                         (int(current_app.config["CRM_IMPORT_MAX_MB"]) + 1) << 20)


def register_imports_screen(appbuilder: Any) -> None:
    """Add the 导入记录 menu entry (shown to roles with the `import` verb on some table)."""
    appbuilder.add_view(ImportsView, IMPORTS_MENU, label=lazy_text("导入记录", "Imports"), icon="fa-upload")
    current_app.jinja_env.globals["crm_transfer_may"] = lambda view, verb: view.may(verb)
    current_app.before_request_funcs.setdefault(None, []).insert(0, allow_import_files)


class JobsView(BaseView):
    """后台任务: the user's imports and exports that run in the background, each with a live progress
    bar (rows done of all, rows per second, time left), cancel, and its result or file."""

    route_base = "/jobs"
    default_view = "index"
    class_permission_name = JOBS_VIEW
    method_permission_name = {"index": "read", "show": "read", "status": "read", "cancel": "read",
                              "download": "read", "confirm": "read"}

    def job_or_404(self, job_id: str) -> Any:
        from app.jobs.store import load_job
        if not re.fullmatch(r"[0-9a-f]{32}", job_id):
            abort(404)
        with current_app.extensions["crm"].db.engine.connect() as conn:
            job = load_job(conn, job_id)
        user = current_user()
        from app.security.gate import ADMIN_ROLE, role_keys
        if job is None or (job.user_id != getattr(user, "id", None) and ADMIN_ROLE not in role_keys(user)):
            abort(404)
        return job

    @expose("/")
    @has_access
    def index(self) -> Any:
        from app.jobs.work import jobs_for
        jobs = jobs_for(current_app, current_user())
        labels = {t.key: t.label for t in current_app.extensions["crm"].schema.tables}
        return self.render_template("crm/jobs.html", jobs=jobs, labels=labels, lang=current_lang())

    @expose("/<job_id>/")
    @has_access
    def show(self, job_id: str) -> Any:
        job = self.job_or_404(job_id)
        table = current_app.extensions["crm"].schema.table(job.table)
        from app.schema import naming
        return self.render_template("crm/job.html", job=job, table=table, lang=current_lang(),
                                    list_endpoint=naming.view_class_name_for(job.table) + ".list",
                                    child_labels=child_labels())

    @expose("/<job_id>/status")
    @has_access
    def status(self, job_id: str) -> Any:
        from flask import jsonify

        from app.jobs.work import job_json
        self.job_or_404(job_id)
        return jsonify(job_json(current_app, job_id))

    @expose("/<job_id>/cancel", methods=["POST"])
    @has_access
    def cancel(self, job_id: str) -> Any:
        job = self.job_or_404(job_id)
        if not job.finished:
            current_app.extensions["crm_jobs"].live(job_id).cancel()
        return redirect(url_for("JobsView.show", job_id=job_id))

    @expose("/<job_id>/download")
    @has_access
    def download(self, job_id: str) -> Any:
        from app.jobs.work import jobs_dir
        job = self.job_or_404(job_id)
        if job.status != "done" or not job.result_file:
            abort(404)
        path = jobs_dir(current_app) / job.result_file
        if not path.exists():
            abort(404)
        fmt = path.suffix.lstrip(".")
        label = current_app.extensions["crm"].schema.table(job.table).label.text(current_lang())
        name = (f"{Path(job.file_name or 'import').stem}-错误标注.xlsx" if job.kind == "import"
                else f"{label}-{job.created_at:%Y%m%d-%H%M}.{fmt}")
        return attachment(path.read_bytes(), name, XLSX_TYPE if fmt == "xlsx" else "text/csv; charset=utf-8")

    @expose("/<job_id>/confirm", methods=["POST"])
    @has_access
    def confirm(self, job_id: str) -> Any:
        """Run, as a new job, the real import of a checked file (its dry run found no problem)."""
        from app.jobs.work import input_path, start_job
        job = self.job_or_404(job_id)
        result = job.result or {}
        if job.user_id != getattr(current_user(), "id", None):
            abort(404)  # an import is confirmed by the user who checked it, and runs as them
        if job.kind != "import" or job.status != "done" or not result.get("dry_run") or result.get("problem_count"):
            abort(400)
        params = {**job.params, "dry_run": False, "allow_duplicates": bool(request.form.get("allow_duplicates"))
                  or bool(job.params.get("allow_duplicates"))}
        data = input_path(current_app, job_id).read_bytes()
        new_id = start_job(current_app, "import", job.table, current_user(), job.lang, params, data, job.file_name)
        return redirect(url_for("JobsView.show", job_id=new_id))


def register_jobs_screen(appbuilder: Any) -> None:
    appbuilder.add_view_no_menu(JobsView)
