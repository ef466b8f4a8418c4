"""A consistent logical export of every table: rows as JSON lines in a fixed form, with a manifest
of row counts, checksums and column types — the same form a restored database is checked against.

Consistency: PostgreSQL reads in one REPEATABLE READ transaction, MariaDB in one transaction WITH
CONSISTENT SNAPSHOT, and SQLite from a copy taken with its online backup API.
"""
from __future__ import annotations

import base64
import contextlib
import datetime
import decimal
import hashlib
import json
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.pool import NullPool

BATCH = 1000


def encode(value: Any) -> Any:
    """Return a column value as JSON, tagging the types JSON lacks."""
    if isinstance(value, decimal.Decimal):
        return {"$d": format(value, "f")}
    if isinstance(value, datetime.datetime):
        return {"$dt": value.isoformat()}
    if isinstance(value, datetime.date):
        return {"$date": value.isoformat()}
    if isinstance(value, datetime.time):
        return {"$t": value.isoformat()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"$b": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def decode(value: Any) -> Any:
    """Return the column value a JSON value stands for (the inverse of encode)."""
    if isinstance(value, dict) and len(value) == 1:
        (tag, text), = value.items()
        converters: dict[str, Callable[[str], Any]] = {"$d": decimal.Decimal, "$dt": datetime.datetime.fromisoformat,
                      "$date": datetime.date.fromisoformat, "$t": datetime.time.fromisoformat,
                      "$b": lambda t: base64.b64decode(t)}
        if tag in converters:
            return converters[tag](text)
    return value


def column_type(column: Any) -> dict[str, Any]:
    """Return a column's type in portable words, enough to create it again on any database."""
    kind = column["type"]
    try:
        kind = kind.as_generic()
    except NotImplementedError:
        pass
    for name, types in (("text", (sa.Text,)), ("string", (sa.String,)), ("boolean", (sa.Boolean,)),
                        ("datetime", (sa.DateTime,)), ("date", (sa.Date,)), ("numeric", (sa.Numeric,)),
                        ("integer", (sa.Integer,)), ("binary", (sa.LargeBinary,))):
        if isinstance(kind, types):
            if name == "numeric" and isinstance(kind, sa.Float):
                return {"kind": "numeric", "precision": None, "scale": None}
            return {"kind": name, "length": getattr(kind, "length", None),
                    "precision": getattr(kind, "precision", None), "scale": getattr(kind, "scale", None)}
    return {"kind": "text"}


def type_from(words: dict[str, Any]) -> sa.types.TypeEngine[Any]:
    """Return the SQLAlchemy type for column_type()'s words."""
    kind = words["kind"]
    if kind == "string":
        return sa.String(words.get("length") or 255)
    if kind == "numeric":
        return sa.Numeric(words.get("precision"), words.get("scale"))
    long_text = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")  # MariaDB's TEXT stops at 64 KB
    types: dict[str, sa.types.TypeEngine[Any]] = {
        "text": long_text, "boolean": sa.Boolean(), "datetime": sa.DateTime(), "date": sa.Date(),
        "integer": sa.Integer(), "binary": sa.LargeBinary()}
    return types.get(kind, sa.Text())


@contextlib.contextmanager
def snapshot(url: str) -> Iterator[sa.Connection]:
    """Yield a connection that sees every table as of one moment."""
    engine = sa.create_engine(url, poolclass=NullPool)
    if engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            copy = Path(folder) / "snapshot.db"
            source = sqlite3.connect(engine.url.database or "")
            target = sqlite3.connect(copy)
            with target:
                source.backup(target)  # SQLite's online backup: consistent even while others write
            source.close()
            target.close()
            engine.dispose()
            engine = sa.create_engine(f"sqlite:///{copy}", poolclass=NullPool)
            with engine.connect() as conn:
                yield conn
            engine.dispose()
        return
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(sa.text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        else:
            conn.execute(sa.text("START TRANSACTION WITH CONSISTENT SNAPSHOT"))
        yield conn
        conn.rollback()
    engine.dispose()


def table_rows(conn: sa.Connection, table: sa.Table) -> Iterator[list[Any]]:
    """Yield every row of `table` as encoded values in sorted column order, by primary key."""
    names = sorted(c.name for c in table.columns)
    order = list(table.primary_key.columns) or [table.c[n] for n in names]
    offset = 0
    while True:
        rows = conn.execute(sa.select(*[table.c[n] for n in names]).order_by(*order)
                            .offset(offset).limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            yield [encode(v) for v in row]
        offset += len(rows)


def line_of(values: list[Any]) -> bytes:
    """Return one row's JSON line, the form checksums are taken over."""
    return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


def reflect_all(conn: sa.Connection) -> sa.MetaData:
    metadata = sa.MetaData()
    metadata.reflect(conn)
    return metadata


def export_tables(conn: sa.Connection, folder: Path) -> dict[str, Any]:
    """Write data/<table>.jsonl for every table; return the manifest's tables part."""
    inspector = sa.inspect(conn)
    metadata = reflect_all(conn)
    tables = {}
    (folder / "data").mkdir(parents=True, exist_ok=True)
    for name in sorted(metadata.tables):
        table = metadata.tables[name]
        digest, count = hashlib.sha256(), 0
        with open(folder / "data" / f"{name}.jsonl", "wb") as out:
            for values in table_rows(conn, table):
                line = line_of(values)
                out.write(line)
                digest.update(line)
                count += 1
        columns = {c["name"]: c for c in inspector.get_columns(name)}
        tables[name] = {
            "rows": count, "sha256": digest.hexdigest(), "columns": sorted(columns),
            "types": {n: {**column_type(c), "nullable": bool(c.get("nullable", True)),
                          "primary_key": n in {p.name for p in table.primary_key.columns}}
                      for n, c in columns.items()},
        }
    return tables


def checksums(conn: sa.Connection, names: list[str]) -> dict[str, tuple[int, str]]:
    """Return (rows, sha256) per table, computed the way export_tables computes them."""
    metadata = reflect_all(conn)
    found = {}
    for name in names:
        if name not in metadata.tables:
            continue
        digest, count = hashlib.sha256(), 0
        for values in table_rows(conn, metadata.tables[name]):
            digest.update(line_of(values))
            count += 1
        found[name] = (count, digest.hexdigest())
    return found
