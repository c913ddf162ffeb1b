"""The request parameters users tune, with their types and ranges, checked before sending.

One table serves the client (validation), the magic (its options) and the form (its
sliders), so a range is written down once. Ranges and defaults follow the official
schemas of ``CreateCompletionRequest`` and ``CreateChatCompletionRequest``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import ConfigurationError

COMPLETIONS = "completions"
CHAT = "chat"
ENDPOINTS = (COMPLETIONS, CHAT)


class Param(NamedTuple):
    """One request field: its type, allowed range and the endpoints that take it."""

    name: str
    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    endpoints: tuple[str, ...] = ENDPOINTS
    default: Any = None
    help: str = ""

    def check(self, value: Any) -> None:
        """Raise :class:`ConfigurationError` if ``value`` is not allowed."""
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            pass
        elif bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigurationError(f"{self.name} must be {names}, got {value!r}")
        if isinstance(value, float) and value != value:  # NaN passes every comparison and is not JSON
            raise ConfigurationError(f"{self.name} must be a number, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.low is not None and value < self.low or self.high is not None and value > self.high:
                raise ConfigurationError(f"{self.name} must be between {_fmt(self.low)} and {_fmt(self.high)}, got {value}")


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "∞"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


_PARAMS = [
    Param("max_tokens", int, 0, None, default=16, help="largest number of tokens to generate"),
    Param("max_completion_tokens", int, 0, None, endpoints=(CHAT,), help="chat: newer name of max_tokens"),
    Param("temperature", float, 0, 2, default=1.0, help="sampling temperature, 0 to 2"),
    Param("top_p", float, 0, 1, default=1.0, help="nucleus sampling mass, 0 to 1"),
    Param("n", int, 1, 128, default=1, help="how many choices to generate"),
    Param("stop", (str, list), help="up to 4 sequences where generation stops"),
    Param("presence_penalty", float, -2, 2, default=0.0, help="penalty for tokens already present, -2 to 2"),
    Param("frequency_penalty", float, -2, 2, default=0.0, help="penalty by token frequency, -2 to 2"),
    Param("seed", int, help="seed for repeatable sampling (best effort)"),
    Param("user", str, help="end-user id for abuse monitoring"),
    Param("logit_bias", dict, help="token id -> bias, -100 to 100"),
    Param("logprobs", int, 0, 5, endpoints=(COMPLETIONS,), help="completions: log probabilities of the top N tokens"),
    Param("echo", bool, endpoints=(COMPLETIONS,), default=False, help="completions: include the prompt in the answer"),
    Param("suffix", str, endpoints=(COMPLETIONS,), help="completions: text after the insertion"),
    Param("best_of", int, 0, 20, endpoints=(COMPLETIONS,), help="completions: server-side candidates"),
    Param("top_logprobs", int, 0, 20, endpoints=(CHAT,), help="chat: log probabilities of the top N tokens"),
    Param("stream_options", dict, help="streaming options such as include_usage"),
]
PARAMS: dict[str, Param] = {p.name: p for p in _PARAMS}


def check_params(endpoint: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """Validate sampling parameters for ``endpoint``; return them without ``None`` values."""
    if endpoint not in ENDPOINTS:
        raise ConfigurationError(f"unknown endpoint {endpoint!r}: use one of {', '.join(ENDPOINTS)}")
    clean: dict[str, Any] = {}
    for name, value in params.items():
        if value is None:
            continue
        if name == "logprobs" and endpoint == CHAT:
            if not isinstance(value, bool):
                raise ConfigurationError(f"chat logprobs must be true or false, got {value!r}")
            clean[name] = value
            continue
        spec = PARAMS.get(name)
        if spec is None:
            raise ConfigurationError(f"unknown parameter {name!r} (pass extra_body={{...}} for server-specific fields)")
        if endpoint not in spec.endpoints:
            raise ConfigurationError(f"{name} is not a parameter of the {endpoint} endpoint")
        spec.check(value)
        clean[name] = value
    stop = clean.get("stop")
    if isinstance(stop, list):
        if not 1 <= len(stop) <= 4 or not all(isinstance(s, str) and s for s in stop):
            raise ConfigurationError(f"stop takes 1 to 4 non-empty strings, got {len(stop)}")
    elif stop == "":
        raise ConfigurationError("stop must not be empty")
    bias = clean.get("logit_bias") or {}
    for token, weight in bias.items():
        if not isinstance(weight, int) or isinstance(weight, bool) or not -100 <= weight <= 100:
            raise ConfigurationError(f"logit_bias[{token!r}] must be a whole number between -100 and 100, got {weight!r}")
    return clean
