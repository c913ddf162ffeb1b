"""Time in tests: a ``sleep`` that records instead of sleeping, and a Stop pressed from another thread."""

from __future__ import annotations

import threading
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
