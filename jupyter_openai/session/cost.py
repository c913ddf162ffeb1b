"""What calls cost: a price per model, the session's total, and a budget.

Prices come from the user's price table first (the ``prices`` trait: model id -> US dollars per
million input and output tokens), then from ``genai-prices`` (a maintained price database, the
``lab`` extra) when it is installed, and the bundled offline model costs nothing. A model none of
them knows costs ``None``: unknown, never a made-up 0. The session's total is the sum of the log's
``cost_usd`` column, so clearing the log starts it again; with ``max_cost_usd`` set, a call is
refused, before anything is sent, once that total has reached it. No IPython here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from ..api.completion import token_count
from ..errors import ConfigurationError

PER = 1_000_000  #: a price table's prices are US dollars per this many tokens
#: What the database calls the providers whose API hosts are known here.
PROVIDERS = {"api.openai.com": "openai"}
#: Free unless the table says otherwise: the bundled offline model (``local.MODEL_ALIAS``) runs on this machine.
FREE_MODELS = frozenset({"smollm2-135m"})


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

    def check_budget(self, log: Iterable[Mapping[str, Any]]) -> None:
        """Raise ConfigurationError once the calls in ``log`` have spent ``max_cost_usd``."""
        if self.max_cost_usd is None:
            return
        spent = session_total(log)
        if spent >= self.max_cost_usd:
            raise ConfigurationError(f"budget spent: this session's calls cost {money(spent)} of max_cost_usd "
                                     f"{money(self.max_cost_usd)} (raise it, or %complete_log --clear to start again)")


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

__all__ = ["Pricing", "check_table", "database_price", "money", "pricing", "provider_of", "session_total"]
