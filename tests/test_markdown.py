"""Tests of ``jupyter_openai.markdown``: a ``$`` before a digit is money, not TeX (JupyterLab renders
``$…$`` in Markdown as mathematics), outside code spans and code blocks; maths stays maths."""

from __future__ import annotations

import pytest

from jupyter_openai.markdown import NO_MATHS, escape_money


@pytest.mark.parametrize(("markdown", "shown"), [
    ("$0.15 (input) and $0.60 (output)", r"\$0.15 (input) and \$0.60 (output)"),
    ("US$3, -$2 and ($4)", r"US\$3, -\$2 and (\$4)"),
    (r"already \$5", r"already \$5"),
    ("maths $x^2$, $\\alpha$ and $$\\sum_i x_i$$", "maths $x^2$, $\\alpha$ and $$\\sum_i x_i$$"),
    ("$$1 + 1$$", "$$1 + 1$$"),
    ("`$5` and ``a ` $6`` cost $7", r"`$5` and ``a ` $6`` cost \$7"),
    ("```python\nprice = '$5'\n```\nthat is $5", "```python\nprice = '$5'\n```\nthat is \\$5"),
    ("~~~\n$1\n~~~~\n$2", "~~~\n$1\n~~~~\n\\$2"),
    ("```\nstill streaming $5", "```\nstill streaming $5"),  # an open fence: code until it closes
    ("text\n\n    code = '$5'\n\n$6", "text\n\n    code = '$5'\n\n\\$6"),
    ("no dollars", "no dollars"),
])
def test_escape_money(markdown: str, shown: str) -> None:
    assert escape_money(markdown) == shown


def test_the_no_maths_class_names_mathjax_3_and_2() -> None:
    assert NO_MATHS.split() == ["tex2jax_ignore", "mathjax_ignore"]
