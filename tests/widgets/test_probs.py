"""The probability view: coloured spans with the alternatives in their tooltips, the interactive
widget (select a token, re-weight by temperature, continue from an alternative)."""

from __future__ import annotations

import math
import re

from jupyter_openai.api.logprobs import TokenProb
from jupyter_openai.widgets.probs import (
    SCALE,
    ProbsView,
    alternatives,
    alternatives_html,
    colour,
    contrast,
    probs_html,
    text_colour,
)

TOKENS = [
    TokenProb("The", math.log(0.9), (("The", math.log(0.9)), ("A", math.log(0.08)))),
    TokenProb(" <b>", math.log(0.2), ((" cat", math.log(0.5)), (" <b>", math.log(0.2)))),
    TokenProb("\n", None, ()),
]


def test_each_token_is_a_span_coloured_by_its_probability() -> None:
    page = probs_html(TOKENS)
    spans = re.findall(r'<span class="jo-tok" style="--jo-p:([0-9.]+);background:([^;"]+);color:#111111" '
                       r'title="([^"]*)">', page)
    assert [s[0] for s in spans[:3]] == ["0.900", "0.200", "0.5"]
    assert spans[0][1] == colour(0.9) == "hsl(108, 70%, 80%)" and colour(None) == "hsl(0, 0%, 85%)"
    assert "> &lt;b&gt;</span>" in page and " <b>" not in page  # tokens are escaped
    assert spans[1][2] == "␣&lt;b&gt;: 20.0%\n  ␣cat  50.0%\n  ␣&lt;b&gt;  20.0%"
    assert "3 tokens" in page and "mean 55.0%" in page


def _rgb(css: str) -> tuple[float, ...]:
    """An ``hsl(H, S%, L%)`` or ``#rrggbb`` colour as sRGB values from 0 to 1."""
    import colorsys

    if css.startswith("#"):
        return tuple(int(css[i:i + 2], 16) / 255 for i in (1, 3, 5))
    hue, saturation, lightness = (float(v) for v in re.findall(r"[0-9.]+", css))
    return colorsys.hls_to_rgb(hue / 360, lightness / 100, saturation / 100)


def test_text_on_every_token_colour_meets_wcag_aa_in_any_theme() -> None:
    """Issue 22: the dark theme's white text (87 %) on the pastel buttons read at about 1.3:1. The
    text colour is set with the background, so the theme's own colour never applies."""
    assert contrast((1, 1, 1), (0, 0, 0)) == 21 and round(contrast((1, 1, 1), _rgb(colour(0.5))), 1) < 1.3
    for prob in [None, *SCALE, *(i / 100 for i in range(101))]:
        assert contrast(_rgb(text_colour(prob)), _rgb(colour(prob))) >= 4.5, prob
    view = ProbsView(TOKENS)
    assert view.temperature.style.description_width == "initial"  # "temperature" whole, not "temperat…"
    for button, token in zip(view.buttons, TOKENS, strict=True):
        assert button.style.button_color == colour(token.prob)
        assert contrast(_rgb(button.style.text_color), _rgb(button.style.button_color)) >= 4.5
    legend = re.findall(r'class="jo-tok" style="--jo-p:[0-9.]+;background:([^;"]+);color:([^"]+)">&nbsp;',
                        probs_html(TOKENS))
    assert len(legend) == len(SCALE) and all(contrast(_rgb(fg), _rgb(bg)) >= 4.5 for bg, fg in legend)
    assert "opacity" not in probs_html(TOKENS, prefix="so far")  # no faded text over the colours


def test_alternatives_at_another_temperature_are_an_illustration() -> None:
    cold = dict(alternatives(TOKENS[1], 0.5))
    assert cold[" cat"] > 0.5 / 0.7 and sum(cold.values()) == 1.0
    table = alternatives_html(TOKENS[1], 0.5, top_p=0.8)
    assert "re-weighted for temperature 0.5 (an illustration" in table and "◀ chosen" in table
    assert table.count("✓") == 1 and table.count("✗") == 1  # top_p 0.8 keeps " cat" only
    assert "as the server sent them" in alternatives_html(TOKENS[0], 1.0)


def test_the_widget_selects_reweights_and_continues() -> None:
    asked: list[str] = []

    def on_continue(text: str) -> list[TokenProb]:
        asked.append(text)
        return [TokenProb(" sat", math.log(0.6), ())]

    view = ProbsView(TOKENS, on_continue=on_continue, prefix="Once: ")
    assert len(view.buttons) == 3 and view.buttons[1].description == "␣<b>"
    assert view.buttons[0].style.button_color == colour(0.9)
    view.buttons[1].click()
    assert view.selected == 1 and "50.0%" in view.details.value
    assert [b.description for b in view.choices.children] == ["continue with ␣cat", "continue with ␣<b>"]
    view.temperature.value = 0.5
    assert "re-weighted for temperature 0.5" in view.details.value
    view.choices.children[0].click()
    assert asked == ["Once: The cat"]
    assert "Once: The cat</span>" in view.continued.value and "> sat</span>" in view.continued.value


def test_without_continuing_there_are_no_alternative_buttons() -> None:
    view = ProbsView(TOKENS)
    view.select(0)
    assert view.choices.children == () and "90.0%" in view.details.value
    assert view.continue_with("x") == []


ODD = [TokenProb("big", 1000.0, (("big", 1000.0), ("nan", float("nan")), ("inf", float("inf")))),
       TokenProb("low", -float("inf"), (("low", -1e400),)), TokenProb("nan", float("nan"), ())]


def test_odd_numbers_show_clamped_or_unknown_never_raise() -> None:
    """Tokens made by hand (or by an older reader) with a log probability of 1000, inf or NaN: the
    static view, the alternatives and the widget show them as 100%, <0.1% or unknown."""
    page = probs_html(ODD)
    assert page.count('class="jo-tok"') == 3 + 5  # the tokens, then the legend's scale
    assert "big: 100.0%\n  ␣" not in page and "big: 100.0%\n  big  100.0%\n  inf  100.0%" in page
    assert "low: &lt;0.1%" in page and "nan: ?" in page and colour(float("nan")) == colour(None)
    assert dict(alternatives(ODD[0], 0.5)) == {"big": 0.5, "inf": 0.5}
    assert "100.0%" in alternatives_html(ODD[0], 1.0, top_p=0.9)
    view = ProbsView(ODD)
    view.select(0)
    view.temperature.value = 0.0
    assert view.buttons[2].style.button_color == colour(None) and "100.0%" in view.details.value


def test_the_view_is_one_bundle_the_widget_with_its_html_fallback() -> None:
    bundle = ProbsView(TOKENS)._repr_mimebundle_()
    assert set(bundle) == {"application/vnd.jupyter.widget-view+json", "text/html", "text/plain"}
    assert bundle["text/html"] == probs_html(TOKENS) and bundle["text/plain"] == "The <b>\n"
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"]
