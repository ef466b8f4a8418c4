"""Checks across tables and files: links, title/list/search names, collisions. Each returns issues."""
from __future__ import annotations

from typing import Any

# A module import: crm.models.naming imports crm.spec.model, so either package may load first.
from crm.models import naming

from .issues import Issue
from .model import SchemaSpec, TableSpec
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
        issues += check_links(table, schema)
        issues += check_field_lists(table)
        issues += check_renames(table.key, table.fields, f"tables.{table.key}.fields")
    issues += check_renames("the schema", schema.tables, "tables")
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


def check_field_lists(table: TableSpec) -> list[Issue]:
    issues = []
    keys = [f.key for f in table.fields]
    base = f"tables.{table.key}"
    if table.title not in keys and "title" in table.lines:
        issues.append(Issue(table.file, table.line_of("title"), f"{base}.title", f"title names a field '{table.title}' "
                            "that the table does not have", did_you_mean(table.title, keys, "fields")))
    for section, names in (("list", table.list), ("search", table.search), ("filters", table.filters)):
        for name in names:
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
            issues.append(Issue(table.file, table.line_of("order_by"), f"{base}.order_by", f"'{name}' is not a field of "
                                f"{table.key}", "write a field key, with a leading - for newest first, "
                                "e.g. order_by: -date"))
    return issues

