"""The request parameters users tune: one declaration for the client, the magic and the form.

Each :class:`Param` names an API field, its type and range (from the official schemas of
``CreateCompletionRequest`` and ``CreateChatCompletionRequest``), the endpoints that take it,
its help text, the magic option that sets it and the form control that shows it. The client
validates with :func:`check_params`; ``%%complete``'s options and the form's controls are
generated from :data:`PARAMS`, so a range or a help text is written down once.

The endpoint names live here too, once for the whole package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from ..errors import ConfigurationError

AUTO = "auto"
COMPLETIONS = "completions"
CHAT = "chat"
RESPONSES = "responses"
ENDPOINTS = (CHAT, COMPLETIONS, RESPONSES)  #: what a request is finally sent to
ENDPOINT_CHOICES = (AUTO, *ENDPOINTS)  #: what a user may ask for
ENDPOINT_PATHS = {CHAT: "/chat/completions", COMPLETIONS: "/completions", RESPONSES: "/responses"}
REASONING_EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh")  # GUIDE 10; "max" is model-specific
VERBOSITIES = ("low", "medium", "high")
#: What a call uses for anything neither the user nor the configuration set; the model is the small GPT-5.4
#: model, what OpenAI serves today (GUIDE 10). Here rather than in calls/request.py, so that the magics'
#: settings (whose defaults these are) load without that module: ``%load_ext`` stays fast.
DEFAULTS: dict[str, Any] = {"model": "gpt-5.4-mini", "endpoint": AUTO, "system": None, "stream": True,
                            "temperature": None, "top_p": None, "max_tokens": 256, "reasoning_effort": None,
                            "verbosity": None, "store": False}

#: Form controls: a slider (``step``; ints get a slider up to ``form_max``), a number box, a
#: text field, a checkbox. ``None``: the parameter has no control in the form.
SLIDER, NUMBER, TEXT, CHECK, CHOICE = "slider", "number", "text", "check", "choice"


class Param(NamedTuple):
    """One request field: its type and range, where it applies, and how users set it."""

    name: str
    kind: type | tuple[type, ...]
    low: float | None = None
    high: float | None = None
    endpoints: tuple[str, ...] = ENDPOINTS
    default: Any = None  #: the server's default, shown by the form when nothing is set
    help: str = ""  #: feeds ``%%complete?`` and the form's tooltips
    flags: tuple[str, ...] = ()  #: the magic's option strings (none: not a magic option)
    control: str | None = None  #: the form's control kind
    step: float | None = None  #: slider step
    form_max: int | None = None  #: upper end of an int slider when the API sets none
    choices: tuple[str, ...] = ()  #: the values a string field may take (none: any)

    def check(self, value: Any, label: str | None = None) -> None:
        """Raise :class:`ConfigurationError` if ``value`` is not allowed (``label``: how the message
        names the parameter, default its API name)."""
        label = label or self.name
        kinds = self.kind if isinstance(self.kind, tuple) else (self.kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            pass
        elif bool not in kinds and isinstance(value, bool) or not isinstance(value, kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise ConfigurationError(f"{label} must be {names}, got {value!r}")
        if isinstance(value, float) and value != value:  # NaN passes every comparison and is not JSON
            raise ConfigurationError(f"{label} must be a number, got {value!r}")
        if self.choices and value not in self.choices:
            raise ConfigurationError(f"{label} must be one of {', '.join(self.choices)}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if self.low is not None and value < self.low or self.high is not None and value > self.high:
                raise ConfigurationError(f"{label} must be {self.range_text()}, got {value}")

    def range_text(self) -> str:
        """``between 0 and 2``, ``at least 1``, or ''."""
        if self.low is not None and self.high is not None:
            return f"between {_fmt(self.low)} and {_fmt(self.high)}"
        if self.low is not None:
            return f"at least {_fmt(self.low)}"
        return ""

    @property
    def label(self) -> str:
        """How a user-facing message names it: ``max_tokens (--max-tokens)``."""
        return f"{self.name} ({self.flags[0]})" if self.flags else self.name

    @property
    def option(self) -> str:
        """The long option string (``--max-tokens``), or the first one."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0] if self.flags else "")


def _fmt(bound: float | None) -> str:
    if bound is None:
        return "∞"
    return str(int(bound)) if float(bound).is_integer() else str(bound)


_CO = (COMPLETIONS,)
_CH = (CHAT,)
_RE = (RESPONSES,)
_SAMPLING = (CHAT, COMPLETIONS)  # what the Responses API does not take
_REASONING = (CHAT, RESPONSES)
_PARAMS = [
    Param("temperature", float, 0, 2, default=1.0, help="Sampling temperature, 0 to 2.",
          flags=("-t", "--temperature"), control=SLIDER, step=0.05),
    Param("max_tokens", int, 1, None, default=16,
          help="Largest number of tokens to generate (>= 1; sent as each endpoint names it).",
          flags=("--max-tokens",), control=SLIDER, form_max=4096),
    Param("top_p", float, 0, 1, default=1.0, help="Nucleus sampling mass, 0 to 1.",
          flags=("--top-p",), control=SLIDER, step=0.01),
    Param("reasoning_effort", str, endpoints=_REASONING, help="Reasoning models: how hard to think "
          f"({', '.join(REASONING_EFFORTS)}).", flags=("--reasoning-effort",), control=CHOICE,
          choices=REASONING_EFFORTS),
    Param("verbosity", str, endpoints=_REASONING, help=f"How long the answer is ({', '.join(VERBOSITIES)}).",
          flags=("--verbosity",), control=CHOICE, choices=VERBOSITIES),
    Param("n", int, 1, 128, endpoints=_SAMPLING, default=1, help="Number of choices to generate (>= 1).",
          flags=("-n",), control=NUMBER),
    Param("stop", (str, list), endpoints=_SAMPLING, help=r"Stop sequence; repeat for up to 4. \n means newline.",
          flags=("--stop",), control=TEXT),
    Param("echo", bool, endpoints=_CO, default=False, help="Completions: include the prompt in the answer.",
          flags=("--echo",), control=CHECK),
    Param("suffix", str, endpoints=_CO, help="Completions: text that follows the insertion.", flags=("--suffix",)),
    Param("presence_penalty", float, -2, 2, endpoints=_SAMPLING, default=0.0, help="Presence penalty, -2 to 2.",
          flags=("--presence-penalty",), control=SLIDER, step=0.1),
    Param("frequency_penalty", float, -2, 2, endpoints=_SAMPLING, default=0.0, help="Frequency penalty, -2 to 2.",
          flags=("--frequency-penalty",), control=SLIDER, step=0.1),
    Param("seed", int, endpoints=_SAMPLING, help="Seed for repeatable sampling (best effort).", flags=("--seed",),
          control=TEXT),
    Param("logprobs", int, 0, 5, endpoints=_CO,
          help="Log probabilities of the top N tokens (completions 0-5; chat: top_logprobs).", flags=("--logprobs",)),
    Param("max_completion_tokens", int, 1, None, endpoints=_CH, help="Chat: newer name of max_tokens."),
    Param("user", str, help="End-user id for abuse monitoring."),
    Param("logit_bias", dict, endpoints=_SAMPLING, help="Token id -> bias, -100 to 100."),
    Param("best_of", int, 0, 20, endpoints=_CO, help="Completions: server-side candidates."),
    Param("top_logprobs", int, 0, 20, endpoints=_CH, help="Chat: log probabilities of the top N tokens."),
    Param("stream_options", dict, endpoints=_SAMPLING, help="Streaming options such as include_usage."),
    Param("max_output_tokens", int, 16, None, endpoints=_RE,
          help="Responses: the API's name of max_tokens (at least 16, CreateResponse)."),
    Param("store", bool, endpoints=_RE, default=False, flags=("--store",),
          help="Responses: keep the response on OpenAI's servers (the API's default; here not stored unless asked)."),
    Param("include", list, endpoints=_RE, help="Responses: extra output data, such as reasoning.encrypted_content."),
    Param("reasoning", dict, endpoints=_RE, help="Responses: {effort, summary}."),
    Param("text", dict, endpoints=_RE, help="Responses: {format, verbosity}."),
    Param("response_format", dict, endpoints=_CH, help="Chat: {type: json_schema, json_schema: {...}} and the like."),
    Param("schema", (str, dict, type), endpoints=_REASONING, flags=("--schema",),
          help="JSON Schema the answer must match (JSON text, a .json file, or a notebook variable holding a dict "
               "or a pydantic model class); sent as response_format (chat) or text.format (responses)."),
]
PARAMS: dict[str, Param] = {p.name: p for p in _PARAMS}
#: The parameters the magic has options for, in the order ``%%complete?`` lists them.
OPTION_PARAMS: tuple[Param, ...] = tuple(p for p in _PARAMS if p.flags)
#: The parameters the form has controls for.
FORM_PARAMS: tuple[Param, ...] = tuple(p for p in _PARAMS if p.control)


def check_params(endpoint: str, params: Mapping[str, Any], *, options: bool = False,
                 stream: bool | None = None) -> dict[str, Any]:
    """Validate sampling parameters for ``endpoint``; return them without ``None`` values.
    ``options``: messages name the magic's option too (``n (-n) must be …``). ``stream``: whether the
    request streams (None: not known here), for the combinations the API refuses (GUIDE 18)."""
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
        if name == "schema":
            raise ConfigurationError("schema is not an API field: build_request sends it as response_format "
                                     "(chat) or text.format (responses)")
        if spec is None:
            raise ConfigurationError(f"unknown parameter {name!r} (pass extra_body={{...}} for server-specific fields)")
        if endpoint not in spec.endpoints:
            raise ConfigurationError(f"{name} is not a parameter of the {endpoint} endpoint")
        spec.check(value, spec.label if options else None)
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
            raise ConfigurationError(f"logit_bias[{token!r}] must be a whole number between -100 and 100, "
                                     f"got {weight!r}")
    _check_combinations(endpoint, clean, stream)
    return clean


def _check_combinations(endpoint: str, params: Mapping[str, Any], stream: bool | None) -> None:
    """The combinations of valid fields the API refuses (GUIDE 18): chat's ``top_logprobs`` without
    ``logprobs: true``; ``stream_options`` without streaming; completions' ``best_of`` with streaming or
    below ``n`` (the server's default n is 1)."""
    if endpoint == CHAT and params.get("top_logprobs") is not None and params.get("logprobs") is not True:
        raise ConfigurationError("top_logprobs needs logprobs=True (the chat API sends the top tokens only with "
                                 "their log probabilities)")
    if stream is not None and not stream and params.get("stream_options") is not None:
        raise ConfigurationError("stream_options works only with stream=True")
    best_of = params.get("best_of")
    if best_of is not None:
        if stream:
            raise ConfigurationError("best_of cannot be streamed: pass stream=False (the server picks the best of "
                                     "best_of answers once all are done)")
        n = params.get("n") or 1
        if best_of < n:
            raise ConfigurationError(f"best_of ({best_of}) must be at least n ({n}): it is how many candidates the "
                                     "server generates to return the best n")
