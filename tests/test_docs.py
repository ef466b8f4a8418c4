"""docs/schema.md documents every field type and key, and its YAML examples are valid schemas.

No database: these tests only read the document and run the schema loader on its examples.

Conventions of docs/schema.md that these tests rely on:
* every field type has a heading `### `<type>``;
* every key of the schema language appears in backticks somewhere;
* a ```yaml block is either a schema (it has a top-level `tables:` or `choices:`), or a fields
  snippet (a mapping of field keys to field specs, checked as the fields of a table), or starts
  with the line `# error example` (deliberately wrong, not checked);
* a schema block whose first line names a file under schema/ (`# schema/samples.yaml`) is meant to
  sit next to the default schema and is checked together with it; other schema blocks stand alone.
"""
from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
import yaml

from app.fields.values import COMMON_KEYS, VALUE_TYPES
from app.schema import SchemaError, load_schema_text
from app.schema.checks import RESERVED_TABLE_PREFIXES
from app.schema.parse import ON_DELETE, RESERVED_FIELD_KEYS, TABLE_KEYS, TOP_LEVEL_KEYS

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOC = PROJECT_DIR / "docs" / "schema.md"
DEFAULT_SCHEMA = PROJECT_DIR / "schema"
ERROR_MARK = "# error example"
OPTION_KEYS = ("key", "label", "color")
LABEL_KEYS = ("zh", "en")

FENCE_RE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
TOP_LEVEL_RE = re.compile(r"^(?:tables|choices):", re.M)
NEXT_TO_DEFAULT_RE = re.compile(r"#\s*(schema/[\w./-]+\.ya?ml)\b")


def doc_text() -> str:
    return DOC.read_text(encoding="utf-8")


def yaml_blocks() -> list[tuple[int, str]]:
    """Return (line number in the document, body) for every ```yaml block."""
    text = doc_text()
    return [(text.count("\n", 0, m.start()) + 1, m.group(2))
            for m in FENCE_RE.finditer(text) if m.group(1).lower() in ("yaml", "yml")]


def inline_code(text: str) -> set[str]:
    """Return the texts written in backticks outside fenced code blocks (`tables:` counts as `tables`)."""
    prose = FENCE_RE.sub("", text)
    return {m.strip().rstrip(":") for m in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose)}


def default_schema_files() -> dict[str, str]:
    files = sorted(p for p in DEFAULT_SCHEMA.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return {p.relative_to(PROJECT_DIR).as_posix(): p.read_text(encoding="utf-8") for p in files}


def is_fields_snippet(body: str) -> bool:
    """True when `body` is a mapping of field keys to field specs ({type: ...} or a bare type)."""
    try:
        data = yaml.safe_load(textwrap.dedent(body))
    except yaml.YAMLError:
        return False
    return isinstance(data, dict) and bool(data) and all(
        (isinstance(spec, dict) and "type" in spec) or spec in VALUE_TYPES for spec in data.values())


def checked_blocks() -> list[tuple[int, str]]:
    return [(line, body) for line, body in yaml_blocks() if not body.lstrip().startswith(ERROR_MARK)]


def test_every_field_type_has_a_heading() -> None:
    headings = set(re.findall(r"^### `([^`]+)`[ \t]*$", doc_text(), re.M))
    missing = sorted(set(VALUE_TYPES) - headings)
    assert not missing, f"field types without a '### `type`' heading in docs/schema.md: {missing}"


def test_every_key_is_documented() -> None:
    keys = set(TABLE_KEYS) | set(TOP_LEVEL_KEYS) | set(COMMON_KEYS) | set(OPTION_KEYS) | set(LABEL_KEYS)
    for vtype in VALUE_TYPES.values():
        keys |= vtype.keys
    missing = sorted(keys - inline_code(doc_text()))
    assert not missing, f"not documented in docs/schema.md: {missing}"


def test_on_delete_rules_and_reserved_names_are_documented() -> None:
    names = set(ON_DELETE) | set(RESERVED_FIELD_KEYS) | set(RESERVED_TABLE_PREFIXES)
    missing = sorted(names - inline_code(doc_text()))
    assert not missing, f"not documented in docs/schema.md: {missing}"


def test_the_document_has_yaml_examples() -> None:
    blocks = checked_blocks()
    assert any(TOP_LEVEL_RE.search(body) for _, body in blocks), "no schema example found in docs/schema.md"
    assert any(body.lstrip().startswith(ERROR_MARK) for _, body in yaml_blocks()), "no error example found"


@pytest.mark.parametrize(("line", "body"),
                         [pytest.param(line, body, id=f"line{line}") for line, body in checked_blocks()])
def test_yaml_example_is_valid(line: int, body: str) -> None:
    where = f"docs/schema.md, the ```yaml block at line {line}"
    if TOP_LEVEL_RE.search(body):
        first = body.lstrip().splitlines()[0]
        named = NEXT_TO_DEFAULT_RE.match(first)
        if named:
            files = {**default_schema_files(), named.group(1): body}
        else:
            # Blank lines in front, so that reported line numbers are those of the document.
            files = {"docs/schema.md": "\n" * line + body}
    elif is_fields_snippet(body):
        fields = textwrap.indent(textwrap.dedent(body), " " * 6)
        wrapper = "tables:\n  doc_example:\n    search: []\n    fields:\n"
        padding = "\n" * max(0, line - wrapper.count("\n"))
        files = {**default_schema_files(), "docs/schema.md": padding + wrapper + fields}
    else:
        pytest.fail(f"{where} is neither a schema (top-level tables: or choices:) nor a fields snippet; "
                    f"start it with '{ERROR_MARK}' if it is deliberately wrong")
    try:
        load_schema_text(files)
    except SchemaError as exc:
        pytest.fail(f"{where} is not a valid schema:\n{exc}")


def test_every_role_key_and_verb_is_documented() -> None:
    from app.schema.roles import GRANT_KEYS, ROLE_KEYS, VERBS
    text = (DOC.parent / "permissions.md").read_text(encoding="utf-8")
    missing = sorted((set(ROLE_KEYS) | set(GRANT_KEYS) | set(VERBS)) - inline_code(text))
    assert not missing, f"not documented in docs/permissions.md: {missing}"
    roles = load_schema_text(default_schema_files()).roles
    assert all(f"`{key}`" in text for key in roles), "a default role is missing from docs/permissions.md"
