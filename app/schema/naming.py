"""The one place where generated names are made: tables, columns, classes, views, endpoints."""
from __future__ import annotations

import unicodedata
from typing import Any

from .model import FieldSpec

# Every table's version number, raised by each write: a save based on an older one is refused.
VERSION_COLUMN = "row_version"


def table_name_for(table_key: str) -> str:
    """Return the database table name of a table key (the key itself; quoting handles reserved words)."""
    return table_key


def column_name_for(field: FieldSpec) -> str:
    """Return the database column of a field: `<key>_id` for links and users, else the key."""
    return f"{field.key}_id" if field.is_relation else field.key


def class_name_for(table_key: str) -> str:
    """Return the mapped class name, e.g. order_line -> OrderLine."""
    return "".join(part.capitalize() for part in table_key.split("_"))


def view_class_name_for(table_key: str) -> str:
    return f"{class_name_for(table_key)}View"


def api_class_name_for(table_key: str) -> str:
    return f"{class_name_for(table_key)}Api"


def permission_view_name_for(table_key: str) -> str:
    """Return the stable Flask-AppBuilder view name that holds a table's permissions (screens and API)."""
    return f"table:{table_key}"


def view_route_for(table_key: str) -> str:
    return f"/t/{table_key}"


def api_route_for(table_key: str) -> str:
    return f"/api/v1/{table_key}"


def fitted_name(name: str, limit: int = 63) -> str:
    """Return `name`, or when it is too long for PostgreSQL/MariaDB a cut with a hash that keeps it unique."""
    if len(name) <= limit:
        return name
    import hashlib
    return f"{name[:limit - 9]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"


def backup_table_name_for(stamp: str, table_key: str) -> str:
    """Return the table that keeps a copy of a table's rows before a risky schema change."""
    return fitted_name(f"crm_backup_{stamp}_{table_key}")


def temporary_column_for(column: str) -> str:
    """Return the column a type change writes converted values into before it takes the old one's place."""
    return fitted_name(f"{column}__crm_new")


def index_name_for(table_key: str, field_key: str) -> str:
    return f"ix_{table_key}_{field_key}"[:63]


def unique_name_for(table_key: str, field_key: str) -> str:
    return f"uq_{table_key}_{field_key}"[:63]


def fk_name_for(table_key: str, field_key: str) -> str:
    return f"fk_{table_key}_{field_key}"[:63]


def children_relation_for(child_table: str, link_field: str) -> str:
    """Return the backref attribute on a parent that lists its children through one link field."""
    return f"{child_table}__by_{link_field}"


def children_tab_for(child_table: str, link_field: str) -> str:
    """Return the id of the tab on a parent's page that lists its children through one link field."""
    return f"children-{child_table}-{link_field}"


def heading_key(text: Any) -> str:
    """Return a column heading as it is compared with field keys, labels and aliases: full-width
    folded, without spaces, the required mark (* or (必填)) or case."""
    words = unicodedata.normalize("NFKC", str(text or "")).strip()
    for mark in ("(必填)", "*"):
        words = words.replace(mark, "")
    return "".join(words.split()).casefold()
