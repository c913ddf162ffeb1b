"""Time in tests: a ``sleep`` that records instead of sleeping, and a Stop pressed from another thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any


class Recorder(list):
    """A ``sleep`` replacement for clients that records the delays it was asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def cancel_after(token: Any, seconds: float) -> threading.Timer:
    """Cancel ``token`` (a :class:`~jupyter_openai.transport.cancel.CancelToken`) from another thread after
    ``seconds``, as the form's Stop button does; ``cancel()`` the returned timer when done."""
    timer = threading.Timer(seconds, token.cancel)
    timer.start()
    return timer


def cancel_when(token: Any, condition: Callable[[], object]) -> threading.Thread:
    """Cancel ``token`` from another thread once ``condition()`` holds (polled for up to 30 s): an event,
    where a timer could fire before the moment it is meant for on a busy machine."""

    def fire() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        token.cancel()

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread
