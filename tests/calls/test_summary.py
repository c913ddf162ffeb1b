"""Tests of ``jupyter_openai.calls.summary``: the status line, notes and errors a finished call shows
(client notes, refusals, errors with the partial text kept, the model label, reasoning tokens, the
length limit and how to raise it, an interrupted call's status).

Pure text over hand-made :class:`CallOutcome` values, plus one real call per kind of note through
``run_call`` against the test server, so the words checked are those a user reads.
"""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_openai.calls.request import CallRequest
from jupyter_openai.calls.run import CallOutcome, run_call
from jupyter_openai.calls.summary import TRUNCATED, dropped_turns, model_label, status_line, summarize
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import StreamError
from jupyter_openai.session.log import SessionLog
from tests.servers.fake import FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT

USAGE = {"prompt_tokens": 3, "completion_tokens": 12, "total_tokens": 15, "reasoning_tokens": 8}


def outcome(**fields: Any) -> CallOutcome:
    base: dict[str, Any] = {"texts": ["Echo: c b a"], "status": "ok", "record": {}, "usage": USAGE,
                            "finish_reasons": ["stop"], "model": "gpt-5.4-mini", "latency": 1.0,
                            "time_to_first_token": 0.5, "request": CallRequest("a b c", "gpt-5.4-mini")}
    return CallOutcome(**{**base, **fields})


# -- the model label ---------------------------------------------------------------------------
@pytest.mark.parametrize(("answered", "requested", "offline", "expected"), [
    ("gpt-5.4-mini", "gpt-5.4-mini", False, "gpt-5.4-mini"),
    ("gpt-5.4-mini-2026-03-05", "gpt-5.4-mini", False, "gpt-5.4-mini-2026-03-05 (asked for gpt-5.4-mini)"),
    ("smollm2-135m", "gpt-5.4-mini", True, "smollm2-135m (offline; asked for gpt-5.4-mini)"),
    ("smollm2-135m", "smollm2-135m", True, "smollm2-135m (offline)"),
    (None, "gpt-5.4-mini", False, "gpt-5.4-mini"),
    (None, None, False, "?"),
])
def test_model_label(answered: str | None, requested: str | None, offline: bool, expected: str) -> None:
    assert model_label(answered, requested, offline) == expected


# -- the status line ---------------------------------------------------------------------------
def test_status_line_counts_reasoning_tokens() -> None:
    assert status_line("m", USAGE, 1.0, 0.5, "stop", "ok") == (
        "m · 3 in / 12 out tokens (8 reasoning) · 1.00 s · 24.0 tok/s · finish: stop")
    assert status_line("m", {**USAGE, "reasoning_tokens": 0}, 1.0, 0.5, "stop", "ok") == (
        "m · 3 in / 12 out tokens · 1.00 s · 24.0 tok/s · finish: stop")


def test_summary_of_a_call_that_went_well() -> None:
    summary = summarize(outcome(model="gpt-5.4-mini-2026-03-05"))
    assert summary.notes == []
    assert summary.status == ("gpt-5.4-mini-2026-03-05 (asked for gpt-5.4-mini) · 3 in / 12 out tokens "
                              "(8 reasoning) · 1.00 s · 24.0 tok/s · finish: stop")
    assert summarize(outcome(model="smollm2"), offline=True).status.startswith(
        "smollm2 (offline; asked for gpt-5.4-mini) · ")


# -- the notes ---------------------------------------------------------------------------------
def test_client_notes_are_notes_and_a_refusal_an_error() -> None:
    summary = summarize(outcome(texts=[""], refusal="I can't\nhelp.", notes=["Note: one", "Note:\ntwo"]))
    assert summary.notes == ["Note: one", "Note: two"]
    assert summary.errors == ["Refused: I can't help."]


def test_an_error_keeps_the_count_of_partial_text() -> None:
    error = StreamError("the server sent an error mid-stream: boom", request_id="req_9")
    summary = summarize(outcome(texts=["Echo:"], status="error", error=error, usage=None, finish_reasons=[None]))
    assert summary.errors == ["Stream error: the server sent an error mid-stream: boom [request id req_9] "
                              "(partial text kept: 5 chars)"]
    assert summary.notes == []
    assert summary.status == "gpt-5.4-mini · 1.00 s · error"


def test_an_interrupted_call_is_a_note_and_says_interrupted() -> None:
    summary = summarize(outcome(status="interrupted", finish_reasons=[None]))
    assert summary.notes == ["Interrupted: the request was stopped (partial text kept: 11 chars)"]
    assert summary.errors == []
    assert summary.status.endswith(" · 24.0 tok/s · interrupted") and "finish" not in summary.status


def test_a_cut_stream_is_an_error() -> None:
    summary = summarize(outcome(status="truncated"))
    assert (summary.notes, summary.errors) == ([], [TRUNCATED])


def test_fewer_choices_than_asked_is_a_note() -> None:
    summary = summarize(outcome(request=CallRequest("a b c", "m", params={"n": 3})))
    assert summary.notes == ["Note: asked for 3 choices, the server returned 1"] and summary.errors == []


def test_dropped_turns_note() -> None:
    assert dropped_turns(1, "default", "at most 2 turn(s)") == (
        "Note: dropped the 1 oldest turn(s) of conversation 'default' to send at most 2 turn(s)")


# -- the length limit --------------------------------------------------------------------------
def _cut(max_tokens: int | None, out: int | None, **fields: Any) -> CallOutcome:
    params = {"max_tokens": max_tokens} if max_tokens is not None else {}
    return outcome(request=CallRequest("a b c", "m", params=params), model="m", finish_reasons=["length"],
                   usage={"prompt_tokens": 3, "completion_tokens": out}, **fields)


def test_an_answer_cut_at_the_default_max_tokens_says_how_to_raise_it() -> None:
    assert summarize(_cut(256, 256)).status == (
        "m · 3 in / 256 out tokens · 1.00 s · 512.0 tok/s · stopped at max tokens 256 (the default): "
        "raise it with --max-tokens 1024 or %config CompleteMagics.max_tokens = 1024")
    assert "finish: length" not in summarize(_cut(256, None)).status


@pytest.mark.parametrize(("source", "front", "said"), [
    ("%config", "magic", "(set by %config): raise it with --max-tokens 2000 or %config CompleteMagics.max_tokens "
                         "= 2000"),
    ("config file", "magic", "(from the config file): raise it with --max-tokens 2000 or %config"),
    ("option", "magic", "(as asked): raise it with --max-tokens 2000"),
    ("default", "form", "(the default): raise max tokens above (to 2000, say) or %config CompleteMagics.max_tokens"),
    ("option", "form", "(as asked): raise max tokens above (to 2000, say)"),
])
def test_the_limit_names_its_source_and_the_way_to_raise_it(source: str, front: str, said: str) -> None:
    status = summarize(_cut(500, 500, record={"cost_usd": 0.002}), limit_source=source, front=front).status
    assert " · 1000.0 tok/s · $0.002 · stopped at max tokens 500 " + said in status
    if source == "option":
        assert "%config" not in status


def test_an_answer_cut_by_the_context_window_says_so() -> None:
    status = summarize(_cut(256, 100)).status
    assert status.endswith("stopped at the model's context window: shorten the prompt (or the conversation)")
    assert summarize(_cut(None, 100)).status.endswith("stopped at the model's context window: "
                                                      "shorten the prompt (or the conversation)")


def test_a_call_without_a_finish_reason_says_it_was_not_reported() -> None:
    assert summarize(outcome(finish_reasons=[None])).status.endswith(" · finish: not reported")


def test_long_notes_are_cut_to_one_line() -> None:
    (note,) = summarize(outcome(refusal="no " * 500)).errors
    assert len(note) == 300 and note.endswith("…") and "\n" not in note


# -- the words of real calls -------------------------------------------------------------------
def test_real_refusal_and_gpt5_note(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    log = SessionLog()
    refused = summarize(run_call(client, CallRequest("a b c", "fake-refuser"), log=log))
    assert refused.errors == [f"Refused: {REFUSAL_TEXT}"]
    assert refused.status.startswith("fake-refuser · 3 in / 8 out tokens · ")
    adapted = summarize(run_call(client, CallRequest("a b c", "gpt-5.4-mini", params={"top_p": 0.3}), log=log))
    assert adapted.notes == ["Note: gpt-5.4-mini does not accept top_p=0.3: sent without it "
                             "(remembered for this session)"]
    assert adapted.status.startswith("gpt-5.4-mini · 3 in / 12 out tokens (8 reasoning) · ")
    assert [r["refusal"] for r in log] == [REFUSAL_TEXT, None]


# -- issue 22: token counts a server did not send are said in words ---------------------------------
def test_a_server_that_sends_no_usage_in_streams_is_worded_never_a_question_mark(make_server: Any) -> None:
    """llama-cpp-python's profile ignores ``stream_options`` (as the real server does): the status line
    estimates the output from the stream and says the prompt's count was not reported."""
    fake = make_server(profile="llama-cpp-python", api_key=None)
    with OpenAIClient(base_url=fake.url, max_retries=0) as client:
        out = run_call(client, CallRequest("one two three", "fake-chat", "chat", stream=True), log=SessionLog())
    assert out.usage is None and out.record["prompt_tokens"] is None and out.record["completion_tokens"] is None
    status = summarize(out).status
    assert "out tokens (estimated from the stream; in: not reported by the server)" in status, status
    assert "?" not in status


def test_a_prompt_counter_fills_the_prompt_tokens_of_a_stream_without_usage(make_server: Any) -> None:
    """The offline server's client counts prompts with its tokenizer (``prompt_counter``); the count
    reaches the outcome, the status line and the log record. Other servers' counts are never replaced."""
    fake = make_server(profile="llama-cpp-python", api_key=None)
    asked: list[tuple[str, Any]] = []

    def count(endpoint: str, payload: Any) -> int:
        asked.append((endpoint, payload))
        return 41

    with OpenAIClient(base_url=fake.url, max_retries=0) as client:
        client.prompt_counter = count
        chat = run_call(client, CallRequest("one two three", "fake-chat", "chat", stream=True), log=SessionLog())
        text = run_call(client, CallRequest("one two", "davinci-002", "completions", stream=True), log=SessionLog())
    assert asked == [("chat", [{"role": "user", "content": "one two three"}]), ("completions", "one two")]
    for out in (chat, text):
        assert out.record["prompt_tokens"] == 41 and out.record["completion_tokens"] is None
        assert "41 in / ~" in summarize(out).status and "(out estimated from the stream)" in summarize(out).status
    with FakeOpenAIServer(api_key=None) as openai_like, OpenAIClient(base_url=openai_like.url) as client:
        client.prompt_counter = count
        reported = run_call(client, CallRequest("one two three", "fake-chat", "chat", stream=True), log=SessionLog())
    assert reported.record["prompt_tokens"] != 41 and len(asked) == 2  # a reported count is kept, nothing asked
