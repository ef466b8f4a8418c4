"""我的待办: the user's due reminders (app.automation.reminders) on the home page and a page of their
own, overdue first; each one marked done or snoozed for a few days. Only the user's own items can be
settled: a crafted address of someone else's answers 404."""
from __future__ import annotations

import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, request, url_for
from flask_appbuilder import BaseView, expose, has_access

from app.automation.digest import today_in
from app.automation.reminders import Item, due_items, mark, reminder_items
from app.fields.values import VALUE_TYPES
from app.models.problems import RecordProblem
from app.security.gate import OutOfReach, assign_owner, check_in_reach, current_user, field_access, may
from app.security.roles import TASKS_VIEW

from .context import current_appbuilder
from .i18n import current_lang, lazy_text

SNOOZE_DAYS = (1, 3, 7)
HOME_ITEMS = 8


def my_tasks() -> list[Item]:
    """Return the current user's due items (none for a visitor)."""
    user = current_user()
    if user is None or not current_app.extensions["crm"].schema.reminders:
        return []
    return due_items(current_app.extensions["crm"].models, current_appbuilder().session, user,
                     today_in(current_app).date())


def task_url(item: Item) -> str:
    from app.schema import naming
    return url_for(f"{naming.view_class_name_for(item.table.key)}.show", pk=item.record_id)


def task_records(item: Item) -> bool:
    """Return True when 完成 of `item` opens the form that records it (its reminder has `done:` and the
    user may add to its table)."""
    state = current_app.extensions["crm"]
    return item.reminder.done is not None and may(state.models, item.table.key, current_user(), "create")


class TasksView(BaseView):
    """我的待办: the list, and marking an item done or snoozed."""

    route_base = "/tasks"
    default_view = "index"
    class_permission_name = TASKS_VIEW
    method_permission_name = {"index": "read", "done": "read", "snooze": "read", "record": "read"}

    @expose("/")
    @has_access
    def index(self) -> Any:
        return self.render_template("crm/tasks.html", items=my_tasks(), lang=current_lang(), snooze_days=SNOOZE_DAYS)

    @expose("/<reminder>/<int:record_id>/done", methods=["POST"])
    @has_access
    def done(self, reminder: str, record_id: int) -> Any:
        item = self.settle(reminder, record_id, "done")
        flash(str(lazy_text(f"已完成：{item.message.zh}", f"Done: {item.message.en}")), "success")
        return self.back()

    @expose("/<reminder>/<int:record_id>/snooze", methods=["POST"])
    @has_access
    def snooze(self, reminder: str, record_id: int) -> Any:
        days = request.form.get("days", "")
        if not days.isdigit() or int(days) not in SNOOZE_DAYS:
            abort(400)
        until = today_in(current_app).date() + datetime.timedelta(days=int(days))
        item = self.settle(reminder, record_id, "snoozed", until)
        flash(str(lazy_text(f"已推迟到 {until}：{item.message.zh}", f"Snoozed until {until}: {item.message.en}")),
              "info")
        return self.back()

    @expose("/<reminder>/<int:record_id>/record", methods=["GET", "POST"])
    @has_access
    def record(self, reminder: str, record_id: int) -> Any:
        """完成 of a reminder with `done:`: a form of the fields it asks (a follow-up's notes and next
        date); saving adds the new record and settles the item in one transaction."""
        state = current_app.extensions["crm"]
        spec = state.schema.reminders.get(reminder)
        user = current_user()
        if spec is None or spec.done is None or not may(state.models, spec.table, user, "create"):
            abort(404)
        today = today_in(current_app).date()
        session = current_appbuilder().session
        item = next((i for i in reminder_items(state.models, session, spec, user, today)
                     if i.record_id == record_id), None)
        if item is None:
            abort(404)  # not one of this user's due items (someone else's, or settled already)
        access = field_access(state.schema, spec.table, user)
        fields = [item.table.field(k) for k in spec.done.ask if access.writes(k)]
        if request.method == "GET":
            values = {f.key: "" if f.default in (None, "today") else str(f.default) for f in fields}
            return self.record_page(item, fields, values, {})
        values = {f.key: request.form.get(f.key, "") for f in fields}
        parsed, errors = read_asked(fields, values)
        if errors:
            return self.record_page(item, fields, values, errors)
        try:
            record_done(state.models, session, spec, item, parsed, today, user)
        except OutOfReach as exc:
            session.rollback()
            flash(exc.text(current_lang()), "danger")
            return self.record_page(item, fields, values, {})
        except RecordProblem as problem:
            session.rollback()
            flash(problem.text(current_lang()), "danger")
            return self.record_page(item, fields, values, {})
        flash(str(lazy_text(f"已完成并记录：{item.message.zh}", f"Done and recorded: {item.message.en}")), "success")
        return self.back()

    def record_page(self, item: Item, fields: list[Any], values: dict[str, str], errors: dict[str, str]) -> Any:
        return self.render_template("crm/task_record.html", item=item, fields=fields, values=values, errors=errors,
                                    lang=current_lang(), back=request.values.get("back", ""))

    def settle(self, reminder: str, record_id: int, status: str, until: datetime.date | None = None) -> Item:
        item = mark(current_app.extensions["crm"].models, current_appbuilder().session, current_user(), reminder,
                    record_id, status, today_in(current_app).date(), until)
        if item is None:
            abort(404)  # not one of this user's due items (someone else's, or settled already)
        return item

    def back(self) -> Any:
        return redirect(url_for("TasksView.index") if request.form.get("back") == "tasks"
                        else current_appbuilder().get_url_for_index)


def read_asked(fields: list[Any], raw: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Return (the values of the asked fields, a message per field that is wrong)."""
    lang = current_lang()
    parsed, errors = {}, {}
    for spec in fields:
        value, problems = VALUE_TYPES[spec.type].validate(raw.get(spec.key, ""), spec)
        if problems:
            errors[spec.key] = "；".join(p.text(lang) for p in problems)
        else:
            parsed[spec.key] = value
    return parsed, errors


def record_done(models: Any, session: Any, spec: Any, item: Item, asked: dict[str, Any], today: datetime.date,
                user: Any) -> None:
    """Add the record 完成 makes (copied fields, today's date, the asked values) and settle the item,
    committed together; OutOfReach or RecordProblem when the new record may not be stored."""
    model = models.model(spec.table)
    source = session.get(model, item.record_id)
    record = model()
    for key in spec.done.copy:
        setattr(record, key, getattr(source, key))
    if spec.done.today:
        setattr(record, spec.done.today, today)
    for key, value in asked.items():
        setattr(record, key, value)
    assign_owner(models, spec.table, record)
    check_in_reach(models, spec.table, record, session, "create")
    session.add(record)
    if mark(models, session, user, spec.key, item.record_id, "done", today) is None:
        raise OutOfReach()


def register_tasks(appbuilder: Any) -> None:
    appbuilder.add_view_no_menu(TasksView)
    current_app.jinja_env.globals["crm_my_tasks"] = my_tasks
    current_app.jinja_env.globals["crm_task_url"] = task_url
    current_app.jinja_env.globals["crm_task_records"] = task_records
    current_app.jinja_env.globals["crm_home_tasks"] = HOME_ITEMS
