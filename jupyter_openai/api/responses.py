"""The Responses API (``POST /responses``): request bodies, answers and stream events.

OpenAI's SDK calls it the primary API (GUIDE 11; schemas ``CreateResponse``, ``Response`` and
``ResponseStreamEvent`` in the reference). Its shapes differ from chat's: the system message
is ``instructions``, the length limit ``max_output_tokens``, reasoning effort and verbosity
are nested (``reasoning.effort``, ``text.verbosity``), the answer is in ``output[*].content[*]``
parts of type ``output_text``, usage counts ``input_tokens``/``output_tokens``, and a stream is
typed events (``event: NAME`` + ``data: {"type": NAME, …}``) that ends at EOF after
``response.completed``, with no ``[DONE]``. This module maps those shapes onto the ones the
rest of the package reads (chat's usage names, ``finish_reason``); no I/O here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: A ``response.incomplete`` reason, as the finish reason chat would give.
_FINISH = {"max_output_tokens": "length", "content_filter": "content_filter"}
TEXT_DELTA = "response.output_text.delta"
REASONING_DELTAS = frozenset({"response.reasoning_text.delta", "response.reasoning_summary_text.delta"})
REFUSAL_DELTA = "response.refusal.delta"
FINAL = frozenset({"response.completed", "response.incomplete"})
FAILED = "response.failed"
ERROR = "error"


#: What a stateless request (``store: false``) asks for so that its reasoning items can go back whole (GUIDE 15).
ENCRYPTED_REASONING = "reasoning.encrypted_content"
#: The output items a later request of the same exchange carries back whole (a tool round, GUIDE 15).
CARRIED_ITEMS = ("reasoning", "function_call", "function_call_output", "message")


def request_fields(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``/responses`` body fields for the package's parameter names: ``max_tokens`` becomes
    ``max_output_tokens``, ``reasoning_effort`` ``reasoning.effort``, ``verbosity``
    ``text.verbosity``; the others pass as they are. ``store`` is ``false`` unless ``params`` asks
    otherwise: the API's default keeps every response on OpenAI's servers (GUIDE 18)."""
    body: dict[str, Any] = {"store": False}
    for name, value in params.items():
        if value is None:
            continue
        if name == "max_tokens":
            body["max_output_tokens"] = value
        elif name == "reasoning_effort":
            body.setdefault("reasoning", {})["effort"] = value
        elif name == "verbosity":
            body.setdefault("text", {})["verbosity"] = value
        elif name in ("text", "reasoning") and isinstance(value, Mapping):  # merged with verbosity/effort
            body[name] = {**value, **body.get(name, {})}
        else:
            body[name] = value
    return body


def keeping_reasoning(params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` for a request whose reasoning items a later request will carry (a tool round, GUIDE 15):
    unless it is stored (``store: true``), it asks for them encrypted (``include:
    ["reasoning.encrypted_content"]``), since an item that is not stored cannot be referred to by id."""
    include = list(params.get("include") or ())
    if params.get("store") is True or ENCRYPTED_REASONING in include:
        return dict(params)
    return {**params, "include": [*include, ENCRYPTED_REASONING]}


def carried_items(response: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The items of a Response's ``output`` that the next request of the same exchange sends back in its
    ``input``, whole (a tool round, GUIDE 15): reasoning items with their ``encrypted_content``, function
    calls and messages. A reasoning item without ``encrypted_content`` is left out: with ``store: false``
    it could only be referred to by its id, which the API refuses ("Items are not persisted when `store`
    is set to false")."""
    output = response.get("output")
    items = []
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, Mapping) or item.get("type") not in CARRIED_ITEMS:
            continue
        if item.get("type") == "reasoning" and not isinstance(item.get("encrypted_content"), str):
            continue
        items.append(dict(item))
    return items


def usage(raw: Any) -> dict[str, Any] | None:
    """A Responses ``usage`` in chat's names (``prompt_tokens``, ``completion_tokens``,
    ``total_tokens``, plus ``reasoning_tokens`` when reported); None when there is none."""
    if not isinstance(raw, Mapping) or not raw:
        return None
    mapped: dict[str, Any] = {"prompt_tokens": raw.get("input_tokens"), "completion_tokens": raw.get("output_tokens"),
                              "total_tokens": raw.get("total_tokens")}
    details = raw.get("output_tokens_details")
    if isinstance(details, Mapping) and isinstance(details.get("reasoning_tokens"), int):
        mapped["reasoning_tokens"] = details["reasoning_tokens"]
    return mapped


def finish_reason(response: Mapping[str, Any]) -> str | None:
    """``stop`` for a completed response, chat's name for an incomplete one's reason."""
    status = response.get("status")
    if status == "completed":
        return "stop"
    if status == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, Mapping) else None
        if not isinstance(reason, str):  # a server's odd value (a list is not even a dict key)
            reason = None
        return _FINISH.get(reason, reason or "incomplete")
    return None


def _parts(response: Mapping[str, Any], item_type: str, part_types: tuple[str, ...]) -> str:
    texts: list[str] = []
    output = response.get("output")
    for item in output if isinstance(output, list) else ():
        if not isinstance(item, Mapping) or item.get("type") != item_type:
            continue
        for key in ("content", "summary"):
            parts = item.get(key)
            for part in parts if isinstance(parts, list) else ():
                if isinstance(part, Mapping) and part.get("type") in part_types and isinstance(part.get("text"), str):
                    texts.append(part["text"])
    return "".join(texts)


def output_text(response: Mapping[str, Any]) -> str:
    """The answer: every ``output_text`` part of every ``message`` item."""
    return _parts(response, "message", ("output_text",))


def reasoning_text(response: Mapping[str, Any]) -> str:
    """The reasoning shown to users: the ``reasoning`` items' text or summary."""
    return _parts(response, "reasoning", ("reasoning_text", "summary_text"))


def refusal_text(response: Mapping[str, Any]) -> str:
    """A refusal, if the model gave one instead of an answer."""
    output = response.get("output")
    texts = [part.get("refusal") for item in (output if isinstance(output, list) else ())
             if isinstance(item, Mapping) and item.get("type") == "message"
             for part in (item.get("content") if isinstance(item.get("content"), list) else ())
             if isinstance(part, Mapping) and part.get("type") == "refusal"]
    return "".join(t for t in texts if isinstance(t, str))


def error_message(obj: Mapping[str, Any]) -> str:
    """The readable message of a ``response.failed`` or ``error`` event."""
    if obj.get("type") == FAILED:
        response = obj.get("response")
        error = response.get("error") if isinstance(response, Mapping) else None
    else:
        error = obj.get("error", obj)
    if isinstance(error, Mapping):
        code, message = error.get("code"), error.get("message")
        text = str(message) if message is not None else "the response failed"
        return f"{text} ({code})" if code else text
    return str(error) if error else "the response failed"
