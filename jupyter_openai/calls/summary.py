"""What a finished call says to its user: the notes after the answer and the status line.

One function, :func:`summarize`, turns a :class:`~jupyter_openai.calls.run.CallOutcome` into the
lines both front ends show (the magic prints them, the form puts them in its labels), so
every string exists once. Pure text: no IPython, no widgets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from ..api.completion import token_count
from ..errors import one_line
from ..session.cost import money

if TYPE_CHECKING:
    from .run import CallOutcome

SNIPPET_CHARS = 300
TRUNCATED = "Warning: the server closed the stream without [DONE]; the answer may be incomplete"
DETACHED = "interrupted: the server had not answered; the request ends in the background"


class Summary(NamedTuple):
    """The note lines (errors and warnings, each one line) and the status line of a call."""

    notes: list[str]
    status: str


def summarize(outcome: CallOutcome, *, offline: bool = False) -> Summary:
    """The notes and the status line for a finished call (``offline``: it went to the bundled model)."""
    notes: list[str] = [one_line(note, SNIPPET_CHARS) for note in outcome.notes]
    if outcome.refusal:
        notes.append(one_line(f"Refused: {outcome.refusal}", SNIPPET_CHARS))
    kept = len(outcome.text)
    asked = outcome.request.choices if outcome.request is not None else 1
    if outcome.error is not None:
        notes.append(one_line(outcome.error, SNIPPET_CHARS) + (f" (partial text kept: {kept} chars)" if kept else ""))
    elif outcome.status == "interrupted":
        notes.append(f"Interrupted: the request was stopped (partial text kept: {kept} chars)")
    elif outcome.status == "truncated":
        notes.append(TRUNCATED)
    if outcome.error is None and 0 < len(outcome.texts) < asked:
        notes.append(f"Note: asked for {asked} choices, the server returned {len(outcome.texts)}")
    reason = outcome.finish_reasons[0] if outcome.finish_reasons else None
    requested = outcome.request.model if outcome.request is not None else None
    label = model_label(outcome.model, requested, offline)
    spent = outcome.record.get("cost_usd") if isinstance(outcome.record, dict) else None  # 0 (offline): not shown
    return Summary(notes, status_line(label, outcome.usage, outcome.latency, outcome.time_to_first_token,
                                      reason, outcome.status, estimated_out=outcome.streamed_pieces,
                                      cost=money(spent) if spent else None))


def model_label(answered: str | None, requested: str | None, offline: bool = False) -> str:
    """The model that answered, and the one asked for when it differs:
    ``smollm2-135m (offline; asked for gpt-5.4-mini)``."""
    name = answered or requested or "?"
    notes = ["offline"] if offline else []
    if requested and answered and requested != answered:
        notes.append(f"asked for {requested}")
    return f"{name} ({'; '.join(notes)})" if notes else name


def unexpected(exc: BaseException) -> str:
    """The one line for an error that is none of the project's own (a bug: say what it was)."""
    return one_line(f"{type(exc).__name__}: {exc}", SNIPPET_CHARS)


def status_line(model: str | None, usage: dict[str, Any] | None, latency: float | None,
                time_to_first_token: float | None, finish_reason: str | None, status: str,
                estimated_out: int | None = None, cost: str | None = None) -> str:
    """One compact line: model · tokens in/out (reasoning) · latency · tokens/s · finish reason · cost.

    ``estimated_out``: the pieces a stream delivered, shown as an estimate (``~57 out tokens
    (estimated from the stream)``) when the server reported no output tokens. ``cost``: the call's
    price as text, shown when given.
    """
    parts = [model or "?"]
    usage = usage if isinstance(usage, dict) else {}
    prompt_tokens = token_count(usage.get("prompt_tokens"))  # what a server sent: counts only
    completion_tokens = token_count(usage.get("completion_tokens"))
    estimate = completion_tokens is None and bool(estimated_out)
    out_tokens = estimated_out if estimate else completion_tokens
    if estimate:
        parts.append(f"{_n(prompt_tokens)} in / ~{out_tokens} out tokens (estimated from the stream)")
    elif prompt_tokens is not None or completion_tokens is not None:
        reasoning = token_count(usage.get("reasoning_tokens"))
        parts.append(f"{_n(prompt_tokens)} in / {_n(completion_tokens)} out tokens"
                     + (f" ({reasoning} reasoning)" if reasoning else ""))
    else:
        parts.append("tokens not reported")
    if latency is not None:
        parts.append(f"{latency:.2f} s")
        generating = latency - (time_to_first_token or 0.0)  # a stream's rate: from its first token on
        if generating <= 0:  # an answer in one piece: over the whole call
            generating = latency
        if out_tokens and generating > 0:
            parts.append(f"{'~' if estimate else ''}{out_tokens / generating:.1f} tok/s")
    parts.append(f"finish: {finish_reason or '-'}")
    if cost is not None:
        parts.append(cost)
    if status != "ok":
        parts.append(status)
    return " · ".join(parts)


def _n(value: int | None) -> str:
    return "?" if value is None else str(value)
