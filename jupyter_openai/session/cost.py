"""What calls cost: a price per model, the session's total, and a budget.

Prices come from the user's price table first (the ``prices`` trait: model id -> US dollars per
million input and output tokens), then from ``genai-prices`` (a maintained price database, the
``lab`` extra) when it is installed, and the bundled offline model costs nothing. A model none of
them knows costs ``None``: unknown, never a made-up 0. The session's total is the sum of the log's
``cost_usd`` column, so clearing the log starts it again; with ``max_cost_usd`` set (a number of
dollars > 0), a call is refused, before anything is sent, once that total has reached it.

Calls running at once (``--compare``, a batch's threads) cannot pass the budget together: each
reserves its worst case (:meth:`Pricing.reserve`) before it is sent (the prompt at about 4 characters a
token at the input price, plus its most output tokens, ``max_tokens`` times the choices, at the
output price), and a running call counts as spent at that estimate until its log record (the real
cost) replaces it. No IPython here.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from ..api.completion import token_count
from ..errors import ConfigurationError

PER = 1_000_000  #: a price table's prices are US dollars per this many tokens
#: What the database calls the providers whose API hosts are known here.
PROVIDERS = {"api.openai.com": "openai"}
#: Free unless the table says otherwise: the bundled offline model (``local.MODEL_ALIAS``) runs on this machine.
FREE_MODELS = frozenset({"smollm2-135m"})
CHARS_PER_TOKEN = 4  #: a prompt's tokens, estimated from its characters before it is sent
#: The output tokens a call with no ``max_tokens`` is reserved for (its most cannot be known).
UNBOUNDED_OUTPUT = 4096
#: The request parameters that bound a call's output tokens, and those that multiply them.
OUTPUT_LIMITS = ("max_tokens", "max_completion_tokens", "max_output_tokens")
CHOICE_COUNTS = ("n", "best_of")


def check_budget_value(value: Any) -> float | None:
    """``max_cost_usd`` checked: None (no limit) or a finite number of US dollars > 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
        raise ConfigurationError(f"max_cost_usd must be a number of US dollars > 0, or None for no limit; "
                                 f"got {value!r}")
    return float(value)


def _price_pair(model: str, value: Any) -> tuple[float, float]:
    """``(input, output)`` US dollars per million tokens from a table entry: a pair, one number
    for both, or ``{"input": …, "output": …}``."""
    if isinstance(value, Mapping):
        value = (value.get("input"), value.get("output"))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value, value)
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 0 for v in value)):
        raise ConfigurationError(f"prices[{model!r}] must be (input, output) US dollars per million tokens, "
                                 f"numbers >= 0, or {{'input': …, 'output': …}}; got {value!r}")
    return float(value[0]), float(value[1])


def check_table(table: Mapping[str, Any]) -> dict[str, tuple[float, float]]:
    """The price table as ``model -> (input, output)``; a malformed entry raises ConfigurationError."""
    if not isinstance(table, Mapping):
        raise ConfigurationError(f"prices must be a dict of model -> (input, output), got {type(table).__name__}")
    return {str(model): _price_pair(str(model), value) for model, value in table.items()}


@functools.lru_cache(maxsize=256)
def database_price(model: str, provider: str | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The price ``genai-prices`` gives for these token counts (None: not installed, or it does not
    know the model)."""
    try:
        from genai_prices import Usage, calc_price
    except ImportError:
        return None
    try:
        price = calc_price(Usage(input_tokens=prompt_tokens, output_tokens=completion_tokens), model_ref=model,
                           provider_id=provider)
    except (LookupError, ValueError):
        return None
    return float(price.total_price)


def provider_of(base_url: str | None) -> str | None:
    """The database's provider id for a server, or None when it is not a known provider's API."""
    if not base_url:
        return None
    return PROVIDERS.get(urlsplit(base_url).hostname or "")


class Pricing:
    """The prices in force: the user's table over the database, and the session's budget."""

    def __init__(self, table: Mapping[str, Any] | None = None, max_cost_usd: float | None = None,
                 use_database: bool = True) -> None:
        self.table = check_table(table or {})
        self.max_cost_usd = max_cost_usd
        self.use_database = use_database
        self._lock = threading.Lock()
        self._reserved: dict[int, dict[object, float]] = {}  #: id(log) -> running call -> its estimate

    @property
    def max_cost_usd(self) -> float | None:
        """The budget in US dollars (None: no limit)."""
        return self._max_cost_usd

    @max_cost_usd.setter
    def max_cost_usd(self, value: float | None) -> None:
        self._max_cost_usd = check_budget_value(value)

    def set_table(self, table: Mapping[str, Any] | None) -> None:
        """Replace the user's price table (checked first)."""
        self.table = check_table(table or {})

    def cost(self, model: str | None, usage: Mapping[str, Any] | None, base_url: str | None = None) -> float | None:
        """US dollars for a call to ``model`` that used ``usage`` (chat's names), or None when unknown."""
        usage = usage or {}
        prompt, completion = token_count(usage.get("prompt_tokens")), token_count(usage.get("completion_tokens"))
        if model in FREE_MODELS and model not in self.table:  # free however many tokens (streams may not say)
            return 0.0
        if not model or prompt is None and completion is None:
            return None
        prompt, completion = prompt or 0, completion or 0
        if model in self.table:
            price_in, price_out = self.table[model]
            return round((prompt * price_in + completion * price_out) / PER, 10)
        provider = provider_of(base_url)
        if not self.use_database or provider is None:  # another server's "gpt-4o" is not OpenAI's price
            return None
        return database_price(model, provider, prompt, completion)

    def estimate(self, model: str | None, texts: Iterable[Any], params: Mapping[str, Any],
                 base_url: str | None = None) -> float | None:
        """The most a call could cost, before it is sent: what it sends (``texts``: the prompt, the
        system message, earlier messages; tokens estimated at :data:`CHARS_PER_TOKEN` characters) at
        the input price, and its most output tokens (the ``max_tokens`` of ``params``, else
        :data:`UNBOUNDED_OUTPUT`, times ``n`` or ``best_of``) at the output price. None when the
        model's price is unknown."""
        limits = [v for name in OUTPUT_LIMITS if isinstance(v := params.get(name), int) and not isinstance(v, bool)]
        counts = [v for name in CHOICE_COUNTS if isinstance(v := params.get(name), int) and not isinstance(v, bool)]
        output = (min(limits) if limits else UNBOUNDED_OUTPUT) * max([1, *counts])
        chars = sum(len(text if isinstance(text, str) else str(text)) for text in texts if text is not None)
        prompt = -(-chars // CHARS_PER_TOKEN)
        return self.cost(model, {"prompt_tokens": prompt, "completion_tokens": output}, base_url)

    def reserved(self, log: Iterable[Mapping[str, Any]]) -> float:
        """What the calls running on ``log`` are reserved for, together."""
        with self._lock:
            return sum(self._reserved.get(id(log), {}).values())

    def check_budget(self, log: Iterable[Mapping[str, Any]]) -> None:
        """Raise ConfigurationError once the calls in ``log`` have spent ``max_cost_usd`` (the calls
        still running counted at their reserved estimate)."""
        with self._lock:
            self._check(log)

    @contextmanager
    def reserve(self, log: Iterable[Mapping[str, Any]],
                estimate: Callable[[], float | None] | float | None) -> Iterator[None]:
        """Check the budget and hold ``estimate`` (US dollars, or a function giving them, asked only
        when a budget is set; None, unknown, holds 0) against it while the block runs. The check and
        the reservation are one step, so calls checked at once cannot all pass the budget. End the
        block once the call's record (its real cost) is in ``log``: the estimate is released."""
        if self.max_cost_usd is None:
            yield
            return
        amount = estimate() if callable(estimate) else estimate
        token = object()
        with self._lock:
            self._check(log)
            self._reserved.setdefault(id(log), {})[token] = amount or 0.0
        try:
            yield
        finally:
            with self._lock:
                running = self._reserved.get(id(log), {})
                running.pop(token, None)
                if not running:
                    self._reserved.pop(id(log), None)

    def _check(self, log: Iterable[Mapping[str, Any]]) -> None:
        """:meth:`check_budget`, the lock held."""
        budget = self.max_cost_usd
        if budget is None:
            return
        spent = session_total(log)
        running = self._reserved.get(id(log), {})
        reserved, count = sum(running.values()), len(running)
        if spent + reserved >= budget:
            also = f" (and {money(reserved)} reserved by {count} call(s) still running)" if count else ""
            raise ConfigurationError(f"budget spent: this session's calls cost {money(spent)}{also} of max_cost_usd "
                                     f"{money(budget)} (raise it, or %complete_log --clear to start again)")


def session_total(log: Iterable[Mapping[str, Any]]) -> float:
    """What the calls in ``log`` cost together (calls of unknown cost count as 0)."""
    return sum(r.get("cost_usd") or 0.0 for r in log)


def unpriced(log: Iterable[Mapping[str, Any]]) -> int:
    """How many calls in ``log`` have tokens reported but no known cost."""
    return sum(1 for r in log if r.get("cost_usd") is None and r.get("total_tokens") is not None)


def money(value: float | None) -> str:
    """``$0.0012``: enough digits for small sums, ``?`` when unknown."""
    if value is None:
        return "?"
    if value == 0:
        return "$0"
    if value >= 0.01:
        return f"${value:.2f}"
    return f"${value:.6f}".rstrip("0")


#: The prices the magic and the form use (the ``prices`` and ``max_cost_usd`` traits set them).
pricing = Pricing()

__all__ = ["Pricing", "check_budget_value", "check_table", "database_price", "money", "pricing", "provider_of",
           "session_total"]
