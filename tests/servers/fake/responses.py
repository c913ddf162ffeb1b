"""The Responses API for ``fakeserver`` (GUIDE §11; schemas ``CreateResponse``, ``Response``,
``ResponseStreamEvent`` in reference/openai-openapi-responses-batch.json): validation, the answer, the
``Response`` object and the typed stream events.

The answer is the chat answer (``"Echo: "`` + the last user message's words reversed; ``input`` may be a
string). Output items: for ``gpt-5*`` with reasoning effort other than ``none`` a ``reasoning`` item
(its ``summary`` holds text only when ``reasoning.summary`` is set), for ``fake-reasoner*`` a
``reasoning`` item with ``reasoning_text`` content; then the ``message`` item (``output_text``, or a
``refusal`` part for ``fake-refuser*``). ``max_output_tokens`` (minimum 16, per the schema) counts
reasoning and visible tokens; when the answer does not fit, ``status`` is ``incomplete`` with
``incomplete_details.reason = "max_output_tokens"``. ``previous_response_id`` is echoed, not acted on;
``text.format`` is echoed, the text is not reshaped. ``store`` is echoed, true when absent (CreateResponse:
"default: true"; GUIDE §18), and the server notes the ids of the responses it would keep
(``FakeOpenAIServer.stored``): with ``include: ["reasoning.encrypted_content"]`` a reasoning item comes with
``encrypted_content``, and a reasoning item sent back in ``input`` needs it unless its response was stored
(OpenAI answers "Items are not persisted when `store` is set to false", GUIDE §15).

Stream: ``event: NAME`` + ``data: {"type": NAME, "sequence_number": n, ...}`` per event, from
``response.created`` to ``response.completed`` / ``response.incomplete``, and no ``[DONE]``.
Fault keys handled here: ``failed_after`` / ``error_event_after`` (N text deltas, then a
``response.failed`` / ``error`` event, then the body ends), ``error_code`` (their code, default
``server_error``) and ``message``.
"""

from __future__ import annotations

import base64
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from . import models, payloads, strict
from .errors import ApiError, check_enum, check_range, check_type, dumps, missing

INPUT_ROLES = ("user", "assistant", "system", "developer")  # EasyInputMessage.role
FORMATS = ("text", "json_schema", "json_object")  # TextResponseFormatConfiguration
ENCRYPTED = "reasoning.encrypted_content"  # an IncludeEnum value
NOT_PERSISTED = ("Item with id '{}' not found. Items are not persisted when `store` is set to false. Try again with "
                 "`store` set to true, or remove this item from your input.")
DEFAULT_MAX_OUTPUT_TOKENS = 4096
FAILED_MESSAGE = "The model failed to generate a response."  # the ResponseFailedEvent example
ERROR_MESSAGE = "The server had an error while processing your request. Sorry about that!"


# ---------------------------------------------------------------- validation

def _sub(body: dict, name: str) -> dict:
    value = body.get(name)
    if value is not None and not isinstance(value, dict):
        raise ApiError(400, f"Invalid type for '{name}': expected an object, but got {type(value).__name__} "
                            "instead.", name, "invalid_type")
    return value or {}


def _validate_input(value: Any, stored: Collection[str]) -> None:
    if isinstance(value, str):
        return
    if not isinstance(value, list):
        raise ApiError(400, "Invalid type for 'input': expected a string or an array of input items, but got "
                            f"{type(value).__name__} instead.", "input", "invalid_type")
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise ApiError(400, f"Invalid type for 'input[{i}]': expected an object.", f"input[{i}]",
                           "invalid_type")
        if item.get("type") in ("reasoning", "item_reference") and not item.get("encrypted_content") and \
                "resp_" + str(item.get("id"))[3:] not in stored:  # rs_X came with resp_X: kept only if stored
            raise ApiError(404, NOT_PERSISTED.format(item.get("id")), "input")
        if item.get("type", "message") != "message":
            continue  # other items (function_call_output, reasoning, ...) carry no prompt text here
        if "role" not in item:
            raise missing(f"input[{i}].role")
        check_enum(item, "role", INPUT_ROLES, f"input[{i}].role")
        if "content" not in item:
            raise missing(f"input[{i}].content")


def validate(body: Any, stored: Collection[str] = ()) -> None:
    """Raise ApiError(400) for a bad ``POST /v1/responses`` body (CreateResponse); ``stored``: the ids of the
    responses this server keeps (a reasoning item of any other must come back with its encrypted content)."""
    if not isinstance(body, dict):
        raise ApiError(400, payloads.NOT_JSON)
    if not body.get("model"):
        raise missing("model")
    check_type(body, "model", (str,), "a string")
    if "input" not in body:
        raise missing("input")
    _validate_input(body["input"], stored)
    include = body.get("include")
    if include is not None and not (isinstance(include, list) and all(isinstance(i, str) for i in include)):
        raise ApiError(400, "Invalid type for 'include': expected an array of strings.", "include", "invalid_type")
    check_type(body, "instructions", (str,), "a string")
    check_range(body, "max_output_tokens", 16, None, integer=True)  # CreateResponse: "minimum": 16
    check_range(body, "temperature", 0, 2)
    check_range(body, "top_p", 0, 1)
    for name in ("stream", "store"):
        check_type(body, name, (bool,), "a boolean")
    check_type(body, "previous_response_id", (str,), "a string")
    reasoning, text = _sub(body, "reasoning"), _sub(body, "text")
    check_enum(reasoning, "summary", models.SUMMARIES, "reasoning.summary")
    check_enum(text, "verbosity", models.VERBOSITY, "text.verbosity")
    fmt = _sub(text, "format")
    if fmt:
        check_enum(fmt, "type", FORMATS, "text.format.type")
        if fmt.get("type") == "json_schema":
            for name in ("name", "schema"):
                if name not in fmt:
                    raise missing(f"text.format.{name}")
            if fmt.get("strict") is True:  # the strict subset (fakeserver_strict)
                strict.check(str(fmt["name"]), fmt["schema"], "text.format.schema", "invalid_json_schema")
    if models.is_gpt5(body["model"]):
        models.check_gpt5_responses(body)  # GUIDE §10/§11
    else:
        check_enum(reasoning, "effort", models.ALL_EFFORTS, "reasoning.effort")


# ---------------------------------------------------------------- the answer

@dataclass
class Plan:
    """Everything a Response needs, streamed or not."""
    body: dict
    model: str
    input_tokens: int
    answer: payloads.Choice
    incomplete: bool  # max_output_tokens cut the answer
    reasoning_kind: str | None = None  # "summary" | "hidden" (GPT-5) | "text" (reasoners) | None
    reasoning: list[str] = field(default_factory=list)  # visible reasoning or summary pieces
    reasoning_tokens: int = 0

    @property
    def status(self) -> str:
        return "incomplete" if self.incomplete else "completed"

    def usage(self) -> dict[str, Any]:
        out = self.answer.tokens + self.reasoning_tokens
        return {"input_tokens": self.input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},  # both required by the schema
                "output_tokens": out, "output_tokens_details": {"reasoning_tokens": self.reasoning_tokens},
                "total_tokens": self.input_tokens + out}


def _messages(body: dict) -> list[tuple[str, str]]:
    value = body["input"]
    if isinstance(value, str):
        return [("user", value)]
    return [(m["role"], payloads.content_text(m.get("content"))) for m in value
            if m.get("type", "message") == "message"]


def plan(body: dict, fault: dict, stream: bool) -> Plan:
    """Decide the answer to a validated request, honouring the text-shaping fault keys."""
    model, messages = body["model"], _messages(body)
    users = [text for role, text in messages if role == "user"] or [text for _, text in messages] or [""]
    prompt = users[-1]
    input_tokens = len((body.get("instructions") or "").split()) + sum(len(t.split()) for _, t in messages)
    limit = body.get("max_output_tokens") or DEFAULT_MAX_OUTPUT_TOKENS
    effort = (body.get("reasoning") or {}).get("effort")
    kind, pieces, tokens = None, [], 0
    if models.reasoning_field(model):
        words = models.reasoning_text(prompt).split()
        kind, tokens = "text", min(len(words), limit)
        pieces = payloads.split_pieces(" ".join(words[:tokens]))
    elif models.is_gpt5(model) and models.gpt5_reasoning_tokens(effort):
        tokens = min(models.gpt5_reasoning_tokens(effort), limit)
        if (body.get("reasoning") or {}).get("summary"):
            kind, pieces = "summary", payloads.split_pieces(models.reasoning_text(prompt))
        else:
            kind = "hidden"
    # The reasoning is spent first; when it uses the whole budget the visible answer is empty (and cut).
    answer = payloads.answer("responses", body, fault, stream, prompt, 0, limit - tokens, [])
    incomplete = answer.finish_reason == "length" and not fault.get("huge")  # "huge" is long, not cut
    return Plan(body, model, input_tokens, answer, incomplete, kind, pieces, tokens)


# ---------------------------------------------------------------- the Response object and its items

def _ids(response_id: str) -> tuple[str, str]:
    suffix = response_id.removeprefix("resp_")
    return f"rs_{suffix}", f"msg_{suffix}"


def _part(p: Plan, text: str) -> dict[str, Any]:
    if p.answer.refusal:
        return {"type": "refusal", "refusal": text}
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _reasoning_item(p: Plan, rs_id: str, done: bool) -> dict[str, Any]:
    text = "".join(p.reasoning) if done else ""
    item: dict[str, Any] = {"id": rs_id, "type": "reasoning", "summary": []}
    if p.reasoning_kind == "summary" and done:
        item["summary"] = [{"type": "summary_text", "text": text}]
    if p.reasoning_kind == "text":  # open servers put the reasoning text in content (llama.cpp, vLLM)
        item["content"] = [{"type": "reasoning_text", "text": text}] if done else []
    if done and ENCRYPTED in (p.body.get("include") or ()):
        item["encrypted_content"] = "gAAAA" + base64.b64encode(f"{rs_id}:{text}".encode()).decode()
    return item


def _message_item(p: Plan, msg_id: str, done: bool) -> dict[str, Any]:
    status = ("incomplete" if p.status == "incomplete" else "completed") if done else "in_progress"
    return {"id": msg_id, "type": "message", "status": status, "role": "assistant",
            "content": [_part(p, p.answer.text)] if done else []}


def output_items(p: Plan, response_id: str) -> list[dict[str, Any]]:
    rs_id, msg_id = _ids(response_id)
    items = [_reasoning_item(p, rs_id, True)] if p.reasoning_kind else []
    return items + [_message_item(p, msg_id, True)]


def response_object(p: Plan, response_id: str, status: str | None = None, output: list | None = None,
                    error: dict | None = None) -> dict[str, Any]:
    """A ``Response`` (the whole one by default; ``status``/``output`` for the snapshots in events)."""
    body, status = p.body, status or p.status
    final = status in ("completed", "incomplete")
    reasoning = body.get("reasoning") or {}
    text = body.get("text") or {}
    return {
        "id": response_id, "object": "response", "created_at": models.CREATED, "status": status,
        "background": False, "completed_at": models.CREATED + 1 if status == "completed" else None,
        "error": error, "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": body.get("instructions"), "max_output_tokens": body.get("max_output_tokens"),
        "max_tool_calls": None, "model": p.model,
        "output": output_items(p, response_id) if output is None else output,
        "parallel_tool_calls": True, "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort", models.GPT5_DEFAULT_EFFORT if models.is_gpt5(p.model)
                                              else None), "summary": reasoning.get("summary")},
        "service_tier": "default", "store": body.get("store", True),  # CreateResponse.store: "default: true"
        "temperature": body.get("temperature", 1.0),
        "text": {"format": text.get("format") or {"type": "text"}, "verbosity": text.get("verbosity", "medium")},
        "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": body.get("top_p", 1.0),
        "truncation": "disabled", "usage": p.usage() if final else None, "metadata": {},
    }


# ---------------------------------------------------------------- the stream

class _Events(list):
    """Typed events with consecutive sequence numbers, as ``(name, data)`` pairs."""

    def add(self, name: str, **fields: Any) -> None:
        self.append((name, dumps({"type": name, "sequence_number": len(self), **fields})))


def error_event(sequence_number: int, message: str | None, code: str | None = None) -> tuple[str, str]:
    """The ``error`` event (ResponseErrorEvent) a stream ends with on a server error."""
    return "error", dumps({"type": "error", "code": code or "server_error", "message": message or ERROR_MESSAGE,
                           "param": None, "sequence_number": sequence_number})


def _reasoning_events(ev: _Events, p: Plan, rs_id: str) -> None:
    where = {"item_id": rs_id, "output_index": 0}
    ev.add("response.output_item.added", output_index=0, item=_reasoning_item(p, rs_id, False))
    text = "".join(p.reasoning)
    if p.reasoning_kind == "summary":
        part = {"type": "summary_text", "text": ""}
        ev.add("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
        for piece in p.reasoning:
            ev.add("response.reasoning_summary_text.delta", **where, summary_index=0, delta=piece)
        ev.add("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
        ev.add("response.reasoning_summary_part.done", **where, summary_index=0, part={**part, "text": text})
    elif p.reasoning_kind == "text":
        part = {"type": "reasoning_text", "text": ""}
        ev.add("response.content_part.added", **where, content_index=0, part=part)
        for piece in p.reasoning:
            ev.add("response.reasoning_text.delta", **where, content_index=0, delta=piece)
        ev.add("response.reasoning_text.done", **where, content_index=0, text=text)
        ev.add("response.content_part.done", **where, content_index=0, part={**part, "text": text})
    ev.add("response.output_item.done", output_index=0, item=_reasoning_item(p, rs_id, True))


def stream_events(p: Plan, response_id: str, fault: dict) -> list[tuple[str, str]]:
    """The typed SSE events of a streamed Response, faults ``failed_after``/``error_event_after`` applied."""
    ev = _Events()
    rs_id, msg_id = _ids(response_id)
    ev.add("response.created", response=response_object(p, response_id, "in_progress", []))
    ev.add("response.in_progress", response=response_object(p, response_id, "in_progress", []))
    if p.reasoning_kind:
        _reasoning_events(ev, p, rs_id)
    index = 1 if p.reasoning_kind else 0
    where = {"item_id": msg_id, "output_index": index, "content_index": 0}
    ev.add("response.output_item.added", output_index=index, item=_message_item(p, msg_id, False))
    ev.add("response.content_part.added", **where, part=_part(p, ""))
    failed, errored = fault.get("failed_after"), fault.get("error_event_after")
    stop_at = min((n for n in (failed, errored) if n is not None), default=None)
    if stop_at is not None:  # past the last delta: right after it
        stop_at = min(stop_at, len(p.answer.pieces))
    for k, piece in enumerate(p.answer.pieces + [None]):
        if k == stop_at:
            message, code = fault.get("message"), fault.get("error_code") or "server_error"
            if failed is not None and stop_at == min(failed, len(p.answer.pieces)):
                error = {"code": code, "message": message or FAILED_MESSAGE}
                ev.add("response.failed", response=response_object(p, response_id, "failed", [], error))
            else:
                ev.append(error_event(len(ev), message, code))
            return ev
        if piece is None:
            break
        if p.answer.refusal:
            ev.add("response.refusal.delta", **where, delta=piece)
        else:
            ev.add("response.output_text.delta", **where, delta=piece, logprobs=[])
    text = p.answer.text
    if p.answer.refusal:
        ev.add("response.refusal.done", **where, refusal=text)
    else:
        ev.add("response.output_text.done", **where, text=text, logprobs=[])
    ev.add("response.content_part.done", **where, part=_part(p, text))
    ev.add("response.output_item.done", output_index=index, item=_message_item(p, msg_id, True))
    final = "response.completed" if p.status == "completed" else "response.incomplete"
    ev.add(final, response=response_object(p, response_id))
    return ev
