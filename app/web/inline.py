"""Child tables edited inside their parent's form (`inline: [order_line]`): an order with its lines.

Each row is a form of the child table's own screen (its fields, rules and the user's field access),
posted under the prefix `<child>-<n>-`; a save writes the parent and every row in one transaction,
or nothing, and a row's errors are shown on that row. Which rows a user may add, change or remove
follows their verbs on the child table and its row rules, as on the child's own screen.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from flask import request

from app.schema import expressions as ex
from app.schema import naming
from app.schema.model import FieldSpec, Label, TableSpec
from app.security.permissions import permission_name

from .i18n import current_lang

MAX_ROWS = 500
ROW_META = {"csrf": False}  # the parent's form carries the one token of the page
ROW_KEY = re.compile(r"^([a-z][a-z0-9_]*)-(\d{1,4})-")


@dataclass
class InlineRow:
    index: int
    form: Any
    record: Any | None = None  # the stored child an existing row edits
    delete: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def blank(self) -> bool:
        """True for a new row the user typed nothing into (it is left out)."""
        return self.record is None and all(
            f.data in (None, "", [], False) or f.data == initial(f) or f.name.endswith(naming.VERSION_COLUMN)
            for f in self.form)


@dataclass
class InlineGrid:
    """The rows of one child table inside a parent's form."""

    view: Any  # the child table's RecordView
    link: FieldSpec
    rows: list[InlineRow]
    may_create: bool
    may_update: bool
    may_delete: bool

    @property
    def table(self) -> TableSpec:
        return self.view.table_spec

    @property
    def prefix(self) -> str:
        return self.table.key

    @property
    def valid(self) -> bool:
        return not any(row.errors for row in self.rows)

    def columns(self) -> list[str]:
        """Return the child's fields the grid shows as inputs: its form's fields but the link to here."""
        form = self.empty_form()
        return [key for key in form._fields if key not in (self.link.key, naming.VERSION_COLUMN, "csrf_token")]

    def computed(self) -> list[FieldSpec]:
        """Return the child's own-field computes the grid shows live (amount = quantity × unit price)."""
        access = self.view.field_access()
        return [f for f in self.table.fields if f.is_computed and not ex.aggregates(f.computed) and access.shows(f.key)]

    def empty_form(self, prefix: str | None = None) -> Any:
        form = self.view.add_form(prefix=prefix or f"{self.prefix}-__row__-", formdata=None, meta=ROW_META)
        return without(form, self.link.key)

    def template_row(self) -> InlineRow:
        return InlineRow(-1, self.empty_form())

    def preview(self) -> str:
        """Return the data the browser needs to compute amounts and totals as the user types."""
        parent = self.view.models.schema.table(self.link.to or "")
        totals = []
        for f in parent.fields:
            if isinstance(f.computed, ex.Aggregate) and f.computed.table == self.table.key and f.computed.where is None:
                totals.append({"key": f.key, "function": f.computed.function, "field": f.computed.field,
                               "places": places(f), "label": f.label.text(current_lang())})
        data = {"prefix": self.prefix, "computed": [{"key": f.key, "expr": ex.as_json(f.computed), "places": places(f)}
                                                    for f in self.computed()], "totals": totals}
        return json.dumps(data, ensure_ascii=False)  # escaped by the template, as an attribute


def initial(field: Any) -> Any:
    """Return the value a field of a new row starts with (its default)."""
    return field.default() if callable(field.default) else field.default


def places(spec: FieldSpec) -> int:
    from app.fields.values import VALUE_TYPES
    vtype = VALUE_TYPES[spec.type]
    return vtype.scale(spec) if hasattr(vtype, "scale") else 0


def without(form: Any, key: str) -> Any:
    """Return `form` without its field `key` (the link to the parent, which the parent sets)."""
    if key in form._fields:
        del form[key]
    return form


def may(view: Any, verb: str) -> bool:
    return bool(view.appbuilder.sm.has_access(permission_name(verb), view.class_permission_name))


def inline_links(view: Any) -> list[tuple[Any, FieldSpec]]:
    """Return (child view, link) of the tables the view's table edits inline that the user may read."""
    wanted = view.table_spec.inline
    return [(child, link) for child, link in view.child_links
            if child.table_spec.key in wanted and may(child, "read") and child.field_access().shows(link.key)]


def stored_children(grid_view: Any, link: FieldSpec, parent: Any) -> list[Any]:
    """Return the parent's children through `link` that the user reaches, in id order."""
    if parent is None or getattr(parent, "id", None) is None:
        return []
    filters = grid_view.datamodel.get_filters().add_filter_related_view(
        link.key, grid_view.datamodel.FilterRelationOneToManyEqual, parent.id)
    _, items = grid_view.datamodel.query(filters.get_joined_filters(grid_view._base_filters), page_size=MAX_ROWS,
                                         page=0, order_column="id", order_direction="asc")
    return list(items)


def build_grids(view: Any, parent: Any, posted: bool) -> list[InlineGrid]:
    """Return the grids of the view's form: from the posted rows, or from the stored children."""
    grids = []
    for child, link in inline_links(view):
        grid = InlineGrid(child, link, [], may(child, "create"), may(child, "update"), may(child, "delete"))
        grid.rows = posted_rows(grid, parent) if posted else [
            InlineRow(n, without(child.edit_form(obj=record, prefix=f"{grid.prefix}-{n}-", formdata=None,
                                                 meta=ROW_META), link.key), record)
            for n, record in enumerate(stored_children(child, link, parent))]
        if not posted and not grid.rows and grid.may_create:
            grid.rows = [InlineRow(0, grid.empty_form(f"{grid.prefix}-0-"))]
        grids.append(grid)
    return grids


def posted_rows(grid: InlineGrid, parent: Any) -> list[InlineRow]:
    """Return the rows posted for one grid, each bound to its input and checked against the user's rights."""
    indexes = sorted({int(m.group(2)) for m in map(ROW_KEY.match, request.form) if m and m.group(1) == grid.prefix})
    stored = {r.id: r for r in stored_children(grid.view, grid.link, parent)}
    rows = []
    lang = current_lang()
    for n in indexes[:MAX_ROWS]:
        prefix = f"{grid.prefix}-{n}-"
        pk = request.form.get(f"{prefix}id", "")
        record = stored.get(int(pk)) if pk.isdigit() else None
        row = InlineRow(n, None, record, delete=request.form.get(f"{prefix}_delete") == "1")
        if pk and record is None:
            row.form = grid.empty_form(prefix)
            row.errors.append(ROW_GONE.text(lang))
        elif record is not None:
            row.form = without(grid.view.edit_form(request.form, obj=record, prefix=prefix, meta=ROW_META),
                               grid.link.key)
        else:
            row.form = without(grid.view.add_form(request.form, prefix=prefix, meta=ROW_META), grid.link.key)
        rows.append(row)
    return rows


ROW_GONE = Label("这一行已被他人删除或不在您可见的范围内",
                 "this row was deleted by someone else, or is out of your reach")
ROW_CHANGED = Label("这一行在您打开后已被他人修改；请刷新页面核对后再改",
                    "someone changed this row after you opened it; reload the page, check it and try again")


def check_rows(grid: InlineGrid) -> None:
    """Validate every row with the child's own form rules; record each row's problems on it."""
    lang = current_lang()
    for row in grid.rows:
        if row.errors or row.blank and not row.delete:
            continue
        if row.delete:
            if row.record is not None and not grid.may_delete:
                row.errors.append(refusal(grid, "delete", lang))
            continue
        if row.record is None and not grid.may_create:
            row.errors.append(refusal(grid, "create", lang))
            continue
        if row.record is not None and not grid.may_update:
            continue  # shown read-only; what was sent for it is not used
        grid.view.fill_default_from(row.form)
        row.form._id = row.record.id if row.record is not None else None
        if not row.form.validate():
            for key, messages in row.form.errors.items():
                label = grid.view.label_columns.get(key, key)
                row.errors += [f"{label}：{m}" if lang == "zh" else f"{label}: {m}" for m in messages]
        elif row.record is not None and stale(row):
            row.errors.append(ROW_CHANGED.text(lang))


def refusal(grid: InlineGrid, verb: str, lang: str) -> str:
    words = {"create": ("新增", "add"), "delete": ("删除", "remove"), "update": ("修改", "change")}[verb]
    label = grid.table.label
    return (f"您的角色不能{words[0]}{label.zh}" if lang == "zh"
            else f"your role may not {words[1]} {label.en.lower()} rows")


def stale(row: InlineRow) -> bool:
    version = row.form._fields.get(naming.VERSION_COLUMN)
    sent = version.data if version is not None else None
    return sent not in (None, "") and str(sent) != str(getattr(row.record, naming.VERSION_COLUMN))


def stage_rows(grid: InlineGrid, parent: Any) -> None:
    """Put each checked row into the session (nothing is committed): new rows, changes, removals."""
    session = grid.view.datamodel.session
    for row in grid.rows:
        if row.blank and not row.delete:
            continue
        if row.delete:
            if row.record is not None:
                grid.view.pre_delete(row.record)
                session.delete(row.record)
            continue
        if row.record is not None and not grid.may_update:
            continue
        child = row.record if row.record is not None else grid.view.datamodel.obj()
        grid.view.process_form(row.form, row.record is None)
        row.form.populate_obj(child)
        setattr(child, grid.link.key, parent)
        if row.record is None:
            grid.view.pre_add(child)
            session.add(child)
        else:
            grid.view.pre_update(child)
