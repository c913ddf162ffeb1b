"""How results look in a cell: the growing answer, its reasoning, error lines and tables.

The IPython side of the magic's output. Two ways to show a growing answer: display
handles updated in place (Jupyter front ends, and any shell whose display publisher
takes updates), rendered as Markdown while it streams unless plain text is asked for; or
progressive text on stdout wrapped at word boundaries (terminal IPython). The status line
is a display of its own: small and muted in Jupyter, one plain line in a terminal.
"""

from __future__ import annotations

import html
import shutil
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from IPython.display import DisplayHandle, display

from ..markdown import NO_MATHS, escape_money

if TYPE_CHECKING:
    from ..calls.run import Progress


def use_display_handles(shell: Any) -> bool:
    """True unless the shell is terminal IPython, which cannot update an output."""
    return not type(shell).__module__.startswith("IPython.terminal")


def answer_block(texts: Sequence[str], index: int, many: bool, markdown: bool = False) -> str:
    """Choice ``index``'s text, under a ``choice N`` heading when there are several (bold in Markdown)."""
    text = texts[index] if index < len(texts) else ""
    if not many:
        return text
    return f"**choice {index}**\n\n{text}" if markdown else f"[choice {index}]\n{text}"


#: Plain text in Jupyter: kept as sent, wrapped at word boundaries (the front ends' own ``<pre>``
#: style breaks words anywhere), in the notebook's code font.
TEXT_STYLE = ("white-space:pre-wrap;word-break:normal;overflow-wrap:break-word;margin:0;"
              "font-family:var(--jp-code-font-family,monospace);font-size:var(--jp-code-font-size,inherit)")
#: The status line: small, muted, in the theme's secondary text colour (any theme, VS Code included).
STATUS_STYLE = ("font-size:85%;color:var(--jp-ui-font-color2,inherit);opacity:0.85;margin-top:0.3em;"
                "font-family:var(--jp-ui-font-family,inherit)")


def answer_bundle(text: str, markdown: bool) -> dict[str, str]:
    """An answer's display data: Markdown with a plain-text fallback (a ``$`` before a digit is
    money, not TeX: :func:`escape_money`), or plain text that wraps at word boundaries in HTML
    front ends (and is never read as TeX)."""
    if markdown:
        return {"text/markdown": escape_money(text), "text/plain": text}
    return {"text/plain": text,
            "text/html": f'<div class="jo-answer {NO_MATHS}" style="{TEXT_STYLE}">{html.escape(text)}</div>'}


def status_bundle(line: str, kind: str = "status") -> dict[str, str]:
    """A muted line's display data (the status line, or ``kind="note"``): small HTML in the theme's
    secondary colour, the same line as plain text."""
    return {"text/plain": line, "text/html": f'<div class="jo-{kind}" style="{STATUS_STYLE}">{html.escape(line)}</div>'}


def _show_line(handles: bool, line: str, kind: str = "status") -> None:
    if handles:
        display(status_bundle(line, kind), raw=True)
    else:
        print(line, flush=True)


def show_note(shell: Any, line: str) -> None:
    """An informational note (which server answers, turns dropped, fewer choices than asked): muted
    HTML in the status line's style that wraps at words in Jupyter, a printed line in a terminal."""
    _show_line(use_display_handles(shell), line, "note")


def show_notes(shell: Any, notes: Sequence[str] = (), errors: Sequence[str] = ()) -> None:
    """What follows a call's status line, in the order every front end keeps: the notes (muted,
    :func:`show_note`), then the errors (red, :func:`error_line`)."""
    for note in notes:
        show_note(shell, note)
    for error in errors:
        error_line(error)


class WordWrap:
    """Writes growing text to a terminal, breaking lines at spaces before a word would cross the
    edge (a word is held back until the character after it arrives, or :meth:`flush`)."""

    def __init__(self, write: Any, width: int | None = None) -> None:
        self._write = write
        self._width = width or shutil.get_terminal_size((100, 24)).columns
        self._column = 0
        self._word = ""

    def feed(self, text: str) -> None:
        """Write ``text`` (the next piece of the answer)."""
        for char in text:
            if char.isspace():
                self._put_word()
                if char == "\n":
                    self._write("\n")
                    self._column = 0
                elif self._column < self._width:
                    self._write(char)
                    self._column += 1
            else:
                self._word += char

    def flush(self) -> None:
        """Write the word held back (the text is complete)."""
        self._put_word()

    def mark(self, marker: str) -> None:
        """Write a marker such as ``[answer] `` as it is (after the word held back)."""
        self._put_word()
        self._write(marker)
        tail = marker.rsplit("\n", 1)
        self._column = len(tail[-1]) + (self._column if len(tail) == 1 else 0)

    def _put_word(self) -> None:
        if not self._word:
            return
        if self._column and self._column + len(self._word) > self._width:
            self._write("\n")
            self._column = 0
        self._write(self._word)
        self._column += len(self._word)
        self._word = ""


REASONING_STYLE = "opacity:0.65;font-size:90%;white-space:pre-wrap;margin:0.2em 0 0.4em 1em"


def reasoning_bundle(text: str, done: bool) -> dict[str, str]:
    """The reasoning block: muted and collapsible in Jupyter (open while it streams, folded once the
    answer is complete), marked ``[reasoning]`` in plain text."""
    body = html.escape(text)
    html_text = (f'<details class="jo-reasoning"{"" if done else " open"}><summary>Reasoning</summary>'
                 f'<div style="{REASONING_STYLE}">{body}</div></details>')
    return {"text/html": html_text, "text/plain": f"[reasoning]\n{text}"}


def output_items(texts: Sequence[str], reasoning: str, blocks: int, markdown: bool,
                 show_reasoning: bool) -> tuple[dict[str, Any], ...]:
    """An ``Output`` widget's ``outputs`` for an answer so far (the form's view): the reasoning block
    when shown, then one display per choice (headed when there are several)."""
    if blocks > 1:
        answers = [answer_block(texts, i, True, markdown) + "\n" for i in range(max(blocks, len(texts)))]
    else:
        answers = [texts[0]] if texts and texts[0] else []
    shown = [(reasoning_bundle(reasoning, done=any(texts)), "reasoning")] if reasoning and show_reasoning else []
    shown += [(answer_bundle(text, markdown), "answer") for text in answers]
    return tuple({"output_type": "display_data", "data": data, "metadata": {"jupyter_openai": part}}
                 for data, part in shown)


class CellView:
    """Shows ``n`` growing answers in a cell, updated in place or printed progressively, with the
    reasoning text (when a server sends it, and ``reasoning`` is on) in a block of its own above."""

    def __init__(self, shell: Any, n: int = 1, markdown: bool = False, reasoning: bool = True) -> None:
        self._handles = use_display_handles(shell)
        self._n = max(1, n)
        self._markdown = markdown
        self._show_reasoning = reasoning
        self._shown: list[DisplayHandle] = []
        self._blocks: list[str] = []
        self._reasoning: DisplayHandle | None = None
        self._reasoning_text = ""
        self._printed = 0
        self._printed_reasoning = 0
        self._wrap = WordWrap(lambda text: sys.stdout.write(text)) if not self._handles else None  # stdout as now

    def update(self, progress: Progress) -> None:
        """Show what was received so far. Nothing is shown before the first text arrives (an error
        before any text leaves no empty output), and unchanged blocks are not re-sent."""
        if not self._handles:
            self._print_progress(progress)
            return
        self._update_reasoning(progress.reasoning, done=False)
        texts = progress.texts
        if not self._shown and not any(texts):
            return
        many = self._n > 1
        for index in range(self._n):
            block = answer_block(texts, index, many, self._markdown)
            data = answer_bundle(block, self._markdown)
            if index < len(self._shown):
                if block != self._blocks[index]:
                    self._shown[index].update(data, raw=True)
                    self._blocks[index] = block
            else:
                handle = DisplayHandle()
                handle.display(data, raw=True)
                self._shown.append(handle)
                self._blocks.append(block)

    def _update_reasoning(self, text: str, done: bool) -> None:
        if not self._show_reasoning or not text or (text == self._reasoning_text and not done):
            return
        data = reasoning_bundle(text, done)
        if self._reasoning is None:
            self._reasoning = DisplayHandle()
            self._reasoning.display(data, raw=True)
        else:
            self._reasoning.update(data, raw=True)
        self._reasoning_text = text

    def finish(self, progress: Progress) -> None:
        """Show the final state (the whole answer, the reasoning folded)."""
        texts = progress.texts
        if not self._handles:
            self._print_progress(progress)
            wrap = self._wrap
            assert wrap is not None
            for index in range(1, len(texts) if self._n > 1 else 0):
                wrap.mark(f"\n[choice {index}]\n")
                wrap.feed(texts[index])
            wrap.flush()
            print(flush=True)
            return
        self._update_reasoning(progress.reasoning, done=bool(any(texts)))
        self.update(progress)

    def status(self, line: str) -> None:
        """Show the status line under the answer: a muted display of its own, or a printed line."""
        _show_line(self._handles, line)

    def _print_progress(self, progress: Progress) -> None:
        wrap = self._wrap
        assert wrap is not None
        reasoning = progress.reasoning if self._show_reasoning else ""
        if len(reasoning) > self._printed_reasoning:
            if not self._printed_reasoning:
                wrap.mark("[reasoning] ")
            wrap.feed(reasoning[self._printed_reasoning:])
            self._printed_reasoning = len(reasoning)
        text = progress.texts[0] if progress.texts else ""
        if len(text) > self._printed:
            if not self._printed and self._printed_reasoning:
                wrap.mark("\n[answer] ")
            wrap.feed(text[self._printed:])
            self._printed = len(text)
        sys.stdout.flush()


def error_line(message: str) -> None:
    """Print one red line (stderr) without a traceback."""
    print(message, file=sys.stderr, flush=True)


class Table:
    """A small table with an HTML and a plain-text representation. Cells are one line, cut to
    ``width`` characters; with ``fit`` the widest columns are cut further until a text line fits
    in ``fit`` characters. In HTML a cut cell shows its whole text on hover."""

    def __init__(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int | None = 60,
                 fit: int | None = None, labels: dict[str, str] | None = None) -> None:
        self.rows = [{c: row.get(c) for c in columns} for row in rows]
        self.columns = list(columns)
        self._width = width
        self._fit = fit
        self._labels = [(labels or {}).get(c, c) for c in self.columns]  # the header shown for each column

    @staticmethod
    def _text(value: Any) -> str:
        return "" if value is None else " ".join(str(value).split())

    def _widths(self) -> list[int]:
        texts = [[self._text(r[c]) for c in self.columns] for r in self.rows]
        cap = self._width or 10**9
        widths = [max([len(c)] + [min(len(row[i]), cap) for row in texts]) for i, c in enumerate(self._labels)]
        if self._fit:
            while sum(widths) + 2 * (len(widths) - 1) > self._fit:
                widest = max(range(len(widths)), key=widths.__getitem__)
                floor = max(len(self._labels[widest]), 8)
                if widths[widest] <= floor:
                    break
                widths[widest] -= 1
        return widths

    @staticmethod
    def _cut(text: str, width: int) -> str:
        return text if len(text) <= width else text[: width - 1] + "…"

    def __repr__(self) -> str:
        if not self.rows:
            return "(empty)"
        widths = self._widths()
        cells = [[self._cut(self._text(r[c]), w) for c, w in zip(self.columns, widths, strict=True)] for r in self.rows]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self._labels, widths, strict=True)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        widths = self._widths() if self.rows else [len(c) for c in self._labels]
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self._labels)
        body = "".join("<tr>" + "".join(self._html_cell(self._text(r[c]), w)
                                        for c, w in zip(self.columns, widths, strict=True)) + "</tr>"
                       for r in self.rows)
        return f'<table class="{NO_MATHS}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def _html_cell(self, text: str, width: int) -> str:
        shown = self._cut(text, max(width, self._width or width) if not self._fit else width)
        title = f' title="{html.escape(text)}"' if shown != text else ""
        return f"<td{title}>{html.escape(shown)}</td>"


LOG_LINE = 100  # a terminal's width the log table fits in
LOG_HTML_LINE = 64  # characters the HTML table's cells may hold in all: a notebook 1024 px wide, file browser open
LOG_LABELS = {"timestamp": "time (UTC)", "prompt_tokens": "in", "completion_tokens": "out", "latency": "s",
              "execution_count": "cell", "requested_model": "asked for"}
#: The HTML log table's cells: one line each (JupyterLab's own table style lets them wrap), compact.
LOG_CELL_STYLE = "white-space:nowrap;padding:0.25em 0.35em"
#: Around the table: as wide as the output at most, scrolled sideways rather than cut if ever wider.
LOG_BOX_STYLE = "max-width:100%;overflow-x:auto"


class LogTable(Table):
    """The session log's table, with a line saying how many calls it leaves out (``total``: the
    calls logged; more than shown adds "last 10 of 18 calls; %complete_log -n 18 for all"). Its
    HTML cuts text harder than its plain text, so a row stays one line in a narrow notebook."""

    def __init__(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], total: int | None = None,
                 **options: Any) -> None:
        super().__init__(rows, columns, **options)
        shown = len(self.rows)
        self.hidden = max(0, (total or 0) - shown)  #: how many logged calls the table leaves out
        self.footer = (f"last {shown} of {total} calls; %complete_log -n {total} for all"
                       if self.hidden else "")

    def __repr__(self) -> str:
        text = super().__repr__()
        return f"{text}\n{self.footer}" if self.footer else text

    def _repr_html_(self) -> str:
        fit, self._fit = self._fit, (min(self._fit, LOG_HTML_LINE) if self._fit else None)
        try:
            table = super()._repr_html_()
        finally:
            self._fit = fit
        table = table.replace("<th>", f'<th style="{LOG_CELL_STYLE}">').replace("<td", f'<td style="{LOG_CELL_STYLE}"')
        footer = f'<div class="jo-note" style="{STATUS_STYLE}">{html.escape(self.footer)}</div>' if self.footer else ""
        return f'<div class="jo-log" style="{LOG_BOX_STYLE}">{table}</div>{footer}'


def log_table(records: Sequence[dict[str, Any]], columns: Sequence[str], full: bool = False,
              total: int | None = None) -> LogTable:
    """The session log as people read it: columns empty in every shown call left out, times as
    ``HH:MM:SS`` (UTC), latency in seconds to two decimals, long text cut to fit 100 columns
    (``full``: every column and every character); ``total``, the calls logged, says how many are
    not shown and how to see them."""
    rows = []
    for record in records:
        row = dict(record)
        stamp = row.get("timestamp")
        if isinstance(stamp, str) and "T" in stamp:
            row["timestamp"] = stamp.split("T", 1)[1][:8]
        if isinstance(row.get("latency"), (int, float)):
            row["latency"] = f"{row['latency']:.2f}"
        rows.append(row)
    shown = list(columns) if full else [c for c in columns if any(r.get(c) not in (None, "") for r in rows)]
    for row in rows:  # a count the server did not send stays None in the log; here it is said in words
        for name in ("prompt_tokens", "completion_tokens"):
            if row.get(name) is None and row.get("status") != "error" and name in shown:
                row[name] = "not reported"
    if full:
        return LogTable(rows, shown, total, width=None, labels=LOG_LABELS)
    return LogTable(rows, shown or list(columns), total, width=60, fit=LOG_LINE, labels=LOG_LABELS)
