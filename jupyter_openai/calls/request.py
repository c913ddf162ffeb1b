"""What to ask: user options plus defaults become one validated :class:`CallRequest`.

The single place where a call is decided, for the magic and the form alike: which model,
which endpoint (``auto`` resolved once, by :func:`choose_endpoint`), which system message,
and which sampling parameters (checked once, against :mod:`jupyter_openai.api.params`). Front
ends hand :func:`build_request` what the user set (``None`` = not set) and their defaults
(the magic's traits); mistakes raise :class:`~jupyter_openai.errors.ConfigurationError`
before anything is sent. No IPython here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..api.params import AUTO, CHAT, COMPLETIONS, DEFAULTS, ENDPOINT_CHOICES, PARAMS, RESPONSES, check_params
from ..api.responses import keeping_reasoning
from ..errors import ConfigurationError

#: The small GPT-5.4 model: what OpenAI serves today (GUIDE 10). :data:`DEFAULTS`, what a call uses for anything
#: neither the user nor the configuration set, is declared in :mod:`~jupyter_openai.api.params`.
DEFAULT_MODEL = DEFAULTS["model"]
#: The request fields that are not sampling parameters (``history``: earlier messages of a conversation;
#: ``items``: earlier output items carried whole, and ``keep_reasoning``: a later request will carry this
#: one's reasoning items, both for a tool round on the Responses API, GUIDE 15).
REQUEST_FIELDS = ("prompt", "model", "endpoint", "system", "stream", "history", "items", "keep_reasoning")
#: OpenAI's legacy completion models (the SDK lists gpt-3.5-turbo-instruct, davinci-002, babbage-002; older
#: text-… and code-… names). Hugging Face style "-Instruct" names (SmolLM2-135M-Instruct) are chat models.
_LEGACY_MODEL = re.compile(r"^(gpt-3\.5-turbo-instruct|davinci-002|babbage-002|text-|code-|"
                           r"(davinci|babbage|curie|ada)$)", re.I)


def choose_endpoint(model: str, endpoint: str = AUTO) -> str:
    """The endpoint to call. ``auto``: completions for OpenAI's legacy completion models
    (``gpt-3.5-turbo-instruct``, ``davinci-002``, ``babbage-002``, ``text-…``, ``code-…``),
    chat for every other model, ``…-Instruct`` chat models included."""
    if endpoint not in ENDPOINT_CHOICES:
        raise ConfigurationError(f"unknown endpoint {endpoint!r}: use one of {', '.join(ENDPOINT_CHOICES)}")
    if endpoint != AUTO:
        return endpoint
    return COMPLETIONS if _LEGACY_MODEL.search(model or "") else CHAT


@dataclass
class CallRequest:
    """One call: the prompt, the model, the endpoint (``auto`` is resolved on creation), the
    system message, the sampling parameters, and the earlier messages of a conversation
    (``history``: user and assistant messages sent before the prompt, on chat and responses)."""

    prompt: str
    model: str
    endpoint: str = AUTO
    system: str | None = None
    stream: bool = True
    params: dict[str, Any] = field(default_factory=dict)
    schema: dict[str, Any] | None = None  #: the JSON Schema the answer must match (sent in params)
    history: list[dict[str, str]] = field(default_factory=list)
    #: Responses: earlier output items sent back whole after the prompt (reasoning, function calls, their outputs)
    items: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  #: what building the request changed (one line each)

    def __post_init__(self) -> None:
        self.endpoint = choose_endpoint(self.model, self.endpoint)

    @property
    def choices(self) -> int:
        """How many choices the request asks for."""
        return self.params.get("n") or 1

    def messages(self) -> list[dict[str, str]]:
        """The chat messages this request implies."""
        head = [{"role": "system", "content": self.system}] if self.system else []
        return [*head, *self.history, {"role": "user", "content": self.prompt}]

    def input(self) -> str | list[dict[str, str]]:
        """The Responses API's ``input``: the prompt, or with a history the list of message items
        (``type: message``, which llama.cpp's ``llama-server`` needs to read them; the system message
        goes apart, as ``instructions``); then the earlier output items carried whole (``items``)."""
        if not self.history and not self.items:
            return self.prompt
        turns = [*self.history, {"role": "user", "content": self.prompt}]
        return [*({"type": "message", **message} for message in turns), *self.items]

    def messages_sent(self) -> int | None:
        """How many messages the request sends (the system message or instructions counted; None
        on completions, which sends a prompt)."""
        if self.endpoint == COMPLETIONS:
            return None
        return len(self.messages())


def build_request(options: Mapping[str, Any], defaults: Mapping[str, Any] = DEFAULTS) -> CallRequest:
    """The validated request for ``options`` (what the user set; ``None`` or absent = not set)
    over ``defaults`` (the configuration's values for model, endpoint, system, stream and any
    parameter). Raises :class:`ConfigurationError` naming the first mistake."""
    unknown = set(options) - set(REQUEST_FIELDS) - set(PARAMS)
    if unknown:
        raise ConfigurationError(f"unknown option(s): {', '.join(sorted(unknown))}")
    defaults = {**DEFAULTS, **defaults}
    prompt = options.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise ConfigurationError("the prompt is empty")
    model = _given(options, "model", defaults)
    if not isinstance(model, str) or not model.strip():
        raise ConfigurationError("the model is empty: name one (-m MODEL, or the model setting)")
    endpoint = choose_endpoint(model.strip(), _given(options, "endpoint", defaults) or AUTO)
    params = {name: _given(options, name, defaults) for name in PARAMS if name in options or name in defaults}
    params = {name: value for name, value in params.items() if value is not None}
    for name, _value in list(params.items()):
        if endpoint not in PARAMS[name].endpoints and not (name == "logprobs" and endpoint == CHAT):
            if options.get(name) is None:  # a configured default that does not apply here
                del params[name]
                continue
            where = (CHAT, COMPLETIONS) if name == "logprobs" else PARAMS[name].endpoints  # chat: top_logprobs
            hint = " (add -e completions)" if where == (COMPLETIONS,) else ""
            raise ConfigurationError(f"{PARAMS[name].option or name} works with the {' and '.join(where)} "
                                     f"endpoint{'s' if len(where) > 1 else ''} only{hint}")
    if endpoint == CHAT and "logprobs" in params:  # one option, the chat API's two fields
        params.update(logprobs=True, top_logprobs=params["logprobs"])
    system = options.get("system")
    if system is not None and system != "" and endpoint == COMPLETIONS:
        raise ConfigurationError("--system works with the chat and responses endpoints only")
    if system is None and endpoint != COMPLETIONS:
        system = defaults.get("system")
    stream = bool(_given(options, "stream", defaults))
    schema, notes = params.pop("schema", None), []
    if schema is not None:
        from .schema import request_fields, structured

        shaped = structured(schema)  # checked whole, refs included, before anything is sent
        # the offline model's server takes json_object with a schema (GUIDE 12)
        params.update(request_fields(endpoint, shaped, params, json_object=bool(defaults.get("offline"))))
        schema, notes = shaped.schema, [shaped.note] if shaped.note else []
    check_params(endpoint, params, options=True, stream=stream)
    history = _history(options.get("history"), endpoint)
    items = _items(options.get("items"), endpoint)
    if endpoint == RESPONSES and (items or options.get("keep_reasoning")):
        params = keeping_reasoning(params)  # stateless: the reasoning comes back encrypted, to be carried whole
    return CallRequest(prompt, model.strip(), endpoint, system or None, stream=stream, params=params,
                       schema=schema, history=history, items=items, notes=notes)


def _history(history: Any, endpoint: str) -> list[dict[str, str]]:
    """The earlier messages of a conversation, checked: user and assistant messages with text."""
    if not history:
        return []
    if endpoint == COMPLETIONS:
        raise ConfigurationError("a conversation works with the chat and responses endpoints only "
                                 "(-e chat or -e responses)")
    checked = []
    for i, message in enumerate(history):
        if not isinstance(message, Mapping) or message.get("role") not in ("user", "assistant") \
                or not isinstance(message.get("content"), str):
            raise ConfigurationError(f"history message {i}: needs a role (user or assistant) and text content")
        checked.append({"role": message["role"], "content": message["content"]})
    return checked


def _items(items: Any, endpoint: str) -> list[dict[str, Any]]:
    """Earlier output items to carry whole (Responses only), checked to be typed items."""
    if not items:
        return []
    if endpoint != RESPONSES:
        raise ConfigurationError("earlier output items are carried on the responses endpoint only")
    if not isinstance(items, (list, tuple)) or not all(isinstance(i, Mapping) and isinstance(i.get("type"), str)
                                                       for i in items):
        raise ConfigurationError("items must be a list of typed output items ({'type': 'reasoning', ...})")
    return [dict(item) for item in items]


def _given(options: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> Any:
    value = options.get(name)
    return defaults.get(name) if value is None else value
