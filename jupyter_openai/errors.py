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
_KEY_PATTERN = re.compile(r"\b(sk|rk|pk)-[A-Za-z0-9_\-*.]{8,}")


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """Replace API-key-looking words and the given secrets with a mask."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "sk-***")
    return _KEY_PATTERN.sub(lambda m: m.group(1) + "-***", text)


def one_line(text: object, limit: int = SNIPPET_CHARS) -> str:
    """``text`` on one line (white space folded), cut to ``limit`` characters."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


class OpenAIError(Exception):
    """Base class of every error raised by jupyter_openai."""


class ConfigurationError(OpenAIError, ValueError):
    """Settings are missing or invalid; nothing was sent."""


class APIConnectionError(OpenAIError):
    """No usable answer: the connection failed, was refused or dropped."""

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


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
        type: str | None = None,
        code: str | int | None = None,
        param: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = [f"{self.status} {self.label}: {self.message}"]
        extras = [
            f"{name}={value}" for name, value in (("param", self.param), ("code", self.code)) if value not in (None, "")
        ]
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

    def __init__(self, message: str, *, request_id: str | None = None) -> None:
        self.message = message
        self.request_id = request_id
        super().__init__(str(self))

    def __str__(self) -> str:
        suffix = f" [request id {self.request_id}]" if self.request_id else ""
        return f"Stream error: {self.message}{suffix}"


class Cancelled(OpenAIError):
    """The caller stopped the call from another thread (see :mod:`jupyter_openai.cancel`)."""


_BY_STATUS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: BadRequestError,
    429: RateLimitError,
}


def parse_error_body(body: bytes | str | Any, content_type: str = "") -> dict[str, Any]:
    """Read an error body in any shape servers use; return message, type, code and param.

    Understood: the OpenAI object ``{"error": {...}}`` (also with an integer code), a flat
    ``{"message": ..., "type": ...}``, ``{"detail": ...}``, a JSON string, an HTML page
    (its title or text, cut short) and plain text.
    """
    data: Any = body
    if isinstance(body, (bytes, bytearray)):
        data = bytes(body).decode("utf-8", "replace")
    if isinstance(data, str):
        text = data.strip()
        try:
            data = json.loads(text) if text else ""
        except ValueError:
            return {"message": _text_snippet(text, content_type), "type": None, "code": None, "param": None}
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


def _text_snippet(text: str, content_type: str) -> str:
    if not text:
        return "(empty body)"
    if "html" in content_type or text.lstrip()[:1] == "<":
        import html  # only for HTML error pages

        title = re.search(r"<title[^>]*>(.*?)</title>", text, re.I | re.S)
        if title and title.group(1).strip():
            return "HTML page: " + one_line(html.unescape(title.group(1)))
        stripped = re.sub(r"<(script|style)\b.*?</\1>|<[^>]+>", " ", text, flags=re.I | re.S)
        return "HTML page: " + one_line(html.unescape(stripped))
    return one_line(text)


def status_error(
    status: int,
    body: bytes | str,
    *,
    content_type: str = "",
    request_id: str | None = None,
    retry_after: float | None = None,
    secrets: tuple[str, ...] = (),
) -> APIStatusError:
    """Build the right :class:`APIStatusError` subclass for a status and error body."""
    info = parse_error_body(body, content_type)
    # A server may echo anything back, in any field: every string kept is redacted.
    info = {k: redact(v, secrets) if isinstance(v, str) else v for k, v in info.items()}
    cls = _BY_STATUS.get(status) or (InternalServerError if status >= 500 else APIStatusError)
    return cls(
        status,
        info["message"],
        type=info["type"],
        code=info["code"],
        param=info["param"],
        request_id=redact(request_id, secrets) if request_id else None,
        retry_after=retry_after,
    )
