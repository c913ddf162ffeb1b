"""One call from request to log record: pick the endpoint, stream, coalesce updates, log.

Shared by the magic and the form, which only parse input and display what this module
hands them. Nothing here imports IPython.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from .client import OpenAIClient
from .cancel import CancelToken
from .errors import Cancelled, ConfigurationError, OpenAIError, redact
from .log import SessionLog, session_log
from .params import CHAT, COMPLETIONS
from .results import Completion, Stream

AUTO = "auto"
ENDPOINT_CHOICES = (AUTO, CHAT, COMPLETIONS)
UPDATES_PER_SECOND = 25
_LEGACY_MODEL = re.compile(r"instruct|^(text-|code-)|^(davinci|babbage|curie|ada)\b|^(davinci|babbage)-00", re.I)


def choose_endpoint(model: str, endpoint: str = AUTO) -> str:
    """The endpoint to call. ``auto``: completions for instruct and legacy models
    (names with ``instruct``, or starting ``davinci``, ``babbage``, ``curie``, ``ada``,
    ``text-``, ``code-``), chat for every other model."""
    if endpoint not in ENDPOINT_CHOICES:
        raise ConfigurationError(f"unknown endpoint {endpoint!r}: use one of {', '.join(ENDPOINT_CHOICES)}")
    if endpoint != AUTO:
        return endpoint
    return COMPLETIONS if _LEGACY_MODEL.search(model or "") else CHAT


@dataclass
class CallRequest:
    """What to ask: the prompt, the model, the endpoint rule and the sampling parameters."""

    prompt: str
    model: str
    endpoint: str = AUTO
    system: str | None = None
    stream: bool = True
    params: dict[str, Any] = field(default_factory=dict)

    def messages(self) -> list[dict[str, str]]:
        """The chat messages this request implies."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, {"role": "user", "content": self.prompt}]


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

    @property
    def text(self) -> str:
        return self.texts[0] if self.texts else ""


class Coalescer:
    """Calls ``render`` at most ``rate`` times a second while text grows, and once at the end.

    Text that arrives too soon after a render is not lost when the stream then pauses: a
    timer renders it once the interval is over (``flush_stalled``). Renders never overlap.
    """

    def __init__(self, render: Callable[[list[str]], None], rate: float = UPDATES_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic, flush_stalled: bool = True) -> None:
        self._render = render
        self._interval = 1.0 / rate
        self._clock = clock
        self._last = -1e9
        self._pending: Callable[[], list[str]] | None = None
        self._timer: threading.Timer | None = None
        self._flush_stalled = flush_stalled
        self._lock = threading.RLock()
        self._finished = False
        self.count = 0

    def offer(self, texts_now: Callable[[], list[str]]) -> None:
        """New text arrived: render now if the interval has passed, else render it later."""
        now = self._clock()
        if now - self._last >= self._interval:
            with self._lock:  # the timer may have drawn meanwhile: check again
                if now - self._last >= self._interval:
                    self._last = now
                    self._pending = None
                    self._draw(texts_now())
                    return
        self._pending = texts_now
        if self._flush_stalled and self._timer is None:
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

    def _draw(self, texts: list[str]) -> None:
        self.count += 1
        self._render(texts)

    def finish(self, texts: list[str]) -> None:
        """Render the final text (always, so the last state equals the full answer)."""
        timer = self._timer
        if timer is not None:
            timer.cancel()
        with self._lock:
            self._finished = True
            self._pending = None
            self._draw(texts)


def run_call(
    client: OpenAIClient,
    request: CallRequest,
    *,
    on_update: Callable[[list[str]], None] | None = None,
    source: str = "magic",
    execution_count: int | None = None,
    log: SessionLog = session_log,
    cancel: CancelToken | None = None,
    rate: float = UPDATES_PER_SECOND,
) -> CallOutcome:
    """Run one request. Errors and Ctrl-C are caught, kept in the outcome and the log.

    ``on_update`` receives the texts of all choices so far, coalesced to ``rate`` per
    second, and a last time with the final texts. ``cancel.cancel()`` from another thread
    stops the call at once (status ``interrupted``, partial text kept).
    """
    endpoint = choose_endpoint(request.model, request.endpoint)
    coalescer = Coalescer(on_update or (lambda texts: None), rate)
    started = time.monotonic()
    result: Completion | Stream | None = None
    error: OpenAIError | None = None
    status = "ok"
    try:
        if endpoint == CHAT:
            result = client.chat(request.model, request.messages(), stream=request.stream, cancel=cancel,
                                 **request.params)
        else:
            result = client.completion(request.model, request.prompt, stream=request.stream, cancel=cancel,
                                       **request.params)
        if isinstance(result, Stream):
            with result:
                for _ in result:
                    coalescer.offer(lambda: result.texts)  # noqa: B023 - result is fixed here
            status = result.status if result.status != "streaming" else "interrupted"
            if result.error is not None:
                error = result.error if isinstance(result.error, OpenAIError) else None
                status = "error"
    except ConfigurationError:
        raise
    except Cancelled:
        status = "interrupted"
    except OpenAIError as exc:
        error, status = exc, "error"
    except KeyboardInterrupt:
        status = "interrupted"
        if isinstance(result, Stream):
            result.close()
    texts = result.texts if result is not None else []
    try:
        coalescer.finish(texts)
    except KeyboardInterrupt:  # the call is over: log it; the caller redraws the final text anyway
        pass
    return _outcome(client, request, endpoint, result, texts, status, error, started, source, execution_count, log, coalescer.count)


def _outcome(client: OpenAIClient, request: CallRequest, endpoint: str, result: Completion | Stream | None,
             texts: list[str], status: str, error: OpenAIError | None, started: float, source: str,
             execution_count: int | None, log: SessionLog, updates: int) -> CallOutcome:
    usage = result.usage if result is not None else None
    reasons = _finish_reasons(result)
    latency = result.latency if result is not None and result.latency is not None else time.monotonic() - started
    ttft = result.time_to_first_token if isinstance(result, Stream) else (latency if result is not None else None)
    secrets = (client.settings.api_key,) if client.settings.api_key else ()
    params = {k: v for k, v in request.params.items() if v is not None}
    if request.stream:
        params["stream"] = True
    record = log.append({
        "source": source,
        "execution_count": execution_count,
        "model": (result.model if result is not None else None) or request.model,
        "endpoint": endpoint,
        "host": urlsplit(client.settings.base_url).netloc,
        "prompt": request.prompt,
        "system": request.system if endpoint == CHAT else None,
        "completion": texts[0] if texts else "",
        "completions": json.dumps(texts, ensure_ascii=False) if len(texts) > 1 else None,
        "finish_reason": reasons[0] if reasons else None,
        "prompt_tokens": _usage(usage, "prompt_tokens"),
        "completion_tokens": _usage(usage, "completion_tokens"),
        "total_tokens": _usage(usage, "total_tokens"),
        "latency": round(latency, 4),
        "time_to_first_token": None if ttft is None else round(ttft, 4),
        "status": status,
        "error": redact(str(error), secrets) if error is not None else None,
        "request_id": getattr(error, "request_id", None) or (result.request_id if result is not None else None),
        "params": json.dumps(params, ensure_ascii=False, sort_keys=True),
    })
    return CallOutcome(texts, status, record, error, usage, reasons, record["model"], latency, ttft, updates)


def _finish_reasons(result: Completion | Stream | None) -> list[str | None]:
    if result is None:
        return []
    if isinstance(result, Completion):
        return result.finish_reasons
    return [result.finish_reasons.get(i) for i in range(max(len(result.texts), len(result.finish_reasons)))]


def _usage(usage: dict[str, Any] | None, name: str) -> int | None:
    value = (usage or {}).get(name)
    return value if isinstance(value, int) else None
