"""The local batch engine: rows sent from a thread pool over the project's client, as fast as the
server's rate limits allow.

Each row is one :func:`~jupyter_openai.calls.run.run_call` (so the client's retries with their budget, its
``Retry-After`` handling and its logging apply as for ``%%complete``). A :class:`RateGate` decides
when the next row may start: at most ``concurrency`` in flight, fewer after a 429 (halved, then grown
back one by one on successes), none until a ``Retry-After`` or an exhausted
``x-ratelimit-remaining-requests`` / ``-tokens`` window has passed. A row that still ends in a 429 goes
back in the queue (up to :data:`REQUEUES` times) instead of failing. Ctrl-C cancels the calls in
flight and returns with the finished rows kept. No IPython here.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from ..calls.run import CallOutcome, Origin, run_call
from ..errors import ConfigurationError, RateLimitError
from ..transport.cancel import CancelToken
from ..transport.retries import retry_after
from .job import BatchRun, progress_bar

REQUEUES = 8  #: how often a row that ends in a 429 is sent again (after the server's wait)
TICK = 0.1  #: longest wait of the main loop, so Ctrl-C is seen at once
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset(value: str | None) -> float | None:
    """Seconds in an ``x-ratelimit-reset-*`` header (``1s``, ``6m0s``, ``20ms``, ``0.5``); None if unreadable."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    parts = _DURATION.findall(value.strip())
    if not parts:
        return None
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


class RateGate:
    """How many rows may be in flight now, from what the server's answers say (thread-safe)."""

    def __init__(self, concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.ceiling = concurrency
        self.limit = float(concurrency)
        self.clock = clock
        self.paused_until = 0.0
        self.rate_limited = 0  #: 429 answers seen
        self._remaining: float | None = None  #: requests the server's window has left (as last told)
        self._lock = threading.Lock()

    def observe(self, status: int, headers: Mapping[str, str]) -> None:
        """Learn from one HTTP answer (any thread: the client's session calls it for every response)."""
        now = self.clock()
        with self._lock:
            if status == 429:
                self.rate_limited += 1
                self.limit = max(1.0, self.limit / 2)
                wait_for = retry_after(headers)
                if wait_for is None:
                    wait_for = parse_reset(headers.get("x-ratelimit-reset-requests")) or 1.0
                self.paused_until = max(self.paused_until, now + min(wait_for, 60.0))
            elif status < 400:
                self.limit = min(float(self.ceiling), self.limit + 1 / max(self.limit, 1.0))
            for kind in ("requests", "tokens"):
                left = headers.get(f"x-ratelimit-remaining-{kind}")
                if left is None:
                    continue
                try:
                    count = float(left)
                except ValueError:
                    continue
                if kind == "requests":
                    self._remaining = count
                if count <= 0:
                    reset = parse_reset(headers.get(f"x-ratelimit-reset-{kind}"))
                    if reset is not None:
                        self.paused_until = max(self.paused_until, now + min(reset, 60.0))

    def may_start(self, in_flight: int) -> float:
        """0 when one more row may start now, else how long to wait before asking again."""
        with self._lock:
            wait_for = self.paused_until - self.clock()
            if wait_for > 0:
                return wait_for
            if self._remaining is not None and self._remaining <= 0:
                self._remaining = None  # the window has reset: learn it again from the next answer
            if in_flight >= int(self.limit):
                return TICK
            if self._remaining is not None:
                self._remaining -= 1
            return 0.0


def outcome_record(outcome: CallOutcome) -> dict[str, Any]:
    """A finished call as a batch row's result (from its log record: error text already masked)."""
    record = outcome.record
    return {"answer": outcome.text, "status": outcome.status, "error": record.get("error"),
            "prompt_tokens": record.get("prompt_tokens"), "completion_tokens": record.get("completion_tokens"),
            "total_tokens": record.get("total_tokens"), "latency": record.get("latency"),
            "finish_reason": record.get("finish_reason"), "cost_usd": record.get("cost_usd")}


def run_local(run: BatchRun, pending: Sequence[int], **_: Any) -> None:
    """Send the ``pending`` rows of ``run`` (see the module docstring)."""
    client = run.client
    if hasattr(client, "ensure_pool"):
        client.ensure_pool(run.concurrency)
    gate = RateGate(run.concurrency)
    queue = collections.deque(pending)
    requeued: collections.Counter[int] = collections.Counter()
    tokens: dict[Future[CallOutcome], tuple[int, CancelToken]] = {}
    bar = progress_bar(len(run.rows), len(run.rows) - len(pending), run.progress, "batch")
    used, errors = 0, 0
    unwatch = client.watch_responses(gate.observe) if hasattr(client, "watch_responses") else (lambda: None)
    pool = ThreadPoolExecutor(max_workers=run.concurrency, thread_name_prefix="jupyter-openai-batch")

    def send(i: int, token: CancelToken) -> CallOutcome:
        request = run.request(i)
        origin = Origin("batch", run.execution_count, run.batch_id, run.rows.keys[i])
        return run_call(client, request, log=run.log, cancel=token, origin=origin)

    try:
        while queue or tokens:
            while queue:
                delay = gate.may_start(len(tokens))
                if delay > 0:
                    break
                i = queue.popleft()
                token = CancelToken()
                tokens[pool.submit(send, i, token)] = (i, token)
            else:
                delay = TICK
            done, _ = wait(list(tokens), timeout=min(max(delay, 0.005), TICK) if queue else TICK,
                           return_when=FIRST_COMPLETED)
            for future in done:
                i, _token = tokens.pop(future)
                try:
                    outcome = future.result()
                except ConfigurationError as exc:
                    run.finish(i, {"status": "error", "error": str(exc)})
                    errors += 1
                    bar.update(1)
                    continue
                if isinstance(outcome.error, RateLimitError) and requeued[i] < REQUEUES:
                    requeued[i] += 1
                    queue.append(i)  # the gate holds it back until the server's wait is over
                    continue
                record = outcome_record(outcome)
                run.finish(i, record)
                used += record["total_tokens"] or 0
                errors += record["status"] != "ok"
                bar.update(1)
                bar.set_postfix(tokens=used, errors=errors, refresh=False)
    except KeyboardInterrupt:
        run.interrupted = True
        for _i, token in tokens.values():
            token.cancel()
        _drain(tokens, run)
    finally:
        unwatch()
        pool.shutdown(wait=False, cancel_futures=True)
        bar.close()


def _drain(tokens: dict[Future[CallOutcome], tuple[int, CancelToken]], run: BatchRun) -> None:
    """After Ctrl-C: keep what the cancelled calls finished with (a second Ctrl-C gives up waiting)."""
    try:
        for future, (i, _token) in list(tokens.items()):
            try:
                outcome = future.result(timeout=5)
            except Exception:  # noqa: BLE001 - a call that did not end in time stays "not run"
                continue
            if outcome.status == "ok":
                run.finish(i, outcome_record(outcome))
    except KeyboardInterrupt:
        pass
