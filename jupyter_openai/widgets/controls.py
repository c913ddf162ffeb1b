"""Parts of the completion form: the CSS tag every control gets, a parameter's control, the model field.

:class:`ModelField` never blocks the caller: it is a ``Text`` holding the default model at once,
and a daemon thread asks the server for its models with short timeouts and no retries. When
the list arrives the field becomes a ``Dropdown`` of the listed models, keeping what the user
typed meanwhile (added to the options if the server does not list it); when it fails, a
one-line note under the field says why and the ``Text`` stays. When the default model is the
server's first listed one (``%complete_form`` on another server than OpenAI), the list brings it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as W

from ..api.params import CHECK, CHOICE, NUMBER, SLIDER, Param
from ..client import OpenAIClient
from ..errors import one_line

NOTE = "Could not list the server's models ({problem}): type a model id."


#: The one fixed colour: the Stop button's text. Its background is the theme's orange in light and
#: dark themes alike, on which the light theme's white text reads at 2.7:1 (WCAG AA asks 4.5:1).
STOP_INK = ".jupyter-openai-form .jupyter-widgets.jupyter-button.mod-warning { color: #111111; }"
#: The form's colours and sizes, from the front end's theme (JupyterLab's variables, with
#: fallbacks for front ends without them), scoped to the form; one stylesheet per form. The status
#: and error lines wrap (a Label cuts its text at the edge).
FORM_STYLE = """<style>
.jupyter-openai-form { max-width: 100%; box-sizing: border-box; }
.jupyter-openai-form .jo-output { border: 1px solid var(--jp-border-color2, rgba(128, 128, 128, 0.4));
  border-radius: 2px; max-width: 100%; box-sizing: border-box; overflow-wrap: break-word; }
.jupyter-openai-form .jo-error { color: var(--jp-error-color1, #d32f2f); }
.jupyter-openai-form .jo-status, .jupyter-openai-form .jo-note { color: var(--jp-ui-font-color2, inherit);
  font-size: var(--jp-ui-font-size0, 85%); }
.jupyter-openai-form .jo-status, .jupyter-openai-form .jo-note, .jupyter-openai-form .jo-error { white-space: normal;
  overflow: visible; text-overflow: clip; height: auto; min-height: var(--jp-widgets-inline-height, 28px);
  line-height: 1.5; overflow-wrap: anywhere; }
.jupyter-openai-form .widget-hbox { flex-wrap: wrap; max-width: 100%; }
""" + STOP_INK + "\n</style>"


def tag(widget: Any, name: str) -> Any:
    """Give ``widget`` the CSS class ``jo-<name>`` (for styling and browser tests) and aligned labels."""
    widget.add_class(f"jo-{name.replace('_', '-')}")
    if "description_width" in getattr(widget, "style", W.Layout()).keys and not isinstance(
        widget, (W.Checkbox, W.Label)
    ):
        widget.style.description_width = "10em"
    return widget


def control(param: Param, value: Any) -> W.Widget:
    """The form's control for one parameter, built from its declaration."""
    label = param.name.replace("_", " ")
    if param.control == SLIDER and param.kind is float:
        widget = W.FloatSlider(
            value=value,
            min=param.low,
            max=param.high,
            step=param.step,
            readout_format=".2f",
            description=label,
            continuous_update=False,
        )
    elif param.control == SLIDER:
        widget = W.IntSlider(
            value=value,
            min=param.low,
            max=max(param.form_max or value, value),
            description=label,
            continuous_update=False,
        )
    elif param.control == NUMBER:
        widget = W.BoundedIntText(
            value=value, min=param.low, max=param.high, description=label, layout=W.Layout(width="14em")
        )
    elif param.control == CHOICE:
        widget = W.Dropdown(options=[("default", None), *((c, c) for c in param.choices)], value=value,
                            description=label.replace("reasoning effort", "reasoning"), layout=W.Layout(width="16em"))
    elif param.control == CHECK:
        widget = W.Checkbox(
            value=bool(value), description=label if param.name != "echo" else "echo prompt", indent=False
        )
    else:
        widget = W.Text(value=value, description=label, layout=W.Layout(width="16em"))
    widget.tooltip = param.help
    return tag(widget, param.name if param.name != "stop" else "stop_sequences")


MODELS_TIMEOUTS = (2.0, 5.0)  #: connect, read: listing the models for the form (no retries)


def list_models_quickly(client: OpenAIClient) -> list[dict[str, Any]]:
    """The server's models, asked with short timeouts and no retries (the form's thread waits)."""
    settings = client.settings
    connect, read = MODELS_TIMEOUTS
    with OpenAIClient(settings.with_overrides(connect_timeout=min(connect, settings.connect_timeout),
                                              read_timeout=min(read, settings.read_timeout),
                                              max_retries=0)) as short:
        return short.list_models()


class ModelField:
    """The model field: ``box`` holds the current ``widget`` (a Text, then maybe a Dropdown); ``note``
    is shown only when listing failed. ``on_change`` observes the value of whichever widget is current."""

    def __init__(self, model: str, on_change: Callable[[dict[str, Any]], None],
                 on_default: Callable[[str], None] | None = None) -> None:
        self._default = model
        self._on_change = on_change
        self._on_default = on_default  # told the server's first model, when it becomes the default
        self._lock = threading.Lock()
        self._listed = threading.Event()
        self._closed = False
        self.widget: Any = self._watch(tag(W.Text(value=model, description="model", placeholder="model id"), "model"))
        self.box = W.Box([self.widget])
        self.note = tag(W.Label("", layout=W.Layout(display="none")), "model-note")

    def _watch(self, widget: Any) -> Any:
        widget.observe(self._on_change, names="value")
        return widget

    def load(self, list_models: Callable[[], list[dict[str, Any]]], first_is_default: bool = False) -> None:
        """Ask for the models in a daemon thread; the field changes when they (or an error) arrive.
        ``first_is_default``: the server's first listed model replaces the default (unless typed over)."""
        threading.Thread(target=self._load, args=(list_models, first_is_default), daemon=True,
                         name="jupyter-openai-models").start()

    def _load(self, list_models: Callable[[], list[dict[str, Any]]], first_is_default: bool) -> None:
        try:
            listed = [str(m["id"]) for m in list_models() if isinstance(m, Mapping) and m.get("id")]
            problem = None if listed else "the server lists no models"
        except Exception as exc:  # noqa: BLE001 - OpenAIError, or a client factory's own (bad settings)
            listed, problem = [], one_line(exc, 160)
        try:
            with self._lock:
                if self._closed:
                    return
                if problem is None:
                    typed = str(self.widget.value or "").strip()
                    new_default = first_is_default and typed in ("", self._default) and listed[0] != self._default
                    if new_default:
                        self._default = typed = listed[0]
                    self._upgrade(sorted(set(listed)), typed or self._default)
                    if new_default and self._on_default is not None:
                        self._on_default(self._default)
                else:
                    self.note.value = NOTE.format(problem=problem)
                    self.note.layout.display = None
        finally:
            self._listed.set()

    def _upgrade(self, ids: list[str], value: str) -> None:
        """The Text becomes a Dropdown of ``ids`` (and ``value`` if they lack it), ``value`` selected."""
        options = ids if value in ids else [value, *ids]
        dropdown = self._watch(tag(W.Dropdown(options=options, value=value, description="model"), "model"))
        old, self.widget = self.widget, dropdown
        self.box.children = (dropdown,)
        old.close()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the list (or its error) has arrived; True if it has."""
        return self._listed.wait(timeout)

    def close(self) -> None:
        """Close the widgets; a list arriving later changes nothing."""
        with self._lock:
            self._closed = True
            for widget in (self.widget, self.box, self.note):
                widget.close()
