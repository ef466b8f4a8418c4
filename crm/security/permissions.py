"""The one mapping from our verbs to Flask-AppBuilder methods and permission names."""
from __future__ import annotations


# Flask-AppBuilder method name (screens and REST API alike) -> the verb that guards it.
METHOD_VERBS: dict[str, str] = {
    "list": "read", "show": "read", "download": "read", "file": "read",
    "get": "read", "get_list": "read", "info": "read",
    "add": "create", "post": "create",
    "edit": "update", "put": "update",
    "delete": "delete",
}


def permission_name(verb: str) -> str:
    """Return the FAB permission name of a verb, e.g. read -> can_read."""
    return f"can_{verb}"
