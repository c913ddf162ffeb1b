"""The canary key through a real IPython shell: ``%config`` and ``ipython_config.py`` (issue 12).

The key set either way reaches the server (the canary server accepts nothing else) and shows
nowhere: not in ``%config CompleteMagics`` nor ``%config CompleteMagics.api_key``, not in any
``Config`` (the shell's, the magics', every configurable's, the application's) as ``repr`` or
``json.dumps`` shows them, not in ``magics.trait_values()``, the outputs kept in history, the
session log, nor the red line of a failed call. Malformed keys (a pasted curly quote, a trailing
newline, bytes) give one line before any request, and never repeat the key. Answers of odd shapes
and 200 answers that are no event stream, echoing the key, show it nowhere either (issue 12).

(The canary in the bundled model server's environment and command line: ``test_local.py``.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.session.log import session_log
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.keys import CANARY_KEY, fragments, json_texts

PROMPT = "one two three"


def magics(shell: Any) -> Any:
    return shell.magics_manager.registry["CompleteMagics"]


def every_config(shell: Any) -> list[Any]:
    from traitlets.config import Application

    configs = [shell.config, magics(shell).config, *(c.config for c in shell.configurables)]
    if Application.initialized():
        configs.append(Application.instance().config)
    return configs


def public_texts(shell: Any) -> list[str]:
    """Everything a user, a notebook file or a history dump can show about the settings."""
    m = magics(shell)
    with capture_output() as shown:
        shell.run_line_magic("config", "CompleteMagics")
        value = shell.run_line_magic("config", "CompleteMagics.api_key")
        shell.displayhook(value)  # the cell's Out[] as a notebook saves it
    texts = [shown.stdout, shown.stderr, repr(value), str(value),
             *(o.data.get("text/plain", "") for o in shown.outputs)]
    texts += [repr(m.trait_values()), repr(m.config), repr(shell.config), repr(shell.user_ns.get("Out", {}))]
    texts += [repr(config) for config in every_config(shell)]
    texts += json_texts(m.trait_values(), *every_config(shell), list(session_log), shell.user_ns.get("Out", {}))
    texts += [repr(m.settings()), repr(m.client())]
    return texts


def assert_nowhere(texts: list[str], key: str = CANARY_KEY) -> None:
    for text in texts:
        for piece in fragments(key):
            assert piece not in text, f"key fragment {piece!r} leaked in: {text[:300]!r}"


def assert_no_raw_key_in_configs(shell: Any) -> None:
    for config in every_config(shell):
        for section in config.values():
            if hasattr(section, "get") and "api_key" in section:
                assert not isinstance(dict.__getitem__(section, "api_key"), (str, bytes)), section  # a Secret


# ---------------------------------------------------------------- %config

def test_key_set_by_config_magic_is_used_and_masked_everywhere(shell: Any, canary_server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", f"CompleteMagics.base_url = {canary_server.url!r}")
    shell.run_line_magic("config", f"CompleteMagics.api_key = {CANARY_KEY!r}")
    with capture_output():
        shell.run_cell_magic("complete", "-o answer", PROMPT)
    assert shell.user_ns["answer"] == "Echo: three two one"  # the canary server accepts only the canary key
    assert canary_server.requests[-1].headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert_no_raw_key_in_configs(shell)
    texts = public_texts(shell)
    assert any("<set: sk-…N4RY>" in text for text in texts)  # the mask is what shows
    assert_nowhere(texts)
    shell.user_ns["k"] = CANARY_KEY  # set from a variable: the same masking
    shell.run_line_magic("config", "CompleteMagics.api_key = k")
    del shell.user_ns["k"]
    assert_no_raw_key_in_configs(shell)
    assert_nowhere(public_texts(shell))


def test_red_line_never_shows_the_key(shell: Any, canary_server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", f"CompleteMagics.base_url = {canary_server.url!r}")
    shell.run_line_magic("config", f"CompleteMagics.api_key = {CANARY_KEY!r}")
    shell.run_line_magic("config", "CompleteMagics.max_retries = 0")
    canary_server.add_fault(status=400, message=f"bad key {CANARY_KEY}")
    with capture_output() as shown:
        shell.run_cell_magic("complete", "", PROMPT)
    assert "400" in shown.stderr + shown.stdout
    assert_nowhere([shown.stdout, shown.stderr, *json_texts(list(session_log))])


# ---------------------------------------------------------------- ipython_config.py

@pytest.fixture
def profile_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, canary_server: FakeOpenAIServer) -> Iterator[Any]:
    """A shell configured the way a kernel is: an application loads the profile's ipython_config.py,
    and the shell is its child (so the application's Config holds what the file said)."""
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Application
    from traitlets.config.loader import PyFileConfigLoader

    ipython_dir = tmp_path / "ipython"
    profile = ipython_dir / "profile_default"
    profile.mkdir(parents=True)
    (profile / "ipython_config.py").write_text(
        f"c.CompleteMagics.api_key = {CANARY_KEY!r}\n"
        f"c.CompleteMagics.base_url = {canary_server.url!r}\n"
        "c.CompleteMagics.model = 'fake-chat'\n"
        "c.InteractiveShell.CompleteMagics.max_retries = 0\n"  # a nested section: masked too
        f"c.InteractiveShell.CompleteMagics.api_key = {CANARY_KEY!r}\n"
        "c.HistoryManager.enabled = False\n"
    )
    monkeypatch.setenv("IPYTHONDIR", str(ipython_dir))
    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    Application.clear_instance()
    app = Application.instance()
    app.update_config(PyFileConfigLoader("ipython_config.py", path=str(profile)).load_config())
    shell = InteractiveShell.instance(parent=app)
    session_log.clear()
    shell.run_line_magic("load_ext", "jupyter_openai")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "jupyter_openai")
        session_log.clear()
        InteractiveShell.clear_instance()
        Application.clear_instance()


def test_key_from_ipython_config_file_is_used_and_masked_everywhere(profile_shell: Any,
                                                                     canary_server: FakeOpenAIServer) -> None:
    from traitlets.config import Application

    assert profile_shell.parent is Application.instance()
    with capture_output():
        profile_shell.run_cell_magic("complete", "-o answer", PROMPT)
    assert profile_shell.user_ns["answer"] == "Echo: three two one"
    assert canary_server.requests[-1].headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert_no_raw_key_in_configs(profile_shell)
    nested = Application.instance().config.InteractiveShell.CompleteMagics
    assert not isinstance(dict.__getitem__(nested, "api_key"), str)
    assert_nowhere(public_texts(profile_shell))


# ---------------------------------------------------------------- malformed keys

@pytest.mark.parametrize("bad, words", [(TEST_KEY[:9] + "\u201d" + TEST_KEY[9:], "typographic quote"),
                                        (TEST_KEY + "\u2019", "typographic quote"),
                                        (TEST_KEY[:9] + " " + TEST_KEY[9:], "space or line break")])
def test_malformed_key_is_one_usage_line_before_any_request(shell: Any, server: FakeOpenAIServer, bad: str,
                                                            words: str) -> None:
    shell.user_ns["k"] = bad
    shell.run_line_magic("config", "CompleteMagics.api_key = k")
    with pytest.raises(UsageError) as info:
        shell.run_cell_magic("complete", "", PROMPT)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert_nowhere([message, repr(info.value.args)], TEST_KEY)
    assert server.requests == []


def test_key_with_a_trailing_newline_works(shell: Any, server: FakeOpenAIServer) -> None:
    """As read by open(...).read(): today sent as is, retried three times, a two-line connection error."""
    shell.user_ns["k"] = TEST_KEY + "\n"
    shell.run_line_magic("config", "CompleteMagics.api_key = k")
    with capture_output() as shown:
        shell.run_cell_magic("complete", "-o answer", PROMPT)
    assert shell.user_ns["answer"] == "Echo: three two one", shown.stderr
    assert len(server.requests) == 1 and server.requests[0].headers["authorization"] == f"Bearer {TEST_KEY}"


def test_key_given_as_bytes_is_refused_without_showing_it(shell: Any, server: FakeOpenAIServer,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    shell.user_ns["k"] = CANARY_KEY.encode()
    with caplog.at_level(logging.ERROR), capture_output() as shown:
        shell.run_line_magic("config", "CompleteMagics.api_key = k")
    said = caplog.text + shown.stderr + shown.stdout
    assert "must be a string" in said and "bytes" in said
    del shell.user_ns["k"]
    assert_nowhere([said, *public_texts(shell)])
    assert magics(shell).api_key is None  # unchanged; calls still use the environment's key
    with capture_output():
        shell.run_cell_magic("complete", "-o answer", PROMPT)
    assert shell.user_ns["answer"] == "Echo: three two one"


# ---------------------------------------------------------------- odd answers echoing the key (issue 12)

def _odd_answers(key: str) -> dict[str, tuple[Any, str | None, str]]:
    """name: (body, content type, the magic line) for answers that echo the key where it should not be."""
    pad = "x" * 140  # the key across the points where snippets are cut (80, 120 and 160 characters)
    odd_chunk = json.dumps({"choices": [{"index": 0, "delta": {"content": [pad[:5] + key]}}]})
    return {
        "odd-chunk": (f"data: {json.dumps({'choices': [{'delta': {'content': 'ok'}}]})}\n\ndata: {odd_chunk}\n\n",
                      "text/event-stream", "-o answer"),
        "odd-answer": ({"choices": [{"message": {"content": {"k": key}}}], "usage": key}, "application/json",
                       "--no-stream -o answer"),
        "ndjson": ("".join(json.dumps({"pad": pad, "message": {"content": key}}) + "\n" for _ in range(2)),
                   "application/x-ndjson", "-o answer"),
        "plain": (f"{pad} upstream rejected Bearer {key}\n", "text/plain", "-o answer"),
        "untyped": (f"{pad}{key}", None, "-o answer"),
        "not-json": (f"{pad[:100]}{key}", "application/json", "--no-stream -o answer"),
    }


@pytest.mark.parametrize("name", list(_odd_answers(CANARY_KEY)))
def test_odd_answers_echoing_the_key_show_it_nowhere(make_shell: Any, body_server: Any, name: str) -> None:
    from traitlets.config import Config

    config = Config()
    config.CompleteMagics.model = "fake-chat"
    config.CompleteMagics.max_retries = 0
    shell = make_shell(config, {"OPENAI_API_KEY": CANARY_KEY, "OPENAI_BASE_URL": body_server.url})
    body, content_type, line = _odd_answers(CANARY_KEY)[name]
    body_server.answer(body if not isinstance(body, str) else body.encode(), content_type)
    with capture_output() as shown:
        shell.run_cell_magic("complete", line, PROMPT)
        shell.run_line_magic("complete_models", "")
    assert len(shown.stderr.strip().splitlines()) == 2, shown.stderr  # one line for the call, one for the models
    assert session_log[-1]["status"] == "error"
    assert_nowhere([shown.stdout, shown.stderr, repr(shell.user_ns["answer"]), *json_texts(list(session_log)),
                    session_log.to_csv(), session_log.to_jsonl(), *public_texts(shell)])
