"""Backups: a consistent export of the database, the uploads and the schema, compressed and
encrypted (container.py, dump.py); restore into an empty database (restore.py); the commands' jobs
(jobs.py)."""
