"""When to try a request again: backoff delays, the server's ``Retry-After``, stale connections.

The rules follow the official SDK (GUIDE 3): 2 retries by default on 408, 409, 429 and 5xx,
connection errors and timeouts; a delay of ``min(0.5·2^n, 8) s`` times a jitter of 0.75-1.0;
``retry-after-ms``, then ``Retry-After`` (seconds or an HTTP date) when the server sends one.
One more case no SDK handles: a pooled connection the server closed before reading the request;
and the readable cause of a transport failure, for the one-line error.
Pure functions; the client decides with them.
"""

from __future__ import annotations

import email.utils
import http.client
import random
import time
from collections.abc import Callable, Mapping

RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return email.utils.mktime_tz(parsed) - time.time()


def stale_connection(exc: BaseException) -> bool:
    """True when a pooled connection was closed by the server before it answered: llama.cpp's
    ``llama-server`` closes its socket after every streamed answer though it says keep-alive, so the
    next request on that socket meets ``RemoteDisconnected`` without the server having read it."""
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, http.client.RemoteDisconnected):
            return True
        nested = current.args[1] if len(current.args) > 1 and isinstance(current.args[1], BaseException) else None
        current = (current.args[0] if current.args and isinstance(current.args[0], BaseException) else nested) \
            or current.__cause__ or current.__context__
    return False


def backoff_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (0-based): min(0.5·2^n, 8) s times 0.75–1.0."""
    return min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY) * (1 - 0.25 * rng())


def transport_reason(exc: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 exception, in a few words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    text = str(exc)
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
            continue
        current = current.__cause__ or current.__context__
    if "Read timed out" in text:
        return "read timed out"
    if "timed out" in text:
        return "timed out"
    if "Connection broken" in text or "IncompleteRead" in text or "InvalidChunkLength" in text:
        return "connection dropped before the answer was complete"
    return text.split(": ")[-1][:200]
