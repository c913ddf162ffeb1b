"""Running cells in a real shell and reading what they showed; a kernel interrupt sent from a timer."""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from tests.support.shown import answer_outputs

SLOW_WORDS = [f" w{i}" for i in range(200)]  # with chunk_delay=0.02: about 4 s of stream


def run(shell: InteractiveShell, cell: str, **kwargs: Any) -> capture_output:
    """Run a cell; return what it printed and displayed."""
    with capture_output() as cap:
        shell.run_cell(cell, **kwargs)
    return cap


def value(shell: InteractiveShell, cell: str) -> Any:
    """The value of a cell, its output captured (not printed)."""
    with capture_output():
        return shell.run_cell(cell).result


def blocks(cap: capture_output) -> dict[str, list[dict]]:
    """Display id -> every data bundle published for it (first display, then updates), in order."""
    found: dict[str, list[dict]] = {}
    for output in answer_outputs(cap):
        found.setdefault(output.transient["display_id"], []).append(output.data)
    return found


def final_texts(cap: capture_output) -> list[str]:
    """The text each output block shows at the end."""
    return [published[-1]["text/plain"] for published in blocks(cap).values()]


def interrupt_later(seconds: float, before: Callable[[], None] = lambda: None) -> threading.Timer:
    """Send SIGINT to the main thread (as a kernel interrupt does) after ``seconds``.

    Aimed at the main thread: a process-wide signal may be taken by one of the test
    server's threads, and then the main thread's blocking read is not woken."""

    def fire() -> None:
        before()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    timer = threading.Timer(seconds, fire)
    timer.start()
    return timer


def interrupt_when(condition: Callable[[], object], after: float = 0.0,
                   before: Callable[[], None] = lambda: None) -> threading.Thread:
    """Send SIGINT to the main thread (as :func:`interrupt_later`) once ``condition()`` holds (polled for
    up to 30 s), ``after`` seconds later: an event, so that a busy machine cannot make it land before the
    moment it is meant for (a timer started with the cell can fire before the request is even sent)."""

    def fire() -> None:
        deadline = time.monotonic() + 30
        while not condition() and time.monotonic() < deadline:
            time.sleep(0.005)
        if after:
            time.sleep(after)
        before()
        signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)

    thread = threading.Thread(target=fire, daemon=True)
    thread.start()
    return thread
