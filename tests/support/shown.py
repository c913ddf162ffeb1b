"""What a cell showed, read from IPython's ``capture_output``: the answer's displays, the status line,
the notes.

The magic shows the status line as a display of its own (HTML with a ``jo-status`` class and a
text/plain fallback), apart from the answer's displays, which are updated in place by display id;
each note is a muted display too (class ``jo-note``); errors are lines on stderr.
"""

from __future__ import annotations

from typing import Any


def is_status(output: Any) -> bool:
    """True for the status line's display."""
    return 'class="jo-status"' in output.data.get("text/html", "")


def status_lines(cap: Any) -> list[str]:
    """The status lines a cell showed, as text."""
    return [output.data["text/plain"] for output in cap.outputs if is_status(output)]


def status(cap: Any) -> str:
    """The one status line a cell showed ('' when none)."""
    lines = status_lines(cap)
    assert len(lines) <= 1, f"more than one status line: {lines}"
    return lines[0] if lines else ""


def is_note(output: Any) -> bool:
    """True for a note's display (muted, informational)."""
    return 'class="jo-note"' in output.data.get("text/html", "")


def notes(cap: Any) -> list[str]:
    """The notes a cell showed, as text."""
    return [output.data["text/plain"] for output in cap.outputs if is_note(output)]


def shown_order(cap: Any) -> list[str]:
    """What kind each display was, in order: ``answer``, ``status`` or ``note``."""
    return ["status" if is_status(o) else "note" if is_note(o) else "answer" for o in cap.outputs]


def answer_outputs(cap: Any) -> list[Any]:
    """The displays that are neither the status line nor a note (the answer's, the reasoning's)."""
    return [output for output in cap.outputs if not is_status(output) and not is_note(output)]


def all_text(cap: Any) -> str:
    """Everything the cell showed as text: stdout, stderr and every display's text/plain."""
    return "\n".join([cap.stdout, cap.stderr, *(o.data.get("text/plain", "") for o in cap.outputs)])
