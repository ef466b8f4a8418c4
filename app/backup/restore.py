"""Restore a backup into an empty database: the tables are created the way the panel creates them
(from the backup's own schema files), anything else the backup holds (retired columns, backup
tables) from its recorded column types, then every row is loaded with its original id."""
from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy.pool import NullPool

from app.dbsync.ids import start_ids_after

from .dump import decode, type_from

BATCH = 500


class RestoreRefused(Exception):
    """The target database cannot take the backup (it is not empty, or rows do not load)."""


def refuse_unless_empty(url: str) -> None:
    """Raise RestoreRefused naming the tables when the target database already has some."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        names = sorted(sa.inspect(conn).get_table_names())
    engine.dispose()
    if names:
        shown = ", ".join(names[:8]) + (f" and {len(names) - 8} more" if len(names) > 8 else "")
        raise RestoreRefused(f"restore needs an empty database; this one has {len(names)} tables ({shown}). "
                             "Create a new database and point CRM_DATABASE_URL at it")


def rows_of(folder: Path, table: str) -> Iterator[list[Any]]:
    with open(folder / "data" / f"{table}.jsonl", "rb") as lines:
        for line in lines:
            yield [decode(v) for v in json.loads(line)]


def load_rows(url: str, folder: Path, manifest: dict[str, Any]) -> None:
    """Create what the panel did not, then load every table's rows, in one transaction."""
    engine = sa.create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        add_missing(conn, manifest["tables"])
        metadata = sa.MetaData()
        metadata.reflect(conn)
        tables = {name: metadata.tables[name] for name in manifest["tables"]}
        for table in tables.values():
            conn.execute(table.delete())  # what creating the tables wrote (roles, state, ...) is replaced
        order, deferred = load_order(tables)
        for name in order:
            insert_rows(conn, tables[name], folder, manifest["tables"][name]["columns"], deferred.get(name, set()))
        for name, columns in deferred.items():
            fill_deferred(conn, tables[name], folder, manifest["tables"][name]["columns"], columns)
        reset_sequences(conn, tables)
    engine.dispose()


def add_missing(conn: sa.Connection, tables: dict[str, Any]) -> None:
    """Create the backup's tables and columns that creating the schema did not (retired ones, backups)."""
    inspector = sa.inspect(conn)
    live = set(inspector.get_table_names())
    op = Operations(MigrationContext.configure(conn))
    for name, info in tables.items():
        types = info["types"]
        if name not in live:
            columns = [sa.Column(c, type_from(types[c]), primary_key=types[c]["primary_key"],
                                 nullable=types[c]["nullable"] or not types[c]["primary_key"])
                       for c in info["columns"]]
            sa.Table(name, sa.MetaData(), *columns).create(conn)
            continue
        present = {c["name"] for c in inspector.get_columns(name)}
        for column in info["columns"]:
            if column not in present:
                op.add_column(name, sa.Column(column, type_from(types[column]), nullable=True))


def load_order(tables: dict[str, sa.Table]) -> tuple[list[str], dict[str, set[str]]]:
    """Return the tables in an order where every referenced table comes first, and per table the
    foreign-key columns left empty at first and filled afterwards (self-references and cycles)."""
    needs = {name: {fk.column.table.name for fk in table.foreign_keys if fk.column.table.name in tables}
             for name, table in tables.items()}
    deferred: dict[str, set[str]] = {}
    order: list[str] = []
    done: set[str] = set()
    while len(order) < len(tables):
        ready = sorted(n for n in tables if n not in done and needs[n] <= done | {n})
        if not ready:  # a cycle: load one table with the links into the rest of the cycle left empty
            ready = [min(n for n in tables if n not in done)]
            waiting = needs[ready[0]] - done
            deferred.setdefault(ready[0], set()).update(
                fk.parent.name for fk in tables[ready[0]].foreign_keys if fk.column.table.name in waiting)
        for name in ready:
            for fk in tables[name].foreign_keys:
                if fk.column.table.name == name:
                    deferred.setdefault(name, set()).add(fk.parent.name)
            order.append(name)
            done.add(name)
    return order, deferred


def insert_rows(conn: sa.Connection, table: sa.Table, folder: Path, columns: list[str], empty: set[str]) -> None:
    batch = []
    for values in rows_of(folder, table.name):
        row = dict(zip(columns, values, strict=True))
        batch.append({k: (None if k in empty else v) for k, v in row.items()})
        if len(batch) >= BATCH:
            conn.execute(table.insert(), batch)
            batch = []
    if batch:
        conn.execute(table.insert(), batch)


def fill_deferred(conn: sa.Connection, table: sa.Table, folder: Path, columns: list[str], deferred: set[str]) -> None:
    """Set the links that were left empty while their targets were not loaded yet."""
    keys = [c.name for c in table.primary_key.columns]
    names = sorted(deferred)
    statement = table.update().where(*[table.c[k] == sa.bindparam(f"k_{k}") for k in keys]).values(
        {n: sa.bindparam(f"v_{n}") for n in names})
    batch = []
    for values in rows_of(folder, table.name):
        row = dict(zip(columns, values, strict=True))
        if any(row.get(n) is not None for n in names):
            batch.append({**{f"k_{k}": row[k] for k in keys}, **{f"v_{n}": row.get(n) for n in names}})
    if batch:
        conn.execute(statement, batch)


def reset_sequences(conn: sa.Connection, tables: dict[str, sa.Table]) -> None:
    """Move each id sequence past the restored ids and past every id the restored audit log knows
    (the ids of deleted records are never given again): PostgreSQL's serial and named sequences, the
    sequences MariaDB keeps for Flask-AppBuilder's tables, AUTO_INCREMENT and SQLite's counters."""
    move_sequences_past_rows(conn, tables)
    for name, table in tables.items():
        if "id" in table.c:  # then past the audited ids (a table's key is its name, as the log records it)
            start_ids_after(conn, name, name)


def move_sequences_past_rows(conn: sa.Connection, tables: dict[str, sa.Table]) -> None:
    """Move PostgreSQL's and MariaDB's named sequences past the restored ids."""
    if conn.dialect.name == "sqlite":
        return
    postgres = conn.dialect.name == "postgresql"
    sequences = set(conn.execute(sa.text(
        "SELECT sequence_name FROM information_schema.sequences" if postgres else
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'SEQUENCE'")).scalars())
    for name, table in tables.items():
        if "id" not in table.c:
            continue
        owned = (conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": name}).scalar()
                 if postgres else None)
        sequence = owned or (f"{name}_id_seq" if f"{name}_id_seq" in sequences else None)
        highest = conn.execute(sa.select(sa.func.max(table.c.id))).scalar()
        if not sequence or not highest:
            continue
        if postgres:
            conn.execute(sa.text("SELECT setval(:s, :n)"), {"s": sequence, "n": highest})
        else:
            conn.execute(sa.text(f"SELECT SETVAL(`{sequence}`, {int(highest)})"))
