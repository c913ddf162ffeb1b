"""Parameters a model accepts: learn from a 400 which field it refused, retry once without it.

GPT-5-family models on chat reject ``max_tokens`` (``unsupported_parameter``, "Use
'max_completion_tokens' instead") and any temperature, top_p, penalty or logprobs but the
default (``unsupported_value``); gateways and open servers refuse other fields in their own
words (GUIDE 10). :class:`FieldRules` reads which field an error names, changes the request
body (``max_tokens`` renamed, any other field dropped), remembers the rule for that model for
the session, and words the one-line note the user sees. The client applies remembered rules
before sending, so each refused field costs one extra request once, and none after. OpenAI's
reasoning models are also known by name (:func:`takes_max_completion_tokens`), so on chat their
length limit goes as ``max_completion_tokens`` from the first request, whatever the host.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from ..errors import APIStatusError

#: Fields a call may do without (or send under another name): never the model, prompt or messages.
ADAPTABLE = frozenset({"max_tokens", "max_completion_tokens", "temperature", "top_p", "presence_penalty",
                       "frequency_penalty", "logprobs", "top_logprobs", "n", "seed", "stop", "logit_bias",
                       "reasoning_effort", "verbosity", "reasoning", "text", "max_output_tokens", "best_of", "user"})
RENAMES = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
UNSUPPORTED_CODES = frozenset({"unsupported_parameter", "unsupported_value"})
_QUOTED = re.compile(r"""['"`]([a-z_]+)['"`]""")
#: OpenAI's reasoning models (GPT-5 family, o-series), also behind a gateway's prefix (``openai/gpt-5.4-mini``).
_REASONING_MODEL = re.compile(r"(^|/)(gpt-5|o[1-9])([-.]|$)", re.I)
_WORDS = re.compile(r"\b(unsupported|not supported|unrecognized|unknown|not allowed|does not support|"
                    r"extra inputs are not permitted)\b", re.I)  # not "invalid": a bad value is the user's to fix


def takes_max_completion_tokens(model: str) -> bool:
    """True for models that refuse ``max_tokens`` on chat by name (GPT-5, o1/o3/o4; GUIDE 10): Azure and
    gateways serve them under other hosts, where the host rule does not see them."""
    return bool(_REASONING_MODEL.search(model or ""))


def refused_field(error: APIStatusError, body: dict[str, Any]) -> str | None:
    """The request field a 400 says is unsupported, if it is one this call could do without."""
    if error.status != 400:
        return None
    param = error.param if isinstance(error.param, str) else None  # a hostile server may send any JSON type
    code = error.code if isinstance(error.code, str) else None
    if code in UNSUPPORTED_CODES and param in body and param in ADAPTABLE:
        return param
    message = error.message if isinstance(error.message, str) else ""
    if not _WORDS.search(message):
        return None
    named = [name for name in _QUOTED.findall(message) if name in body and name in ADAPTABLE]
    if param in body and param in ADAPTABLE:
        named.insert(0, param)
    return named[0] if named else None


class FieldRules:
    """Per model, the fields this server refused and what to send instead (thread-safe)."""

    def __init__(self) -> None:
        self._rules: dict[str, dict[str, str | None]] = {}
        self._lock = threading.Lock()

    def apply(self, model: str, body: dict[str, Any]) -> list[str]:
        """Change ``body`` by the rules learnt for ``model``; the notes saying what was changed."""
        with self._lock:
            rules = dict(self._rules.get(model, {}))
        return [note for field, target in rules.items() if (note := _change(model, body, field, target))]

    def learn(self, model: str, error: APIStatusError, body: dict[str, Any]) -> str | None:
        """If ``error`` refuses a field of ``body``: change the body, remember the rule, return the
        note; else None (the error stands)."""
        field = refused_field(error, body)
        if field is None:
            return None
        target = RENAMES.get(field) if error.code != "unsupported_value" else None
        with self._lock:
            rules = self._rules.setdefault(model, {})
            if target is not None and (target in body or target in rules):  # both names refused: send neither
                target = None
            rules[field] = target
        note = _change(model, body, field, target)
        return f"{note} (remembered for this session)" if note else None

    def __repr__(self) -> str:
        return f"FieldRules({self._rules!r})"


def _change(model: str, body: dict[str, Any], field: str, target: str | None) -> str | None:
    if field not in body:
        return None
    value = body.pop(field)
    if target is not None:
        body[target] = value
        return f"Note: {model} takes {target} instead of {field}: sent {target}={value!r}"
    if field == "logprobs":
        body.pop("top_logprobs", None)
    return f"Note: {model} does not accept {field}={value!r}: sent without it"
