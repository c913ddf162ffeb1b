"""Finished answers as light objects, and the pieces a stream yields.

:class:`Completion` wraps a non-streamed answer of any endpoint (completions, chat,
responses) and reads it the same way: ``text`` (the answer), ``reasoning`` (reasoning text an
open server or the Responses API sent apart), ``refusal``, ``usage`` in chat's names (with
``reasoning_tokens`` when reported) and ``finish_reason``. :class:`Delta` is what iterating a
:class:`~jupyter_openai.stream.Stream` yields. No pydantic: plain attributes and dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from . import responses

CHAT_KIND = "chat"
COMPLETIONS_KIND = "completions"
RESPONSES_KIND = "responses"
#: Where open servers put reasoning text: llama.cpp, vLLM and DeepSeek ``reasoning_content``, Ollama
#: and some others ``reasoning`` (GUIDE 10).
REASONING_FIELDS = ("reasoning_content", "reasoning")


def normal_usage(raw: Any, kind: str) -> dict[str, Any] | None:
    """Usage in chat's names; ``reasoning_tokens`` added from ``completion_tokens_details`` (chat) or
    ``output_tokens_details`` (responses). None when the server sent none."""
    if kind == RESPONSES_KIND:
        return responses.usage(raw)
    if not isinstance(raw, Mapping) or not raw:
        return None
    usage = dict(raw)
    details = raw.get("completion_tokens_details")
    if isinstance(details, Mapping) and isinstance(details.get("reasoning_tokens"), int):
        usage["reasoning_tokens"] = details["reasoning_tokens"]
    return usage


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

    __slots__ = ("raw", "kind", "request_id", "latency", "sent", "notes")

    def __init__(self, raw: dict[str, Any], kind: str, request_id: str | None = None,
                 latency: float | None = None) -> None:
        self.raw = raw
        self.kind = kind
        self.request_id = request_id
        self.latency = latency
        self.sent: dict[str, Any] = {}  #: the parameters the request that answered carried
        self.notes: list[str] = []  #: what the client changed to get an answer (one line each)

    id = property(lambda self: self.raw.get("id"))
    model = property(lambda self: self.raw.get("model"))
    created = property(lambda self: self.raw.get("created"))

    @property
    def usage(self) -> dict[str, Any] | None:
        return normal_usage(self.raw.get("usage"), self.kind)

    @property
    def choices(self) -> list[dict[str, Any]]:
        """The choices, in index order (a Responses answer is one choice)."""
        if self.kind == RESPONSES_KIND:
            raw = self.raw
            return [{"index": 0, "text": responses.output_text(raw), "reasoning": responses.reasoning_text(raw),
                     "refusal": responses.refusal_text(raw), "finish_reason": responses.finish_reason(raw)}]
        choices = self.raw.get("choices")
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
    def finish_reasons(self) -> list[str | None]:
        return [c.get("finish_reason") if isinstance(c.get("finish_reason"), str) else None for c in self.choices]

    @property
    def finish_reason(self) -> str | None:
        reasons = self.finish_reasons
        return reasons[0] if reasons else None

    @property
    def status(self) -> str:
        """``ok``, as for a stream that ended normally."""
        return "ok"

    def __repr__(self) -> str:
        return f"Completion(model={self.model!r}, finish_reason={self.finish_reason!r}, text={self.text[:60]!r})"


class Delta(NamedTuple):
    """A piece of a streamed answer: which choice, the new text, its finish reason, new reasoning text."""

    index: int
    text: str
    finish_reason: str | None
    reasoning: str = ""


__all__ = ["Completion", "Delta", "normal_usage", "CHAT_KIND", "COMPLETIONS_KIND", "RESPONSES_KIND"]
