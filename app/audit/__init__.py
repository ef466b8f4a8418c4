"""The audit trail: every change, reveal, import and schema change, hash-chained (log.py), captured
from the ORM session (capture.py)."""
