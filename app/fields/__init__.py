"""Field types: pure value rules (values.py) and their database/form/API mapping (types.py)."""
