"""Exceptions raised by jupyter_openai, and how error bodies from servers are read.

The tree::

    OpenAIError                      base of everything raised here
    ├── ConfigurationError           bad or missing settings; raised before any request
    ├── APIConnectionError           no usable response: refused, reset, DNS, dropped mid-stream
    │   └── APITimeoutError          connect timeout, or no byte within the read timeout
    ├── APIStatusError               the server answered with status >= 400
    │   ├── BadRequestError          400, 422
    │   ├── AuthenticationError      401
    │   ├── PermissionDeniedError    403
    │   ├── NotFoundError            404
    │   ├── ConflictError            409
    │   ├── RateLimitError           429
    │   └── InternalServerError      >= 500
    ├── StreamError                  an error object inside a stream, a malformed chunk,
    │                                or a stream that ended without ``[DONE]``
    └── Cancelled                    the caller stopped the call (the form's Stop button)

Every ``str(error)`` is one readable line: what happened, the server's own message and
the request id when there is one. Messages never contain the API key: everything a
server sent back passes through :func:`redact` before it is kept.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .secret import redact

__all__ = [
    "OpenAIError",
    "ConfigurationError",
    "APIConnectionError",
    "APITimeoutError",
    "APIStatusError",
    "BadRequestError",
    "AuthenticationError",
    "PermissionDeniedError",
    "NotFoundError",
    "ConflictError",
    "RateLimitError",
    "InternalServerError",
    "StreamError",
    "Cancelled",
    "status_error",
    "parse_error_body",
    "redact",
    "one_line",
]

SNIPPET_CHARS = 200
FIELD_CHARS = 120


def one_line(text: object, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line (white space folded), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _show(value: object) -> str:
    """A field value of any JSON type, as one short line (strings as they are, the rest as JSON)."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return one_line(text, FIELD_CHARS)


class OpenAIError(Exception):
    """Base class of every error raised by jupyter_openai."""


class ConfigurationError(OpenAIError, ValueError):
    """Settings are missing or invalid; nothing was sent."""


class APIConnectionError(OpenAIError):
    """No usable answer: the connection failed, was refused or dropped."""

    def __init__(self, message: str, *, url: str | None = None, secrets: tuple[Any, ...] = ()) -> None:
        message = redact(message, secrets)
        super().__init__(message)
        self.message = message
        self.url = redact(url, secrets)


class APITimeoutError(APIConnectionError):
    """The server did not connect or send a byte within the timeout."""


class APIStatusError(OpenAIError):
    """The server answered with an HTTP error status."""

    label = "HTTP error"

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: Any = None,
        code: Any = None,
        param: Any = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        secrets: tuple[Any, ...] = (),
    ) -> None:
        # Servers put anything in these fields (lists, objects, numbers): every value is redacted,
        # whatever its type, before it is kept. ``secrets`` are the configured keys to mask as well.
        self.status = status
        self.message = redact(message, secrets)
        self.type = redact(type, secrets)
        self.code = redact(code, secrets)
        self.param = redact(param, secrets)
        self.request_id = redact(request_id, secrets)
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.status} {self.label}: {self.message}"]
        extras = [f"{name}={_show(value)}" for name, value in (("param", self.param), ("code", self.code))
                  if value not in (None, "")]
        if extras:
            parts.append(f"({', '.join(extras)})")
        if self.request_id:
            parts.append(f"[request id {self.request_id}]")
        return " ".join(parts)


class BadRequestError(APIStatusError):
    """400 or 422: the server rejected the request's content."""

    label = "Bad request"


class AuthenticationError(APIStatusError):
    """401: the key is missing, wrong or revoked."""

    label = "Authentication failed"


class PermissionDeniedError(APIStatusError):
    """403: the key may not use this resource."""

    label = "Permission denied"


class NotFoundError(APIStatusError):
    """404: unknown model or path."""

    label = "Not found"


class ConflictError(APIStatusError):
    """409: the resource changed under the request."""

    label = "Conflict"


class RateLimitError(APIStatusError):
    """429: too many requests or tokens, or the quota is used up."""

    label = "Rate limited"


class InternalServerError(APIStatusError):
    """>= 500: the server failed."""

    label = "Server error"


class StreamError(OpenAIError):
    """A stream carried an error object, a malformed chunk, or ended early."""

    def __init__(self, message: str, *, request_id: str | None = None, secrets: tuple[Any, ...] = ()) -> None:
        self.message = redact(message, secrets)
        self.request_id = redact(request_id, secrets)
        super().__init__(str(self))

    def __str__(self) -> str:
        suffix = f" [request id {self.request_id}]" if self.request_id else ""
        return f"Stream error: {self.message}{suffix}"


class Cancelled(OpenAIError):
    """The caller stopped the call from another thread (see :mod:`jupyter_openai.transport.cancel`)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def parse_error_body(body: bytes | str | Any, content_type: str = "", secrets: tuple[Any, ...] = ()) -> dict[str, Any]:
    """Read an error body in any shape servers use; return message, type, code and param, redacted.

    Understood: the OpenAI object ``{"error": {...}}`` (also with an integer code), a flat
    ``{"message": ..., "type": ...}``, ``{"detail": ...}``, a JSON string, an HTML page
    (its title or text, cut short) and plain text. Every value, of any JSON type, is redacted
    (key-looking words and ``secrets``) before anything is cut short, so no piece of a key survives.
    """
    return redact(_parse_error_body(body, content_type, secrets), secrets)


def _parse_error_body(body: bytes | str | Any, content_type: str, secrets: tuple[Any, ...]) -> dict[str, Any]:
    data: Any = body
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body).decode("utf-8", "replace")
    if isinstance(data, str):
        text = data.strip()
        try:
            data = json.loads(text) if text else ""
        except ValueError:
            return {"message": _text_snippet(redact(text, secrets), content_type, secrets), "type": None,
                    "code": None, "param": None}
    data = redact(data, secrets)
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, str):
            inner = {"message": inner}
        if isinstance(inner, dict):
            message = inner.get("message")
            if message is None and "detail" in inner:
                message = inner["detail"]
            if not isinstance(message, str):
                message = json.dumps(message) if message is not None else json.dumps(data)
            return {
                "message": one_line(message, 500),
                "type": inner.get("type"),
                "code": inner.get("code"),
                "param": inner.get("param"),
            }
    if isinstance(data, str):
        return {"message": one_line(data) or "(empty body)", "type": None, "code": None, "param": None}
    return {"message": one_line(json.dumps(data)), "type": None, "code": None, "param": None}


def _text_snippet(text: str, content_type: str, secrets: tuple[Any, ...]) -> str:
    if not text:
        return "(empty body)"
    if "html" in content_type or text.lstrip()[:1] == "<":
        import html  # only for HTML error pages

        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        if title and title.group(1).strip():  # entities may spell a key: redact after unescaping
            return "HTML page: " + one_line(redact(html.unescape(title.group(1)), secrets))
        stripped = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.I | re.S)
        return "HTML page: " + one_line(redact(html.unescape(stripped), secrets))
    return one_line(text)


def status_error(
    status: int,
    body: bytes | str,
    *,
    content_type: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
    secrets: tuple[Any, ...] = (),
) -> APIStatusError:
    """Build the right :class:`APIStatusError` subclass for a status and error body.

    A server may echo anything back, in any field and of any JSON type: every value kept is redacted.
    """
    info = parse_error_body(body, content_type, secrets)
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    return cls(status, info["message"], type=info["type"], code=info["code"], param=info["param"],
               request_id=request_id or None, retry_after=retry_after, secrets=secrets)
