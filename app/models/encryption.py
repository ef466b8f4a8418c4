"""Encrypted fields on the mapped classes: values are sealed as they are written and opened as they
are loaded, so screens, the API and every later surface work with plaintext objects while the
database holds only ciphertext.

A value's authenticated place includes the record id, which an insert only learns from the
database: the row is inserted with the field empty and sealed right after, in the same flush.
A searchable field's stored form starts with its blind index (`bi1:<index>:enc1:...`), so that an
exact-match search is a prefix comparison on the column.
"""
from __future__ import annotations

import decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, orm

from app.crypto import KEYS_SETTING, PREFIX, DecryptFailed, KeyProblem, Keyring, key_id_of
from app.fields.types import default_value
from app.fields.values import VALUE_TYPES
from app.schema.model import FieldSpec, TableSpec

from ..schema import naming
from .build import BuiltModels

INDEX_PREFIX = "bi1"
NUMERIC_TYPES = ("money", "decimal")


MASK = "●●●●"


def masked(spec: FieldSpec, value: Any) -> str | None:
    """Return what a user who may not reveal `spec` sees of `value`: 138****5678, n***@x.com, ●●●●."""
    if value is None or value == "":
        return None
    text = str(value)
    if spec.type == "phone" and len(text) >= 8:
        return f"{text[:3]}****{text[-4:]}"
    if spec.type == "email" and "@" in text:
        name, domain = text.split("@", 1)
        return f"{name[:1]}***@{domain}"
    return MASK


def place_of(table_key: str, field_key: str, row_id: Any) -> str:
    """Return the authenticated place of a value: 'product.formula#12'."""
    return f"{table_key}.{field_key}#{row_id}"


def as_text(value: Any, spec: FieldSpec) -> str:
    """Return a field value as the text that is encrypted: a number to the field's scale, as shown."""
    if isinstance(value, decimal.Decimal) and spec.type in NUMERIC_TYPES:
        places = VALUE_TYPES[spec.type].scale(spec)  # type: ignore[attr-defined]
        return format(value.quantize(decimal.Decimal(1).scaleb(-places)), "f")
    return str(value)


def searched_text(spec: FieldSpec, value: str) -> str:
    """Return what a search for `value` compares: for a number, the number to the field's scale."""
    if spec.type in NUMERIC_TYPES:
        try:
            return as_text(decimal.Decimal(str(value).strip().replace(",", "")), spec)
        except decimal.InvalidOperation:
            return value
    return value


def from_text(text: str, spec: FieldSpec) -> Any:
    """Return decrypted text as the field's Python value."""
    return decimal.Decimal(text) if spec.type in NUMERIC_TYPES else text


def seal(ring: Keyring, table_key: str, spec: FieldSpec, row_id: Any, value: Any) -> str | None:
    """Return the stored form of `value` (None stays None)."""
    if value is None:
        return None
    text = as_text(value, spec)
    sealed = ring.encrypt(text, place_of(table_key, spec.key, row_id))
    if spec.searchable:
        return f"{INDEX_PREFIX}:{ring.blind_index(text, f'{table_key}.{spec.key}')}:{sealed}"
    return sealed


def ciphertext_of(stored: str) -> str:
    """Return the `enc1:...` part of a stored value (dropping a blind index)."""
    return stored.split(":", 2)[2] if stored.startswith(INDEX_PREFIX + ":") else stored


def is_sealed(stored: Any) -> bool:
    """Return True for a stored encrypted value (with or without a blind index)."""
    return isinstance(stored, str) and ciphertext_of(stored).startswith(PREFIX + ":")


def open_value(ring: Keyring, table_key: str, spec: FieldSpec, row_id: Any, stored: Any) -> Any:
    """Return the plaintext value of a stored one; DecryptFailed when it does not decrypt."""
    if stored is None:
        return None
    if not is_sealed(stored):
        raise DecryptFailed(f"{place_of(table_key, spec.key, row_id)}: the stored value is not encrypted")
    return from_text(ring.decrypt(ciphertext_of(stored), place_of(table_key, spec.key, row_id)), spec)


def index_condition(ring: Keyring, column: Any, table_key: str, spec: FieldSpec, value: str) -> Any:
    """Return the SQL condition 'this searchable encrypted field equals `value`' (under any active key)."""
    return sa.or_(*[column.startswith(f"{INDEX_PREFIX}:{index}:", autoescape=True)
                    for index in ring.blind_indexes(searched_text(spec, value), f"{table_key}.{spec.key}")])


def install_encryption(models: BuiltModels, ring: Keyring) -> None:
    """Seal and open the encrypted fields of every mapped class with `ring`."""
    for table in models.schema.tables:
        specs = [f for f in table.fields if f.seals_value]
        if specs:
            listen(models.model(table.key), table, specs, ring)


def listen(model: type, table: TableSpec, specs: list[FieldSpec], ring: Keyring) -> None:
    column_table = model.__table__  # type: ignore[attr-defined]

    @event.listens_for(model, "before_insert")
    def hold_back(mapper: Any, connection: Any, target: Any) -> None:
        for f in specs:
            if getattr(target, f.key) is None and f.default is not None:
                setattr(target, f.key, default_value(f))  # the column has no default: it would be plain
        pending = {f.key: getattr(target, f.key) for f in specs if getattr(target, f.key) is not None}
        target.__dict__["_crm_unsealed"] = pending
        for key in pending:
            setattr(target, key, None)  # the id is not known yet: the values follow in after_insert

    @event.listens_for(model, "after_insert")
    def seal_new(mapper: Any, connection: Any, target: Any) -> None:
        pending = target.__dict__.pop("_crm_unsealed", {})
        if not pending:
            return
        values = {naming.column_name_for(f): seal(ring, table.key, f, target.id, pending[f.key])
                  for f in specs if f.key in pending}
        connection.execute(column_table.update().where(column_table.c.id == target.id).values(values))
        for key, value in pending.items():
            orm.attributes.set_committed_value(target, key, value)

    @event.listens_for(model, "before_update")
    def seal_changes(mapper: Any, connection: Any, target: Any) -> None:
        pending = {}
        for f in specs:
            if orm.attributes.get_history(target, f.key).has_changes():
                pending[f.key] = getattr(target, f.key)
                setattr(target, f.key, seal(ring, table.key, f, target.id, pending[f.key]))
        target.__dict__["_crm_unsealed"] = pending

    @event.listens_for(model, "after_update")
    def keep_plaintext(mapper: Any, connection: Any, target: Any) -> None:
        for key, value in target.__dict__.pop("_crm_unsealed", {}).items():
            orm.attributes.set_committed_value(target, key, value)

    def open_loaded(target: Any, attrs: Any = None) -> None:
        for f in specs:
            if f.key in target.__dict__ and (attrs is None or f.key in attrs):
                stored = target.__dict__[f.key]
                orm.attributes.set_committed_value(target, f.key, open_value(ring, table.key, f, target.id, stored))

    event.listen(model, "load", lambda target, context: open_loaded(target))
    event.listen(model, "refresh", lambda target, context, attrs: open_loaded(target, attrs))


def check_keys_open_stored_values(session: Any, models: BuiltModels, ring: Keyring) -> None:
    """Open the first stored value of every encrypted field; KeyProblem naming the setting when the
    keys are not the ones the data was encrypted with (the full check is `crm keys check`)."""
    for table in models.schema.tables:
        for spec in (f for f in table.fields if f.seals_value):
            column = models.metadata.tables[naming.table_name_for(table.key)].c[naming.column_name_for(spec)]
            row = session.execute(sa.select(column.table.c.id, column).where(column.is_not(None))
                                  .order_by(column.table.c.id).limit(1)).first()
            if row is None:
                continue
            if is_sealed(row[1]) and ring.key(key_id_of(ciphertext_of(row[1]))) is None:
                raise KeyProblem(f"{place_of(table.key, spec.key, row[0])} is encrypted with key "
                                 f"{key_id_of(ciphertext_of(row[1]))}, which is not among the keys in {ring.source}; "
                                 f"set {KEYS_SETTING} to the keys the data was encrypted with")
    session.rollback()
