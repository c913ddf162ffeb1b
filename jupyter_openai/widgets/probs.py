"""The probability view: an answer with each token coloured by how likely the model found it.

:func:`probs_html` is the static view (HTML spans on a colour scale, the top alternatives with
their percentages in each span's ``title=`` tooltip, so hovering shows them anywhere HTML is
shown, nbviewer and GitHub included). :class:`ProbsView` is the interactive one (ipywidgets):
click a token to list its alternatives; a temperature slider re-weights them (an illustration over
the alternatives shown, not what the server would do); on the completions endpoint a click on an
alternative continues the text from there (the prompt, the text so far and that token). Displayed,
a :class:`ProbsView` is one output holding both: the widget for live front ends and the static view as
its ``text/html`` fallback (nbviewer, GitHub, a notebook reopened without its widget state).
Every number is checked before use (:func:`~jupyter_openai.api.logprobs.clamp`): a server's odd
value shows as unknown or clamped, never raises.
"""

from __future__ import annotations

import colorsys
import html
import math
from collections.abc import Callable, Sequence
from typing import Any

from ..api.logprobs import TokenProb, clamp, nucleus, probability, reweight, text_of

MAX_BUTTONS = 200  #: tokens shown as buttons in the interactive view (the static view shows all)
SCALE = (0.0, 0.25, 0.5, 0.75, 1.0)
#: The text on every coloured background: dark in both themes (the backgrounds are pastel, so the
#: theme's own text colour, white in a dark theme, would be unreadable on them: WCAG AA needs 4.5:1).
INK = "#111111"
CSS = ("<style>.jo-probs{white-space:pre-wrap;line-height:1.9;font-family:var(--jp-code-font-family,monospace)}"
       f".jo-tok{{border-radius:3px;padding:1px 0;background:hsl(calc(var(--jo-p) * 120) 70% 80%);color:{INK}}}"
       ".jo-legend{font-size:85%;color:var(--jp-ui-font-color1,inherit)}</style>")


def _hsl(prob: float | None) -> tuple[float, float, float]:
    """The background's hue (degrees), saturation and lightness (0 to 1)."""
    prob = _unit(prob)
    if prob is None:
        return 0.0, 0.0, 0.85
    return float(round(120 * prob)), 0.7, 0.8


def colour(prob: float | None) -> str:
    """The token's background: red (unlikely) through yellow to green (likely); grey when unknown."""
    hue, saturation, lightness = _hsl(prob)
    return f"hsl({hue:.0f}, {saturation:.0%}, {lightness:.0%})"


def luminance(rgb: Sequence[float]) -> float:
    """WCAG relative luminance of an sRGB colour given as three values from 0 to 1."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgb]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(first: Sequence[float], second: Sequence[float]) -> float:
    """WCAG contrast ratio of two sRGB colours (1 to 21; AA asks 4.5 for text)."""
    light, dark = sorted((luminance(first), luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_colour(prob: float | None) -> str:
    """The text colour on :func:`colour`'s background: :data:`INK` or white, whichever contrasts more."""
    hue, saturation, lightness = _hsl(prob)
    background = colorsys.hls_to_rgb(hue / 360, lightness, saturation)
    ink = tuple(int(INK[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return INK if contrast(ink, background) >= contrast((1.0, 1.0, 1.0), background) else "#ffffff"


def token_style(prob: float | None) -> str:
    """A coloured token's inline style: its background and a text colour that reads on it."""
    return f"background:{colour(prob)};color:{text_colour(prob)}"


def _unit(prob: Any) -> float | None:
    """``prob`` clamped to 0 … 1 (None when it is not a number, NaN included)."""
    if isinstance(prob, bool) or not isinstance(prob, (int, float)) or prob != prob:
        return None
    return min(max(float(prob), 0.0), 1.0)


def percent(prob: float | None) -> str:
    prob = _unit(prob)
    if prob is None:
        return "?"
    return f"{prob * 100:.1f}%" if prob >= 0.001 else "<0.1%"


def shown(token: str) -> str:
    """A token as a label: spaces and line breaks made visible."""
    return token.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥") or "∅"


def alternatives(token: TokenProb, temperature: float = 1.0) -> list[tuple[str, float]]:
    """The token's alternatives with probabilities: as sent at temperature 1, else re-weighted."""
    top = [(name, value) for name, logprob in token.top if (value := clamp(logprob)) is not None]
    own = clamp(token.logprob)
    if not top and own is not None:
        top = [(token.token, own)]
    if temperature == 1.0:
        return [(name, math.exp(logprob)) for name, logprob in top]
    return reweight(top, temperature)


def tooltip(token: TokenProb) -> str:
    lines = [f"{shown(token.token)}: {percent(probability(token.logprob))}"]
    for name, prob in alternatives(token):
        lines.append(f"  {shown(name)}  {percent(prob)}")
    return "\n".join(lines)


def probs_html(tokens: Sequence[TokenProb], prefix: str = "", legend: bool = True) -> str:
    """The answer as coloured spans, alternatives in each span's tooltip; ``prefix`` (text the tokens
    continue) shown plain before them."""
    spans = []
    for token in tokens:
        prob = probability(token.logprob)
        value = "0.5" if prob is None else f"{prob:.3f}"
        spans.append(f'<span class="jo-tok" style="--jo-p:{value};{token_style(prob)}" '
                     f'title="{html.escape(tooltip(token))}">{html.escape(token.token)}</span>')
    head = f'<span style="color:var(--jp-ui-font-color2,inherit)">{html.escape(prefix)}</span>' if prefix else ""
    body = f'{CSS}<div class="jo-probs">{head}{"".join(spans)}</div>'
    if legend:
        scale = " ".join(f'<span class="jo-tok" style="--jo-p:{p};{token_style(p)}">&nbsp;{p:.0%}&nbsp;</span>'
                         for p in SCALE)
        known = [p for p in (probability(t.logprob) for t in tokens) if p is not None]
        mean = f" · mean {percent(sum(known) / len(known))}" if known else ""
        body += (f'<div class="jo-legend">{len(tokens)} tokens{mean} · probability: {scale} · '
                 "hover a token for its alternatives</div>")
    return body


def probs_output(tokens: Sequence[TokenProb], text: str) -> dict[str, Any]:
    """The static view as an output of an ``Output`` widget (the form's), the text as its fallback."""
    return {"output_type": "display_data", "data": {"text/html": probs_html(tokens), "text/plain": text},
            "metadata": {"jupyter_openai": "probabilities"}}


def alternatives_html(token: TokenProb, temperature: float, top_p: float | None = None) -> str:
    """A small table of one token's alternatives: bars of their probability at ``temperature`` and,
    with ``top_p``, which ones nucleus sampling would keep."""
    probs = alternatives(token, temperature)
    kept = set(nucleus(probs, top_p)) if top_p is not None else None
    rows = []
    for name, prob in probs:
        mark = "" if kept is None else (" ✓" if name in kept else " ✗")
        chosen = " ◀ chosen" if name == token.token else ""
        width = (_unit(prob) or 0.0) * 160
        bar = f'<span style="display:inline-block;height:.8em;width:{width:.0f}px;background:{colour(prob)}"></span>'
        rows.append(f"<tr><td><code>{html.escape(shown(name))}</code></td><td>{bar}</td>"
                    f"<td style='text-align:right'>{percent(prob)}{mark}</td><td>{chosen}</td></tr>")
    note = "as the server sent them" if temperature == 1.0 else \
        f"re-weighted for temperature {temperature:g} (an illustration over the alternatives shown)"
    return f"<div><b>{html.escape(shown(token.token))}</b>: alternatives {note}<table>{''.join(rows)}</table></div>"


class ProbsView:
    """The interactive probability view (needs ipywidgets); ``display(view)`` shows it as one output
    (the widget, and the static view as its HTML fallback).

    ``on_continue(text)``, when given (the completions endpoint), continues the answer from the
    text so far plus a chosen alternative, and returns the tokens of the continuation.
    """

    def __init__(self, tokens: Sequence[TokenProb], *, on_continue: Callable[[str], Sequence[TokenProb]] | None = None,
                 prefix: str = "") -> None:
        import ipywidgets as w

        self.tokens = list(tokens)
        self.on_continue = on_continue
        self.prefix = prefix
        self.selected: int | None = None
        self.static = w.HTML(probs_html(self.tokens, prefix))
        self.buttons = [self._button(i, t) for i, t in enumerate(self.tokens[:MAX_BUTTONS])]
        self.temperature = w.FloatSlider(value=1.0, min=0.0, max=2.0, step=0.1, description="temperature",
                                         style={"description_width": "initial"},  # the label whole, not "temperat…"
                                         tooltip="An illustration: re-weights the alternatives shown")
        self.temperature.observe(lambda change: self._show_details(), "value")
        self.details = w.HTML("Click a token to see the alternatives the model considered.")
        self.choices = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self.continued = w.HTML()  #: the continuation from an alternative, once asked for
        self.widget = w.VBox([
            self.static,
            w.HBox(self.buttons, layout=w.Layout(flex_flow="row wrap")),
            w.HBox([self.temperature, w.HTML("<i>illustration: re-weights the alternatives shown</i>")]),
            self.details, self.choices, self.continued,
        ])

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        """One output for every front end: the widget for live ones, the static view as its
        ``text/html`` fallback (nbviewer, GitHub), the text as ``text/plain``."""
        bundle = dict(self.widget._repr_mimebundle_(**kwargs) or {})
        bundle["text/html"] = probs_html(self.tokens, self.prefix)
        bundle["text/plain"] = self.prefix + text_of(self.tokens)
        return bundle

    def _button(self, index: int, token: TokenProb) -> Any:
        import ipywidgets as w

        button = w.Button(description=shown(token.token), tooltip=tooltip(token),
                          layout=w.Layout(width="auto", height="26px", margin="1px", padding="0 4px"))
        prob = probability(token.logprob)
        button.style.button_color = colour(prob)
        button.style.text_color = text_colour(prob)  # the theme's own (white in dark themes) would not read
        button.on_click(lambda _: self.select(index))
        return button

    def select(self, index: int) -> None:
        """Show the alternatives of token ``index`` (what a click on it does)."""
        self.selected = index
        self._show_details()

    def _show_details(self) -> None:
        import ipywidgets as w

        if self.selected is None:
            return
        token = self.tokens[self.selected]
        self.details.value = alternatives_html(token, self.temperature.value)
        if self.on_continue is None:
            self.choices.children = ()
            return
        buttons = []
        for name, _ in alternatives(token):
            button = w.Button(description=f"continue with {shown(name)}", layout=w.Layout(width="auto"))
            button.on_click(lambda _, name=name: self.continue_with(name))
            buttons.append(button)
        self.choices.children = tuple(buttons)

    def text_before(self, index: int) -> str:
        """The answer's text before token ``index``."""
        return "".join(t.token for t in self.tokens[:index])

    def continue_with(self, alternative: str) -> list[TokenProb]:
        """Continue the text from the selected token, replaced by ``alternative``; show and return
        the continuation's tokens."""
        if self.on_continue is None or self.selected is None:
            return []
        start = self.prefix + self.text_before(self.selected) + alternative
        tokens = list(self.on_continue(start))
        self.continued.value = probs_html(tokens, prefix=start)
        return tokens


__all__ = ["ProbsView", "alternatives", "alternatives_html", "colour", "contrast", "probs_html", "text_colour"]
