"""One call from request to log record: send, stream, coalesce updates, log.

Shared by the magic and the form, which build the request with
:func:`~jupyter_openai.calls.request.build_request`, and show what this module hands back
(:func:`~jupyter_openai.calls.summary.summarize` words it). Nothing here imports IPython.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from ..api.completion import Completion, token_count
from ..api.logprobs import TokenProb
from ..api.params import CHAT, COMPLETIONS, RESPONSES
from ..client import OpenAIClient
from ..errors import Cancelled, ConfigurationError, OpenAIError, redact
from ..session import cost
from ..session.log import SessionLog, session_log
from ..transport.cancel import CancelToken
from ..transport.stream import Stream
from .request import CallRequest

UPDATES_PER_SECOND = 25


class Origin(NamedTuple):
    """Where a call came from, for its log record: ``magic``, ``chat``, ``form`` or ``batch``, the cell
    number, for a batch its id and the row's key, and for a turn of a conversation its name and the
    turn's number (1-based)."""

    source: str = "magic"
    execution_count: int | None = None
    batch_id: str | None = None
    row_key: str | None = None
    conversation: str | None = None
    turn: int | None = None


MAGIC = Origin()


class Progress(NamedTuple):
    """What a call has received so far, for display: the answer per choice, choice 0's reasoning
    text (kept apart from the answer), a refusal, and choice 0's tokens with their probabilities
    (empty unless the request asked for logprobs)."""

    texts: list[str]
    reasoning: str = ""
    refusal: str = ""
    logprobs: Sequence[TokenProb] = ()


@dataclass
class CallOutcome:
    """What came back, whatever happened; ``record`` is the log entry."""

    texts: list[str]
    status: str
    record: dict[str, Any]
    error: OpenAIError | None = None
    usage: dict[str, Any] | None = None
    finish_reasons: list[str | None] = field(default_factory=list)
    model: str | None = None
    latency: float | None = None
    time_to_first_token: float | None = None
    updates: int = 0
    request: CallRequest | None = None
    reasoning: str = ""
    refusal: str = ""
    notes: list[str] = field(default_factory=list)  #: what the client changed to get an answer
    #: pieces of text a stream delivered (about one token each): the estimate when a server reports no usage
    streamed_pieces: int | None = None
    logprobs: list[TokenProb] = field(default_factory=list)  #: choice 0's tokens and their probabilities

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""

    @property
    def cost_usd(self) -> float | None:
        """What the call cost in US dollars (None when unknown)."""
        return self.record.get("cost_usd")

    @property
    def progress(self) -> Progress:
        return Progress(self.texts, self.reasoning, self.refusal, self.logprobs)


class Coalescer:
    """Calls ``render`` at most ``rate`` times a second while text grows, and once at the end.

    Text that arrives too soon after a render is not lost when the stream then pauses: a
    timer renders it once the interval is over. Renders never overlap.
    """

    def __init__(self, render: Callable[[Progress], None], rate: float = UPDATES_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._render = render
        self._interval = 1.0 / rate
        self._clock = clock
        self._last = -1e9
        self._pending: Callable[[], Progress] | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.RLock()
        self._finished = False
        self.count = 0

    def offer(self, state_now: Callable[[], Progress]) -> None:
        """New text arrived: render now if the interval has passed, else render it later."""
        now = self._clock()
        if now - self._last >= self._interval:
            with self._lock:  # the timer may have drawn meanwhile: check again
                if now - self._last >= self._interval:
                    self._last = now
                    self._pending = None
                    self._draw(state_now())
                    return
        self._pending = state_now
        if self._timer is None:
            with self._lock:
                if self._timer is None and not self._finished:
                    self._schedule(self._interval - (self._clock() - self._last))

    def _schedule(self, delay: float) -> None:
        self._timer = threading.Timer(max(0.0, delay), self._flush)
        self._timer.daemon = True
        self._timer.start()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if self._pending is None or self._finished:
                return
            wait = self._interval - (self._clock() - self._last)
            if wait > 0:  # something was drawn meanwhile
                self._schedule(wait)
                return
            pending, self._pending = self._pending, None
            self._last = self._clock()
            try:
                self._draw(pending())
            except Exception:  # noqa: BLE001 - the final render, on the caller's thread, reports it
                pass

    def _draw(self, state: Progress) -> None:
        self.count += 1
        self._render(state)

    def finish(self, state: Progress) -> None:
        """Render the final text (always, so the last state equals the full answer)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        with self._lock:
            self._finished = True
            self._pending = None
            self._draw(state)


def run_call(client: OpenAIClient, request: CallRequest, *, on_update: Callable[[Progress], None] | None = None,
             log: SessionLog = session_log, cancel: CancelToken | None = None, origin: Origin = MAGIC,
             pricing: cost.Pricing | None = None) -> CallOutcome:
    """Run one request. Errors and Ctrl-C are caught, kept in the outcome and the log.

    ``on_update`` receives the :class:`Progress` so far (texts of all choices, reasoning), coalesced to
    :data:`UPDATES_PER_SECOND`, and a last time with the final state. ``cancel.cancel()`` from
    another thread stops the call at once (status ``interrupted``, partial text kept). ``pricing``
    (default :data:`~jupyter_openai.session.cost.pricing`) prices the call for its log record; once the
    session's calls in ``log`` have spent its budget, the call is refused before anything is sent
    (:class:`~jupyter_openai.errors.ConfigurationError`); while it runs, its estimate is reserved
    against the budget (:meth:`~jupyter_openai.session.cost.Pricing.reserve`), so calls running at
    once cannot pass it together.
    """
    pricing = cost.pricing if pricing is None else pricing
    sends = (request.prompt, request.system, *request.history)
    with pricing.reserve(log, lambda: pricing.estimate(request.model, sends, request.params, client.settings.base_url)):
        return _run(client, request, on_update, log, cancel, origin, pricing)


def _run(client: OpenAIClient, request: CallRequest, on_update: Callable[[Progress], None] | None, log: SessionLog,
         cancel: CancelToken | None, origin: Origin, pricing: cost.Pricing) -> CallOutcome:
    """:func:`run_call` once the call's estimate is reserved against the budget (released when it returns)."""
    attempt = _Attempt(Coalescer(on_update or (lambda progress: None), UPDATES_PER_SECOND))
    attempt.pricing = pricing
    try:
        attempt.result = _send(client, request, cancel)
        if isinstance(attempt.result, Stream):
            stream = attempt.result
            with stream:
                for delta in stream:
                    if delta.text or delta.reasoning:
                        attempt.pieces += 1  # a server sends about one token per piece: the estimate
                    attempt.coalescer.offer(attempt.progress)
            attempt.status = stream.status if stream.status != "streaming" else "interrupted"
            _count_prompt(client, request, stream)
            if stream.error is not None:
                attempt.error = stream.error if isinstance(stream.error, OpenAIError) else None
                attempt.status = "error"
        elif isinstance(attempt.result.error, OpenAIError):  # an answer of an unexpected shape
            attempt.error, attempt.status = attempt.result.error, "error"
        if request.schema is not None and attempt.status == "ok":
            from .schema import check_answer

            check_answer(attempt.texts[0] if attempt.texts else "", request.schema)
    except ConfigurationError:
        raise
    except Cancelled:
        attempt.status = "interrupted"
    except OpenAIError as exc:
        attempt.error, attempt.status = exc, "error"
    except KeyboardInterrupt:
        attempt.status = "interrupted"
        if isinstance(attempt.result, Stream):
            attempt.result.close()
    try:
        attempt.coalescer.finish(attempt.progress())
    except KeyboardInterrupt:  # the call is over: log it; the caller redraws the final text anyway
        pass
    return attempt.outcome(client, request, log, origin)


def _count_prompt(client: OpenAIClient, request: CallRequest, stream: Stream) -> None:
    """A stream that reported no prompt tokens gets them from the client's counter, when it has one
    (the offline server's tokenizer)."""
    usage = stream.usage or {}
    if client.prompt_counter is None or token_count(usage.get("prompt_tokens")) is not None:
        return
    counted = client.prompt_counter(request.endpoint, request.prompt if request.endpoint == COMPLETIONS
                                    else request.messages() if request.endpoint == CHAT else None)
    if counted is not None:
        stream.usage = {**usage, "prompt_tokens": counted}


def _send(client: OpenAIClient, request: CallRequest, cancel: CancelToken | None) -> Completion | Stream:
    if request.endpoint == CHAT:
        return client.chat(request.model, request.messages(), stream=request.stream, cancel=cancel, **request.params)
    if request.endpoint == RESPONSES:
        return client.responses(request.model, request.input(), instructions=request.system, stream=request.stream,
                                cancel=cancel, **request.params)
    return client.completion(request.model, request.prompt, stream=request.stream, cancel=cancel, **request.params)


class _Attempt:
    """The state of one call while it runs, then its outcome and log record."""

    def __init__(self, coalescer: Coalescer) -> None:
        self.coalescer = coalescer
        self.started = time.monotonic()
        self.result: Completion | Stream | None = None
        self.error: OpenAIError | None = None
        self.status = "ok"
        self.pieces = 0  #: streamed pieces of text (reasoning included) received
        self.pricing: cost.Pricing = cost.pricing

    @property
    def texts(self) -> list[str]:
        return self.result.texts if self.result is not None else []

    def progress(self) -> Progress:
        result = self.result
        if result is None:
            return Progress([])
        return Progress(result.texts, result.reasoning, result.refusal, result.logprobs)

    def finish_reasons(self) -> list[str | None]:
        result = self.result
        if result is None:
            return []
        if isinstance(result, Completion):
            return result.finish_reasons
        return [result.finish_reasons.get(i) for i in range(max(len(result.texts), len(result.finish_reasons)))]

    def outcome(self, client: OpenAIClient, request: CallRequest, log: SessionLog, origin: Origin) -> CallOutcome:
        result, texts, progress = self.result, self.texts, self.progress()
        usage = result.usage if result is not None else None
        reasons = self.finish_reasons()
        ended = result.latency if result is not None else None
        latency = ended if ended is not None else time.monotonic() - self.started
        ttft = result.time_to_first_token if isinstance(result, Stream) else (latency if result is not None else None)
        record = log.append(self._record(client, request, origin, (latency, ttft)))
        return CallOutcome(texts, self.status, record, self.error, usage, reasons, record["model"], latency, ttft,
                           self.coalescer.count, request, progress.reasoning, progress.refusal,
                           [*request.notes, *(result.notes if result is not None else [])],
                           self.pieces if isinstance(result, Stream) else None, list(progress.logprobs))

    def _record(self, client: OpenAIClient, request: CallRequest, origin: Origin,
                times: tuple[float, float | None]) -> dict[str, Any]:
        """The log record: what was asked, what was sent (after any change the client made), what came
        back; ``times`` is the latency and the time to the first token."""
        result, texts, progress = self.result, self.texts, self.progress()
        usage = result.usage if result is not None else None
        reasons, (latency, ttft) = self.finish_reasons(), times
        secrets = (client.settings.api_key,) if client.settings.api_key else ()
        sent = result.sent if result is not None and result.sent else request.params
        params = {k: v for k, v in sent.items() if v is not None and k not in ("stream", "stream_options")}
        if request.stream:
            params["stream"] = True
        request_id = getattr(self.error, "request_id", None) or (result.request_id if result is not None else None)
        return {
            "source": origin.source,
            "execution_count": origin.execution_count,
            "model": (result.model if result is not None else None) or request.model,
            "requested_model": request.model,
            "endpoint": request.endpoint,
            "host": urlsplit(client.settings.base_url).netloc,
            "prompt": request.prompt,
            "system": request.system if request.endpoint != COMPLETIONS else None,
            "completion": texts[0] if texts else "",
            "completions": json.dumps(texts, ensure_ascii=False) if len(texts) > 1 else None,
            "reasoning": progress.reasoning or None,
            "refusal": progress.refusal or None,
            "finish_reason": reasons[0] if reasons else None,
            "prompt_tokens": _usage(usage, "prompt_tokens"),
            "completion_tokens": _usage(usage, "completion_tokens"),
            "total_tokens": _usage(usage, "total_tokens"),
            "reasoning_tokens": _usage(usage, "reasoning_tokens"),
            "latency": round(latency, 4),
            "time_to_first_token": None if ttft is None else round(ttft, 4),
            "status": self.status,
            "error": redact(str(self.error), secrets) if self.error is not None else None,
            "request_id": request_id,
            "params": json.dumps(params, ensure_ascii=False, sort_keys=True),
            "batch_id": origin.batch_id,
            "row_key": origin.row_key,
            "cost_usd": self.pricing.cost(
                (result.model if result is not None else None) or request.model, usage, client.settings.base_url),
            "conversation": origin.conversation,
            "turn": origin.turn,
            "messages_sent": request.messages_sent(),
        }


def _usage(usage: dict[str, Any] | None, name: str) -> int | None:
    return token_count((usage or {}).get(name))
