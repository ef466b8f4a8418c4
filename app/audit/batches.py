"""Import batches: who imported which file when, and every record each batch wrote, so that a batch
can be reverted as a whole while its records are unchanged since (a record's version says so).

Part of the audit trail: created with the log (ensure_audit_tables), kept in backups like it.
"""
from __future__ import annotations

import sqlalchemy as sa

from .log import AUDIT_METADATA, LONG_TEXT

BATCH_TABLE = sa.Table(
    "crm_import_batch", AUDIT_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime, nullable=False, index=True),
    sa.Column("user_id", sa.Integer, index=True),
    sa.Column("username", sa.String(255)),
    sa.Column("table_key", sa.String(63), nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("file_hash", sa.String(64), nullable=False),
    sa.Column("mode", sa.String(16), nullable=False),
    sa.Column("inserted", sa.Integer, nullable=False, default=0),
    sa.Column("updated", sa.Integer, nullable=False, default=0),
    sa.Column("unchanged", sa.Integer, nullable=False, default=0),
    sa.Column("status", sa.String(16), nullable=False, default="done"),  # done | reverted
    sa.Column("reverted_at", sa.DateTime),
    sa.Column("reverted_by", sa.String(255)),
)
BATCH_ROW_TABLE = sa.Table(
    "crm_import_row", AUDIT_METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("batch_id", sa.Integer, sa.ForeignKey("crm_import_batch.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("table_key", sa.String(63), nullable=False),
    sa.Column("record_id", sa.Integer, nullable=False),
    sa.Column("action", sa.String(16), nullable=False),  # insert | update
    sa.Column("version", sa.Integer, nullable=False),  # the record's version right after the import
    sa.Column("before", LONG_TEXT),  # update: the changed fields' values before, as the audit log keeps them
)
