"""Pure payload helpers for ``fakeserver``: validation, deterministic text, JSON bodies, SSE events.

Nothing here touches sockets. The text "model" is deterministic: for a prompt ``"a b c"`` the answer is
``"Echo: c b a"`` (the variant word, then the prompt's whitespace words reversed); choice ``i > 0`` of an
``n > 1`` request starts with ``"Echo<i+1>:"`` instead. Tokens are whitespace-separated words.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

CREATED = 1_700_000_000  # fixed timestamp: keeps notebook outputs and snapshots stable
FINGERPRINT = "fp_fake"
OWNED_BY = "fake"
DEFAULT_COMPLETION_MAX_TOKENS = 16  # the real API's default for /v1/completions
DEFAULT_CHAT_MAX_TOKENS = 256  # chat has no real default; the echo answer is short anyway
HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# status -> (type, code, default message) for injected errors in the OpenAI style.
ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (injected fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-te****."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found",
          "The model `fake-chat` does not exist or you do not have access to it."),
    409: ("invalid_request_error", None, "Conflict (injected fault)."),
    422: ("invalid_request_error", None, "Unprocessable entity (injected fault)."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 2s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
CHAT_ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


class ApiError(Exception):
    """An error answer: HTTP status plus the fields of the OpenAI error object."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def dumps(obj: Any) -> str:
    """Compact JSON with raw UTF-8 (like the real API: multi-byte text is not \\u-escaped)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_payload(status: int, reason: str, message: str | None = None, style: str = "openai",
                  err_type: str | None = None, code: str | None = None) -> tuple[bytes, str | None]:
    """The body and Content-Type of an error in one of the styles servers use in the wild."""
    d_type, d_code, d_message = ERROR_DEFAULTS.get(status, ("server_error", None, f"Error {status}."))
    message, err_type = message or d_message, err_type or d_type
    code = code if code is not None else d_code
    if style == "openai":
        obj: Any = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    elif style == "int_code":  # vLLM: the code is the HTTP status as an integer
        obj = {"error": {"message": message, "type": "BadRequestError" if status < 500 else "InternalServerError",
                         "param": None, "code": status}}
    elif style == "flat":  # older vLLM / FastChat
        obj = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}
    elif style == "detail":  # FastAPI (llama-cpp-python)
        obj = {"detail": message}
    elif style == "string":
        obj = message
    elif style == "html":
        return HTML_PAGE.format(status=status, reason=reason).encode(), "text/html"
    elif style == "empty":
        return b"", None
    else:
        raise ValueError(f"unknown body_style {style!r}")
    return dumps(obj).encode(), "application/json"


def mask_key(key: str) -> str:
    """Show at most the first 5 characters of a key, never the whole of a short one."""
    return key[: min(5, len(key) // 2)] + "****"


# ---------------------------------------------------------------- validation

def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check_range(body: dict, name: str, lo: float | None, hi: float | None, integer: bool = False) -> None:
    v = body.get(name)
    if v is None:
        return
    kind = "integer" if integer else "decimal"
    if not _is_number(v) or (integer and not isinstance(v, int)):
        raise ApiError(400, f"Invalid type for '{name}': expected {'an' if integer else 'a'} {kind}, "
                            f"but got {type(v).__name__} instead.", name, "invalid_type")
    if lo is not None and v < lo:
        raise ApiError(400, f"Invalid '{name}': {kind} below minimum value. Expected a value >= {lo}, "
                            f"but got {v} instead.", name, f"{kind}_below_min_value")
    if hi is not None and v > hi:
        raise ApiError(400, f"Invalid '{name}': {kind} above maximum value. Expected a value <= {hi}, "
                            f"but got {v} instead.", name, f"{kind}_above_max_value")


def _check_type(body: dict, name: str, types: tuple[type, ...], label: str) -> None:
    v = body.get(name)
    if v is not None and (not isinstance(v, types) or (bool not in types and isinstance(v, bool))):
        raise ApiError(400, f"Invalid type for '{name}': expected {label}, but got {type(v).__name__} instead.",
                       name, "invalid_type")


def _missing(name: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")


def validate(kind: str, body: Any) -> None:
    """Raise ApiError(400) for the request faults a client could make; ``kind`` is "completions" or "chat"."""
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely means you "
                            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)")
    if not body.get("model"):
        raise ApiError(400, "you must provide a model parameter", "model")
    _check_type(body, "model", (str,), "a string")
    if kind == "completions":
        if "prompt" not in body:
            raise _missing("prompt")
        p = body["prompt"]
        if not (isinstance(p, str) or (isinstance(p, list) and p and all(
                isinstance(x, (str, int, list)) and not isinstance(x, bool) for x in p))):
            raise ApiError(400, "Invalid type for 'prompt': expected a string or an array.", "prompt", "invalid_type")
        _check_range(body, "logprobs", 0, 5, integer=True)
        _check_range(body, "best_of", 0, 20, integer=True)
        for name in ("echo",):
            _check_type(body, name, (bool,), "a boolean")
        _check_type(body, "suffix", (str,), "a string")
    else:
        msgs = body.get("messages")
        if msgs is None:
            raise _missing("messages")
        if not isinstance(msgs, list) or not msgs:
            raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, "
                                "but got an empty array instead.", "messages", "empty_array")
        for i, m in enumerate(msgs):
            if not isinstance(m, dict):
                raise ApiError(400, f"Invalid type for 'messages[{i}]': expected an object.",
                               f"messages[{i}]", "invalid_type")
            if "role" not in m:
                raise _missing(f"messages[{i}].role")
            if m["role"] not in CHAT_ROLES:
                raise ApiError(400, f"Invalid value: '{m['role']}'. Supported values are: "
                                    f"{', '.join(sorted(CHAT_ROLES))}.", f"messages[{i}].role", "invalid_value")
        _check_type(body, "logprobs", (bool,), "a boolean")
        _check_range(body, "top_logprobs", 0, 20, integer=True)
        _check_range(body, "max_completion_tokens", 0, None, integer=True)
    _check_range(body, "temperature", 0, 2)
    _check_range(body, "top_p", 0, 1)
    _check_range(body, "n", 1, 128, integer=True)
    _check_range(body, "max_tokens", 0, None, integer=True)
    _check_range(body, "presence_penalty", -2, 2)
    _check_range(body, "frequency_penalty", -2, 2)
    _check_range(body, "seed", None, None, integer=True)
    _check_type(body, "stream", (bool,), "a boolean")
    _check_type(body, "user", (str,), "a string")
    _check_type(body, "logit_bias", (dict,), "an object")
    stop = body.get("stop")
    if stop is not None:
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
    so = body.get("stream_options")
    if so is not None:
        if not body.get("stream"):
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           "stream_options")
        _check_type(body, "stream_options", (dict,), "an object")


# ---------------------------------------------------------------- the deterministic "model"

@dataclass
class Choice:
    pieces: list[str]  # the streamed deltas; "".join(pieces) is the whole text
    finish_reason: str
    tokens: int  # completion tokens (words the "model" generated; excludes echo and suffix)

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

    @property
    def completion_tokens(self) -> int:
        return sum(c.tokens for c in self.choices)

    def usage(self) -> dict[str, int]:
        p, c = self.prompt_tokens, self.completion_tokens
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def split_pieces(text: str) -> list[str]:
    """Split into word pieces that keep their leading whitespace: "a b" -> ["a", " b"]."""
    pieces = re.findall(r"\s*\S+", text)
    rest = text[sum(map(len, pieces)):]
    return pieces + [rest] if rest else pieces


def _content_text(content: Any) -> str:
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
    text = " ".join(words[:max_tokens])
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


def plan(kind: str, body: dict, fault: dict, stream: bool) -> Plan:
    """Decide the answer to a validated request, honouring the text-shaping fault keys."""
    n = 1 if fault.get("ignore_n") else body.get("n") or 1  # ignore_n: as llama.cpp, one choice whatever n says
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    chunks = fault.get("chunks") or body.get("fake_chunks") or (fault.get("huge") if stream else None)
    if kind == "completions":
        prompts = _prompts(body["prompt"])
        prompt_tokens = sum(len(p.split()) for p in prompts)
        limit = body.get("max_tokens")
        limit = DEFAULT_COMPLETION_MAX_TOKENS if limit is None else limit
    else:
        msgs = body["messages"]
        users = [m for m in msgs if m.get("role") == "user"] or msgs
        prompts = [_content_text(users[-1].get("content"))]
        prompt_tokens = sum(len(_content_text(m.get("content")).split()) for m in msgs)
        limit = next((body[k] for k in ("max_completion_tokens", "max_tokens") if body.get(k) is not None),
                     DEFAULT_CHAT_MAX_TOKENS)
    result = Plan(kind, body["model"], prompt_tokens)
    for prompt in prompts:
        for i in range(n):
            if chunks:
                choice = Choice(numbered_pieces(int(chunks)), "stop", int(chunks))
            elif fault.get("words") is not None:
                words = [str(w) for w in fault["words"]]
                choice = Choice(words, "stop", sum(len(w.split()) for w in words))
            elif fault.get("huge"):
                text = huge_text(int(fault["huge"]))
                choice = Choice([text], "length", len(text.split()))
            else:
                choice = generate(prompt, i, limit, stop)
            if kind == "completions" and body.get("echo"):
                choice.pieces.insert(0, prompt)
            if kind == "completions" and body.get("suffix"):
                choice.pieces.append(body["suffix"])
            result.choices.append(choice)
    return result


# ---------------------------------------------------------------- response bodies

def model_object(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": CREATED, "owned_by": OWNED_BY}


def response_body(p: Plan, response_id: str) -> dict[str, Any]:
    """The non-streamed CreateCompletionResponse / CreateChatCompletionResponse."""
    if p.kind == "completions":
        choices = [{"text": c.text, "index": i, "logprobs": None, "finish_reason": c.finish_reason}
                   for i, c in enumerate(p.choices)]
        obj = "text_completion"
    else:
        choices = [{"index": i, "message": {"role": "assistant", "content": c.text, "refusal": None},
                    "logprobs": None, "finish_reason": c.finish_reason} for i, c in enumerate(p.choices)]
        obj = "chat.completion"
    return {"id": response_id, "object": obj, "created": CREATED, "model": p.model, "choices": choices,
            "usage": p.usage(), "system_fingerprint": FINGERPRINT}


_MARK = "\x00fake-mark\x00"


def stream_events(p: Plan, response_id: str, include_usage: bool, azure_first: bool,
                  done: bool) -> list[str]:
    """The SSE data payloads of a streamed answer, in order (``[DONE]`` included when ``done``).

    Content chunks are built from a pre-serialized template (prefix + JSON string + suffix), so that
    tens of thousands of chunks take milliseconds.
    """
    chat = p.kind == "chat"
    head: dict[str, Any] = {"id": response_id, "object": "chat.completion.chunk" if chat else "text_completion",
                            "created": CREATED, "model": p.model, "system_fingerprint": FINGERPRINT}
    if include_usage and chat:  # chat chunks say "usage": null until the last (not allowed by completions' schema)
        head["usage"] = None

    def chunk(choices: list[dict]) -> str:
        return dumps({**head, "choices": choices})

    def choice(i: int, content: Any, finish: str | None = None) -> dict[str, Any]:
        if chat:
            delta = {} if content is None else content if isinstance(content, dict) else {"content": content}
            return {"index": i, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {"text": "" if content is None else content, "index": i, "logprobs": None, "finish_reason": finish}

    events: list[str] = []
    if azure_first:  # Azure OpenAI's content-filter preamble
        events.append(dumps({"choices": [], "created": 0, "id": "", "model": "", "object": "",
                             "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}]}))
    if chat:
        events += [chunk([choice(i, {"role": "assistant", "content": ""})]) for i in range(len(p.choices))]
    templates = [chunk([choice(i, _MARK)]).split(dumps(_MARK)) for i in range(len(p.choices))]
    longest = max((len(c.pieces) for c in p.choices), default=0)
    for k in range(longest):  # interleave the choices position by position, like the real API
        for i, c in enumerate(p.choices):
            if k < len(c.pieces):
                pre, post = templates[i]
                events.append(pre + dumps(c.pieces[k]) + post)
    events += [chunk([choice(i, None, c.finish_reason)]) for i, c in enumerate(p.choices)]
    if include_usage:
        events.append(dumps({**head, "choices": [], "usage": p.usage()}))
    if done:
        events.append("[DONE]")
    return events
