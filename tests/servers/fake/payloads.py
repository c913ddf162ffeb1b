"""Chat and completions bodies for ``fakeserver``: validation, the deterministic "model", JSON bodies, SSE chunks.

Nothing here touches sockets. The text "model" is deterministic: for a prompt ``"a b c"`` the answer is
``"Echo: c b a"`` (the variant word, then the prompt's whitespace words reversed); choice ``i > 0`` of an
``n > 1`` request starts with ``"Echo<i+1>:"`` instead. Tokens are whitespace-separated words.
Model families (GPT-5, reasoners, refuser) are described in ``fakeserver_models``: a reasoner's
reasoning text comes first and, like GPT-5's hidden reasoning tokens, counts against
``max_completion_tokens`` ("including visible output tokens and reasoning tokens", the chat schema's
description of that field), so a small budget can leave the visible answer empty (``finish_reason: length``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from . import models, strict
from .errors import ApiError, check_enum, check_range, check_type, dumps, missing

CREATED = models.CREATED
FINGERPRINT = "fp_fake"
DEFAULT_COMPLETION_MAX_TOKENS = 16  # the real API's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256  # chat has no real default; the echo answer is short anyway
CHAT_ROLES = {"system", "user", "assistant", "tool", "developer", "function"}
NOT_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
            "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")


# ---------------------------------------------------------------- validation

def _validate_messages(body: dict) -> None:
    msgs = body.get("messages")
    if msgs is None:
        raise missing("messages")
    if not isinstance(msgs, list) or not msgs:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                            "but got an empty array instead.", "messages", "empty_array")
    for i, m in enumerate(msgs):
        if not isinstance(m, dict):
            raise ApiError(400, f"Invalid type for 'messages[{i}]': expected an object.",
                           f"messages[{i}]", "invalid_type")
        if "role" not in m:
            raise missing(f"messages[{i}].role")
        if m["role"] not in CHAT_ROLES:
            raise ApiError(400, f"Invalid value: '{m['role']}'. Supported values are: "
                                f"{', '.join(sorted(CHAT_ROLES))}.", f"messages[{i}].role", "invalid_value")


def _validate_stop(stop: Any) -> None:
    if isinstance(stop, list):
        if len(stop) > 4:
            raise ApiError(400, "Invalid 'stop': array too long. Expected an array with maximum length 4, "
                                f"but got an array with length {len(stop)} instead.", "stop",
                           "array_above_max_length")
        if not all(isinstance(s, str) for s in stop):
            raise ApiError(400, "Invalid type for 'stop': expected an array of strings.", "stop", "invalid_type")
    elif not isinstance(stop, str):
        raise ApiError(400, "Invalid type for 'stop': expected a string or an array of strings.", "stop",
                       "invalid_type")


def validate(kind: str, body: Any) -> None:
    """Raise ApiError(400) for the request faults a client could make; ``kind`` is "completions" or "chat"."""
    if not isinstance(body, dict):
        raise ApiError(400, NOT_JSON)
    if not body.get("model"):
        raise ApiError(400, "you must provide a model parameter", "model")
    check_type(body, "model", (str,), "a string")
    if kind == "completions":
        if "prompt" not in body:
            raise missing("prompt")
        p = body["prompt"]
        if not (isinstance(p, str) or (isinstance(p, list) and p and all(
                isinstance(x, (str, int, list)) and not isinstance(x, bool) for x in p))):
            raise ApiError(400, "Invalid type for 'prompt': expected a string or an array.", "prompt", "invalid_type")
        check_range(body, "logprobs", 0, 5, integer=True)
        check_range(body, "best_of", 0, 20, integer=True)
        check_type(body, "echo", (bool,), "a boolean")
        check_type(body, "suffix", (str,), "a string")
    else:
        _validate_messages(body)
        check_type(body, "logprobs", (bool,), "a boolean")
        check_range(body, "top_logprobs", 0, 20, integer=True)
        check_range(body, "max_completion_tokens", 0, None, integer=True)
        check_type(body, "reasoning_effort", (str,), "a string")
        check_type(body, "verbosity", (str,), "a string")
        check_enum(body, "verbosity", models.VERBOSITY)  # the chat schema's Verbosity enum
    check_range(body, "temperature", 0, 2)
    check_range(body, "top_p", 0, 1)
    check_range(body, "n", 1, 128, integer=True)
    check_range(body, "max_tokens", 0, None, integer=True)
    check_range(body, "presence_penalty", -2, 2)
    check_range(body, "frequency_penalty", -2, 2)
    check_range(body, "seed", None, None, integer=True)
    check_type(body, "stream", (bool,), "a boolean")
    check_type(body, "user", (str,), "a string")
    check_type(body, "logit_bias", (dict,), "an object")
    if body.get("stop") is not None:
        _validate_stop(body["stop"])
    so = body.get("stream_options")
    if so is not None:
        if not body.get("stream"):
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           "stream_options")
        check_type(body, "stream_options", (dict,), "an object")
    if kind == "chat":
        fmt = body.get("response_format")
        spec = fmt.get("json_schema") if isinstance(fmt, dict) and fmt.get("type") == "json_schema" else None
        if isinstance(spec, dict) and spec.get("strict") is True:  # the strict subset (fakeserver_strict)
            strict.check(str(spec.get("name")), spec.get("schema"), "response_format", None)
        if models.is_gpt5(body["model"]):
            models.check_gpt5_chat(body)  # GUIDE §10
        else:
            check_enum(body, "reasoning_effort", models.ALL_EFFORTS)  # the chat schema's ReasoningEffort enum


# ---------------------------------------------------------------- the deterministic "model"

@dataclass
class Choice:
    pieces: list[str]  # the streamed deltas; "".join(pieces) is the whole text (or refusal)
    finish_reason: str
    tokens: int  # visible completion tokens (words the "model" generated; excludes echo and suffix)
    reasoning: list[str] = field(default_factory=list)  # visible reasoning pieces (reasoner models)
    reasoning_tokens: int = 0  # all reasoning tokens, visible or hidden (GPT-5)
    refusal: bool = False  # the pieces are a refusal, not content

    @property
    def text(self) -> str:
        return "".join(self.pieces)


@dataclass
class Plan:
    """Everything a response needs, streamed or not."""
    kind: str  # "completions" | "chat"
    model: str
    prompt_tokens: int
    choices: list[Choice] = field(default_factory=list)
    reasoning_field: str | None = None  # "reasoning_content" | "reasoning" for reasoner models
    detailed_usage: bool = False  # usage carries completion_tokens_details (GPT-5 and reasoners)
    top_logprobs: int | None = None  # logprobs asked for: how many alternatives per token (None: not asked)
    logprobs_shape: str = "completions"  # "completions" ({tokens, token_logprobs, ...}) or "chat" ({content})

    @property
    def completion_tokens(self) -> int:
        return sum(c.tokens + c.reasoning_tokens for c in self.choices)

    def usage(self) -> dict[str, Any]:
        p, c = self.prompt_tokens, self.completion_tokens
        usage: dict[str, Any] = {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}
        if self.detailed_usage:  # GUIDE §10: usage carries completion_tokens_details.reasoning_tokens
            usage["completion_tokens_details"] = {"reasoning_tokens": sum(ch.reasoning_tokens for ch in self.choices)}
        return usage


def split_pieces(text: str) -> list[str]:
    """Split into word pieces that keep their leading whitespace: "a b" -> ["a", " b"]."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[sum(map(len, pieces)):]
    return pieces + [rest] if rest else pieces


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or the ``text`` of its parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _prompts(prompt: Any) -> list[str]:
    if isinstance(prompt, str):
        return [prompt]
    if all(isinstance(x, int) for x in prompt):  # one prompt as token ids
        return [" ".join(map(str, prompt))]
    return [x if isinstance(x, str) else " ".join(map(str, x)) for x in prompt]


def generate(prompt: str, variant: int, max_tokens: int, stop: list[str]) -> Choice:
    """The answer to ``prompt``: the variant word then the prompt's words reversed, cut by max_tokens/stop."""
    words = ["Echo:" if variant == 0 else f"Echo{variant + 1}:"] + prompt.split()[::-1]
    return cut_words(words, max_tokens, stop)


def cut_words(words: list[str], max_tokens: int, stop: list[str] | tuple[str, ...] = ()) -> Choice:
    """``words`` joined by spaces, cut at ``max_tokens`` words (finish "length") or at a stop string."""
    text = " ".join(words[:max(max_tokens, 0)])
    finish = "length" if len(words) > max_tokens else "stop"
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    return Choice(split_pieces(text), finish, len(text.split()))


def numbered_pieces(count: int) -> list[str]:
    """``count`` cheap pieces "w0", " w1", " w2", ... for big streams."""
    return ["w0"] + [f" w{i}" for i in range(1, count)] if count > 0 else []


def huge_text(size: int) -> str:
    """About ``size`` bytes of ASCII words."""
    unit = "lorem ipsum dolor sit amet consectetur adipiscing elit "
    return (unit * (size // len(unit) + 1))[:size]


def _reasoning(model: str, prompt: str, limit: int, effort: str | None) -> tuple[list[str], int]:
    """(visible reasoning pieces, reasoning tokens) for ``model``, within a budget of ``limit`` tokens."""
    if models.reasoning_field(model):
        words = models.reasoning_text(prompt).split()[:max(limit, 0)]
        return split_pieces(" ".join(words)), len(words)
    if models.is_gpt5(model):
        return [], min(models.gpt5_reasoning_tokens(effort), max(limit, 0))
    return [], 0


def wants_json(body: dict) -> bool:
    """True when the request asks for answers in a JSON Schema (chat ``response_format``, responses
    ``text.format``)."""
    chat_format = body.get("response_format") if isinstance(body.get("response_format"), dict) else {}
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    text_format = text.get("format") if isinstance(text.get("format"), dict) else {}
    return "json_schema" in (chat_format.get("type"), text_format.get("type"))


def is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def answer(kind: str, body: dict, fault: dict, stream: bool, prompt: str, i: int, limit: int,
           stop: list[str]) -> Choice:
    """One choice's visible answer: fault-shaped (chunks, words, huge), a refusal, or the echo text."""
    chunks = fault.get("chunks") or body.get("fake_chunks") or (fault.get("huge") if stream else None)
    if chunks:
        return Choice(numbered_pieces(int(chunks)), "stop", int(chunks))
    if fault.get("words") is not None:
        words = [str(w) for w in fault["words"]]
        return Choice(words, "stop", sum(len(w.split()) for w in words))
    if fault.get("huge"):
        text = huge_text(int(fault["huge"]))
        return Choice([text], "length", len(text.split()))
    if wants_json(body) and is_json(prompt):  # structured output: a prompt that is JSON is the answer
        return Choice([prompt], "stop", len(prompt.split()))
    if kind != "completions" and models.is_refuser(body["model"]):
        choice = cut_words(models.REFUSAL_TEXT.split(), limit)
        choice.refusal = True
        return choice
    return generate(prompt, i, limit, stop)


def plan(kind: str, body: dict, fault: dict, stream: bool) -> Plan:
    """Decide the answer to a validated request, honouring the text-shaping fault keys."""
    n = 1 if fault.get("ignore_n") else body.get("n") or 1  # ignore_n: as llama.cpp, one choice whatever n says
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    model = body["model"]
    if kind == "completions":
        prompts = _prompts(body["prompt"])
        prompt_tokens = sum(len(p.split()) for p in prompts)
        limit = body.get("max_tokens")
        limit = DEFAULT_COMPLETION_MAX_TOKENS if limit is None else limit
    else:
        msgs = body["messages"]
        users = [m for m in msgs if m.get("role") == "user"] or msgs
        prompts = [content_text(users[-1].get("content"))]
        prompt_tokens = sum(len(content_text(m.get("content")).split()) for m in msgs)
        limit = next((body[k] for k in ("max_completion_tokens", "max_tokens") if body.get(k) is not None),
                     DEFAULT_CHAT_MAX_TOKENS)
    chat = kind == "chat"
    result = Plan(kind, model, prompt_tokens, reasoning_field=models.reasoning_field(model) if chat else None,
                  detailed_usage=chat and (models.is_gpt5(model) or models.reasoning_field(model) is not None))
    if kind == "completions" and body.get("logprobs") is not None:
        result.top_logprobs = body["logprobs"]
    elif chat and body.get("logprobs"):
        result.top_logprobs = body.get("top_logprobs") or 0
    result.logprobs_shape = "chat" if chat else "completions"
    for prompt in prompts:
        for i in range(n):
            reasoning, reasoning_tokens = _reasoning(model, prompt, limit, body.get("reasoning_effort")) \
                if chat else ([], 0)
            choice = answer(kind, body, fault, stream, prompt, i, limit - reasoning_tokens, stop)
            choice.reasoning, choice.reasoning_tokens = reasoning, reasoning_tokens
            if not chat and body.get("echo"):
                choice.pieces.insert(0, prompt)
            if not chat and body.get("suffix"):
                choice.pieces.append(body["suffix"])
            result.choices.append(choice)
    return result


# ---------------------------------------------------------------- token probabilities

TOKEN_PROBS = (0.9, 0.7, 0.5, 0.3)  # the chosen token's probability, by position (cycling)
ALT_SHARES = (0.6, 0.25, 0.1, 0.04, 0.01)  # how the rest of the mass goes to the alternatives


def token_alternatives(piece: str, position: int, top: int) -> tuple[float, list[tuple[str, float]]]:
    """The deterministic logprob of ``piece`` at ``position`` and its top ``top`` alternatives
    (the piece itself and " alt1", " alt2"...), most likely first."""
    import math

    prob = TOKEN_PROBS[position % len(TOKEN_PROBS)]
    space = " " if piece[:1].isspace() else ""
    pairs = [(piece, prob)] + [(f"{space}alt{j + 1}", (1 - prob) * share) for j, share in enumerate(ALT_SHARES)]
    pairs.sort(key=lambda pair: -pair[1])
    return math.log(prob), [(token, math.log(p)) for token, p in pairs[:top]]


def logprobs_field(p: Plan, pieces: list[str], start: int = 0) -> dict[str, Any] | None:
    """A choice's ``logprobs`` for ``pieces`` (one token each) in the plan's shape; None when not asked."""
    if p.top_logprobs is None:
        return None
    rows = [(piece, *token_alternatives(piece, start + k, p.top_logprobs)) for k, piece in enumerate(pieces)]
    if p.logprobs_shape == "chat":
        return {"content": [{"token": piece, "logprob": lp, "bytes": list(piece.encode()),
                             "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in top]}
                            for piece, lp, top in rows], "refusal": None}
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return {"tokens": [piece for piece, _, _ in rows], "token_logprobs": [lp for _, lp, _ in rows],
            "top_logprobs": [dict(top) for _, _, top in rows], "text_offset": offsets}


# ---------------------------------------------------------------- response bodies

def _message(p: Plan, c: Choice) -> dict[str, Any]:
    if c.refusal:  # the chat schema: a refusal comes with content null
        return {"role": "assistant", "content": None, "refusal": c.text}
    message: dict[str, Any] = {"role": "assistant", "content": c.text}
    if p.reasoning_field:  # GUIDE §10: message.reasoning_content (DeepSeek, llama.cpp, vLLM) or .reasoning
        message[p.reasoning_field] = "".join(c.reasoning)
    message["refusal"] = None
    return message


def response_body(p: Plan, response_id: str) -> dict[str, Any]:
    """The non-streamed CreateCompletionResponse / CreateChatCompletionResponse."""
    if p.kind == "completions":
        choices = [{"text": c.text, "index": i, "logprobs": logprobs_field(p, c.pieces),
                    "finish_reason": c.finish_reason} for i, c in enumerate(p.choices)]
        obj = "text_completion"
    else:
        choices = [{"index": i, "message": _message(p, c), "logprobs": None if c.refusal else
                    logprobs_field(p, c.pieces), "finish_reason": c.finish_reason} for i, c in enumerate(p.choices)]
        obj = "chat.completion"
    return {"id": response_id, "object": obj, "created": CREATED, "model": p.model, "choices": choices,
            "usage": p.usage(), "system_fingerprint": FINGERPRINT}


_MARK = "\x00fake-mark\x00"


def _delta(p: Plan, what: str, value: Any) -> dict[str, Any]:
    """The chat delta carrying one piece: ``what`` is "content", "refusal" or "reasoning"."""
    if what != "reasoning":
        return {what: value}
    if p.reasoning_field == "reasoning":  # Ollama's openai/openai.go ToChunk: role and content in every delta
        return {"role": "assistant", "content": "", "reasoning": value}
    return {"reasoning_content": value}


def stream_events(p: Plan, response_id: str, include_usage: bool, azure_first: bool,
                  done: bool) -> list[str]:
    """The SSE data payloads of a streamed answer, in order (``[DONE]`` included when ``done``).

    Chunks are built from pre-serialized templates (prefix + JSON string + suffix), so that tens of
    thousands of chunks take milliseconds. A reasoner's reasoning chunks come before its content chunks.
    """
    chat = p.kind == "chat"
    head: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": CREATED, "model": p.model, "system_fingerprint": FINGERPRINT}
    if include_usage and chat:  # chat chunks say "usage": null until the last (not allowed by completions' schema)
        head["usage"] = None

    def chunk(choices: list[dict]) -> str:
        return dumps({**head, "choices": choices})

    def choice(i: int, delta: Any, finish: str | None = None) -> dict[str, Any]:
        if chat:
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"text": "" if delta is None else delta, "index": i, "logprobs": None, "finish_reason": finish}

    def template(i: int, what: str) -> list[str]:
        return chunk([choice(i, _delta(p, what, _MARK) if chat else _MARK)]).split(dumps(_MARK))

    events: list[str] = []
    if azure_first:  # Azure OpenAI's content-filter preamble
        events.append(dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}))
    if chat:
        events += [chunk([choice(i, {"role": "assistant", "content": None, "refusal": ""} if c.refusal
                                 else {"role": "assistant", "content": ""})]) for i, c in enumerate(p.choices)]
    # per choice: the (template, piece) sequence it streams
    sequences = [[(template(i, "reasoning"), r) for r in c.reasoning] if c.reasoning else [] for i, c in
                 enumerate(p.choices)]
    for i, c in enumerate(p.choices):
        what = "refusal" if c.refusal else "content"
        if p.top_logprobs is not None and not c.refusal:  # each chunk carries its token's logprobs: no template
            sequences[i] += [((chunk([{**choice(i, _delta(p, what, piece) if chat else piece),
                                       "logprobs": logprobs_field(p, [piece], k)}]), ""), None)
                             for k, piece in enumerate(c.pieces)]
            continue
        tpl = template(i, what)
        sequences[i] += [(tpl, piece) for piece in c.pieces]
    longest = max(map(len, sequences), default=0)
    for k in range(longest):  # interleave the choices position by position, like the real API
        for seq in sequences:
            if k < len(seq):
                (pre, post), piece = seq[k]
                events.append(pre if piece is None else pre + dumps(piece) + post)
    events += [chunk([choice(i, {} if chat else None, c.finish_reason)]) for i, c in enumerate(p.choices)]
    if include_usage:
        events.append(dumps({**head, "choices": [], "usage": p.usage()}))
    if done:
        events.append("[DONE]")
    return events
