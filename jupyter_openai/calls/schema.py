"""Structured output: a JSON Schema (or a pydantic model class) for the answer, sent and checked.

:func:`normalize` turns what the user gives (a dict, JSON text, a ``.json`` file, a pydantic model
class) into a name and a JSON Schema; :func:`request_fields` words it as each endpoint takes it
(``response_format`` on chat, ``text.format`` on responses; completions has no such field);
:func:`check_answer` parses an answer and validates it with ``jsonschema`` (the ``batch`` extra),
raising :class:`SchemaError` with one readable line. No IPython here; jsonschema and pydantic load
on first use.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from ..api.params import CHAT, RESPONSES
from ..errors import ConfigurationError, OpenAIError

DEFAULT_NAME = "answer"
INSTALL_HINT = 'pip install "jupyter-openai[batch]"'


class SchemaError(OpenAIError):
    """The answer is not JSON, or does not match the schema."""


def normalize(schema: Any) -> tuple[str, dict[str, Any]]:
    """``(name, json_schema)`` for a dict, JSON text, a path to a ``.json`` file or a pydantic model
    class; raises :class:`ConfigurationError` for anything else."""
    if isinstance(schema, type) and hasattr(schema, "model_json_schema"):  # pydantic v2 model class
        schema = schema.model_json_schema()
    elif isinstance(schema, (str, os.PathLike)):
        schema = _read(os.fspath(schema))
    if not isinstance(schema, Mapping):
        raise ConfigurationError(f"a schema must be a JSON Schema object or a pydantic model class, "
                                 f"got {type(schema).__name__}")
    schema = dict(schema)
    name = re.sub(r"[^A-Za-z0-9_-]", "_", str(schema.get("title") or DEFAULT_NAME))[:64]
    return name, schema


def _read(text: str) -> Any:
    stripped = text.strip()
    if not stripped.startswith("{") and os.path.isfile(os.path.expanduser(stripped)):
        with open(os.path.expanduser(stripped), encoding="utf-8") as handle:
            stripped = handle.read()
    try:
        return json.loads(stripped)
    except ValueError:
        raise ConfigurationError(f"--schema: not JSON and not a .json file: {text[:60]!r}") from None


def request_fields(endpoint: str, schema: Any, params: Mapping[str, Any] | None = None, *,
                   json_object: bool = False) -> dict[str, Any]:
    """The request fields that ask ``endpoint`` for answers in ``schema``: ``response_format`` (chat)
    or ``text.format`` (responses, merged into a ``text`` already in ``params``). ``strict`` is set when
    the schema allows it (an object that forbids additional properties). ``json_object``: chat's
    ``{"type": "json_object", "schema": …}``, the form llama-cpp-python's server (the bundled offline
    model) takes instead of ``json_schema``, which it refuses."""
    name, body = normalize(schema)
    spec: dict[str, Any] = {"name": name, "schema": body}
    if body.get("additionalProperties") is False:
        spec["strict"] = True
    if endpoint == CHAT and json_object:
        return {"response_format": {"type": "json_object", "schema": body}}
    if endpoint == CHAT:
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if endpoint == RESPONSES:
        text = dict((params or {}).get("text") or {})
        return {"text": {**text, "format": {"type": "json_schema", **spec}}}
    raise ConfigurationError("a schema works with the chat and responses endpoints only")


def _validator(schema: Mapping[str, Any]) -> Any:
    try:
        import jsonschema
    except ImportError:
        raise ConfigurationError(f"checking answers against a schema needs jsonschema: {INSTALL_HINT}") from None
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"the schema is not a valid JSON Schema: {exc.message}") from None
    return cls(schema)


def check_schema(schema: Any) -> dict[str, Any]:
    """The JSON Schema of ``schema``, checked to be one (raises :class:`ConfigurationError`)."""
    body = normalize(schema)[1]
    _validator(body)
    return body


def check_answer(text: str, schema: Mapping[str, Any]) -> Any:
    """The answer parsed as JSON and valid against ``schema``; :class:`SchemaError` if it is not."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"the answer is not JSON ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
    errors = sorted(_validator(schema).iter_errors(value), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.path) or "the answer"
        raise SchemaError(f"the answer does not match the schema at {where}: {first.message[:200]}")
    return value


def columns(value: Any) -> dict[str, Any]:
    """The fields of a parsed answer as columns: an object's keys (nested values kept as they are), or
    one ``value`` column for anything else."""
    if isinstance(value, dict):
        return dict(value)
    return {"value": value}
