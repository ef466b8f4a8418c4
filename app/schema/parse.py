"""Turn YAML nodes into spec objects, collecting every problem with its file, line and path."""
from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import app.fields.values as field_values

from . import expressions
from .issues import Issue
from .model import ChoiceListSpec, FieldSpec, Label, OptionSpec, TableSpec
from .yamlsrc import Node, yaml_trap_hint

KEY_RE = re.compile(r"[a-z][a-z0-9_]*")
MAX_KEY_LENGTH = 63
TOP_LEVEL_KEYS = ("tables", "choices", "roles", "reminders")
TABLE_KEYS = ("label", "title", "fields", "list", "search", "filters", "order_by", "help", "icon", "renamed_from",
              "inline", "rules", "colors", "duplicates")
ON_DELETE = ("restrict", "cascade", "set_null")
SEARCHABLE_DEFAULT = ("string", "email", "phone", "cas_number", "uscc")
COLOR_RE = re.compile(r"#[0-9a-fA-F]{3}(?:[0-9a-fA-F]{3})?|[a-z]+")
# Column names the engine adds itself, or that Flask-AppBuilder's forms and URLs use.
RESERVED_FIELD_KEYS = ("id", "created_on", "changed_on", "created_by", "changed_by")


def did_you_mean(word: str, choices: list[str] | tuple[str, ...], what: str) -> str:
    """Return a hint naming the closest known word, followed by all known ones."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    known = ", ".join(choices)
    if close:
        return f"did you mean '{close[0]}'? known {what}: {known}"
    return f"known {what}: {known}"


@dataclass
class Parser:
    """Collects issues while converting nodes; one Parser reads all files of a schema."""

    issues: list[Issue] = field(default_factory=list)

    def error(self, node: Node, path: str, message: str, hint: str = "", line: int | None = None) -> None:
        self.issues.append(Issue(node.file, line or node.line, path, message, hint))

    def expect_map(self, node: Node, path: str, what: str) -> bool:
        if node.is_map:
            return True
        self.error(node, path, f"expected {what} (a mapping of key: value), got {describe(node)}")
        return False

    def unknown_keys(self, node: Node, path: str, allowed: tuple[str, ...] | frozenset[str], what: str) -> None:
        for key in node.value:
            if key not in allowed:
                self.error(node, f"{path}.{key}", f"unknown key '{key}'",
                           did_you_mean(key, sorted(allowed), what), line=node.key_lines.get(key))

    def named_entries(self, node: Node, path: str, what: str, read: Callable[[Node, str, str], Any]) -> list[Any]:
        """Return what `read(entry, key, path)` makes of each entry of a mapping of named items (rules,
        colour rules), skipping invalid keys and entries it cannot read (None); [] and a problem when
        `node` is no mapping."""
        if not self.expect_map(node, path, what):
            return []
        found = []
        for key, entry in node.value.items():
            entry_path = f"{path}.{key}"
            if self.check_key(node, key, entry_path, node.key_lines.get(key)):
                item = read(entry, key, entry_path)
                if item is not None:
                    found.append(item)
        return found

    def check_key(self, node: Node, key: str, path: str, line: int | None) -> bool:
        if KEY_RE.fullmatch(key) and len(key) <= MAX_KEY_LENGTH:
            return True
        fixed = re.sub(r"[^a-z0-9_]+", "_", key.lower()).strip("_") or "name"
        if not fixed[0].isalpha():
            fixed = "f_" + fixed
        self.error(node, path, f"'{key}' is not a valid key",
                   f"keys are lower_snake_case letters, digits and _, starting with a letter, at most "
                   f"{MAX_KEY_LENGTH} characters; put display text in label; e.g. '{fixed[:MAX_KEY_LENGTH]}'",
                   line=line)
        return False

    # -- scalars ---------------------------------------------------------------------------

    def text(self, node: Node, path: str) -> str | None:
        if isinstance(node.value, str):
            return node.value
        hint = yaml_trap_hint(node)
        self.error(node, path, f"expected text, got {describe(node)}", hint)
        return None

    def boolean(self, node: Node, path: str) -> bool:
        if isinstance(node.value, bool):
            return node.value
        self.error(node, path, f"expected true or false, got {describe(node)}")
        return False

    def label(self, node: Node, path: str, fallback: str = "") -> Label:
        if node.is_map:
            self.unknown_keys(node, path, ("zh", "en"), "label languages")
            zh = self.text(node.value["zh"], f"{path}.zh") if "zh" in node.value else ""
            en = self.text(node.value["en"], f"{path}.en") if "en" in node.value else ""
            if not (zh or en):
                self.error(node, path, "a label needs zh or en text", "e.g. label: {zh: 客户, en: Customer}")
            return Label(zh or en or fallback, en or zh or fallback)
        value = self.text(node, path)
        return Label(value or fallback, value or fallback)

    def renamed_from(self, values: dict[str, Node], path: str) -> str | None:
        """Return the old key a table or field declares it was renamed from, if any."""
        if "renamed_from" not in values:
            return None
        old = self.text(values["renamed_from"], f"{path}.renamed_from")
        if old is not None and not (KEY_RE.fullmatch(old) and len(old) <= MAX_KEY_LENGTH):
            self.error(values["renamed_from"], f"{path}.renamed_from", f"'{old}' is not a valid key",
                       "write the key the table or field had before, e.g. renamed_from: purity")
            return None
        return old

    def key_list(self, node: Node, path: str) -> tuple[str, ...]:
        if not node.is_list:
            self.error(node, path, f"expected a list of field keys like [name, status], got {describe(node)}")
            return ()
        keys = [self.text(item, f"{path}[{i}]") for i, item in enumerate(node.value)]
        return tuple(k for k in keys if k is not None)

    # -- choices ---------------------------------------------------------------------------

    def choice_list(self, node: Node, key: str, path: str) -> ChoiceListSpec | None:
        if not node.is_list or not node.value:
            self.error(node, path, f"expected a non-empty list of options, got {describe(node)}",
                       "e.g. - {key: active, label: {zh: 合作中, en: Active}, color: '#52c41a'}")
            return None
        options: list[OptionSpec] = []
        seen: set[str] = set()  # a set: lists of thousands of options are checked in linear time
        for i, item in enumerate(node.value):
            option = self.option(item, f"{path}[{i}]")
            if option and option.key in seen:
                self.error(item, f"{path}[{i}].key", f"duplicate option key '{option.key}'",
                           "each option of a list needs its own key")
            elif option:
                options.append(option)
                seen.add(option.key)
        return ChoiceListSpec(key, tuple(options), node.file, node.line)

    def option(self, node: Node, path: str) -> OptionSpec | None:
        if node.is_scalar and isinstance(node.value, str):
            return OptionSpec(node.value, Label(node.value, node.value))
        if not self.expect_map(node, path, "an option like {key: A, label: A类, color: '#f5222d'}"):
            if node.is_scalar and yaml_trap_hint(node):
                self.issues[-1] = Issue(node.file, node.line, path, self.issues[-1].message, yaml_trap_hint(node))
            return None
        self.unknown_keys(node, path, ("key", "label", "color"), "option keys")
        values = node.value
        if "key" not in values:
            self.error(node, path, "an option needs a key", "e.g. {key: active, label: 合作中}")
            return None
        key_node = values["key"]
        key = key_node.value if isinstance(key_node.value, str) else None
        if key is None:
            hint = yaml_trap_hint(key_node)
            if isinstance(key_node.value, int) and not isinstance(key_node.value, bool) and not hint:
                key = str(key_node.value)
            else:
                self.error(key_node, f"{path}.key", f"expected text, got {describe(key_node)}", hint)
                return None
        if len(key) > 64:
            self.error(key_node, f"{path}.key", "an option key has at most 64 characters")
        label = self.label(values["label"], f"{path}.label") if "label" in values else Label(key, key)
        color = None
        if "color" in values and values["color"].value is None:
            self.error(values["color"], f"{path}.color", "the colour is empty",
                       "quote hex colours, e.g. color: '#52c41a' (an unquoted # starts a comment)")
        elif "color" in values:
            color = self.text(values["color"], f"{path}.color")
            if color is not None and not COLOR_RE.fullmatch(color):
                self.error(values["color"], f"{path}.color", f"'{color}' is not a colour",
                           "use a hex colour in quotes like '#52c41a' (unquoted, # starts a comment) "
                           "or a CSS name like green")
                color = None
        return OptionSpec(key, label, color)

    # -- tables and fields -----------------------------------------------------------------

    def table(self, node: Node, key: str, path: str, choices: dict[str, ChoiceListSpec]) -> TableSpec | None:
        if not self.expect_map(node, path, "a table"):
            return None
        self.unknown_keys(node, path, TABLE_KEYS, "table keys")
        values = node.value
        label = self.label(values["label"], f"{path}.label") if "label" in values else Label(key, key)
        fields: list[FieldSpec] = []
        if "fields" not in values:
            self.error(node, path, "a table needs fields", "e.g. fields: {name: {type: string}}")
        elif self.expect_map(values["fields"], f"{path}.fields", "the fields of the table"):
            fnode = values["fields"]
            for fkey, field_node in fnode.value.items():
                fpath = f"{path}.fields.{fkey}"
                if self.check_key(fnode, fkey, fpath, fnode.key_lines.get(fkey)):
                    spec = self.field(field_node, fkey, fpath, choices, key)
                    if spec:
                        fields.append(spec)
        field_keys = [f.key for f in fields]
        first_text = next((f.key for f in fields if f.type in ("string", "uscc", "email", "cas_number")),
                          field_keys[0] if field_keys else "id")
        title = first_text
        if "title" in values:
            title = self.text(values["title"], f"{path}.title") or first_text
        shown = tuple(k for k in field_keys if field_values.VALUE_TYPES[fields[field_keys.index(k)].type].name
                      not in ("text", "attachment"))[:6]
        return TableSpec(
            key=key, label=label, fields=tuple(fields), title=title,
            list=self.key_list(values["list"], f"{path}.list") if "list" in values else shown,
            search=(self.key_list(values["search"], f"{path}.search") if "search" in values
                    else tuple(k for k in (title,) if k in field_keys and
                               fields[field_keys.index(k)].type in SEARCHABLE_DEFAULT)),
            filters=self.key_list(values["filters"], f"{path}.filters") if "filters" in values else (),
            inline=self.key_list(values["inline"], f"{path}.inline") if "inline" in values else (),
            order_by=self.text(values["order_by"], f"{path}.order_by") if "order_by" in values else None,
            help=self.label(values["help"], f"{path}.help") if "help" in values else None,
            icon=(self.text(values["icon"], f"{path}.icon") or "fa-table") if "icon" in values else "fa-table",
            renamed_from=self.renamed_from(values, path),
            rules=self.rules(values["rules"], key, f"{path}.rules") if "rules" in values else (),
            colors=self.colours(values["colors"], key, f"{path}.colors") if "colors" in values else (),
            duplicates=self.key_list(values["duplicates"], f"{path}.duplicates") if "duplicates" in values else (),
            file=node.file, line=node.line, lines=dict(node.key_lines),
        )

    def rules(self, node: Node, table_key: str, path: str) -> tuple[Any, ...]:
        from .rules import parse_rules  # the rules module reads with this parser
        return parse_rules(self, node, table_key, path)

    def colours(self, node: Node, table_key: str, path: str) -> tuple[Any, ...]:
        from .colours import parse_colours  # as rules
        return parse_colours(self, node, table_key, path)

    def field(self, node: Node, key: str, path: str, choices: dict[str, ChoiceListSpec],
              table_key: str) -> FieldSpec | None:
        if node.is_scalar and isinstance(node.value, str):
            node = Node({"type": node}, node.line, node.file, key_lines={"type": node.line})
        if not self.expect_map(node, path, "a field like {type: string, label: 名称}"):
            return None
        values = node.value
        if "type" not in values:
            self.error(node, f"{path}.type", "a field needs a type",
                       did_you_mean("", sorted(field_values.VALUE_TYPES), "types"))
            return None
        type_name = self.text(values["type"], f"{path}.type")
        if type_name is None:
            return None
        if type_name not in field_values.VALUE_TYPES:
            self.error(values["type"], f"{path}.type", f"unknown field type '{type_name}'",
                       did_you_mean(type_name, sorted(field_values.VALUE_TYPES), "types"))
            return None
        vtype = field_values.VALUE_TYPES[type_name]
        self.unknown_keys(node, path, vtype.allowed_keys(), f"keys for a {type_name} field")
        attrs: dict[str, Any] = {"key": key, "type": type_name, "file": node.file, "line": node.line,
                                 "label": self.label(values["label"], f"{path}.label") if "label" in values
                                 else Label(key, key)}
        for flag in ("required", "unique", "readonly", "index", "encrypted", "searchable"):
            if flag in values:
                attrs[flag] = self.boolean(values[flag], f"{path}.{flag}")
        if attrs.get("searchable") and not attrs.get("encrypted"):
            self.error(values["searchable"], f"{path}.searchable", "searchable applies to encrypted fields",
                       "add encrypted: true, or remove searchable (plain fields are searchable anyway)")
        for flag in ("unique", "index"):
            if attrs.get("encrypted") and attrs.get(flag):
                cannot = "unique" if flag == "unique" else "indexed"
                self.error(values[flag], f"{path}.{flag}", f"an encrypted field cannot be {cannot}",
                           "the database only sees ciphertext; use searchable: true for exact-match search")
        if attrs.get("unique") and not vtype.can_be_unique:
            self.error(values["unique"], f"{path}.unique", f"a field of type {type_name} cannot be unique")
        if attrs.get("index") and not vtype.can_be_indexed:
            self.error(values["index"], f"{path}.index", f"a field of type {type_name} cannot be indexed")
        if "help" in values:
            attrs["help"] = self.label(values["help"], f"{path}.help")
        if "aliases" in values:
            attrs["aliases"] = self.aliases(values["aliases"], f"{path}.aliases")
        attrs["renamed_from"] = self.renamed_from(values, path)
        if "pattern_message" in values:
            attrs["pattern_message"] = self.label(values["pattern_message"], f"{path}.pattern_message")
        self.field_details(values, path, type_name, attrs, choices, table_key)
        if "compute" in values:
            self.field_compute(values, path, attrs)
        if "default_from" in values:
            self.field_default_from(values, path, attrs)
        spec = FieldSpec(**attrs)
        if "default" in values and not spec.is_computed:
            spec = self.field_default(values["default"], f"{path}.default", spec)
        return spec

    def field_compute(self, values: dict[str, Node], path: str, attrs: dict[str, Any]) -> None:
        """Read `compute:` into attrs (its text and tree); a computed field takes no input rules."""
        node = values["compute"]
        source = node.value if isinstance(node.value, (str, int, float)) and not isinstance(node.value, bool) else None
        if source is None:
            self.error(node, f"{path}.compute", f"expected an expression, got {describe(node)}",
                       "e.g. compute: quantity * unit_price, or compute: sum(order_line.amount)")
            return
        try:
            attrs["computed"] = expressions.parse_compute(str(source))
        except expressions.ExpressionError as exc:
            self.error(node, f"{path}.compute", f"{exc.message} (at character {exc.position + 1} of '{source}')",
                       exc.hint or "see docs/schema.md, Computed fields")
            return
        attrs["compute"] = expressions.normalised(str(source))
        for key in ("required", "default", "unique", "readonly", "encrypted", "default_from"):
            if key in values and (key == "default" or values[key].value not in (False, None)):
                self.error(values[key], f"{path}.{key}", f"a computed field cannot have {key}",
                           "its value always comes from compute:; remove " + key, line=values[key].line)

    def field_default_from(self, values: dict[str, Node], path: str, attrs: dict[str, Any]) -> None:
        node = values["default_from"]
        text = self.text(node, f"{path}.default_from")
        if text is None:
            return
        if not re.fullmatch(r"[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*", text):
            self.error(node, f"{path}.default_from", f"'{text}' is not a link and a field",
                       "write the link field of this table and a field of the linked table, e.g. "
                       "default_from: product.unit_price")
            return
        attrs["default_from"] = text

    def field_details(self, values: dict[str, Node], path: str, type_name: str, attrs: dict[str, Any],
                      choices: dict[str, ChoiceListSpec], table_key: str) -> None:
        probe = FieldSpec(key=attrs["key"], type=type_name, label=attrs["label"])
        if "max_length" in values:
            n = values["max_length"]
            if isinstance(n.value, int) and not isinstance(n.value, bool) and 1 <= n.value <= 10000:
                attrs["max_length"] = n.value
            else:
                self.error(n, f"{path}.max_length", f"expected a whole number from 1 to 10000, got {describe(n)}")
        if "scale" in values:
            n = values["scale"]
            if isinstance(n.value, int) and not isinstance(n.value, bool) and 0 <= n.value <= 10:
                attrs["scale"] = n.value
            else:
                self.error(n, f"{path}.scale", f"expected a whole number from 0 to 10, got {describe(n)}")
        for bound in ("min", "max"):
            if bound in values:
                value, problems = field_values.validate_value(values[bound].value, probe)
                if problems or value is None:
                    self.error(values[bound], f"{path}.{bound}",
                               f"{bound} {describe(values[bound])} is not a valid {type_name} value")
                else:
                    attrs[bound] = value
        if "pattern" in values:
            self.field_pattern(values["pattern"], f"{path}.pattern", attrs)
        if "options" in values:
            attrs["choices"] = self.field_options(values["options"], f"{path}.options", choices, path)
        elif type_name in ("choice", "multi_choice"):
            self.error(values["type"], f"{path}.options", f"a {type_name} field needs options",
                       "name a list from choices: (options: customer_status) or list them inline")
        if type_name == "link":
            if "to" in values:
                attrs["to"] = self.text(values["to"], f"{path}.to")
            else:
                self.error(values["type"], f"{path}.to", "a link field needs 'to: <table>'",
                           f"e.g. to: customer (the table that {table_key} rows point at)")
        if "accept" in values:
            attrs["accept"] = self.file_types(values["accept"], f"{path}.accept")
        if "match" in values:
            attrs["match"] = self.text(values["match"], f"{path}.match")
        if "roles" in values:
            attrs["roles"] = self.key_list(values["roles"], f"{path}.roles")
        if "on_delete" in values:
            rule = self.text(values["on_delete"], f"{path}.on_delete")
            if rule in ON_DELETE:
                attrs["on_delete"] = rule
            elif rule is not None:
                self.error(values["on_delete"], f"{path}.on_delete", f"unknown on_delete rule '{rule}'",
                           did_you_mean(rule, ON_DELETE, "rules"))

    def aliases(self, node: Node, path: str) -> tuple[str, ...]:
        """Return the other headings a file may give a field's column ([客户名称, 单位名称])."""
        hint = "e.g. aliases: [客户名称, 单位名称, 企业名称]"
        if not node.is_list or not node.value:
            self.error(node, path, f"expected a list of headings, got {describe(node)}", hint)
            return ()
        found: list[str] = []
        for i, item in enumerate(node.value):
            text = item.value if isinstance(item.value, (str, int)) and not isinstance(item.value, bool) else None
            if text is None or not str(text).strip():
                self.error(item, f"{path}[{i}]", f"expected a heading (text), got {describe(item)}", hint)
            elif str(text).strip() not in found:
                found.append(str(text).strip())
        return tuple(found)

    def file_types(self, node: Node, path: str) -> tuple[str, ...]:
        """Return an attachment's accepted extensions ([pdf, xlsx]), lower case and without dots."""
        hint = "e.g. accept: [pdf, jpg, png, xlsx]"
        if not node.is_list or not node.value:
            self.error(node, path, f"expected a list of file extensions, got {describe(node)}", hint)
            return ()
        found: list[str] = []
        for i, item in enumerate(node.value):
            text = self.text(item, f"{path}[{i}]")
            if text is None:
                continue
            extension = text.strip().lower().lstrip(".")
            if not re.fullmatch(r"[a-z0-9]{1,10}", extension):
                self.error(item, f"{path}[{i}]", f"'{text}' is not a file extension", hint)
            elif extension not in found:
                found.append(extension)
        return tuple(found)

    def field_pattern(self, node: Node, path: str, attrs: dict[str, Any]) -> None:
        pattern = self.text(node, path)
        if pattern is None:
            return
        try:
            re.compile(pattern)
            attrs["pattern"] = pattern
        except re.error as exc:
            self.error(node, path, f"invalid regular expression: {exc}",
                       "write the pattern in single quotes so YAML keeps backslashes")

    def field_options(self, node: Node, path: str, choices: dict[str, ChoiceListSpec],
                      field_path: str) -> ChoiceListSpec | None:
        if node.is_scalar and isinstance(node.value, str):
            if node.value in choices:
                return choices[node.value]
            self.error(node, path, f"there is no option list '{node.value}' under choices:",
                       did_you_mean(node.value, sorted(choices), "option lists") if choices
                       else "declare it under choices: or list the options inline")
            return None
        return self.choice_list(node, field_path, path)

    def field_default(self, node: Node, path: str, spec: FieldSpec) -> FieldSpec:
        if spec.is_relation or spec.type == "attachment":
            self.error(node, path, f"a field of type {spec.type} cannot have a default")
            return spec
        if (spec.type, node.value) in (("date", "today"), ("datetime", "today"), ("datetime", "now")):
            return _replace(spec, default=node.value)
        if spec.type == "multi_choice" and node.is_list:
            node = Node(node.plain(), node.line, node.file)
        if spec.choices is None and spec.type in ("choice", "multi_choice"):
            return spec
        value, problems = field_values.validate_value(node.value, spec)
        if problems:
            options = spec.choices.keys if spec.choices else ()
            hint = yaml_trap_hint(node)
            if spec.type in ("choice", "multi_choice"):
                shown = node.raw if node.raw is not None else node.value
                self.error(node, path, f"default '{shown}' is not one of the options",
                           hint or did_you_mean(str(shown), options, "options"))
            else:
                self.error(node, path, f"default {describe(node)} is not valid: {problems[0].en}", hint)
            return spec
        return _replace(spec, default=value)


def _replace(spec: FieldSpec, **changes: Any) -> FieldSpec:
    from dataclasses import replace
    return replace(spec, **changes)


def describe(node: Node) -> str:
    """Return a short description of a node's value for messages: type and quoted value."""
    if node.is_map:
        return "a mapping"
    if node.is_list:
        return "a list"
    value = node.value
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}" + (f" (written {node.raw})" if node.raw else "")
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return repr(str(value))
