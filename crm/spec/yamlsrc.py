"""Read YAML files into nodes that remember their line, and catch YAML's silent traps."""
from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .issues import Issue

# The C parser when PyYAML was built with it: same nodes and marks, much faster.
COMPOSER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
YAML_BOOL_WORDS = {"yes", "no", "on", "off", "y", "n", "true", "false"}


@dataclass
class Node:
    """A YAML value with its position: `value` is a dict of Nodes, a list of Nodes or a scalar."""

    value: Any
    line: int
    file: str
    raw: str | None = None
    key_lines: dict[str, int] = field(default_factory=dict)

    @property
    def is_map(self) -> bool:
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        return isinstance(self.value, list)

    @property
    def is_scalar(self) -> bool:
        return not (self.is_map or self.is_list)

    def plain(self) -> Any:
        """Return the value with all nested Nodes unwrapped into plain Python objects."""
        if self.is_map:
            return {k: v.plain() for k, v in self.value.items()}
        if self.is_list:
            return [v.plain() for v in self.value]
        return self.value


def load_yaml_file(path: Path, shown_as: str) -> tuple[Node | None, list[Issue]]:
    """Return the file's root node (None if unreadable) and the problems found while reading."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Issue(shown_as, 0, "", f"the file is not UTF-8 text ({exc.reason})",
                            "save it as UTF-8")]
    return load_yaml_text(text, shown_as)


def load_yaml_text(text: str, shown_as: str) -> tuple[Node | None, list[Issue]]:
    """Return the root node of YAML `text` and the problems found while reading it."""
    try:
        root = yaml.compose(text, Loader=COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [Issue(shown_as, line, "", f"YAML syntax error: {problem}",
                            "check the indentation and that every ':' is followed by a space")]
    if root is None:
        return Node({}, 1, shown_as), []
    issues: list[Issue] = []
    return _convert(root, shown_as, "", issues), issues


def _convert(node: yaml.Node, file: str, path: str, issues: list[Issue]) -> Node:
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        return _convert_mapping(node, file, path, issues)
    if isinstance(node, yaml.SequenceNode):
        items = [_convert(item, file, f"{path}[{i}]", issues) for i, item in enumerate(node.value)]
        return Node(items, line, file)
    value = _construct_scalar(node)
    return Node(value, line, file, raw=node.value if not node.style else None)


def _construct_scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        return node.value
    finally:
        loader.dispose()


def _convert_mapping(node: yaml.MappingNode, file: str, path: str, issues: list[Issue]) -> Node:
    result: dict[str, Node] = {}
    key_lines: dict[str, int] = {}
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        key = _construct_scalar(key_node) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            issues.append(_bad_key_issue(file, key_line, path, key_node))
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        child_path = f"{path}.{key}" if path else key
        if key in result:
            issues.append(Issue(file, key_line, child_path, f"duplicate key '{key}'",
                                f"it is already defined on line {key_lines[key]}; YAML would "
                                "silently keep only the last one, so remove or rename one of them"))
            continue
        result[key] = _convert(value_node, file, child_path, issues)
        key_lines[key] = key_line
    return Node(result, node.start_mark.line + 1, file, key_lines=key_lines)


def _bad_key_issue(file: str, line: int, path: str, key_node: yaml.Node) -> Issue:
    raw = getattr(key_node, "value", "?")
    hint = "keys must be text"
    if isinstance(raw, str) and raw.lower() in YAML_BOOL_WORDS:
        hint = (f"YAML reads a bare {raw} as a boolean (yes/no/on/off become true/false); "
                f"quote it: '{raw}'")
    elif isinstance(raw, str):
        hint = f"YAML read '{raw}' as a number or date; quote it: '{raw}'"
    return Issue(file, line, path, f"key {raw!r} is not text", hint)


def yaml_trap_hint(node: Node) -> str:
    """Return a hint when a scalar that should be text was turned into a bool, number or date."""
    raw = node.raw
    if raw is None:
        return ""
    if isinstance(node.value, bool) and raw.lower() in YAML_BOOL_WORDS:
        return (f"YAML reads a bare {raw} as the boolean {str(node.value).lower()} "
                f"(yes/no/on/off become true/false); quote it: '{raw}'")
    if isinstance(node.value, int) and raw.startswith("0") and raw != "0":
        return f"YAML reads {raw} as the number {node.value}; quote it: '{raw}'"
    if isinstance(node.value, (int, float)):
        return f"YAML read {raw} as a number; quote it: '{raw}'"
    if isinstance(node.value, (datetime.date, datetime.datetime)):
        return f"YAML reads {raw} as a date; quote it: '{raw}'"
    return ""
