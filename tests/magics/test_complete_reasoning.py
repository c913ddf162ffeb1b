"""``%%complete`` with reasoning models and refusals, in a real shell against the test server.

The answer (cell output, ``-o`` variable, log ``completion``) never holds the reasoning text; the
reasoning shows in a display of its own (``text/html`` with a ``<details>`` block) published before
the answer, folded once the answer is complete; ``--no-reasoning`` and ``show_reasoning = False`` hide
it; the log keeps ``reasoning`` and ``reasoning_tokens``. A refusal is one ``Refused:`` line and the
log's ``refusal`` column. (test_magics.py holds the magic's other tests.)
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from jupyter_openai.session.log import session_log
from tests.servers.fake import FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text
from tests.support.shown import answer_outputs, status

PROMPT = "one two three"
ANSWER = "Echo: three two one"
REASONING = reasoning_text(PROMPT)
REASONERS = ["fake-reasoner", "fake-reasoner-ollama"]
STREAMS = pytest.mark.parametrize("stream", ["", " --no-stream"], ids=["streamed", "plain"])


def run(shell: Any, cell: str) -> capture_output:
    with capture_output() as cap:
        shell.run_cell(cell)
    return cap


def by_display(cap: capture_output) -> dict[str, list[dict]]:
    """Display id -> every bundle published for it, in order (the dict keeps first-display order)."""
    found: dict[str, list[dict]] = {}
    for output in answer_outputs(cap):
        found.setdefault(output.transient["display_id"], []).append(output.data)
    return found


@pytest.mark.parametrize("model", REASONERS)
@STREAMS
def test_reasoning_has_its_own_display_above_the_answer(shell: Any, server: FakeOpenAIServer, model: str,
                                                        stream: str) -> None:
    cap = run(shell, f"%%complete -m {model} -o answer{stream}\n{PROMPT}")
    reasoning, answer = by_display(cap).values()  # first displayed first: the reasoning is above
    assert all("<details" in data["text/html"] for data in reasoning)
    assert reasoning[-1] == {
        "text/html": '<details class="jo-reasoning"><summary>Reasoning</summary><div style="opacity:0.65;'
                     f'font-size:90%;white-space:pre-wrap;margin:0.2em 0 0.4em 1em">{REASONING}</div></details>',
        "text/plain": f"[reasoning]\n{REASONING}"}
    assert all(' open>' in data["text/html"] for data in reasoning[:-1])  # open while the answer streams
    assert answer[-1] == {"text/markdown": ANSWER, "text/plain": ANSWER}  # the answer, rendered as Markdown
    assert all("text/html" not in data for data in answer)
    assert all(REASONING[:8] not in data["text/plain"] for data in answer)
    assert shell.user_ns["answer"] == ANSWER and cap.stderr == ""
    assert status(cap).startswith(f"{model} · 3 in / 16 out tokens (12 reasoning) · ") and cap.stdout == ""
    record = session_log[-1]
    assert (record["completion"], record["reasoning"], record["reasoning_tokens"], record["refusal"]) == (
        ANSWER, REASONING, 12, None)
    assert (record["completion_tokens"], record["status"]) == (16, "ok")


@pytest.mark.parametrize("how", ["option", "trait"])
@STREAMS
def test_reasoning_can_be_hidden(shell: Any, server: FakeOpenAIServer, how: str, stream: str) -> None:
    option = " --no-reasoning" if how == "option" else ""
    if how == "trait":
        shell.run_line_magic("config", "CompleteMagics.show_reasoning = False")
    cap = run(shell, f"%%complete -m fake-reasoner{option}{stream}\n{PROMPT}")
    (answer,) = by_display(cap).values()
    assert answer[-1] == {"text/markdown": ANSWER, "text/plain": ANSWER}
    assert all(REASONING[:8] not in text for data in answer for text in data.values())
    assert session_log[-1]["reasoning"] == REASONING  # hidden, still logged


def test_the_option_hides_reasoning_for_one_call_only(shell: Any, server: FakeOpenAIServer) -> None:
    hidden = run(shell, f"%%complete -m fake-reasoner --no-reasoning\n{PROMPT}")
    shown = run(shell, f"%%complete -m fake-reasoner\n{PROMPT}")
    assert not any("<details" in o.data.get("text/html", "") for o in hidden.outputs)
    assert any("<details" in o.data.get("text/html", "") for o in shown.outputs)


def test_quiet_shows_no_reasoning_either(shell: Any, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete -m fake-reasoner -q -o answer\n{PROMPT}")
    assert cap.outputs == [] and cap.stdout == "" and shell.user_ns["answer"] == ANSWER


def test_models_without_reasoning_show_no_reasoning_block(shell: Any, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete -m gpt-5.4-mini --reasoning-effort high\n{PROMPT}")
    assert not any("<details" in o.data.get("text/html", "") for o in cap.outputs)
    assert (session_log[-1]["reasoning"], session_log[-1]["reasoning_tokens"]) == (None, 16)


def test_options_reach_the_chat_body(shell: Any, server: FakeOpenAIServer) -> None:
    run(shell, f"%%complete -m gpt-5.4 --reasoning-effort xhigh --verbosity low\n{PROMPT}")
    body = server.requests[-1].body
    assert (body["reasoning_effort"], body["verbosity"], body["max_completion_tokens"]) == ("xhigh", "low", 256)
    assert json.loads(session_log[-1]["params"]) == {"max_completion_tokens": 256, "reasoning_effort": "xhigh",
                                                     "stream": True, "verbosity": "low"}
    assert session_log[-1]["reasoning_tokens"] == 32


def test_traits_reach_the_chat_body(shell: Any, server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", "CompleteMagics.reasoning_effort = 'LOW'")  # caseless
    shell.run_line_magic("config", "CompleteMagics.verbosity = 'high'")
    run(shell, f"%%complete -m gpt-5.4\n{PROMPT}")
    run(shell, f"%%complete -m davinci-002\n{PROMPT}")  # completions take neither: left out
    chat, completions = (r.body for r in server.requests)
    assert (chat["reasoning_effort"], chat["verbosity"]) == ("low", "high")
    assert "reasoning_effort" not in completions and "verbosity" not in completions


@pytest.mark.parametrize(("option", "message"), [
    ("--reasoning-effort max", "argument --reasoning-effort: invalid choice: 'max' (choose from 'none', "
                               "'minimal', 'low', 'medium', 'high', 'xhigh')"),
    ("--verbosity loud", "argument --verbosity: invalid choice: 'loud' (choose from 'low', 'medium', 'high')"),
    ("-m davinci-002 --reasoning-effort low", "--reasoning-effort works with the chat and responses endpoints only"),
    ("-e completions --verbosity low", "--verbosity works with the chat and responses endpoints only"),
])
def test_bad_reasoning_options_are_one_line_before_any_request(shell: Any, server: FakeOpenAIServer, option: str,
                                                               message: str) -> None:
    from IPython.core.error import UsageError

    with capture_output() as cap, pytest.raises(UsageError) as caught:
        shell.run_cell(f"%%complete {option}\n{PROMPT}")
    assert str(caught.value) == message and "Traceback" not in cap.stderr + cap.stdout
    assert server.requests == [] and len(session_log) == 0


def test_a_bad_reasoning_trait_is_refused_and_left_as_it_was(shell: Any, server: FakeOpenAIServer) -> None:
    magics = shell.magics_manager.registry["CompleteMagics"]
    with capture_output():
        shell.run_line_magic("config", "CompleteMagics.reasoning_effort = 'max'")
        shell.run_line_magic("config", "CompleteMagics.verbosity = 'loud'")
    assert (magics.reasoning_effort, magics.verbosity) == (None, None)


# -- refusals ------------------------------------------------------------------------------
@STREAMS
def test_refusal_is_one_line_and_logged(shell: Any, server: FakeOpenAIServer, stream: str) -> None:
    cap = run(shell, f"%%complete -m fake-refuser -o answer{stream}\n{PROMPT}")
    assert cap.stderr == f"Refused: {REFUSAL_TEXT}\n"
    assert answer_outputs(cap) == [] and shell.user_ns["answer"] == ""
    assert status(cap).startswith("fake-refuser · 3 in / 8 out tokens · ")
    record = session_log[-1]
    assert (record["completion"], record["refusal"], record["status"], record["reasoning"]) == (
        "", REFUSAL_TEXT, "ok", None)


def test_refusal_on_the_responses_endpoint(shell: Any, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete -m fake-refuser -e responses\n{PROMPT}")
    assert cap.stderr == f"Refused: {REFUSAL_TEXT}\n" and session_log[-1]["refusal"] == REFUSAL_TEXT
    assert server.requests[-1].path == "/v1/responses"


def test_reasoning_on_the_responses_endpoint(shell: Any, server: FakeOpenAIServer) -> None:
    cap = run(shell, f"%%complete -m fake-reasoner -e responses\n{PROMPT}")
    reasoning, answer = by_display(cap).values()
    assert reasoning[-1]["text/plain"] == f"[reasoning]\n{REASONING}" and answer[-1]["text/plain"] == ANSWER
    assert (session_log[-1]["reasoning"], session_log[-1]["reasoning_tokens"]) == (REASONING, 12)
