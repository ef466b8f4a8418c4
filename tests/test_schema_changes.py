"""Safe schema evolution: a populated database taken through a sequence of YAML versions.

After every step each pre-existing value must still be there (compared row by row), and the plan
and refusal messages are asserted exactly as docs/schema-changes.md shows them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.dbsync.sync import SchemaChangesPending, plan_changes, sync_schema
from app.schema import load_schema_text

BASE = """
tables:
  product:
    title: code
    fields:
      code: {type: string, required: true, unique: true, max_length: 20}
      name: {type: string, max_length: 100}
      purity: {type: string, max_length: 20}
      price: {type: text}
      grade: {type: choice, options: [{key: A, label: A}, {key: B, label: B}]}
      notes: {type: text}
"""

ROWS = [
    {"id": 1, "code": "P-1", "name": "乙醇", "purity": "99.5%", "price": "12.5", "grade": "A", "notes": "易燃"},
    {"id": 2, "code": "P-2", "name": "丙酮", "purity": "99%", "price": "abc", "grade": "B", "notes": None},
    {"id": 3, "code": "P-3", "name": "", "purity": None, "price": "30", "grade": "A", "notes": "常用"},
]


def schema(text: str) -> Any:
    return load_schema_text({"schema.yaml": text})


def rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = [dict(r) for r in conn.execute(sa.text(f'SELECT * FROM "{table}" ORDER BY id' if "mysql" not in url
                                                       else f"SELECT * FROM `{table}` ORDER BY id")).mappings()]
    engine.dispose()
    return found


def columns(url: str, table: str) -> set[str]:
    engine = sa.create_engine(url)
    names = {c["name"] for c in sa.inspect(engine).get_columns(table)}
    engine.dispose()
    return names


def pick(found: list[dict[str, Any]], keys: list[str]) -> list[tuple[Any, ...]]:
    return [tuple(r[k] for k in keys) for r in found]


@pytest.fixture
def url(db_url: str) -> str:
    """The test's database with BASE applied and three products in it."""
    sync_schema(db_url, schema(BASE), None)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        table = sa.table("product", *(sa.column(k) for k in ROWS[0] if k != "id"))
        for row in ROWS:  # one by one, so that the database gives the ids 1, 2, 3 in order
            conn.execute(table.insert().values({k: v for k, v in row.items() if k != "id"}))
    engine.dispose()
    return db_url


def apply(url: str, text: str, folder: Path | None = None, **kw: Any) -> list[str]:
    return [step.words for step in sync_schema(url, schema(text), folder, **kw).applied]


def plan_lines(url: str, text: str, **kw: Any) -> str:
    return plan_changes(url, schema(text), None, **kw)[0].text()


def test_add_table_fields_of_every_type_and_an_option(url: str) -> None:
    from app.fields.values import VALUE_TYPES
    extra = {"link": "{type: link, to: product}", "choice": "{type: choice, options: [{key: x, label: X}]}",
             "multi_choice": "{type: multi_choice, options: [{key: x, label: X}]}"}
    new_fields = "".join(f"      f_{name}: {extra.get(name, '{type: ' + name + '}')}\n" for name in VALUE_TYPES)
    text = BASE.replace("{key: B, label: B}]}", "{key: B, label: B}, {key: C, label: C}]}") + new_fields + """
  batch:
    fields:
      number: {type: string, required: true}
      product: {type: link, to: product, on_delete: cascade}
"""
    applied = apply(url, text)
    assert applied[-1] == "+ create table batch (2 fields)"
    assert "+ add column product.f_cas_number (cas_number, nullable)" in applied
    assert "+ add option product.grade: C" in applied
    assert len(applied) == 2 + len(VALUE_TYPES)
    assert pick(rows(url, "product"), ["id", "code", "name", "purity", "price", "grade", "notes"]) == pick(
        ROWS, ["id", "code", "name", "purity", "price", "grade", "notes"])
    assert {"f_link_id", "f_user_id", "f_multi_choice"} <= columns(url, "product")
    assert plan_lines(url, text) == "nothing to change"


def test_rename_a_field_and_a_table(url: str) -> None:
    text = BASE.replace("  product:\n", "  item:\n    renamed_from: product\n").replace(
        "      purity: {type: string, max_length: 20}",
        "      assay: {type: string, max_length: 20, renamed_from: purity}")
    assert plan_lines(url, text) == (
        "~ rename table product → item (from renamed_from)   [safe]\n"
        "~ rename column item.purity → item.assay (from renamed_from)   [safe]")
    apply(url, text)
    assert pick(rows(url, "item"), ["id", "code", "assay"]) == pick(ROWS, ["id", "code", "purity"])
    assert not sa.inspect(sa.create_engine(url)).has_table("product")
    assert plan_lines(url, text) == "nothing to change"


def test_retire_a_field_then_bring_it_back(url: str) -> None:
    without_notes = BASE.replace("      notes: {type: text}\n", "")
    assert apply(url, without_notes) == [
        "- retire column product.notes (data kept, hidden)"]
    assert "notes" in columns(url, "product")
    assert plan_lines(url, without_notes) == "nothing to change"
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a new row written while the field is retired
        conn.execute(sa.text("INSERT INTO product (code) VALUES ('P-4')"))
    engine.dispose()
    assert apply(url, BASE) == ["+ restore retired column product.notes (its data comes back)"]
    assert pick(rows(url, "product"), ["id", "notes"]) == pick(ROWS, ["id", "notes"]) + [(4, None)]


def test_type_change_is_checked_against_the_rows_and_refused_until_resolved(url: str) -> None:
    text = BASE.replace("price: {type: text}", "price: {type: decimal}")
    assert plan_lines(url, text) == (
        "! change type of product.price: text → decimal — 1 of 3 rows would not convert (ids 2)   [needs review]\n"
        "      refused: fix those rows first, or resolve with --resolve product.price=clear")
    with pytest.raises(SchemaChangesPending) as refused:
        apply(url, text)
    assert str(refused.value) == (
        "these schema changes are refused because existing rows do not fit them:\n"
        "  ! change type of product.price: text → decimal — 1 of 3 rows would not convert (ids 2)   [needs review]\n"
        "        refused: fix those rows first, or resolve with --resolve product.price=clear\n"
        "nothing was changed; fix the rows, or choose a resolution with "
        "'crm schema apply --review --resolve TABLE.FIELD=CHOICE'")
    assert pick(rows(url, "product"), ["price"]) == pick(ROWS, ["price"])

    result = sync_schema(url, schema(text), None, include_review=True, resolutions={"product.price": "clear"})
    assert [float(r["price"]) if r["price"] is not None else None for r in rows(url, "product")] == [12.5, None, 30.0]
    (backup,) = result.backups
    assert pick(rows(url, backup), ["id", "price"]) == pick(ROWS, ["id", "price"])


def test_convertible_type_change_needs_review_at_start_up(url: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE product SET price = '7' WHERE id = 2"))
    engine.dispose()
    text = BASE.replace("price: {type: text}", "price: {type: decimal}")
    with pytest.raises(SchemaChangesPending) as refused:
        apply(url, text)
    assert str(refused.value) == (
        "these schema changes need review and were not applied:\n"
        "  ! change type of product.price: text → decimal — all 3 rows convert\n"
        "nothing was changed; see them with 'crm schema plan' and apply them with 'crm schema apply --review'")
    apply(url, text, include_review=True)
    assert [float(r["price"]) for r in rows(url, "product")] == [12.5, 7.0, 30.0]
    assert pick(rows(url, "product"), ["id", "code", "name", "notes"]) == pick(ROWS, ["id", "code", "name", "notes"])


def test_tightening_required_and_unique_is_checked(url: str) -> None:
    required = BASE.replace("name: {type: string, max_length: 100}", "name: {type: string, max_length: 100, "
                            "required: true, unique: true}")
    assert plan_lines(url, required) == (
        "! make product.name required — 1 of 3 rows are empty (ids 3)   [needs review]\n"
        "      refused: fill them in first, or resolve with --resolve product.name=keep\n"
        "~ make product.name unique (no duplicates)   [safe]")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE product SET name = '乙醇' WHERE id = 3"))
    engine.dispose()
    assert plan_lines(url, required) == (
        "~ make product.name required (no empty rows)   [safe]\n"
        "! make product.name unique — 2 rows share a value with another row (ids 1, 3)   [needs review]\n"
        "      refused: give those rows different values first")
    with pytest.raises(SchemaChangesPending):
        apply(url, required, include_review=True)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE product SET name = '甲醇' WHERE id = 3"))
    engine.dispose()
    assert apply(url, required) == ["~ make product.name required (no empty rows)",
                                    "~ make product.name unique (no duplicates)"]
    engine = sa.create_engine(url)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO product (code, name) VALUES ('P-9', '甲醇')"))
    engine.dispose()


def test_shorter_max_length_and_removed_option_are_checked(url: str) -> None:
    text = BASE.replace("purity: {type: string, max_length: 20}", "purity: {type: string, max_length: 2}").replace(
        "[{key: A, label: A}, {key: B, label: B}]", "[{key: A, label: A}]")
    assert plan_lines(url, text) == (
        "! shorten product.purity: max_length 20 → 2 — 2 of 3 rows are longer (ids 1, 2)   [needs review]\n"
        "      refused: shorten those values first, or resolve with --resolve product.purity=clear\n"
        "! remove option product.grade: B — 1 of 3 rows use it (ids 2)   [needs review]\n"
        "      refused: change those rows first, or resolve with --resolve product.grade=keep "
        "(they keep the old value, shown as retired)")
    applied = apply(url, text, include_review=True, resolutions={"product.grade": "keep", "product.purity": "clear"})
    assert len(applied) == 2
    assert pick(rows(url, "product"), ["purity", "grade"]) == [(None, "A"), (None, "B"), (None, "A")]


def test_a_resolution_must_fit_a_refused_step(url: str) -> None:
    with pytest.raises(ValueError) as wrong:
        plan_lines(url, BASE, resolutions={"product.price": "clear"})
    assert str(wrong.value) == "--resolve product.price=clear: no refused step changes product.price"


def test_every_applied_plan_is_a_revision_file_that_replays(db_url: str, tmp_path: Path) -> None:
    from conftest import drop_all_tables
    folder = tmp_path / "migrations"
    with_cas = BASE + "      cas: {type: cas_number}\n"
    apply(db_url, BASE, folder)
    apply(db_url, with_cas, folder)
    first, second = sorted((folder / "versions").glob("*.py"))
    assert {"env.py", "alembic.ini", "script.py.mako"} <= {p.name for p in folder.iterdir()}
    assert "+ create table product (6 fields)" in first.read_text(encoding="utf-8")
    assert "+ add column product.cas (cas_number, nullable)" in second.read_text(encoding="utf-8")

    if db_url.startswith("sqlite"):
        Path(db_url.removeprefix("sqlite:///")).unlink()
    else:
        drop_all_tables(db_url)
    result = sync_schema(db_url, schema(with_cas), folder, auto_apply=False)
    assert result.replayed == [first.name.split("_", 2)[0] + "_" + first.name.split("_", 2)[1],
                               second.name.split("_", 2)[0] + "_" + second.name.split("_", 2)[1]]
    assert result.applied == []
    assert {"code", "cas"} <= columns(db_url, "product")


def test_without_auto_apply_only_revision_files_run(url: str) -> None:
    with pytest.raises(SchemaChangesPending) as refused:
        apply(url, BASE + "      cas: {type: cas_number}\n", auto_apply=False)
    assert str(refused.value).startswith(
        "the schema YAML asks for changes that no reviewed revision makes, and CRM_SCHEMA_AUTO_APPLY=0:\n"
        "  + add column product.cas (cas_number, nullable)   [safe]\n")
    assert "cas" not in columns(url, "product")


def test_the_committed_revisions_build_the_default_schema(db_url: str) -> None:
    """migrations/versions must keep up with schema/: run 'crm schema apply' after changing the YAML."""
    from app.schema import load_schema
    from conftest import DEFAULT_SCHEMA, PROJECT_DIR
    result = sync_schema(db_url, load_schema(DEFAULT_SCHEMA), PROJECT_DIR / "migrations", auto_apply=False)
    assert result.replayed and result.applied == []


def test_drop_retired_exports_the_data_first(url: str, tmp_path: Path) -> None:
    from app.dbsync.sync import drop_retired
    without_notes = BASE.replace("      notes: {type: text}\n", "")
    apply(url, without_notes)
    result = drop_retired(url, schema(without_notes), None, tmp_path / "exports")
    assert [s.words for s in result.applied] == ["x drop retired column product.notes (its values are exported first)"]
    assert "notes" not in columns(url, "product")
    (export,) = result.exports
    assert export.read_text(encoding="utf-8-sig").splitlines() == ["id,notes", "1,易燃", "2,", "3,常用"]
    assert plan_lines(url, without_notes) == "nothing to change"
    assert drop_retired(url, schema(without_notes), None, tmp_path / "exports").applied == []
    assert apply(url, BASE) == ["+ add column product.notes (text, nullable)"]


def test_drop_retired_refuses_while_changes_are_pending(url: str, tmp_path: Path) -> None:
    from app.dbsync.sync import drop_retired
    with pytest.raises(SchemaChangesPending) as refused:
        drop_retired(url, schema(BASE + "      cas: {type: cas_number}\n"), None, tmp_path / "exports")
    assert str(refused.value) == ("the database has schema changes pending; apply them first:\n"
                                  "  + add column product.cas (cas_number, nullable)   [safe]")


WITH_BATCH = BASE + """
  batch:
    fields:
      number: {type: string}
      product: {type: link, to: product}
"""


def execute(url: str, sql: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(sql))
    engine.dispose()


def test_a_retired_link_no_longer_blocks_deleting_its_target(url: str) -> None:
    apply(url, WITH_BATCH)
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-1', 1)")
    with pytest.raises(sa.exc.IntegrityError):
        execute(url, "DELETE FROM product WHERE id = 1")
    without_link = WITH_BATCH.replace("      product: {type: link, to: product}\n", "")
    assert apply(url, without_link) == ["- retire column batch.product (data kept, hidden)"]
    execute(url, "DELETE FROM product WHERE id = 1")
    assert pick(rows(url, "batch"), ["number", "product_id"]) == [("B-1", 1)]


def test_retire_a_table_then_drop_it_with_its_rows_exported(url: str, tmp_path: Path) -> None:
    from app.dbsync.sync import drop_retired
    apply(url, WITH_BATCH)
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-1', 1)")
    assert apply(url, BASE) == ["- retire table batch (data kept, hidden)"]
    execute(url, "DELETE FROM product WHERE id = 1")  # the hidden rows do not block it
    assert pick(rows(url, "batch"), ["number", "product_id"]) == [("B-1", 1)]
    assert plan_lines(url, BASE) == "nothing to change"
    result = drop_retired(url, schema(BASE), None, tmp_path / "exports")
    assert [s.words for s in result.applied] == ["x drop retired table batch (its rows are exported first)"]
    assert result.exports[0].read_text(encoding="utf-8-sig").splitlines() == ["id,number,product_id", "1,B-1,1"]
    assert not sa.inspect(sa.create_engine(url)).has_table("batch")


CHILD = """
import pathlib, sys, time
from app.dbsync import apply
from app.dbsync.sync import sync_schema
from app.schema import load_schema_text

url, text, marker, pause_in = sys.argv[1:5]
original = getattr(apply.Applier, pause_in)

def paused(self, table, *args):
    if pause_in == "drop_column" or "__crm_new" in args[0]:
        pathlib.Path(marker).write_text("paused")
        time.sleep(120)  # killed here
    return original(self, table, *args)

setattr(apply.Applier, pause_in, paused)
sync_schema(url, load_schema_text({"schema.yaml": text}), None, include_review=True)
"""


@pytest.mark.parametrize("pause_in", ["drop_column", "rename_column"])
def test_a_process_killed_mid_apply_loses_nothing(url: str, tmp_path: Path, pause_in: str) -> None:
    """Killed after the values were converted (before the old column went, or after): the next start
    either finds the plan rolled back (PostgreSQL, SQLite) or finishes it (MariaDB)."""
    import os
    import subprocess
    import sys
    import time
    execute(url, "UPDATE product SET price = '7' WHERE id = 2")
    text = BASE.replace("price: {type: text}", "price: {type: decimal}")
    marker = tmp_path / "paused"
    child = subprocess.Popen([sys.executable, "-c", CHILD, url, text, str(marker), pause_in],
                             env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)})
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert child.poll() is None and time.monotonic() < deadline, "the child did not reach the pause"
        time.sleep(0.05)
    child.kill()
    child.wait()

    if url.startswith("mysql"):  # DDL committed step by step: the next start finishes the plan
        result = sync_schema(url, schema(text), None)
        assert result.resumed == ["! change type of product.price: text → decimal — all 3 rows convert"]
    else:  # one transaction: rolled back, the change still waits for review, values untouched
        with pytest.raises(SchemaChangesPending) as pending:
            sync_schema(url, schema(text), None)
        assert "change type of product.price: text → decimal — all 3 rows convert" in str(pending.value)
        assert pick(rows(url, "product"), ["price"]) == [("12.5",), ("7",), ("30",)]
        assert not [t for t in sa.inspect(sa.create_engine(url)).get_table_names() if t.startswith("_alembic")]
        sync_schema(url, schema(text), None, include_review=True)
    assert [float(r["price"]) for r in rows(url, "product")] == [12.5, 7.0, 30.0]
    assert pick(rows(url, "product"), ["id", "code", "name", "notes"]) == pick(ROWS, ["id", "code", "name", "notes"])
    assert "price__crm_new" not in columns(url, "product")
    assert plan_lines(url, text) == "nothing to change"


STARTER = """
import json, sys, time
from app.factory import create_app

time.sleep(max(0.0, float(sys.argv[3]) - time.time()))  # all four start syncing at the same moment
app = create_app(json.loads(sys.argv[1]))
client = app.test_client()
token = client.post("/api/v1/security/login", json={"username": "admin", "password": sys.argv[2],
                                                    "provider": "db"}).json["access_token"]
info = client.get("/api/v1/customer/_info", headers={"Authorization": f"Bearer {token}"}).json
print(json.dumps({"applied": [step.words for step in app.extensions["crm"].sync.applied],
                  "serves": [c["name"] for c in info["add_columns"]]}))
"""


def start_four(config: dict[str, Any]) -> list[dict[str, Any]]:
    """Start the app in four processes that begin syncing at the same moment; return their reports."""
    import json
    import os
    import subprocess
    import sys
    import time

    from conftest import ADMIN_PASSWORD
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}
    start_at = str(time.time() + 8)
    starters = [subprocess.Popen([sys.executable, "-c", STARTER, json.dumps(config), ADMIN_PASSWORD, start_at],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for _ in range(4)]
    reports = []
    for starter in starters:
        out, err = starter.communicate(timeout=180)
        assert starter.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def history_length(url: str) -> int:
    from app.dbsync.lock import locked_connection
    from app.dbsync.revisions import applied_revisions
    with locked_connection(url) as conn:
        return len(applied_revisions(conn))


def test_four_processes_starting_together_apply_a_plan_once(make_app: Any, schema_dir: Path) -> None:
    first = make_app(schema_dir=schema_dir)
    config = {k: first.config[k] for k in ("CRM_DATABASE_URL", "CRM_SCHEMA_DIR", "CRM_INSTANCE_DIR",
                                           "CRM_MIGRATIONS_DIR", "CRM_SECRET_KEY")}
    path = schema_dir / "customers.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace(
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n    list: [name, industry",
        "      notes: {type: text, label: {zh: 备注, en: Notes}}\n"
        "      reach_no: {type: string, label: {zh: REACH注册号, en: REACH no.}}\n    list: [name, industry", 1),
        encoding="utf-8")
    (schema_dir / "samples.yaml").write_text(
        "tables:\n  sample:\n    fields:\n      number: {type: string}\n      customer: {type: link, to: customer}\n",
        encoding="utf-8")  # a new table: its permissions are added by whichever start gets there first
    reports = start_four(config)
    applied = sorted((r["applied"] for r in reports), key=len)
    assert applied == [[], [], [], ["+ add column customer.reach_no (string, nullable)",
                                    "+ create table sample (2 fields)"]]
    assert all("reach_no" in r["serves"] for r in reports)
    assert history_length(config["CRM_DATABASE_URL"]) == 2
    assert len(list((Path(config["CRM_MIGRATIONS_DIR"]) / "versions").glob("*.py"))) == 2


def test_four_processes_starting_on_an_empty_database(db_url: str, tmp_path: Path) -> None:
    from conftest import ADMIN_PASSWORD, DEFAULT_SCHEMA
    config = {"CRM_DATABASE_URL": db_url, "CRM_SCHEMA_DIR": str(DEFAULT_SCHEMA),
              "CRM_INSTANCE_DIR": str(tmp_path / "instance"), "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations"),
              "CRM_SECRET_KEY": "k" * 40, "CRM_ADMIN_PASSWORD": ADMIN_PASSWORD}
    reports = start_four(config)
    assert sorted(len(r["applied"]) for r in reports) == [0, 0, 0, 9]
    assert all("reach_no" not in r["serves"] and "name" in r["serves"] for r in reports)
    assert history_length(db_url) == 1

def crm(*args: str, url: str, schema_text: str, tmp_path: Path, stdin: str | None = None) -> Any:
    import os
    import subprocess
    import sys
    folder = tmp_path / "cli-schema"
    folder.mkdir(exist_ok=True)
    (folder / "schema.yaml").write_text(schema_text, encoding="utf-8")
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_SCHEMA_DIR": str(folder), "CRM_SECRET_KEY": "k" * 40,
           "CRM_INSTANCE_DIR": str(tmp_path / "inst"), "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations")}
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          input=stdin, cwd=Path(__file__).parent.parent, timeout=120)


def test_schema_commands(url: str, tmp_path: Path) -> None:
    import re
    text = BASE.replace("price: {type: text}", "price: {type: decimal}").replace("      notes: {type: text}\n", "")
    planned = crm("schema", "plan", url=url, schema_text=text, tmp_path=tmp_path)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout == (
        "! change type of product.price: text → decimal — 1 of 3 rows would not convert (ids 2)   [needs review]\n"
        "      refused: fix those rows first, or resolve with --resolve product.price=clear\n"
        "- retire column product.notes (data kept, hidden)   [safe]\n")

    refused = crm("schema", "apply", url=url, schema_text=text, tmp_path=tmp_path)
    assert refused.returncode == 1
    assert refused.stderr.startswith("Not applied: these schema changes are refused because existing rows do not "
                                     "fit them:\n")
    started = crm("init", url=url, schema_text=text, tmp_path=tmp_path)
    assert started.returncode == 1 and "Traceback" not in started.stderr
    assert started.stderr.startswith("The database was not changed and the panel did not start: these schema "
                                     "changes are refused")

    declined = crm("schema", "apply", "--review", "--resolve", "product.price=clear", url=url, schema_text=text,
                   tmp_path=tmp_path, stdin="n\n")
    assert declined.returncode == 1 and "Not applied: nothing was changed" in declined.stderr
    assert pick(rows(url, "product"), ["price"]) == pick(ROWS, ["price"])

    applied = crm("schema", "apply", "--review", "--yes", "--resolve", "product.price=clear", url=url,
                  schema_text=text, tmp_path=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "! change type of product.price: text → decimal — 1 of 3 rows would not convert (ids 2)\n" in applied.stdout
    assert "- retire column product.notes (data kept, hidden)\n" in applied.stdout
    assert "backup of the rows before the change: table crm_backup_" in applied.stdout

    again = crm("schema", "plan", url=url, schema_text=text, tmp_path=tmp_path)
    assert again.stdout == "nothing to change\nretired (data kept, hidden): product.notes\n"
    history = crm("schema", "history", url=url, schema_text=text, tmp_path=tmp_path)
    assert len(re.findall(r"^\d{20}_[0-9a-f]{8}  \d{4}-\d\d-\d\d \d\d:\d\d  ", history.stdout, re.M)) == 2
    assert "    + create table product (6 fields)\n" in history.stdout
    assert history.stdout.endswith("    - retire column product.notes (data kept, hidden)\n")

    dropped = crm("schema", "drop-retired", "--yes", url=url, schema_text=text, tmp_path=tmp_path)
    assert dropped.returncode == 0, dropped.stderr
    assert "x drop retired column product.notes (its values are exported first)" in dropped.stdout
    assert "data written before dropping: " in dropped.stdout and "retired-" in dropped.stdout


def test_a_populated_database_through_a_sequence_of_versions(url: str, tmp_path: Path) -> None:
    """One database, many YAML versions in a row; after each, every earlier value is compared."""
    from app.dbsync.sync import drop_retired
    expected = {r["id"]: dict(r) for r in ROWS}

    def assert_kept(table: str, names: dict[str, str]) -> None:
        """`names` maps a column now to the key it had in ROWS."""
        found = {r["id"]: r for r in rows(url, table)}
        for row_id, before in expected.items():
            assert {now: found[row_id][now] for now in names} == {now: before[old] for now, old in names.items()}

    same = {k: k for k in ("code", "name", "purity", "grade", "notes", "price")}
    v1 = WITH_BATCH.replace("{key: B, label: B}]}", "{key: B, label: B}, {key: C, label: C}]}")
    v1 = v1.replace("      notes: {type: text}\n", "      notes: {type: text}\n      cas: {type: cas_number}\n")
    assert apply(url, v1) == ["+ add option product.grade: C", "+ add column product.cas (cas_number, nullable)",
                              "+ create table batch (2 fields)"]
    assert_kept("product", same)
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-1', 2)")

    v2 = v1.replace("  product:\n", "  item:\n    renamed_from: product\n").replace(
        "purity: {type: string, max_length: 20}", "assay: {type: string, max_length: 20, renamed_from: purity}"
    ).replace("to: product}", "to: item}")
    assert apply(url, v2) == ["~ rename table product → item (from renamed_from)",
                              "~ rename column item.purity → item.assay (from renamed_from)"]
    renamed = {**same, "assay": "purity"}
    renamed.pop("purity")
    assert_kept("item", renamed)
    assert pick(rows(url, "batch"), ["number", "product_id"]) == [("B-1", 2)]

    v3 = v2.replace("      notes: {type: text}\n", "")
    assert apply(url, v3) == ["- retire column item.notes (data kept, hidden)"]
    assert_kept("item", renamed)
    assert apply(url, v2) == ["+ restore retired column item.notes (its data comes back)"]
    assert_kept("item", renamed)

    v4 = v2.replace("price: {type: text}", "price: {type: decimal}")
    with pytest.raises(SchemaChangesPending):
        apply(url, v4)
    assert_kept("item", renamed)
    apply(url, v4, include_review=True, resolutions={"item.price": "clear"})
    for row_id, price in ((1, 12.5), (2, None), (3, 30.0)):
        expected[row_id]["price"] = price
    found = {r["id"]: r for r in rows(url, "item")}
    assert {i: (float(r["price"]) if r["price"] is not None else None) for i, r in found.items()} == {
        1: 12.5, 2: None, 3: 30.0}
    without_price = dict(renamed)
    without_price.pop("price")
    assert_kept("item", without_price)

    v5 = v4.replace("name: {type: string, max_length: 100}", "name: {type: string, max_length: 100, required: true, "
                    "unique: true}")
    with pytest.raises(SchemaChangesPending):
        apply(url, v5)
    execute(url, "UPDATE item SET name = '甲醇' WHERE id = 3")
    expected[3]["name"] = "甲醇"
    assert apply(url, v5) == ["~ make item.name required (no empty rows)", "~ make item.name unique (no duplicates)"]
    assert_kept("item", without_price)

    v6 = v5.replace("      notes: {type: text}\n", "")
    apply(url, v6)
    result = drop_retired(url, schema(v6), None, tmp_path / "exports")
    assert result.exports[0].read_text(encoding="utf-8-sig").splitlines() == ["id,notes", "1,易燃", "2,", "3,常用"]
    kept = dict(without_price)
    kept.pop("notes")
    assert_kept("item", kept)
    assert plan_lines(url, v6) == "nothing to change"


# Messages the tests above assert exactly; docs/schema-changes.md must show each of them verbatim.
DOCUMENTED = (
    "+ add column customer.reach_no (string, nullable)",
    "+ add option product.grade: C",
    "~ rename column product.purity → product.assay (from renamed_from)",
    "- retire column product.notes (data kept, hidden)",
    "+ restore retired column product.notes (its data comes back)",
    "! change type of product.price: text → decimal — 1 of 3 rows would not convert (ids 2)   [needs review]\n"
    "      refused: fix those rows first, or resolve with --resolve product.price=clear",
    "! change type of product.price: text → decimal — all 3 rows convert",
    "! shorten product.purity: max_length 20 → 2 — 2 of 3 rows are longer (ids 1, 2)",
    "~ make product.name required (no empty rows)",
    "~ make product.name unique (no duplicates)",
    "! make product.name required — 1 of 3 rows are empty (ids 3)",
    "! make product.name unique — 2 rows share a value with another row (ids 1, 3)",
    "! remove option product.grade: B — 1 of 3 rows use it (ids 2)",
    "x drop retired column product.notes (its values are exported first)",
    "these schema changes need review and were not applied:\n"
    "  ! change type of product.price: text → decimal — all 3 rows convert\n"
    "nothing was changed; see them with 'crm schema plan' and apply them with 'crm schema apply --review'",
    "the schema YAML asks for changes that no reviewed revision makes, and CRM_SCHEMA_AUTO_APPLY=0:\n"
    "  + add column product.cas (cas_number, nullable)   [safe]",
)


def test_the_messages_are_documented() -> None:
    import re
    docs = (Path(__file__).parent.parent / "docs" / "schema-changes.md").read_text(encoding="utf-8")
    # Code blocks are indented by four spaces; compare them without that indentation.
    text = re.sub(r"^    ", "", docs, flags=re.M)
    missing = [line for line in DOCUMENTED if line not in text]
    assert not missing, missing


def test_a_database_made_before_states_were_recorded_is_adopted(url: str) -> None:
    execute(url, "DROP TABLE crm_schema_state")
    assert plan_lines(url, BASE) == "nothing to change"
    assert apply(url, BASE + "      cas: {type: cas_number}\n") == ["+ add column product.cas (cas_number, nullable)"]
    assert pick(rows(url, "product"), ["id", "code", "notes"]) == pick(ROWS, ["id", "code", "notes"])


def test_text_that_looks_like_a_list_is_kept_as_it_is(url: str) -> None:
    execute(url, "UPDATE product SET name = '[1, 2]' WHERE id = 1")
    execute(url, "UPDATE product SET name = '[]' WHERE id = 2")
    apply(url, BASE.replace("name: {type: string, max_length: 100}", "name: {type: text}"), include_review=True)
    assert pick(rows(url, "product"), ["name"]) == [("[1, 2]",), ("[]",), ("",)]


def test_renaming_onto_a_retired_column_is_refused(url: str) -> None:
    apply(url, BASE.replace("      notes: {type: text}\n", ""))
    text = BASE.replace("      notes: {type: text}\n", "").replace(
        "purity: {type: string, max_length: 20}", "notes: {type: string, max_length: 20, renamed_from: purity}")
    assert plan_lines(url, text) == (
        "~ rename column product.purity → product.notes (from renamed_from)   [needs review]\n"
        "      refused: the table still has a column 'notes' (a retired field or a column the schema does not know); "
        "remove it with 'crm schema drop-retired' first, or pick another key")


def test_a_retired_field_comes_back_under_a_new_key(url: str) -> None:
    apply(url, BASE.replace("      purity: {type: string, max_length: 20}\n", ""))
    text = BASE.replace("purity: {type: string, max_length: 20}", "assay: {type: string, max_length: 20, "
                        "renamed_from: purity}")
    assert apply(url, text) == ["+ restore retired column product.purity as product.assay (from renamed_from)"]
    assert pick(rows(url, "product"), ["assay"]) == pick(ROWS, ["purity"])
    assert plan_lines(url, text) == "nothing to change"


def test_a_restored_link_gets_its_foreign_key_back_after_checking_the_rows(url: str) -> None:
    apply(url, WITH_BATCH)
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-1', 1)")
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-2', 2)")
    without_link = WITH_BATCH.replace("      product: {type: link, to: product}\n", "")
    apply(url, without_link)
    execute(url, "DELETE FROM product WHERE id = 1")
    assert plan_lines(url, WITH_BATCH) == (
        "+ restore retired column batch.product (its data comes back) — 1 of 2 rows point at deleted records "
        "(ids 1)   [needs review]\n"
        "      refused: those records were deleted while batch.product was retired; resolve with "
        "--resolve batch.product=clear to empty those links")
    apply(url, WITH_BATCH, include_review=True, resolutions={"batch.product": "clear"})
    assert pick(rows(url, "batch"), ["number", "product_id"]) == [("B-1", None), ("B-2", 2)]
    with pytest.raises(sa.exc.IntegrityError):
        execute(url, "DELETE FROM product WHERE id = 2")


def test_a_link_added_later_can_be_retired_too(url: str) -> None:
    apply(url, BASE + "  batch:\n    fields:\n      number: {type: string}\n")
    apply(url, WITH_BATCH)  # the link is added to an existing table
    execute(url, "INSERT INTO batch (number, product_id) VALUES ('B-1', 1)")
    with pytest.raises(sa.exc.IntegrityError):
        execute(url, "DELETE FROM product WHERE id = 1")
    apply(url, BASE + "  batch:\n    fields:\n      number: {type: string}\n")
    execute(url, "DELETE FROM product WHERE id = 1")


def test_long_keys_get_backup_and_work_names_that_fit(db_url: str) -> None:
    key = "k" * 63
    table = "t" * 50
    text = f"tables:\n  {table}:\n    fields:\n      {key}: {{type: text}}\n"
    sync_schema(db_url, schema(text), None)
    execute(db_url, f"INSERT INTO {table} ({key}) VALUES ('12')")
    result = sync_schema(db_url, schema(text.replace("type: text", "type: integer")), None, include_review=True)
    assert len(result.backups[0]) <= 63
    assert pick(rows(db_url, table), [key]) == [(12,)]


def test_a_scale_change_is_checked_against_the_rows(url: str) -> None:
    apply(url, BASE + "      cost: {type: decimal, scale: 4}\n")
    execute(url, "UPDATE product SET cost = 1.2345 WHERE id = 1")
    execute(url, "UPDATE product SET cost = 2.5 WHERE id = 2")
    text = BASE + "      cost: {type: decimal, scale: 2}\n"
    assert plan_lines(url, text) == (
        "! change scale of product.cost: 4 → 2 decimal places — 1 of 3 rows would not convert (ids 1)   "
        "[needs review]\n      refused: fix those rows first, or resolve with --resolve product.cost=clear")
    apply(url, text, include_review=True, resolutions={"product.cost": "clear"})
    assert [None if r["cost"] is None else float(r["cost"]) for r in rows(url, "product")] == [None, 2.5, None]


def test_shortening_counts_characters_not_bytes(url: str) -> None:
    execute(url, "UPDATE product SET purity = '常用化学' WHERE id = 3")
    apply(url, BASE.replace("purity: {type: string, max_length: 20}", "purity: {type: string, max_length: 4}"),
          include_review=True, resolutions={"product.purity": "clear"})
    assert pick(rows(url, "product"), ["purity"]) == [(None,), ("99%",), ("常用化学",)]


def test_a_new_table_may_link_to_a_table_renamed_in_the_same_plan(url: str) -> None:
    text = BASE.replace("  product:\n", "  item:\n    renamed_from: product\n") + (
        "  batch:\n    fields:\n      item: {type: link, to: item}\n")
    apply(url, text)
    execute(url, "INSERT INTO batch (item_id) VALUES (3)")
    assert pick(rows(url, "batch"), ["item_id"]) == [(3,)]


def test_empty_texts_count_as_duplicates(url: str) -> None:
    execute(url, "UPDATE product SET name = '' WHERE id = 1")
    text = BASE.replace("name: {type: string, max_length: 100}", "name: {type: string, max_length: 100, unique: true}")
    assert plan_lines(url, text) == (
        "! make product.name unique — 2 rows share a value with another row (ids 1, 3)   [needs review]\n"
        "      refused: give those rows different values first")


def test_revisions_live_next_to_their_schema_folder(tmp_path: Path) -> None:
    from app.settings import PROJECT_DIR, load_config
    assert load_config({"CRM_SCHEMA_DIR": str(tmp_path / "my-schema")})["CRM_MIGRATIONS_DIR"] == str(
        tmp_path / "migrations")
    assert load_config()["CRM_MIGRATIONS_DIR"] == str(PROJECT_DIR / "migrations")


def test_alembic_runs_the_revision_files_too(db_url: str) -> None:
    import os
    import subprocess
    import sys

    from app.schema import load_schema
    from conftest import DEFAULT_SCHEMA, PROJECT_DIR
    alembic = [sys.executable, "-m", "alembic", "-c", str(PROJECT_DIR / "migrations" / "alembic.ini")]
    env = {**os.environ, "CRM_DATABASE_URL": db_url}
    upgraded = subprocess.run([*alembic, "upgrade", "head"], capture_output=True, text=True, env=env, timeout=120)
    assert upgraded.returncode == 0, upgraded.stderr
    current = subprocess.run([*alembic, "current"], capture_output=True, text=True, env=env, timeout=120)
    assert current.stdout.strip().endswith("(head)"), current.stdout + current.stderr
    result = sync_schema(db_url, load_schema(DEFAULT_SCHEMA), PROJECT_DIR / "migrations", auto_apply=False)
    assert (result.replayed, result.applied) == ([], [])


def test_the_projects_alembic_files_are_the_ones_the_panel_writes() -> None:
    """migrations/env.py, alembic.ini and script.py.mako are copies of app/dbsync/alembic_files.py."""
    from app.dbsync.alembic_files import FILES
    from conftest import PROJECT_DIR
    for name, text in FILES.items():
        assert (PROJECT_DIR / "migrations" / name).read_text(encoding="utf-8") == text, name


def test_schema_apply_can_encrypt_a_field(url: str, tmp_path: Path) -> None:
    """With CRM_SCHEMA_AUTO_APPLY=0 the command is the only way to apply a change: encryption included."""
    text = BASE.replace("notes: {type: text}", "notes: {type: text, encrypted: true}")
    applied = crm("schema", "apply", url=url, schema_text=text, tmp_path=tmp_path)
    assert applied.returncode == 0, applied.stderr
    assert "encrypt" in applied.stdout
    stored = {r["id"]: r["notes"] for r in rows(url, "product")}
    assert stored[1].startswith("enc1:") and "易燃" not in stored[1] and stored[2] is None
    again = crm("schema", "plan", url=url, schema_text=text, tmp_path=tmp_path)
    assert again.returncode == 0 and again.stdout == "nothing to change\n"
