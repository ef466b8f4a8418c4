"""Read every YAML file of a schema directory into one validated SchemaSpec."""
from __future__ import annotations

import os
from pathlib import Path

from .checks import check_schema
from .colours import check_colours
from .issues import Issue, SchemaError
from .model import ChoiceListSpec, SchemaSpec, TableSpec
from .parse import TOP_LEVEL_KEYS, Parser, did_you_mean
from .reminders import check_reminders, collect_reminders
from .roles import check_roles, collect_roles
from .rules import check_rules
from .yamlsrc import Node, load_yaml_file, load_yaml_text


def load_schema(schema_dir: str | os.PathLike[str]) -> SchemaSpec:
    """Return the schema in `schema_dir`; raise SchemaError listing every problem found."""
    directory = Path(schema_dir)
    if not directory.is_dir():
        raise SchemaError([Issue(str(directory), 0, "", "the schema directory does not exist",
                                 "set CRM_SCHEMA_DIR to a folder holding *.yaml files")])
    files = sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    if not files:
        raise SchemaError([Issue(str(directory), 0, "", "the schema directory holds no .yaml files",
                                 "add a file like schema/customer.yaml with a tables: section")])
    roots: list[Node] = []
    issues: list[Issue] = []
    for path in files:
        root, file_issues = load_yaml_file(path, _shown_path(path))
        issues += file_issues
        if root is not None:
            roots.append(root)
    schema, parse_issues = build_schema(roots, str(directory))
    issues += _without_consequences(parse_issues, unreadable=len(roots) < len(files))
    if issues:
        raise SchemaError(issues)
    return schema


def load_schema_text(files: dict[str, str]) -> SchemaSpec:
    """Return the schema from in-memory YAML texts keyed by file name (for tests and tools)."""
    roots: list[Node] = []
    issues: list[Issue] = []
    for name, text in sorted(files.items()):
        root, file_issues = load_yaml_text(text, name)
        issues += file_issues
        if root is not None:
            roots.append(root)
    schema, parse_issues = build_schema(roots, "")
    issues += _without_consequences(parse_issues, unreadable=len(roots) < len(files))
    if issues:
        raise SchemaError(issues)
    return schema


def build_schema(roots: list[Node], source_dir: str) -> tuple[SchemaSpec, list[Issue]]:
    """Return the merged schema of all file roots, and the problems found in them."""
    parser = Parser()
    for root in roots:
        if parser.expect_map(root, "", "top-level sections tables:, choices:, roles: and reminders:"):
            parser.unknown_keys(root, "", TOP_LEVEL_KEYS, "sections")
    choices = _collect_choices(roots, parser)
    tables: dict[str, TableSpec] = {}
    for root in roots:
        section = root.value.get("tables") if root.is_map else None
        if section is None or not parser.expect_map(section, "tables", "tables"):
            continue
        for key, node in section.value.items():
            path = f"tables.{key}"
            line = section.key_lines.get(key)
            if not parser.check_key(section, key, path, line):
                continue
            if key in tables:
                parser.error(node, path, f"table '{key}' is declared twice",
                             f"it is also declared in {tables[key].file}:{tables[key].line}", line=line)
                continue
            table = parser.table(node, key, path, choices)
            if table:
                tables[key] = table
    roles = collect_roles(roots, parser)
    reminders = collect_reminders(roots, parser)
    schema = SchemaSpec(tuple(tables.values()), choices, source_dir, roles, reminders)
    return schema, (parser.issues + check_schema(schema) + check_roles(schema) + check_reminders(schema)
                    + check_rules(schema) + check_colours(schema))


def _collect_choices(roots: list[Node], parser: Parser) -> dict[str, ChoiceListSpec]:
    choices: dict[str, ChoiceListSpec] = {}
    for root in roots:
        section = root.value.get("choices") if root.is_map else None
        if section is None or not parser.expect_map(section, "choices", "option lists"):
            continue
        for key, node in section.value.items():
            path = f"choices.{key}"
            if not parser.check_key(section, key, path, section.key_lines.get(key)):
                continue
            if key in choices:
                parser.error(node, path, f"option list '{key}' is declared twice",
                             f"it is also declared in {choices[key].file}:{choices[key].line}")
                continue
            spec = parser.choice_list(node, key, path)
            if spec:
                choices[key] = spec
    return choices


def _without_consequences(issues: list[Issue], unreadable: bool) -> list[Issue]:
    """Drop 'no tables' when a file could not be read: the syntax error is the real problem."""
    if not unreadable:
        return issues
    return [i for i in issues if i.message != "the schema declares no tables"]


def _shown_path(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


__all__ = ["load_schema", "load_schema_text", "SchemaError", "did_you_mean"]
