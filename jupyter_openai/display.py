"""How results look in a cell: the growing answer, error lines and tables.

The IPython side of the magic's output. Two ways to show a growing answer: display
handles updated in place (Jupyter front ends, and any shell whose display publisher
takes updates), or plain progressive text on stdout (terminal IPython).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Sequence
from typing import Any

from IPython.display import DisplayHandle, display


def use_display_handles(shell: Any) -> bool:
    """True unless the shell is terminal IPython, which cannot update an output."""
    return not type(shell).__module__.startswith("IPython.terminal")


def _block(texts: Sequence[str], index: int, many: bool) -> str:
    text = texts[index] if index < len(texts) else ""
    return f"[choice {index}]\n{text}" if many else text


class CellView:
    """Shows ``n`` growing answers in a cell, updated in place or printed progressively."""

    def __init__(self, shell: Any, n: int = 1, markdown: bool = False) -> None:
        self._handles = use_display_handles(shell)
        self._n = max(1, n)
        self._markdown = markdown
        self._shown: list[DisplayHandle] = []
        self._blocks: list[str] = []
        self._printed = 0

    def update(self, texts: Sequence[str]) -> None:
        """Show the texts received so far. Nothing is shown before the first text arrives
        (an error before any text leaves no empty output), and unchanged blocks are not re-sent."""
        if not self._handles:
            self._print_progress(texts)
            return
        if not self._shown and not any(texts):
            return
        many = self._n > 1
        for index in range(self._n):
            block = _block(texts, index, many)
            data = {"text/plain": block}
            if index < len(self._shown):
                if block != self._blocks[index]:
                    self._shown[index].update(data, raw=True)
                    self._blocks[index] = block
            else:
                handle = DisplayHandle()
                handle.display(data, raw=True)
                self._shown.append(handle)
                self._blocks.append(block)

    def finish(self, texts: Sequence[str]) -> None:
        """Show the final texts (rendered as Markdown when asked)."""
        if not self._handles:
            self._print_progress(texts)
            if self._n > 1:
                for index in range(1, len(texts)):
                    print(f"\n[choice {index}]\n{texts[index]}", end="")
            print(flush=True)
            return
        if not self._markdown or (not self._shown and not any(texts)):
            self.update(texts)
            return
        many = self._n > 1
        for index in range(self._n):
            text = _block(texts, index, many)
            data = {"text/markdown": text, "text/plain": text}
            if index < len(self._shown):
                self._shown[index].update(data, raw=True)
            else:
                display(data, raw=True)

    def _print_progress(self, texts: Sequence[str]) -> None:
        text = texts[0] if texts else ""
        if len(text) > self._printed:
            sys.stdout.write(text[self._printed:])
            sys.stdout.flush()
            self._printed = len(text)


def error_line(message: str) -> None:
    """Print one red line (stderr) without a traceback."""
    print(message, file=sys.stderr, flush=True)


class Table:
    """A small table with an HTML and a plain-text representation."""

    def __init__(self, rows: Sequence[dict[str, Any]], columns: Sequence[str], width: int = 60) -> None:
        self.rows = [{c: row.get(c) for c in columns} for row in rows]
        self.columns = list(columns)
        self._width = width

    def _cell(self, value: Any) -> str:
        text = "" if value is None else " ".join(str(value).split())
        return text if len(text) <= self._width else text[: self._width - 1] + "…"

    def __repr__(self) -> str:
        cells = [[self._cell(r[c]) for c in self.columns] for r in self.rows]
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(self.columns, widths, strict=False)).rstrip()]
        lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip() for row in cells]
        return "\n".join(lines) if self.rows else "(empty)"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(self._cell(r[c]))}</td>" for c in self.columns) + "</tr>"
            for r in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
