"""Bring the database in line with the specs (this release: create what is missing)."""
