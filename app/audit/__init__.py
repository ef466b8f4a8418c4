"""The audit trail: every change, reveal, import and schema change, hash-chained (log.py), captured
from the ORM session (capture.py); import batches (batches.py) are created with the log."""
from . import batches as batches  # noqa: F401 (its tables join the log's metadata)
