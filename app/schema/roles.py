"""The `roles:` section: who may do what with which table, field and row. Parsed and checked here;
enforced by app.security (one gate for every surface)."""
from __future__ import annotations

from typing import Any

from .issues import Issue
from .model import Label, RoleSpec, RowRule, SchemaSpec, TableGrant, TableSpec
from .parse import Parser, describe, did_you_mean
from .yamlsrc import Node

VERBS = ("read", "create", "update", "delete", "export", "import", "report", "reveal")
ROLE_KEYS = ("label", "extends", "tables", "help", "audit")
GRANT_KEYS = ("can", "rows", "hide", "readonly", "show_only")
BUILT_IN_ROLES = ("admin", "public")
FIELD_RULES = ("hide", "readonly", "show_only")


def collect_roles(roots: list[Node], parser: Parser) -> dict[str, RoleSpec]:
    """Return every role declared under `roles:` in any file (issues go to the parser)."""
    roles: dict[str, RoleSpec] = {}
    for root in roots:
        section = root.value.get("roles") if root.is_map else None
        if section is None or not parser.expect_map(section, "roles", "roles"):
            continue
        for key, node in section.value.items():
            path = f"roles.{key}"
            line = section.key_lines.get(key)
            if not parser.check_key(section, key, path, line):
                continue
            if key in BUILT_IN_ROLES:
                parser.error(node, path, f"'{key}' is a built-in role and cannot be declared",
                             "admin has every right; pick another key for your role", line=line)
                continue
            if key in roles:
                parser.error(node, path, f"role '{key}' is declared twice",
                             f"it is also declared in {roles[key].file}:{roles[key].line}", line=line)
                continue
            role = parse_role(parser, node, key, path)
            if role:
                roles[key] = role
    return roles


def parse_role(parser: Parser, node: Node, key: str, path: str) -> RoleSpec | None:
    if not parser.expect_map(node, path, "a role like {label: 销售, tables: {customer: {can: [read]}}}"):
        return None
    parser.unknown_keys(node, path, ROLE_KEYS, "role keys")
    values = node.value
    label = parser.label(values["label"], f"{path}.label") if "label" in values else Label(key, key)
    extends = names(parser, values["extends"], f"{path}.extends") if "extends" in values else ()
    if "help" in values:
        parser.label(values["help"], f"{path}.help")
    grants: dict[str, TableGrant] = {}
    if "tables" in values and parser.expect_map(values["tables"], f"{path}.tables", "tables with their grants"):
        tables = values["tables"]
        for table_key, grant_node in tables.value.items():
            grant = parse_grant(parser, grant_node, table_key, f"{path}.tables.{table_key}",
                                tables.key_lines.get(table_key, grant_node.line))
            if grant:
                grants[table_key] = grant
    audit = parser.boolean(values["audit"], f"{path}.audit") if "audit" in values else False
    return RoleSpec(key=key, label=label, extends=extends, tables=grants, audit=bool(audit), file=node.file,
                    line=node.line)


def names(parser: Parser, node: Node, path: str) -> tuple[str, ...]:
    """Return a list of keys, also accepting a single key."""
    if node.is_scalar and isinstance(node.value, str):
        return (node.value,)
    return parser.key_list(node, path)


def parse_grant(parser: Parser, node: Node, table_key: str, path: str, line: int) -> TableGrant | None:
    if not parser.expect_map(node, path, "a grant like {can: [read, update], rows: own}"):
        return None
    parser.unknown_keys(node, path, GRANT_KEYS, "grant keys")
    values = node.value
    can: tuple[str, ...] = ()
    if "can" not in values:
        parser.error(node, f"{path}.can", "a grant needs can: [verbs]", f"verbs: {', '.join(VERBS)}")
    elif values["can"].is_scalar and values["can"].value == "all":
        can = VERBS
    else:
        can = names(parser, values["can"], f"{path}.can")
        for verb in can:
            if verb not in VERBS:
                parser.error(values["can"], f"{path}.can", f"unknown verb '{verb}'", did_you_mean(verb, VERBS, "verbs"))
        can = tuple(v for v in can if v in VERBS)
    rows = parse_rows(parser, values["rows"], f"{path}.rows") if "rows" in values else RowRule("all")
    fields = {k: names(parser, values[k], f"{path}.{k}") for k in ("hide", "readonly", "show_only") if k in values}
    if "hide" in fields and "show_only" in fields:
        parser.error(values["show_only"], f"{path}.show_only", "hide and show_only cannot be used together",
                     "show_only lists the only fields shown; hide lists the fields not shown")
    lines = {k: values[k].line for k in values}
    return TableGrant(table=table_key, can=can, rows=rows, hide=fields.get("hide", ()),
                      readonly=fields.get("readonly", ()), show_only=fields.get("show_only"),
                      file=node.file, line=line, lines=lines)


def parse_rows(parser: Parser, node: Node, path: str) -> RowRule | None:
    """Return the row rule: all, own, {own: field.path}, or {field: [values]}."""
    if node.is_scalar and node.value in ("all", "own"):
        return RowRule(str(node.value))
    if node.is_map and len(node.value) == 1:
        (key, value), = node.value.items()
        if key == "own":
            target = parser.text(value, f"{path}.own")
            return RowRule("own", field=target) if target else None
        if value.is_list:
            return RowRule("values", field=key, values=tuple(str(v) for v in value.plain()))
        if value.is_map and set(value.value) == {"user"}:
            source = parser.text(value.value["user"], f"{path}.{key}.user")
            return RowRule("values", field=key, user_values=source) if source else None
        return RowRule("values", field=key, values=(str(value.plain()),))
    parser.error(node, path, f"expected a row rule, got {describe(node)}",
                 "write all, own, {own: salesperson}, {own: customer.owner}, {region: [华东, 华南]} "
                 "or {region: {user: staff.region}}")
    return None


def check_roles(schema: SchemaSpec) -> list[Issue]:
    """Return issues for grants naming unknown roles, tables or fields, and unusable row rules."""
    issues: list[Issue] = []
    for role in schema.roles.values():
        for parent in role.extends:
            if parent not in schema.roles:
                issues.append(Issue(role.file, role.line, f"roles.{role.key}.extends",
                                    f"there is no role '{parent}' to extend",
                                    did_you_mean(parent, sorted(schema.roles), "roles")))
        for grant in role.tables.values():
            issues += check_grant(schema, role, grant)
    issues += check_extends_cycles(schema)
    return issues


def check_grant(schema: SchemaSpec, role: RoleSpec, grant: TableGrant) -> list[Issue]:
    path = f"roles.{role.key}.tables.{grant.table}"
    tables = [t.key for t in schema.tables]
    if grant.table not in tables:
        return [Issue(grant.file, grant.line, path, f"there is no table '{grant.table}'",
                      did_you_mean(grant.table, tables, "tables"))]
    table = schema.table(grant.table)
    keys = [f.key for f in table.fields]
    issues = []
    for section in FIELD_RULES:
        for name in getattr(grant, section) or ():
            if name not in keys:
                issues.append(Issue(grant.file, grant.lines.get(section, grant.line), f"{path}.{section}",
                                    f"'{name}' is not a field of {grant.table}", did_you_mean(name, keys, "fields")))
    issues += check_field_rules(table, grant, path)
    if grant.rows is not None:
        issues += check_row_rule(schema, grant, path)
    return issues


def check_field_rules(table: TableSpec, grant: TableGrant, path: str) -> list[Issue]:
    """Return issues for field rules a role could not work with: a hidden title, or a required field
    the role must fill on create but may not see or write."""
    shown = grant.shown_fields(f.key for f in table.fields)
    section = "show_only" if grant.show_only is not None else "hide"
    issues = []
    if table.title not in shown:
        issues.append(Issue(grant.file, grant.lines.get(section, grant.line), f"{path}.{section}",
                            f"the title field '{table.title}' of {table.key} cannot be hidden",
                            "records are shown and picked by their title everywhere; hide other fields "
                            "or choose another title for the table"))
    if "create" not in grant.can:
        return issues
    users = [f.key for f in table.fields if f.type == "user"]
    own = grant.rows.field or (users[0] if users else "") if grant.rows and grant.rows.kind == "own" else ""
    for f in table.fields:
        # The user field of an own rule is filled with the creator (app.security.gate.assign_owner).
        needs_input = (f.required and f.default is None and not f.readonly and f.type != "boolean"
                       and f.key != own)
        if needs_input and (f.key not in shown or f.key in grant.readonly):
            rule = "readonly" if f.key in shown else section
            issues.append(Issue(grant.file, grant.lines.get(rule, grant.line), f"{path}.{rule}",
                                f"'{f.key}' is required, so a role that can create {table.key} records "
                                f"must be able to fill it", "give the field a default, let the role write it, "
                                "or take create out of can"))
    return issues


def check_row_rule(schema: SchemaSpec, grant: TableGrant, path: str) -> list[Issue]:
    rule = grant.rows
    assert rule is not None
    line = grant.lines.get("rows", grant.line)
    table = schema.table(grant.table)
    if rule.kind == "own":
        if rule.field is None:
            users = [f.key for f in table.fields if f.type == "user"]
            if len(users) != 1:
                return [Issue(grant.file, line, f"{path}.rows", f"rows: own needs to know which user field of "
                              f"{grant.table} means 'mine'", "write rows: {own: <field>}" + (
                                  f"; user fields: {', '.join(users)}" if users else
                                  "; through a link, e.g. {own: customer.owner}"))]
            return []
        problem = own_path_problem(schema, table, rule.field)
        return [Issue(grant.file, line, f"{path}.rows.own", problem[0], problem[1])] if problem else []
    if rule.kind == "values" and not table.has_field(rule.field or ""):
        keys = [f.key for f in table.fields]
        return [Issue(grant.file, line, f"{path}.rows", f"'{rule.field}' is not a field of {grant.table}",
                      did_you_mean(rule.field or "", keys, "fields"))]
    if rule.kind == "values" and table.field(rule.field or "").encrypted:
        return [Issue(grant.file, line, f"{path}.rows", f"'{rule.field}' is encrypted; rows cannot be chosen by it",
                      "choose rows by a field that is not encrypted")]
    if rule.kind == "values" and rule.user_values:
        problem = user_values_problem(schema, table.field(rule.field or ""), rule.user_values)
        return [Issue(grant.file, line, f"{path}.rows.{rule.field}.user", *problem)] if problem else []
    return []


def user_values_problem(schema: SchemaSpec, target: Any, source: str) -> tuple[str, str] | None:
    """Return (message, hint) when `source` is not a `<table>.<field>` whose table has one user field
    (saying whose row it is) and whose field holds the same kind of values as `target`."""
    hint = "write {region: {user: staff.region}}: a table with one user field, and its field holding the values"
    table_key, _, field_key = source.partition(".")
    tables = [t.key for t in schema.tables]
    if table_key not in tables or not field_key:
        return (f"'{source}' is not <table>.<field>", did_you_mean(table_key, tables, "tables") if field_key else hint)
    table = schema.table(table_key)
    if not table.has_field(field_key):
        return (f"'{field_key}' is not a field of {table_key}",
                did_you_mean(field_key, [f.key for f in table.fields], "fields"))
    users = [f.key for f in table.fields if f.type == "user"]
    if len(users) != 1:
        return (f"{table_key} needs exactly one user field to say whose row it is; it has {len(users)}", hint)
    spec = table.field(field_key)
    if target.type in ("multi_choice", "text", "attachment", "link", "user"):
        return f"rows cannot match the {target.type} field '{target.key}' against the user's values", hint
    if spec.type != target.type or (spec.choices and target.choices and spec.choices.keys != target.choices.keys):
        return (f"'{target.key}' is a {target.type} field but {source} is a {spec.type} field"
                + (" with other options" if spec.type == target.type else ""),
                "match fields of the same type and options")
    return None


def own_path_problem(schema: SchemaSpec, table: Any, dotted: str) -> tuple[str, str] | None:
    """Return (message, hint) when `dotted` does not lead through links to a user field."""
    current = table
    parts = dotted.split(".")
    for i, part in enumerate(parts):
        if not current.has_field(part):
            return (f"'{part}' is not a field of {current.key}",
                    did_you_mean(part, [f.key for f in current.fields], "fields"))
        spec = current.field(part)
        last = i == len(parts) - 1
        if last and spec.type != "user":
            return f"'{dotted}' ends at a {spec.type} field; own needs a user field", "e.g. {own: owner}"
        if not last:
            if spec.type != "link":
                return f"'{part}' is a {spec.type} field; only links lead to another table", ""
            current = schema.table(spec.to)
    return None


def check_extends_cycles(schema: SchemaSpec) -> list[Issue]:
    issues = []
    for role in schema.roles.values():
        seen: set[str] = set()
        todo = list(role.extends)
        while todo:
            parent = todo.pop()
            if parent == role.key:
                through = f" through {', '.join(sorted(seen))}" if seen else ""
                issues.append(Issue(role.file, role.line, f"roles.{role.key}.extends",
                                    f"role '{role.key}' extends itself{through}", "remove one of the extends"))
                break
            if parent in seen or parent not in schema.roles:
                continue
            seen.add(parent)
            todo.extend(schema.roles[parent].extends)
    return issues
