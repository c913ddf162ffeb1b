"""Tests of ``%%chat`` and ``%chat_history`` in a real shell against the project's test server.

Cell ids are simulated as front ends send them: ``shell.run_cell(src, cell_id=…)`` (what
ipykernel does with the execute request's ``metadata.cellId``), and in one test through a real
kernel, with execute requests carrying that metadata. Sections: loading and help, memory across
cells, re-runs, control (reset, system, caps), failures and Ctrl-C, endpoints, history, the log,
and the real servers (llama-cpp-python's and llama-server, where the history must reach the model).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from IPython.utils.capture import capture_output

from jupyter_openai.magics.chat import ChatMagics
from jupyter_openai.session.conversation import Conversation, conversations
from jupyter_openai.session.log import session_log
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.cells import SLOW_WORDS, final_texts, interrupt_when, run, value
from tests.support.shown import notes, shown_order, status


def body(server: FakeOpenAIServer) -> dict:
    return server.requests[-1].body


def sent(server: FakeOpenAIServer) -> list[tuple[str, str]]:
    """The (role, text) of each message of the last request (chat messages, or responses input)."""
    data = body(server)
    messages = data.get("messages") or data.get("input")
    head = [("system", data["instructions"])] if data.get("instructions") else []
    return head + [(m["role"], m["content"]) for m in messages]


def chat(shell: InteractiveShell, text: str, cell_id: str | None = None, line: str = "") -> capture_output:
    return run(shell, f"%%chat {line}\n{text}", cell_id=cell_id)


# == loading and help =========================================================================
def test_load_registers_chat_and_unload_removes_it_with_its_events(shell: InteractiveShell) -> None:
    assert shell.find_cell_magic("chat") and shell.find_line_magic("chat_history")
    chat_magics = shell.magics_manager.registry["ChatMagics"]
    assert chat_magics.pre_run_cell in shell.events.callbacks["pre_run_cell"]
    shell.run_line_magic("unload_ext", "jupyter_openai")
    assert shell.find_cell_magic("chat") is None and shell.find_line_magic("chat_history") is None
    assert "ChatMagics" not in shell.magics_manager.registry
    callbacks = shell.events.callbacks["pre_run_cell"]
    assert not any(isinstance(getattr(cb, "__self__", None), ChatMagics) for cb in callbacks)
    shell.run_line_magic("load_ext", "jupyter_openai")
    assert sum(isinstance(getattr(cb, "__self__", None), ChatMagics)
               for cb in shell.events.callbacks["pre_run_cell"]) == 1


def test_help_is_generated_with_complete_options(shell: InteractiveShell) -> None:
    doc = shell.find_cell_magic("chat").__doc__
    complete_doc = shell.find_cell_magic("complete").__doc__
    for flag in ("--name", "--reset", "--max-turns", "--token-budget", "--system", "--max-tokens", "--temperature",
                 "--reasoning-effort", "--verbosity", "--out", "--endpoint", "--no-stream", "--format"):
        assert flag in doc, flag
    for flag in ("--max-tokens", "--reasoning-effort", "--no-reasoning", "--interpolate"):
        assert flag in complete_doc
    for flag in ("--echo", "--suffix", "-n N"):  # completions only, or several answers: not a turn's
        assert flag not in doc and flag in complete_doc
    assert "re-running a cell replaces its own turn" in " ".join(doc.split())


# == memory across cells ======================================================================
def test_the_next_cell_sees_the_earlier_turns(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    cap = chat(shell, "My name is Ada", "cell-1", line="--system 'You are terse.'")
    assert final_texts(cap) == ["Echo: Ada is name My"]  # shown as %%complete shows it
    assert status(cap).startswith("fake-chat · ") and status(cap).endswith("finish: stop")
    assert sent(server) == [("system", "You are terse."), ("user", "My name is Ada")]
    chat(shell, "What is my name?", "cell-2")
    assert sent(server) == [("system", "You are terse."), ("user", "My name is Ada"),
                            ("assistant", "Echo: Ada is name My"), ("user", "What is my name?")]
    assert body(server)["max_tokens"] == 256  # %%complete's defaults apply


def test_complete_options_apply_and_config_is_complete_magics(shell: InteractiveShell,
                                                              server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", "CompleteMagics.temperature = 0.4")
    chat(shell, "hello", "a", line="--max-tokens 20 -o answer -q")
    assert (body(server)["temperature"], body(server)["max_tokens"]) == (0.4, 20)
    assert shell.user_ns["answer"] == "Echo: hello"
    chat(shell, "again", "b", line="-t 0.9 -m gpt-4o-mini --reasoning-effort low")
    assert (body(server)["temperature"], body(server)["model"], body(server)["reasoning_effort"]) == (
        0.9, "gpt-4o-mini", "low")


def test_without_cell_ids_every_run_appends(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "one")
    chat(shell, "one")
    assert [t.user for t in conversations["default"]] == ["one", "one"]
    assert len(sent(server)) == 3


def test_conversations_are_kept_apart_by_name(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "for a", "x", line="--name a")
    chat(shell, "for b", "y", line="--name b")
    assert sent(server) == [("user", "for b")]
    assert len(conversations["a"]) == len(conversations["b"]) == 1


def test_the_line_form_is_a_turn_too(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    run(shell, "%chat hi there", cell_id="l1")
    run(shell, "%chat --name default and you", cell_id="l2")
    assert [u for r, u in sent(server) if r == "user"] == ["hi there", "and you"]


# == re-runs ==================================================================================
def test_rerunning_a_cell_replaces_its_turn_in_place(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    for i in range(1, 6):
        chat(shell, f"question {i}", f"c{i}")
    chat(shell, "question three, edited", "c3")
    assert [u for r, u in sent(server) if r == "user"] == ["question 1", "question 2", "question three, edited"]
    assert [t.user for t in conversations["default"]] == ["question 1", "question 2", "question three, edited",
                                                           "question 4", "question 5"]
    assert (session_log[-1]["turn"], session_log[-1]["messages_sent"]) == (3, 5)
    chat(shell, "question 5", "c5")  # cell 5 re-run sees the edited turn 3
    assert ("user", "question three, edited") in sent(server) and ("user", "question 3") not in sent(server)
    assert len(conversations["default"]) == 5


def test_two_turns_in_one_cell_keep_their_own_places(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    cell = "%chat first {}\n%chat second {}"
    run(shell, cell.format(1, 1), cell_id="both")
    run(shell, "%chat after", cell_id="next")
    run(shell, cell.format(2, 2), cell_id="both")
    assert [(t.key, t.user) for t in conversations["default"]] == [
        ("both", "first 2"), ("both#2", "second 2"), ("next", "after")]
    assert [u for r, u in sent(server) if r == "user"] == ["first 2", "second 2"]


def test_the_cell_id_follows_the_cell_being_run(shell: InteractiveShell) -> None:
    chat_magics = shell.magics_manager.registry["ChatMagics"]
    with capture_output():
        shell.run_cell("seen = get_ipython().magics_manager.registry['ChatMagics'].cell_id", cell_id="abc")
    assert shell.user_ns["seen"] == "abc" and chat_magics.cell_id is None  # cleared after the cell
    with capture_output():
        shell.run_cell("seen = get_ipython().magics_manager.registry['ChatMagics'].cell_id")
    assert shell.user_ns["seen"] is None


# == control ==================================================================================
def test_reset_starts_over_and_keeps_the_system_message(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "first", "a", line="-s tutor")
    chat(shell, "second", "b")
    cap = chat(shell, "fresh start", "c", line="--reset")
    assert "started over" in cap.stdout
    assert sent(server) == [("system", "tutor"), ("user", "fresh start")]
    run(shell, "%chat --reset")  # the line form alone sends nothing
    assert len(conversations["default"]) == 0 and len(server.requests) == 3
    run(shell, '%chat -s ""')
    assert conversations["default"].system is None


def test_max_turns_drops_the_oldest_with_a_one_line_note(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "t1", "a", line="--max-turns 2")
    chat(shell, "t2", "b")
    cap = chat(shell, "t3", "c")
    assert [u for r, u in sent(server) if r == "user"] == ["t2", "t3"]
    assert notes(cap) == ["Note: dropped the 1 oldest turn(s) of conversation 'default' to send at most 2 turn(s)"]
    assert cap.stderr == "" and shown_order(cap)[-2:] == ["status", "note"]  # muted, after the status line
    assert [t.user for t in conversations["default"]] == ["t2", "t3"]


def test_the_token_budget_bounds_what_is_sent(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", "CompleteMagics.chat_max_tokens = 60")
    for i in range(4):
        chat(shell, f"turn {i} " + "word " * 20, f"k{i}")
    sent_tokens = sum(len(text) / 4 + 4 for _, text in sent(server))
    assert sent_tokens <= 60 + 8 and len(sent(server)) < 7
    assert "dropped" in notes(chat(shell, "x " * 30, "k9"))[0]
    chat(shell, "short", "k10", line="--token-budget 1000")  # the conversation's own cap wins
    assert conversations["default"].max_tokens == 1000


def test_bad_caps_and_bad_uses_are_one_line_usage_errors(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    for line, match in (("--max-turns 0", "at least 1"), ("--token-budget -3", "at least 1"),
                        ("-n 2", "unknown option"), ("--echo", "unknown option"),
                        ("-e completions", "chat and responses"),
                        ("--name ' '", "needs a name"), ("-m davinci-002", "chat and responses")):
        with pytest.raises(UsageError, match=match):
            chat(shell, "hello", "z", line=line)
    with pytest.raises(UsageError, match="empty"):
        run(shell, "%%chat\n   ")
    assert server.requests == [] and len(conversations["default"]) == 0


# == failures and Ctrl-C ======================================================================
def test_a_failed_turn_is_not_added(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "good", "a")
    server.add_fault(path="/chat", status=400, message="context too long")
    cap = chat(shell, "bad", "b")
    assert "400" in cap.stderr and "context too long" in cap.stderr and "Traceback" not in cap.stderr
    assert "Turn 2 was not added" in cap.stderr
    assert [t.user for t in conversations["default"]] == ["good"]
    assert session_log[-1]["status"] == "error" and session_log[-1]["conversation"] == "default"
    chat(shell, "bad, retried", "b")
    assert [t.user for t in conversations["default"]] == ["good", "bad, retried"]


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_an_interrupted_turn_is_kept_with_its_partial_text(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "before", "a")
    server.add_fault(words=SLOW_WORDS, chunk_delay=0.15)  # 200 words: a 30 s stream
    asked = len(server.requests)
    fired = interrupt_when(lambda: len(server.requests) > asked, after=1.0)  # Ctrl-C mid-stream
    try:
        chat(shell, "long answer please", "b")
    except KeyboardInterrupt:
        pytest.fail("KeyboardInterrupt escaped %%chat")
    finally:
        fired.join()
    last = conversations["default"].turns[-1]
    assert last.status == "interrupted" and last.assistant and "".join(SLOW_WORDS).startswith(last.assistant)
    assert "(interrupted)" in repr(conversations["default"])
    chat(shell, "after", "c")
    assert ("assistant", last.assistant) in sent(server)


def test_the_shell_stays_usable_mid_conversation_after_a_dropped_stream(shell: InteractiveShell,
                                                                         server: FakeOpenAIServer) -> None:
    chat(shell, "one", "a")
    server.add_fault(drop_after=3)
    chat(shell, "two", "b")
    kept = [t.user for t in conversations["default"]]
    chat(shell, "three", "c")
    assert [t.user for t in conversations["default"]] == [*kept, "three"]


# == endpoints ================================================================================
def test_responses_gets_the_history_as_input_and_instructions(shell: InteractiveShell,
                                                              server: FakeOpenAIServer) -> None:
    chat(shell, "hi", "a", line="-s sys")
    chat(shell, "and now?", "b", line="-e responses")
    assert server.requests[-1].path == "/v1/responses"
    assert body(server)["instructions"] == "sys"
    assert sent(server) == [("system", "sys"), ("user", "hi"), ("assistant", "Echo: hi"), ("user", "and now?")]
    assert {item["type"] for item in body(server)["input"]} == {"message"}  # llama-server needs the type
    assert conversations["default"].turns[-1].assistant == "Echo: now? and"


# == history ==================================================================================
def test_chat_history_shows_saves_loads_and_clears(shell: InteractiveShell, server: FakeOpenAIServer,
                                                   tmp_path: Path) -> None:
    chat(shell, "My name is Ada", "a", line="-s tutor")
    shown = value(shell, "%chat_history")
    assert isinstance(shown, Conversation) and shown is conversations["default"]
    assert "**1. User:** My name is Ada" in shown._repr_markdown_()
    path = tmp_path / "talk.json"
    assert "Saved 1 turn(s)" in run(shell, f"%chat_history --save {path}").stdout
    assert json.loads(path.read_text("utf-8"))["messages"][0] == {"role": "system", "content": "tutor"}
    assert "cleared" in run(shell, "%chat_history --clear").stdout and len(conversations["default"]) == 0
    assert "Loaded 1 turn(s)" in run(shell, f"%chat_history copy --load {path}").stdout
    assert conversations["copy"].system == "tutor" and conversations["copy"].name == "copy"
    chat(shell, "What is my name?", "b", line="--name copy")
    assert ("user", "My name is Ada") in sent(server)
    with pytest.raises(UsageError, match="cannot read"):
        run(shell, f"%chat_history --load {tmp_path / 'missing.json'}")
    with pytest.raises(UsageError, match="one of"):
        run(shell, f"%chat_history --clear --save {path}")


def test_saving_a_lone_surrogate_over_an_old_file_writes_it_whole(shell: InteractiveShell, server: FakeOpenAIServer,
                                                                  tmp_path: Path) -> None:
    path = tmp_path / "saved" / "talk.json"
    path.parent.mkdir()
    path.write_text('{"turns": []}', "utf-8")
    shell.user_ns["pasted"] = "half an emoji \ud83d"
    run(shell, "%chat_history --load " + str(path))
    with capture_output():
        shell.run_cell("import jupyter_openai; jupyter_openai.conversations['default'].add(pasted, 'noted')")
    assert "Saved 1 turn(s)" in run(shell, f"%chat_history --save {path}").stdout
    assert [p.name for p in path.parent.iterdir()] == ["talk.json"]
    run(shell, f"%chat_history again --load {path}")
    assert conversations["again"].turns[0].user == "half an emoji \ud83d"


@pytest.mark.parametrize(("data", "words"), [
    ({"turns": 5}, "'turns' is a list of turns, got a number (5)"),
    ({"system": {"a": 1}, "turns": []}, "'system' is text or null, got an object"),
    ({"turns": [{"user": "hi", "assistant": {"text": "x"}}]}, "'turns[0].assistant' is text or null"),
])
def test_loading_a_wrong_file_is_one_line_naming_the_field(shell: InteractiveShell, server: FakeOpenAIServer,
                                                           tmp_path: Path, data: dict, words: str) -> None:
    chat(shell, "kept", "a")
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps(data), "utf-8")
    with capture_output() as cap, pytest.raises(UsageError) as caught:
        shell.run_cell(f"%chat_history --load {path}")
    assert words in str(caught.value) and str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert "Traceback" not in cap.stdout + cap.stderr
    assert [t.user for t in conversations["default"]] == ["kept"]  # the conversation is left as it was
    chat(shell, "next", "b")
    assert sent(server)[-3:] == [("user", "kept"), ("assistant", "Echo: kept"), ("user", "next")]


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_a_refused_turn_is_resent_with_its_refusal(shell: InteractiveShell, server: FakeOpenAIServer,
                                                   endpoint: str) -> None:
    from tests.servers.fake.models import REFUSAL_TEXT

    cap = chat(shell, "tell me a secret", "a", line=f"-m fake-refuser -e {endpoint}")
    assert "Refused" in cap.stdout + cap.stderr + str(final_texts(cap))
    turn = conversations["default"].turns[0]
    assert (turn.assistant, turn.refusal) == ("", REFUSAL_TEXT)
    chat(shell, "why not?", "b", line=f"-e {endpoint}")
    assert sent(server)[-2:] == [("assistant", REFUSAL_TEXT), ("user", "why not?")]
    assert f"(refused)] {REFUSAL_TEXT}" in repr(conversations["default"])


def test_from_python_the_conversation_is_a_message_list(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    with capture_output():
        shell.run_cell("from jupyter_openai import conversations\n"
                       "conversations['py'] = [{'role': 'system', 'content': 'S'}, {'role': 'user', 'content': 'u1'},"
                       " {'role': 'assistant', 'content': 'a1'}]\n"
                       "conversations['py'].add('u2', 'a2')\n")
    chat(shell, "u3", "p", line="--name py")
    assert sent(server) == [("system", "S"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"),
                            ("assistant", "a2"), ("user", "u3")]
    messages = value(shell, "conversations['py'].to_messages()")
    assert messages[-1] == {"role": "assistant", "content": "Echo: u3"}


# == the log ==================================================================================
def test_every_turn_is_a_log_record(shell: InteractiveShell, server: FakeOpenAIServer) -> None:
    chat(shell, "q1", "a", line="-s s --name tutor")
    chat(shell, "q2", "b", line="--name tutor")
    run(shell, "%%complete\nplain")
    records = list(session_log)[-3:]
    assert [(r["source"], r["conversation"], r["turn"], r["messages_sent"], r["prompt"]) for r in records] == [
        ("chat", "tutor", 1, 2, "q1"), ("chat", "tutor", 2, 4, "q2"), ("magic", None, None, 1, "plain")]
    import pandas

    frame = pandas.DataFrame(session_log)
    assert list(frame.columns[-3:]) == ["conversation", "turn", "messages_sent"]


# == a real kernel, cell ids from the execute request's metadata ==============================
def test_a_real_kernel_takes_the_cell_id_from_the_execute_request(server: FakeOpenAIServer, tmp_path: Path) -> None:
    from jupyter_client.manager import start_new_kernel

    env = {**os.environ, "OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.url,
           "IPYTHONDIR": str(tmp_path / "ipython"), "PYTHONPATH": os.pathsep.join(sys.path)}
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(tmp_path))
    try:
        def execute(code: str, cell_id: str | None = None) -> str:
            content = {"code": code, "silent": False, "store_history": True, "user_expressions": {},
                       "allow_stdin": False, "stop_on_error": True}
            message = client.session.msg("execute_request", content, metadata={"cellId": cell_id} if cell_id else {})
            client.shell_channel.send(message)
            deadline, out = time.monotonic() + 60, []
            while time.monotonic() < deadline:
                reply: Any = client.get_iopub_msg(timeout=60)
                if reply["parent_header"].get("msg_id") != message["header"]["msg_id"]:
                    continue
                if reply["msg_type"] == "stream" and reply["content"]["name"] == "stdout":
                    out.append(reply["content"]["text"])
                if reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
                    return "".join(out)
            raise AssertionError("the kernel did not finish the cell in time")

        execute("%load_ext jupyter_openai\n%config CompleteMagics.model = 'fake-chat'")
        execute("%%chat\nMy name is Ada", "cell-a")
        execute("%%chat\nWhat is my name?", "cell-b")
        execute("%%chat\nMy name is Bob", "cell-a")  # re-run of the first cell
        keys = execute("from jupyter_openai import conversations\n"
                       "print([(t.key, t.user) for t in conversations['default']])")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert keys.strip() == "[('cell-a', 'My name is Bob'), ('cell-b', 'What is my name?')]"
    assert [(m["role"], m["content"]) for m in body(server)["messages"]] == [("user", "My name is Bob")]


# == real servers: the history reaches the model ==============================================
def test_on_real_servers_the_history_reaches_the_model(make_shell: Any, real_server: Any) -> None:
    from traitlets.config import Config

    config = Config()
    config.CompleteMagics.model = real_server.model
    config.CompleteMagics.timeout = 60.0
    shell = make_shell(config, env={"OPENAI_API_KEY": real_server.api_key, "OPENAI_BASE_URL": real_server.base_url})
    endpoints = ["chat", "responses"] if real_server.name == "llama-server" else ["chat"]  # GUIDE 11
    for endpoint in endpoints:
        options = f"-e {endpoint} -t 0 --max-tokens 16 --no-stream"  # responses: at least 16
        chat(shell, "My name is Ada and I like prime numbers.", f"{endpoint}-1", line=f"{options} --name {endpoint}")
        chat(shell, "What is my name?", f"{endpoint}-2", line=f"{options} --name {endpoint}")
        with_history = session_log[-1]
        chat(shell, "What is my name?", f"{endpoint}-3", line=f"{options} --name alone --reset")
        alone = session_log[-1]
        assert [r["status"] for r in (with_history, alone)] == ["ok", "ok"], endpoint
        assert (with_history["turn"], with_history["messages_sent"], alone["messages_sent"]) == (2, 3, 1), endpoint
        assert with_history["prompt_tokens"] > alone["prompt_tokens"] + 8, endpoint  # the first turn was sent
        assert len(conversations[endpoint]) == 2 and conversations[endpoint].turns[1].assistant, endpoint
