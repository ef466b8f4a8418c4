"""Hostile or broken schema YAML gets a file:line message, in bounded time and memory, never a traceback:
alias and merge-key bombs, huge files, control characters, aliases that contain themselves."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from app.schema import SchemaError, load_schema, load_schema_text

PROJECT_DIR = Path(__file__).resolve().parent.parent
TABLE = "tables:\n  t:\n    fields:\n      name: {type: string}\n"


def alias_bomb(levels: int = 9) -> str:
    """Return YAML whose aliases expand to 9**levels values (a 'billion laughs')."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        lines.append(f"l{n}: &l{n} [" + ", ".join([f"*l{n - 1}"] * 9) + "]")
    return "choices:\n" + "\n".join("  " + line for line in lines) + "\n"


def check_in_a_bounded_process(schema_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run `crm schema check` with 1 GB of address space and a minute of time: a bomb would be killed."""
    limit = textwrap.dedent("""
        import resource, runpy, sys
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))
        sys.argv = ["crm", "schema", "check"]
        runpy.run_module("app.cli", run_name="__main__")
    """)
    env = {**os.environ, "CRM_SCHEMA_DIR": str(schema_dir)}
    return subprocess.run([sys.executable, "-c", limit], capture_output=True, text=True, timeout=60, env=env,
                          cwd=PROJECT_DIR)


@pytest.mark.parametrize("name,text,message", [
    ("bomb.yaml", alias_bomb(),
     "the file expands to more than 100,000 values (through aliases like *name)"),
    ("merge.yaml", "choices:\n  a: &a {x: 1, y: 2}\n  b: &b {<<: [*a, *a], z: 3}\n  c: {<<: [*b, *b, *b]}\n",
     "merge.yaml:3: choices.b: YAML merge keys (<<) are not read in a schema"),
    ("loop.yaml", "choices:\n  a: &a\n    - x\n    - *a\n", "loop.yaml:2: choices.a[1]: this alias refers to a value "
                                                       "that contains itself"),
    ("bell.yaml", TABLE + "      note: {type: text, label: \"提示\x07\"}\n",
     "bell.yaml:5: the file holds a character YAML does not allow (U+0007)"),
])
def test_hostile_yaml_is_refused_with_its_line_quickly(tmp_path: Path, name: str, text: str, message: str) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "t.yaml").write_text(TABLE, encoding="utf-8")
    (schema / name).write_text(text, encoding="utf-8")
    done = check_in_a_bounded_process(schema)
    assert done.returncode == 1, done.stderr
    assert message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and "MemoryError" not in done.stderr


def test_a_huge_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    schema = tmp_path / "schema"
    schema.mkdir()
    (schema / "t.yaml").write_text(TABLE, encoding="utf-8")
    with open(schema / "paste.yaml", "wb") as big:
        big.seek(50 * 1024 * 1024)
        big.write(b"\n")
    with pytest.raises(SchemaError) as caught:
        load_schema(schema)
    assert ("paste.yaml: the file has 52,428,801 bytes; a schema file may have at most 2,097,152\n"
            "    hint: split it into several files, or remove what was pasted into it by mistake") in str(caught.value)


def test_aliases_within_the_bounds_still_work() -> None:
    text = ("choices:\n  levels: &levels [{key: high, label: 高}, {key: low, label: 低}]\n"
            "tables:\n  t:\n    fields:\n      name: {type: string}\n      level: {type: choice, options: levels}\n")
    schema = load_schema_text({"s.yaml": text})
    assert schema.table("t").field("level").choices.keys == ("high", "low")


def test_thousands_of_options_load_and_duplicates_are_named() -> None:
    options = "".join(f"    - {{key: k{n}, label: 选项{n}}}\n" for n in range(16000))
    text = "choices:\n  many:\n" + options + "    - {key: k15999, label: 重复}\n" + TABLE
    with pytest.raises(SchemaError) as caught:
        load_schema_text({"s.yaml": text})
    assert "s.yaml:16003: choices.many[16000].key: duplicate option key 'k15999'" in str(caught.value)
    schema = load_schema_text({"s.yaml": "choices:\n  many:\n" + options + TABLE})
    assert len(schema.choices["many"].options) == 16000
