"""Helpers for the fake server's own tests: reference-schema checkers, SSE parsing, a bare-socket client.

Not a test module. The reference specs are the repository's copies in ``tests/data/`` (OpenAI's
published schemas): ``openai-openapi-subset.json`` (chat, completions, models; OpenAPI 3.0,
``nullable``) and ``openai-openapi-responses-batch.json`` (the Responses API; 3.1 style, ``anyOf`` null).
"""

from __future__ import annotations

import copy
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
SUBSET = DATA / "openai-openapi-subset.json"
RESPONSES = DATA / "openai-openapi-responses-batch.json"


def nullable_to_anyof(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` -> JSON Schema ``anyOf [..., null]``."""
    if isinstance(node, list):
        return [nullable_to_anyof(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: nullable_to_anyof(v) for k, v in node.items() if not (k == "nullable" and v is True)}
    return {"anyOf": [out, {"type": "null"}]} if node.get("nullable") is True else out


def oneof_to_anyof(node: Any) -> Any:
    """OpenAPI ``oneOf`` -> ``anyOf``, for request bodies: the spec's unions overlap (a typed user message is
    both an EasyInputMessage and an InputMessage), where OpenAPI tools pick a branch by the
    ``discriminator``, which plain JSON Schema does not read."""
    if isinstance(node, list):
        return [oneof_to_anyof(x) for x in node]
    if not isinstance(node, dict):
        return node
    return {("anyOf" if k == "oneOf" else k): oneof_to_anyof(v) for k, v in node.items()}


def load_components(path: Path) -> dict[str, Any]:
    """The ``components`` of a reference spec in ``tests/data/``, ``nullable`` read as JSON Schema does."""
    return nullable_to_anyof(copy.deepcopy(json.loads(path.read_text())["components"]))


def checker(components: dict[str, Any]) -> Callable[[str, Any], None]:
    """``check(name, obj)``: validate obj against components/schemas/<name>, failing the test if not."""
    jsonschema = pytest.importorskip("jsonschema")
    validators: dict[str, Any] = {}

    def check(name: str, obj: Any) -> None:
        if name not in validators:
            schema = {"$ref": f"#/components/schemas/{name}", "components": components}
            jsonschema.Draft202012Validator.check_schema(schema)
            validators[name] = jsonschema.Draft202012Validator(schema)
        try:
            validators[name].validate(obj)
        except jsonschema.ValidationError as e:
            pytest.fail(f"not a valid {name}: {e.message[:500]} at {list(e.absolute_path)}\n{obj!r:.2000}")
    return check


def responses_components() -> dict[str, Any]:
    """The Responses spec's components, with ``Response.usage`` nullable: the spec's own event examples
    (ResponseCreatedEvent, ResponseFailedEvent, ...) show ``"usage": null`` before the response is done."""
    components = load_components(RESPONSES)
    for part in components["schemas"]["Response"]["allOf"]:
        if "usage" in part.get("properties", {}):
            part["properties"]["usage"] = {"anyOf": [part["properties"]["usage"], {"type": "null"}]}
    return components


def event_schemas(components: dict[str, Any]) -> dict[str, str]:
    """Event type (``response.created``, ``error``, ...) -> its schema name, from ResponseStreamEvent."""
    names = {}
    for ref in components["schemas"]["ResponseStreamEvent"]["anyOf"]:
        name = ref["$ref"].rsplit("/", 1)[1]
        names[components["schemas"][name]["properties"]["type"]["enum"][0]] = name
    return names


# ---------------------------------------------------------------- SSE

def sse_events(raw: bytes) -> list[tuple[str | None, str]]:
    """(event name or None, data) of an SSE byte stream (any line ending, BOM, comments)."""
    text = raw.decode("utf-8").removeprefix("\ufeff")
    events, data, name = [], [], None
    for line in re.split(r"\r\n|\r|\n", text):
        if not line:
            if data:
                events.append((name, "\n".join(data)))
            data, name = [], None
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif line.startswith("event:"):
            name = line[6:].removeprefix(" ")
    return events


def sse_data(raw: bytes) -> list[str]:
    """Data payloads of an SSE byte stream."""
    return [data for _, data in sse_events(raw)]


def raw_http(port: int, path: str, body: dict, key: str) -> tuple[bytes, list[bytes]]:
    """POST over a bare socket; return the head and the list of HTTP chunks of a chunked body."""
    data = json.dumps(body).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"POST /v1%s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json"
                  b"\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (path.encode(), key.encode(),
                                                                              len(data), data))
        buf = b""
        while chunk := s.recv(65536):
            buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    parts = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return head, parts
        parts.append(rest[:size])
        rest = rest[size + 2:]
