"""The completion form: tune parameters with widgets, stream the answer, stop it.

:class:`CompletionForm` is one composite widget (a ``VBox``) over the pipeline of
``%%complete`` (:func:`~jupyter_openai.call.run_call`): same settings and defaults, same
session log (source ``form``). Submit runs the call in a daemon thread; the answer goes
into an ``Output`` only through its ``outputs`` trait (never ``with out:``, which needs a
kernel and breaks nbval), coalesced by run_call to ~25 updates a second.

Stop cancels the call's :class:`~jupyter_openai.cancel.CancelToken`: a stalled read ends at
once, the partial text stays, and the call is logged ``interrupted``. Before the server has
answered there is no socket to shut: the form is freed at once and the request ends in the
background as soon as the answer starts (logged ``interrupted`` then).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import ipywidgets as W

from .call import AUTO, CallOutcome, CallRequest, choose_endpoint, run_call
from .cancel import CancelToken
from .client import OpenAIClient
from .display import status_line
from .errors import ConfigurationError, OpenAIError
from .log import SessionLog, session_log
from .magicline import escape, quote, unescape
from .params import CHAT, COMPLETIONS, PARAMS, check_params

__all__ = ["CompletionForm"]

MAX_TOKENS_SLIDER = 4096  # PARAMS sets no upper bound; the slider needs one
ERROR_COLOR = "#c62828"
_DEFAULT_KEYS = ("model", "endpoint", "system", "temperature", "top_p", "max_tokens", "stream")
_SLIDERS = {"temperature": 0.05, "top_p": 0.01, "presence_penalty": 0.1, "frequency_penalty": 0.1}
DETACH_AFTER = 0.3  # seconds Stop waits for the worker before leaving it to end on its own
_INT = re.compile(r"-?\d+")


def _tag(widget: Any, name: str) -> Any:
    """Give ``widget`` the CSS class ``jo-<name>`` (for styling and browser tests) and aligned labels."""
    widget.add_class(f"jo-{name.replace('_', '-')}")
    if "description_width" in getattr(widget, "style", W.Layout()).keys and not isinstance(widget, (W.Checkbox, W.Label)):
        widget.style.description_width = "10em"
    return widget


def _one_line(text: object, limit: int = 300) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def magic_defaults(magics: Any = None) -> dict[str, Any]:
    """What ``%%complete`` uses for options not given: the magics' traits (``%config``), or the
    loaded extension's, or the built-in trait defaults."""
    from IPython import get_ipython

    from .magics import CompleteMagics

    shell = get_ipython()
    magics = magics or (shell.magics_manager.registry.get(CompleteMagics.__name__) if shell is not None else None)
    if magics is None:
        return {name: CompleteMagics.class_traits()[name].default_value for name in _DEFAULT_KEYS}
    values = {name: getattr(magics, name) for name in _DEFAULT_KEYS}
    values["model"] = magics.default_model()  # the offline model's name when calls go to it
    return values


class CompletionForm(W.VBox):
    """A form for one prompt at a time: fields, sliders, Submit/Stop, streamed output, status.

    ``client``: an :class:`~jupyter_openai.client.OpenAIClient` (default: one from the
    environment); the form calls with its settings through a session of its own. Keyword
    arguments preset fields. ``defaults`` is what ``%%complete`` uses for options not given
    (default: the loaded magics' configuration); it decides what the preview shows.
    """

    def __init__(self, client: OpenAIClient | None = None, *, log: SessionLog = session_log,
                 model: str | None = None, endpoint: str | None = None, system: str | None = None,
                 temperature: float | None = None, top_p: float | None = None, max_tokens: int | None = None,
                 prompt: str | None = None, n: int | None = None, stop: str | Sequence[str] | None = None,
                 echo: bool | None = None, presence_penalty: float | None = None,
                 frequency_penalty: float | None = None, seed: int | None = None, stream: bool | None = None,
                 defaults: Mapping[str, Any] | None = None) -> None:
        base = self._base = {**magic_defaults(), **(defaults or {})}
        self._client = client if client is not None else OpenAIClient()
        self._log, self._magics = log, None
        self._call: CancelToken | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._texts: list[str] = []
        self._blocks, self._outcome = 1, None
        shown = self._shown = {  # what a field shows when left at the magic's default (None: the server's)
            "model": base["model"], "system": base["system"] or "", "n": PARAMS["n"].default, "echo": False,
            "stream": bool(base["stream"]), **{name: base[name] if base.get(name) is not None else PARAMS[name].default
                                               for name in ("max_tokens", *_SLIDERS)}}
        model = self._model_was = model or base["model"]
        presets = {"temperature": temperature, "top_p": top_p, "presence_penalty": presence_penalty,
                   "frequency_penalty": frequency_penalty}
        wide = W.Layout(width="100%")
        self._model, note = self._model_field(model)
        self._endpoint = _tag(W.ToggleButtons(options=[CHAT, COMPLETIONS], tooltips=["/chat/completions", "/completions"],
                                              value=choose_endpoint(model, endpoint or base["endpoint"] or AUTO),
                                              style={"button_width": "8.5em"}, layout=W.Layout(width="auto")), "endpoint")
        self._system = _tag(W.Textarea(value=shown["system"] if system is None else system, description="system",
                                       placeholder="System message (chat only)", rows=2, layout=wide), "system")
        self._prompt = _tag(W.Textarea(value=prompt or "", description="prompt", placeholder="Type a prompt", rows=4,
                                       layout=wide), "prompt")
        self._sliders = [_tag(W.FloatSlider(
            value=shown[name] if presets[name] is None else presets[name], min=PARAMS[name].low, max=PARAMS[name].high,
            step=step, readout_format=".2f", description=name.replace("_", " "), continuous_update=False), name)
            for name, step in _SLIDERS.items()]
        self._temperature, self._top_p, self._presence_penalty, self._frequency_penalty = self._sliders
        tokens = shown["max_tokens"] if max_tokens is None else max_tokens
        self._max_tokens = _tag(W.IntSlider(value=tokens, min=max(1, PARAMS["max_tokens"].low or 0), description="max tokens",
                                            max=max(MAX_TOKENS_SLIDER, tokens), continuous_update=False), "max_tokens")
        self._n = _tag(W.BoundedIntText(value=n or shown["n"], min=PARAMS["n"].low, max=PARAMS["n"].high,
                                        description="n", layout=W.Layout(width="14em")), "n")
        stop = stop if isinstance(stop, str) or stop is None else ", ".join(escape(s) for s in stop)
        self._stop_sequences = _tag(W.Text(value=stop or "", description="stop", layout=W.Layout(width="25em"),
                                           placeholder=r"up to 4: a, b, \n"), "stop_sequences")
        self._seed = _tag(W.Text(value="" if seed is None else str(seed), description="seed", placeholder="none",
                                 layout=W.Layout(width="16em")), "seed")
        self._echo = _tag(W.Checkbox(value=bool(echo), description="echo prompt", indent=False), "echo")
        self._stream = _tag(W.Checkbox(value=shown["stream"] if stream is None else stream, description="stream",
                                       indent=False), "stream")
        self._submit = _tag(W.Button(description="Submit", button_style="primary", icon="play"), "submit")
        self._stop = _tag(W.Button(description="Stop", button_style="warning", icon="stop", disabled=True), "stop")
        self._preview = _tag(W.Text(description="as a magic", layout=wide), "preview")
        self._output = _tag(W.Output(layout=W.Layout(border="1px solid #ddd", min_height="3em", padding="4px")), "output")
        self._status = _tag(W.Label(), "status")
        self._error = _tag(W.Label(style={"text_color": ERROR_COLOR}), "error")
        for widget in (self._model, self._endpoint, self._system, self._prompt, self._max_tokens, self._n,
                       self._stop_sequences, self._seed, self._echo, self._stream, *self._sliders):
            widget.observe(self._on_change, names="value")
        self._preview.observe(self._on_preview_edit, names="value")
        self._submit.on_click(self._on_submit)
        self._stop.on_click(self._on_stop)
        sliders = self._sliders
        super().__init__([
            W.HBox([self._model, self._endpoint]), *([note] if note else []), self._system, self._prompt,
            W.HBox([W.VBox([sliders[0], sliders[1], self._max_tokens]), W.VBox([sliders[2], sliders[3], self._n])]),
            W.HBox([self._stop_sequences, self._seed, self._echo, self._stream]), W.HBox([self._submit, self._stop]),
            self._preview, self._output, self._status, self._error], layout=W.Layout(width="100%", max_width="64em"))
        self.add_class("jupyter-openai-form")
        self._sync_fields()

    @classmethod
    def from_magics(cls, magics: Any, **presets: Any) -> CompletionForm:
        """A form with the defaults of ``magics`` (a ``CompleteMagics``) that re-reads its client
        settings on every Submit; ``presets`` fill fields (model, endpoint, system, temperature…)."""
        form = cls(magics.client(), log=session_log, defaults=magic_defaults(magics), **presets)
        form._magics = magics
        return form

    # -- fields ----------------------------------------------------------------------
    def _model_field(self, model: str) -> tuple[W.Widget, W.Widget | None]:
        try:
            ids = sorted({str(m["id"]) for m in self._client.list_models() if isinstance(m, Mapping) and m.get("id")})
            problem = None if ids else "the server lists no models"
        except OpenAIError as exc:
            ids, problem = [], _one_line(exc, 160)
        if problem is None:
            return _tag(W.Dropdown(options=ids if model in ids else [model, *ids], value=model, description="model"), "model"), None
        note = _tag(W.Label(f"Could not list the server's models ({problem}): type a model id."), "model-note")
        return _tag(W.Text(value=model, description="model", placeholder="model id"), "model"), note

    def _values(self) -> dict[str, Any]:
        stops = [unescape(s.strip()) for s in re.split(r"[,\n]", self._stop_sequences.value) if s.strip()]
        return {"model": str(self._model.value or "").strip(), "endpoint": self._endpoint.value,
                "system": self._system.value, "max_tokens": self._max_tokens.value, "n": self._n.value, "stop": stops,
                "echo": self._echo.value, "seed": self._seed.value.strip(), "stream": self._stream.value,
                **{name: round(getattr(self, f"_{name}").value, 4) for name in _SLIDERS}}

    def _auto_endpoint(self, model: str) -> str:
        return choose_endpoint(model, self._base["endpoint"] or AUTO)

    def _options(self) -> list[str]:
        """The ``%%complete`` options that reproduce the current values (non-default ones only)."""
        v, shown = self._values(), self._shown
        chat, words = v["endpoint"] == CHAT, []
        if v["model"] != shown["model"]:
            words += ["-m", quote(v["model"])]
        if v["endpoint"] != self._auto_endpoint(v["model"]):
            words += ["-e", v["endpoint"]]
        if chat and v["system"] != shown["system"]:
            words += ["-s", quote(escape(v["system"]))]
        for flag, name in (("-t", "temperature"), ("--max-tokens", "max_tokens"), ("--top-p", "top_p"), ("-n", "n")):
            words += [flag, f"{v[name]:g}"] if v[name] != shown[name] else []
        for stop in v["stop"]:
            words += ["--stop", quote(escape(stop))]
        words += ["--echo"] if v["echo"] and not chat else []
        for flag, name in (("--presence-penalty", "presence_penalty"), ("--frequency-penalty", "frequency_penalty")):
            words += [flag, f"{v[name]:g}"] if v[name] != shown[name] else []
        words += ["--seed", v["seed"]] if _INT.fullmatch(v["seed"]) else []
        return words + (["--no-stream"] if shown["stream"] and not v["stream"] else [])

    def _request(self) -> CallRequest:
        """The request the current values describe: the one the preview's magic would send."""
        v, shown, base = self._values(), self._shown, self._base
        if not v["model"]:
            raise ConfigurationError("choose a model first")
        if not self._prompt.value.strip():
            raise ConfigurationError("the prompt is empty: type it in the prompt box")
        if v["seed"] and not _INT.fullmatch(v["seed"]):
            raise ConfigurationError(f"seed must be a whole number, got {v['seed']!r}")

        def pick(name: str) -> Any:  # a value left at its default sends what the magic would send
            return v[name] if v[name] != shown[name] else base.get(name)

        endpoint = v["endpoint"]
        params: dict[str, Any] = {name: pick(name) for name in ("temperature", "top_p", "max_tokens", "n",
                                                                "presence_penalty", "frequency_penalty")}
        params.update(stop=v["stop"] or None, seed=int(v["seed"]) if v["seed"] else None)
        if endpoint == COMPLETIONS:
            params["echo"] = True if v["echo"] else None
        check_params(endpoint, params)
        system = pick("system") if endpoint == CHAT else None
        return CallRequest(self._prompt.value, v["model"], endpoint, system, stream=v["stream"], params=params)

    def _sync_fields(self) -> None:
        chat = self._endpoint.value == CHAT
        self._system.disabled, self._echo.disabled = not chat, chat
        self._preview.value = " ".join(["%%complete", *self._options()])

    # -- handlers --------------------------------------------------------------------
    def _on_change(self, change: dict[str, Any]) -> None:
        if change["owner"] is self._model:
            new = str(change["new"] or "").strip()
            if new and self._endpoint.value == self._auto_endpoint(self._model_was):
                self._endpoint.value = self._auto_endpoint(new)  # the endpoint follows the model unless chosen
            self._model_was = new
        self._sync_fields()

    def _on_preview_edit(self, change: dict[str, Any]) -> None:
        expected = " ".join(["%%complete", *self._options()])
        if change["new"] != expected:  # read-only, yet selectable (a disabled input is not)
            self._preview.value = expected

    def _on_submit(self, _button: Any = None) -> None:
        if self.running:
            return
        self._error.value = ""
        try:
            request, client = self._request(), self._client_for_call()
        except Exception as exc:  # noqa: BLE001 - ConfigurationError, or the magics' UsageError (bad settings)
            self._error.value = _one_line(exc)
            return
        if self._magics is not None and self._log is session_log:
            session_log.path = self._magics.log_file
        call = self._call = CancelToken()
        self._blocks, self._outcome = request.params.get("n") or 1, None
        self._render([])
        self._status.value = f"waiting for {request.model}…"
        self._submit.disabled, self._stop.disabled = True, False
        self._thread = threading.Thread(target=self._work, args=(call, client, request), daemon=True,
                                        name="jupyter-openai-form")
        self._thread.start()

    def _on_stop(self, _button: Any = None) -> None:
        call, thread = self._call, self._thread
        if call is None or thread is None:
            return
        self._status.value = "stopping…"
        call.cancel()
        thread.join(DETACH_AFTER)
        if thread.is_alive():  # no answer from the server yet (no socket to close): let it end on its own
            self._end(call, "interrupted: the server had not answered; the request ends in the background")

    def _client_for_call(self) -> OpenAIClient:
        return self._magics.client() if self._magics is not None else self._client

    def _work(self, call: CancelToken, client: OpenAIClient, request: CallRequest) -> None:
        outcome, status, error = None, "error", ""
        try:
            outcome = run_call(client, request, on_update=lambda texts: self._on_update(call, texts), source="form",
                               log=self._log, cancel=call)
            status = status_line(outcome.model, outcome.usage, outcome.latency, outcome.time_to_first_token,
                                 outcome.finish_reasons[0] if outcome.finish_reasons else None, outcome.status)
            if outcome.error is not None:
                kept = f" (partial text kept: {len(outcome.text)} chars)" if outcome.text else ""
                error = _one_line(outcome.error) + kept
            elif outcome.status == "truncated":
                error = "Warning: the server closed the stream without [DONE]; the answer may be incomplete"
        except Exception as exc:  # noqa: BLE001 - a worker must never die silently
            error = _one_line(f"{type(exc).__name__}: {exc}")
        finally:
            self._end(call, status, error, outcome)

    def _end(self, call: CancelToken, status: str, error: str = "", outcome: CallOutcome | None = None) -> None:
        with self._lock:
            if call is not self._call:  # a call Stop already gave up on
                return
            self._call, self._outcome = None, outcome
            self._status.value, self._error.value = status, error
            self._submit.disabled, self._stop.disabled = False, True

    def _on_update(self, call: CancelToken, texts: list[str]) -> None:
        with self._lock:
            if call is not self._call:
                return
            first = not any(self._texts)
            self._render(texts)
            if first and any(texts):
                self._status.value = "streaming…"

    def _render(self, texts: Sequence[str]) -> None:
        self._texts = list(texts)
        if self._blocks > 1:
            blocks = [f"[choice {i}]\n{texts[i] if i < len(texts) else ''}\n" for i in range(max(self._blocks, len(texts)))]
        else:
            blocks = [texts[0]] if texts and texts[0] else []
        self._output.outputs = tuple({"output_type": "stream", "name": "stdout", "text": b} for b in blocks)

    # -- for callers and tests -------------------------------------------------------
    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running call (if any) to finish; True when none is running."""
        thread = self._thread
        if thread is not None and self._call is not None:
            thread.join(timeout)
        return not self.running

    running = property(lambda self: self._call is not None, doc="True while a call is in progress.")
    texts = property(lambda self: list(self._texts), doc="The answer's text per choice (so far).")
    text = property(lambda self: self._texts[0] if self._texts else "", doc="The first choice's text (so far).")
    output_text = property(lambda self: "".join(o.get("text", "") for o in self._output.outputs), doc="What the output shows.")
    status_text = property(lambda self: self._status.value, doc="The status line.")
    error_text = property(lambda self: self._error.value, doc="The red error line ('' when none).")
    preview = property(lambda self: self._preview.value, doc="The equivalent ``%%complete`` line.")
    outcome = property(lambda self: self._outcome, doc="The last finished call's CallOutcome (None if stopped early).")

    def close(self) -> None:
        """Stop a running call, release the connections and close every widget of the form."""
        self._on_stop()
        stack: list[W.Widget] = list(self.children)
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            widget.close()
        super().close()

    def __repr__(self) -> str:
        return f"CompletionForm(model={str(self._model.value)!r}, endpoint={self._endpoint.value!r})"
