"""docs/reports.md documents every key of the report language, its YAML examples load against the
default schema, and it shows a picture of page 1 of each default report. No database."""
from __future__ import annotations

import re
from pathlib import Path

from app.reports.load import (
    KIND_KEYS,
    PARAM_KEYS,
    REPORT_KEYS,
    SECTION_KEYS,
    WIDGET_KEYS,
    load_reports,
    load_reports_text,
)
from app.reports.spec import (
    CHARTS,
    DATE_DEFAULTS,
    DATE_STEPS,
    KINDS,
    MEASURES,
    OPERATORS,
    ORIENTATIONS,
    PARAM_TYPES,
    WIDGET_SHOWS,
)
from app.schema import load_schema

PROJECT_DIR = Path(__file__).resolve().parent.parent
DOC = PROJECT_DIR / "docs" / "reports.md"
FENCE_RE = re.compile(r"^```([A-Za-z]*)[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)


def inline_code(text: str) -> set[str]:
    prose = FENCE_RE.sub("", text)
    return {m.strip().rstrip(":") for m in re.findall(r"(?<!`)`([^`\n]+)`(?!`)", prose)}


def test_every_key_of_the_report_language_is_documented() -> None:
    text = DOC.read_text(encoding="utf-8")
    documented = inline_code(text) | set(re.findall(r"^\s+(\w+):", text, re.M))
    words = {*REPORT_KEYS, *PARAM_KEYS, *SECTION_KEYS, *WIDGET_KEYS, *WIDGET_SHOWS, "dashboards",
             *KINDS, *PARAM_TYPES, *DATE_DEFAULTS, *OPERATORS, *MEASURES,
             *DATE_STEPS, *CHARTS, *ORIENTATIONS, "via", "as_of", "field", "by", "measure", "type", "pivot"}
    words |= {key for keys in KIND_KEYS.values() for key in keys}
    missing = sorted(w for w in words if w not in documented)
    assert not missing, f"docs/reports.md does not mention: {missing}"


def test_the_examples_load_against_the_default_schema() -> None:
    schema = load_schema(PROJECT_DIR / "schema")
    blocks = [m.group(2) for m in FENCE_RE.finditer(DOC.read_text(encoding="utf-8")) if m.group(1) == "yaml"]
    assert len(blocks) >= 3
    for n, block in enumerate(blocks):
        load_reports_text({f"example-{n}.yaml": block}, schema)


def test_every_default_report_is_documented_with_a_picture() -> None:
    text = DOC.read_text(encoding="utf-8")
    book = load_reports(PROJECT_DIR / "reports", load_schema(PROJECT_DIR / "schema"))
    for key in book.reports:
        assert f"`{key}`" in text
        picture = f"reports/{key}.png"
        assert f"]({picture})" in text, f"docs/reports.md shows no {picture}"
        assert (DOC.parent / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
