"""Tests of the Responses API (``POST /responses``, GUIDE 11): request bodies, answers, typed streams.

``jupyter_openai.api.responses`` is tested as pure functions; ``client.responses`` streamed and not over
real sockets against the test server (its recorded request bodies validated against the reference
schema ``CreateResponse``), with its faults (``response.failed``, an ``error`` event, a dropped
stream); and ``%%complete`` with ``-e responses`` and with the ``endpoint`` trait.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from jupyter_openai.api import responses
from jupyter_openai.api.completion import RESPONSES_KIND, Completion
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import APIConnectionError, ConfigurationError, NotFoundError, StreamError
from jupyter_openai.session.log import session_log
from jupyter_openai.transport.stream import Stream
from tests.servers.fake import FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text
from tests.support.checks import checker, oneof_to_anyof, responses_components
from tests.support.shown import answer_outputs, status

PROMPT = "one two three"
ANSWER = "Echo: three two one"
LONG = " ".join(f"w{i}" for i in range(30))  # 31 answer words: more than max_output_tokens=16
USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7, "reasoning_tokens": 0}


@pytest.fixture(scope="module")
def create_response() -> Any:
    """``check(body)``: validate a request body against the reference ``CreateResponse`` schema."""
    pytest.importorskip("jsonschema")
    check = checker(oneof_to_anyof(responses_components()))
    return lambda body: check("CreateResponse", body)


def sent(server: FakeOpenAIServer, create_response: Any) -> dict:
    """The last body sent to /v1/responses, checked against the reference schema."""
    record = server.requests[-1]
    assert record.path == "/v1/responses"
    create_response(record.body)
    return record.body


def call(client: OpenAIClient, stream: bool, *args: Any, **kwargs: Any) -> Completion | Stream:
    result = client.responses(*args, stream=stream, **kwargs)
    return result.read() if isinstance(result, Stream) else result


# -- the pure mappings ----------------------------------------------------------------------
def test_request_fields_nest_and_rename() -> None:
    assert responses.request_fields({"max_tokens": 20, "reasoning_effort": "low", "verbosity": "high",
                                     "temperature": 0.5, "top_p": None}) == {
        "max_output_tokens": 20, "reasoning": {"effort": "low"}, "text": {"verbosity": "high"}, "temperature": 0.5,
        "store": False}  # GUIDE 18: the API keeps a response unless told not to


@pytest.mark.parametrize(("raw", "expected"), [
    ({"input_tokens": 3, "output_tokens": 9, "total_tokens": 12, "output_tokens_details": {"reasoning_tokens": 5}},
     {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12, "reasoning_tokens": 5}),
    ({"input_tokens": 3, "output_tokens": 9, "total_tokens": 12, "output_tokens_details": {"reasoning_tokens": "5"}},
     {"prompt_tokens": 3, "completion_tokens": 9, "total_tokens": 12}),
    ({}, None), (None, None), ([1, 2], None), ("usage", None),
])
def test_usage_in_chat_names(raw: Any, expected: Any) -> None:
    assert responses.usage(raw) == expected


@pytest.mark.parametrize(("response", "expected"), [
    ({"status": "completed"}, "stop"),
    ({"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}, "length"),
    ({"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}, "content_filter"),
    ({"status": "incomplete", "incomplete_details": {"reason": "other"}}, "other"),
    ({"status": "incomplete", "incomplete_details": None}, "incomplete"),
    ({"status": "failed"}, None), ({}, None),
])
def test_finish_reason(response: dict, expected: str | None) -> None:
    assert responses.finish_reason(response) == expected


@pytest.mark.parametrize("output", [None, "text", [None, 1, "x"], [{"type": "message", "content": "hi"}],
                                    [{"type": "message", "content": [{"type": "output_text", "text": 5}]}]])
def test_odd_output_reads_as_empty(output: Any) -> None:
    completion = Completion({"output": output, "status": "completed"}, RESPONSES_KIND)
    assert (completion.text, completion.reasoning, completion.refusal) == ("", "", "")
    assert completion.texts == [""] and completion.finish_reason == "stop" and completion.usage is None


def test_error_message_of_failed_and_error_events() -> None:
    failed = {"type": "response.failed", "response": {"error": {"code": "server_error", "message": "boom"}}}
    assert responses.error_message(failed) == "boom (server_error)"
    assert responses.error_message({"type": "error", "code": "rate_limit", "message": "slow"}) == "slow (rate_limit)"
    assert responses.error_message({"type": "response.failed", "response": None}) == "the response failed"


# -- client.responses over sockets ------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_text_usage_and_finish(client: OpenAIClient, server: FakeOpenAIServer, create_response: Any,
                               stream: bool) -> None:
    result = call(client, stream, "fake-chat", PROMPT)
    assert (result.text, result.texts, result.finish_reason, result.status) == (ANSWER, [ANSWER], "stop", "ok")
    assert result.usage == USAGE and result.model == "fake-chat"
    assert (result.reasoning, result.refusal) == ("", "")
    assert result.id.startswith("resp_fake")
    body = sent(server, create_response)
    assert body == {"model": "fake-chat", "input": PROMPT, "store": False, **({"stream": True} if stream else {})}


def test_a_stream_ends_ok_at_eof_without_done(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    stream = client.responses("fake-chat", PROMPT, stream=True)
    deltas = list(stream)
    assert "".join(d.text for d in deltas) == ANSWER and deltas[-1].finish_reason == "stop"
    assert stream.status == "ok" and stream.truncated is False
    assert "stream_options" not in server.requests[-1].body  # not a Responses field


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_parameters_go_by_the_responses_names(client: OpenAIClient, server: FakeOpenAIServer, create_response: Any,
                                              stream: bool) -> None:
    result = call(client, stream, "gpt-5.4-mini", PROMPT, instructions="Be brief.", max_tokens=100,
                  reasoning_effort="low", verbosity="high")
    body = sent(server, create_response)
    assert {k: v for k, v in body.items() if k != "stream"} == {
        "model": "gpt-5.4-mini", "input": PROMPT, "instructions": "Be brief.", "max_output_tokens": 100,
        "reasoning": {"effort": "low"}, "text": {"verbosity": "high"}, "store": False}
    assert result.text == ANSWER and result.usage["reasoning_tokens"] == 4  # the "low" effort's hidden tokens
    assert result.usage["prompt_tokens"] == 5  # the instructions count as input
    assert result.sent == {"max_output_tokens": 100, "reasoning": {"effort": "low"}, "text": {"verbosity": "high"},
                           "store": False, **({"stream": True} if stream else {})}


def test_input_may_be_a_list_of_messages(client: OpenAIClient, server: FakeOpenAIServer,
                                         create_response: Any) -> None:
    items = [{"role": "user", "content": "a b"}, {"role": "assistant", "content": "x"},
             {"role": "user", "content": PROMPT}]
    assert client.responses("fake-chat", items).text == ANSWER
    assert sent(server, create_response)["input"] == items


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_incomplete_is_finish_reason_length(client: OpenAIClient, server: FakeOpenAIServer, stream: bool) -> None:
    result = call(client, stream, "fake-chat", LONG, max_tokens=16)
    assert (result.finish_reason, result.status) == ("length", "ok")
    assert result.text == "Echo: " + " ".join(f"w{i}" for i in range(29, 14, -1))
    assert result.usage["completion_tokens"] == 16


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_reasoning_text_is_kept_apart(client: OpenAIClient, stream: bool) -> None:
    result = call(client, stream, "fake-reasoner", PROMPT)
    assert (result.text, result.reasoning) == (ANSWER, reasoning_text(PROMPT))
    assert result.usage["reasoning_tokens"] == len(reasoning_text(PROMPT).split())


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_reasoning_summary_is_the_reasoning(client: OpenAIClient, server: FakeOpenAIServer, create_response: Any,
                                            stream: bool) -> None:
    result = call(client, stream, "gpt-5.4", PROMPT, extra_body={"reasoning": {"effort": "high", "summary": "auto"}})
    assert (result.text, result.reasoning, result.usage["reasoning_tokens"]) == (ANSWER, reasoning_text(PROMPT), 16)
    sent(server, create_response)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_refusal(client: OpenAIClient, stream: bool) -> None:
    result = call(client, stream, "fake-refuser", PROMPT)
    assert (result.text, result.refusal, result.finish_reason) == ("", REFUSAL_TEXT, "stop")


@pytest.mark.parametrize(("fault", "message"), [
    ({"failed_after": 2}, "The model failed to generate a response. (server_error)"),
    ({"error_event_after": 2}, "The server had an error while processing your request. Sorry about that! "
                               "(server_error)"),
    ({"failed_after": 1, "error_code": "rate_limit_exceeded", "message": "slow down"}, "slow down "
                                                                                        "(rate_limit_exceeded)"),
])
def test_failed_and_error_events_keep_the_partial_text(client: OpenAIClient, server: FakeOpenAIServer,
                                                       fault: dict, message: str) -> None:
    server.add_fault(path="/responses", **fault)
    stream = client.responses("fake-chat", PROMPT, stream=True)
    with pytest.raises(StreamError) as caught:
        stream.read()
    assert str(caught.value) == (f"Stream error: the server sent an error mid-stream: {message} "
                                 f"[request id {server.requests[-1].request_id}]")
    kept = "Echo:" if fault.get("failed_after") == 1 else "Echo: three"
    assert (stream.text, stream.status, stream.finish_reason) == (kept, "error", None)
    assert stream.error is caught.value and stream.usage is None


def test_a_dropped_stream_is_a_connection_error(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/responses", drop_after=5)
    stream = client.responses("fake-chat", PROMPT, stream=True)
    with pytest.raises(APIConnectionError, match="^The stream was cut off"):
        stream.read()
    assert (stream.text, stream.status) == ("Echo:", "error")


def test_max_tokens_below_the_api_minimum_is_refused_before_sending(client: OpenAIClient,
                                                                   server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigurationError, match=r"^max_tokens \(max_output_tokens\) must be at least 16, got 15$"):
        client.responses("fake-chat", PROMPT, max_tokens=15)
    with pytest.raises(ConfigurationError, match="input must not be empty"):
        client.responses("fake-chat", "")
    with pytest.raises(ConfigurationError, match="n is not a parameter of the responses endpoint"):
        client.responses("fake-chat", PROMPT, n=2)
    assert server.requests == []


# -- through %%complete ---------------------------------------------------------------------
@pytest.mark.parametrize("stream", ["", " --no-stream"], ids=["streamed", "plain"])
def test_magic_option_sends_to_responses(shell: Any, server: FakeOpenAIServer, create_response: Any,
                                         stream: str) -> None:
    with capture_output() as cap:
        shell.run_cell(f"%%complete -e responses -s 'Be brief.' --max-tokens 40 --reasoning-effort low "
                       f"--verbosity low -o answer{stream}\n{PROMPT}")
    body = sent(server, create_response)
    assert {k: v for k, v in body.items() if k != "stream"} == {
        "model": "fake-chat", "input": PROMPT, "instructions": "Be brief.", "max_output_tokens": 40,
        "reasoning": {"effort": "low"}, "text": {"verbosity": "low"}, "store": False}
    assert ("stream" in body) is (not stream)
    assert shell.user_ns["answer"] == ANSWER and answer_outputs(cap)[-1].data["text/plain"] == ANSWER
    assert cap.stderr == "" and status(cap).startswith("fake-chat · 5 in / 4 out tokens · ")
    record = session_log[-1]
    assert (record["endpoint"], record["system"], record["completion"], record["status"]) == (
        "responses", "Be brief.", ANSWER, "ok")
    assert json.loads(record["params"]) == {"max_output_tokens": 40, "reasoning": {"effort": "low"}, "store": False,
                                            "text": {"verbosity": "low"}, **({} if stream else {"stream": True})}


def test_endpoint_trait_makes_responses_the_default(shell: Any, server: FakeOpenAIServer,
                                                    create_response: Any) -> None:
    shell.run_line_magic("config", "CompleteMagics.endpoint = 'responses'")
    shell.run_line_magic("config", "CompleteMagics.system = 'You are terse.'")
    shell.run_line_magic("config", "CompleteMagics.reasoning_effort = 'minimal'")
    with capture_output():
        shell.run_cell(f"%%complete -m gpt-5.4-mini\n{PROMPT}")
        shell.run_cell(f"%%complete -m gpt-5.4-mini -e chat\n{PROMPT}")
    to_responses, to_chat = (r.body for r in server.requests)
    create_response(to_responses)
    assert (to_responses["instructions"], to_responses["max_output_tokens"], to_responses["reasoning"]) == (
        "You are terse.", 256, {"effort": "minimal"})
    assert to_chat["messages"][0] == {"role": "system", "content": "You are terse."}
    assert (to_chat["reasoning_effort"], to_chat["max_completion_tokens"]) == ("minimal", 256)
    assert [r["endpoint"] for r in session_log] == ["responses", "chat"]
    assert session_log[0]["reasoning_tokens"] == 2  # GPT-5's "minimal" effort


def test_magic_refuses_options_the_responses_api_lacks(shell: Any, server: FakeOpenAIServer) -> None:
    for option, message in (("-n 2", "-n works with the chat and completions endpoints only"),
                            ("--echo", "--echo works with the completions endpoint only (add -e completions)"),
                            ("--max-tokens 8", "max_tokens (max_output_tokens) must be at least 16, got 8")):
        with capture_output(), pytest.raises(UsageError) as caught:
            shell.run_cell(f"%%complete -e responses {option}\n{PROMPT}")
        assert str(caught.value) == message
    assert server.requests == [] and len(session_log) == 0


def test_magic_shows_a_failed_response_as_one_line_with_the_partial_text(shell: Any,
                                                                         server: FakeOpenAIServer) -> None:
    server.add_fault(path="/responses", failed_after=2)
    with capture_output() as cap:
        shell.run_cell(f"%%complete -e responses -o partial\n{PROMPT}")
    assert cap.stderr == ("Stream error: the server sent an error mid-stream: The model failed to generate a "
                          f"response. (server_error) [request id {server.requests[-1].request_id}] "
                          "(partial text kept: 11 chars)\n")
    assert shell.user_ns["partial"] == "Echo: three" and session_log[-1]["status"] == "error"


# -- nothing stored on the server (GUIDE 18), reasoning carried whole instead (GUIDE 15) --------------------
def test_store_is_false_unless_asked(client: OpenAIClient, server: FakeOpenAIServer, create_response: Any) -> None:
    """Before: no store field, so OpenAI kept every response (CreateResponse.store defaults to true)."""
    assert responses.request_fields({})["store"] is False
    assert responses.request_fields({"store": True})["store"] is True
    answer = client.responses("fake-chat", PROMPT)
    assert sent(server, create_response)["store"] is False and answer.raw["store"] is False
    stream = client.responses("fake-chat", PROMPT, stream=True, store=True)
    stream.read()
    assert sent(server, create_response)["store"] is True
    assert server.stored == [stream.id]  # only the response asked to be stored is kept
    with pytest.raises(ConfigurationError, match="store must be bool"):
        client.responses("fake-chat", PROMPT, store="no")


def test_keeping_reasoning_asks_for_it_encrypted_when_nothing_is_stored() -> None:
    encrypted = responses.ENCRYPTED_REASONING
    assert responses.keeping_reasoning({"store": False}) == {"store": False, "include": [encrypted]}
    assert responses.keeping_reasoning({}) == {"include": [encrypted]}
    assert responses.keeping_reasoning({"store": True}) == {"store": True}  # stored: referable by id
    assert responses.keeping_reasoning({"include": [encrypted]}) == {"include": [encrypted]}


def test_carried_items_go_back_whole_and_reasoning_only_with_its_content() -> None:
    output = [{"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAAA1"},
              {"type": "reasoning", "id": "rs_2", "summary": []},  # no content: referable only by id
              {"type": "function_call", "id": "fc_1", "call_id": "c1", "name": "f", "arguments": "{}"},
              {"type": "web_search_call", "id": "ws_1", "status": "completed"},
              {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed", "content": []}]
    assert [i["id"] for i in responses.carried_items({"output": output})] == ["rs_1", "fc_1", "msg_1"]
    assert responses.carried_items({"output": output})[0] == output[0] and responses.carried_items({}) == []


def test_a_second_round_carries_the_reasoning_items_whole(client: OpenAIClient, server: FakeOpenAIServer,
                                                          create_response: Any) -> None:
    """The request builder's tool-round shape (GUIDE 15), stateless: the first request asks for encrypted
    reasoning, the second carries the items whole; referring to them by id would fail."""
    from jupyter_openai.calls.request import build_request
    from jupyter_openai.calls.run import run_call
    from jupyter_openai.session.log import SessionLog

    first = build_request({"prompt": PROMPT, "model": "fake-reasoner", "endpoint": "responses", "stream": False,
                           "keep_reasoning": True})
    answer = client.responses(first.model, first.input(), **first.params)  # what run_call sends
    body = sent(server, create_response)
    assert body["store"] is False and body["include"] == ["reasoning.encrypted_content"]
    items = responses.carried_items(answer.raw)
    assert [i["type"] for i in items] == ["reasoning", "message"] and items[0]["encrypted_content"]
    second = build_request({"prompt": PROMPT, "model": "fake-reasoner", "endpoint": "responses", "stream": False,
                            "items": items})
    outcome = run_call(client, second, log=SessionLog())
    body = sent(server, create_response)
    assert outcome.status == "ok", outcome.error
    assert body["input"] == [{"type": "message", "role": "user", "content": PROMPT}, *items]
    assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False
    by_id = {k: v for k, v in items[0].items() if k != "encrypted_content"}  # what dropping the content sends
    with pytest.raises(NotFoundError, match="Items are not persisted when `store` is set to false"):
        client.responses("fake-reasoner", [{"role": "user", "content": PROMPT}, by_id])
    assert server.stored == []


def test_items_are_carried_on_the_responses_endpoint_only() -> None:
    from jupyter_openai.calls.request import build_request

    with pytest.raises(ConfigurationError, match="responses endpoint only"):
        build_request({"prompt": PROMPT, "model": "fake-chat", "endpoint": "chat", "items": [{"type": "reasoning"}]})
    with pytest.raises(ConfigurationError, match="typed output items"):
        build_request({"prompt": PROMPT, "model": "fake-chat", "endpoint": "responses", "items": ["text"]})
    stored = build_request({"prompt": PROMPT, "model": "fake-chat", "endpoint": "responses", "store": True,
                            "keep_reasoning": True})
    assert "include" not in stored.params and stored.params["store"] is True
