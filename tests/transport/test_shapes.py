"""Well-formed JSON of shapes no API sends (issue 12, family 6), over a real socket.

A tiny server (tests/servers/body.py) answers every request with the body a test sets. Odd shapes in a
streamed chunk (chat and completions), a non-streamed answer and a model list must end as one
error line (the partial text and the log record kept), never as a ``TypeError`` or
``AttributeError``: examples for each field named in the issue, then a hypothesis property that
puts arbitrary JSON values into every field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.calls.request import CallRequest
from jupyter_openai.calls.run import run_call
from jupyter_openai.calls.summary import status_line, summarize
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import APIConnectionError, OpenAIError, StreamError
from jupyter_openai.session.log import SessionLog, session_log
from tests.servers.body import BodyServer
from tests.servers.fake import TEST_KEY


@pytest.fixture
def odd_client(body_server: BodyServer) -> Iterator[OpenAIClient]:
    with OpenAIClient(api_key=TEST_KEY, base_url=body_server.url, read_timeout=5, connect_timeout=2,
                      max_retries=0) as client:
        yield client


@pytest.fixture
def odd_shell(make_shell: Any, body_server: BodyServer) -> Any:
    config = Config()
    config.CompleteMagics.model = "fake-chat"
    config.CompleteMagics.max_retries = 0
    return make_shell(config, {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": body_server.url})


GOOD_CHAT = {"id": "c1", "model": "m", "choices": [{"index": 0, "delta": {"content": "hi"}}]}
GOOD_TEXT = {"id": "c1", "model": "m", "choices": [{"index": 0, "text": "hi"}]}


def call(client: OpenAIClient, endpoint: str = "chat", stream: bool = True) -> Any:
    log = SessionLog()
    outcome = run_call(client, CallRequest("hi", "fake-chat", endpoint, stream=stream), log=log)
    assert len(log) == 1 and log[-1] == outcome.record and outcome.record["status"] == outcome.status
    summary = summarize(outcome)  # the lines the magic and the form show
    assert all("\n" not in line for line in [*summary.notes, summary.status])
    return outcome


# ---------------------------------------------------------------- streamed chunks
@pytest.mark.parametrize("chunk", [
    {"choices": [{"index": "0", "delta": {"content": "x"}}]},
    {"choices": [{"index": None, "delta": {"content": "x"}}]},
    {"choices": [{"index": -1, "delta": {"content": "x"}}]},
    {"choices": {"0": {"delta": {"content": "x"}}}},
    {"choices": [None]},
    {"choices": [{"index": 0, "delta": {"content": 5}}]},
    {"choices": [{"index": 0, "delta": {"content": ["x"]}}]},
    {"choices": [{"index": 0, "delta": "x"}]},
    {"choices": [], "usage": "x"},
], ids=["index-str", "index-null", "index-negative", "choices-object", "choices-null", "content-int",
        "content-list", "delta-str", "usage-str"])
def test_odd_chat_chunk_is_one_stream_error_with_the_text_kept(body_server: BodyServer, odd_client: OpenAIClient,
                                                               chunk: dict) -> None:
    body_server.events(GOOD_CHAT, chunk)
    outcome = call(odd_client)
    assert outcome.status == "error" and isinstance(outcome.error, StreamError)
    assert "a chunk of an unexpected shape" in str(outcome.error) and outcome.text == "hi"
    assert outcome.record["completion"] == "hi" and outcome.record["status"] == "error"
    assert summarize(outcome).errors[-1].endswith("(partial text kept: 2 chars)")


@pytest.mark.parametrize("chunk", [
    {"choices": [{"index": 0, "text": 5}]},
    {"choices": [{"index": "1", "text": "x"}]},
    {"choices": [None]},
])
def test_odd_completions_chunk_is_one_stream_error(body_server: BodyServer, odd_client: OpenAIClient,
                                                   chunk: dict) -> None:
    body_server.events(GOOD_TEXT, chunk)
    outcome = call(odd_client, "completions")
    assert outcome.status == "error" and isinstance(outcome.error, StreamError) and outcome.text == "hi"


def test_responses_event_with_a_list_as_type_is_a_stream_error(body_server: BodyServer,
                                                               odd_client: OpenAIClient) -> None:
    body_server.answer(b'data: {"type": "response.output_text.delta", "delta": "hi"}\n\n'
                       b'data: {"type": ["response.output_text.delta"]}\n\n', "text/event-stream")
    outcome = call(odd_client, "responses")
    assert outcome.status == "error" and isinstance(outcome.error, StreamError) and outcome.text == "hi"


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": "1", "completion_tokens": "5"},
    {"prompt_tokens": "a", "completion_tokens": 1e300},
    {"prompt_tokens": 10**400, "completion_tokens": 10**400},
    {"prompt_tokens": True, "completion_tokens": -3, "completion_tokens_details": "x"},
])
def test_odd_token_counts_read_as_not_reported(body_server: BodyServer, odd_client: OpenAIClient,
                                               usage: dict) -> None:
    body_server.events(GOOD_CHAT, {"choices": [], "usage": usage})
    outcome = call(odd_client)
    assert outcome.status == "ok" and outcome.text == "hi"
    assert outcome.record["prompt_tokens"] is None and outcome.record["completion_tokens"] is None
    status = summarize(outcome).status
    assert " · ~1 out tokens (estimated from the stream; in: not reported by the server) · " in status


def test_status_line_takes_any_usage() -> None:
    for usage in ({"completion_tokens": "5"}, {"completion_tokens": 10**400}, "x", [1], {"reasoning_tokens": []}):
        assert status_line("m", usage, 1.0, 0.5, "stop", "ok").startswith("m · tokens not reported")  # type: ignore[arg-type]
    assert status_line("m", {"prompt_tokens": 2, "completion_tokens": "x"}, 1.0, 0.5, None, "ok").startswith(
        "m · 2 in tokens (out: not reported by the server) · 1.00 s · finish: not reported")


# ---------------------------------------------------------------- non-streamed answers
@pytest.mark.parametrize("body, problem", [
    ([], "the answer is a list, not an object"),
    ("text", "the answer is a string, not an object"),
    (None, "the answer is null, not an object"),
    ({"choices": {"0": {}}}, "choices is an object, not a list"),
    ({"choices": [None]}, "choices[0] is null"),
    ({"choices": [{"index": "0", "message": {"content": "x"}}]}, "choices[0].index is not a whole number >= 0"),
    ({"choices": [{"message": "x"}]}, "choices[0].message is a string"),
    ({"choices": [{"message": {"content": 5}}]}, "choices[0].message.content is a number"),
    ({"choices": [{"message": {"content": "hi"}}], "usage": "x"}, "usage is a string"),
    ({"choices": [{"message": {"content": "hi"}}], "model": ["m"]}, "model is a list"),
    ({"error": {"message": "quota used up"}}, "it is an error: quota used up"),
])
def test_odd_answer_is_one_error_line_with_readable_text_kept(body_server: BodyServer, odd_client: OpenAIClient,
                                                              body: Any, problem: str) -> None:
    body_server.answer(body)
    outcome = call(odd_client, stream=False)
    assert outcome.status == "error" and isinstance(outcome.error, APIConnectionError)
    assert str(outcome.error) == f"The server's answer has an unexpected shape: {problem}"
    if "hi" in json.dumps(body):
        assert outcome.text == "hi" and outcome.record["completion"] == "hi"


def test_odd_completions_answer_and_usage(body_server: BodyServer, odd_client: OpenAIClient) -> None:
    body_server.answer({"choices": [{"text": {"t": 1}}]})
    assert "choices[0].text is an object" in str(call(odd_client, "completions", stream=False).error)
    body_server.answer({"choices": [{"text": "hi"}], "usage": {"prompt_tokens": 3, "completion_tokens": "7"}})
    outcome = call(odd_client, "completions", stream=False)
    assert outcome.status == "ok" and outcome.record["completion_tokens"] is None
    assert "3 in tokens (out: not reported by the server)" in summarize(outcome).status


def test_odd_answer_through_the_magic(body_server: BodyServer, odd_shell: Any) -> None:
    body_server.answer({"choices": [{"message": {"content": "hi"}}], "usage": "x"})
    with capture_output() as shown:
        odd_shell.run_cell_magic("complete", "--no-stream -o answer", "hi")
    assert shown.stderr.strip().splitlines() == [
        "The server's answer has an unexpected shape: usage is a string (partial text kept: 2 chars)"]
    assert odd_shell.user_ns["answer"] == "hi" and session_log[-1]["status"] == "error"
    body_server.events(GOOD_CHAT, {"choices": [{"index": 0, "delta": "x"}]})
    with capture_output() as shown:
        odd_shell.run_cell_magic("complete", "-o answer", "hi")
    assert len(shown.stderr.strip().splitlines()) == 1 and "unexpected shape" in shown.stderr
    assert odd_shell.user_ns["answer"] == "hi" and session_log[-1]["status"] == "error"


# ---------------------------------------------------------------- model lists
@pytest.mark.parametrize("listing", [
    ["a", 1], {"data": {"id": "a"}}, {"data": "a"}, "models", 5, None, {"data": [1, "a", None]}, {"models": []},
], ids=["strings-and-numbers", "data-object", "data-string", "string", "number", "null", "no-model-entry",
        "no-data"])
def test_odd_model_list_is_one_error_line(body_server: BodyServer, odd_shell: Any, listing: Any) -> None:
    body_server.answer(listing)
    with capture_output() as shown:
        assert odd_shell.run_line_magic("complete_models", "") is None
    assert shown.stderr.startswith("The server's model list has an unexpected shape: ")
    assert shown.stderr.strip().endswith("(is the base URL the server's OpenAI-compatible /v1 endpoint?)")
    assert len(shown.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("created", [1e20, -1e20, 10**30, float("nan"), float("inf"), "2024", True, [1], {}])
def test_model_list_with_any_created_shows_a_table(body_server: BodyServer, odd_shell: Any, created: Any) -> None:
    body_server.answer({"data": [{"id": "a", "created": created, "owned_by": {"x": [1]}}, {"id": "b", "created": 0},
                                 "junk", 7]})
    with capture_output() as shown:
        table = odd_shell.run_line_magic("complete_models", "")
    assert shown.stderr == "" and [row["id"] for row in table.rows] == ["a", "b"]
    assert table.rows[0]["created"] is None and table.rows[1]["created"] == "1970-01-01"
    assert "a" in repr(table) and "<td>a</td>" in table._repr_html_()
    with capture_output() as shown:
        table = odd_shell.run_line_magic("complete_models", "a")  # one model: GET /models/a answers the listing
    assert "unexpected shape: it is not an object" not in shown.stderr


def test_model_entry_that_is_not_an_object(body_server: BodyServer, odd_shell: Any) -> None:
    body_server.answer(["a"])
    with capture_output() as shown:
        assert odd_shell.run_line_magic("complete_models", "a") is None
    assert shown.stderr.startswith("The server's model entry has an unexpected shape: it is not an object")


# ---------------------------------------------------------------- the property: any JSON in any field
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)
CHAT_CHUNK = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
              "choices": [{"index": 0, "delta": {"role": "assistant", "content": "x", "reasoning_content": "r",
                                                 "refusal": None}, "finish_reason": None, "logprobs": None}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}}
TEXT_CHUNK = {"id": "c1", "object": "text_completion", "created": 1, "model": "m",
              "choices": [{"index": 0, "text": "x", "finish_reason": "stop", "logprobs": None}],
              "usage": {"prompt_tokens": 1, "completion_tokens": 2}}
CHAT_BODY = {"id": "c1", "object": "chat.completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": "x", "refusal": None},
                          "finish_reason": "stop"}],
             "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
                       "completion_tokens_details": {"reasoning_tokens": 0}}}
TEXT_BODY = {"id": "c1", "object": "text_completion", "created": 1, "model": "m",
             "choices": [{"index": 0, "text": "x", "finish_reason": "stop"}], "usage": {"prompt_tokens": 1}}
MODEL_LIST = {"object": "list", "data": [{"id": "a", "object": "model", "created": 1, "owned_by": "o"}]}


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON template a value can go (the root included)."""
    found = [prefix]
    if isinstance(value, dict):
        for key, inner in value.items():
            found += paths(inner, (*prefix, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            found += paths(inner, (*prefix, index))
    return found


def replaced(template: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    copy = json.loads(json.dumps(template))
    target = copy
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return copy


def odd(template: Any) -> st.SearchStrategy:
    """The template with one field (or itself) replaced by any JSON value."""
    return st.builds(replaced, st.just(template), st.sampled_from(paths(template)), JSON)


PROPERTY = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def only_own_errors(action: Any) -> None:
    try:
        action()
    except OpenAIError:
        pass


@PROPERTY
@given(chunk=odd(CHAT_CHUNK), last=odd(CHAT_CHUNK))
def test_any_json_in_a_chat_chunk(body_server: BodyServer, odd_client: OpenAIClient, chunk: Any, last: Any) -> None:
    body_server.events(CHAT_CHUNK, chunk, last)
    outcome = call(odd_client)
    assert outcome.status in ("ok", "error") and outcome.text.startswith("x")
    assert outcome.status == "ok" or isinstance(outcome.error, OpenAIError)
    only_own_errors(lambda: odd_client.chat("m", [{"role": "user", "content": "hi"}], stream=True).read())


@PROPERTY
@given(chunk=odd(TEXT_CHUNK))
def test_any_json_in_a_completions_chunk(body_server: BodyServer, odd_client: OpenAIClient, chunk: Any) -> None:
    body_server.events(TEXT_CHUNK, chunk)
    outcome = call(odd_client, "completions")
    assert outcome.status == "ok" or isinstance(outcome.error, OpenAIError)
    assert outcome.text.startswith("x")


RESPONSES_DELTA = {"type": "response.output_text.delta", "item_id": "i", "delta": "x"}
RESPONSES_DONE = {"type": "response.completed", "response": {
    "id": "r", "object": "response", "model": "m", "status": "completed", "incomplete_details": None,
    "output": [{"type": "message", "content": [{"type": "output_text", "text": "x"}]}],
    "usage": {"input_tokens": 1, "output_tokens": 2, "output_tokens_details": {"reasoning_tokens": 0}}}}
RESPONSE_BODY = RESPONSES_DONE["response"]


def every_accessor(answer: Any) -> None:
    """Read everything a Completion offers (none may raise, whatever the answer held)."""
    for name in ("id", "model", "created", "usage", "choices", "texts", "text", "reasoning", "refusal",
                 "finish_reasons", "finish_reason", "status"):
        getattr(answer, name)
    repr(answer)


@PROPERTY
@given(chat=odd(CHAT_BODY), text=odd(TEXT_BODY), response=odd(RESPONSE_BODY))
def test_any_json_in_an_answer(body_server: BodyServer, odd_client: OpenAIClient, chat: Any, text: Any,
                               response: Any) -> None:
    for endpoint, body in (("chat", chat), ("completions", text), ("responses", response), ("responses", chat)):
        body_server.answer(body)
        outcome = call(odd_client, endpoint, stream=False)
        assert outcome.status == "ok" or isinstance(outcome.error, OpenAIError)
        assert isinstance(outcome.text, str) and all(isinstance(t, str) for t in outcome.texts)
        json.dumps(outcome.record)  # the log record can be written
    body_server.answer(chat)
    try:
        every_accessor(odd_client.chat("m", [{"role": "user", "content": "hi"}]))
    except OpenAIError:
        pass


@PROPERTY
@given(delta=odd(RESPONSES_DELTA), done=odd(RESPONSES_DONE))
def test_any_json_in_a_responses_event(body_server: BodyServer, odd_client: OpenAIClient, delta: Any,
                                       done: Any) -> None:
    body_server.events(RESPONSES_DELTA, delta, done, done=False)
    outcome = call(odd_client, "responses")
    assert outcome.status in ("ok", "truncated") or isinstance(outcome.error, OpenAIError)
    assert outcome.text.startswith("x")


@PROPERTY
@given(listing=odd(MODEL_LIST))
def test_any_json_in_a_model_list(body_server: BodyServer, odd_client: OpenAIClient, odd_shell: Any,
                                  listing: Any) -> None:
    body_server.answer(listing)
    only_own_errors(odd_client.list_models)
    only_own_errors(lambda: odd_client.retrieve_model("a"))
    with capture_output() as shown:
        for line in ("", "a"):
            table = odd_shell.run_line_magic("complete_models", line)
            if table is not None:
                repr(table), table._repr_html_()
    assert "Traceback" not in shown.stdout + shown.stderr
