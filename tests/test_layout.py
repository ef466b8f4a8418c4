"""The project's shape: the folders the README names exist, the root config.py lists every setting
with its default, and no import runs back up the layers of the data flow."""
from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

from conftest import PROJECT_DIR

APP = PROJECT_DIR / "app"

# The data flow, bottom to top: a module may import its own layer and those below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("app.fields.values", "app.crypto", "app.settings"),  # uses nothing of the panel
    ("app.schema",),                                       # YAML -> validated specs
    ("app.fields",),                                       # field types -> columns, form fields, API fields
    ("app.models",),                                       # specs -> SQLAlchemy models
    ("app.audit",),
    ("app.security",),
    ("app.dbsync",),                                       # specs vs. database
    ("app.backup",),
    ("app.reports",),
    ("app.transfer",),                                     # Excel/CSV templates, imports, exports
    ("app.automation",),                                   # reminders, my tasks, the daily digest
    ("app.jobs",),                                         # background work on Huey
    ("app.demo", "app.seed"),
    ("app.web",),                                          # screens and APIs
    ("app.factory", "app.cli", "app.wsgi", "app"),         # the app factory and the entry points
)
STANDARD_LIBRARY = sys.stdlib_module_names | {"__future__"}
NOT_IN_THE_SCHEMA_LAYER = ("flask", "flask_appbuilder", "flask_wtf", "sqlalchemy", "wtforms", "marshmallow")


def module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Return (line, absolute module name) of every import in a file, in functions too."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            # `from app.schema import naming` imports app.schema.naming: judge the module, not the package
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names
                      if (APP.parent / f"{base}.{alias.name}".replace(".", "/")).with_suffix(".py").exists()]
    return found


def layer_of(module: str) -> int | None:
    """Return the index in LAYERS of the most specific layer entry a module belongs to."""
    best: tuple[int, int] | None = None
    for index, names in enumerate(LAYERS):
        for name in names:
            if module == name or module.startswith(name + "."):
                if best is None or len(name) > best[1]:
                    best = (index, len(name))
    return None if best is None else best[0]


def app_files() -> list[Path]:
    return sorted(APP.rglob("*.py"))


def test_every_module_of_the_package_has_a_layer() -> None:
    assert [module_name(p) for p in app_files() if layer_of(module_name(p)) is None] == []


def test_no_import_runs_back_up_the_layers() -> None:
    order = " < ".join("/".join(names) for names in LAYERS)
    upward = []
    for path in app_files():
        own = layer_of(module_name(path))
        for line, target in imports_of(path):
            theirs = layer_of(target) if target.split(".")[0] == "app" else None
            if own is not None and theirs is not None and theirs > own:
                upward.append(f"{path.relative_to(PROJECT_DIR)}:{line} imports {target}")
    assert upward == [], f"imports that run back up the layers ({order}):\n" + "\n".join(upward)


def test_the_schema_layer_needs_no_web_or_database_library() -> None:
    found = [f"{path.relative_to(PROJECT_DIR)}:{line} imports {target}"
             for path in sorted((APP / "schema").rglob("*.py")) for line, target in imports_of(path)
             if target.split(".")[0] in NOT_IN_THE_SCHEMA_LAYER]
    assert found == []


def test_the_value_rules_use_the_standard_library_only() -> None:
    path = APP / "fields" / "values.py"
    assert [target for _, target in imports_of(path) if target.split(".")[0] not in STANDARD_LIBRARY] == []


def test_the_layer_test_sees_an_import_that_runs_back_up(tmp_path: Path) -> None:
    """The checks above can fail: a schema module importing the models, written where they look."""
    sneaky = APP / "schema" / "_sneaky_for_test.py"
    sneaky.write_text("def f():\n    from app.models.build import BuiltModels\n    import sqlalchemy\n")
    try:
        with pytest.raises(AssertionError, match=r"app/schema/_sneaky_for_test.py:2 imports app.models.build"):
            test_no_import_runs_back_up_the_layers()
        with pytest.raises(AssertionError, match="sqlalchemy"):
            test_the_schema_layer_needs_no_web_or_database_library()
    finally:
        sneaky.unlink()


def layout_paths() -> list[str]:
    """Return the paths the README's Layout section names (the first word of each indented line)."""
    readme = (PROJECT_DIR / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Layout", 1)[1].split("\n## ", 1)[0]
    return [m.group(1) for m in re.finditer(r"^    ([\w./-]+/|[\w./-]+\.\w+)\s", section, re.M)]


def test_the_readme_layout_names_only_what_exists() -> None:
    paths = layout_paths()
    assert {"app/", "schema/", "migrations/", "reports/", "tests/", "config.py", "run.py", "pyproject.toml"} \
        <= set(paths)
    assert [p for p in paths if not (PROJECT_DIR / p).exists()] == []


def test_the_root_config_lists_every_setting_with_its_default() -> None:
    from flask import Config

    from app.settings import CRM_DEFAULTS, FLASK_DEFAULTS
    root = Config(str(PROJECT_DIR))
    root.from_pyfile(str(PROJECT_DIR / "config.py"))
    assert {k: v for k, v in root.items() if k.startswith("CRM_")} == CRM_DEFAULTS
    for name in ("APP_NAME", "BABEL_DEFAULT_LOCALE", "LANGUAGES"):
        assert root[name] == FLASK_DEFAULTS[name], name
    text = (PROJECT_DIR / "config.py").read_text(encoding="utf-8")
    undocumented = [name for name in root if not re.search(rf"^# .*\n(?:.*\n)?{name} = ", text, re.M)]
    assert undocumented == []  # each setting has a comment line above it


def test_revision_files_written_while_the_package_was_crm_still_run(tmp_path: Path) -> None:
    """An operator's migrations/ folder from before the move: its revision files import
    crm.dbsync.revisions and are never rewritten; the generated env.py is brought up to date."""
    from app.dbsync.alembic_files import FILES, ensure_alembic_files, written_before_the_move
    from app.dbsync.revisions import read_revision_files
    (tmp_path / "versions").mkdir()
    for path in (PROJECT_DIR / "migrations" / "versions").glob("*.py"):
        old = path.read_text(encoding="utf-8").replace("from app.dbsync.revisions", "from crm.dbsync.revisions")
        assert "from crm.dbsync.revisions import upgrade_revision" in old
        (tmp_path / "versions" / path.name).write_text(old, encoding="utf-8")
    (tmp_path / "env.py").write_text(written_before_the_move(FILES["env.py"]), encoding="utf-8")
    (tmp_path / "alembic.ini").write_text("# edited by the operator\n", encoding="utf-8")

    old = read_revision_files(tmp_path)
    assert [(r.revision, r.steps) for r in old] == [
        (r.revision, r.steps) for r in read_revision_files(PROJECT_DIR / "migrations")]
    assert "crm" not in sys.modules and "crm.dbsync.revisions" not in sys.modules
    ensure_alembic_files(tmp_path)
    assert (tmp_path / "env.py").read_text(encoding="utf-8") == FILES["env.py"]
    assert (tmp_path / "alembic.ini").read_text(encoding="utf-8") == "# edited by the operator\n"
