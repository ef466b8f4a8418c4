"""Backup, restore and verify, as the commands run them.

A backup holds a consistent export of every table (app.backup.dump), the uploaded files and the
YAML schema, with a manifest of counts and checksums; it is compressed and encrypted
(app.backup.container). Restore rebuilds it in an empty database and checks every table against
the manifest; verify does the same in a scratch database that is dropped afterwards.
"""
from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import shutil
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from app.crypto import Keyring

from .container import BackupUnreadable, read_encrypted, write_encrypted
from .dump import checksums, export_tables, snapshot
from .restore import RestoreRefused, load_rows, refuse_unless_empty

FORMAT = 1
SUFFIX = ".crmbak"


@dataclass
class BackupReport:
    path: Path
    tables: int = 0
    rows: int = 0
    files: int = 0
    size: int = 0
    problems: list[str] = field(default_factory=list)


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def make_backup(url: str, ring: Keyring, schema_dir: Path, upload_dir: Path, output: Path) -> BackupReport:
    """Write an encrypted backup of the database, the uploads and the schema to `output`."""
    with tempfile.TemporaryDirectory() as work:
        folder = Path(work) / "backup"
        folder.mkdir()
        with snapshot(url) as conn:
            tables = export_tables(conn, folder)
            dialect = conn.dialect.name
        files = copy_tree(upload_dir, folder / "uploads")
        schema_files = copy_tree(schema_dir, folder / "schema", pattern="*.yaml")
        manifest = {"format": FORMAT, "created": datetime.datetime.now().isoformat(timespec="seconds"),
                    "database": dialect, "tables": tables, "uploads": files, "schema": schema_files}
        (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1), encoding="utf-8")
        with tempfile.SpooledTemporaryFile(max_size=64 << 20) as packed:
            with tarfile.open(fileobj=packed, mode="w:gz") as tar:
                tar.add(folder, arcname="backup")
            packed.seek(0)
            output.parent.mkdir(parents=True, exist_ok=True)
            partial = output.with_name(output.name + ".partial")
            with open(partial, "wb") as target:
                write_encrypted(packed, target, ring)
        partial.replace(output)  # a backup file is complete or absent
    return BackupReport(output, tables=len(tables), rows=sum(t["rows"] for t in tables.values()),
                        files=len(files), size=output.stat().st_size)


def copy_tree(source: Path, target: Path, pattern: str = "*") -> dict[str, str]:
    """Copy the files under `source` (matching `pattern`) to `target`; return relative path -> sha256."""
    found: dict[str, str] = {}
    target.mkdir(parents=True, exist_ok=True)
    if not source.is_dir():
        return found
    for path in sorted(p for p in source.rglob(pattern) if p.is_file()):
        relative = path.relative_to(source).as_posix()
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / relative)
        found[relative] = file_digest(path)
    return found


def open_backup(path: Path, ring: Keyring, into: Path) -> dict[str, Any]:
    """Decrypt and unpack a backup into `into`; return its manifest after checking every part of it."""
    with tempfile.SpooledTemporaryFile(max_size=64 << 20) as plain:
        with open(path, "rb") as source:
            for chunk in read_encrypted(source, ring, path.name):
                plain.write(chunk)
        plain.seek(0)
        with tarfile.open(fileobj=plain, mode="r:gz") as tar:
            tar.extractall(into, filter="data")  # refuses absolute paths, links out of the folder, ...
    folder = into / "backup"
    manifest: dict[str, Any] = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    if manifest.get("format") != FORMAT:
        raise BackupUnreadable(f"{path.name} has format {manifest.get('format')}; this panel reads format {FORMAT}")
    for name, info in manifest["tables"].items():
        if file_digest(folder / "data" / f"{name}.jsonl") != info["sha256"]:
            raise BackupUnreadable(f"{path.name}: the rows of table {name} do not match the manifest")
    for relative, digest in manifest["uploads"].items():
        if file_digest(folder / "uploads" / relative) != digest:
            raise BackupUnreadable(f"{path.name}: the uploaded file {relative} does not match the manifest")
    return manifest


def restore_backup(url: str, ring: Keyring, path: Path, upload_dir: Path, restored_schema_dir: Path) -> BackupReport:
    """Restore a backup into the empty database at `url`; uploads into `upload_dir`, the schema's YAML
    into `restored_schema_dir`. Raise RestoreRefused or BackupUnreadable saying why it cannot."""
    from app.dbsync.sync import sync_schema
    from app.schema import load_schema

    refuse_unless_empty(url)
    report = BackupReport(path)
    with tempfile.TemporaryDirectory() as work:
        manifest = open_backup(path, ring, Path(work))
        folder = Path(work) / "backup"
        sync_schema(url, load_schema(folder / "schema"), None, ring=ring)  # the tables, as the panel makes them
        load_rows(url, folder, manifest)
        report.files = len(copy_tree(folder / "uploads", upload_dir))
        copy_tree(folder / "schema", restored_schema_dir)
        report.problems = compare(url, manifest)
    report.tables = len(manifest["tables"])
    report.rows = sum(t["rows"] for t in manifest["tables"].values())
    if report.problems:
        raise RestoreRefused("the restored rows differ from the backup: " + "; ".join(report.problems))
    return report


def compare(url: str, manifest: dict[str, Any]) -> list[str]:
    """Return one line per table whose restored rows do not match the manifest's count and checksum."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        found = checksums(conn, list(manifest["tables"]))
    engine.dispose()
    problems = []
    for name, info in sorted(manifest["tables"].items()):
        rows, digest = found.get(name, (0, ""))
        if rows != info["rows"]:
            problems.append(f"table {name}: {rows} rows restored, {info['rows']} in the backup")
        elif digest != info["sha256"]:
            problems.append(f"table {name}: the restored values differ from the backup")
    return problems


def verify_backup(url: str, ring: Keyring, path: Path) -> BackupReport:
    """Restore `path` into a scratch database beside `url` and compare every table; the scratch
    database is dropped afterwards. The report's problems are empty when the backup is sound."""
    with scratch_database(url) as scratch, tempfile.TemporaryDirectory() as work:
        return restore_backup(scratch, ring, path, Path(work) / "uploads", Path(work) / "schema")


@contextlib.contextmanager
def scratch_database(url: str) -> Iterator[str]:
    """Yield the URL of a new, empty database of the same kind as `url`; drop it afterwards."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'scratch.db'}"
        return
    name = f"crm_verify_{uuid.uuid4().hex[:10]}"
    postgres = parsed.get_backend_name() == "postgresql"
    admin = sa.create_engine(parsed.set(database="postgres" if postgres else None), isolation_level="AUTOCOMMIT",
                             poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f"CREATE DATABASE {name}" + ("" if postgres else
                                                           " CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f"DROP DATABASE IF EXISTS {name}" + (" WITH (FORCE)" if postgres else "")))
        admin.dispose()


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `folder`; return the deleted files."""
    backups = sorted(folder.glob(f"crm-*{SUFFIX}"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in backups[keep:]:
        old.unlink()
    return backups[keep:]


def default_backup_path(folder: Path) -> Path:
    return folder / f"crm-{datetime.datetime.now():%Y%m%d-%H%M%S}{SUFFIX}"

