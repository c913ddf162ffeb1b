"""The magic's own edges (issue 12): unusable option values are one-line usage errors before any
request (family 13), Ctrl-C while the answer or the status line is shown (family 9), and
``%complete_log --save`` to a folder that does not exist. Through a real shell and the test server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.display.cell import CellView
from jupyter_openai.session.log import session_log
from tests.servers.fake import FakeOpenAIServer
from tests.support.shown import status

PROMPT = "one two three"
ANSWER = "Echo: three two one"


def api_requests(server: FakeOpenAIServer) -> list[Any]:
    return [r for r in server.requests if r.path.startswith("/v1/")]


# ---------------------------------------------------------------- empty or unusable option values
@pytest.mark.parametrize("line, message", [
    ('-m ""', "the model is empty"),
    ("--model=", "the model is empty"),
    ("-m ''", "the model is empty"),
    ('-o ""', "--out needs a variable name"),
    ("--out=", "--out needs a variable name"),
    ("-o 1abc", "--out '1abc': not a variable name"),
    ("-o a.b", "--out 'a.b': not a variable name"),
    ("-o my-answer", "--out 'my-answer': not a variable name"),
    ("-o class", "--out 'class': a Python keyword"),
    ("-o None", "--out 'None': a Python keyword"),
    ("-m $nothing", "$nothing: the variable 'nothing' holds a NoneType; an option value must be a str, int or float"),
    ("-m $names", "$names: the variable 'names' holds a list; an option value must be a str, int or float"),
    ("-t $settings", "$settings: the variable 'settings' holds a dict; an option value must be a str, int or float"),
    ("-m $flag", "$flag: the variable 'flag' holds a bool"),
    ("-m $thing", "$thing: the variable 'thing' holds an object"),
    ("-m $missing", "$missing: no variable named 'missing'"),
])
@pytest.mark.parametrize("form", ["line", "cell"])
def test_unusable_option_value_is_one_line_before_any_request(shell: Any, server: FakeOpenAIServer, line: str,
                                                              message: str, form: str) -> None:
    shell.user_ns.update(nothing=None, names=["fake-chat"], settings={"t": 1}, flag=True, thing=object())
    with pytest.raises(UsageError) as info:
        if form == "line":
            shell.run_line_magic("complete", f"{line} {PROMPT}")
        else:
            shell.run_cell_magic("complete", line, PROMPT)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    assert api_requests(server) == [] and len(session_log) == 0


@pytest.mark.parametrize("line", ['-m ""', "--model=", "-m '  '"])
def test_complete_form_with_an_empty_model_is_one_line(shell: Any, server: FakeOpenAIServer, line: str) -> None:
    with pytest.raises(UsageError, match=r"^the model is empty"):
        shell.run_line_magic("complete_form", line)
    assert api_requests(server) == []


def test_complete_form_reads_its_line_as_complete_does(shell: Any, server: FakeOpenAIServer) -> None:
    """Quotes are removed (they were kept: a system message of '"Be brief"'), the prompt is as written."""
    form = shell.run_line_magic("complete_form", """-m 'fake-chat' -s "Be brief" -t 0.5 Say  "hi" """)
    try:
        assert form._model.value == "fake-chat" and form._system.value == "Be brief"
        assert form._temperature.value == 0.5 and form._prompt.value == 'Say  "hi"'
    finally:
        form.close()


@pytest.mark.parametrize("name, value", [("model", "fake-chat"), ("t", 0.5), ("tokens", 20)])
def test_scalar_variables_are_option_values(shell: Any, server: FakeOpenAIServer, name: str, value: Any) -> None:
    shell.user_ns[name] = value
    option = {"model": "-m", "t": "-t", "tokens": "--max-tokens"}[name]
    with capture_output():
        shell.run_cell_magic("complete", f"{option} ${name} -o _answer", PROMPT)
    assert shell.user_ns["_answer"] == ANSWER
    body = api_requests(server)[-1].body
    assert body[{"model": "model", "t": "temperature", "tokens": "max_tokens"}[name]] == value


# ---------------------------------------------------------------- Ctrl-C while the answer is shown
def run_cell_magic(shell: Any, line: str) -> None:
    """Run ``%%complete line``; a KeyboardInterrupt escaping the magic fails the test (not the session)."""
    try:
        shell.run_cell_magic("complete", line, PROMPT)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C escaped the magic as a traceback")


def interrupt_once(original: Any) -> Any:
    state = {"raised": False}

    def replacement(*args: Any, **kwargs: Any) -> Any:
        if not state["raised"]:
            state["raised"] = True
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    return replacement


@pytest.mark.parametrize("where", ["finish", "status-line"])
@pytest.mark.parametrize("stream", [True, False])
def test_ctrl_c_while_showing_keeps_out_and_prints_one_line(shell: Any, server: FakeOpenAIServer,
                                                            monkeypatch: pytest.MonkeyPatch, where: str,
                                                            stream: bool) -> None:
    if where == "finish":
        monkeypatch.setattr(CellView, "finish", interrupt_once(CellView.finish))
    else:
        monkeypatch.setattr(CellView, "status", interrupt_once(CellView.status))
    with capture_output() as shown:
        run_cell_magic(shell, "-o answer" + ("" if stream else " --no-stream"))
    assert shell.user_ns["answer"] == ANSWER
    assert shown.stderr.strip().splitlines() == [
        "Interrupted while showing the answer: the call is complete and logged (the answer is in answer)"]
    assert session_log[-1]["status"] == "ok" and session_log[-1]["completion"] == ANSWER
    with capture_output() as shown:  # and the next call is shown as usual
        shell.run_cell_magic("complete", "", PROMPT)
    assert shown.stderr == "" and "finish: stop" in status(shown)


def test_ctrl_c_while_showing_without_out(shell: Any, server: FakeOpenAIServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(CellView, "finish", interrupt_once(CellView.finish))
    with capture_output() as shown:
        run_cell_magic(shell, "")
    assert shown.stderr.strip() == "Interrupted while showing the answer: the call is complete and logged"
    assert session_log[-1]["status"] == "ok"


# ---------------------------------------------------------------- %complete_log --save
@pytest.mark.parametrize("name", ["missing/log.json", "missing/deeper/log.csv", "missing/log.jsonl"])
def test_save_into_a_missing_folder_is_one_line(shell: Any, server: FakeOpenAIServer, tmp_path: Path,
                                                name: str) -> None:
    with capture_output():
        shell.run_cell_magic("complete", "", PROMPT)
    path = tmp_path / name
    with pytest.raises(UsageError) as info:
        shell.run_line_magic("complete_log", f"--save {path}")
    assert str(info.value) == f"--save: cannot write {path}: No such file or directory"
    assert not path.parent.exists()


def test_save_onto_a_folder_is_one_line(shell: Any, tmp_path: Path) -> None:
    (tmp_path / "log.json").mkdir()
    with pytest.raises(UsageError, match=r"^--save: cannot write .*log\.json: Is a directory$"):
        shell.run_line_magic("complete_log", f"--save {tmp_path / 'log.json'}")
