"""Strict structured output as OpenAI refuses it: a ``strict: true`` JSON Schema outside the subset is a 400.

The rules are those of OpenAI's Structured Outputs guide, "Supported schemas" (GUIDE §18): the root is an
object (not ``anyOf``); every object sets ``additionalProperties: false`` and lists every property in
``required``; ``allOf``, ``oneOf``, ``not``, ``if``/``then``/``else``, ``dependentRequired``,
``dependentSchemas`` and ``patternProperties`` are not permitted. The messages are the API's, as public
client projects quote them ("Invalid schema for response_format 'NAME': In context=('properties', 'b'),
'additionalProperties' is required to be supplied and to be false."; "… 'required' is required to be
supplied and to be an array including every key in properties. Missing 'note'."; "… 'oneOf' is not
permitted."). Written apart from the package's own check (jupyter_openai/calls/strict.py), so a test
against this server does not grade that check with itself.
"""

from __future__ import annotations

from typing import Any

from .errors import ApiError

_NOT_PERMITTED = ("allOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                  "patternProperties")


def check(name: str, schema: Any, param: str, code: str | None) -> None:
    """Raise the API's 400 when ``schema`` (sent with ``strict: true``) is outside the strict subset."""
    problem = _root(schema)
    if problem:
        raise ApiError(400, f"Invalid schema for response_format '{name}': {problem}", param, code)


def _root(schema: Any) -> str | None:
    if not isinstance(schema, dict) or schema.get("type") != "object":
        got = schema.get("type") if isinstance(schema, dict) else None
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return _walk(schema, ())


def _walk(node: Any, context: tuple) -> str | None:
    if not isinstance(node, dict):
        return None
    for key in _NOT_PERMITTED:
        if key in node:
            return f"In context={context}, '{key}' is not permitted."
    kind = node.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind) or "properties" in node:
        if node.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        required = node.get("required") or []
        for key in node.get("properties") or {}:
            if key not in required:
                return (f"In context={context}, 'required' is required to be supplied and to be an array "
                        f"including every key in properties. Missing '{key}'.")
    children: list[tuple[tuple, Any]] = []
    for table in ("properties", "$defs", "definitions"):
        children += [((*context, table, key), sub) for key, sub in (node.get(table) or {}).items()]
    if isinstance(node.get("items"), dict):
        children.append(((*context, "items"), node["items"]))
    children += [((*context, "anyOf", str(i)), sub) for i, sub in enumerate(node.get("anyOf") or [])]
    for where, sub in children:
        problem = _walk(sub, where)
        if problem:
            return problem
    return None
