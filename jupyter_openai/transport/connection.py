"""Connection care for streamed answers: give a connection back to the pool, or drop it.

A stream that ended with ``[DONE]`` normally has only the closing empty HTTP chunk left:
:func:`reuse` reads it (waiting at most :data:`DRAIN_SECONDS`, reading at most
:data:`DRAIN_BYTES`) so the connection returns to the pool and the next call skips a new
TCP and TLS handshake. A stream that ended without ``[DONE]`` often has a server about to
close its socket: :func:`drop` makes sure the next call does not pick that socket up.
"""

from __future__ import annotations

from typing import Any

DRAIN_SECONDS = 1.0
DRAIN_BYTES = 64 * 1024


def reuse(response: Any, reader: Any = None) -> bool:
    """Read what is left of a finished body and release its connection to the pool; True when
    it was released. Anything unexpected (more data, a slow or broken end) leaves the connection
    to be closed with the response. ``reader``: the :class:`~jupyter_openai.transport.chunked.ChunkedReader`
    the body was read with, if any (it holds bytes the response object has not seen)."""
    raw = response.raw
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if reader is not None and reader.done:
        return reader.pooled  # the whole body was read: already pooled (or broken: closed)
    if sock is None:
        return False
    try:
        sock.settimeout(DRAIN_SECONDS)
        if reader is not None:
            return reader.drain(DRAIN_BYTES)
        leftover = raw.read(DRAIN_BYTES)
    except Exception:  # noqa: BLE001 - not reusable; closing the response drops it
        return False
    body = getattr(raw, "_fp", None)
    if leftover or body is None or not body.isclosed():
        return False
    raw.release_conn()  # urllib3 sets the read timeout again on the connection's next request
    return True


def drop(response: Any) -> None:
    """Forget the idle pooled connections of the response's host. urllib3 has already put the
    connection of a body read to EOF back in the pool, so the pool is closed to really close it
    (connections in use elsewhere finish normally)."""
    adapter = getattr(response, "connection", None)
    if adapter is not None and hasattr(adapter, "close"):
        adapter.close()
    pool = getattr(response.raw, "_pool", None)  # urllib3 2 does not close the pools it forgets
    if pool is not None and hasattr(pool, "close"):
        pool.close()
