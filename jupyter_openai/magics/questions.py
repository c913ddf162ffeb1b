"""Input cleanup for ``%complete`` prompts that end in ``?``.

IPython reads any line ending in ``?`` as a help request, so ``%complete What is the capital
of France?`` would never be sent. :func:`keep_question_prompts` turns such a line into the
equivalent ``run_line_magic`` call. It touches only real magic lines: not a cell magic's
body, not a line inside a triple-quoted string, not a line continued from the one before;
``%complete?`` alone still shows the help.
"""

from __future__ import annotations

import re

#: Compiled on the first line that names ``%complete`` (re caches it), not when the extension loads.
_QUESTION = r"(\s*)%complete[ \t]+(\S.*?\?)[ \t]*(\n?)$"


def _starts_a_statement(before: list[str]) -> bool:
    """True when the code in ``before`` is complete, so the next line starts a new statement
    (no open triple-quoted string, bracket or backslash continuation)."""
    if not before:
        return True
    import io
    import tokenize  # only when a line looks like a %complete prompt ending in "?"

    if before[-1].rstrip("\r\n").endswith("\\"):
        return False
    try:
        for _ in tokenize.generate_tokens(io.StringIO("".join(before)).readline):
            pass
    except tokenize.TokenError:  # "EOF in multi-line string / statement"
        return False
    except (SyntaxError, ValueError):  # IPython syntax tokenize does not know: not an open string
        return True
    return True


def keep_question_prompts(lines: list[str]) -> list[str]:
    """Rewrite ``%complete … ?`` lines as ``get_ipython().run_line_magic('complete', …)``."""
    if not lines or lines[0].lstrip().startswith("%%"):  # cell magic bodies are text
        return lines
    out = list(lines)
    for number, line in enumerate(lines):
        match = re.match(_QUESTION, line) if "%complete" in line else None
        if match and _starts_a_statement(lines[:number]):
            indent, prompt, newline = match.groups()
            out[number] = f"{indent}get_ipython().run_line_magic('complete', {prompt!r}){newline}"
    return out
