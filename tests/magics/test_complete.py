"""Tests of the IPython magics (``%%complete``, ``%complete``, ``%complete_models``) in a real shell.

Everything goes through a real ``InteractiveShell`` with the extension loaded (the ``shell``
fixture of conftest.py) and real HTTP to the project's test server; displays are captured
with ``capture_output``. Sections: loading, configuration, options, output, streaming,
prompts, bad input, server and network faults, Ctrl-C, models, and the canary key.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.calls.request import choose_endpoint
from jupyter_openai.calls.run import UPDATES_PER_SECOND
from jupyter_openai.config import DEFAULT_BASE_URL
from jupyter_openai.magics.complete import CompleteMagics
from jupyter_openai.session.log import session_log
from tests.servers.fake import DEFAULT_MODELS, TEST_KEY, FakeOpenAIServer, closed_port, unaccepting_address
from tests.support.cells import SLOW_WORDS, blocks, final_texts, interrupt_when, run, value
from tests.support.keys import CANARY_KEY
from tests.support.shown import answer_outputs, is_status, notes, shown_order, status, status_lines

PROMPT = "one two three four five six"
ANSWER = "Echo: six five four three two one"
MAGIC_NAMES = ("complete", "complete_log", "complete_models")


# -- helpers ------------------------------------------------------------------------------


def magics(shell: InteractiveShell) -> CompleteMagics:
    return shell.magics_manager.registry["CompleteMagics"]


def last_body(server: FakeOpenAIServer) -> dict:
    return server.requests[-1].body


def prompt_sent(server: FakeOpenAIServer) -> str:
    body = last_body(server)
    return body["prompt"] if "prompt" in body else body["messages"][-1]["content"]


def one_line(text: str) -> bool:
    return text.endswith("\n") and text.count("\n") == 1


def config(shell: InteractiveShell, line: str) -> None:
    shell.run_line_magic("config", line)


def _question_transformers(shell: InteractiveShell) -> int:
    """How many copies of the extension's input transformer are installed (any module version)."""
    return sum(getattr(t, "__name__", "") == "keep_question_prompts" for t in shell.input_transformers_cleanup)


def _served(server: FakeOpenAIServer) -> set:
    with server._lock:
        return set(server._connections)


def wait_closed(server: FakeOpenAIServer, sockets: set, timeout: float = 30.0) -> bool:
    """True once the server no longer serves any of ``sockets`` (the client closed them)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not sockets & _served(server):
            return True
        time.sleep(0.02)
    return False


# == 1. loading ==============================================================================
def test_load_registers_the_magics(shell: InteractiveShell) -> None:
    assert shell.find_cell_magic("complete") is not None
    for name in MAGIC_NAMES:
        assert shell.find_line_magic(name) is not None, name
    assert sum(isinstance(c, CompleteMagics) for c in shell.configurables) == 1


def test_unload_removes_everything_and_load_brings_it_back(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    before = _served(server)  # connections other tests' clients left open are not this shell's
    run(shell, "%%complete --no-stream\nkeep a connection open")  # (a stream's connection is not pooled)
    pooled = _served(server) - before
    assert pooled
    shell.run_line_magic("unload_ext", "jupyter_openai")
    assert shell.find_cell_magic("complete") is None
    for kind, names in CompleteMagics.magics.items():
        for name in names:
            assert name not in shell.magics_manager.magics[kind], (kind, name)
    assert "CompleteMagics" not in shell.magics_manager.registry
    assert _question_transformers(shell) == 0
    assert not any(isinstance(c, CompleteMagics) for c in shell.configurables)
    assert wait_closed(server, pooled), "unloading did not close the client's connections"
    with pytest.raises(UsageError, match="not found"):
        run(shell, "%%complete\nhello")
    with pytest.raises(UsageError):
        config(shell, "CompleteMagics")
    shell.run_line_magic("load_ext", "jupyter_openai")
    run(shell, f"%%complete\n{PROMPT}")
    assert session_log[-1]["status"] == "ok"


@pytest.mark.parametrize("how", ["reload_ext", "unload-load", "twice"])
def test_reload_lists_the_configurable_once(shell: InteractiveShell, how: str) -> None:
    for _ in range(2 if how == "twice" else 1):
        if how == "reload_ext":
            shell.run_line_magic("reload_ext", "jupyter_openai")
        else:
            shell.run_line_magic("unload_ext", "jupyter_openai")
            shell.run_line_magic("load_ext", "jupyter_openai")
    assert sum(isinstance(c, CompleteMagics) for c in shell.configurables) == 1
    assert _question_transformers(shell) == 1
    listing = run(shell, "%config").stdout
    assert listing.split().count("CompleteMagics") == 1
    traits = run(shell, "%config CompleteMagics").stdout
    for name in ("api_key", "base_url", "model", "endpoint", "temperature", "max_tokens", "top_p", "stream",
                 "timeout", "max_retries", "output_format", "log_file", "organization", "project"):
        assert traits.count(f"CompleteMagics.{name}=") == 1, name
    assert shell.find_cell_magic("complete") is not None


def test_loading_imports_nothing_heavy(tmp_path: Path) -> None:
    code = (
        "import json, sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'jupyter_openai')\n"
        "assert ip.find_cell_magic('complete') is not None\n"
        "heavy = ('requests', 'urllib3', 'ipywidgets', 'pandas', 'jupyter_openai.client',\n"
        "         'jupyter_openai.widgets.form')\n"
        "print(json.dumps([name for name in heavy if name in sys.modules]))\n"
    )
    env = {**os.environ, "IPYTHONDIR": str(tmp_path / "ipython")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


# == 2. configuration ========================================================================
def test_config_temperature_reaches_the_request(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    config(shell, "CompleteMagics.temperature = 0.3")
    run(shell, "%%complete\nhello")
    assert last_body(server)["temperature"] == 0.3
    run(shell, "%%complete -t 0.7\nhello")  # the option beats %config
    assert last_body(server)["temperature"] == 0.7
    run(shell, "%%complete\nhello")  # and only for its own call
    assert last_body(server)["temperature"] == 0.3


def test_model_precedence_option_over_config_over_default(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    assert CompleteMagics.model.default_value == "gpt-5.4-mini"
    run(shell, "%%complete\nhello")
    assert last_body(server)["model"] == "fake-chat"  # c.CompleteMagics.model from the shell's Config
    config(shell, "CompleteMagics.model = 'davinci-002'")
    run(shell, "%%complete\nhello")
    assert (server.requests[-1].path, last_body(server)["model"]) == ("/v1/completions", "davinci-002")
    run(shell, "%%complete -m gpt-4o-mini\nhello")
    assert (server.requests[-1].path, last_body(server)["model"]) == ("/v1/chat/completions", "gpt-4o-mini")


def test_base_url_precedence_config_over_env_over_default(shell: InteractiveShell, server: FakeOpenAIServer,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    config(shell, f"CompleteMagics.base_url = {server.url!r}")
    run(shell, "%%complete\nhello")
    assert session_log[-1]["status"] == "ok" and len(server.requests) == 1
    config(shell, "CompleteMagics.base_url = None")  # back to the environment: nothing listens there
    config(shell, "CompleteMagics.max_retries = 0")
    cap = run(shell, "%%complete\nhello")
    assert "Connection refused" in cap.stderr and len(server.requests) == 1
    monkeypatch.delenv("OPENAI_BASE_URL")
    assert magics(shell).settings().base_url == DEFAULT_BASE_URL


def test_api_key_precedence_config_over_env(shell: InteractiveShell, server: FakeOpenAIServer,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-from-the-environment")
    cap = run(shell, "%%complete\nhello")
    assert "401 Authentication failed" in cap.stderr
    config(shell, f"CompleteMagics.api_key = {TEST_KEY!r}")
    run(shell, "%%complete\nhello")
    assert session_log[-1]["status"] == "ok"
    assert server.requests[-1].headers["Authorization"] == f"Bearer {TEST_KEY}"
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    config(shell, "CompleteMagics.api_key = 'sk-wrong-key-in-the-config'")
    cap = run(shell, "%%complete\nhello")
    assert "401 Authentication failed" in cap.stderr
    assert server.requests[-1].headers["Authorization"] == "Bearer sk-wrong-key-in-the-config"


def test_traits_are_re_read_on_every_call(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    for max_tokens in (3, 5):
        config(shell, f"CompleteMagics.max_tokens = {max_tokens}")
        run(shell, "%%complete\nhello")
        assert last_body(server)["max_tokens"] == max_tokens
    config(shell, "CompleteMagics.stream = False")
    run(shell, "%%complete\nhello")
    assert "stream" not in last_body(server)
    config(shell, "CompleteMagics.endpoint = 'completions'")
    config(shell, "CompleteMagics.system = None")
    run(shell, "%%complete\nhello")
    assert server.requests[-1].path == "/v1/completions"
    config(shell, "CompleteMagics.organization = 'org-123'")
    run(shell, "%%complete\nhello")
    assert server.requests[-1].headers["OpenAI-Organization"] == "org-123"


def test_ipython_config_sets_the_traits(make_shell: Callable[..., InteractiveShell], server: FakeOpenAIServer,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = Config()
    cfg.CompleteMagics.model = "davinci-002"
    cfg.CompleteMagics.endpoint = "chat"
    cfg.CompleteMagics.temperature = 0.25
    cfg.CompleteMagics.max_tokens = 9
    cfg.CompleteMagics.system = "Be brief."
    cfg.CompleteMagics.api_key = TEST_KEY
    cfg.CompleteMagics.base_url = server.url
    shell = make_shell(cfg, env={"OPENAI_API_KEY": "sk-wrong-key-from-the-environment",
                                 "OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port()}/v1"})
    run(shell, "%%complete\nhello")
    assert server.requests[-1].path == "/v1/chat/completions"
    assert last_body(server)["messages"] == [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "hello"}]
    assert (last_body(server)["model"], last_body(server)["temperature"], last_body(server)["max_tokens"]) == (
        "davinci-002",
        0.25,
        9,
    )
    assert session_log[-1]["status"] == "ok"


def test_api_key_is_masked_in_config_output(
    shell: InteractiveShell, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    key = "sk-proj-" + "abcdefghij" + "-fake-test-key-0123"  # obviously fake; split so it looks like no real key
    config(shell, f"CompleteMagics.api_key = {key!r}")
    listing = run(shell, "%config CompleteMagics").stdout
    assert "Current: <set: sk-…0123>" in listing
    assert "abcdefghij" not in listing
    cap = run(shell, "%config CompleteMagics.api_key")
    shown = value(shell, "%config CompleteMagics.api_key")
    assert repr(shown) == str(shown) == f"{shown}" == "<set: sk-…0123>"
    assert "<set: sk-…0123>" in cap.stdout and "abcdefghij" not in cap.stdout
    assert "abcdefghij" not in repr(magics(shell).settings()) + repr(magics(shell).client())
    shown_data = json.dumps([o.data for o in cap.outputs])
    assert "abcdefghij" not in shown_data
    config(shell, f"CompleteMagics.api_key = {TEST_KEY!r}")  # the real value is still what is sent
    run(shell, "%%complete\nhello")
    assert server.requests[-1].headers["Authorization"] == f"Bearer {TEST_KEY}"


# == 3. options ==============================================================================
@pytest.mark.parametrize(
    ("line", "path", "expected"),
    [
        ("-m davinci-002", "/v1/completions", {"model": "davinci-002", "prompt": PROMPT}),
        ("--model gpt-4o-mini", "/v1/chat/completions", {"model": "gpt-4o-mini"}),
        ("-e completions", "/v1/completions", {"model": "fake-chat", "prompt": PROMPT}),
        ("--endpoint chat -m gpt-3.5-turbo-instruct", "/v1/chat/completions", {"model": "gpt-3.5-turbo-instruct"}),
        ("-t 0.5", "/v1/chat/completions", {"temperature": 0.5}),
        ("-t0.5", "/v1/chat/completions", {"temperature": 0.5}),
        ("--temperature=1.25", "/v1/chat/completions", {"temperature": 1.25}),
        ("--max-tokens 7", "/v1/chat/completions", {"max_tokens": 7}),
        ("--top-p 0.9", "/v1/chat/completions", {"top_p": 0.9}),
        ("-n 2", "/v1/chat/completions", {"n": 2}),
        (
            r"--stop \n --stop END --stop '\t' --stop 'a b'",
            "/v1/chat/completions",
            {"stop": ["\n", "END", "\t", "a b"]},
        ),
        ('--stop "two words"', "/v1/chat/completions", {"stop": ["two words"]}),
        ("-e completions --echo", "/v1/completions", {"echo": True}),
        ("-e completions --suffix 'the end'", "/v1/completions", {"suffix": "the end"}),
        (
            "--presence-penalty 0.5 --frequency-penalty -0.5",
            "/v1/chat/completions",
            {"presence_penalty": 0.5, "frequency_penalty": -0.5},
        ),
        ("--seed 42", "/v1/chat/completions", {"seed": 42}),
        ("-m davinci-002 --logprobs 2", "/v1/completions", {"logprobs": 2}),
        ("--logprobs 3", "/v1/chat/completions", {"logprobs": True, "top_logprobs": 3}),
        (
            "-s 'You are terse.'",
            "/v1/chat/completions",
            {"messages": [{"role": "system", "content": "You are terse."}, {"role": "user", "content": PROMPT}]},
        ),
        (
            '--system "Answer in French"',
            "/v1/chat/completions",
            {"messages": [{"role": "system", "content": "Answer in French"}, {"role": "user", "content": PROMPT}]},
        ),
        (
            "",
            "/v1/chat/completions",
            {
                "model": "fake-chat",
                "max_tokens": 256,
                "stream": True,
                "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": PROMPT}],
            },
        ),
    ],
)
def test_option_reaches_the_request_body(
    shell: InteractiveShell, server: FakeOpenAIServer, line: str, path: str, expected: dict
) -> None:
    run(shell, f"%%complete {line}\n{PROMPT}")
    assert len(server.requests) == 1
    assert server.requests[-1].path == path
    body = last_body(server)
    assert {key: body.get(key) for key in expected} == expected
    assert session_log[-1]["status"] == "ok"


def test_no_stream_sends_a_plain_request(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete --no-stream\n{PROMPT}")
    body = last_body(server)
    assert "stream" not in body and "stream_options" not in body
    assert final_texts(cap) == [ANSWER]
    assert session_log[-1]["prompt_tokens"] == 6  # the non-streamed answer carries usage


@pytest.mark.parametrize("model", DEFAULT_MODELS)
def test_auto_endpoint_rule(shell: InteractiveShell, server: FakeOpenAIServer, model: str) -> None:
    run(shell, f"%%complete -m {model}\n{PROMPT}")
    expected = "/v1/completions" if choose_endpoint(model) == "completions" else "/v1/chat/completions"
    assert server.requests[-1].path == expected
    assert session_log[-1]["endpoint"] == choose_endpoint(model)


# == output options, help, line form ======================================================
def test_out_stores_the_text(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete --out answer\n{PROMPT}")
    assert shell.user_ns["answer"] == ANSWER
    assert final_texts(cap) == [ANSWER]


def test_out_with_several_choices_stores_a_list(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    run(shell, f"%%complete -n 2 -o answers\n{PROMPT}")
    assert shell.user_ns["answers"] == [ANSWER, "Echo2: six five four three two one"]


def test_quiet_shows_nothing_but_stores(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete -q -o answer\n{PROMPT}")
    assert (cap.outputs, cap.stdout, cap.stderr) == ([], "", "")
    assert shell.user_ns["answer"] == ANSWER
    assert session_log[-1]["completion"] == ANSWER


@pytest.mark.parametrize("how", ["default", "option", "trait"])
def test_markdown_renders_while_it_streams(shell: InteractiveShell, server: FakeOpenAIServer, how: str) -> None:
    """Jupyter's default: every update of the answer is Markdown (with its plain-text fallback)."""
    if how == "trait":
        config(shell, "CompleteMagics.output_format = 'markdown'")
    server.add_fault(path="/chat", chunk_delay=0.06)
    cap = run(shell, f"%%complete{' --format markdown' if how == 'option' else ''}\n{PROMPT}")
    (published,) = blocks(cap).values()
    assert len(published) >= 2, "the answer grew in more than one update"
    assert published[-1] == {"text/markdown": ANSWER, "text/plain": ANSWER}
    assert all(set(data) == {"text/markdown", "text/plain"} for data in published)
    assert all(ANSWER.startswith(data["text/markdown"]) for data in published)


@pytest.mark.parametrize("how", ["option", "trait"])
def test_text_format_is_raw_text_that_wraps_at_words(shell: InteractiveShell, server: FakeOpenAIServer,
                                                     how: str) -> None:
    """``-f text``: the text as sent (no Markdown), in HTML that wraps at word boundaries, escaped."""
    if how == "trait":
        config(shell, "CompleteMagics.output_format = 'text'")
    cap = run(shell, f"%%complete{' -f text' if how == 'option' else ''}\n**not bold** <b>")
    (published,) = blocks(cap).values()
    final = published[-1]
    assert final["text/plain"] == "Echo: <b> bold** **not"
    assert all(set(data) == {"text/plain", "text/html"} for data in published)
    assert "word-break:normal" in final["text/html"] and "white-space:pre-wrap" in final["text/html"]
    assert "&lt;b&gt; bold** **not</div>" in final["text/html"] and "<b>" not in final["text/html"]


def test_generated_help_lists_every_option(shell: InteractiveShell) -> None:
    for query in ("%%complete?", "%complete?"):
        text = run(shell, query).stdout
        for option in (
            "--model",
            "--endpoint",
            "--system",
            "--temperature",
            "--max-tokens",
            "--top-p",
            "-n",
            "--stop",
            "--echo",
            "--suffix",
            "--presence-penalty",
            "--frequency-penalty",
            "--seed",
            "--logprobs",
            "--no-stream",
            "--out",
            "--format",
            "--quiet",
            "--interpolate",
        ):
            assert option in text, (query, option)
        assert "instruct" in text  # the auto endpoint rule is documented


@pytest.mark.parametrize(
    ("line", "prompt", "body"),
    [
        ("What's the capital of France?", "What's the capital of France?", {}),
        ('-t 0.5 it\'s {x} and $x, {"a": 1}', 'it\'s {x} and $x, {"a": 1}', {"temperature": 0.5}),
        ("-m davinci-002 don't {{stop}}", "don't {{stop}}", {"model": "davinci-002"}),
        ("-- -5 degrees is cold", "-5 degrees is cold", {}),
        ("Why is the sky blue?", "Why is the sky blue?", {}),  # not an IPython help request
        ("-t 0.2 What is 2+2??", "What is 2+2??", {"temperature": 0.2}),
    ],
)
def test_line_form(shell: InteractiveShell, server: FakeOpenAIServer, line: str, prompt: str, body: dict) -> None:
    shell.user_ns["x"] = 42
    run(shell, f"%complete {line}")
    assert prompt_sent(server) == prompt
    assert {key: last_body(server)[key] for key in body} == body


def test_unexpected_text_on_the_cell_magic_line(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with pytest.raises(UsageError, match="unexpected text"):
        run(shell, "%%complete -t 0.5 hello\nworld")
    assert server.requests == []


# == 4. streaming ============================================================================
def test_text_grows_in_one_output(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    words = [f" w{i}" for i in range(50)]
    server.add_fault(words=words, chunk_delay=0.015)
    cap = run(shell, "%%complete\nx")
    (published,) = blocks(cap).values()
    texts = [data["text/plain"] for data in published]
    assert [o.update for o in answer_outputs(cap)] == [False] + [True] * (len(texts) - 1)
    assert len(texts) >= 4  # it grew while it arrived, not only at the end
    assert all(a != b and b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    assert texts[-1] == "".join(words) == session_log[-1]["completion"]


@pytest.mark.parametrize(
    "fault",
    [{"chunks": 5000}, {"chunks": 1500, "chunk_delay": 0.0005}],
    ids=["5000-fast-chunks", "1500-paced-chunks"],
)
def test_updates_are_coalesced(shell: InteractiveShell, server: FakeOpenAIServer, fault: dict) -> None:
    server.add_fault(**fault)
    started = time.monotonic()
    cap = run(shell, "%%complete\nx")
    elapsed = time.monotonic() - started
    (published,) = blocks(cap).values()
    updates = sum(o.update for o in cap.outputs)
    print(f"\n{fault}: {len(published)} displays ({updates} updates) in {elapsed:.3f} s")
    assert len(published) == updates + 1
    assert len(published) <= UPDATES_PER_SECOND * elapsed + 2
    expected = " ".join(f"w{i}" for i in range(fault["chunks"]))
    assert published[-1]["text/plain"] == expected == session_log[-1]["completion"]


@pytest.mark.parametrize(("fmt", "heading"), [("markdown", "**choice {}**\n\n"), ("text", "[choice {}]\n")])
def test_each_choice_has_its_block(shell: InteractiveShell, server: FakeOpenAIServer, fmt: str, heading: str) -> None:
    cap = run(shell, f"%%complete -n 3 -f {fmt}\n{PROMPT}")
    assert final_texts(cap) == [
        f"{heading.format(0)}{ANSWER}",
        f"{heading.format(1)}Echo2: six five four three two one",
        f"{heading.format(2)}Echo3: six five four three two one",
    ]


def test_status_line(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    """A display of its own after the answer: small, muted HTML in the theme's colour, and the line
    as text/plain; nothing of it on stdout."""
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert re.fullmatch(r"fake-chat · 6 in / 7 out tokens · \d+\.\d\d s · \d+\.\d tok/s · finish: stop", status(cap))
    assert is_status(cap.outputs[-1]) and cap.stdout == ""
    html = cap.outputs[-1].data["text/html"]
    assert "font-size:85%" in html and "var(--jp-ui-font-color2" in html and html.endswith(f">{status(cap)}</div>")
    cap = run(shell, f"%%complete -m davinci-002 --max-tokens 3\n{PROMPT}")
    assert re.fullmatch(r"davinci-002 · 6 in / 3 out tokens · \d+\.\d\d s · \d+\.\d tok/s · "
                        r"stopped at max tokens 3 \(as asked\): raise it with --max-tokens 1024", status(cap))


def test_status_line_estimates_tokens_when_a_stream_has_no_usage(shell: InteractiveShell,
                                                                 server: FakeOpenAIServer) -> None:
    """A server that sends no usage in streams: the pieces received, marked as an estimate, with a
    rate; the log's server-reported token columns stay None."""
    server.add_fault(reject_stream_options=True)  # the client retries without include_usage
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert re.fullmatch(r"fake-chat · ~7 out tokens \(estimated from the stream; in: not reported by the server\) · "
                        r"\d+\.\d\d s · ~\d+\.\d tok/s · finish: stop", status(cap)), status(cap)
    record = session_log[-1]
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (None, None, None)
    cap = run(shell, f"%%complete --no-stream\n{PROMPT}")  # the server counted: no estimate
    assert "6 in / 7 out tokens ·" in status(cap)


# == 5. prompts are sent as written ==========================================================
def test_cell_prompt_is_sent_verbatim(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    shell.user_ns["x"] = 42
    prompt = 'def f(x):\n    return {"a": x, "b": [1, 2]}  # {x} {{x}} $x {0} %s\n\n  trailing spaces  '
    run(shell, f"%%complete\n{prompt}")
    assert prompt_sent(server) == prompt
    assert session_log[-1]["prompt"] == prompt


@pytest.mark.parametrize("how", ["option", "short", "trait"])
def test_interpolation_when_asked(shell: InteractiveShell, server: FakeOpenAIServer, how: str) -> None:
    shell.user_ns["name"] = "World"
    shell.user_ns["data"] = {"k": 1}
    flag = {"option": " --interpolate", "short": " -i", "trait": ""}[how]
    if how == "trait":
        config(shell, "CompleteMagics.interpolate = True")
    run(shell, f"%%complete{flag}\nHello {{name}}, {{{{literal}}}} {{data}}")
    assert prompt_sent(server) == "Hello World, {literal} {'k': 1}"


def test_interpolation_names_the_missing_variable(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with pytest.raises(UsageError) as caught:
        run(shell, "%%complete -i\nHello {nobody_defined_this}")
    assert "'nobody_defined_this'" in str(caught.value)
    assert "\n" not in str(caught.value)
    assert server.requests == []


# == 6. bad input: one-line UsageError before any request =====================================
@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (f"%%complete -t 3\n{PROMPT}", "temperature"),
        (f"%%complete -t -0.1\n{PROMPT}", "temperature"),
        (f"%%complete --top-p 1.5\n{PROMPT}", "top_p"),
        (f"%%complete --max-tokens 0\n{PROMPT}", "max-tokens"),
        (f"%%complete -n 0\n{PROMPT}", "-n"),
        (f"%%complete --stop a --stop b --stop c --stop d --stop e\n{PROMPT}", "stop"),
        (f"%%complete --presence-penalty 2.5\n{PROMPT}", "presence_penalty"),
        (f"%%complete --bogus 1\n{PROMPT}", "unknown option '--bogus'"),
        (f"%%complete -t hot\n{PROMPT}", "invalid float"),
        ("%%complete\n   \n\t\n", "empty"),
        ("%complete", "empty"),
        ("%complete -t 0.5", "empty"),
        (f"%%complete -e embeddings\n{PROMPT}", "invalid choice"),
        (f"%%complete --echo\n{PROMPT}", "--echo"),
        (f"%%complete --suffix x\n{PROMPT}", "--suffix"),
        (f"%%complete -e completions -s sys\n{PROMPT}", "--system"),
        (f"%%complete -m davinci-002 --logprobs 6\n{PROMPT}", "logprobs"),
    ],
)
def test_bad_input_fails_before_any_request(
    shell: InteractiveShell, server: FakeOpenAIServer, cell: str, message: str
) -> None:
    with capture_output() as cap, pytest.raises(UsageError) as caught:
        shell.run_cell(cell)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value).strip()
    assert "Traceback" not in cap.stderr + cap.stdout
    assert server.requests == []
    assert len(session_log) == 0


def test_bad_endpoint_trait_is_refused(shell: InteractiveShell) -> None:
    with capture_output():
        config(shell, "CompleteMagics.endpoint = 'embeddings'")
    assert magics(shell).endpoint == "auto"


def test_missing_key_explains_how_to_set_it(
    shell: InteractiveShell, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    config(shell, f"CompleteMagics.base_url = {DEFAULT_BASE_URL!r}")
    with pytest.raises(UsageError) as caught:
        run(shell, f"%%complete\n{PROMPT}")
    assert "OPENAI_API_KEY" in str(caught.value)
    assert "ipython_config.py" in str(caught.value)
    assert server.requests == []


# == server and network faults (GUIDE section 6) ============================================
def _refused() -> dict:
    return {"base_url": f"http://127.0.0.1:{closed_port()}/v1", "max_retries": 0}


def _unaccepting() -> dict:
    host, port = unaccepting_address()
    return {"base_url": f"http://{host}:{port}/v1", "connect_timeout": 0.3, "max_retries": 0}


# (faults, config, status, message parts, requests made, text shown: "none" / "partial" / "full")
FAULT_ROWS = [
    pytest.param(
        [{"status": 429, "times": None}],
        {"max_retries": 0},
        "error",
        ["429 Rate limited", "Rate limit reached for requests"],
        1,
        "none",
        id="429",
    ),
    pytest.param(
        [{"status": 429, "retry_after": "0", "times": None}],
        {"max_retries": 2},
        "error",
        ["429 Rate limited"],
        3,
        "none",
        id="429-retry-after-exhausted",
    ),
    pytest.param([{"status": 429, "retry_after": "0"}], {}, "ok", [], 2, "full", id="429-retry-after-then-ok"),
    pytest.param([{"status": 500, "retry_after_ms": "10"}], {}, "ok", [], 2, "full", id="500-then-ok"),
    pytest.param(
        [{"status": 502, "body_style": "html", "retry_after_ms": "10"}], {}, "ok", [], 2, "full", id="502-then-ok"
    ),
    pytest.param(
        [{"status": 503, "retry_after_ms": "10", "times": 2}], {}, "ok", [], 3, "full", id="503-twice-then-ok"
    ),
    pytest.param(
        [{"status": 401}], {}, "error", ["401 Authentication failed", "Incorrect API key provided"], 1, "none", id="401"
    ),
    pytest.param([{"status": 403}], {}, "error", ["403 Permission denied", "Country, region"], 1, "none", id="403"),
    pytest.param([{"status": 404}], {}, "error", ["404 Not found", "does not exist"], 1, "none", id="404"),
    pytest.param(
        [{"status": 400, "message": "Invalid 'messages'."}],
        {},
        "error",
        ["400 Bad request", "Invalid 'messages'."],
        1,
        "none",
        id="400",
    ),
    pytest.param(
        [{"status": 502, "body_style": "html", "times": None}],
        {"max_retries": 0},
        "error",
        ["502 Server error", "502 Bad Gateway"],
        1,
        "none",
        id="html-error-page",
    ),
    pytest.param(
        [], _refused, "error", ["Could not connect", "Connection refused"], 0, "none", id="connection-refused"
    ),
    pytest.param([], _unaccepting, "error", ["Timed out connecting", "0.3 s"], 0, "none", id="connect-timeout"),
    pytest.param(
        [{"stall_after": 3, "stall": 2}],
        {"timeout": 0.5},
        "error",
        ["stream stalled", "0.5 s"],
        1,
        "partial",
        id="read-timeout-mid-stream",
    ),
    pytest.param([{"drop_after": 4}], {}, "error", ["stream was cut off"], 1, "partial", id="dropped-mid-stream"),
    pytest.param([{"malformed_after": 3}], {}, "error", ["malformed chunk"], 1, "partial", id="malformed-chunk"),
    pytest.param(
        [{"error_after": 3, "message": "The engine crashed."}],
        {},
        "error",
        ["error mid-stream", "The engine crashed."],
        1,
        "partial",
        id="error-object-mid-stream",
    ),
    pytest.param([{"no_done": True}], {}, "truncated", ["without [DONE]"], 1, "full", id="eof-without-done"),
    pytest.param([{"empty_choices_first": True}], {}, "ok", [], 1, "full", id="empty-choices-first"),
]


@pytest.mark.parametrize(("faults", "settings", "status", "parts", "requests", "shown"), FAULT_ROWS)
def test_fault_through_the_magic(
    shell: InteractiveShell,
    server: FakeOpenAIServer,
    faults: list,
    settings: Any,
    status: str,
    parts: list[str],
    requests: int,
    shown: str,
) -> None:
    for fault in faults:
        server.add_fault(**fault)
    for name, val in (settings() if callable(settings) else settings).items():
        config(shell, f"CompleteMagics.{name} = {val!r}")
    cap = run(shell, f"%%complete\n{PROMPT}")
    record = session_log[-1]
    assert record["status"] == status
    assert len([r for r in server.requests if r.method == "POST"]) == requests  # a 404 may list models once
    assert "Traceback" not in cap.stdout + cap.stderr
    (shown_status,) = status_lines(cap)  # one status line, and nothing on stdout
    assert cap.stdout == "" and ("finish:" in shown_status if status == "ok" else shown_status.endswith(status))
    if status == "ok":
        assert cap.stderr == ""
    else:
        assert one_line(cap.stderr), cap.stderr
        assert "<" not in cap.stderr  # no HTML markup
        for part in parts:
            assert part in cap.stderr
        if status == "error":
            assert record["error"] and all(part in record["error"] for part in parts)
            assert status in shown_status
        if server.requests and parts and parts[0][:3].isdigit():
            posted = [r for r in server.requests if r.method == "POST"]
            assert f"[request id {posted[-1].request_id}]" in cap.stderr
    texts = final_texts(cap)
    if shown == "none":
        assert texts == [] and record["completion"] == ""
    elif shown == "full":
        assert texts == [ANSWER] == [record["completion"]]
    else:
        assert texts == [record["completion"]]
        assert record["completion"] and ANSWER.startswith(record["completion"]) and record["completion"] != ANSWER
        assert f"partial text kept: {len(record['completion'])} chars" in cap.stderr


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "no-stream"])
def test_huge_response(shell: InteractiveShell, server: FakeOpenAIServer, stream: bool) -> None:
    if stream:
        server.add_fault(chunks=40_000)  # about 6 MB of events
    else:
        server.add_fault(huge=1_000_000)  # one 1 MB answer
    cap = run(shell, f"%%complete{'' if stream else ' --no-stream'} -o answer\n{PROMPT}")
    text = shell.user_ns["answer"]
    assert len(text) >= (1_000_000 if not stream else 40_000 * 3)
    assert final_texts(cap) == [text] == [session_log[-1]["completion"]]
    assert session_log[-1]["status"] == "ok" and cap.stderr == ""


def test_shell_is_usable_after_a_fault(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    server.add_fault(drop_after=3)
    run(shell, f"%%complete\n{PROMPT}")
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert final_texts(cap) == [ANSWER] and cap.stderr == ""


# == 7. Ctrl-C ==============================================================================
def run_interrupted(shell: InteractiveShell, cell: str) -> capture_output:
    """Run a cell that gets Ctrl-C; a KeyboardInterrupt escaping the magic fails the test (not the session)."""
    try:
        return run(shell, cell)
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped %%complete")


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_mid_stream(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    server.add_fault(words=SLOW_WORDS, chunk_delay=0.15)  # 200 words: a 30 s stream
    before, asked = _served(server), len(server.requests)
    streaming: set = set()
    # Once the request is in, and a second of words has come: Ctrl-C mid-stream.
    fired = interrupt_when(lambda: len(server.requests) > asked, after=1.0,
                           before=lambda: streaming.update(_served(server) - before))
    started = time.monotonic()
    cap = run_interrupted(shell, "%%complete\nx")
    fired.join()
    assert time.monotonic() - started < 30  # the stream was stopped, not waited out
    record = session_log[-1]
    assert record["status"] == "interrupted"
    full = "".join(SLOW_WORDS)
    assert record["completion"] and full.startswith(record["completion"]) and record["completion"] != full
    assert final_texts(cap) == [record["completion"]]  # the partial text stays on screen
    assert cap.stderr == "" and [n[:12] for n in notes(cap)] == ["Interrupted:"]  # a note: muted, not red
    assert "Traceback" not in cap.stdout and status(cap).endswith(" · interrupted") and "finish" not in status(cap)
    assert shown_order(cap)[-2:] == ["status", "note"]  # the answer, the status line, then the note
    assert streaming, "no stream connection was seen on the server"
    assert wait_closed(server, streaming), "the stream's connection was left open"
    cap = run(shell, f"%%complete\n{PROMPT}")  # the kernel stays usable
    assert final_texts(cap) == [ANSWER] and session_log[-1]["status"] == "ok"


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_while_waiting_for_the_first_byte(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    server.add_fault(delay=30)
    asked = len(server.requests)
    fired = interrupt_when(lambda: len(server.requests) > asked)  # the request is in, waiting out its delay
    started = time.monotonic()
    cap = run_interrupted(shell, f"%%complete\n{PROMPT}")
    fired.join()
    assert time.monotonic() - started < 30  # not the 30 s wait for the first byte
    assert session_log[-1]["status"] == "interrupted"
    assert answer_outputs(cap) == [] and cap.stderr == "" and notes(cap)[0].startswith("Interrupted")
    assert status(cap).endswith(" · interrupted") and shown_order(cap) == ["status", "note"]
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert final_texts(cap) == [ANSWER]


# == 9. models ===============================================================================
def test_complete_models_lists_the_server_models(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    table = value(shell, "%complete_models")
    assert table.columns == ["id", "owned_by", "created"]
    assert [row["id"] for row in table.rows] == sorted(DEFAULT_MODELS)
    assert all(row == {"id": row["id"], "owned_by": "fake", "created": "2023-11-14"} for row in table.rows)
    text = run(shell, "%complete_models").stdout
    assert "davinci-002" in text and "2023-11-14" in text
    assert "<td>gpt-4o-mini</td>" in table._repr_html_()


def test_complete_models_describes_one(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    table = value(shell, "%complete_models fake-chat")
    assert table.rows == [{"id": "fake-chat", "owned_by": "fake", "created": "2023-11-14"}]
    assert server.requests[-1].path == "/v1/models/fake-chat"


def test_complete_models_unknown_id_is_one_red_line(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with capture_output() as cap:
        result = shell.run_cell("%complete_models no-such-model").result
    assert result is None
    assert one_line(cap.stderr)
    assert cap.stderr.startswith("404 Not found: The model `no-such-model` does not exist")
    assert "Traceback" not in cap.stderr and cap.outputs == [] and cap.stdout == ""


# == 10. the canary key never shows ==========================================================
def _exercise(shell: InteractiveShell, srv: FakeOpenAIServer, tmp_path: Path, restore_key: str) -> list[str]:
    """Run ok, failing and listing cells; return everything they printed, displayed or raised."""
    seen: list[str] = []

    def cell(source: str) -> None:
        with capture_output() as cap:
            try:
                result = shell.run_cell(source).result
            except UsageError as exc:
                result = None
                seen.append(str(exc))
        seen.extend(
            [cap.stdout, cap.stderr, repr(result), json.dumps([o.data for o in cap.outputs], ensure_ascii=False)]
        )

    config(shell, f"CompleteMagics.log_file = {str(tmp_path / 'calls.jsonl')!r}")
    config(shell, "CompleteMagics.max_retries = 0")
    cell(f"%%complete\n{PROMPT}")
    cell(f"%complete -n 2 --no-stream {PROMPT}")
    srv.add_fault(status=500, message=f"upstream rejected the key {CANARY_KEY}")
    cell(f"%%complete\n{PROMPT}")
    srv.add_fault(status=401, message=f"Incorrect API key provided: {CANARY_KEY}.")
    cell(f"%%complete\n{PROMPT}")
    srv.add_fault(drop_after=3)
    cell(f"%%complete\n{PROMPT}")
    srv.add_fault(error_after=3, message=f"worker failed for key {CANARY_KEY}")
    cell(f"%%complete\n{PROMPT}")
    srv.add_fault(status=502, body_style="html")
    cell(f"%%complete\n{PROMPT}")
    cell(f"%%complete -t 3\n{PROMPT}")
    cell("%config CompleteMagics")
    cell("%config CompleteMagics.api_key")
    cell("%complete_models")
    cell("%complete_models no-such-model")
    config(shell, "CompleteMagics.api_key = 'sk-wrong-key-0000000000000000'")
    cell(f"%%complete\n{PROMPT}")  # a real 401 from the server that only knows the canary key
    config(shell, f"CompleteMagics.api_key = {restore_key!r}" if restore_key else "CompleteMagics.api_key = None")
    cell("%complete_log -n 50")
    for suffix in ("json", "jsonl", "csv"):
        cell(f"%complete_log --save {tmp_path / ('export.' + suffix)}")
    seen.extend(
        [
            session_log.to_json(),
            session_log.to_jsonl(),
            session_log.to_csv(),
            repr(session_log),
            repr(magics(shell).settings()),
            repr(magics(shell).client()),
            repr(list(session_log)),
        ]
    )
    return seen


@pytest.mark.parametrize("where", ["%config", "environment", "ipython_config"])
def test_canary_key_never_leaks(
    make_shell: Callable[..., InteractiveShell], canary_server: FakeOpenAIServer, tmp_path: Path, where: str
) -> None:
    cfg = Config()
    cfg.CompleteMagics.model = "fake-chat"
    env = {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": canary_server.url}
    if where == "environment":
        env["OPENAI_API_KEY"] = CANARY_KEY
    elif where == "ipython_config":
        cfg.CompleteMagics.api_key = CANARY_KEY
    shell = make_shell(cfg, env)
    if where == "%config":
        config(shell, f"CompleteMagics.api_key = {CANARY_KEY!r}")
    seen = _exercise(shell, canary_server, tmp_path, "" if where == "environment" else CANARY_KEY)

    # the cells really ran, with the canary key on the wire
    assert canary_server.requests[0].headers["Authorization"] == f"Bearer {CANARY_KEY}"
    statuses = [r["status"] for r in session_log]
    assert statuses.count("ok") >= 2 and statuses.count("error") >= 5
    assert any("401 Authentication failed: Incorrect API key provided: sk-wr" in text for text in seen)
    if where != "environment":
        assert any("Current: <set: sk-" in text for text in seen)
    assert (tmp_path / "calls.jsonl").exists() and (tmp_path / "export.csv").exists()

    fragment = CANARY_KEY[-12:]  # also catches a key cut short
    for text in seen:
        assert CANARY_KEY not in text and fragment not in text
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert CANARY_KEY.encode() not in data and fragment.encode() not in data, path
    for record in session_log:
        assert fragment not in json.dumps(record)


# == option values from variables, fewer choices than asked ===================================
def test_dollar_name_option_values_come_from_the_namespace(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    shell.user_ns["chosen"] = "davinci-002"
    run(shell, f"%%complete -m $chosen\n{PROMPT} $chosen")
    body = server.requests[-1].body
    assert server.requests[-1].path == "/v1/completions"
    assert body["model"] == "davinci-002"
    assert body["prompt"] == f"{PROMPT} $chosen"  # the prompt is never expanded


def test_dollar_name_that_is_not_defined_is_a_usage_error(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with pytest.raises(UsageError, match=r"\$nowhere: no variable named 'nowhere'"):
        run(shell, f"%%complete -m $nowhere\n{PROMPT}")
    assert server.requests == []


def test_fewer_choices_than_asked_is_noted(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", ignore_n=True)  # one choice whatever n says, as llama.cpp
    cap = run(shell, f"%%complete -n 3\n{PROMPT}")
    assert notes(cap) == ["Note: asked for 3 choices, the server returned 1"] and cap.stderr == ""
    cap = run(shell, f"%%complete -n 3\n{PROMPT}")
    assert notes(cap) == []


def test_a_prompt_naming_a_variable_without_i_gets_a_hint(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    """Issue 13: {topic} is sent as written, and one line says how to fill it."""
    shell.user_ns["topic"] = "owls"
    cap = run(shell, "%%complete\nTell me about {topic}.")
    assert last_body(server)["messages"][-1]["content"] == "Tell me about {topic}."
    assert notes(cap) == ["Note: {topic} sent as written; add -i to fill it from your variables"]
    assert shown_order(cap)[-2:] == ["status", "note"] and cap.stderr == ""  # after the status line, muted
    cap = run(shell, "%%complete -i\nTell me about {topic}.")
    assert last_body(server)["messages"][-1]["content"] == "Tell me about owls." and notes(cap) == []
    cap = run(shell, "%%complete\nTell me about {nothing_defined}.")
    assert notes(cap) == []


# -- issue 22: the length limit named, notes muted and after the status line ------------------------------
LONG_PROMPT = " ".join(f"w{i}" for i in range(300))  # the fake server answers 301 words: cut at 256


def test_an_answer_cut_at_the_default_limit_says_which_and_how_to_raise_it(make_shell, server) -> None:
    from traitlets.config import Config

    shell = make_shell()
    raise_it = "raise it with --max-tokens 1024 or %config CompleteMagics.max_tokens = 1024"
    cap = run(shell, f"%%complete -m fake-chat\n{LONG_PROMPT}")
    assert status(cap).endswith(f" · stopped at max tokens 256 (the default): {raise_it}")
    assert "finish: length" not in status(cap) and notes(cap) == [] and cap.stderr == ""
    shell.run_line_magic("config", "CompleteMagics.max_tokens = 5")
    assert status(run(shell, f"%%complete -m fake-chat\n{PROMPT} a b c")).endswith(
        f" · stopped at max tokens 5 (set by %config): {raise_it}")
    assert status(run(shell, f"%%complete -m fake-chat --max-tokens 2\n{PROMPT}")).endswith(
        " · stopped at max tokens 2 (as asked): raise it with --max-tokens 1024")
    start = Config()
    start.CompleteMagics.max_tokens = 4  # as ipython_config.py would set it
    assert status(run(make_shell(start), f"%%complete -m fake-chat\n{PROMPT} a b c")).endswith(
        f" · stopped at max tokens 4 (from the config file): {raise_it}")


def test_notes_are_muted_displays_after_the_status_line_and_errors_red(shell, server) -> None:
    server.add_fault(path="/chat", ignore_n=True)
    shell.user_ns["topic"] = "owls"
    cap = run(shell, "%%complete -n 3\nTell me about {topic}.")
    order = shown_order(cap)  # the answers' displays and their updates, then the status line, then the notes
    assert order[-3:] == ["status", "note", "note"] and set(order[:-3]) == {"answer"}
    assert notes(cap) == ["Note: {topic} sent as written; add -i to fill it from your variables",
                          "Note: asked for 3 choices, the server returned 1"]
    html = cap.outputs[-1].data["text/html"]
    assert html.startswith('<div class="jo-note"') and "var(--jp-ui-font-color2" in html  # the status line's style
    assert cap.stderr == ""
    server.add_fault(drop_after=4)
    cap = run(shell, f"%%complete\n{PROMPT}")
    assert notes(cap) == [] and one_line(cap.stderr) and "partial text kept" in cap.stderr  # errors: red, stderr
