"""Reading 200 answers, including those that are not what was asked for.

A non-streamed answer is JSON (:func:`json_of`): a :class:`~jupyter_openai.api.completion.Completion`
(:func:`completion`; one of a shape no API sends keeps its readable parts and gets an ``error``),
a model list (:func:`model_list`) or a model (:func:`model_entry`); what cannot be read is one
:class:`APIConnectionError`, quoting the answer redacted before it is cut short.

A streamed call expects ``text/event-stream``. A web page or JSON (a captive portal, a proxy) is
never one; NDJSON (Ollama's own API), plain text or an answer with no content type may be an
event stream sent under the wrong type, so its first bytes are read to tell: server-sent events
are streamed as usual (those bytes included), anything else is one :class:`APIConnectionError`
saying what came (content type, first bytes, redacted) and the likely fix (:data:`HINT_V1`).
A non-streamed 200 answer that is an error object (some proxies answer so) is named too.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import requests

from ..api.completion import Completion, shape_problem
from ..api.model_list import entries
from ..api.model_list import problem as listing_problem
from ..errors import APIConnectionError, one_line, parse_error_body, redact

if TYPE_CHECKING:
    from .cancel import CancelToken

EVENT_STREAM = "text/event-stream"
NOT_A_STREAM = frozenset({"text/html", "application/json"})  # 200 answers to stream=True that are never events
HINT_V1 = "is the base URL the server's OpenAI-compatible /v1 endpoint?"
ERROR_BODY_LIMIT = 64 * 1024
PEEK_BYTES = 4096  # of an answer of another type: enough to see whether it is server-sent events
SNIPPET_CHARS = 160
_BLANK = b"\xef\xbb\xbf \t\r\n"
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # shown as U+FFFD in a one-line message
_SSE_LINE = re.compile(rb"(data|event|id|retry)(:|\r|\n|$)|:")


def looks_like_events(head: bytes) -> bool:
    """True when the first line that is not blank is an SSE field or comment (``data:``, ``event:``,
    ``id:``, ``retry:``, ``:``): an event stream sent with another content type, or none."""
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")
    return bool(text) and _SSE_LINE.match(text) is not None


def stream_chunks(response: requests.Response, secrets: tuple[Any, ...],
                  read_error: Callable[[BaseException], BaseException],
                  cancel: CancelToken | None = None) -> Iterator[bytes] | None:
    """For a streamed call's 200 answer: None when it is an event stream (read it as usual), its chunks
    (the first ones already read, given back first) when it is one under another content type;
    else it raises the :func:`not_a_stream` error. Read errors are mapped by ``read_error``."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == EVENT_STREAM:
        return None
    if content_type in NOT_A_STREAM:
        raise not_a_stream(response, content_type, b"", secrets)
    chunks = response.iter_content(chunk_size=None)
    head = b""
    try:
        for chunk in chunks:
            head += chunk
            if head.lstrip(_BLANK) and (b"\n" in head or b"\r" in head or len(head) >= PEEK_BYTES):
                break  # a first line that is not blank: enough to tell
    except (requests.exceptions.RequestException, OSError) as exc:
        response.close()
        if cancel is not None:
            cancel.check()
        raise read_error(exc) from None
    if not looks_like_events(head):
        error = not_a_stream(response, content_type, head, secrets)
        raise error  # on a line of its own: verbose tracebacks show the raising line's variables (raw bytes)
    return itertools.chain((head,), chunks)


def not_a_stream(response: requests.Response, content_type: str, head: bytes,
                 secrets: tuple[Any, ...]) -> APIConnectionError:
    """The one-line error for a 200 answer to a streamed call that is no event stream (closes it)."""
    try:
        body = head or response.raw.read(ERROR_BODY_LIMIT, decode_content=True) or b""
    except Exception:  # noqa: BLE001 - the message matters more than the body
        body = b""
    finally:
        response.close()
    if "html" in content_type:
        snippet = parse_error_body(body, content_type, secrets)["message"]
    else:  # the first bytes as they came, redacted before they are cut short
        text = _CONTROL.sub("\ufffd", redact(body[:ERROR_BODY_LIMIT].decode("utf-8", "replace"), secrets))
        snippet = one_line(text, SNIPPET_CHARS) if text.strip() else "(empty body)"
    sent = content_type or "no content type"
    return APIConnectionError(f"Expected an event stream but the server sent {sent}: {snippet} ({HINT_V1})",
                              url=response.url, secrets=secrets)


def error_in(raw: Any, secrets: tuple[Any, ...]) -> str | None:
    """A non-streamed 200 answer that is an error object: its message, as the answer's problem."""
    if not isinstance(raw, dict) or (raw.get("error") is None and raw.get("object") != "error"):
        return None
    return "it is an error: " + parse_error_body(raw, secrets=secrets)["message"]


def json_of(response: requests.Response, secrets: tuple[Any, ...]) -> Any:
    """The answer's JSON; else an :class:`APIConnectionError` quoting its start (redacted, then cut)."""
    try:
        return json.loads(response.content)
    except ValueError:
        snippet = redact(response.content[:ERROR_BODY_LIMIT].decode("utf-8", "replace"), secrets)[:120]
        raise APIConnectionError(f"the server's answer is not JSON: {snippet!r}", url=response.url) from None


def completion(response: requests.Response, kind: str, started: float, secrets: tuple[Any, ...]) -> Completion:
    """A non-streamed answer; one of a shape no API sends (or an error object) gets its ``error``, the
    readable parts kept, so the call reports it as one line with the partial text."""
    request_id = response.headers.get("x-request-id")
    request_id = redact(request_id, secrets) if request_id else None  # (a verbose traceback shows locals)
    answer = Completion(json_of(response, secrets), kind, request_id, time.monotonic() - started)
    problem = error_in(answer.raw, secrets) or shape_problem(answer.raw, kind)
    if problem is not None:
        answer.error = APIConnectionError(f"The server's answer has an unexpected shape: {problem}",
                                          url=response.url, secrets=secrets)
    return answer


def model_list(response: requests.Response, secrets: tuple[Any, ...]) -> list[dict[str, Any]]:
    """The model entries of a ``GET /models`` answer; a listing with no list of models in it raises."""
    listing = json_of(response, secrets)
    problem = listing_problem(listing)
    if problem is not None:
        raise APIConnectionError(f"The server's model list has an unexpected shape: {problem} ({HINT_V1})",
                                 url=response.url, secrets=secrets)
    return entries(listing)


def model_entry(response: requests.Response, secrets: tuple[Any, ...]) -> dict[str, Any]:
    """A ``GET /models/{id}`` answer, which must be an object."""
    entry = json_of(response, secrets)
    if not isinstance(entry, dict):
        raise APIConnectionError(f"The server's model entry has an unexpected shape: it is not an object "
                                 f"({HINT_V1})", url=response.url, secrets=secrets)
    return entry
