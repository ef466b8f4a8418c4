"""Carry out the steps of a plan on one connection, inside the caller's transaction and lock.

Every step is written so that running it again after an interruption finishes the job instead of
failing (a table that exists is not created twice, a rename that happened is not repeated), which
is how a start after a crash completes a plan on MariaDB, whose DDL cannot be rolled back.
"""
from __future__ import annotations

import csv
import datetime
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.migration import MigrationContext
from alembic.operations import Operations

from app.crypto import DecryptFailed
from app.models.build import ON_DELETE_SQL, build_column, build_table, cyclic_links, version_column
from app.models.computed import recompute
from app.models.encryption import INDEX_PREFIX, is_sealed, open_value, seal
from app.schema import naming
from app.schema.model import SchemaSpec

from .ids import never_reuse_ids, rebuilt_keeping_ids, start_ids_after
from .rows import RowCheck, convert, keyring
from .state import spec_from_state, storage_of, table_spec_from_states

USER_TABLE = "ab_user"


class Applier:
    """Applies steps (as data: kind, table, field, data, resolution) with Alembic's operations."""

    def __init__(self, conn: sa.Connection, export_dir: Path | None = None, backup_stamp: str | None = None,
                 resuming: bool = False):
        self.conn = conn
        self.resuming = resuming  # finishing a plan a crash interrupted: some steps may be done
        self.export_dir = export_dir
        self.exports: list[Path] = []
        self.op = Operations(MigrationContext.configure(conn))
        self.sqlite = conn.dialect.name == "sqlite"
        self.stamp = backup_stamp or datetime.datetime.now().strftime("%Y%m%d%H%M%S")
        self.backups: list[str] = []

    def apply(self, steps: list[dict[str, Any]]) -> None:
        """Apply steps in order; new tables are created together so that links between them work."""
        # Renamed tables first (new tables may link to them), then new tables together (so that
        # links between them work), then the rest in plan order.
        for step in steps:
            if step["kind"] == "rename_table":
                self.rename_table(step)
        new_tables = [s for s in steps if s["kind"] == "create_table"]
        if new_tables:
            self.create_tables(new_tables)
        for step in steps:
            if step["kind"] not in ("create_table", "rename_table"):
                HANDLERS[step["kind"]](self, step)

    # -- helpers ---------------------------------------------------------------------------

    def inspector(self) -> sa.Inspector:
        return sa.inspect(self.conn)

    def has_column(self, table: str, column: str) -> bool:
        return any(c["name"] == column for c in self.inspector().get_columns(table))

    def reflect(self, metadata: sa.MetaData, name: str) -> sa.Table:
        if name in metadata.tables:
            return metadata.tables[name]
        return sa.Table(name, metadata, autoload_with=self.conn)

    def backup(self, table: str) -> str:
        """Copy a table's rows to crm_backup_<time>_<table> (once per plan); return the copy's name."""
        name = naming.backup_table_name_for(self.stamp, table)
        if name not in self.backups and not self.inspector().has_table(name):
            quote = self.conn.dialect.identifier_preparer.quote
            self.conn.execute(sa.text(f"CREATE TABLE {quote(name)} AS SELECT * FROM {quote(table)}"))
        if name not in self.backups:
            self.backups.append(name)
        return name

    def column_of(self, table_key: str, state: dict[str, Any], name: str | None = None) -> sa.Column[Any]:
        """Return a detached Column for a field state (optionally under another name)."""
        metadata = sa.MetaData()
        user_table = self.reflect(metadata, USER_TABLE)
        spec = spec_from_state(state)
        built = build_column(table_spec_from_states(table_key, [state]), spec, user_table)
        # Only name and type: the foreign key and indexes are added by the steps that need them.
        return sa.Column(name or state["column"], built.type, nullable=True)

    def add_column(self, table_key: str, state: dict[str, Any], name: str | None = None) -> None:
        """Add a nullable column for a field state, with its foreign key where the database allows."""
        table = naming.table_name_for(table_key)
        column = self.column_of(table_key, state, name)
        link = state["type"] in ("link", "user") and name is None
        if not self.has_column(table, column.name):
            if self.sqlite and link:
                # SQLite cannot add a constraint later, but takes one on the new column itself.
                ddl = sa.schema.CreateColumn(column).compile(dialect=self.conn.dialect)
                references = self.references(table_key, state)
                self.conn.execute(sa.text(f"ALTER TABLE {self.quote(table)} ADD {ddl} {references}"))
                return
            self.op.add_column(table, column)
        if link:
            self.ensure_foreign_key(table_key, state)

    def rebuilt(self, table: str, **kwargs: Any) -> Any:
        """Return Alembic's batch context that rebuilds a SQLite table, keeping it AUTOINCREMENT and its
        id counter."""
        return rebuilt_keeping_ids(self.conn, self.op, table, **kwargs)

    def quote(self, name: str) -> str:
        return self.conn.dialect.identifier_preparer.quote(name)

    def references(self, table_key: str, state: dict[str, Any]) -> str:
        """Return the named REFERENCES clause of a link or user column (SQLite column syntax)."""
        on_delete = ON_DELETE_SQL[state["on_delete"] or "restrict"]
        return (f"CONSTRAINT {self.quote(naming.fk_name_for(table_key, state['key']))} REFERENCES "
                f"{self.quote(self.link_target(state))} (id) ON DELETE {on_delete}")

    def link_target(self, state: dict[str, Any]) -> str:
        return USER_TABLE if state["type"] == "user" else naming.table_name_for(state["to"])

    def ensure_foreign_key(self, table_key: str, state: dict[str, Any]) -> None:
        """Add the foreign key of a link or user column unless it has one (SQLite rebuilds the table)."""
        table = naming.table_name_for(table_key)
        if any(fk["constrained_columns"] == [state["column"]] for fk in self.inspector().get_foreign_keys(table)):
            return
        args = (naming.fk_name_for(table_key, state["key"]), self.link_target(state), [state["column"]], ["id"])
        ondelete = ON_DELETE_SQL[state["on_delete"] or "restrict"]
        if self.sqlite:
            with self.rebuilt(table) as batch:
                batch.create_foreign_key(*args, ondelete=ondelete)
        else:
            self.op.create_foreign_key(args[0], table, *args[1:], ondelete=ondelete)

    def restore_column(self, step: dict[str, Any]) -> None:
        """A restored link gets its foreign key back, after links to deleted records are emptied if chosen."""
        state = step["data"]["field"]
        if state["type"] not in ("link", "user"):
            return
        table = naming.table_name_for(step["table"])
        if step.get("resolution") == "clear":
            self.backup(table)
            target = sa.table(self.link_target(state), sa.column("id"))
            rows = sa.table(table, sa.column(state["column"]))
            column = rows.c[state["column"]]
            self.conn.execute(rows.update().where(column.is_not(None), column.not_in(sa.select(target.c.id)))
                              .values({state["column"]: None}))
        self.ensure_foreign_key(step["table"], state)

    def indexes_on(self, table: str, column: str) -> list[Any]:
        return [i for i in self.inspector().get_indexes(table) if i["column_names"] == [column]]

    def ensure_indexes(self, table_key: str, state: dict[str, Any]) -> None:
        """Create the unique index or plain index the field state asks for, if missing."""
        table, column = naming.table_name_for(table_key), state["column"]
        existing = self.indexes_on(table, column)
        if state["unique"] and not any(i["unique"] for i in existing):
            self.op.create_index(naming.unique_name_for(table_key, state["key"]), table, [column], unique=True)
        elif state["index"] and not state["unique"] and not existing:
            self.op.create_index(naming.index_name_for(table_key, state["key"]), table, [column])

    def drop_column(self, table: str, column: str) -> None:
        """Drop a column with its indexes (SQLite rebuilds the table, with foreign keys off)."""
        for index in self.indexes_on(table, column):
            self.op.drop_index(index["name"], table_name=table)
        if self.sqlite:
            with self.rebuilt(table) as batch:
                batch.drop_column(column)
        else:
            self.op.drop_column(table, column)

    def rename_column(self, table: str, old: str, new: str) -> None:
        quote = self.conn.dialect.identifier_preparer.quote
        self.conn.execute(sa.text(f"ALTER TABLE {quote(table)} RENAME COLUMN {quote(old)} TO {quote(new)}"))

    def set_length(self, table: str, state: dict[str, Any], old: dict[str, Any]) -> None:
        if self.sqlite:  # SQLite does not enforce a declared length
            return
        self.op.alter_column(table, state["column"], type_=sa.String(state["max_length"]),
                             existing_type=sa.String(old["max_length"]), existing_nullable=True)

    # -- steps -----------------------------------------------------------------------------

    def create_tables(self, steps: list[dict[str, Any]]) -> None:
        metadata = sa.MetaData()
        user_table = self.reflect(metadata, USER_TABLE)
        specs = [table_spec_from_states(s["table"], s["data"]["fields"]) for s in steps]
        new_names = {naming.table_name_for(s.key) for s in specs}
        for spec in specs:
            for f in spec.fields:
                target = naming.table_name_for(f.to) if f.type == "link" and f.to else None
                if target and target not in new_names:
                    self.reflect(metadata, target)
        cyclic = cyclic_links(SchemaSpec(tuple(specs)))
        tables = [build_table(spec, metadata, user_table, cyclic) for spec in specs]
        metadata.create_all(self.conn, tables=tables, checkfirst=True)
        for spec, table in zip(specs, tables, strict=True):
            start_ids_after(self.conn, table.name, spec.key)  # a table made again after it was dropped

    def add_column_step(self, step: dict[str, Any]) -> None:
        state = step["data"]["field"]
        self.add_column(step["table"], state)
        self.ensure_indexes(step["table"], state)

    def rename_table(self, step: dict[str, Any]) -> None:
        old, new = naming.table_name_for(step["data"]["old"]), naming.table_name_for(step["table"])
        if self.inspector().has_table(old) and not self.inspector().has_table(new):
            self.op.rename_table(old, new)

    def rename_column_step(self, step: dict[str, Any]) -> None:
        table = naming.table_name_for(step["table"])
        old, new = step["data"]["old"]["column"], step["data"]["field"]["column"]
        if self.has_column(table, old) and not self.has_column(table, new):
            self.rename_column(table, old, new)
        if step["data"].get("restore"):  # a retired field brought back under a new key
            self.restore_column(step)

    def retire_column(self, step: dict[str, Any]) -> None:
        """Keep the data; drop a retired link's foreign key so it never blocks deleting a parent."""
        state = step["data"]["field"]
        if state["type"] in ("link", "user"):
            self.drop_foreign_keys(naming.table_name_for(step["table"]), [state["column"]])

    def retire_table(self, step: dict[str, Any]) -> None:
        """Keep the rows; drop the table's foreign keys so its hidden rows never block a delete."""
        table = naming.table_name_for(step["table"])
        if self.inspector().has_table(table):
            self.drop_foreign_keys(table)

    def drop_foreign_keys(self, table: str, columns: list[str] | None = None) -> None:
        """Drop the table's foreign keys (only those on `columns`, when given)."""
        found = [fk for fk in self.inspector().get_foreign_keys(table)
                 if columns is None or fk["constrained_columns"] == columns]
        if not found:
            return
        if not self.sqlite:
            for fk in found:  # PostgreSQL and MariaDB name every foreign key
                self.op.drop_constraint(fk["name"] or "", table, type_="foreignkey")
            return
        # SQLite keeps a key declared on an added column without a name: rebuild the table from a
        # copy of its definition that leaves the keys out (indexes are kept).
        definition = sa.Table(table, sa.MetaData(), autoload_with=self.conn)
        for constraint in [c for c in definition.constraints if isinstance(c, sa.ForeignKeyConstraint)]:
            if columns is None or [col.name for col in constraint.columns] == columns:
                definition.constraints.discard(constraint)
                for col in constraint.columns:
                    col.foreign_keys.difference_update(constraint.elements)
        with self.rebuilt(table, copy_from=definition):
            pass

    def change_type(self, step: dict[str, Any]) -> None:
        """Rewrite a column as another type: convert each value in Python, then swap the columns."""
        table_key, old, new = step["table"], step["data"]["old"], step["data"]["field"]
        table = naming.table_name_for(table_key)
        temp = naming.temporary_column_for(new["column"])
        if not self.has_column(table, old["column"]) and self.has_column(table, temp):
            self.rename_column(table, temp, new["column"])  # interrupted after the old column went
            self.ensure_indexes(table_key, new)
            return
        if self.resuming and not self.has_column(table, temp) and self.converted_already(table_key, old, new):
            return
        encrypting = storage_of(new) == "encrypted"
        if "encrypted" not in (storage_of(old), storage_of(new)):
            self.backup(table)  # never a plaintext copy of values being encrypted (the change is lossless)
        spec = spec_from_state(new)
        self.add_column(table_key, new, name=temp)
        check = RowCheck(self.conn, table_spec_from_states(table_key, [old]), old, table)
        target = sa.table(table, sa.column("id"), sa.column(temp, self.column_of(table_key, new).type))
        updates = []
        for row_id, value in check.values():
            converted, ok = convert(value, spec, old["type"])
            if not ok and step.get("resolution") != "clear":
                raise ValueError(f"{table_key}.{new['key']}: row id {row_id} no longer converts; plan again")
            if converted is not None and ok:
                if encrypting:
                    converted = sealed_once(table_key, spec, row_id, converted)
                updates.append({"row_id": row_id, "value": converted})
        if updates:
            self.conn.execute(target.update().where(target.c.id == sa.bindparam("row_id"))
                              .values({temp: sa.bindparam("value")}), updates)
        self.drop_column(table, old["column"])
        self.rename_column(table, temp, new["column"])
        self.ensure_indexes(table_key, new)

    def converted_already(self, table_key: str, old: dict[str, Any], new: dict[str, Any]) -> bool:
        """Return True when the column already stores the new kind of value (the change completed)."""
        if storage_of(old) == storage_of(new) and old.get("searchable") == new.get("searchable"):
            return False
        table = naming.table_name_for(table_key)
        if "encrypted" in (storage_of(old), storage_of(new)):
            column = sa.table(table, sa.column(new["column"])).c[new["column"]]
            sample = self.conn.execute(sa.select(column).where(column.is_not(None)).limit(1)).scalar()
            return sample is None or (is_sealed(sample) == (storage_of(new) == "encrypted")
                                      and str(sample).startswith(INDEX_PREFIX) == bool(new.get("searchable")))
        live = next(c["type"] for c in self.inspector().get_columns(table) if c["name"] == new["column"])
        return live_storage(live) == storage_of(new)

    def change_length(self, step: dict[str, Any]) -> None:
        table = naming.table_name_for(step["table"])
        old, new = step["data"]["old"], step["data"]["field"]
        if step["kind"] == "shorten":
            self.backup(table)
            if step.get("resolution") == "clear":
                target = sa.table(table, sa.column(new["column"]))
                column = target.c[new["column"]]
                # MariaDB's LENGTH counts bytes; CHAR_LENGTH counts characters, as max_length does.
                length = sa.func.length if self.sqlite else sa.func.char_length
                self.conn.execute(target.update().where(length(column) > new["max_length"])
                                  .values({new["column"]: None}))
        self.set_length(table, new, old)

    def add_unique(self, step: dict[str, Any]) -> None:
        self.ensure_indexes(step["table"], step["data"]["field"])

    def drop_unique(self, step: dict[str, Any]) -> None:
        table = naming.table_name_for(step["table"])
        state = step["data"]["field"]
        for index in self.indexes_on(table, state["column"]):
            if index["unique"]:
                self.op.drop_index(index["name"], table_name=table)
        for constraint in self.inspector().get_unique_constraints(table):
            name = constraint.get("name")
            if constraint["column_names"] == [state["column"]] and name:
                self.op.drop_constraint(name, table, type_="unique")
        self.ensure_indexes(step["table"], state)

    def add_index(self, step: dict[str, Any]) -> None:
        self.ensure_indexes(step["table"], step["data"]["field"])

    def export(self, table: str, columns: list[str]) -> Path:
        """Write id and `columns` of every row to a dated CSV file (UTF-8 for Excel); return its path."""
        if self.export_dir is None:
            raise ValueError("dropping retired data needs a folder for the export (CRM_INSTANCE_DIR)")
        self.export_dir.mkdir(parents=True, exist_ok=True)
        suffix = f".{columns[0]}" if len(columns) == 1 else ""
        path = self.export_dir / f"retired-{self.stamp}-{table}{suffix}.csv"
        source = sa.table(table, sa.column("id"), *(sa.column(c) for c in columns))
        with path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["id", *columns])
            for row in self.conn.execute(sa.select(source).order_by(source.c.id)):
                writer.writerow(["" if v is None else v for v in row])
        self.exports.append(path)
        return path

    def drop_retired_column(self, step: dict[str, Any]) -> None:
        table, column = naming.table_name_for(step["table"]), step["data"]["field"]["column"]
        if self.has_column(table, column):
            self.export(table, [column])
            self.drop_column(table, column)

    def drop_retired_table(self, step: dict[str, Any]) -> None:
        table = naming.table_name_for(step["table"])
        if self.inspector().has_table(table):
            self.export(table, [c["name"] for c in self.inspector().get_columns(table)
                               if c["name"] not in ("id", naming.VERSION_COLUMN)])
            self.op.drop_table(table)

    def add_version(self, step: dict[str, Any]) -> None:
        table = naming.table_name_for(step["table"])
        if not self.has_column(table, naming.VERSION_COLUMN):
            self.op.add_column(table, version_column())

    def never_reuse_ids(self, step: dict[str, Any]) -> None:
        never_reuse_ids(self.conn, self.op, naming.table_name_for(step["table"]), step["table"])

    def nothing(self, step: dict[str, Any]) -> None:
        """Steps that change only the recorded state (retire a table, options, required)."""


def sealed_once(table_key: str, spec: Any, row_id: int, value: Any) -> str | None:
    """Return the stored form of a value being encrypted; a value that is already a ciphertext of
    this place (a change replayed over its own result) is kept, never encrypted a second time."""
    if is_sealed(value):
        try:
            open_value(keyring(), table_key, spec, row_id, value)
            return str(value)
        except DecryptFailed:
            pass  # text that merely looks like a ciphertext is a value like any other
    return seal(keyring(), table_key, spec, row_id, value)


def live_storage(column_type: sa.types.TypeEngine[Any]) -> str:
    """Return the storage kind (as in state.STORAGE) of a column type read from the database."""
    for kind, types in (("text", (sa.Text,)), ("varchar", (sa.String,)), ("boolean", (sa.Boolean,)),
                        ("datetime", (sa.DateTime,)), ("date", (sa.Date,)), ("numeric", (sa.Numeric,)),
                        ("integer", (sa.Integer,))):
        if isinstance(column_type, types):
            return kind
    return type(column_type).__name__.lower()


def recompute_step(applier: Applier, step: dict[str, Any]) -> None:
    """Recompute a computed field (and those that read it) for every row, a batch of ids at a time;
    run again after an interruption it simply computes the same values again."""
    states: dict[str, list[dict[str, Any]]] = step["data"]["states"]
    schema = SchemaSpec(tables=tuple(table_spec_from_states(key, fields) for key, fields in states.items()))
    metadata = sa.MetaData()
    recompute(applier.conn, schema, lambda key: applier.reflect(metadata, naming.table_name_for(key)), None,
              only=[(step["table"], step["field"])])


HANDLERS: dict[str, Callable[[Applier, dict[str, Any]], None]] = {
    "recompute": recompute_step,
    "add_column": Applier.add_column_step,
    "rename_table": Applier.rename_table,
    "rename_column": Applier.rename_column_step,
    "restore_column": Applier.restore_column,
    "retire_column": Applier.retire_column,
    "retire_table": Applier.retire_table,
    "change_type": Applier.change_type,
    "widen": Applier.change_length,
    "shorten": Applier.change_length,
    "require": Applier.nothing,
    "add_unique": Applier.add_unique,
    "drop_unique": Applier.drop_unique,
    "add_index": Applier.add_index,
    "add_option": Applier.nothing,
    "remove_option": Applier.nothing,
    "drop_column": Applier.drop_retired_column,
    "drop_table": Applier.drop_retired_table,
    "never_reuse_ids": Applier.never_reuse_ids,
    "add_version": Applier.add_version,
}
