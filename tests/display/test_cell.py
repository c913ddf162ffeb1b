"""Tests of ``jupyter_openai.display.cell``: the status line, tables, error lines, the cell view and its reasoning.

The cell view is tested both ways it shows an answer: display handles updated in place
(inside a real InteractiveShell, captured with ``capture_output``) and plain progressive
text on stdout (terminal IPython).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell
from IPython.terminal.interactiveshell import TerminalInteractiveShell
from IPython.utils.capture import capture_output

from jupyter_openai.calls.run import Progress
from jupyter_openai.calls.summary import status_line
from jupyter_openai.display.cell import (
    CellView,
    Table,
    WordWrap,
    answer_bundle,
    error_line,
    output_items,
    reasoning_bundle,
    show_notes,
    status_bundle,
    use_display_handles,
)
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text

USAGE = {"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}


# -- status line -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("gpt-4o-mini", USAGE, 2.5, 0.5, "stop", "ok"),
            "gpt-4o-mini · 12 in / 40 out tokens · 2.50 s · 20.0 tok/s · finish: stop",
        ),
        (("m", None, 1.0, 0.2, "stop", "ok"), "m · tokens not reported by the server · 1.00 s · finish: stop"),
        (
            ("m", {"completion_tokens": 5}, 1.0, None, "length", "ok"),
            "m · 5 out tokens (in: not reported by the server) · 1.00 s · 5.0 tok/s · finish: length",
        ),
        ((None, None, None, None, None, "error"), "model not reported · error"),
        (("m", USAGE, 0.5, 0.5, None, "interrupted"),  # an answer in one piece: the rate over the whole call
         "m · 12 in / 40 out tokens · 0.50 s · 80.0 tok/s · interrupted"),
        (("m", None, 2.0, 1.0, "stop", "ok", 30),
         "m · ~30 out tokens (estimated from the stream; in: not reported by the server) · 2.00 s · ~30.0 tok/s · "
         "finish: stop"),
        (("m", {"prompt_tokens": 36}, 2.0, 1.0, "stop", "ok", 30),  # the offline server's tokenizer counted the prompt
         "m · 36 in / ~30 out tokens (out estimated from the stream) · 2.00 s · ~30.0 tok/s · finish: stop"),
        (("m", {"prompt_tokens": 36}, 2.0, 1.0, "stop", "ok"),
         "m · 36 in tokens (out: not reported by the server) · 2.00 s · finish: stop"),
        (("m", USAGE, 2.5, 0.5, "stop", "ok", 7),  # the server's count wins over the estimate
         "m · 12 in / 40 out tokens · 2.50 s · 20.0 tok/s · finish: stop"),
        (("m", None, 1.0, 0.2, "stop", "ok", 0), "m · tokens not reported by the server · 1.00 s · finish: stop"),
        (
            ("m", {"prompt_tokens": 3, "completion_tokens": 0}, 1.0, 0.1, "stop", "truncated"),
            "m · 3 in / 0 out tokens · 1.00 s · finish: stop · truncated",
        ),
    ],
    ids=["full", "no-usage", "partial-usage", "error-nothing", "one-piece", "estimated", "counted-in-estimated-out",
         "counted-in-only", "reported-wins",
         "nothing-streamed", "zero-tokens"],
)
def test_status_line(args: tuple, expected: str) -> None:
    assert status_line(*args) == expected
    assert "?" not in expected  # issue 22: no bare "?" for what a server did not say


def test_error_line_is_one_line_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    error_line("429 Rate limited: slow down [request id req_1]")
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "429 Rate limited: slow down [request id req_1]\n"


# -- tables ----------------------------------------------------------------------------
def test_table_text_aligns_columns_and_blanks_none() -> None:
    table = Table([{"id": "a", "n": 1}, {"id": "longer-id", "n": None}], ["id", "n"])
    assert repr(table).splitlines() == ["id         n", "a          1", "longer-id"]


def test_table_cells_are_one_line_and_cut_to_width() -> None:
    table = Table([{"text": "line one\nline   two " + "x" * 50}], ["text"], width=20)
    (row,) = repr(table).splitlines()[1:]
    assert row == "line one line two x…"
    assert len(row) == 20


def test_table_keeps_column_order_and_fills_missing_keys() -> None:
    table = Table([{"b": 2, "a": 1, "extra": "ignored"}], ["a", "b", "c"])
    assert table.columns == ["a", "b", "c"]
    assert table.rows == [{"a": 1, "b": 2, "c": None}]
    assert "ignored" not in repr(table)


def test_empty_table() -> None:
    table = Table([], ["id"])
    assert repr(table) == "(empty)"
    assert table._repr_html_() == ('<table class="tex2jax_ignore mathjax_ignore"><thead><tr><th>id</th></tr></thead>'
                                   "<tbody></tbody></table>")


def test_table_html_escapes_cells_and_headers() -> None:
    html = Table([{"<col>": "<script>alert('x')</script> & more"}], ["<col>"])._repr_html_()
    assert "<script>" not in html
    assert "<th>&lt;col&gt;</th>" in html
    assert "<td>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; more</td>" in html


# -- where answers go ------------------------------------------------------------------
def test_display_handles_everywhere_but_terminal_ipython() -> None:
    assert use_display_handles(InteractiveShell.__new__(InteractiveShell))
    assert not use_display_handles(TerminalInteractiveShell.__new__(TerminalInteractiveShell))


@pytest.fixture
def terminal_view() -> CellView:
    return CellView(TerminalInteractiveShell.__new__(TerminalInteractiveShell))


def test_terminal_view_prints_whole_words_as_they_complete(terminal_view: CellView,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    steps = []
    for texts in (["Hel"], ["Hello"], ["Hello"], ["Hello, wor"]):
        terminal_view.update(Progress(texts))
        steps.append(capsys.readouterr().out)
    terminal_view.finish(Progress(["Hello, world"]))
    steps.append(capsys.readouterr().out)
    assert steps == ["", "", "", "Hello, ", "world\n"]


def test_word_wrap_breaks_lines_between_words() -> None:
    written: list[str] = []
    wrap = WordWrap(written.append, width=12)
    for piece in ("colla", "borate on ", "notebooks\nand mod", "els togetherlongerthanaline end"):
        wrap.feed(piece)
    wrap.flush()
    lines = "".join(written).split("\n")
    assert lines == ["collaborate ", "on notebooks", "and models ", "togetherlongerthanaline", "end"]
    assert all(len(line) <= 12 for line in lines if " " in line.strip())  # only a word wider than a line overflows


def test_word_wrap_counts_markers_in_the_line() -> None:
    written: list[str] = []
    wrap = WordWrap(written.append, width=14)
    wrap.mark("[answer] ")
    wrap.feed("one two three")
    wrap.flush()
    assert "".join(written) == "[answer] one \ntwo three"


def test_terminal_view_prints_extra_choices_at_the_end(capsys: pytest.CaptureFixture[str]) -> None:
    view = CellView(TerminalInteractiveShell.__new__(TerminalInteractiveShell), n=2)
    view.update(Progress(["first", "sec"]))
    view.finish(Progress(["first answer", "second answer"]))
    assert capsys.readouterr().out == "first answer\n[choice 1]\nsecond answer\n"


# -- display handles (needs the shell singleton) ----------------------------------------
def _published(cap: capture_output) -> list[tuple[str, bool, dict]]:
    return [(o.transient["display_id"], o.update, o.data) for o in cap.outputs]


def test_handle_view_shows_nothing_until_text_arrives(shell: InteractiveShell) -> None:
    view = CellView(shell)
    with capture_output() as cap:
        view.update(Progress([]))
        view.update(Progress([""]))
        view.finish(Progress([]))
    assert cap.outputs == []


def test_handle_view_updates_one_output_in_place(shell: InteractiveShell) -> None:
    view = CellView(shell)
    with capture_output() as cap:
        view.update(Progress(["He"]))
        view.update(Progress(["Hello"]))
        view.update(Progress(["Hello"]))  # unchanged: nothing is re-sent
        view.finish(Progress(["Hello!"]))
    published = _published(cap)
    assert [(update, data["text/plain"]) for _, update, data in published] == [
        (False, "He"),
        (True, "Hello"),
        (True, "Hello!"),
    ]
    assert len({display_id for display_id, _, _ in published}) == 1


def test_handle_view_gives_each_choice_its_block(shell: InteractiveShell) -> None:
    view = CellView(shell, n=2)
    with capture_output() as cap:
        view.update(Progress(["a"]))
        view.update(Progress(["ab", "x"]))
        view.finish(Progress(["abc", "xy"]))
    last: dict[str, str] = {}
    for display_id, _, data in _published(cap):
        last[display_id] = data["text/plain"]
    assert list(last.values()) == ["[choice 0]\nabc", "[choice 1]\nxy"]


def test_handle_view_renders_markdown_as_it_streams(shell: InteractiveShell) -> None:
    view = CellView(shell, markdown=True)
    with capture_output() as cap:
        view.update(Progress(["# Ti"]))
        view.update(Progress(["# Title\n*b*"]))
        view.finish(Progress(["# Title\n*bold*"]))
    published = _published(cap)
    assert [(update, data) for _, update, data in published] == [
        (False, {"text/markdown": "# Ti", "text/plain": "# Ti"}),
        (True, {"text/markdown": "# Title\n*b*", "text/plain": "# Title\n*b*"}),
        (True, {"text/markdown": "# Title\n*bold*", "text/plain": "# Title\n*bold*"}),
    ]


def test_answer_bundle_as_plain_text_wraps_at_words_and_escapes() -> None:
    bundle = answer_bundle("a <b> & **c**", markdown=False)
    assert bundle["text/plain"] == "a <b> & **c**"
    assert bundle["text/html"].endswith(">a &lt;b&gt; &amp; **c**</div>")
    assert "white-space:pre-wrap;word-break:normal" in bundle["text/html"]
    assert answer_bundle("**c**", markdown=True) == {"text/markdown": "**c**", "text/plain": "**c**"}


def test_markdown_answers_escape_money_and_keep_the_text_as_sent() -> None:
    text = "It costs $0.15 per million tokens, $x$ is maths"
    assert answer_bundle(text, markdown=True) == {
        "text/markdown": r"It costs \$0.15 per million tokens, $x$ is maths", "text/plain": text}
    plain = answer_bundle(text, markdown=False)
    assert plain["text/plain"] == text  # plain text: as sent, and its HTML never typeset as TeX
    assert plain["text/html"].startswith('<div class="jo-answer tex2jax_ignore mathjax_ignore"')
    assert Table([{"a": "$5 and $6"}], ["a"])._repr_html_().startswith('<table class="tex2jax_ignore mathjax_ignore">')
    (item,) = output_items([text], "", 1, True, True)  # the form's output too
    assert item["data"]["text/markdown"].startswith(r"It costs \$0.15")


def test_show_notes_shows_notes_muted_then_errors_red(shell: InteractiveShell) -> None:
    with capture_output() as cap:
        show_notes(shell, ["Note: one", "Note: two"], ["It failed"])
    assert [o.data["text/plain"] for o in cap.outputs] == ["Note: one", "Note: two"]
    assert all(o.data["text/html"].startswith('<div class="jo-note"') for o in cap.outputs)
    assert cap.stderr == "It failed\n"


def test_status_bundle_is_muted_html_with_the_line_as_text() -> None:
    bundle = status_bundle("m · 1 in / 2 out tokens · finish: <stop>")
    assert bundle["text/plain"] == "m · 1 in / 2 out tokens · finish: <stop>"
    assert bundle["text/html"].startswith('<div class="jo-status" style="font-size:85%;color:var(--jp-ui-font-color2,')
    assert bundle["text/html"].endswith(">m · 1 in / 2 out tokens · finish: &lt;stop&gt;</div>")


def test_status_shows_as_a_display_or_a_printed_line(shell: InteractiveShell, terminal_view: CellView,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    with capture_output() as cap:
        CellView(shell).status("m · finish: stop")
    assert [o.data for o in cap.outputs] == [status_bundle("m · finish: stop")] and cap.stdout == ""
    terminal_view.status("m · finish: stop")
    assert capsys.readouterr().out == "m · finish: stop\n"


# -- reasoning (issue 11) ----------------------------------------------------------------------
def test_reasoning_bundle_is_escaped_open_while_streaming_and_folded_when_done() -> None:
    streaming, done = reasoning_bundle("a < b & <script>", False), reasoning_bundle("a < b & <script>", True)
    assert streaming["text/html"].startswith('<details class="jo-reasoning" open><summary>Reasoning</summary>')
    assert done["text/html"].startswith('<details class="jo-reasoning"><summary>Reasoning</summary>')
    assert "a &lt; b &amp; &lt;script&gt;</div></details>" in done["text/html"] and "<script>" not in done["text/html"]
    assert done["text/plain"] == streaming["text/plain"] == "[reasoning]\na < b & <script>"


def test_handle_view_shows_reasoning_in_its_own_block_first(shell: InteractiveShell) -> None:
    view = CellView(shell)
    with capture_output() as cap:
        view.update(Progress([], "Thinking"))
        view.update(Progress([""], "Thinking hard."))
        view.update(Progress(["Ans"], "Thinking hard."))
        view.finish(Progress(["Answer"], "Thinking hard."))
    published = _published(cap)
    reasoning_id = published[0][0]
    assert [(u, d["text/plain"]) for i, u, d in published if i == reasoning_id] == [
        (False, "[reasoning]\nThinking"), (True, "[reasoning]\nThinking hard."), (True, "[reasoning]\nThinking hard.")]
    assert [" open>" in d["text/html"] for i, _, d in published if i == reasoning_id] == [True, True, False]
    assert [(u, d) for i, u, d in published if i != reasoning_id] == [
        (False, answer_bundle("Ans", False)), (True, answer_bundle("Answer", False))]


def test_handle_view_keeps_reasoning_open_when_no_answer_came(shell: InteractiveShell) -> None:
    view = CellView(shell)
    with capture_output() as cap:
        view.finish(Progress([""], "Only thoughts."))
    (only,) = _published(cap)
    assert " open>" in only[2]["text/html"]


def test_handle_view_without_reasoning_shows_only_the_answer(shell: InteractiveShell) -> None:
    view = CellView(shell, reasoning=False)
    with capture_output() as cap:
        view.update(Progress(["Ans"], "Thinking"))
        view.finish(Progress(["Answer"], "Thinking"))
    assert [data for _, _, data in _published(cap)] == [answer_bundle("Ans", False), answer_bundle("Answer", False)]


def test_terminal_view_marks_reasoning_and_answer(capsys: pytest.CaptureFixture[str]) -> None:
    view = CellView(TerminalInteractiveShell.__new__(TerminalInteractiveShell))
    steps = []
    for progress in (Progress([], "Hmm"), Progress([""], "Hmm, yes."), Progress(["An"], "Hmm, yes.")):
        view.update(progress)
        steps.append(capsys.readouterr().out)
    view.finish(Progress(["Answer"], "Hmm, yes."))
    steps.append(capsys.readouterr().out)
    assert steps == ["[reasoning] ", "Hmm, ", "yes.\n[answer] ", "Answer\n"]


def test_terminal_view_without_reasoning(capsys: pytest.CaptureFixture[str]) -> None:
    view = CellView(TerminalInteractiveShell.__new__(TerminalInteractiveShell), reasoning=False)
    view.update(Progress(["An"], "Hmm"))
    view.finish(Progress(["Answer"], "Hmm"))
    assert capsys.readouterr().out == "Answer\n"


def test_terminal_ipython_prints_reasoning_then_answer(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """The real terminal IPython, in a child process, against the test server."""
    cell = ("%load_ext jupyter_openai\n%complete -m fake-reasoner one two three\n"
            "%complete -m fake-reasoner-ollama --no-reasoning one two three\n%complete -m fake-refuser a b")
    env = {**os.environ, "IPYTHONDIR": str(tmp_path), "OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.url}
    done = subprocess.run([sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor",
                           "--HistoryManager.enabled=False", "-c", cell],
                          capture_output=True, text=True, env=env, timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[:2] == [f"[reasoning] {reasoning_text('one two three')}", "[answer] Echo: three two one"]
    assert lines[2].startswith("fake-reasoner · 3 in / 16 out tokens (12 reasoning) · ")
    assert lines[3:5] == ["Echo: three two one", lines[4]] and lines[4].startswith("fake-reasoner-ollama · ")
    assert lines[5:] == ["", lines[6]] and lines[6].startswith("fake-refuser · 2 in / 8 out tokens · ")
    assert done.stderr == f"Refused: {REFUSAL_TEXT}\n"


def test_the_log_table_words_token_counts_a_server_did_not_send() -> None:
    """Issue 22: the log keeps None for a count a server did not send; its table says so in words
    (a failed call's empty counts stay empty)."""
    from jupyter_openai.display.cell import log_table

    records = [{"id": 1, "model": "m", "status": "ok", "prompt_tokens": 36, "completion_tokens": None},
               {"id": 2, "model": "m", "status": "ok", "prompt_tokens": None, "completion_tokens": 5},
               {"id": 3, "model": "m", "status": "error", "prompt_tokens": None, "completion_tokens": None}]
    table = log_table(records, ["id", "model", "status", "prompt_tokens", "completion_tokens"])
    assert [(r["prompt_tokens"], r["completion_tokens"]) for r in table.rows] == [
        (36, "not reported"), ("not reported", 5), (None, None)]
    assert records[0]["completion_tokens"] is None  # the log itself is unchanged
    assert "?" not in repr(table)
