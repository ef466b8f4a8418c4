"""A database that cannot be opened or written stops every start with one clear line, and nothing is
made: no key file, no tables."""
from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parent.parent


def crm(tmp_path: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CRM_DATABASE_URL": url, "CRM_INSTANCE_DIR": str(tmp_path / "instance"),
           "CRM_SCHEMA_DIR": str(PROJECT_DIR / "schema"), "CRM_MIGRATIONS_DIR": str(tmp_path / "migrations")}
    env.pop("CRM_ENCRYPTION_KEYS", None)
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, env=env,
                          cwd=PROJECT_DIR, timeout=120)


@pytest.mark.parametrize("url,said", [
    ("postgresql+psycopg2://postgres@127.0.0.1:5999/crm",
     "cannot open the database postgresql+psycopg2://postgres@127.0.0.1:5999/crm: connection to server at "
     "\"127.0.0.1\", port 5999 failed: Connection refused — check that the server runs and that host, port, "
     "user, password and database name are right"),
    ("mysql+pymysql://root:secret@127.0.0.1:3999/crm?charset=utf8mb4",
     "cannot open the database mysql+pymysql://root:***@127.0.0.1:3999/crm?charset=utf8mb4: (2003, \"Can't "
     "connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)\")"),
    ("mssql+pyodbc://sa@db/crm", "mssql+pyodbc://sa@db/crm: no driver for this kind of database"),
    ("crm.db", "CRM_DATABASE_URL 'crm.db' is not a database URL; e.g. postgresql+psycopg2://user@host/db"),
    ("sqlite:////no/such/folder/crm.db", "cannot open the database sqlite:////no/such/folder/crm.db: unable to "
                                         "open database file — check that the folder exists"),
])
def test_an_unusable_database_is_one_line_and_makes_nothing(tmp_path: Path, url: str, said: str) -> None:
    done = crm(tmp_path, url, "init")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and said in lines[0], done.stderr
    assert "secret" not in done.stderr
    assert not (tmp_path / "instance" / "encryption.keys").exists()


@pytest.mark.parametrize("command", [("schema", "plan"), ("schema", "apply"), ("user", "unlock", "admin"),
                                     ("backup",), ("audit", "verify")])
def test_every_command_says_the_same_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    done = crm(tmp_path, "postgresql+psycopg2://postgres@127.0.0.1:5999/crm", *command)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().endswith("host, port, user, password and database name are right")
    assert not (tmp_path / "instance" / "encryption.keys").exists()


def test_a_read_only_sqlite_database_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "crm.db"
    sqlite3.connect(path).close()
    done = crm(tmp_path, f"sqlite:///file:{path}?mode=ro&uri=true", "init")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "is read-only: nothing could be saved — make it writable for the panel" in done.stderr
    assert not (tmp_path / "instance" / "encryption.keys").exists()
