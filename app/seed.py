"""Insert the generated demo rows into an empty database."""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from app.audit.log import Entry, append
from app.demo import build_demo_rows
from app.models.computed import recompute, table_of
from app.models.encryption import seal
from app.schema import naming
from app.security.users import add_user

# (login, family name, given name, role); the sales users own the demo customers and orders.
DEMO_USERS = (("zhangwei", "张", "伟", "sales"), ("lina", "李", "娜", "sales"), ("wangfang", "王", "芳", "sales"),
              ("zhaomin", "赵", "敏", "sales_manager"), ("chenjing", "陈", "静", "finance"),
              ("liuyang", "刘", "洋", "service"), ("sunli", "孙", "立", "rnd"), ("zhoujie", "周", "杰", "auditor"))
DEMO_PASSWORD = "chem-demo-2026"


class DemoNotEmpty(Exception):
    """Demo data is only loaded into empty tables."""


def load_demo_data(app: Any, seed: int = 2024, scale: float = 1.0) -> dict[str, int]:
    """Fill every table with demo rows; return the count per table. Raises DemoNotEmpty if data exists."""
    state = app.extensions["crm"]
    with app.app_context():
        session = app.appbuilder.session
        models = state.models
        for table in state.schema.tables:
            if session.execute(sa.select(sa.func.count()).select_from(models.model(table.key))).scalar():
                raise DemoNotEmpty(f"table '{table.key}' already has records; demo data is only loaded "
                                   "into an empty database")
        user_ids = demo_user_ids(app)
        rows = build_demo_rows(state.schema, user_ids, seed=seed, scale=scale)
        ids: dict[str, list[int]] = {}
        counts = {}
        try:
            for table_key, table_rows in rows.items():
                ids[table_key] = insert_rows(session, models, table_key, table_rows, ids, state.keyring)
                counts[table_key] = len(table_rows)
            # Totals, amounts and balances come from the schema's compute: expressions, as for any write.
            recompute(session.connection(), state.schema, table_of(models), None)
            # The rows are inserted in bulk, not one by one through the ORM: one import event says so.
            append(session.connection(), [Entry("import", changes={"demo data": counts}, username="(demo data)")])
            session.commit()
        except BaseException:
            session.rollback()
            raise
    return counts


def demo_user_ids(app: Any) -> list[int]:
    """Create the demo users whose roles the schema declares; return the ids of the sales users."""
    sm = app.appbuilder.sm
    roles = app.extensions["crm"].schema.roles
    sales = []
    for username, last, first, role in DEMO_USERS:
        if role not in roles:
            continue
        user = sm.find_user(username=username) or add_user(app.appbuilder, username, role, DEMO_PASSWORD,
                                                            first_name=first, last_name=last)
        if role == "sales":
            sales.append(user.id)
    return sales


def insert_rows(session: Any, models: Any, table_key: str, rows: list[dict[str, Any]],
                ids: dict[str, list[int]], ring: Any) -> list[int]:
    """Insert rows (links given as indexes into earlier tables); return the new ids in order.

    Encrypted fields are sealed once the ids are known (their ciphertext is bound to the record).
    """
    table_spec = models.schema.table(table_key)
    table = models.metadata.tables[naming.table_name_for(table_key)]
    batch = []
    for row in rows:
        values = {}
        for f in table_spec.fields:
            value = row.get(f.key)
            if f.type == "link" and value is not None:
                value = ids[f.to or ""][value]
            values[naming.column_name_for(f)] = None if f.seals_value or f.is_computed else value
        batch.append(values)
    if not batch:
        return []
    statement = sa.insert(table).returning(table.c.id, sort_by_parameter_order=True)
    new_ids = list(session.scalars(statement, batch))
    for spec in (f for f in table_spec.fields if f.seals_value):
        column = table.c[naming.column_name_for(spec)]
        sealed = [{"row_id": row_id, "value": seal(ring, table_key, spec, row_id, row.get(spec.key))}
                  for row_id, row in zip(new_ids, rows, strict=True) if row.get(spec.key) is not None]
        if sealed:
            session.execute(table.update().where(table.c.id == sa.bindparam("row_id"))
                            .values({column.name: sa.bindparam("value")}), sealed)
    return new_ids
