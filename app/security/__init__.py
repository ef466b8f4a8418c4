"""Roles and permissions: verbs in YAML map to Flask-AppBuilder permission names here."""
