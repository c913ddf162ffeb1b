"""Tests of ``%%complete_batch`` and ``%%complete --schema`` in a real shell, over real HTTP to the test
server: options as ``%%complete``'s, the result in ``-o NAME`` or as the cell's value, the cache, the
log, user mistakes as one-line UsageErrors, load and unload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_openai.magics.batch import BatchMagics
from jupyter_openai.session.log import session_log
from tests.servers.fake import FakeOpenAIServer
from tests.support.shown import notes

SCHEMA = {"type": "object", "properties": {"label": {"enum": ["good", "bad"]}}, "required": ["label"]}


@pytest.fixture
def batch_shell(shell: InteractiveShell, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InteractiveShell:
    """The shell with a DataFrame ``reviews`` and the batch cache in tmp_path."""
    monkeypatch.setenv("JUPYTER_OPENAI_BATCH_CACHE", str(tmp_path / "batch.sqlite"))
    shell.user_ns["reviews"] = pd.DataFrame({"text": ["loved it", "hated it", "meh"]})
    return shell


def run(shell: InteractiveShell, cell: str) -> tuple[Any, capture_output]:
    with capture_output() as cap:
        result = shell.run_cell(cell)
    return result.result, cap


def test_the_cell_is_a_template_over_the_rows(batch_shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    value, cap = run(batch_shell, "%%complete_batch reviews -o out --max-tokens 12 -t 0 -s 'Be brief.' -q\n"
                                  "Review: {text}\n")
    assert value is None and cap.stdout == ""
    out = batch_shell.user_ns["out"]
    assert list(out.answer) == ["Echo: it loved Review:", "Echo: it hated Review:", "Echo: meh Review:"]
    bodies = [r.body for r in server.requests]
    assert all(b["max_tokens"] == 12 and b["temperature"] == 0 and b["model"] == "fake-chat" for b in bodies)
    assert all(b["messages"][0] == {"role": "system", "content": "Be brief."} for b in bodies)
    rows = [r for r in session_log if r["source"] == "batch"]
    assert sorted(r["row_key"] for r in rows) == ["0", "1", "2"] and rows[0]["execution_count"] is not None
    assert session_log[-1]["source"] == "batch-summary"


def test_without_out_the_result_is_the_cells_value_and_a_rerun_is_cached(batch_shell: InteractiveShell,
                                                                         server: FakeOpenAIServer) -> None:
    first, cap = run(batch_shell, "%%complete_batch reviews\n{text}")
    assert isinstance(first, pd.DataFrame) and list(first.status) == ["ok"] * 3
    assert any("3 rows: 3 ok" in note for note in notes(cap)) and "3 rows:" not in cap.stdout  # a muted note
    server.reset()
    again, cap = run(batch_shell, "%%complete_batch reviews\n{text}")
    assert server.requests == [] and list(again.cached) == [True] * 3
    assert any("3 ok (3 from the cache)" in note for note in notes(cap))
    _, _ = run(batch_shell, "%%complete_batch reviews --no-cache -q\n{text}")
    assert len(server.requests) == 3


def test_a_schema_variable_gives_columns(batch_shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    batch_shell.user_ns["label_schema"] = SCHEMA
    batch_shell.user_ns["answers"] = pd.DataFrame({"a": ['{"label": "good"}', '{"label": "so-so"}']})
    out, _ = run(batch_shell, "%%complete_batch answers --schema label_schema -q --no-cache\n{a}")
    assert server.requests[0].body["response_format"]["json_schema"]["schema"] == SCHEMA
    assert list(out.status) == ["ok", "error"] and out.label.iloc[0] == "good"
    assert "does not match the schema" in out.error.iloc[1]


@pytest.mark.parametrize(("line", "words"), [
    ("%%complete_batch nothing_here", "no variable named 'nothing_here'"),
    ("%%complete_batch reviews -o 2x", "not a variable name"),
    ("%%complete_batch reviews --temprature 1", "did you mean --temperature"),
    ("%%complete_batch reviews -t 5", "temperature"),
    ("%%complete_batch reviews -e completions --schema '{}'", "chat and responses"),
    ("%%complete_batch reviews --schema '{not json'", "not JSON"),
])
def test_user_mistakes_are_one_line_usage_errors(batch_shell: InteractiveShell, server: FakeOpenAIServer,
                                                 line: str, words: str) -> None:
    with pytest.raises(UsageError, match=words):
        run(batch_shell, line + "\n{text}")
    assert server.requests == []


def test_a_template_naming_no_column_is_one_line_before_any_request(batch_shell: InteractiveShell,
                                                                    server: FakeOpenAIServer) -> None:
    with capture_output() as cap, pytest.raises(UsageError) as caught:
        batch_shell.run_cell("%%complete_batch reviews -q\nTitle: {title}, text: {text}")
    assert str(caught.value) == ("the template names {title}, which is not a column (columns: text; "
                                 "write {{ }} for braces)")
    assert "Traceback" not in cap.stdout + cap.stderr and server.requests == [] and len(session_log) == 0


def test_help_and_load_unload(batch_shell: InteractiveShell) -> None:
    doc = batch_shell.find_cell_magic("complete_batch").__doc__
    assert "--concurrency" in doc and "--schema" in doc and "--max-tokens" in doc
    batch_shell.run_line_magic("unload_ext", "jupyter_openai")
    assert batch_shell.find_cell_magic("complete_batch") is None
    assert BatchMagics.__name__ not in batch_shell.magics_manager.registry
    batch_shell.run_line_magic("load_ext", "jupyter_openai")
    assert batch_shell.find_cell_magic("complete_batch") is not None


# == %%complete --schema ==================================================================
def test_complete_schema_sends_the_format_and_checks_the_answer(batch_shell: InteractiveShell,
                                                                server: FakeOpenAIServer) -> None:
    batch_shell.user_ns["label_schema"] = SCHEMA
    _, cap = run(batch_shell, '%%complete --schema label_schema -o got\n{"label": "bad"}')
    assert json.loads(batch_shell.user_ns["got"]) == {"label": "bad"}
    assert session_log[-1]["status"] == "ok"
    assert server.requests[-1].body["response_format"]["type"] == "json_schema"
    _, cap = run(batch_shell, '%%complete --schema label_schema\n{"label": "neither"}')
    assert session_log[-1]["status"] == "error" and "does not match the schema" in session_log[-1]["error"]
    assert "does not match the schema" in cap.stderr + cap.stdout
    _, _ = run(batch_shell, '%%complete -e responses --schema \'{"type": "object"}\'\n{"x": 1}')
    assert server.requests[-1].body["text"]["format"]["schema"] == {"type": "object"}
    assert session_log[-1]["status"] == "ok"


def test_complete_schema_outside_the_strict_subset_is_sent_strict_form_with_a_note(batch_shell: InteractiveShell,
                                                                                   server: FakeOpenAIServer) -> None:
    """A pydantic model with a defaulted field (a documented input): before, strict with an optional field,
    which OpenAI (and the test server) answer with a 400."""
    pydantic = pytest.importorskip("pydantic")

    class Review(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        label: str
        note: str | None = None

    batch_shell.user_ns["Review"] = Review
    _, cap = run(batch_shell, '%%complete -e responses --schema Review -o got\n{"label": "good", "note": null}')
    assert session_log[-1]["status"] == "ok", session_log[-1]["error"]
    assert json.loads(batch_shell.user_ns["got"]) == {"label": "good", "note": None}
    fmt = server.requests[-1].body["text"]["format"]
    assert fmt["strict"] is True and fmt["schema"]["required"] == ["label", "note"]
    assert any("optional note now required and nullable" in note for note in notes(cap))  # a muted note


@pytest.mark.parametrize("ref, words", [("#/$defs/Nope", "points to nothing"), ("REMOTE", "never fetched")])
def test_complete_schema_that_cannot_be_checked_fails_before_sending(batch_shell: InteractiveShell,
                                                                     server: FakeOpenAIServer, body_server: Any,
                                                                     ref: str, words: str) -> None:
    batch_shell.user_ns["bad"] = {"type": "object", "properties": {
        "a": {"$ref": body_server.url + "/s.json" if ref == "REMOTE" else ref}}}
    logged = len(session_log)
    for cell in ('%%complete --schema bad -o got\n{"a": 1}',
                 "%%complete_batch reviews --schema bad --no-cache -q\n{text}"):
        with pytest.raises(UsageError, match=words) as info:  # a one-line usage error: no traceback shown
            run(batch_shell, cell)
        assert "\n" not in str(info.value)
    assert server.requests == [] and body_server.hits == 0 and len(session_log) == logged
    assert "got" not in batch_shell.user_ns
