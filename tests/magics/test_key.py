"""``%complete_key`` in a real shell: the key asked through getpass (the hook ipykernel routes to the
front end's password box, answered here by a test stand-in), used as the next call's Bearer token by
a server that accepts nothing else, and nowhere in ``In``, ``%history``, ``Out`` or the outputs; masked
by ``%config``. A key set from a cell gets one warning line pointing to ``%complete_key``. Cells run
as a kernel runs them: ``store_history=True`` (In, Out, ``%history``)."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Any

import pytest
from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.magics.key import FROM_CELL, KEY_IN_SOURCE, PROMPT
from jupyter_openai.session.log import session_log
from tests.servers.fake import FakeOpenAIServer
from tests.support.keys import CANARY_KEY, fragments


@pytest.fixture
def keyless(make_shell: Callable[..., Any], canary_server: FakeOpenAIServer,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    """A shell pointed at the canary server with no key anywhere."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = Config()
    config.CompleteMagics.model = "fake-chat"
    return make_shell(config, env={"OPENAI_BASE_URL": canary_server.url})


def _answer(monkeypatch: pytest.MonkeyPatch, answer: str | BaseException) -> list[str]:
    """Answer getpass with ``answer`` (or raise it); return the prompts it was asked with."""
    asked: list[str] = []

    def fake_getpass(prompt: str = "Password: ", stream: Any = None) -> str:
        asked.append(prompt)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    monkeypatch.setattr(getpass, "getpass", fake_getpass)
    return asked


def _traces(shell: Any, *captured: Any) -> list[str]:
    """Every place a cell's key could be left: the input history, In, Out, %history, the outputs."""
    with capture_output() as history:
        shell.run_line_magic("history", "-n -o")
    history_manager = shell.history_manager
    texts = [*history_manager.input_hist_raw, *history_manager.input_hist_parsed, *shell.user_ns["In"],
             repr(history_manager.output_hist), repr(shell.user_ns["Out"]), repr(history_manager.output_hist_reprs),
             history.stdout, repr(shell.user_ns.get("_")), repr(shell.user_ns.get("__"))]
    for cap in captured:
        texts += [cap.stdout, cap.stderr, *(repr(o.data) for o in cap.outputs)]
    return texts


def test_the_key_asked_without_echo_is_used_and_left_nowhere(keyless: Any, canary_server: FakeOpenAIServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    asked = _answer(monkeypatch, f"  {CANARY_KEY}\n")
    with capture_output() as set_it:
        keyless.run_cell("%complete_key", store_history=True)
    assert asked == [PROMPT]
    assert set_it.stdout.strip() == f"API key set for this session: <set: sk-…{CANARY_KEY[-4:]}>."
    assert not set_it.stderr  # no warning: the key did not come from the cell
    with capture_output() as called:
        keyless.run_cell("%complete one two three", store_history=True)
    assert canary_server.requests[-1].headers["Authorization"] == f"Bearer {CANARY_KEY}"
    assert session_log[-1]["status"] == "ok"
    with capture_output() as shown:
        keyless.run_cell("%config CompleteMagics", store_history=True)
        keyless.run_cell("%complete_config", store_history=True)
    assert f"<set: sk-…{CANARY_KEY[-4:]}>" in shown.stdout + repr([o.data for o in shown.outputs])
    for text in _traces(keyless, set_it, called, shown):
        for piece in fragments(CANARY_KEY):
            assert piece not in text, f"key fragment {piece!r} left in {text[:200]!r}"


def test_no_answer_changes_nothing_and_a_malformed_key_is_one_line(keyless: Any,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    magics = keyless.magics_manager.registry["CompleteMagics"]
    for answer in ("", "   ", EOFError(), KeyboardInterrupt()):
        _answer(monkeypatch, answer)
        with capture_output() as cap:
            keyless.run_cell("%complete_key", store_history=True)
        assert cap.stdout.strip() == "No key entered: the key is unchanged." and magics.api_key is None
    _answer(monkeypatch, "sk-\u201ccanary-key-with-a-curly-quote\u201d")
    with pytest.raises(UsageError, match=r"^The API key is malformed: it contains a typographic quote") as raised:
        keyless.run_cell("%complete_key", store_history=True)
    assert "canary-key" not in str(raised.value) and magics.api_key is None
    with pytest.raises(UsageError, match="takes no value: it asks for the key"):
        keyless.run_cell("%complete_key sk-typed-here", store_history=True)


def test_a_front_end_without_input_is_told_where_keys_go(keyless: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    _answer(monkeypatch, StdinNotImplementedError("getpass was called, but this frontend does not support input"))
    with pytest.raises(UsageError, match=r"^This front end cannot ask for input: set OPENAI_API_KEY"):
        keyless.run_cell("%complete_key", store_history=True)


@pytest.mark.parametrize("cell", [
    f"%config CompleteMagics.api_key = {CANARY_KEY!r}",
    f"get_ipython().magics_manager.registry['CompleteMagics'].api_key = {CANARY_KEY!r}",
    f"key = {CANARY_KEY[:6]!r} + {CANARY_KEY[6:]!r}\n%config CompleteMagics.api_key = key",  # no literal: the trait
    f"%env OPENAI_API_KEY={CANARY_KEY}",  # no trait: the source
    f"import os\nos.environ['OPENAI_API_KEY'] = {CANARY_KEY!r}",
])
def test_a_key_set_from_a_cell_gets_one_warning_line(keyless: Any, cell: str) -> None:
    with capture_output() as cap:
        keyless.run_cell(cell, store_history=True)
    assert cap.stderr == FROM_CELL + "\n"
    assert "%complete_key" in FROM_CELL and "\n" not in FROM_CELL
    with capture_output() as cap:
        keyless.run_cell("x = 1", store_history=True)  # the next cell: no warning
    assert cap.stderr == ""


@pytest.mark.parametrize("cell", [
    "%config CompleteMagics.api_key = None",
    "%config CompleteMagics",
    "m = get_ipython().magics_manager.registry['CompleteMagics']\nk = m.api_key",
    "import os\nkey = os.environ.get('OPENAI_API_KEY')",
    "from jupyter_openai import OpenAIClient\nc = OpenAIClient(api_key=key, base_url='http://127.0.0.1:9/v1')",
])
def test_cells_that_set_no_key_get_no_warning(keyless: Any, cell: str) -> None:
    with capture_output() as cap:
        keyless.run_cell("key = None", store_history=True)
        keyless.run_cell(cell, store_history=True)
    assert cap.stderr == ""


def test_a_key_from_the_config_file_gets_no_warning(make_shell: Callable[..., Any], server: FakeOpenAIServer,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    config = Config()
    config.CompleteMagics.api_key = CANARY_KEY  # ipython_config.py: read by %load_ext, in a cell
    with capture_output() as cap:
        make_shell(config, env={"OPENAI_BASE_URL": server.url})
    assert FROM_CELL not in cap.stderr


def test_the_source_pattern() -> None:
    assert KEY_IN_SOURCE.search('client = OpenAI(api_key="sk-abc")')
    assert KEY_IN_SOURCE.search('c.CompleteMagics.api_key = r"sk-abc"')
    assert KEY_IN_SOURCE.search('{"OPENAI_API_KEY": "sk-abc"}')
    assert KEY_IN_SOURCE.search("os.environ.setdefault('OPENAI_API_KEY', 'sk-abc')")
    assert KEY_IN_SOURCE.search("%set_env OPENAI_API_KEY sk-abc")
    assert not KEY_IN_SOURCE.search('api_key = ""') and not KEY_IN_SOURCE.search("print(m.api_key)")
    assert not KEY_IN_SOURCE.search("%complete_key")


def test_unload_removes_the_magic_and_the_watch(keyless: Any) -> None:
    keyless.run_line_magic("unload_ext", "jupyter_openai")
    assert "complete_key" not in keyless.magics_manager.magics["line"]
    assert not any(getattr(c, "__self__", None).__class__.__name__ == "KeyMagics"
                   for event in ("pre_run_cell", "post_run_cell") for c in keyless.events.callbacks[event])
    keyless.run_line_magic("load_ext", "jupyter_openai")
    assert "complete_key" in keyless.magics_manager.magics["line"]
