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
# Bounds on what one file may make us read: a schema is a few kilobytes; a file of megabytes, or one
# whose aliases (*name) repeat values a billion times over, is a mistake or an attack.
MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_VALUES = 100_000


class Reading:
    """The state of reading one file: the problems found, and how many values its aliases expand to."""

    def __init__(self, file: str):
        self.file = file
        self.issues: list[Issue] = []
        self.values = 0
        self.open: set[int] = set()  # nodes being read now: an alias to one of them is a loop
        self.too_many = False
        self.loader = yaml.SafeLoader("")  # builds scalar values; one per file (making one costs more than the value)


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
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        return None, [Issue(shown_as, 0, "", f"the file has {size:,} bytes; a schema file may have at most "
                                             f"{MAX_FILE_BYTES:,}", "split it into several files, or remove "
                                                                    "what was pasted into it by mistake")]
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return None, [Issue(shown_as, 0, "", f"the file is not UTF-8 text ({exc.reason})",
                            "save it as UTF-8")]
    return load_yaml_text(text, shown_as)


def load_yaml_text(text: str, shown_as: str) -> tuple[Node | None, list[Issue]]:
    """Return the root node of YAML `text` and the problems found while reading it."""
    if len(text) > MAX_FILE_BYTES:
        return None, [Issue(shown_as, 0, "", f"the text has {len(text):,} characters; a schema file may have at "
                                             f"most {MAX_FILE_BYTES:,} bytes", "split it into several files")]
    try:
        root = yaml.compose(text, Loader=COMPOSER)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = (exc.problem or exc.context or "invalid YAML").strip()
        return None, [Issue(shown_as, line, "", f"YAML syntax error: {problem}",
                            "check the indentation and that every ':' is followed by a space")]
    except yaml.reader.ReaderError as exc:  # a character YAML does not allow, e.g. a control character
        # the C reader counts its position in bytes, the Python one in characters: find the character
        found = text.find(chr(exc.character)) if isinstance(exc.character, int) else -1
        line = text.count("\n", 0, found if found >= 0 else max(exc.position, 0)) + 1
        code = f"U+{exc.character:04X}" if isinstance(exc.character, int) else repr(exc.character)
        return None, [Issue(shown_as, line, "", f"the file holds a character YAML does not allow ({code})",
                            "remove it; control characters often come with text pasted from elsewhere")]
    except yaml.YAMLError as exc:
        return None, [Issue(shown_as, 0, "", f"the file cannot be read as YAML: {exc}", "check it in an editor")]
    if root is None:
        return Node({}, 1, shown_as), []
    reading = Reading(shown_as)
    try:
        return _convert(root, "", reading), reading.issues
    finally:
        reading.loader.dispose()


def _convert(node: yaml.Node, path: str, reading: Reading) -> Node:
    line = node.start_mark.line + 1
    reading.values += 1
    if reading.values > MAX_VALUES:
        if not reading.too_many:
            reading.too_many = True
            reading.issues.append(Issue(reading.file, line, path, f"the file expands to more than {MAX_VALUES:,} "
                                        "values (through aliases like *name)", "write the values out instead of "
                                        "repeating aliases, or put shared options in choices:"))
        return Node(None, line, reading.file)
    if id(node) in reading.open:
        reading.issues.append(Issue(reading.file, line, path, "this alias refers to a value that contains itself",
                                    "an alias (*name) must not point at the anchor (&name) it is inside of"))
        return Node(None, line, reading.file)
    if isinstance(node, yaml.ScalarNode):
        value = _construct_scalar(node, reading.loader)
        return Node(value, line, reading.file, raw=node.value if not node.style else None)
    reading.open.add(id(node))
    try:
        if isinstance(node, yaml.MappingNode):
            return _convert_mapping(node, path, reading)
        items = [_convert(item, f"{path}[{i}]", reading) for i, item in enumerate(node.value)]
        return Node(items, line, reading.file)
    finally:
        reading.open.discard(id(node))


def _construct_scalar(node: yaml.Node, loader: Any) -> Any:
    try:
        return loader.construct_object(node, deep=True)
    except yaml.constructor.ConstructorError:
        return node.value


def _convert_mapping(node: yaml.MappingNode, path: str, reading: Reading) -> Node:
    result: dict[str, Node] = {}
    key_lines: dict[str, int] = {}
    file = reading.file
    for key_node, value_node in node.value:
        key_line = key_node.start_mark.line + 1
        if key_node.tag == "tag:yaml.org,2002:merge":
            reading.issues.append(Issue(file, key_line, path, "YAML merge keys (<<) are not read in a schema",
                                        "write the keys out; put options shared by several fields in choices:"))
            continue
        key = _construct_scalar(key_node, reading.loader) if isinstance(key_node, yaml.ScalarNode) else None
        if not isinstance(key, str):
            reading.issues.append(_bad_key_issue(file, key_line, path, key_node))
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else "?"
        child_path = f"{path}.{key}" if path else key
        if key in result:
            reading.issues.append(Issue(file, key_line, child_path, f"duplicate key '{key}'",
                                        f"it is already defined on line {key_lines[key]}; YAML would "
                                        "silently keep only the last one, so remove or rename one of them"))
            continue
        result[key] = _convert(value_node, child_path, reading)
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
