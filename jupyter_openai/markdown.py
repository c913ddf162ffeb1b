"""Text that is not mathematics: JupyterLab reads ``$…$`` as TeX in Markdown and typesets HTML outputs
and widgets too, so "$0.15 (input) and $0.60" would render as maths.

:func:`escape_money` escapes a ``$`` directly before a digit in Markdown (money), outside code;
:data:`NO_MATHS` is the class that keeps MathJax out of HTML showing text as it is. No IPython here.
"""

from __future__ import annotations

import re

#: The class that keeps MathJax from reading ``$…$`` as TeX in HTML that shows text as it is (JupyterLab
#: typesets HTML outputs too): ``mathjax_ignore`` for MathJax 3 (JupyterLab 4), ``tex2jax_ignore`` for MathJax 2.
NO_MATHS = "tex2jax_ignore mathjax_ignore"
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN = re.compile(r"(`+)(?:.*?[^`])??\1(?!`)", re.S)
_MONEY = re.compile(r"(?<![\\$])\$(?=\d)")


def escape_money(markdown: str) -> str:
    """``markdown`` with each ``$`` directly before a digit escaped (``\\$5``), outside code spans
    and code blocks: JupyterLab reads ``$…$`` as TeX, so "$0.15 (input) and $0.60" would
    render as mathematics. Maths models write (``$x^2$``, ``$$…$$``) is left as it is."""
    if "$" not in markdown:
        return markdown
    lines, fence, indented, blank = [], "", False, True
    for line in markdown.split("\n"):
        opened = _FENCE.match(line)
        if fence:  # inside a fenced block until its closing fence (a longer or equal run of its character)
            if opened and opened.group(1)[0] == fence[0] and len(opened.group(1)) >= len(fence) \
                    and not line.strip().lstrip(fence[0]):
                fence = ""
        elif opened:
            fence = opened.group(1)
        else:
            indented = (line.startswith(("    ", "\t")) and (blank or indented)) if line.strip() else indented
            if not indented:
                line = _escape_outside_spans(line)
        blank = not line.strip()
        lines.append(line)
    return "\n".join(lines)


def _escape_outside_spans(line: str) -> str:
    out, at = [], 0
    for span in _CODE_SPAN.finditer(line):
        out += [_MONEY.sub(r"\\$", line[at:span.start()]), span.group(0)]
        at = span.end()
    out.append(_MONEY.sub(r"\\$", line[at:]))
    return "".join(out)
