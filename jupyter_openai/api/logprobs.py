"""Token probabilities: the two shapes servers send read as one list of :class:`TokenProb`.

The completions API sends a choice's ``logprobs`` as parallel lists ``{tokens, token_logprobs,
top_logprobs: [{token: logprob}], text_offset}``; the chat API as ``{content: [{token, logprob,
top_logprobs: [{token, logprob}]}]}``. llama.cpp's llama-server answers a completions request in the
chat shape (llama-cpp-python in the completions one), so :func:`read` takes either whichever endpoint
asked, whole answers and streamed chunks alike (a chunk's ``logprobs`` holds the tokens of that chunk).
Malformed entries are skipped, never raised: probabilities are an extra, the answer is what matters.
Every number is checked and clamped to a log probability, ``LOWEST`` to 0 (a server's 1000 or
``inf`` is probability 1, ``-inf`` a very small number, NaN or a non-number unknown), so nothing
computed from them can overflow.

:func:`reweight` and :func:`nucleus` are the illustrations the probability view uses: what the
alternatives shown would weigh at another temperature, and which of them top_p would keep.
No IPython here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple


class TokenProb(NamedTuple):
    """One generated token, its log probability (None when not sent) and the top alternatives the
    server sent for that position, as ``(token, logprob)`` pairs, most likely first."""

    token: str
    logprob: float | None
    top: tuple[tuple[str, float], ...] = ()

    @property
    def prob(self) -> float | None:
        """The token's probability, 0 to 1 (None when the server sent no log probability)."""
        return probability(self.logprob)


LOWEST = -1e9  #: the smallest log probability kept (-inf, a token of probability 0, becomes this)


def clamp(value: Any) -> float | None:
    """``value`` as a log probability: a number clamped to ``LOWEST`` … 0 (a log probability is never
    above 0); None for anything else (NaN, a bool, a string, a number too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:  # an int beyond a float: no log probability
        return None
    if number != number:
        return None
    return min(max(number, LOWEST), 0.0)


def probability(logprob: Any) -> float | None:
    """The probability, 0 to 1, of a log probability (clamped first; None when it is not a number)."""
    value = clamp(logprob)
    return None if value is None else math.exp(value)



def _pairs(entries: Any) -> tuple[tuple[str, float], ...]:
    """Alternatives in either shape (a list of ``{token, logprob}``, or one ``{token: logprob}``),
    most likely first."""
    found: list[tuple[str, float]] = []
    if isinstance(entries, Mapping):
        items: Iterable[tuple[Any, Any]] = entries.items()
    elif isinstance(entries, list):
        items = ((e.get("token"), e.get("logprob")) for e in entries if isinstance(e, Mapping))
    else:
        return ()
    for token, logprob in items:
        number = clamp(logprob)
        if isinstance(token, str) and number is not None:
            found.append((token, number))
    found.sort(key=lambda pair: -pair[1])
    return tuple(found)


def read(logprobs: Any) -> list[TokenProb]:
    """The tokens of one choice's ``logprobs`` field, in either shape ([] when none or unreadable)."""
    if not isinstance(logprobs, Mapping):
        return []
    content = logprobs.get("content")
    if isinstance(content, list):  # chat shape (and llama.cpp's completions)
        tokens = []
        for entry in content:
            if isinstance(entry, Mapping) and isinstance(entry.get("token"), str):
                logprob, top = clamp(entry.get("logprob")), _pairs(entry.get("top_logprobs"))
                tokens.append(TokenProb(entry["token"], logprob, top))
        return tokens
    names = logprobs.get("tokens")
    if not isinstance(names, list):
        return []
    values = logprobs.get("token_logprobs")
    tops = logprobs.get("top_logprobs")
    values = values if isinstance(values, list) else []
    tops = tops if isinstance(tops, list) else []
    tokens = []
    for i, name in enumerate(names):
        if isinstance(name, str):
            value = clamp(values[i]) if i < len(values) else None
            tokens.append(TokenProb(name, value, _pairs(tops[i]) if i < len(tops) else ()))
    return tokens


def of_choices(choices: Sequence[Mapping[str, Any]]) -> list[list[TokenProb]]:
    """The tokens of every choice of a whole answer (its ``choices`` list), in order."""
    return [read(choice.get("logprobs")) for choice in choices]


def text_of(tokens: Sequence[TokenProb]) -> str:
    """The text the tokens spell."""
    return "".join(t.token for t in tokens)


def reweight(top: Sequence[tuple[str, float]], temperature: float) -> list[tuple[str, float]]:
    """The alternatives' probabilities as sampling at ``temperature`` would weigh them, renormalised
    over the alternatives shown (an illustration: the server sent only these). 0 keeps the likeliest."""
    pairs = [(token, value) for token, logprob in top if (value := clamp(logprob)) is not None]
    if not pairs:
        return []
    if temperature != temperature or temperature <= 0:  # NaN as 0 too
        best = max(range(len(pairs)), key=lambda i: pairs[i][1])
        return [(token, 1.0 if i == best else 0.0) for i, (token, _) in enumerate(pairs)]
    peak = max(value for _, value in pairs)
    weights = [math.exp((value - peak) / temperature) for _, value in pairs]  # <= 1: never overflows
    total = sum(weights)
    return [(token, w / total) for (token, _), w in zip(pairs, weights, strict=True)]


def nucleus(probs: Sequence[tuple[str, float]], top_p: float) -> list[str]:
    """The tokens top_p sampling keeps: the likeliest ones whose probabilities add up to ``top_p``."""
    kept: list[str] = []
    total = 0.0
    for token, prob in sorted(probs, key=lambda pair: -pair[1]):
        if kept and total >= top_p:
            break
        kept.append(token)
        total += prob
    return kept


__all__ = ["LOWEST", "TokenProb", "clamp", "nucleus", "of_choices", "probability", "read", "reweight", "text_of"]
