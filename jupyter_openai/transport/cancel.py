"""Stopping a call from another thread: a token the caller sets and the client obeys.

The form's Stop button runs in the kernel's main thread while the call reads in a worker
thread. :meth:`CancelToken.cancel` wakes that worker wherever it is: a wait between
retries ends, no new request is sent, and a read blocked on the socket returns at once
(the socket is shut down for reading, urllib3 >= 2.3). A stream stopped this way ends
with status ``interrupted`` and keeps its partial text. Before the server has sent its
headers there is no response to shut down yet: the request ends when they arrive.
"""

from __future__ import annotations

import threading
from typing import Any

from ..errors import Cancelled


class CancelToken:
    """Set once by one thread (``cancel()``), checked by the thread doing the call."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._responses: list[Any] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        """Stop the call: wake its waits and end its reads now."""
        with self._lock:
            self._event.set()
            responses = list(self._responses)
        for response in responses:
            _shut_down(response)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True (at once) if the call is cancelled meanwhile."""
        return self._event.wait(seconds)

    def check(self) -> None:
        """Raise :class:`~jupyter_openai.errors.Cancelled` if the call was cancelled."""
        if self._event.is_set():
            raise Cancelled("the call was stopped")

    def attach(self, response: Any) -> None:
        """Watch an HTTP response so that :meth:`cancel` can end its reads."""
        with self._lock:
            self._responses.append(response)
            late = self._event.is_set()
        if late:
            _shut_down(response)

    def __repr__(self) -> str:
        return f"CancelToken(cancelled={self.cancelled})"


def _shut_down(response: Any) -> None:
    """End reads on a requests response from any thread (a blocked recv returns at once)."""
    raw = getattr(response, "raw", None)
    try:
        raw.shutdown()  # urllib3 >= 2.3: socket shutdown(SHUT_RD), safe across threads
    except Exception:  # noqa: BLE001 - already released, or an old urllib3: the next chunk check stops it
        pass
