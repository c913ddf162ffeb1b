"""OpenAI's strict structured output: which JSON Schemas it takes, and the SDK's conversion to them.

With ``strict: true`` (chat's ``response_format.json_schema``, the Responses API's ``text.format``, a
function tool) OpenAI takes only a subset of JSON Schema (its Structured Outputs guide, "Supported
schemas"; GUIDE 18) and answers 400 for anything else: the root is an object; every object sets
``additionalProperties: false`` and lists every one of its properties in ``required``; ``allOf``,
``oneOf``, ``not``, ``if``/``then``/``else``, ``dependentRequired``, ``dependentSchemas`` and
``patternProperties`` are not permitted. :func:`strict_problem` names the first place a schema leaves
that subset, in the API's own words. :func:`to_strict` converts a schema as the official SDK's
``parse()`` converts a pydantic model (``to_strict_json_schema``): every object closed, every property
required, ``default: null`` dropped, a ``$ref`` with sibling keywords inlined, a one-entry ``allOf``
merged; a property that was optional also becomes nullable, so the model can still leave it empty.
Pure dicts, no I/O.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

#: Keywords the strict subset does not permit anywhere (the guide's "not yet supported" composition ones,
#: ``oneOf`` — the API says so by name — and ``patternProperties``).
NOT_PERMITTED = ("allOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
                 "patternProperties")
_NULL = {"type": "null"}


def strict_problem(schema: Any) -> str | None:
    """Why OpenAI would refuse ``schema`` with ``strict: true`` (its 400's words), or None when it is in
    the strict subset."""
    if not isinstance(schema, dict) or schema.get("type") != "object":
        got = schema.get("type") if isinstance(schema, dict) else type(schema).__name__
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return _problem(schema, ())


def _problem(node: Any, context: tuple[str, ...]) -> str | None:
    if not isinstance(node, dict):
        return None
    for key in NOT_PERMITTED:
        if key in node:
            return f"In context={context}, '{key}' is not permitted."
    if _is_object(node):
        if node.get("additionalProperties") is not False:
            return f"In context={context}, 'additionalProperties' is required to be supplied and to be false."
        required = node.get("required") if isinstance(node.get("required"), list) else []
        missing = [name for name in node.get("properties") or {} if name not in required]
        if missing:
            return (f"In context={context}, 'required' is required to be supplied and to be an array including "
                    f"every key in properties. Missing '{missing[0]}'.")
    for where, child in _children(node, context):
        problem = _problem(child, where)
        if problem:
            return problem
    return None


def _is_object(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    return kind == "object" or (isinstance(kind, list) and "object" in kind) or (kind is None and "properties" in node)


def _children(node: dict[str, Any], context: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The subschemas of ``node`` with their context (the path the API names them by)."""
    for key in ("properties", "$defs", "definitions"):
        table = node.get(key)
        if isinstance(table, dict):
            for name, child in table.items():
                yield (*context, key, str(name)), child
    for key in ("items", "additionalProperties"):
        if isinstance(node.get(key), dict):
            yield (*context, key), node[key]
    for key in ("anyOf", "prefixItems"):
        entries = node.get(key)
        if isinstance(entries, list):
            for i, child in enumerate(entries):
                yield (*context, key, str(i)), child


def to_strict(schema: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """A copy of ``schema`` converted towards the strict subset as the SDK's ``parse()`` does (see the module
    docstring), and the properties that were optional (now required and nullable), by name. What cannot be
    converted (``oneOf``, an open ``additionalProperties``) stays, for :func:`strict_problem` to name."""
    root = copy.deepcopy(schema)
    optional: list[str] = []
    return _convert(root, root, frozenset(), optional), list(dict.fromkeys(optional))


def _convert(node: Any, root: dict[str, Any], expanding: frozenset[str], optional: list[str]) -> Any:
    if not isinstance(node, dict):
        return node

    def convert(child: Any, refs: frozenset[str] = expanding) -> Any:
        return _convert(child, root, refs, optional)

    for key in ("$defs", "definitions"):
        if isinstance(node.get(key), dict):
            node[key] = {name: convert(child) for name, child in node[key].items()}
    if _is_object(node) and "additionalProperties" not in node:
        node["additionalProperties"] = False
    properties = node.get("properties")
    if isinstance(properties, dict):
        required = node.get("required") if isinstance(node.get("required"), list) else []
        optional.extend(str(name) for name in properties if name not in required)
        node["properties"] = {name: convert(child) if name in required else nullable(convert(child))
                              for name, child in properties.items()}
        node["required"] = list(properties)
    if isinstance(node.get("items"), dict):
        node["items"] = convert(node["items"])
    if isinstance(node.get("anyOf"), list):
        node["anyOf"] = [convert(child) for child in node["anyOf"]]
    all_of = node.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and isinstance(all_of[0], dict):
        del node["allOf"]
        node.update(convert(all_of[0]))
    elif isinstance(all_of, list):
        node["allOf"] = [convert(child) for child in all_of]
    if "default" in node and node["default"] is None:  # no meaning once every property is required
        del node["default"]
    ref = node.get("$ref")
    if isinstance(ref, str) and len(node) > 1 and ref not in expanding:  # a $ref beside other keywords: inlined
        target = _local(root, ref)
        if isinstance(target, dict):
            del node["$ref"]
            merged = {**copy.deepcopy(target), **node}
            return convert(merged, expanding | {ref})
    return node


def nullable(node: Any) -> Any:
    """``node`` that also takes null (itself when it already does)."""
    if not isinstance(node, dict) or _takes_null(node):
        return node
    kind = node.get("type")
    if isinstance(kind, str) and not {"enum", "const", "anyOf", "$ref"} & set(node):
        return {**node, "type": [kind, "null"]}
    if isinstance(kind, list) and not {"enum", "const", "anyOf", "$ref"} & set(node):
        return {**node, "type": [*kind, "null"]}
    if isinstance(node.get("anyOf"), list) and set(node) <= {"anyOf", "description", "title"}:
        return {**node, "anyOf": [*node["anyOf"], _NULL]}
    return {"anyOf": [node, _NULL]}


def _takes_null(node: dict[str, Any]) -> bool:
    kind = node.get("type")
    if kind == "null" or (isinstance(kind, list) and "null" in kind):
        return True
    if "enum" in node:
        return isinstance(node["enum"], list) and None in node["enum"] and kind is None
    if "const" in node:
        return node["const"] is None
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        return any(isinstance(child, dict) and _takes_null(child) for child in any_of)
    return not node or set(node) <= {"description", "title"}  # {}: anything, null included


def _local(root: dict[str, Any], ref: str) -> Any:
    """The subschema a local ``#/…`` pointer names (None when it names none)."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in (p for p in ref[1:].split("/") if p):
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node
