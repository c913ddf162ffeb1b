"""What a finished call says to its user: the status line, the notes and the errors after the answer.

One function, :func:`summarize`, turns a :class:`~jupyter_openai.calls.run.CallOutcome` into the
lines both front ends show, so every string exists once. Both show them in one order: the answer,
the status line, the notes (informational, muted), the errors (red). Pure text: no IPython, no widgets.
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


#: Where the max tokens a call used came from (``summarize``'s ``limit_source``) -> how the status line says it.
LIMIT_SOURCES = {"default": "the default", "config file": "from the config file", "%config": "set by %config",
                 "option": "as asked"}
#: The setting that raises the limit for every later call.
CONFIG_MAX_TOKENS = "%config CompleteMagics.max_tokens = {n}"


class Summary(NamedTuple):
    """What a finished call shows after its answer: the status line, the notes (informational: what
    the client changed, an interruption, fewer choices than asked) and the errors (a failure, a
    refusal, a cut stream), each note and error one line."""

    notes: list[str]
    status: str
    errors: list[str]


def summarize(outcome: CallOutcome, *, offline: bool = False, limit_source: str = "default",
              front: str = "magic") -> Summary:
    """The status line, notes and errors for a finished call (``offline``: it went to the bundled
    model; ``limit_source``: where its max tokens came from, a key of :data:`LIMIT_SOURCES`;
    ``front``: ``magic`` or ``form``, whose way to raise the limit the status line names)."""
    notes: list[str] = [one_line(note, SNIPPET_CHARS) for note in outcome.notes]
    errors: list[str] = []
    if outcome.refusal:
        errors.append(one_line(f"Refused: {outcome.refusal}", SNIPPET_CHARS))
    kept = len(outcome.text)
    asked = outcome.request.choices if outcome.request is not None else 1
    if outcome.error is not None:
        errors.append(one_line(outcome.error, SNIPPET_CHARS) + (f" (partial text kept: {kept} chars)" if kept else ""))
    elif outcome.status == "interrupted":
        notes.append(f"Interrupted: the request was stopped (partial text kept: {kept} chars)")
    elif outcome.status == "truncated":
        errors.append(TRUNCATED)
    if outcome.error is None and 0 < len(outcome.texts) < asked:
        notes.append(f"Note: asked for {asked} choices, the server returned {len(outcome.texts)}")
    reason = outcome.finish_reasons[0] if outcome.finish_reasons else None
    requested = outcome.request.model if outcome.request is not None else None
    label = model_label(outcome.model, requested, offline)
    spent = outcome.record.get("cost_usd") if isinstance(outcome.record, dict) else None  # 0 (offline): not shown
    limit = length_limit(outcome, limit_source, front) if reason == "length" else None
    return Summary(notes, status_line(label, outcome.usage, outcome.latency, outcome.time_to_first_token,
                                      reason, outcome.status, estimated_out=outcome.streamed_pieces,
                                      cost=money(spent) if spent else None, limit=limit), errors)


def max_tokens_of(params: dict[str, Any]) -> int | None:
    """The length limit a request sent, whatever the endpoint calls it."""
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens"):
        if isinstance(params.get(name), int):
            return int(params[name])
    return None


def length_limit(outcome: CallOutcome, source: str = "default", front: str = "magic") -> str:
    """What stopped an answer at ``finish_reason: length``, and how to raise it: ``stopped at max
    tokens 256 (the default): raise it with --max-tokens 1024 or %config CompleteMagics.max_tokens
    = 1024``; the model's context window when fewer tokens came back than the limit allowed."""
    limit = max_tokens_of(outcome.request.params) if outcome.request is not None else None
    usage = outcome.usage if isinstance(outcome.usage, dict) else {}
    out = token_count(usage.get("completion_tokens"))
    if limit is None or (out is not None and out < limit):
        return "stopped at the model's context window: shorten the prompt (or the conversation)"
    more = max(1024, limit * 4)
    config = CONFIG_MAX_TOKENS.format(n=more)
    if front == "form":
        how = f"raise max tokens above (to {more}, say)" + ("" if source == "option" else f" or {config}")
    else:
        how = f"raise it with --max-tokens {more}" + ("" if source == "option" else f" or {config}")
    return f"stopped at max tokens {limit} ({LIMIT_SOURCES.get(source, source)}): {how}"


def model_label(answered: str | None, requested: str | None, offline: bool = False) -> str:
    """The model that answered, and the one asked for when it differs:
    ``smollm2-135m (offline; asked for gpt-5.4-mini)``."""
    name = answered or requested or "?"
    notes = ["offline"] if offline else []
    if requested and answered and requested != answered:
        notes.append(f"asked for {requested}")
    return f"{name} ({'; '.join(notes)})" if notes else name


def dropped_turns(dropped: int, name: str, why: str) -> str:
    """The note when a conversation's caps left its oldest turns out of a request."""
    return f"Note: dropped the {dropped} oldest turn(s) of conversation {name!r} to send {why}"


def unexpected(exc: BaseException) -> str:
    """The one line for an error that is none of the project's own (a bug: say what it was)."""
    return one_line(f"{type(exc).__name__}: {exc}", SNIPPET_CHARS)


def status_line(model: str | None, usage: dict[str, Any] | None, latency: float | None,
                time_to_first_token: float | None, finish_reason: str | None, status: str,
                estimated_out: int | None = None, cost: str | None = None, limit: str | None = None) -> str:
    """One compact line: model · tokens in/out (reasoning) · latency · tokens/s · finish reason · cost.

    ``estimated_out``: the pieces a stream delivered, shown as an estimate (``~57 out tokens
    (estimated from the stream)``) when the server reported no output tokens. ``cost``: the call's
    price as text, shown when given. ``limit``: what stopped an answer at the length limit, shown
    instead of ``finish: length`` (:func:`length_limit`). A call that did not end well ends with
    its status (``interrupted``, ``error``) in place of a finish reason it does not have.
    """
    parts = [model or "model not reported"]
    usage = usage if isinstance(usage, dict) else {}
    completion_tokens = token_count(usage.get("completion_tokens"))
    estimate = completion_tokens is None and bool(estimated_out)
    out_tokens = estimated_out if estimate else completion_tokens
    tokens = token_words(token_count(usage.get("prompt_tokens")), completion_tokens,
                         estimated_out if estimate else None, token_count(usage.get("reasoning_tokens")))
    if status != "error" or tokens != "tokens " + NOT_REPORTED:  # a failed call: its error says why
        parts.append(tokens)
    if latency is not None:
        parts.append(f"{latency:.2f} s")
        generating = latency - (time_to_first_token or 0.0)  # a stream's rate: from its first token on
        if generating <= 0:  # an answer in one piece: over the whole call
            generating = latency
        if out_tokens and generating > 0:
            parts.append(f"{'~' if estimate else ''}{out_tokens / generating:.1f} tok/s")
    if limit is not None and finish_reason == "length":  # the longest part last, after the cost
        parts += [cost, limit] if cost is not None else [limit]
    else:
        if finish_reason or status == "ok":
            parts.append(f"finish: {finish_reason or 'not reported'}")
        if cost is not None:
            parts.append(cost)
    if status != "ok":
        parts.append(status)
    return " · ".join(parts)


NOT_REPORTED = "not reported by the server"


def token_words(prompt: int | None, completion: int | None, estimated_out: int | None = None,
                reasoning: int | None = None) -> str:
    """Token counts in words, never a bare ``?``: ``12 in / 34 out tokens``, ``12 in / ~34 out tokens
    (out estimated from the stream)``, ``34 out tokens (in: not reported by the server)``, ``tokens
    not reported by the server``. ``estimated_out`` counts when ``completion`` is unknown."""
    out = f"~{estimated_out}" if completion is None and estimated_out else None if completion is None \
        else str(completion)
    extra = [f"{reasoning} reasoning"] if reasoning else []
    if out is not None and completion is None:
        extra.append("out estimated from the stream" if prompt is not None else "estimated from the stream")
    if prompt is None and out is None:
        return "tokens " + NOT_REPORTED
    if prompt is None:
        extra.append("in: " + NOT_REPORTED)
        text = f"{out} out tokens"
    elif out is None:
        extra.append("out: " + NOT_REPORTED)
        text = f"{prompt} in tokens"
    else:
        text = f"{prompt} in / {out} out tokens"
    return text + (f" ({'; '.join(extra)})" if extra else "")
