"""Child processes in tests: their output read line by line from a thread, so a test can wait for a
line with a deadline instead of blocking on a pipe."""

from __future__ import annotations

import queue
import subprocess
import threading


def line_reader(process: subprocess.Popen[str]) -> queue.Queue[str]:
    """A queue that receives every line ``process`` writes to its stdout (a daemon thread pumps it)."""
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return lines
