"""Read the report YAML under `reports/` into checked ReportSpecs: every problem at once, each with
file, line, path and a hint, checked against the schema (tables, fields, options, parameters)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from app.fields.values import VALUE_TYPES
from app.schema.issues import Issue, SchemaError
from app.schema.model import FieldSpec, Label, SchemaSpec, TableSpec
from app.schema.parse import Parser, describe, did_you_mean
from app.schema.yamlsrc import Node, load_yaml_file, load_yaml_text

from .spec import (
    AGE_BUCKETS,
    CHARTS,
    DATE_DEFAULTS,
    DATE_STEPS,
    KINDS,
    MEASURES,
    NUMERIC_TYPES,
    OPERATORS,
    ORIENTATIONS,
    PARAM_TYPES,
    WIDGET_SHOWS,
    ChartSpec,
    Condition,
    DashboardSpec,
    Dimension,
    Measure,
    ParamSpec,
    ReportBook,
    ReportSpec,
    SectionSpec,
    Value,
    WidgetSpec,
)

REPORT_KEYS = ("label", "kind", "table", "orientation", "description", "watermark", "params", "where", "columns",
               "fields", "order_by", "group_by", "totals", "sections", "group", "measures", "chart", "pivot",
               "row_limit", "mine", "limit")
KIND_KEYS = {
    "record": {"fields", "sections"},
    "table": {"params", "where", "columns", "order_by", "group_by", "totals", "row_limit", "mine", "limit"},
    "summary": {"params", "where", "group", "measures", "chart", "pivot", "mine"},
}
WIDGET_KEYS = ("key", "show", "label", "table", "where", "mine", "group", "measures", "chart", "columns",
               "order_by", "limit")
BUILT_IN_VALUES = DATE_DEFAULTS  # `$today`, `$start_of_month`, ...: usable in any where without params
PARAM_KEYS = ("type", "label", "default", "required", "options", "to")
SECTION_KEYS = ("table", "via", "columns", "order_by", "totals", "label")
SYSTEM_COLUMNS = ("id", "created_on", "changed_on")


def load_reports(directory: str | os.PathLike[str], schema: SchemaSpec) -> ReportBook:
    """Return the reports in `directory` (none when it does not exist); SchemaError listing every problem."""
    folder = Path(directory)
    if not folder.is_dir():
        return ReportBook(source_dir=str(folder))
    roots: list[Node] = []
    issues: list[Issue] = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        root, file_issues = load_yaml_file(path, _shown_path(path))
        issues += file_issues
        if root is not None:
            roots.append(root)
    book, found = build_reports(roots, schema, str(folder))
    if issues + found:
        raise SchemaError(issues + found)
    return book


def build_dashboards(roots: list[Node], reader: ReportReader) -> dict[str, DashboardSpec]:
    """Return the dashboards of every file's `dashboards:` section, by role."""
    dashboards: dict[str, DashboardSpec] = {}
    roles = ["admin", *reader.schema.roles]
    for root in roots:
        section = root.value.get("dashboards") if root.is_map else None
        if section is None or not reader.expect_map(section, "dashboards", "dashboards, each under a role's key"):
            continue
        for role, node in section.value.items():
            path, line = f"dashboards.{role}", section.key_lines.get(role)
            if role not in roles:
                reader.error(node, path, f"unknown role '{role}'", did_you_mean(role, roles, "roles"), line=line)
                continue
            if role in dashboards:
                reader.error(node, path, f"the dashboard of '{role}' is declared twice",
                             f"it is also declared in {dashboards[role].file}:{dashboards[role].line}", line=line)
                continue
            dashboard = reader.dashboard(node, role, path)
            if dashboard is not None:
                dashboards[role] = dashboard
    return dashboards


def load_reports_text(files: dict[str, str], schema: SchemaSpec) -> ReportBook:
    """Return the reports of in-memory YAML texts keyed by file name (for tests and tools)."""
    roots: list[Node] = []
    issues: list[Issue] = []
    for name, text in sorted(files.items()):
        root, file_issues = load_yaml_text(text, name)
        issues += file_issues
        if root is not None:
            roots.append(root)
    book, found = build_reports(roots, schema, "")
    if issues + found:
        raise SchemaError(issues + found)
    return book


def build_reports(roots: list[Node], schema: SchemaSpec, source_dir: str) -> tuple[ReportBook, list[Issue]]:
    """Return every report of the file roots, and the problems found in them."""
    reader = ReportReader(schema)
    reports: dict[str, ReportSpec] = {}
    for root in roots:
        if not reader.expect_map(root, "", "a reports: or dashboards: section"):
            continue
        reader.unknown_keys(root, "", ("reports", "dashboards"), "sections")
        section = root.value.get("reports")
        if section is None or not reader.expect_map(section, "reports", "reports, each under its key"):
            continue
        for key, node in section.value.items():
            path, line = f"reports.{key}", section.key_lines.get(key)
            if not reader.check_key(section, key, path, line):
                continue
            if key in reports:
                reader.error(node, path, f"report '{key}' is declared twice",
                             f"it is also declared in {reports[key].file}:{reports[key].line}", line=line)
                continue
            report = reader.report(node, key, path)
            if report is not None:
                reports[key] = report
    dashboards = build_dashboards([r for r in roots if r.is_map], reader)
    return ReportBook(reports, source_dir, dashboards), reader.issues


class ReportReader(Parser):
    """A Parser that also knows the schema the reports are checked against."""

    def __init__(self, schema: SchemaSpec):
        super().__init__()
        self.schema = schema

    def dashboard(self, node: Node, role: str, path: str) -> DashboardSpec | None:
        if not node.is_list:
            self.error(node, path, f"expected a list of widgets, got {describe(node)}",
                       "e.g. - {key: open_orders, show: number, table: order, measures: [{count: true}]}")
            return None
        widgets: list[WidgetSpec] = []
        for i, item in enumerate(node.value):
            widget = self.widget(item, f"{path}[{i}]")
            if widget is not None and widget.key in [w.key for w in widgets]:
                self.error(item, f"{path}[{i}].key", f"widget '{widget.key}' is declared twice in this dashboard",
                           "give each widget its own key")
            elif widget is not None:
                widgets.append(widget)
        return DashboardSpec(role, tuple(widgets), node.file, node.line)

    def widget(self, node: Node, path: str) -> WidgetSpec | None:
        if not self.expect_map(node, path, "a widget like {key: open_orders, show: number, table: order}"):
            return None
        self.unknown_keys(node, path, WIDGET_KEYS, "widget keys")
        values: dict[str, Node] = node.value
        key = self.text(values["key"], f"{path}.key") if "key" in values else None
        if key is None or not self.check_key(node, key, f"{path}.key", None):
            if "key" not in values:
                self.error(node, path, "a widget needs key:", "a name for it, used in links: key: open_orders")
            return None
        show = self.one_of(values, "show", path, WIDGET_SHOWS, "widget kinds", node, required=True)
        if show is None:
            return None
        kind = "table" if show == "table" else "summary"
        body = {k: v for k, v in values.items() if k not in ("key", "show")}
        body["kind"] = Node(kind, node.line, node.file)
        if show == "number" and "group" in body:
            self.error(values["group"], f"{path}.group", "a number widget has no group:",
                       "show: chart or show: table to show groups", line=node.key_lines.get("group"))
        report = self.report(Node(body, node.line, node.file, key_lines=node.key_lines), key, path,
                             widget=show)
        return WidgetSpec(key, show, report) if report is not None else None

    def report(self, node: Node, key: str, path: str, widget: str | None = None) -> ReportSpec | None:
        if not self.expect_map(node, path, "a report"):
            return None
        if widget is None:
            self.unknown_keys(node, path, REPORT_KEYS, "report keys")
        values: dict[str, Node] = node.value
        kind = self.one_of(values, "kind", path, KINDS, "kinds", node, required=True)
        table = self.table_of(values, path, node)
        if kind is None or table is None:
            return None
        for extra in sorted(set(values) - KIND_KEYS[kind] - {"label", "kind", "table", "orientation",
                                                             "description", "watermark"}):
            if extra in REPORT_KEYS:
                allowed = ", ".join(sorted(KIND_KEYS[kind]))
                self.error(values[extra], f"{path}.{extra}", f"a {kind} report has no {extra}",
                           f"a {kind} report takes {allowed}", line=node.key_lines.get(extra))
        params = self.params(values.get("params"), f"{path}.params") if kind != "record" else ()
        if kind == "record":
            params = (ParamSpec("id", "link", Label("记录", "Record"), required=True, to=table.key),)
        names = [p.key for p in params]
        spec = ReportSpec(
            key=key, kind=kind, table=table.key, file=node.file, line=node.line,
            label=self.label(values["label"], f"{path}.label") if "label" in values else Label(key, key),
            orientation=self.one_of(values, "orientation", path, ORIENTATIONS, "orientations", node) or "portrait",
            description=self.label(values["description"], f"{path}.description") if "description" in values else None,
            watermark=self.label(values["watermark"], f"{path}.watermark") if "watermark" in values else None,
            params=params,
            where=self.conditions(values.get("where"), f"{path}.where", table, params),
            columns=self.fields_of(values.get("columns") or values.get("fields"),
                                   f"{path}.{'fields' if kind == 'record' else 'columns'}", table),
            order_by=self.order(values.get("order_by"), f"{path}.order_by", table),
            group_by=self.group_by(values.get("group_by"), f"{path}.group_by", table),
            totals=self.numbers(values.get("totals"), f"{path}.totals", table),
            sections=self.sections(values.get("sections"), f"{path}.sections", table),
            dimensions=self.dimensions(values.get("group"), f"{path}.group", table, names),
            measures=self.measures(values.get("measures"), f"{path}.measures", table),
            chart=self.chart(values.get("chart"), f"{path}.chart"),
            pivot=self.boolean(values["pivot"], f"{path}.pivot") if "pivot" in values else False,
            row_limit=self.count(values.get("row_limit"), f"{path}.row_limit"),
            mine=self.mine(values.get("mine"), f"{path}.mine", table),
            limit=self.count(values.get("limit"), f"{path}.limit"),
        )
        self.check_whole(spec, node, path, widget)
        return spec

    def mine(self, node: Node | None, path: str, table: TableSpec) -> str | None:
        """Return the user field (or path through links) that makes a row the user's own (`mine: true`:
        the table's only user field)."""
        if node is None or node.value is False:
            return None
        users = [f.key for f in table.fields if f.type == "user"]
        if node.value is True:
            if len(users) != 1:
                self.error(node, path, f"table '{table.key}' has {len(users) or 'no'} user fields",
                           "name the one that makes a row the user's own, e.g. mine: owner" if users else
                           "name a path through a link, e.g. mine: customer.owner")
                return None
            return users[0]
        text = self.text(node, path)
        if text is None:
            return None
        current, parts = table, text.split(".")
        for n, part in enumerate(parts):
            spec = current.field(part) if current.has_field(part) else None
            last = n == len(parts) - 1
            if spec is None or (last and spec.type != "user") or (not last and spec.type != "link"):
                self.error(node, path, f"'{text}' does not lead to a user field",
                           "a user field of the table (owner), or links ending at one (customer.owner)")
                return None
            current = self.schema.table(spec.to) if spec.to and not last else current
        return text

    # -- parts -----------------------------------------------------------------------------

    def one_of(self, values: dict[str, Node], key: str, path: str, allowed: tuple[str, ...], what: str,
               parent: Node, required: bool = False) -> str | None:
        if key not in values:
            if required:
                self.error(parent, path, f"a report needs {key}:", f"{what}: {', '.join(allowed)}")
            return None
        text = self.text(values[key], f"{path}.{key}")
        if text is not None and text not in allowed:
            self.error(values[key], f"{path}.{key}", f"unknown {key} '{text}'", did_you_mean(text, allowed, what))
            return None
        return text

    def table_of(self, values: dict[str, Node], path: str, parent: Node) -> TableSpec | None:
        if "table" not in values:
            self.error(parent, path, "a report needs table:", "the key of the table it reports on, e.g. table: order")
            return None
        return self.known_table(values["table"], f"{path}.table")

    def known_table(self, node: Node, path: str) -> TableSpec | None:
        key = self.text(node, path)
        if key is None:
            return None
        known = [t.key for t in self.schema.tables]
        if key not in known:
            self.error(node, path, f"unknown table '{key}'", did_you_mean(key, known, "tables"))
            return None
        return self.schema.table(key)

    def field_key(self, node: Node, path: str, table: TableSpec, key: str | None = None,
                  through_links: bool = False) -> str | None:
        """Return a field key of `table` named by `node` (or `key`), reporting an unknown one; with
        `through_links`, also a field of a linked table (product.category)."""
        key = key if key is not None else self.text(node, path)
        if key is None:
            return None
        if key in SYSTEM_COLUMNS or table.has_field(key):
            return key
        link, dot, rest = key.partition(".")
        if through_links and dot and table.has_field(link) and table.field(link).type == "link":
            target = self.schema.table(table.field(link).to or "")
            if target.has_field(rest):
                return key
            self.error(node, path, f"table '{target.key}' (through {table.key}.{link}) has no field '{rest}'",
                       did_you_mean(rest, [f.key for f in target.fields], "fields"))
            return None
        if dot and table.has_field(link):
            self.error(node, path, f"'{link}' is not a link, so '{key}' leads nowhere",
                       "a dotted key follows a link field to the linked table, e.g. product.category")
            return None
        self.error(node, path, f"table '{table.key}' has no field '{key}'",
                   did_you_mean(key, [f.key for f in table.fields], "fields"))
        return None

    def fields_of(self, node: Node | None, path: str, table: TableSpec) -> tuple[str, ...]:
        if node is None:
            return ()
        keys = self.key_list(node, path)
        found = [self.field_key(node.value[i], f"{path}[{i}]", table, k) for i, k in enumerate(keys)]
        return tuple(k for k in found if k)

    def order(self, node: Node | None, path: str, table: TableSpec) -> tuple[str, ...]:
        if node is None:
            return ()
        if node.is_scalar and isinstance(node.value, str):
            node = Node([node], node.line, node.file)
        keys = self.key_list(node, path)
        found = [self.field_key(node.value[i], f"{path}[{i}]", table, k.removeprefix("-")) for i, k in enumerate(keys)]
        return tuple(k for k, ok in zip(keys, found, strict=True) if ok)

    def group_by(self, node: Node | None, path: str, table: TableSpec) -> str | None:
        return None if node is None else self.field_key(node, path, table)

    def numbers(self, node: Node | None, path: str, table: TableSpec) -> tuple[str, ...]:
        keys = self.fields_of(node, path, table)
        for i, key in enumerate(keys):
            self.numeric(node.value[i] if node is not None else Node(None, 0, ""), path + f"[{i}]", table, key,
                         "a total")
        return keys

    def numeric(self, node: Node, path: str, table: TableSpec, key: str, what: str) -> bool:
        spec = table.field(key) if table.has_field(key) else None
        if spec is None:
            return False
        if spec.type not in NUMERIC_TYPES:
            self.error(node, path, f"{what} over '{key}', a {spec.type} field, cannot be computed",
                       f"sum, avg, min and max take number fields ({', '.join(NUMERIC_TYPES)}); count counts rows")
            return False
        if spec.encrypted:
            self.error(node, path, f"{what} over '{key}' cannot be computed: the field is encrypted",
                       "encrypted values are not readable by the database; report on another field")
            return False
        return True

    def count(self, node: Node | None, path: str) -> int | None:
        if node is None:
            return None
        if isinstance(node.value, int) and not isinstance(node.value, bool) and node.value > 0:
            return node.value
        self.error(node, path, f"expected a whole number above 0, got {describe(node)}", "e.g. row_limit: 20000")
        return None

    def params(self, node: Node | None, path: str) -> tuple[ParamSpec, ...]:
        if node is None or not self.expect_map(node, path, "parameters, each under its key"):
            return ()
        found = []
        for key, item in node.value.items():
            ppath = f"{path}.{key}"
            if self.check_key(node, key, ppath, node.key_lines.get(key)):
                param = self.param(item, key, ppath)
                if param is not None:
                    found.append(param)
        return tuple(found)

    def param(self, node: Node, key: str, path: str) -> ParamSpec | None:
        if not self.expect_map(node, path, "a parameter like {type: date, default: today}"):
            return None
        self.unknown_keys(node, path, PARAM_KEYS, "parameter keys")
        values = node.value
        kind = self.one_of(values, "type", path, PARAM_TYPES, "parameter types", node, required=True)
        if kind is None:
            return None
        options = to = None
        if kind == "choice":
            options = self.text(values["options"], f"{path}.options") if "options" in values else None
            if options is None or options not in self.schema.choices:
                self.error(values.get("options", node), f"{path}.options", f"unknown option list '{options}'",
                           did_you_mean(str(options), sorted(self.schema.choices), "option lists"))
        if kind == "link":
            target = self.known_table(values["to"], f"{path}.to") if "to" in values else None
            if "to" not in values:
                self.error(node, path, "a link parameter needs to:", "the table it picks from, e.g. to: customer")
            to = target.key if target else None
        default = values["default"].value if "default" in values else None
        if default is not None:
            default = self.param_default(values["default"], f"{path}.default", kind, default, options)
        return ParamSpec(key, kind, self.label(values["label"], f"{path}.label") if "label" in values
                         else Label(key, key), default,
                         self.boolean(values["required"], f"{path}.required") if "required" in values else False,
                         options, to, node.line)

    def param_default(self, node: Node, path: str, kind: str, value: Any, options: str | None) -> Any:
        if kind == "date" and value not in DATE_DEFAULTS:
            self.error(node, path, f"'{value}' is not a date default", f"use one of {', '.join(DATE_DEFAULTS)}")
            return None
        if kind == "integer" and (not isinstance(value, int) or isinstance(value, bool)):
            self.error(node, path, f"expected a whole number, got {describe(node)}")
            return None
        if kind == "choice" and options in self.schema.choices and str(value) not in self.schema.choices[options].keys:
            self.error(node, path, f"'{value}' is not an option of {options}",
                       did_you_mean(str(value), self.schema.choices[options].keys, "options"))
            return None
        return value

    def conditions(self, node: Node | None, path: str, table: TableSpec,
                   params: tuple[ParamSpec, ...]) -> tuple[Condition, ...]:
        if node is None or not self.expect_map(node, path, "conditions like {status: {'!=': cancelled}}"):
            return ()
        found: list[Condition] = []
        for key, item in node.value.items():
            cpath = f"{path}.{key}"
            if self.field_key(item, cpath, table, key, through_links=True) is None:
                continue
            if not self.expect_map(item, cpath, "operators like {'>=': $from}"):
                continue
            for op, operand in item.value.items():
                if op not in OPERATORS:
                    self.error(item, f"{cpath}.{op}", f"unknown operator '{op}'",
                               did_you_mean(op, OPERATORS, "operators"), line=item.key_lines.get(op))
                    continue
                value = self.operand(operand, f"{cpath}.{op}", table, key, op, params)
                if value is not None:
                    found.append(Condition(key, op, value, operand.line))
        return tuple(found)

    def operand(self, node: Node, path: str, table: TableSpec, key: str, op: str,
                params: tuple[ParamSpec, ...]) -> Value | None:
        raw = node.plain()
        if isinstance(raw, str) and raw.startswith("$"):
            name = raw[1:]
            if name in BUILT_IN_VALUES and name not in [p.key for p in params]:
                return Value(param=name)
            if name not in [p.key for p in params]:
                self.error(node, path, f"parameter '{name}' is used but not declared",
                           did_you_mean(name, [p.key for p in params], "parameters")
                           + "; declare it under params:")
                return None
            return Value(param=name)
        if op == "empty" and not isinstance(raw, bool):
            self.error(node, path, f"empty takes true or false, got {describe(node)}")
            return None
        if op in ("in", "not_in") and not isinstance(raw, list):
            self.error(node, path, f"{op} takes a list like [paid, cancelled], got {describe(node)}")
            return None
        spec = field_at(self.schema, table, key)
        if spec is not None and spec.choices is not None and op not in ("empty", "within_days"):
            for option in raw if isinstance(raw, list) else [raw]:
                if str(option) not in spec.choices.keys:
                    self.error(node, path, f"'{option}' is not an option of {table.key}.{key}",
                               did_you_mean(str(option), spec.choices.keys, "options"))
                    return None
        return Value(literal=raw)

    def dimensions(self, node: Node | None, path: str, table: TableSpec, params: list[str]) -> tuple[Dimension, ...]:
        if node is None:
            return ()
        if not node.is_list:
            self.error(node, path, f"expected a list of dimensions, got {describe(node)}",
                       "e.g. group: [salesperson, {field: order_date, by: month}]")
            return ()
        found = []
        for i, item in enumerate(node.value):
            dimension = self.dimension(item, f"{path}[{i}]", table, params)
            if dimension is not None:
                found.append(dimension)
        if len(node.value) > 2:
            self.error(node, path, f"a summary groups by one or two dimensions, got {len(node.value)}",
                       "split it into two reports, or filter with where:")
        return tuple(found)

    def dimension(self, node: Node, path: str, table: TableSpec, params: list[str]) -> Dimension | None:
        if node.is_scalar:
            key = self.field_key(node, path, table, through_links=True)
            by = None
            values: dict[str, Node] = {}
        elif self.expect_map(node, path, "a dimension like {field: order_date, by: month}"):
            self.unknown_keys(node, path, ("field", "by", "as_of", "label"), "dimension keys")
            values = node.value
            key = (self.field_key(values["field"], f"{path}.field", table, through_links=True) if "field" in values
                   else None)
            if "field" not in values:
                self.error(node, path, "a dimension needs field:", "e.g. {field: order_date, by: month}")
            by = self.one_of(values, "by", path, DATE_STEPS, "steps", node)
        else:
            return None
        if key is None:
            return None
        spec = field_at(self.schema, table, key)
        kind = spec.type if spec is not None else "datetime"
        if by is not None and kind not in ("date", "datetime"):
            self.error(node, path, f"by: {by} takes a date field; '{key}' is a {kind} field",
                       "group a date by month, quarter, year or age")
        if spec is not None and spec.type in ("date", "datetime") and by is None:
            self.error(node, path, f"'{key}' is a date: say how to group it",
                       f"e.g. {{field: {key}, by: month}} (steps: {', '.join(DATE_STEPS)})")
        if spec is not None and (spec.encrypted or VALUE_TYPES[spec.type].name in ("text", "attachment")
                                 or spec.type == "multi_choice"):
            self.error(node, path, f"'{key}' ({spec.type}{', encrypted' if spec.encrypted else ''}) cannot be "
                       "grouped by", "group by a choice, a link, a user, a number or a date")
        as_of = Value(param=None)
        if "as_of" in values:
            raw = values["as_of"].plain()
            name = raw[1:] if isinstance(raw, str) and raw.startswith("$") else None
            if name is None or name not in params:
                self.error(values["as_of"], f"{path}.as_of", f"as_of names a date parameter, got {raw!r}",
                           "e.g. as_of: $as_of, with as_of: {type: date, default: today} under params:")
            as_of = Value(param=name)
        label = self.label(values["label"], f"{path}.label") if "label" in values else None
        return Dimension(key, by, as_of, label)

    def measures(self, node: Node | None, path: str, table: TableSpec) -> tuple[Measure, ...]:
        if node is None:
            return ()
        if not node.is_list:
            self.error(node, path, f"expected a list of measures, got {describe(node)}",
                       "e.g. measures: [{sum: total}, {count: true}]")
            return ()
        found = []
        for i, item in enumerate(node.value):
            mpath = f"{path}[{i}]"
            if not self.expect_map(item, mpath, "a measure like {sum: total, label: 金额}"):
                continue
            self.unknown_keys(item, mpath, (*MEASURES, "label"), "measure keys")
            functions = [k for k in item.value if k in MEASURES]
            if len(functions) != 1:
                self.error(item, mpath, "a measure names one function", f"one of {', '.join(MEASURES)}")
                continue
            function = functions[0]
            key = None
            if function != "count":
                key = self.field_key(item.value[function], f"{mpath}.{function}", table)
                if key is None or not self.numeric(item.value[function], f"{mpath}.{function}", table, key,
                                                   f"{function}"):
                    continue
            label = (self.label(item.value["label"], f"{mpath}.label") if "label" in item.value
                     else default_measure_label(table, function, key))
            found.append(Measure(function, key, label))
        return tuple(found)

    def chart(self, node: Node | None, path: str) -> ChartSpec | None:
        if node is None:
            return None
        if node.is_scalar:
            kind = self.text(node, path)
            if kind is not None and kind not in CHARTS:
                self.error(node, path, f"unknown chart '{kind}'", did_you_mean(kind, CHARTS, "charts"))
                return None
            return ChartSpec(kind) if kind else None
        if not self.expect_map(node, path, "a chart like {type: bar}"):
            return None
        self.unknown_keys(node, path, ("type", "measure"), "chart keys")
        kind = self.one_of(node.value, "type", path, CHARTS, "charts", node, required=True)
        measure = self.count(node.value["measure"], f"{path}.measure") if "measure" in node.value else 1
        return ChartSpec(kind, (measure or 1) - 1) if kind else None

    def sections(self, node: Node | None, path: str, table: TableSpec) -> tuple[SectionSpec, ...]:
        if node is None:
            return ()
        if not node.is_list:
            self.error(node, path, f"expected a list of child tables, got {describe(node)}",
                       "e.g. sections: [{table: contact, columns: [name, mobile]}]")
            return ()
        found = []
        for i, item in enumerate(node.value):
            spath = f"{path}[{i}]"
            if not self.expect_map(item, spath, "a section like {table: contact, columns: [name]}"):
                continue
            self.unknown_keys(item, spath, SECTION_KEYS, "section keys")
            child = self.known_table(item.value["table"], f"{spath}.table") if "table" in item.value else None
            if "table" not in item.value:
                self.error(item, spath, "a section needs table:", "a table that links to the record's table")
            if child is None:
                continue
            via = self.section_link(item, spath, child, table)
            if via is None:
                continue
            found.append(SectionSpec(
                child.key, via, self.fields_of(item.value.get("columns"), f"{spath}.columns", child)
                or tuple(child.list), self.order(item.value.get("order_by"), f"{spath}.order_by", child),
                self.numbers(item.value.get("totals"), f"{spath}.totals", child),
                self.label(item.value["label"], f"{spath}.label") if "label" in item.value else None))
        return tuple(found)

    def section_link(self, item: Node, path: str, child: TableSpec, parent: TableSpec) -> str | None:
        links = [f.key for f in child.fields if f.type == "link" and f.to == parent.key]
        if "via" in item.value:
            via = self.text(item.value["via"], f"{path}.via")
            if via is not None and via not in links:
                self.error(item.value["via"], f"{path}.via", f"'{via}' is not a link of {child.key} to {parent.key}",
                           did_you_mean(via, links, "links"))
                return None
            return via
        if len(links) != 1:
            self.error(item, path, f"table '{child.key}' has {len(links) or 'no'} links to '{parent.key}'",
                       "name the one to follow with via:" if links else "a section lists the records that link here")
            return None
        return links[0]

    def check_whole(self, spec: ReportSpec, node: Node, path: str, widget: str | None = None) -> None:
        """Check what takes the whole report: a summary's measures, a record's fields, totals among columns."""
        if spec.kind == "summary" and not spec.measures:
            self.error(node, path, "a summary needs measures:", "e.g. measures: [{sum: total}, {count: true}]")
        if widget == "chart" and spec.chart is None:
            self.error(node, path, "a chart widget needs chart:", "bar, stacked_bar, line or pie")
        if spec.kind == "summary" and not spec.dimensions and widget != "number":
            self.error(node, path, "a summary needs group:",
                       "e.g. group: [salesperson, {field: order_date, by: month}]")
        if spec.pivot and len(spec.dimensions) != 2:
            self.error(node, path, "pivot: true needs two dimensions under group:",
                       "the second dimension's values become the columns")
        if spec.chart is not None and spec.chart.measure >= max(len(spec.measures), 1):
            self.error(node, path, f"chart.measure is {spec.chart.measure + 1}, but the report has "
                       f"{len(spec.measures)} measures", "count the measures from 1")
        if spec.kind == "table" and not spec.columns:
            self.error(node, path, "a table report needs columns:", "e.g. columns: [number, customer, total]")
        for key in spec.totals:
            if key not in spec.columns:
                self.error(node, f"{path}.totals", f"total '{key}' is not one of the columns",
                           "add it to columns:")
        if spec.group_by and spec.group_by not in spec.columns:
            self.error(node, f"{path}.group_by", f"group_by '{spec.group_by}' is not one of the columns",
                       "add it to columns:")


def field_at(schema: SchemaSpec, table: TableSpec, key: str) -> FieldSpec | None:
    """Return the field a (checked) key names: a field of `table`, or of a linked one (product.category);
    None for the system columns."""
    link, dot, rest = key.partition(".")
    if dot:
        return schema.table(table.field(link).to or "").field(rest)
    return table.field(key) if table.has_field(key) else None


def default_measure_label(table: TableSpec, function: str, key: str | None) -> Label:
    """Return a measure's heading when the YAML gives none: 记录数 / 订单金额合计 / 满意度平均."""
    if key is None:
        return Label("记录数", "Records")
    label = table.field(key).label
    zh = {"sum": "合计", "avg": "平均", "min": "最小", "max": "最大"}[function]
    en = {"sum": "total", "avg": "average", "min": "lowest", "max": "highest"}[function]
    return Label(f"{label.zh}{zh}", f"{label.en} ({en})")


def _shown_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


__all__ = ["load_reports", "load_reports_text", "AGE_BUCKETS"]
