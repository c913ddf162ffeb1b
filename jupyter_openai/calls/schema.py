"""Structured output: a JSON Schema (or a pydantic model class) for the answer, checked, sent and used.

:func:`normalize` turns what the user gives (a dict, JSON text, a ``.json`` file, a pydantic model
class) into a name and a JSON Schema; :func:`check_schema` checks it whole before anything is sent (the
meta-schema, and every ``$ref`` resolved inside the schema: nothing is fetched, a remote ``$ref`` is a
mistake, GUIDE 18); :func:`structured` decides ``strict`` (only for schemas in OpenAI's strict subset,
:mod:`~jupyter_openai.calls.strict`; a pydantic model, or a schema that closes its top object, is
converted as the SDK's ``parse()`` does, with a note saying so); :func:`request_fields` words it as each
endpoint takes it (``response_format`` on chat, ``text.format`` on responses; completions has no such
field); :func:`check_answer` parses an answer and validates it with ``jsonschema`` (the ``batch``
extra), raising :class:`SchemaError` with one readable line. Every failure is one line, never a
traceback. No IPython here; jsonschema and pydantic load on first use.
"""

from __future__ import annotations

import functools
import json
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any, NamedTuple

from ..api.params import CHAT, RESPONSES
from ..errors import ConfigurationError, OpenAIError, one_line
from .strict import strict_problem, to_strict

DEFAULT_NAME = "answer"
INSTALL_HINT = 'pip install "jupyter-openai[batch]"'
_PROBES = (None, {}, [], "", 0)  #: instances a schema is tried on before sending (a $ref loop shows there)


class SchemaError(OpenAIError):
    """The answer is not JSON, or does not match the schema."""


class Structured(NamedTuple):
    """A schema as it is sent: its ``name``, the ``schema`` (converted when ``note`` says so), whether it
    goes with ``strict: true``, and the one-line ``note`` for the user (None: nothing to say)."""

    name: str
    schema: dict[str, Any]
    strict: bool
    note: str | None = None


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


def structured(schema: Any) -> Structured:
    """``schema`` checked (:func:`check_schema`) and made ready to send. ``strict: true`` goes only with a
    schema in OpenAI's strict subset. Strictness is asked for by a pydantic model class (as the SDK's
    ``parse()``) or by a top object with ``additionalProperties: false``; such a schema outside the subset
    is converted as ``parse()`` converts (every object closed, every property required, optional ones
    nullable) and the note says so; when even that leaves the subset, it goes without ``strict``."""
    from_model = isinstance(schema, type) and hasattr(schema, "model_json_schema")
    name, body = normalize(schema)
    check_schema(body)
    if not from_model and body.get("additionalProperties") is not False:
        return Structured(name, body, False)
    problem = strict_problem(body)
    if problem is None:
        return Structured(name, body, True)
    converted, optional = to_strict(body)
    after = strict_problem(converted)
    if after is not None:
        return Structured(name, body, False, f"Note: the schema {name!r} is outside OpenAI's strict subset, so it "
                          f"is sent without strict (answers are still checked here): {after}")
    check_schema(converted)
    if from_model and not optional:  # closing its objects is what parse() always does: nothing to say
        return Structured(name, converted, True)
    changed = (f"optional {', '.join(optional[:5])}{' …' if len(optional) > 5 else ''} now required and nullable"
               if optional else "every object closed (additionalProperties: false)")
    return Structured(name, converted, True, f"Note: schema {name!r} sent in OpenAI's strict form, as the SDK's "
                      f"parse() does: {changed}")


def request_fields(endpoint: str, schema: Any, params: Mapping[str, Any] | None = None, *,
                   json_object: bool = False) -> dict[str, Any]:
    """The request fields that ask ``endpoint`` for answers in ``schema`` (a :class:`Structured`, or
    anything :func:`structured` takes): ``response_format`` (chat) or ``text.format`` (responses, merged
    into a ``text`` already in ``params``), with ``strict`` when :func:`structured` allows it.
    ``json_object``: chat's ``{"type": "json_object", "schema": …}``, the form llama-cpp-python's server
    (the bundled offline model) takes instead of ``json_schema``, which it refuses."""
    shaped = schema if isinstance(schema, Structured) else structured(schema)
    spec: dict[str, Any] = {"name": shaped.name, "schema": shaped.schema}
    if shaped.strict:
        spec["strict"] = True
    if endpoint == CHAT and json_object:
        return {"response_format": {"type": "json_object", "schema": shaped.schema}}
    if endpoint == CHAT:
        return {"response_format": {"type": "json_schema", "json_schema": spec}}
    if endpoint == RESPONSES:
        text = dict((params or {}).get("text") or {})
        return {"text": {**text, "format": {"type": "json_schema", **spec}}}
    raise ConfigurationError("a schema works with the chat and responses endpoints only")


def _validator(schema: Mapping[str, Any]) -> Any:
    """A validator for ``schema`` that never fetches anything (a registry without retrieval), after the
    schema is checked against its meta-schema and every ``$ref`` in it resolves (kept for the next rows)."""
    try:
        key = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        raise ConfigurationError("the schema is not JSON (it holds values JSON cannot write)") from None
    return _checked_validator(key)


@functools.lru_cache(maxsize=32)
def _checked_validator(key: str) -> Any:
    schema = json.loads(key)
    try:
        import jsonschema
        import referencing
        import referencing.jsonschema
    except ImportError:
        raise ConfigurationError(f"checking answers against a schema needs jsonschema: {INSTALL_HINT}") from None
    with warnings.catch_warnings():  # an unknown $schema: the latest draft, as jsonschema does, without its warning
        warnings.simplefilter("ignore", DeprecationWarning)
        cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ConfigurationError(f"the schema is not a valid JSON Schema: {one_line(exc.message, 200)}") from None
    try:
        resource = referencing.Resource.from_contents(schema, default_specification=referencing.jsonschema.DRAFT202012)
        registry = referencing.Registry().with_resource(resource.id() or "", resource)  # no retrieve: no network
        _resolve_refs(resource, registry.resolver(base_uri=resource.id() or ""))
    except RecursionError:
        raise ConfigurationError("the schema nests too deeply to be checked") from None
    validator = cls(schema, registry=registry)
    try:
        for probe in _PROBES:
            for _error in validator.iter_errors(probe):
                pass
    except RecursionError:
        raise ConfigurationError("the schema's $refs form a loop that never reaches a schema") from None
    except Exception as exc:  # noqa: BLE001 - whatever jsonschema raises, one line before anything is sent
        raise ConfigurationError(f"the schema cannot be checked: {one_line(exc, 200)}") from None
    return validator


def _resolve_refs(resource: Any, resolver: Any) -> None:
    """Look up every ``$ref`` (and dynamic/recursive ref) of ``resource`` and its subschemas; the first that
    does not resolve is a :class:`ConfigurationError` naming it."""
    import referencing.exceptions

    contents = resource.contents
    if isinstance(contents, Mapping):
        for key in ("$ref", "$dynamicRef", "$recursiveRef"):
            ref = contents.get(key)
            if isinstance(ref, str):
                try:
                    resolver.lookup(ref)
                except (referencing.exceptions.PointerToNowhere, referencing.exceptions.NoSuchAnchor,
                        referencing.exceptions.InvalidAnchor):
                    raise ConfigurationError(f"the schema's {key} {ref!r} points to nothing in the schema") from None
                except referencing.exceptions.Unresolvable:
                    raise ConfigurationError(f"the schema's {key} {ref!r} points outside the schema, which is never "
                                             "fetched: put what it names under $defs, as #/$defs/NAME") from None
    for sub in resource.subresources():
        _resolve_refs(sub, resolver.in_subresource(sub))


def check_schema(schema: Any) -> dict[str, Any]:
    """The JSON Schema of ``schema``, checked whole before anything is sent: a valid JSON Schema whose every
    ``$ref`` resolves inside it (raises :class:`ConfigurationError`, one line)."""
    body = normalize(schema)[1]
    _validator(body)
    return body


def check_answer(text: str, schema: Mapping[str, Any]) -> Any:
    """The answer parsed as JSON and valid against ``schema``; :class:`SchemaError` (one line) if it is
    not, or if it cannot be checked."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SchemaError(f"the answer is not JSON ({exc.msg} at char {exc.pos}): {text[:80]!r}") from None
    except RecursionError:
        raise SchemaError("the answer could not be checked: it nests too deeply") from None
    try:
        errors = sorted(_validator(schema).iter_errors(value), key=lambda e: [str(p) for p in e.path])
    except ConfigurationError as exc:
        raise SchemaError(f"the answer could not be checked: {exc}") from None
    except RecursionError:
        raise SchemaError("the answer could not be checked: it nests too deeply") from None
    except Exception as exc:  # noqa: BLE001 - a checker's failure is this row's one line, never a traceback
        raise SchemaError(f"the answer could not be checked: {one_line(exc, 200)}") from None
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
