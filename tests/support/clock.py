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


def read_cancelling_at_stall(stream: Any, token: Any, last_text: str, seconds: float = 0.3) -> tuple[list[Any], float]:
    """Read ``stream`` to its end, cancelling ``token`` ``seconds`` after the delta whose text is
    ``last_text`` arrived (the last event before a stall: the next read waits in it), as a user pressing
    Stop would. Returns the deltas read and how long the reading took; fails if ``last_text`` never came."""
    timers: list[threading.Timer] = []
    started = time.monotonic()
    deltas: list[Any] = []
    try:
        for delta in stream:
            deltas.append(delta)
            if delta.text == last_text:
                timers.append(cancel_after(token, seconds))
    finally:
        for timer in timers:
            timer.cancel()
    assert timers, f"no delta {last_text!r} arrived before the stall"
    return deltas, time.monotonic() - started
