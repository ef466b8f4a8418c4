"""Backups: encrypted, consistent, restored into an empty database with every row, and verified."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from app.backup.dump import checksums
from app.backup.jobs import scratch_database
from conftest import PROJECT_DIR, Api

SECRET = "BACKUP-SECRET-FORMULA"


@pytest.fixture
def filled(app: Any) -> Any:
    """Demo data, an encrypted formula, an attachment and some audit entries."""
    from app.seed import load_demo_data
    load_demo_data(app, scale=0.02)
    api = Api(app)
    product = api.get("/api/v1/product/").json["result"][0]["id"]
    assert api.put(f"/api/v1/product/{product}", json={"formula": SECRET}).status_code == 200
    uploads = Path(app.config["UPLOAD_FOLDER"])
    uploads.mkdir(parents=True, exist_ok=True)
    (uploads / "abc123__安全技术说明书.pdf").write_bytes(b"%PDF scan")
    with app.app_context(), app.extensions["crm"].db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE product SET sds = :f WHERE id = :i"),
                     {"f": "abc123__安全技术说明书.pdf", "i": product})
    app.product_id = product
    return app


def cli(app: Any, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    config = app.config
    base = {**os.environ, "CRM_DATABASE_URL": config["CRM_DATABASE_URL"], "CRM_SCHEMA_DIR": config["CRM_SCHEMA_DIR"],
            "CRM_INSTANCE_DIR": config["CRM_INSTANCE_DIR"], "CRM_MIGRATIONS_DIR": config["CRM_MIGRATIONS_DIR"],
            "CRM_SECRET_KEY": "k" * 40}
    base.pop("CRM_ENCRYPTION_KEYS", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True,
                          env={**base, **env}, cwd=PROJECT_DIR, timeout=300)


def keys_of(app: Any) -> str:
    return ",".join(k.text() for k in app.extensions["crm"].keyring.keys)


def table_sums(url: str) -> dict[str, tuple[int, str]]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        found = checksums(conn, names)
    engine.dispose()
    return found


def test_backup_restore_verify_round_trip(filled: Any, tmp_path: Path) -> None:
    target = tmp_path / "nightly.crmbak"
    made = cli(filled, "backup", "-o", str(target))
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith(f"Wrote {target} (") and "encrypted with key" in made.stdout
    raw = target.read_bytes()
    assert SECRET.encode() not in raw and "安全技术说明书".encode() not in raw and b"zhangwei" not in raw
    original = table_sums(filled.config["CRM_DATABASE_URL"])
    with scratch_database(filled.config["CRM_DATABASE_URL"]) as empty:
        instance = tmp_path / "restored-instance"
        done = cli(filled, "restore", str(target), CRM_DATABASE_URL=empty, CRM_INSTANCE_DIR=str(instance),
                   CRM_ENCRYPTION_KEYS=keys_of(filled))
        assert done.returncode == 0, done.stderr
        assert (done.stdout.startswith(f"Restored {target}: ")
                and "every table checked against the backup" in done.stdout)
        restored = table_sums(empty)
        assert {k: v for k, v in restored.items() if k in original} == original
        # the restored panel reads every row, the encrypted ones and the files included
        from app.factory import create_app
        app = create_app({"CRM_DATABASE_URL": empty, "CRM_SCHEMA_DIR": filled.config["CRM_SCHEMA_DIR"],
                          "CRM_INSTANCE_DIR": str(instance), "CRM_MIGRATIONS_DIR": str(tmp_path / "m2"),
                          "CRM_ENCRYPTION_KEYS": keys_of(filled), "CRM_SECRET_KEY": "k" * 40, "TESTING": True})
        assert Api(app).get(f"/api/v1/product/{filled.product_id}").json["result"]["formula"] == SECRET
        files = list((instance / "uploads").iterdir())
        assert len(files) == 1 and files[0].read_bytes() == b"%PDF scan"
        with app.app_context():
            from app.audit.log import verify
            with app.extensions["crm"].db.engine.connect() as conn:
                count, problems = verify(conn)
            assert count > 2 and problems == []
            app.extensions["crm"].db.engine.dispose()
        refused = cli(filled, "restore", str(target), CRM_DATABASE_URL=empty, CRM_ENCRYPTION_KEYS=keys_of(filled))
        assert refused.returncode == 1 and refused.stderr.startswith("Error: restore needs an empty database; ")
    checked = cli(filled, "backup", "--verify", str(target))
    assert checked.returncode == 0 and "sound" in checked.stdout and "identical to the backup" in checked.stdout


def test_an_altered_or_foreign_backup_is_refused(filled: Any, tmp_path: Path) -> None:
    target = tmp_path / "b.crmbak"
    assert cli(filled, "backup", "-o", str(target)).returncode == 0
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 1
    altered = tmp_path / "altered.crmbak"
    altered.write_bytes(bytes(data))
    checked = cli(filled, "backup", "--verify", str(altered))
    assert checked.returncode == 1
    assert checked.stderr == "Error: altered.crmbak: part 1 does not decrypt — the file was altered or damaged\n"
    cut = tmp_path / "cut.crmbak"
    cut.write_bytes(target.read_bytes()[:-10])
    assert "cut.crmbak" in cli(filled, "backup", "--verify", str(cut)).stderr
    other_key = cli(filled, "backup", "--verify", str(target), CRM_ENCRYPTION_KEYS="B" * 43)
    assert other_key.returncode == 1 and "which is not among the keys in CRM_ENCRYPTION_KEYS" in other_key.stderr


def test_old_backups_are_pruned(filled: Any, tmp_path: Path) -> None:
    folder = Path(filled.config["CRM_INSTANCE_DIR"]) / "backups"
    for _ in range(3):
        assert cli(filled, "backup", "--keep", "2").returncode == 0
        import time
        time.sleep(1.1)  # names carry the time to the second
    assert len(list(folder.glob("crm-*.crmbak"))) == 2
