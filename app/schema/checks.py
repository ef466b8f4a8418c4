"""Checks across tables and files: links, title/list/search names, collisions. Each returns issues."""
from __future__ import annotations

from typing import Any

from . import expressions, naming
from .issues import Issue
from .model import FieldSpec, SchemaSpec, TableSpec
from .parse import RESERVED_FIELD_KEYS, did_you_mean

SEARCHABLE_TYPES = ("string", "text", "email", "phone", "url", "cas_number", "uscc", "choice")
RESERVED_TABLE_PREFIXES = ("ab_", "alembic", "crm_")


def check_schema(schema: SchemaSpec) -> list[Issue]:
    """Return every cross-reference problem in `schema`."""
    issues: list[Issue] = []
    if not schema.tables:
        issues.append(Issue(schema.source_dir or "schema", 0, "tables", "the schema declares no tables",
                            "add a file like schema/customer.yaml with a tables: section"))
    for table in schema.tables:
        issues += check_table_name(table)
        issues += check_field_keys(table)
        issues += check_aliases(table)
        issues += check_links(table, schema)
        issues += check_field_lists(table, schema)
        issues += check_duplicates(table)
        issues += check_renames(table.key, table.fields, f"tables.{table.key}.fields")
    issues += check_renames("the schema", schema.tables, "tables")
    issues += check_computes(schema)
    issues += check_picks(schema)
    issues += check_inline(schema)
    return issues


def check_renames(owner: str, items: tuple[Any, ...], path: str) -> list[Issue]:
    """Return issues for renamed_from keys that are still in use or claimed twice.

    `items` are the fields of a table, or the tables of the schema.
    """
    issues = []
    keys = {item.key for item in items}
    claimed: dict[str, str] = {}
    for item in items:
        old = item.renamed_from
        if old is None:
            continue
        where = f"{path}.{item.key}.renamed_from"
        if old == item.key:
            issues.append(Issue(item.file, item.line, where, f"'{item.key}' cannot be renamed from itself",
                                "remove renamed_from, or write the key it had before"))
        elif old in keys:
            issues.append(Issue(item.file, item.line, where, f"'{old}' is still declared in {owner}",
                                f"remove '{old}' (its data moves to '{item.key}'), or drop renamed_from"))
        elif old in claimed:
            issues.append(Issue(item.file, item.line, where, f"'{old}' is already renamed to '{claimed[old]}'",
                                "only one field can take over the old data"))
        claimed.setdefault(old, item.key)
    return issues


def check_table_name(table: TableSpec) -> list[Issue]:
    if table.key.startswith(RESERVED_TABLE_PREFIXES):
        return [Issue(table.file, table.line, f"tables.{table.key}",
                      f"table key '{table.key}' uses a prefix reserved for the system's own tables",
                      "do not start a table key with " + ", ".join(RESERVED_TABLE_PREFIXES))]
    return []


def check_field_keys(table: TableSpec) -> list[Issue]:
    issues = []
    columns: dict[str, str] = {}
    for f in table.fields:
        path = f"tables.{table.key}.fields.{f.key}"
        if f.key in RESERVED_FIELD_KEYS or f.key == naming.VERSION_COLUMN:
            issues.append(Issue(f.file, f.line, path, f"'{f.key}' is reserved for the system",
                                f"rename the field, e.g. '{table.key}_{f.key}'"))
            continue
        column = naming.column_name_for(f)
        if len(column) > 63:
            issues.append(Issue(f.file, f.line, path, f"its database column '{column}' is longer than 63 characters, "
                                "the limit of PostgreSQL and MariaDB", f"shorten the key to at most "
                                f"{63 - len(column) + len(f.key)} characters"))
        if column in columns:
            issues.append(Issue(f.file, f.line, path,
                                f"its database column '{column}' collides with field '{columns[column]}'",
                                "rename one of the two fields"))
        columns[column] = f.key
    return issues


def check_aliases(table: TableSpec) -> list[Issue]:
    """Return issues for a label or alias that another field of the table is already called (by key,
    label or alias): an imported column headed so could not be told apart."""
    issues = []
    owner: dict[str, str] = {}
    for f in table.fields:
        owner.setdefault(naming.heading_key(f.key), f.key)
    names = [(f, "label", name) for f in table.fields for name in (f.label.zh, f.label.en)]
    names += [(f, "alias", alias) for f in table.fields for alias in f.aliases]  # labels first: they win
    for f, kind, name in names:
        other = owner.setdefault(naming.heading_key(name), f.key)
        if other == f.key:
            continue
        place = f"tables.{table.key}.fields.{f.key}.{'aliases' if kind == 'alias' else 'label'}"
        issues.append(Issue(f.file, f.line, place,
                            f"the {kind} '{name}' already names the field '{other}'",
                            "an imported column with this heading could not be told apart; "
                            + ("remove the alias or rename it" if kind == "alias" else "change the label")))
    return issues


def check_links(table: TableSpec, schema: SchemaSpec) -> list[Issue]:
    issues = []
    keys = [t.key for t in schema.tables]
    for f in table.fields:
        path = f"tables.{table.key}.fields.{f.key}"
        if f.type == "link" and f.to and f.to not in keys:
            issues.append(Issue(f.file, f.line, f"{path}.to", f"links to a table '{f.to}' that does not exist",
                                did_you_mean(f.to, keys, "tables")))
        if f.is_relation and f.on_delete == "set_null" and f.required:
            issues.append(Issue(f.file, f.line, f"{path}.on_delete",
                                "on_delete: set_null cannot work on a required field",
                                "use restrict or cascade, or make the field optional"))
        if f.is_relation and f.on_delete == "cascade" and f.type == "user":
            issues.append(Issue(f.file, f.line, f"{path}.on_delete",
                                "on_delete: cascade is not allowed on a user field (deleting a login "
                                "would delete business records)", "use restrict or set_null"))
    return issues


def check_search_path(schema: SchemaSpec, table: TableSpec, path: str) -> list[Issue]:
    """`search: [customer.name]`: a link of the table, then a searchable field of the linked table."""
    where = (table.file, table.line_of("search"), f"tables.{table.key}.search")
    link_key, _, target_key = path.partition(".")
    links = [f.key for f in table.fields if f.type == "link"]
    if link_key not in links or "." in target_key:
        return [Issue(*where, f"'{path}' is not a link and a field of the linked table",
                      did_you_mean(link_key, links, "links") if links else "write link.field, e.g. customer.name")]
    target_key_table = table.field(link_key).to or ""
    if target_key_table not in [t.key for t in schema.tables]:
        return []
    target = schema.table(target_key_table)
    keys = [f.key for f in target.fields]
    if target_key not in keys:
        return [Issue(*where, f"'{target_key}' is not a field of {target.key}",
                      did_you_mean(target_key, keys, "fields"))]
    spec = target.field(target_key)
    if spec.type not in SEARCHABLE_TYPES or (spec.encrypted and not spec.searchable):
        return [Issue(*where, f"{target.key}.{target_key} is a {spec.type} field that keyword search cannot look in",
                      "name a text field of the linked table, e.g. customer.name")]
    return []


def check_field_lists(table: TableSpec, schema: SchemaSpec) -> list[Issue]:
    issues = []
    keys = [f.key for f in table.fields]
    base = f"tables.{table.key}"
    if table.title not in keys and "title" in table.lines:
        issues.append(Issue(table.file, table.line_of("title"), f"{base}.title", f"title names a field '{table.title}' "
                            "that the table does not have", did_you_mean(table.title, keys, "fields")))
    for section, names in (("list", table.list), ("search", table.search), ("filters", table.filters)):
        for name in names:
            if section == "search" and "." in name:
                issues += check_search_path(schema, table, name)
                continue
            if name not in keys:
                issues.append(Issue(table.file, table.line_of(section), f"{base}.{section}",
                                    f"'{name}' is not a field of {table.key}", did_you_mean(name, keys, "fields")))
            elif section == "search" and table.field(name).type not in SEARCHABLE_TYPES:
                issues.append(Issue(table.file, table.line_of("search"), f"{base}.search",
                                    f"'{name}' is a {table.field(name).type} field; keyword search works on "
                                    "text fields", "put it under filters: instead"))
            elif section in ("search", "filters") and table.field(name).encrypted and not table.field(name).searchable:
                issues.append(Issue(table.file, table.line_of(section), f"{base}.{section}",
                                    f"'{name}' is encrypted and not searchable", "add searchable: true to the "
                                    "field (exact match only), or take it out of " + section))
    if table.title in keys and table.field(table.title).encrypted:
        issues.append(Issue(table.file, table.line_of("title"), f"{base}.title", f"the title '{table.title}' "
                            "cannot be encrypted: records are shown and picked by their title everywhere",
                            "choose another title field, or do not encrypt this one"))
    if table.order_by:
        name = table.order_by.lstrip("-")
        if name in keys and table.field(name).encrypted:
            issues.append(Issue(table.file, table.line_of("order_by"), f"{base}.order_by", f"'{name}' is encrypted; "
                                "lists cannot be sorted by it", "sort by another field"))
        if name not in keys:
            issues.append(Issue(table.file, table.line_of("order_by"), f"{base}.order_by",
                                f"'{name}' is not a field of {table.key}",
                                "write a field key, with a leading - for newest first, e.g. order_by: -date"))
    return issues



NUMERIC_TYPES = ("integer", "decimal", "money", "percent", "rating")
COMPUTE_HINT = "see docs/schema.md, Computed fields"


def check_inline(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of `inline:`: each entry a table with exactly one link to this one."""
    issues = []
    keys = [t.key for t in schema.tables]
    for table in schema.tables:
        where = (table.file, table.line_of("inline"), f"tables.{table.key}.inline")
        for child in table.inline:
            if child not in keys:
                issues.append(Issue(*where, f"'{child}' is not a table", did_you_mean(child, keys, "tables")))
                continue
            links = [f.key for f in schema.table(child).fields if f.type == "link" and f.to == table.key]
            if len(links) != 1:
                issues.append(Issue(*where, f"{child} has {'no link' if not links else 'several links'} to "
                                    f"{table.key}" + (f" ({', '.join(links)})" if links else ""),
                                    "an inline table has exactly one link to the table whose form holds it"))
    return issues


def check_picks(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of `match:` on links and `roles:` on user fields."""
    issues = []
    roles = ["admin", *schema.roles]
    for table in schema.tables:
        for f in table.fields:
            base = f"tables.{table.key}.fields.{f.key}"
            for role in f.roles:
                if role not in roles:
                    issues.append(Issue(f.file, f.line, f"{base}.roles", f"there is no role '{role}'",
                                        did_you_mean(role, roles, "roles")))
            if f.match and f.to in [t.key for t in schema.tables]:
                issues += check_match(schema, table, f, f"{base}.match")
    return issues


def check_match(schema: SchemaSpec, table: TableSpec, f: FieldSpec, path: str) -> list[Issue]:
    """`match: customer` on order.contact: both order and contact have a link `customer` to one table."""
    target = schema.table(f.to or "")
    mine = [g.key for g in table.fields if g.type == "link" and g.key != f.key]
    if f.match not in mine:
        return [Issue(f.file, f.line, path, f"'{f.match}' is not a link field of {table.key}",
                      did_you_mean(f.match or "", mine, "links") if mine else "match names a link both tables have")]
    theirs = target.field(f.match) if target.has_field(f.match or "") else None
    if theirs is None or theirs.type != "link" or theirs.to != table.field(f.match or "").to:
        return [Issue(f.file, f.line, path, f"{target.key} has no link '{f.match}' to "
                      f"{table.field(f.match or '').to}, so its records cannot be matched by it",
                      f"match names a link that {table.key} and {target.key} both have")]
    return []


def check_computes(schema: SchemaSpec) -> list[Issue]:
    """Return the problems of every `compute:` and `default_from:` of the schema: unknown tables and
    fields, fields that hold no number, aggregates over tables that do not link here, and cycles."""
    issues: list[Issue] = []
    for table in schema.tables:
        for f in table.fields:
            if f.computed is not None:
                issues += check_compute(schema, table, f)
            if f.default_from:
                issues += check_default_from(schema, table, f)
    return issues + check_compute_cycles(schema)


def compute_issue(f: FieldSpec, table: TableSpec, message: str, hint: str = COMPUTE_HINT) -> Issue:
    return Issue(f.file, f.line, f"tables.{table.key}.fields.{f.key}.compute", message, hint)


def check_compute(schema: SchemaSpec, table: TableSpec, f: FieldSpec) -> list[Issue]:
    issues = []
    for ref in expressions.own_fields(f.computed):
        issues += check_number_field(table, ref.key, f, table, "")
    for aggregate in expressions.aggregates(f.computed):
        issues += check_aggregate(schema, table, f, aggregate)
    return issues


def check_number_field(source: TableSpec, key: str, f: FieldSpec, table: TableSpec, where: str) -> list[Issue]:
    """Return the issue of a field an expression reads as a number, unless it is one of `source`'s."""
    keys = [g.key for g in source.fields]
    if "." in key:
        return [compute_issue(f, table, f"'{key}' is a field of another record; a computed value reads its own "
                              "record's fields and sums of the records that link to it",
                              f"copy it with default_from: {key}, or compare it in a rule (rules:)")]
    if key not in keys:
        return [compute_issue(f, table, f"'{key}' is not a field of {source.key}{where}",
                              did_you_mean(key, keys, "fields"))]
    spec = source.field(key)
    if spec.type not in NUMERIC_TYPES:
        return [compute_issue(f, table, f"{source.key}.{key} is a {spec.type} field; a compute can only "
                              "calculate with numbers", "use integer, decimal, money or percent fields")]
    if spec.encrypted:
        return [compute_issue(f, table, f"{source.key}.{key} is encrypted; the database cannot calculate with it",
                              "compute from fields that are not encrypted")]
    return []


def aggregate_link(schema: SchemaSpec, table: TableSpec, aggregate: Any) -> tuple[FieldSpec | None, str]:
    """Return (the link of the aggregated table that points at `table`, problem) for an aggregate."""
    source = schema.table(aggregate.table)
    links = [g for g in source.fields if g.type == "link" and g.to == table.key]
    if aggregate.link is not None:
        chosen = [g for g in links if g.key == aggregate.link]
        if chosen:
            return chosen[0], ""
        names = ", ".join(g.key for g in links) or "none"
        return None, f"{aggregate.table}.{aggregate.link} is not a link of {aggregate.table} to {table.key} " \
                     f"(its links here: {names})"
    if not links:
        return None, f"{aggregate.table} has no link to {table.key}, so no {aggregate.table} record belongs to one"
    if len(links) > 1:
        names = ", ".join(g.key for g in links)
        return None, f"{aggregate.table} links to {table.key} through {names}; name the one to follow, e.g. " \
                     f"{aggregate.function}({aggregate.table}[{links[0].key}]" + \
                     (f".{aggregate.field})" if aggregate.field else ")")
    return links[0], ""


def check_aggregate(schema: SchemaSpec, table: TableSpec, f: FieldSpec, aggregate: Any) -> list[Issue]:
    tables = [t.key for t in schema.tables]
    if aggregate.table not in tables:
        return [compute_issue(f, table, f"{aggregate.function}() names a table '{aggregate.table}' that does not "
                              "exist", did_you_mean(aggregate.table, tables, "tables"))]
    link, problem = aggregate_link(schema, table, aggregate)
    if link is None:
        return [compute_issue(f, table, problem, "an aggregate adds up the records that link to this one")]
    source = schema.table(aggregate.table)
    issues = []
    if aggregate.field is not None:
        issues += check_number_field(source, aggregate.field, f, table, "")
    if aggregate.where is not None:
        issues += check_where(source, aggregate.where, f, table)
    return issues


def check_where(source: TableSpec, condition: Any, f: FieldSpec, table: TableSpec) -> list[Issue]:
    """Return the problems of a where condition over the fields of the aggregated table `source`."""
    return [compute_issue(f, table, message + " (in where)" if "not a field" in message else message, hint)
            for message, hint in condition_problems(source, condition)]


def condition_problems(source: TableSpec, condition: Any) -> list[tuple[str, str]]:
    """Return (message, hint) for each problem of a condition over the fields of `source`: unknown or
    encrypted fields, option keys a choice field does not have."""
    problems = []
    keys = [g.key for g in source.fields]
    for node in expressions.walk(condition):
        if isinstance(node, expressions.Field) and "." in node.key:
            problems.append((f"'{node.key}' is a field of another record; this condition compares the record's "
                             "own fields", "declare a field that copies it (default_from:) or computes it"))
        elif isinstance(node, expressions.Field) and node.key not in keys:
            problems.append((f"'{node.key}' is not a field of {source.key}", did_you_mean(node.key, keys, "fields")))
        elif isinstance(node, expressions.Field) and source.field(node.key).encrypted:
            problems.append((f"{source.key}.{node.key} is encrypted; a condition cannot compare it",
                             "compare fields that are not encrypted"))
        if isinstance(node, expressions.Compare) and isinstance(node.left, expressions.Field) \
                and node.left.key in keys and source.field(node.left.key).choices is not None:
            options = source.field(node.left.key).choices
            assert options is not None  # tested just above
            values = node.right if isinstance(node.right, tuple) else (node.right,)
            for value in values:
                if isinstance(value, expressions.Text) and value.value not in options.keys:
                    problems.append((f"'{value.value}' is not an option of {source.key}.{node.left.key}",
                                     did_you_mean(value.value, options.keys, "options")))
    return problems


def check_default_from(schema: SchemaSpec, table: TableSpec, f: FieldSpec) -> list[Issue]:
    path = f"tables.{table.key}.fields.{f.key}.default_from"
    link_key, _, field_key = (f.default_from or "").partition(".")
    links = [g.key for g in table.fields if g.type == "link"]
    if link_key not in links:
        what = f"'{link_key}' is a {table.field(link_key).type} field, not a link" if table.has_field(link_key) \
            else f"'{link_key}' is not a link field of {table.key}"
        return [Issue(f.file, f.line, path, what, did_you_mean(link_key, links, "links") if links
                      else "default_from copies a value from the record a link field points at")]
    target_key = table.field(link_key).to or ""
    if target_key not in [t.key for t in schema.tables]:
        return []  # reported by check_links
    target = schema.table(target_key)
    keys = [g.key for g in target.fields]
    if field_key not in keys:
        return [Issue(f.file, f.line, path, f"'{field_key}' is not a field of {target.key}",
                      did_you_mean(field_key, keys, "fields"))]
    source = target.field(field_key)
    same = source.type == f.type or (source.type in NUMERIC_TYPES and f.type in NUMERIC_TYPES)
    if not same or (f.choices is not None and source.choices is not None and f.choices.key != source.choices.key):
        return [Issue(f.file, f.line, path, f"{target.key}.{field_key} is a {source.type} field and cannot fill "
                      f"the {f.type} field {f.key}", "copy from a field of the same type")]
    return []


DUPLICATE_TYPES = ("string", "uscc", "phone", "email", "cas_number")


def check_duplicates(table: TableSpec) -> list[Issue]:
    """Return the problems of `duplicates:`: fields that are not there, or not of a kind compared as
    names and codes are (encrypted values cannot be compared)."""
    issues = []
    keys = [f.key for f in table.fields]
    for key in table.duplicates:
        where = (table.file, table.line_of("duplicates"), f"tables.{table.key}.duplicates")
        if key not in keys:
            issues.append(Issue(*where, f"'{key}' is not a field of {table.key}", did_you_mean(key, keys, "fields")))
        elif table.field(key).type not in DUPLICATE_TYPES or table.field(key).encrypted:
            spec = table.field(key)
            kind = "an encrypted field" if spec.encrypted else f"a {spec.type} field"
            issues.append(Issue(*where, f"{table.key}.{key} is {kind}; duplicates are found by names and codes",
                                "list fields of type " + ", ".join(DUPLICATE_TYPES) + " that are not encrypted"))
    return issues


def check_compute_cycles(schema: SchemaSpec) -> list[Issue]:
    """Return an issue for each cycle of computed fields that read one another."""
    graph = compute_dependencies(schema)
    issues: list[Issue] = []
    done: set[tuple[str, str]] = set()
    reported: set[frozenset[tuple[str, str]]] = set()
    for start in graph:
        path: list[tuple[str, str]] = []
        cycle = first_cycle(graph, start, path, done)
        if cycle and frozenset(cycle) not in reported:
            reported.add(frozenset(cycle))
            table = schema.table(cycle[0][0])
            f = table.field(cycle[0][1])
            shown = " → ".join(f"{t}.{k}" for t, k in cycle)
            issues.append(compute_issue(f, table, f"computed fields read one another in a circle: {shown}",
                                        "one of them must be an ordinary field"))
        done.update(path)
    return issues


def first_cycle(graph: dict[tuple[str, str], set[tuple[str, str]]], node: tuple[str, str],
                path: list[tuple[str, str]], done: set[tuple[str, str]]) -> list[tuple[str, str]] | None:
    """Return the first circle reached from `node` (walking `path`, skipping `done`), or None."""
    if node in path:
        return path[path.index(node):] + [node]
    if node in done:
        return None
    path.append(node)
    for nxt in graph.get(node, ()):
        found = first_cycle(graph, nxt, path, done)
        if found:
            return found
    path.pop()
    done.add(node)
    return None


def compute_dependencies(schema: SchemaSpec) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """Return (table, field) of each computed field → the computed fields it reads."""
    computed = {(t.key, f.key) for t in schema.tables for f in t.fields if f.computed is not None}
    graph: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for table in schema.tables:
        for f in table.fields:
            if f.computed is None:
                continue
            reads = {(table.key, ref.key) for ref in expressions.own_fields(f.computed)}
            for aggregate in expressions.aggregates(f.computed):
                reads |= {(aggregate.table, ref.key) for ref in expressions.aggregate_fields(aggregate)}
            graph[(table.key, f.key)] = reads & computed
    return graph
