"""The completion form: tune parameters with widgets, stream the answer, stop it.

:class:`CompletionForm` is one composite widget (a ``VBox``) that knows nothing of its host:
it is given a client (or a function that makes one for each call), the defaults that apply
to options left untouched, and the log to write to. Its controls come from the parameter
table (:data:`~jupyter_openai.api.params.FORM_PARAMS`); its values become a request through the
same :func:`~jupyter_openai.calls.request.build_request` as ``%%complete``'s options, and its status
line, notes (muted) and errors (red), in that order under the answer as in the magic, come from
:func:`~jupyter_openai.calls.summary.summarize`.

:meth:`~CompletionForm.submit` runs the call in a daemon thread; the answer goes into an
``Output`` only through its ``outputs`` trait (never ``with out:``, which needs a kernel and
breaks nbval), coalesced to ~25 updates a second. :meth:`~CompletionForm.stop` cancels the
call's :class:`~jupyter_openai.transport.cancel.CancelToken`: a stalled read ends at once, the partial
text stays, and the call is logged ``interrupted``. Before the server has answered there is
no socket to shut: the form is freed at once and the request ends in the background.

The form appears at once: its model field is a ``Text`` until the server's model list arrives
from a background request with short timeouts (:func:`~jupyter_openai.widgets.controls.list_models_quickly`), then a
``Dropdown`` (:class:`~jupyter_openai.widgets.controls.ModelField`); :meth:`~CompletionForm.wait_models`
waits for it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import ipywidgets as W

from ..api.params import CHAT, COMPLETIONS, ENDPOINT_PATHS, ENDPOINTS, FORM_PARAMS, SLIDER, Param
from ..calls.line import escape, format_options, unescape
from ..calls.request import AUTO, DEFAULTS, CallRequest, build_request, choose_endpoint
from ..calls.run import CallOutcome, Origin, Progress, run_call
from ..calls.summary import DETACHED, summarize, unexpected
from ..client import OpenAIClient
from ..display.cell import output_items
from ..errors import ConfigurationError, one_line
from ..markdown import NO_MATHS
from ..session.log import SessionLog, session_log
from ..transport.cancel import CancelToken
from .controls import FORM_STYLE, ModelField, list_models_quickly
from .controls import control as _control
from .controls import tag as _tag

__all__ = ["CompletionForm"]

DETACH_AFTER = 0.3  # seconds stop() waits for the worker before leaving it to end on its own
_INT = re.compile(r"-?\d+")
_PRESETS = frozenset({"prompt", "model", "endpoint", "system", "stream", "show_probs", *(p.name for p in FORM_PARAMS)})
ClientSource = OpenAIClient | Callable[[], OpenAIClient]


class CompletionForm(W.VBox):
    """A form for one prompt at a time: fields, sliders, Submit/Stop, streamed output, status.

    ``client``: an :class:`~jupyter_openai.client.OpenAIClient`, or a function returning the
    client for each call (so settings changed meanwhile apply); default: one from the
    environment. ``defaults``: what a call uses for options left as shown (the model,
    endpoint, system message, stream and parameter defaults; ``%complete_form`` passes the
    magic's configuration). ``log``: where calls are recorded. ``model_from_server``: the
    default model is the server's first listed one, known once the list arrives. Keyword
    ``presets`` fill fields (prompt, model, endpoint, system, stream, or any parameter the form shows).
    """

    def __init__(self, client: ClientSource | None = None, *, log: SessionLog = session_log,
                 defaults: Mapping[str, Any] | None = None, model_from_server: bool = False, **presets: Any) -> None:
        unknown = set(presets) - _PRESETS
        if unknown:
            raise TypeError(f"CompletionForm() got unexpected preset(s): {', '.join(sorted(unknown))}")
        base = self._base = {**DEFAULTS, **(defaults or {})}
        self._client_source: ClientSource = client if client is not None else OpenAIClient()
        self._log = log
        self._call: CancelToken | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._texts: list[str] = []
        self._reasoning = ""
        self._show_reasoning = bool(base.get("show_reasoning", True))
        self._markdown = base.get("output_format", "auto") != "text"  # the form is always in a notebook
        self._blocks, self._outcome = 1, None
        shown = self._shown = {  # what a field shows when left at the default (None: the server's)
            "model": base["model"],
            "system": base["system"] or "",
            "stream": bool(base["stream"]),
            **{p.name: base[p.name] if base.get(p.name) is not None else p.default for p in FORM_PARAMS},
        }
        shown.update(stop="", seed="", echo=False)
        model = self._model_was = presets.get("model") or base["model"]
        wide = W.Layout(width="auto", align_self="stretch")  # the form's width, less the margins (100% overflows)
        self._models = ModelField(model, self._on_change, self._on_default_model)
        self._endpoint = _tag(
            W.ToggleButtons(
                options=list(ENDPOINTS),
                tooltips=[ENDPOINT_PATHS[endpoint] for endpoint in ENDPOINTS],
                value=choose_endpoint(model, presets.get("endpoint") or base["endpoint"]),
                style={"button_width": "8.5em"},
                layout=W.Layout(width="auto"),
            ),
            "endpoint",
        )
        system = presets.get("system")
        self._system = _tag(
            W.Textarea(
                value=shown["system"] if system is None else system,
                description="system",
                placeholder="System message (chat, responses: instructions)",
                rows=2,
                layout=wide,
            ),
            "system",
        )
        self._prompt = _tag(
            W.Textarea(
                value=presets.get("prompt") or "",
                description="prompt",
                placeholder="Type a prompt",
                rows=4,
                layout=wide,
            ),
            "prompt",
        )
        self._controls = {p.name: _control(p, self._preset_text(p, presets.get(p.name))) for p in FORM_PARAMS}
        for name, widget in self._controls.items():
            setattr(self, "_stop_sequences" if name == "stop" else f"_{name}", widget)
        stream = presets.get("stream")
        self._stream = _tag(
            W.Checkbox(value=shown["stream"] if stream is None else stream, description="stream", indent=False),
            "stream",
        )
        self._show_probs = _tag(W.Checkbox(value=bool(presets.get("show_probs")), description="token probabilities",
                                           indent=False), "show-probs")
        self._submit = _tag(W.Button(description="Submit", button_style="primary", icon="play"), "submit")
        self._stop = _tag(W.Button(description="Stop", button_style="warning", icon="stop", disabled=True), "stop")
        self._preview = _tag(W.Text(description="as a magic", layout=wide), "preview")
        self._output = _tag(W.Output(layout=W.Layout(min_height="3em", padding="4px")), "output")
        self._status, self._notes, self._error = (_tag(W.Label(), name) for name in ("status", "note", "error"))
        for label in (self._status, self._notes, self._error):  # widgets typeset $…$: "cost $0.51 of $0.50" is text
            for name in NO_MATHS.split():
                label.add_class(name)
        self._notes_before: list[str] = []  # notes about what a call sends (a subclass's), shown after it
        for widget in (self._endpoint, self._system, self._prompt, self._stream, self._show_probs,
                       *self._controls.values()):
            widget.observe(self._on_change, names="value")
        self._preview.observe(self._on_preview_edit, names="value")
        self._submit.on_click(self._on_submit)
        self._stop.on_click(self._on_stop)
        sliders = [w for n, w in self._controls.items() if n in self._slider_names()]
        others = [w for n, w in self._controls.items() if n not in self._slider_names()]
        row = W.Layout(flex_flow="row wrap", width="100%")
        super().__init__(
            [
                W.HBox([self._models.box, self._endpoint], layout=row),
                self._models.note,
                self._system,
                self._prompt,
                W.HBox(sliders, layout=row),
                W.HBox([*others, self._stream, self._show_probs], layout=row),
                W.HBox([self._submit, self._stop]),
                self._preview,
                self._output,
                self._status,
                self._notes,
                self._error,
                W.HTML(FORM_STYLE, layout=W.Layout(display="none")),
            ],
            layout=W.Layout(width="100%", max_width="64em"),
        )
        self.add_class("jupyter-openai-form")
        self._sync_fields()
        self._models.load(lambda: list_models_quickly(self._client()),
                          first_is_default=model_from_server and not presets.get("model"))

    @staticmethod
    def _slider_names() -> set[str]:
        return {p.name for p in FORM_PARAMS if p.control == SLIDER}

    def _preset_text(self, param: Param, preset: Any) -> Any:
        """A control's first value: the preset, else what the default shows."""
        if preset is None:
            return self._shown[param.name]
        if param.name == "stop":
            return preset if isinstance(preset, str) else ", ".join(escape(s) for s in preset)
        return str(preset) if param.name == "seed" else preset

    def _client(self) -> OpenAIClient:
        source = self._client_source
        return source if isinstance(source, OpenAIClient) else source()

    _model = property(lambda self: self._models.widget, doc="The model field (a Text, or a Dropdown once listed).")

    # -- fields ----------------------------------------------------------------------
    def options(self, *, lenient: bool = False) -> dict[str, Any]:
        """What the user set, as ``build_request`` takes it: a field left as shown is ``None``
        (the defaults decide), exactly as an option left off ``%%complete``. ``lenient``: an
        unreadable seed is left out instead of raising (for the preview)."""
        shown, chat = self._shown, self._endpoint.value == CHAT
        given: dict[str, Any] = {}
        for name, widget in self._controls.items():
            value = round(widget.value, 4) if isinstance(widget.value, float) else widget.value
            given[name] = None if value == shown[name] else value
        stops = [unescape(s.strip()) for s in re.split(r"[,\n]", self._stop_sequences.value) if s.strip()]
        seed = self._seed.value.strip()
        if seed and not _INT.fullmatch(seed):
            if not lenient:
                raise ConfigurationError(f"seed must be a whole number, got {seed!r}")
            seed = ""
        system = self._system.value
        given.update(
            stop=stops or None,
            seed=int(seed) if seed else None,
            echo=True if self._echo.value and not chat else None,
            prompt=self._prompt.value,
            model=str(self._model.value or "").strip(),
            endpoint=self._endpoint.value,
            system=system if self._endpoint.value != COMPLETIONS and system != shown["system"] else None,
            stream=None if self._stream.value == shown["stream"] else self._stream.value,
        )
        if self._show_probs.value and given.get("logprobs") is None:
            given["logprobs"] = 5  # as %%complete --show-probs asks
        return given

    def request(self) -> CallRequest:
        """The request the current values describe: the one the preview's magic would send."""
        if not self._prompt.value.strip():
            raise ConfigurationError("the prompt is empty: type it in the prompt box")
        return build_request(self.options(), self._base)

    def _preview_line(self) -> str:
        options = self.options(lenient=True)
        auto = choose_endpoint(options["model"], self._base["endpoint"] or AUTO)
        shown = {"model": self._shown["model"], "system": self._shown["system"], "stream": self._shown["stream"]}
        probs = self._show_probs.value and options.get("logprobs") == 5
        line = format_options({**options, "logprobs": None} if probs else options, auto, shown)
        return " ".join(["%%complete", *line, *(["--show-probs"] if probs else [])])

    def _sync_fields(self) -> None:
        completions = self._endpoint.value == COMPLETIONS
        self._system.disabled, self._echo.disabled = completions, not completions
        self._preview.value = self._preview_line()

    # -- handlers --------------------------------------------------------------------
    def _on_change(self, change: dict[str, Any]) -> None:
        if change["owner"] is self._model:
            new = str(change["new"] or "").strip()
            auto = self._base["endpoint"] or AUTO
            if new and self._endpoint.value == choose_endpoint(self._model_was, auto):
                self._endpoint.value = choose_endpoint(new, auto)  # the endpoint follows the model unless chosen
            self._model_was = new
        self._sync_fields()

    def _on_default_model(self, model: str) -> None:
        """The server's first listed model is the default (``model_from_server``): shown as such."""
        auto = self._base["endpoint"] or AUTO
        if self._endpoint.value == choose_endpoint(self._model_was, auto):
            self._endpoint.value = choose_endpoint(model, auto)
        self._model_was = self._base["model"] = self._shown["model"] = model
        self._sync_fields()

    def _on_preview_edit(self, change: dict[str, Any]) -> None:
        expected = self._preview_line()
        if change["new"] != expected:  # read-only, yet selectable (a disabled input is not)
            self._preview.value = expected

    def _on_submit(self, _button: Any = None) -> None:
        self.submit()

    def _on_stop(self, _button: Any = None) -> None:
        self.stop()

    # -- public actions ----------------------------------------------------------------
    def submit(self) -> bool:
        """Start a call with the current values (in a thread); False if one is running or the
        values are wrong (the error line says why)."""
        if self.running:
            return False
        self._error.value = self._notes.value = ""
        try:
            request, client = self.request(), self._client()
            limit = "option" if self.options().get("max_tokens") is not None else "default"
        except Exception as exc:  # noqa: BLE001 - ConfigurationError, or the host's error for bad settings
            self._error.value = one_line(exc, 300)
            return False
        call = self._call = CancelToken()
        self._blocks, self._outcome = request.choices, None
        self._render([])
        self._status.value = f"waiting for {request.model}…"
        self._submit.disabled, self._stop.disabled = True, False
        self._thread = threading.Thread(
            target=self._work, args=(call, client, request, limit), daemon=True, name="jupyter-openai-form"
        )
        self._thread.start()
        return True

    def stop(self) -> None:
        """Stop the running call (if any); the partial text stays."""
        call, thread = self._call, self._thread
        if call is None or thread is None:
            return
        self._status.value = "stopping…"
        call.cancel()
        thread.join(DETACH_AFTER)
        if thread.is_alive():  # no answer from the server yet (no socket to close): let it end on its own
            self._end(call, DETACHED)

    def _work(self, call: CancelToken, client: OpenAIClient, request: CallRequest, limit: str) -> None:
        outcome, status, error, notes = None, "error", "", list(self._notes_before)
        try:
            outcome = run_call(
                client,
                request,
                on_update=lambda progress: self._on_update(call, progress),
                log=self._log,
                cancel=call,
                origin=self._origin(),
            )
            self._finished(outcome)
            summary = summarize(outcome, offline=bool(self._base.get("offline")), limit_source=limit, front="form")
            status, error, notes = summary.status, "  ".join(summary.errors), notes + summary.notes
        except Exception as exc:  # noqa: BLE001 - a worker must never die silently
            error = unexpected(exc)
        finally:
            self._end(call, status, error, outcome, notes)

    def _origin(self) -> Origin:
        """Where the call comes from, for its log record (a subclass adds its conversation)."""
        return Origin("form")

    def _finished(self, outcome: CallOutcome) -> None:
        """The call is over (on the worker thread, before the status shows); a subclass keeps it."""

    def _end(self, call: CancelToken, status: str, error: str = "", outcome: CallOutcome | None = None,
             notes: Sequence[str] = ()) -> None:
        with self._lock:
            if call is not self._call:  # a call stop() already gave up on
                return
            self._call, self._outcome = None, outcome
            if outcome is not None and outcome.logprobs and self._show_probs.value:
                from .probs import probs_output

                self._output.outputs += (probs_output(outcome.logprobs, outcome.text),)
            self._status.value, self._notes.value, self._error.value = status, "  ".join(notes), error
            self._submit.disabled, self._stop.disabled = False, True

    def _on_update(self, call: CancelToken, progress: Progress) -> None:
        with self._lock:
            if call is not self._call:
                return
            first = not any(self._texts)
            self._render(progress.texts, progress.reasoning)
            if first and any(progress.texts):
                self._status.value = "streaming…"

    def _render(self, texts: Sequence[str], reasoning: str = "") -> None:
        self._texts, self._reasoning = list(texts), reasoning
        self._output.outputs = output_items(texts, reasoning, self._blocks, self._markdown, self._show_reasoning)

    # -- for callers and tests -------------------------------------------------------
    def wait_models(self, timeout: float | None = None) -> bool:
        """Wait for the server's model list (or its failure note) to reach the model field; True if it has."""
        return self._models.wait(timeout)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the running call (if any) to finish; True when none is running."""
        thread = self._thread
        if thread is not None and self._call is not None:
            thread.join(timeout)
        return not self.running

    running = property(lambda self: self._call is not None, doc="True while a call is in progress.")
    texts = property(lambda self: list(self._texts), doc="The answer's text per choice (so far).")
    text = property(lambda self: self._texts[0] if self._texts else "", doc="The first choice's text (so far).")
    reasoning = property(lambda self: self._reasoning, doc="Reasoning text received so far (apart from the answer).")
    output_text = property(
        lambda self: "".join(o["data"]["text/plain"] for o in self._output.outputs
                             if o["metadata"].get("jupyter_openai") == "answer"),
        doc="The answer text the output shows.",
    )
    status_text = property(lambda self: self._status.value, doc="The status line.")
    note_text = property(lambda self: self._notes.value, doc="The muted notes under the status line ('' when none).")
    error_text = property(lambda self: self._error.value, doc="The red error line ('' when none).")
    preview = property(lambda self: self._preview.value, doc="The equivalent ``%%complete`` line.")
    outcome = property(lambda self: self._outcome, doc="The last finished call's CallOutcome (None if stopped early).")

    def close(self) -> None:
        """Stop a running call and close every widget of the form."""
        self.stop()
        self._models.close()
        stack: list[W.Widget] = list(self.children)
        while stack:
            widget = stack.pop()
            stack.extend(getattr(widget, "children", ()))
            widget.close()
        super().close()

    def __repr__(self) -> str:
        return f"CompletionForm(model={str(self._model.value)!r}, endpoint={self._endpoint.value!r})"
