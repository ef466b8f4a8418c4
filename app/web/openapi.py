"""The OpenAPI document tells the truth about the generated APIs.

Flask-AppBuilder's operation docstrings declare ids as strings, a 422's message as a string (it
names each field's problems), `_info`'s column lists as objects (they are arrays), and leave out
answers every operation can give (403 for a role without the verb, 405, 413, 429). Each API corrects
its own operations after Flask-AppBuilder has added them, so clients and fuzzers read what is sent.
"""
from __future__ import annotations

from typing import Any

# A 400 or 422 message is a sentence, or each field's problems: {"name": ["必填"]}.
MESSAGE = {"oneOf": [{"type": "string"},
                     {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}]}


def answer(description: str, message: Any = None) -> dict[str, Any]:
    """Return a response component: a JSON object with a message."""
    return {"description": description, "content": {"application/json": {"schema": {
        "type": "object", "properties": {"message": message or {"type": "string"}}}}}}


RESPONSES: dict[str, Any] = {
    "400": answer("Bad request: a parameter or the body is not valid", MESSAGE),
    "401": answer("Not logged in, or the token is malformed, expired or ended by a logout"),
    "403": answer("The user's role may not do this"),
    "404": answer("No such record, or not among the records the user may reach"),
    "405": answer("Method not allowed"),
    "409": answer("The record is still referred to by others, a value is taken, or the record was saved by "
                  "someone else at the same moment"),
    "412": {"description": "If-Match names a version that is no longer current: nothing was saved or deleted; "
                           "`result` is the record as stored now, its version in the ETag header",
            "headers": {"ETag": {"schema": {"type": "string"}}},
            "content": {"application/json": {"schema": {"type": "object", "properties": {
                "message": {"type": "string"}, "id": {"type": "integer"}, "result": {"type": "object"}}}}}},
    "413": answer("The body is larger than the panel accepts"),
    "422": answer("Could not process entity: the message names each field's problems", MESSAGE),
    "429": answer("Too many failed logins: locked for a while"),
    "500": answer("Fatal error"),
    "503": answer("The database is busy or read-only: nothing was saved; try again later"),
    "507": answer("The disk is full: nothing was saved"),
}
# What every operation of a generated API may answer besides its own successes.
COMMON = ("400", "401", "403", "404", "405", "500")
WRITES = ("413", "422")


def ref(code: str) -> dict[str, str]:
    return {"$ref": f"#/components/responses/{code}"}


def correct_operations(paths: dict[str, Any], route_base: str) -> None:
    """Correct the operations of the API under `route_base` (/api/v1/customer) in apispec's paths."""
    for path, operations in paths.items():
        if path != route_base and not path.startswith(f"{route_base}/"):
            continue
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            extra = WRITES + ("409", "503", "507") if method in ("post", "put") else \
                ("409", "503", "507") if method == "delete" else ()
            for code in COMMON + extra:
                responses.setdefault(code, ref(code))
            for parameter in operation.get("parameters", []):
                if parameter.get("name") == "pk":
                    parameter["schema"] = {"type": "integer"}
            if path.endswith("/{pk}"):
                declare_versions(method, operation, responses)
            success = responses.get("200") or responses.get("201") or {}
            body = success.get("content", {}).get("application/json", {}).get("schema", {})
            properties = body.get("properties", {})
            if "ids" in properties:
                properties["ids"] = {"type": "array", "items": {"type": "integer"}}
            if properties.get("id", {}).get("type") == "string":
                properties["id"] = {"type": "integer", "description": "The record's id"}
            for key in ("add_columns", "edit_columns"):
                if key in properties:
                    properties[key] = {"type": "array", "items": {"type": "object"}}


IF_MATCH = {"name": "If-Match", "in": "header", "required": False, "schema": {"type": "string"},
            "description": "The ETag of the record as last read (\"3\"): the write is refused with 412 if the "
                           "record was changed since. Without it, the write applies to whatever is stored."}


def declare_versions(method: str, operation: dict[str, Any], responses: dict[str, Any]) -> None:
    """Declare a record's version: the ETag its GET and PUT answer, the If-Match its PUT and DELETE take."""
    if method in ("get", "put") and "200" in responses:
        responses["200"].setdefault("headers", {})["ETag"] = {
            "schema": {"type": "string"}, "description": "The record's version, for If-Match"}
    if method in ("put", "delete"):
        parameters = operation.setdefault("parameters", [])
        if not any(p.get("name") == "If-Match" for p in parameters):
            parameters.append(IF_MATCH)
        responses.setdefault("412", ref("412"))


def correct_login(paths: dict[str, Any]) -> None:
    """Declare what the login answers besides its own 200 (a malformed body is a 400 with each problem)."""
    for path, operations in paths.items():
        if path.endswith("/login") or path.endswith("/refresh"):
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                for code in ("400", "401", "413", "429", "500"):
                    responses.setdefault(code, ref(code))


def use_responses(api_spec: Any) -> None:
    """Make the response components the ones above, whichever API added its own first, and declare on
    every operation (the OpenAPI document's and the login's too) the refusals any of them may answer."""
    api_spec.components.responses.update(RESPONSES)
    for operations in api_spec._paths.values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code in ("400", "401", "403", "500"):
                responses.setdefault(code, ref(code))


def correct_components(schemas: dict[str, Any], api_name: str) -> None:
    """Mark the related records an answer shows (customer: {id, name}) as null when the link is empty."""
    for name, schema in schemas.items():
        if not name.startswith(f"{api_name}.") or not isinstance(schema, dict):
            continue
        for key, prop in list(schema.get("properties", {}).items()):
            if isinstance(prop, dict) and "$ref" in prop:
                schema["properties"][key] = {"allOf": [prop], "nullable": True}
