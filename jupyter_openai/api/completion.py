"""Finished answers as light objects, and the pieces a stream yields.

:class:`Completion` wraps a non-streamed answer of any endpoint (completions, chat,
responses) and reads it the same way: ``text`` (the answer), ``reasoning`` (reasoning text an
open server or the Responses API sent apart), ``refusal``, ``usage`` in chat's names (with
``reasoning_tokens`` when reported) and ``finish_reason``. :class:`Delta` is what iterating a
:class:`~jupyter_openai.transport.stream.Stream` yields. No pydantic: plain attributes and dicts.

Servers send well-formed JSON of shapes no API has (``choices`` an object, ``index`` a string,
``usage`` a string, token counts that are text): :func:`shape_problem` names the first such field
of a non-streamed answer (the client then gives the :class:`Completion` an ``error``, the readable
parts kept), and :func:`token_count` keeps only counts that are whole numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import logprobs, responses
from .logprobs import TokenProb

CHAT_KIND = "chat"
COMPLETIONS_KIND = "completions"
RESPONSES_KIND = "responses"
#: Where open servers put reasoning text: llama.cpp, vLLM and DeepSeek ``reasoning_content``, Ollama
#: and some others ``reasoning`` (GUIDE 10).
REASONING_FIELDS = ("reasoning_content", "reasoning")
#: The token counts of a usage in chat's names; anything but a whole number >= 0 reads as not reported.
TOKEN_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens", "reasoning_tokens")
MAX_TOKEN_COUNT = 2**53  # beyond: not a count (and arithmetic with it overflows a float)


def token_count(value: Any) -> int | None:
    """``value`` when it is a token count (an int from 0 to 2**53, not a bool), else None."""
    return value if type(value) is int and 0 <= value <= MAX_TOKEN_COUNT else None


def normal_usage(raw: Any, kind: str) -> dict[str, Any] | None:
    """Usage in chat's names; ``reasoning_tokens`` added from ``completion_tokens_details`` (chat) or
    ``output_tokens_details`` (responses). None when the server sent none. A count that is not a
    whole number (text, a float, a bool, a negative or absurd number) becomes None: not reported."""
    if kind == RESPONSES_KIND:
        usage = responses.usage(raw)
        if usage is None:
            return None
    elif not isinstance(raw, Mapping) or not raw:
        return None
    else:
        usage = dict(raw)
        details = raw.get("completion_tokens_details")
        if isinstance(details, Mapping) and token_count(details.get("reasoning_tokens")) is not None:
            usage["reasoning_tokens"] = details["reasoning_tokens"]
    for name in TOKEN_COUNTS:
        if name in usage:
            usage[name] = token_count(usage[name])
    return usage


def _odd(value: Any, kinds: type | tuple[type, ...]) -> bool:
    """True when ``value`` is set (truthy) but not of ``kinds`` (what the stream reader rejects too)."""
    return bool(value) and (isinstance(value, bool) or not isinstance(value, kinds))


def _kind_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null"}.get(
        type(value), "a number")


def shape_problem(raw: Any, kind: str) -> str | None:
    """The first field of a non-streamed answer in a shape no API sends, as a few words naming types,
    never values (None: it reads as an answer). Falsy values count as absent, as in a stream."""
    if not isinstance(raw, Mapping):
        return f"the answer is {_kind_name(raw)}, not an object"
    for name, kinds in (("id", str), ("model", str), ("created", (int, float)), ("usage", Mapping)):
        if _odd(raw.get(name), kinds):
            return f"{name} is {_kind_name(raw[name])}"
    if kind == RESPONSES_KIND:
        for name, kinds in (("output", list), ("status", str), ("incomplete_details", Mapping)):
            if _odd(raw.get(name), kinds):
                return f"{name} is {_kind_name(raw[name])}"
        return None
    choices = raw.get("choices")
    if not choices:
        return None
    if not isinstance(choices, list):
        return f"choices is {_kind_name(choices)}, not a list"
    for number, choice in enumerate(choices):
        where = f"choices[{number}]"
        if not isinstance(choice, Mapping):
            return f"{where} is {_kind_name(choice)}"
        index = choice.get("index", 0)
        if type(index) is not int or index < 0:
            return f"{where}.index is not a whole number >= 0"
        fields: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if kind == CHAT_KIND:
            message = choice.get("message")
            if _odd(message, Mapping):
                return f"{where}.message is {_kind_name(message)}"
            message = message or {}
            fields.update({f"message.{name}": message.get(name) for name in ("content", "refusal", *REASONING_FIELDS)})
        else:
            fields["text"] = choice.get("text")
        for name, value in fields.items():
            if _odd(value, str):
                return f"{where}.{name} is {_kind_name(value)}"
    return None


def reasoning_of(part: Mapping[str, Any]) -> str:
    """The reasoning text of a chat message or delta ("" when none)."""
    for name in REASONING_FIELDS:
        value = part.get(name)
        if isinstance(value, str) and value:
            return value
    return ""


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _index(choice: Mapping[str, Any]) -> int:
    index = choice.get("index", 0)
    return index if isinstance(index, int) and not isinstance(index, bool) else 0


class Completion:
    """A finished, non-streamed answer from ``/completions``, ``/chat/completions`` or ``/responses``."""

    __slots__ = ("raw", "kind", "request_id", "latency", "sent", "notes", "error")

    def __init__(self, raw: dict[str, Any], kind: str, request_id: str | None = None,
                 latency: float | None = None) -> None:
        self.raw = raw
        self.kind = kind
        self.request_id = request_id
        self.latency = latency
        self.sent: dict[str, Any] = {}  #: the parameters the request that answered carried
        self.notes: list[str] = []  #: what the client changed to get an answer (one line each)
        #: set by the client when the answer has a shape no API sends (see :func:`shape_problem`)
        self.error: Exception | None = None

    def _get(self, name: str, kinds: type | tuple[type, ...] = object) -> Any:
        """A top-level field of the answer, or None when it is not of ``kinds`` (a bool never is)
        or the answer is not an object."""
        value = self.raw.get(name) if isinstance(self.raw, Mapping) else None
        return None if isinstance(value, bool) or not isinstance(value, kinds) else value

    id = property(lambda self: self._get("id", str))
    model = property(lambda self: self._get("model", str))
    created = property(lambda self: self._get("created", (int, float)))

    @property
    def usage(self) -> dict[str, Any] | None:
        return normal_usage(self._get("usage"), self.kind)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """The choices, in index order (a Responses answer is one choice)."""
        if self.kind == RESPONSES_KIND:
            raw = self.raw if isinstance(self.raw, Mapping) else {}
            return [{"index": 0, "text": responses.output_text(raw), "reasoning": responses.reasoning_text(raw),
                     "refusal": responses.refusal_text(raw), "finish_reason": responses.finish_reason(raw)}]
        choices = self._get("choices")
        found = [c for c in choices if isinstance(c, Mapping)] if isinstance(choices, list) else []
        return sorted(found, key=_index)

    def _part(self, choice: Mapping[str, Any]) -> Mapping[str, Any]:
        if self.kind == CHAT_KIND:
            message = choice.get("message")
            return message if isinstance(message, Mapping) else {}
        return choice

    @property
    def texts(self) -> list[str]:
        """The answer text of every choice, in index order."""
        key = "content" if self.kind == CHAT_KIND else "text"
        return [_text(self._part(c).get(key)) for c in self.choices]

    @property
    def text(self) -> str:
        """The first choice's answer ("" when there is none)."""
        texts = self.texts
        return texts[0] if texts else ""

    @property
    def reasoning(self) -> str:
        """The first choice's reasoning text, sent apart from the answer ("" when none)."""
        choices = self.choices
        if not choices:
            return ""
        part = self._part(choices[0])
        return _text(part.get("reasoning")) if self.kind == RESPONSES_KIND else reasoning_of(part)

    @property
    def refusal(self) -> str:
        """The first choice's refusal, when the model refused instead of answering ("" otherwise)."""
        choices = self.choices
        return _text(self._part(choices[0]).get("refusal")) if choices else ""

    @property
    def all_logprobs(self) -> list[list[TokenProb]]:
        """Every choice's tokens with their probabilities (either shape read; [] when not asked for)."""
        if self.kind == RESPONSES_KIND:
            return [[]]
        return logprobs.of_choices(self.choices)

    @property
    def logprobs(self) -> list[TokenProb]:
        """The first choice's tokens with their probabilities ([] when not asked for)."""
        found = self.all_logprobs
        return found[0] if found else []

    @property
    def finish_reasons(self) -> list[str | None]:
        return [c.get("finish_reason") if isinstance(c.get("finish_reason"), str) else None for c in self.choices]

    @property
    def finish_reason(self) -> str | None:
        reasons = self.finish_reasons
        return reasons[0] if reasons else None

    @property
    def status(self) -> str:
        """``ok``, as for a stream that ended normally; ``error`` when the answer has a shape no API
        sends (``error`` says which field; the readable parts are kept)."""
        return "ok" if self.error is None else "error"

    def __repr__(self) -> str:
        return f"Completion(model={self.model!r}, finish_reason={self.finish_reason!r}, text={self.text[:60]!r})"


class Delta(NamedTuple):
    """A piece of a streamed answer: which choice, the new text, its finish reason, new reasoning text,
    and the tokens of the new text with their probabilities (None unless the request asked for them)."""

    index: int
    text: str
    finish_reason: str | None
    reasoning: str = ""
    logprobs: tuple[TokenProb, ...] | None = None


__all__ = ["Completion", "Delta", "normal_usage", "shape_problem", "token_count", "CHAT_KIND", "COMPLETIONS_KIND",
           "RESPONSES_KIND"]
