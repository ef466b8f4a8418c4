"""Saves on the screens that fail say so and keep what the user typed.

Flask-AppBuilder's add and edit answer a failed save (a refusal of our rules, a locked, full or
read-only database) with a redirect and a flash that may hold raw SQL, so what was typed is lost
and the next page looks like success. These versions of its `_add`, `_edit` and `_delete` show the
form again, with the input and a message in the user's language; the database's own words go to
the log.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flask import abort, flash, g, redirect, request, url_for
from flask_appbuilder.exceptions import DatabaseException
from flask_appbuilder.urltools import get_filter_args, get_order_args, get_page_args, get_page_size_args
from sqlalchemy.exc import SQLAlchemyError
from wtforms import HiddenField

from app.models.problems import RecordProblem
from app.models.rules import RuleNeedsConfirming, confirming
from app.schema import naming
from app.schema.model import Label
from app.security.gate import can_reach

from .audit import record_history
from .errors import write_failure
from .i18n import current_lang
from .inline import build_grids, check_rows, stage_rows
from .records import DeleteBlocked

CONFIRM_FIELD = "crm_confirm"  # the form's boxes that confirm a record rule's warning, by rule name
NEEDS_CONFIRMING = Label("未保存：请核对下面的提示，勾选确认后再次保存。",
                         "Not saved: check the warnings below, tick to confirm them and save again.")
CHANGED_MEANWHILE = Label(
    "未保存：您打开此记录后，{who} 修改并保存了它（改动见下）。"
    "您填写的内容仍在表单中；核对后再次保存，将以您填写的为准。",
    "Not saved: after you opened this record, {who} changed and saved it (the changes are below). What you typed "
    "is still in the form; check it and save again to keep your version.")


def readable_records(models: Any, records: Any, session: Any) -> list[tuple[str, str]]:
    """Return (title, address) of the records a warning names that the user may open."""
    return [(title, url_for(f"{naming.view_class_name_for(table)}.show", pk=pk)) for table, pk, title in records
            if can_reach(models, table, pk, session)]


def saved_location(view: Any, item: Any, exclude_cols: list[str]) -> str:
    """Return where a save leads: back to the parent's tab the record was added from (its add URL preset
    the link), else to the saved record's page."""
    for key in exclude_cols:
        parent = getattr(item, key, None)
        spec = view.table_spec.field(key) if view.table_spec.has_field(key) else None
        if parent is not None and spec is not None and spec.type == "link":
            tab = naming.children_tab_for(view.table_spec.key, key)
            return url_for(f"{naming.view_class_name_for(spec.to)}.show", pk=parent.id, _anchor=tab)
    return url_for(f"{view.endpoint}.show", pk=item.id)


class VersionField(HiddenField):
    """The version of the record an edit form was filled from; never written to the record."""

    def populate_obj(self, obj: Any, name: str) -> None:
        pass


def version_of(form: Any) -> int | None:
    """Return the version an edit form was based on; None for a form without one."""
    field = form._fields.get(naming.VERSION_COLUMN)
    if field is None or field.data in (None, ""):
        return None
    try:
        return int(field.data)
    except (TypeError, ValueError):
        return 0  # not a version the panel wrote: treated as outdated, so the user sees what is stored


if TYPE_CHECKING:  # the mixin calls ModelView's methods; to mypy that base is Flask-AppBuilder's (untyped)
    from flask_appbuilder import ModelView as ViewBase
else:
    ViewBase = object


class SavesKeepInput(ViewBase):
    """Mixin for a ModelView: add, edit and delete that report a failure instead of hiding it."""

    def attempt(self, steps: Callable[[], None]) -> bool:
        """Run a save (passing the record rules whose warnings the form confirmed); on failure roll
        back, flash why, and return False."""
        try:
            with confirming(self.datamodel.session, request.form.getlist(CONFIRM_FIELD)):
                steps()
            return True
        except RuleNeedsConfirming as warning:  # shown again with a box to tick per warning (crm/widgets/form.html)
            self.datamodel.session.rollback()
            lang = current_lang()
            g.crm_confirm_rules = [(name, label.text(lang), message.text(lang))
                                   for name, label, message in warning.warnings]
            g.crm_confirm_records = readable_records(self.models, warning.records, self.datamodel.session)
            flash(NEEDS_CONFIRMING.text(lang), "warning")
        except RecordProblem as problem:  # the records' own rules, checked as the ORM writes
            self.datamodel.session.rollback()
            flash(problem.text(current_lang()), "danger")
        except ValueError as refusal:  # our rules, raised by pre_add / pre_update
            self.datamodel.session.rollback()
            flash(str(refusal), "danger")
        except DeleteBlocked as blocked:
            self.datamodel.session.rollback()
            flash(blocked.text(current_lang()), "danger")
        except (SQLAlchemyError, DatabaseException) as error:
            self.datamodel.session.rollback()
            flash(write_failure(error)[1], "danger")
        return False

    def _add(self) -> Any:
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        form = self.add_form.refresh()
        grids = g.crm_inline = build_grids(self, None, posted=request.method == "POST")
        if request.method == "POST":
            self._fill_form_exclude_cols(exclude_cols, form)
            self.fill_default_from(form)
            valid = form.validate()
            for grid in grids:
                check_rows(grid)
            if valid and all(grid.valid for grid in grids):
                self.process_form(form, True)
                item = self.datamodel.obj()

                def save() -> None:
                    form.populate_obj(item)
                    self.pre_add(item)
                    for grid in grids:  # the parent and its rows in one transaction
                        stage_rows(grid, item)
                    self.datamodel.add(item)
                    self.post_add(item)
                if self.attempt(save):
                    flash(self.add_row_message, "success")
                    g.crm_saved = saved_location(self, item, exclude_cols)
                    return None
            return self._get_add_widget(form=form, exclude_cols=exclude_cols)
        self.update_redirect()
        return self._get_add_widget(form=form, exclude_cols=exclude_cols)

    def _edit(self, pk: Any) -> Any:
        get_filter_args(self._filters, disallow_if_not_in_search=False)
        exclude_cols = self._filters.get_relation_cols()
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)
        pk = self.datamodel.get_pk_value(item)
        grids = g.crm_inline = build_grids(self, item, posted=request.method == "POST")
        if request.method == "POST":
            form = self.edit_form.refresh(request.form)
            self._fill_form_exclude_cols(exclude_cols, form)
            form._id = pk  # lets the unique-value checks skip this record itself
            self.fill_default_from(form)
            valid = form.validate()
            for grid in grids:
                check_rows(grid)
            if valid and all(grid.valid for grid in grids):
                based_on, stored_version = version_of(form), getattr(item, naming.VERSION_COLUMN)
                if based_on is not None and based_on != stored_version:
                    return self.show_conflict(item, form, exclude_cols, based_on, stored_version)
                self.process_form(form, False)

                def save() -> None:
                    form.populate_obj(item)
                    self.pre_update(item)
                    for grid in grids:
                        stage_rows(grid, item)
                    self.datamodel.edit(item)
                    self.post_update(item)
                if self.attempt(save):
                    flash(self.edit_row_message, "success")
                    g.crm_saved = saved_location(self, item, exclude_cols)
                    return None
                item = self.datamodel.get(pk, self._base_filters)  # as stored: the save was rolled back
        else:
            form = self.edit_form.refresh(obj=item)
            self.prefill_form(form, pk)
            self.update_redirect()
        widgets = self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        return self._get_related_views_widgets(item, filters={}, orders=get_order_args(), pages=get_page_args(),
                                               page_sizes=get_page_size_args(), widgets=widgets)

    def fill_default_from(self, form: Any) -> None:
        """Copy default_from values into fields sent empty whose link is chosen (the browser does so as
        the link is picked; this covers a form sent without scripts)."""
        for spec in self.table_spec.fields:
            field = form._fields.get(spec.key)
            if not spec.default_from or field is None or (field.data not in (None, "") and field.raw_data != [""]):
                continue
            link_key, _, source_key = spec.default_from.partition(".")
            link = form._fields.get(link_key)
            linked = link.data if link is not None else None
            value = getattr(linked, source_key, None) if linked is not None and not isinstance(linked, str) else None
            if value is not None:
                field.data, field.raw_data = value, [str(value)]

    def post_add_redirect(self) -> Any:
        return redirect(g.get("crm_saved") or self.get_redirect())

    def post_edit_redirect(self) -> Any:
        return redirect(g.get("crm_saved") or self.get_redirect())

    def show_conflict(self, item: Any, form: Any, exclude_cols: Any, based_on: int, stored_version: int) -> Any:
        """Return the edit page again with what the user typed, what others saved since `based_on`, and
        the stored version in the form (saving again is then a choice made knowing the changes)."""
        changes = record_history(self.models, self.table_spec, item.id, updates_only=True,
                                 limit=max(1, min(stored_version - based_on, 20)))
        who = "、".join(dict.fromkeys(e.who for e in changes)) or ("他人" if current_lang() == "zh" else "someone")
        flash(CHANGED_MEANWHILE.text(current_lang()).format(who=who), "warning")
        form._fields[naming.VERSION_COLUMN].data = stored_version
        widgets = self._get_edit_widget(form=form, exclude_cols=exclude_cols)
        widgets["conflict"] = changes
        return self._get_related_views_widgets(item, filters={}, orders=get_order_args(), pages=get_page_args(),
                                               page_sizes=get_page_size_args(), widgets=widgets)

    def _delete(self, pk: Any) -> None:
        item = self.datamodel.get(pk, self._base_filters)
        if not item:
            abort(404)

        def remove() -> None:
            self.pre_delete(item)
            self.datamodel.delete(item)
            self.post_delete(item)
        if self.attempt(remove):
            flash(self.delete_row_message, "success")
        self.update_redirect()
