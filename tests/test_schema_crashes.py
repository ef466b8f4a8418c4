"""A schema change killed at each boundary, then started again: every value as it was (or as the change
makes it), never a change applied twice, and revision files in step with what the database committed.

The child process is killed with os._exit, as kill -9 would: no rollback or commit of its own, the
database server (or SQLite's journal) drops what was not committed.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.crypto import load_keyring
from app.dbsync.sync import SchemaChangesPending, sync_schema
from app.models.encryption import is_sealed, open_value
from app.schema import load_schema_text

BASE = """
tables:
  deal:
    title: code
    fields:
      code: {type: string, required: true, max_length: 20}
      price: {type: text}
      notes: {type: text}
"""
ENCRYPTED = BASE.replace("notes: {type: text}", "notes: {type: text, encrypted: true}")
DECIMAL = BASE.replace("price: {type: text}", "price: {type: decimal}")
ROWS = [{"code": f"D-{n}", "price": f"{n}.5", "notes": None if n % 7 == 0 else f"配方 {n} 号：乙醇 {n}%"}
        for n in range(1, 41)]

CHILD = """
import os, sys
from pathlib import Path
from app.dbsync import apply, revisions, sync
from app.crypto import load_keyring
from app.schema import load_schema_text

url, text, folder, instance, point = sys.argv[1:6]

def crash(*args, **kwargs):
    os._exit(9)

def crash_after(original):
    def run(*args, **kwargs):
        original(*args, **kwargs)
        os._exit(9)
    return run

if point == "mid-step":  # the values are written to the new column; the old one is still there
    apply.Applier.drop_column = crash
elif point == "after-steps":  # every step done, nothing recorded yet
    apply.Applier.rename_column = crash_after(apply.Applier.rename_column)
elif point == "before-record":  # the new state saved in the transaction, no revision yet
    sync.record_revision = crash
elif point == "after-record":  # revision and history written, not committed
    sync.end_journal = crash
elif point == "after-commit":  # committed, the revision file not written yet
    revisions.RevisionFile.write = crash
ring = load_keyring(None, Path(instance), create=False)
sync.sync_schema(url, load_schema_text({"schema.yaml": text}), Path(folder), include_review=True, ring=ring)
sys.exit("the child was meant to crash at " + point)
"""


def schema(text: str) -> Any:
    return load_schema_text({"schema.yaml": text})


@pytest.fixture
def ring(tmp_path: Path) -> Any:
    return load_keyring(None, tmp_path / "instance", create=True)


@pytest.fixture
def url(db_url: str, tmp_path: Path, ring: Any) -> str:
    """The test's database with BASE applied (revision 1) and ROWS in it."""
    sync_schema(db_url, schema(BASE), tmp_path / "migrations", ring=ring)
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.execute(sa.table("deal", *(sa.column(k) for k in ROWS[0])).insert(), ROWS)
    engine.dispose()
    return db_url


def crash_during(url: str, text: str, tmp_path: Path, point: str) -> None:
    """Run a sync of `text` in a child process that dies at `point`."""
    child = subprocess.run(
        [sys.executable, "-c", CHILD, url, text, str(tmp_path / "migrations"), str(tmp_path / "instance"), point],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent)}, capture_output=True, text=True,
        timeout=120)
    assert child.returncode == 9, child.stderr


def stored(url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        deal = sa.table("deal", sa.column("id"), sa.column("code"), sa.column("price"), sa.column("notes"))
        found = [dict(r) for r in conn.execute(sa.select(deal).order_by(deal.c.id)).mappings()]
    engine.dispose()
    return found


def opened_notes(url: str, ring: Any) -> list[Any]:
    """Return each row's notes as plaintext; fails on a value encrypted twice."""
    spec = next(f for f in schema(ENCRYPTED).tables[0].fields if f.key == "notes")
    notes = []
    for row in stored(url):
        value = open_value(ring, "deal", spec, row["id"], row["notes"]) if is_sealed(row["notes"]) else row["notes"]
        assert not is_sealed(value), f"deal #{row['id']}: encrypted twice"
        notes.append(value)
    return notes


def tables(url: str) -> list[str]:
    engine = sa.create_engine(url)
    names = sa.inspect(engine).get_table_names()
    engine.dispose()
    return names


def history(url: str) -> list[tuple[str, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT revision, summary FROM crm_schema_history ORDER BY revision")).all()
    engine.dispose()
    return [(r[0], r[1]) for r in rows]


def revision_ids(tmp_path: Path) -> list[str]:
    """Return the ids of the revision files in the test's migrations folder."""
    return sorted(p.name[:29] for p in (tmp_path / "migrations" / "versions").glob("*.py"))


def assert_files_match_history(url: str, tmp_path: Path) -> None:
    assert revision_ids(tmp_path) == [revision for revision, _ in history(url)]


@pytest.mark.parametrize("point", ["mid-step", "after-steps", "before-record", "after-record", "after-commit"])
def test_an_encryption_change_killed_at_any_point_is_applied_exactly_once(url: str, tmp_path: Path, ring: Any,
                                                                           point: str) -> None:
    crash_during(url, ENCRYPTED, tmp_path, point)
    mariadb = url.startswith("mysql")

    result = sync_schema(url, schema(ENCRYPTED), tmp_path / "migrations", ring=ring)  # the next start

    if point == "after-commit":  # committed: nothing to do but write the file the crash kept back
        assert (result.resumed, [s.words for s in result.applied]) == ([], [])
    elif mariadb:  # its DDL committed step by step: the journal finishes the plan
        assert result.resumed == ["~ encrypt deal.notes — all 40 rows convert"] and result.applied == []
    else:  # rolled back whole: the start plans the change again
        assert [s.words for s in result.applied] == ["~ encrypt deal.notes — all 40 rows convert"]
    assert opened_notes(url, ring) == [r["notes"] for r in ROWS]
    assert all(is_sealed(r["notes"]) for r in stored(url) if r["notes"] is not None)
    assert [summary for _, summary in history(url)][1:] == ["~ encrypt deal.notes — all 40 rows convert"]
    assert_files_match_history(url, tmp_path)
    assert not [name for name in tables(url) if name.startswith("crm_backup_")]  # never a plaintext copy
    again = sync_schema(url, schema(ENCRYPTED), tmp_path / "migrations", ring=ring)
    assert (again.replayed, again.resumed, again.applied) == ([], [], [])


def test_a_killed_change_is_not_replayed_after_the_yaml_is_reverted(url: str, tmp_path: Path, ring: Any) -> None:
    """The admin takes the change back after the crash: the database ends as the YAML says, values intact."""
    crash_during(url, ENCRYPTED, tmp_path, "before-record")

    result = sync_schema(url, schema(BASE), tmp_path / "migrations", ring=ring)

    if url.startswith("mysql"):  # the journalled plan is finished first, then undone as the YAML asks
        assert [s.words for s in result.applied] == ["~ decrypt deal.notes (its values are stored as plain text "
                                                     "again) — all 40 rows convert"]
    else:
        assert (result.resumed, result.applied, result.replayed) == ([], [], [])
    assert [r["notes"] for r in stored(url)] == [r["notes"] for r in ROWS]
    assert_files_match_history(url, tmp_path)


def test_a_killed_type_change_keeps_one_backup_and_converts_once(url: str, tmp_path: Path, ring: Any) -> None:
    crash_during(url, DECIMAL, tmp_path, "mid-step")

    if url.startswith("mysql"):
        result = sync_schema(url, schema(DECIMAL), tmp_path / "migrations", ring=ring)
        assert result.resumed == ["! change type of deal.price: text → decimal — all 40 rows convert"]
    else:  # rolled back: still waits for review
        with pytest.raises(SchemaChangesPending):
            sync_schema(url, schema(DECIMAL), tmp_path / "migrations", ring=ring)
        assert not [name for name in tables(url) if name.startswith("crm_backup_")]
        sync_schema(url, schema(DECIMAL), tmp_path / "migrations", ring=ring, include_review=True)
    assert [float(r["price"]) for r in stored(url)] == [float(r["price"]) for r in ROWS]
    backups = [name for name in tables(url) if name.startswith("crm_backup_")]
    assert len(backups) == 1, backups
    assert_files_match_history(url, tmp_path)


def test_keys_check_fails_on_a_value_encrypted_twice(url: str, tmp_path: Path, ring: Any) -> None:
    from flask_appbuilder.security.sqla.models import User

    from app.models.build import build_models
    from app.models.encryption import seal
    from app.security.keys import check_values

    sync_schema(url, schema(ENCRYPTED), tmp_path / "migrations", ring=ring)
    spec = next(f for f in schema(ENCRYPTED).tables[0].fields if f.key == "notes")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        first = conn.execute(sa.text("SELECT notes FROM deal WHERE id = 1")).scalar()
        conn.execute(sa.text("UPDATE deal SET notes = :twice WHERE id = 1"),
                     {"twice": seal(ring, "deal", spec, 1, first)})
    report = check_values(engine, build_models(schema(ENCRYPTED), User), ring)
    engine.dispose()
    assert report.failures == ["deal.notes#1: its value opens to another ciphertext (encrypted twice); restore it "
                               "from a backup"]


def test_a_file_kept_back_by_a_crash_is_written_into_the_folder_in_use_now(url: str, tmp_path: Path,
                                                                         ring: Any) -> None:
    """Killed after the commit, then started from a new release directory (the folder moved)."""
    import shutil
    crash_during(url, ENCRYPTED, tmp_path, "after-commit")
    moved = tmp_path / "release-2" / "migrations"
    shutil.copytree(tmp_path / "migrations", moved)

    sync_schema(url, schema(ENCRYPTED), moved, ring=ring)

    assert sorted(p.name[:29] for p in (moved / "versions").glob("*.py")) == [r for r, _ in history(url)]


def test_keys_check_takes_a_value_that_only_looks_like_a_ciphertext_as_a_value(url: str, tmp_path: Path,
                                                                               ring: Any) -> None:
    from flask_appbuilder.security.sqla.models import User

    from app.models.build import build_models
    from app.models.encryption import seal
    from app.security.keys import check_values

    sync_schema(url, schema(ENCRYPTED), tmp_path / "migrations", ring=ring)
    spec = next(f for f in schema(ENCRYPTED).tables[0].fields if f.key == "notes")
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE deal SET notes = :v WHERE id = 1"),
                     {"v": seal(ring, "deal", spec, 1, "enc1:见纸质配方单")})
    report = check_values(engine, build_models(schema(ENCRYPTED), User), ring)
    engine.dispose()
    assert report.failures == []
