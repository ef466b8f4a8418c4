"""Specs → SQLAlchemy tables and mapped classes, in a registry of their own per build."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm
from sqlalchemy.dialects import mysql

from app.fields.types import default_value, field_type
from app.schema.model import FieldSpec, SchemaSpec, TableSpec

from ..schema import naming

# Ciphertext is base64, a third longer than the value; MariaDB's TEXT stops at 64 KB.
ENCRYPTED_STORAGE = sa.Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
ON_DELETE_SQL = {"restrict": "RESTRICT", "cascade": "CASCADE", "set_null": "SET NULL"}


@dataclass
class BuiltModels:
    """The result of a build: metadata with every table, and the mapped class per table key."""

    schema: SchemaSpec
    metadata: sa.MetaData
    classes: dict[str, type]

    def model(self, table_key: str) -> type:
        return self.classes[table_key]


class RecordBase:
    """Behaviour shared by every generated class: how a record reads in links and headings."""

    __table_spec__: TableSpec

    def __str__(self) -> str:
        value = getattr(self, self.__table_spec__.title, None)
        if value is None or value == "":
            return f"#{getattr(self, 'id', '?')}"
        return str(value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {getattr(self, 'id', None)}>"


def build_models(schema: SchemaSpec, user_class: type) -> BuiltModels:
    """Return tables and mapped classes for `schema`; `user` fields point at `user_class` (FAB's User)."""
    metadata = sa.MetaData()
    registry = orm.registry(metadata=metadata)
    user_table = user_class.__table__  # type: ignore[attr-defined]
    cyclic = cyclic_links(schema)
    tables = {t.key: build_table(t, metadata, user_table, cyclic) for t in schema.tables}
    classes: dict[str, type] = {}
    for spec in schema.tables:
        cls = type(naming.class_name_for(spec.key), (RecordBase,), {"__table_spec__": spec})
        classes[spec.key] = cls
    for spec in schema.tables:
        # The ORM raises the version on each write and refuses one whose row moved on meanwhile.
        registry.map_imperatively(classes[spec.key], tables[spec.key],
                                  properties=relation_properties(spec, tables[spec.key], classes, user_class),
                                  version_id_col=tables[spec.key].c[naming.VERSION_COLUMN])
    orm.configure_mappers()
    return BuiltModels(schema, metadata, classes)


def cyclic_links(schema: SchemaSpec) -> set[tuple[str, str]]:
    """Return (table, field) of links whose target leads back to their own table through links."""
    edges = {t.key: {f.to for f in t.fields if f.type == "link" and f.to} for t in schema.tables}

    def reaches(start: str, goal: str) -> bool:
        seen, todo = set(), [start]
        while todo:
            node = todo.pop()
            if node == goal:
                return True
            if node not in seen:
                seen.add(node)
                todo.extend(edges.get(node, ()))
        return False
    return {(t.key, f.key) for t in schema.tables for f in t.fields
            if f.type == "link" and f.to and reaches(f.to, t.key)}


def build_table(spec: TableSpec, metadata: sa.MetaData, user_table: sa.Table,
                cyclic: set[tuple[str, str]] = frozenset()) -> sa.Table:  # type: ignore[assignment]
    """Return the Table for one table spec: an integer id, then one column per field."""
    columns: list[Any] = [sa.Column("id", sa.Integer, primary_key=True, autoincrement=True)]
    for f in spec.fields:
        columns.append(build_column(spec, f, user_table, (spec.key, f.key) in cyclic))
    columns.append(version_column())
    # AUTOINCREMENT: SQLite would otherwise give a deleted record's id (and its history) to a new one.
    table = sa.Table(naming.table_name_for(spec.key), metadata, *columns, sqlite_autoincrement=True)
    for f in spec.fields:
        if f.unique:
            sa.Index(naming.unique_name_for(spec.key, f.key), table.c[naming.column_name_for(f)], unique=True)
    return table


def version_column() -> sa.Column[Any]:
    """Return the column of a table's version number (rows that predate it start at 1)."""
    return sa.Column(naming.VERSION_COLUMN, sa.Integer, nullable=False, server_default="1")


def build_column(table: TableSpec, spec: FieldSpec, user_table: sa.Table, cyclic: bool = False) -> sa.Column[Any]:
    """Return the column of one field, with its foreign key, uniqueness, index and default."""
    name = naming.column_name_for(spec)
    args: list[Any] = [name, ENCRYPTED_STORAGE if spec.seals_value else field_type(spec).column_type(spec)]
    if spec.is_relation:
        target = user_table.c.id if spec.type == "user" else f"{naming.table_name_for(spec.to or '')}.id"
        # A link in a cycle (customer -> contact -> customer) gets its constraint after both tables exist.
        args.append(sa.ForeignKey(target, ondelete=ON_DELETE_SQL[spec.on_delete], use_alter=cyclic,
                                  name=naming.fk_name_for(table.key, spec.key)))
    kwargs: dict[str, Any] = {
        # Required is enforced by forms and the API, not NOT NULL, so that a later schema change
        # (a field made required, or retired) never breaks existing rows or inserts.
        "nullable": True,
        # A unique field gets a named unique index (build_table), which every database can drop again.
        "index": (spec.index or spec.is_relation) and not spec.unique,
        "info": {"field_spec": spec},
    }
    if spec.default is not None and not spec.seals_value:  # an encrypted default is sealed by app.models.encryption
        kwargs["default"] = lambda _ctx=None, _spec=spec: default_value(_spec)
    return sa.Column(*args, **kwargs)


def relation_properties(spec: TableSpec, table: sa.Table, classes: dict[str, type],
                        user_class: type) -> dict[str, Any]:
    """Return a relationship() per link/user field; a link also gives its target a list of children."""
    props: dict[str, Any] = {}
    for f in spec.fields:
        column = table.c[naming.column_name_for(f)]
        if f.type == "user":
            props[f.key] = orm.relationship(user_class, foreign_keys=[column])
        elif f.type == "link":
            assert f.to is not None
            remote = [table.c.id] if f.to == spec.key else None
            props[f.key] = orm.relationship(
                classes[f.to], foreign_keys=[column], remote_side=remote,
                backref=orm.backref(naming.children_relation_for(spec.key, f.key), **CHILD_RULES[f.on_delete]))
    return props


# How the ORM treats a parent's loaded children when the parent is deleted, per on_delete rule;
# the database's foreign key enforces the same rule for rows that are not loaded.
CHILD_RULES: dict[str, dict[str, Any]] = {
    "cascade": {"cascade": "all, delete-orphan", "passive_deletes": True},
    "set_null": {},
    "restrict": {"passive_deletes": "all"},
}
