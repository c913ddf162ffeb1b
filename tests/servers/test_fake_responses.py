"""Tests of the fake server's Responses API (``fakeserver_responses``, GUIDE §11): bodies and every streamed
event checked against the reference schemas, reasoning, refusals, max_output_tokens, GPT-5 rules, faults,
and the official SDK reading the stream; over real sockets."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text
from tests.support.checks import checker, event_schemas, oneof_to_anyof, responses_components, sse_events
from tests.support.keys import AUTH

BODY = {"model": "fake-chat", "input": "one two three"}
LONG = " ".join(f"w{i}" for i in range(30))  # answers with 31 words: more than max_output_tokens=16
REASONING = reasoning_text("one two three")
TEXT_EVENTS = ["response.created", "response.in_progress", "response.output_item.added",
               "response.content_part.added"] + ["response.output_text.delta"] * 4 + [
               "response.output_text.done", "response.content_part.done", "response.output_item.done",
               "response.completed"]


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    pytest.importorskip("jsonschema")
    components = responses_components()
    return {"check": checker(components), "request": checker(oneof_to_anyof(components)),
            "events": event_schemas(components)}


@pytest.fixture
def post(server: FakeOpenAIServer, http: requests.Session) -> Any:
    """``post(**body)``: a Responses API request with the test key."""
    return lambda **body: http.post(server.url + "/responses", json=body)


def respond(post: Any, spec: dict, **body: Any) -> dict[str, Any]:
    """A non-streamed Response, its request and body checked against the reference schemas."""
    spec["request"]("CreateResponse", body)
    r = post(**body)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.text
    spec["check"]("Response", r.json())
    return r.json()


def stream(post: Any, spec: dict | None, **body: Any) -> tuple[bytes, list[dict]]:
    """The raw body and the events of a streamed Response; each event checked when ``spec`` is given."""
    r = post(**body, stream=True)
    assert r.status_code == 200 and r.headers["Content-Type"] == "text/event-stream", r.text
    events = []
    for name, data in sse_events(r.content):
        event = json.loads(data)
        assert name == event["type"]  # the event: line names the type
        if spec:
            spec["check"](spec["events"][name], event)
            spec["check"]("ResponseStreamEvent", event)
        events.append(event)
    return r.content, events


def deltas(events: list[dict], kind: str = "response.output_text.delta") -> str:
    return "".join(e["delta"] for e in events if e["type"] == kind)


# ---------------------------------------------------------------- non-streamed

def test_plain_response(post: Any, spec: dict) -> None:
    r = respond(post, spec, **BODY)
    assert (r["object"], r["status"], r["model"], r["error"], r["incomplete_details"]) == (
        "response", "completed", "fake-chat", None, None)
    assert r["id"].startswith("resp_") and r["output"] == [{
        "id": r["id"].replace("resp_", "msg_"), "type": "message", "status": "completed", "role": "assistant",
        "content": [{"type": "output_text", "text": "Echo: three two one", "annotations": [], "logprobs": []}]}]
    assert r["usage"] == {"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                          "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 7}


def test_message_list_input_and_options_are_echoed(post: Any, spec: dict) -> None:
    fmt = {"type": "json_schema", "name": "answer", "strict": True,
           "schema": {"type": "object", "properties": {}, "required": [], "additionalProperties": False}}
    body = {"model": "fake-chat", "instructions": "be brief", "max_output_tokens": 100, "temperature": 0.2,
            "top_p": 0.9, "store": False, "text": {"format": fmt, "verbosity": "low"},
            "input": [{"role": "user", "content": "a b"}, {"role": "assistant", "content": "Echo: b a"},
                      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "x y z"}]}]}
    r = respond(post, spec, **body)
    assert r["output"][0]["content"][0]["text"] == "Echo: z y x"
    assert r["usage"]["input_tokens"] == 2 + 2 + 3 + 3  # instructions and every message
    assert (r["instructions"], r["max_output_tokens"], r["temperature"], r["top_p"], r["store"]) == (
        "be brief", 100, 0.2, 0.9, False)
    assert r["text"] == {"format": fmt, "verbosity": "low"}


def test_max_output_tokens_cuts_the_answer(post: Any, spec: dict) -> None:
    r = respond(post, spec, model="fake-chat", input=LONG, max_output_tokens=16)
    assert (r["status"], r["incomplete_details"]) == ("incomplete", {"reason": "max_output_tokens"})
    text = r["output"][0]["content"][0]["text"]
    assert text == "Echo: w29 w28 w27 w26 w25 w24 w23 w22 w21 w20 w19 w18 w17 w16 w15" and len(text.split()) == 16
    assert r["output"][0]["status"] == "incomplete" and r["usage"]["output_tokens"] == 16
    assert r["completed_at"] is None
    _, events = stream(post, spec, model="fake-chat", input=LONG, max_output_tokens=16)
    assert events[-1]["type"] == "response.incomplete" and events[-1]["response"]["status"] == "incomplete"
    assert deltas(events) == text and not any(e["type"] == "response.completed" for e in events)


def test_gpt5_reasoning_item_and_tokens(post: Any, spec: dict) -> None:
    r = respond(post, spec, model="gpt-5.4", input="one two three", max_output_tokens=200)
    assert [item["type"] for item in r["output"]] == ["reasoning", "message"]
    assert r["output"][0]["summary"] == [] and "content" not in r["output"][0]
    assert r["usage"]["output_tokens_details"] == {"reasoning_tokens": 8} and r["usage"]["output_tokens"] == 12
    assert r["reasoning"] == {"effort": "medium", "summary": None}
    r = respond(post, spec, model="gpt-5.5", input="one two three", reasoning={"effort": "none"})
    assert [item["type"] for item in r["output"]] == ["message"]
    assert r["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    r = respond(post, spec, model="gpt-5.4-mini", input="one two three", reasoning={"effort": "high",
                                                                                    "summary": "auto"})
    assert r["output"][0]["summary"] == [{"type": "summary_text", "text": REASONING}]
    assert r["usage"]["output_tokens_details"] == {"reasoning_tokens": 16}


def test_gpt5_reasoning_counts_against_max_output_tokens(post: Any, spec: dict) -> None:
    r = respond(post, spec, model="gpt-5.4", input=LONG, max_output_tokens=20, reasoning={"effort": "high"})
    assert r["status"] == "incomplete" and r["usage"]["output_tokens_details"]["reasoning_tokens"] == 16
    assert r["output"][1]["content"][0]["text"] == "Echo: w29 w28 w27"  # 20 - 16 visible tokens


def test_reasoner_and_refuser_outputs(post: Any, spec: dict) -> None:
    r = respond(post, spec, model="fake-reasoner", input="one two three")
    assert r["output"][0]["content"] == [{"type": "reasoning_text", "text": REASONING}]
    assert r["output"][1]["content"][0]["text"] == "Echo: three two one"
    assert r["usage"]["output_tokens_details"] == {"reasoning_tokens": 12}
    r = respond(post, spec, model="fake-refuser", input="one two three")
    assert r["output"][0]["content"] == [{"type": "refusal", "refusal": REFUSAL_TEXT}]


# ---------------------------------------------------------------- rejections

@pytest.mark.parametrize("patch,param,code", [
    ({"model": None}, "model", "missing_required_parameter"),
    ({"input": None}, "input", "missing_required_parameter"),
    ({"input": 5}, "input", "invalid_type"),
    ({"input": [{"content": "x"}]}, "input[0].role", "missing_required_parameter"),
    ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role", "invalid_value"),
    ({"max_output_tokens": 15}, "max_output_tokens", "integer_below_min_value"),  # the schema's minimum: 16
    ({"temperature": 2.5}, "temperature", "decimal_above_max_value"),
    ({"reasoning": {"summary": "long"}}, "reasoning.summary", "invalid_value"),
    ({"text": {"verbosity": "loud"}}, "text.verbosity", "invalid_value"),
    ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema", "missing_required_parameter"),
    ({"model": "gpt-5.4", "temperature": 0.2}, "temperature", "unsupported_value"),
    ({"model": "gpt-5.4", "top_p": 0.5}, "top_p", "unsupported_value"),
    ({"model": "gpt-5.4", "reasoning": {"effort": "max"}}, "reasoning.effort", "unsupported_value"),
])
def test_bad_requests(post: Any, spec: dict, patch: dict, param: str, code: str) -> None:
    body = {k: v for k, v in {**BODY, **patch}.items() if v is not None}
    r = post(**body)
    assert r.status_code == 400, r.text
    assert (r.json()["error"]["param"], r.json()["error"]["code"]) == (param, code)


def test_gpt5_temperature_message_and_accepted_fields(post: Any, spec: dict) -> None:
    r = post(model="gpt-5.4", input="x", temperature=0.2)
    assert r.json() == {"error": {"message": "Unsupported value: 'temperature' does not support 0.2 with this "
                                             "model. Only the default (1) value is supported.",
                                  "type": "invalid_request_error", "param": "temperature", "code": "unsupported_value"}}
    r = respond(post, spec, model="gpt-5.4", input="x", temperature=1, max_output_tokens=64,
                reasoning={"effort": "xhigh", "summary": "concise"}, text={"verbosity": "high"})
    assert r["status"] == "completed" and r["usage"]["output_tokens_details"]["reasoning_tokens"] == 32


# ---------------------------------------------------------------- streamed

def test_stream_events_in_order(post: Any, spec: dict) -> None:
    raw, events = stream(post, spec, **BODY)
    assert [e["type"] for e in events] == TEXT_EVENTS
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert b"[DONE]" not in raw and raw.endswith(b"}\n\n")
    assert raw.startswith(b"event: response.created\ndata: {")
    assert deltas(events) == "Echo: three two one" and events[-4]["text"] == "Echo: three two one"
    assert events[0]["response"]["status"] == "in_progress" and events[0]["response"]["usage"] is None
    final = events[-1]["response"]
    assert final == respond(post, spec, **BODY) | {"id": final["id"], "output": final["output"]}
    assert final["usage"]["total_tokens"] == 7 and final["output"][0]["content"][0]["text"] == "Echo: three two one"


def test_stream_reasoning_events_come_first(post: Any, spec: dict) -> None:
    _, events = stream(post, spec, model="fake-reasoner", input="one two three")
    types = [e["type"] for e in events]
    first_text = types.index("response.output_text.delta")
    assert types.count("response.reasoning_text.delta") == 12
    assert max(i for i, t in enumerate(types) if t.startswith("response.reasoning")) < first_text
    assert deltas(events, "response.reasoning_text.delta") == REASONING
    assert deltas(events) == "Echo: three two one"
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.added"] == [0, 1]
    _, events = stream(post, spec, model="gpt-5.4", input="one two three", reasoning={"summary": "detailed"})
    assert deltas(events, "response.reasoning_summary_text.delta") == REASONING
    assert "response.reasoning_text.delta" not in [e["type"] for e in events]
    _, events = stream(post, spec, model="gpt-5.4", input="one two three")  # hidden reasoning: an empty item
    assert [e["item"]["type"] for e in events if e["type"] == "response.output_item.done"] == ["reasoning",
                                                                                                "message"]
    assert not any("reasoning_summary" in e["type"] for e in events)


def test_stream_refusal(post: Any, spec: dict) -> None:
    _, events = stream(post, spec, model="fake-refuser", input="x")
    assert deltas(events, "response.refusal.delta") == REFUSAL_TEXT
    assert [e["refusal"] for e in events if e["type"] == "response.refusal.done"] == [REFUSAL_TEXT]


# ---------------------------------------------------------------- faults on /responses

def test_failed_after_n_deltas(server: FakeOpenAIServer, post: Any, spec: dict) -> None:
    server.add_fault(path="/responses", failed_after=2, message="model crashed")
    raw, events = stream(post, spec, **BODY)
    assert deltas(events) == "Echo: three" and events[-1]["type"] == "response.failed"
    failed = events[-1]["response"]
    assert (failed["status"], failed["error"]) == ("failed", {"code": "server_error", "message": "model crashed"})
    assert raw.endswith(b"}\n\n") and events[-1]["sequence_number"] == len(events) - 1


def test_error_event_after_n_deltas(server: FakeOpenAIServer, post: Any, spec: dict) -> None:
    server.add_fault(error_event_after=1, error_code="rate_limit_exceeded")
    _, events = stream(post, spec, **BODY)
    assert deltas(events) == "Echo:"
    assert events[-1] == {"type": "error", "code": "rate_limit_exceeded", "sequence_number": len(events) - 1,
                          "message": "The server had an error while processing your request. Sorry about that!",
                          "param": None}
    server.add_fault(error_event_after=99)  # past the last delta: right after it
    _, events = stream(post, spec, **BODY)
    assert deltas(events) == "Echo: three two one" and events[-1]["type"] == "error"


def test_generic_stream_faults_on_responses(server: FakeOpenAIServer, post: Any, spec: dict) -> None:
    server.add_fault(error_after=3, message="boom")  # counts events, like on chat
    _, events = stream(post, spec, **BODY)
    assert len(events) == 4 and events[-1]["type"] == "error" and events[-1]["message"] == "boom"
    server.add_fault(crlf=True, comments=True, bom=True)
    raw, events = stream(post, None, **BODY)
    assert raw.startswith(b"\xef\xbb\xbfevent: response.created\r\n") and b": keep-alive\r\n\r\n" in raw
    assert [e["type"] for e in events] == TEXT_EVENTS
    server.add_fault(path="/responses", status=503, retry_after="1")
    r = post(**BODY, stream=True)
    assert (r.status_code, r.headers["Retry-After"]) == (503, "1")
    server.add_fault(chunks=500)  # content faults shape the answer here too
    _, events = stream(post, None, **BODY)
    assert deltas(events) == " ".join(f"w{i}" for i in range(500))


def test_drop_and_stall_on_responses(server: FakeOpenAIServer) -> None:
    url, body = server.url + "/responses", {**BODY, "stream": True}
    server.add_fault(drop_after=5)
    r = requests.post(url, json=body, headers=AUTH, stream=True)
    got = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(chunk_size=None):
            got += chunk
    assert [name for name, _ in sse_events(got)][-1] == "response.output_text.delta"
    assert len(sse_events(got)) == 5
    server.add_fault(stall_after=4, stall=0.3)
    t0 = time.monotonic()
    r = requests.post(url, json=body, headers=AUTH)
    assert time.monotonic() - t0 >= 0.3 and len(sse_events(r.content)) == len(TEXT_EVENTS)
    server.add_fault(stall_after=4, stall=1)
    with pytest.raises(requests.exceptions.ConnectionError):  # urllib3 read timeout mid-body
        requests.post(url, json=body, headers=AUTH, timeout=(2, 0.2))


# ---------------------------------------------------------------- the official SDK reads it

def test_official_sdk_reads_responses(server: FakeOpenAIServer) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.url, api_key=TEST_KEY, max_retries=0) as client:
        r = client.responses.create(model="fake-chat", input="one two three", instructions="be brief")
        assert r.output_text == "Echo: three two one" and r.usage.total_tokens == 7 + 2
        events = list(client.responses.create(model="fake-reasoner", input="one two three", stream=True))
        assert [e.type for e in events][:2] == ["response.created", "response.in_progress"]
        assert "".join(e.delta for e in events if e.type == "response.reasoning_text.delta") == REASONING
        assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Echo: three two one"
        final = events[-1]
        assert final.type == "response.completed" and final.response.output_text == "Echo: three two one"
        assert final.response.usage.output_tokens_details.reasoning_tokens == 12
        with client.responses.stream(model="gpt-5.4", input="one two three", reasoning={"summary": "auto"}) as s:
            summary = "".join(e.delta for e in s if e.type == "response.reasoning_summary_text.delta")
            done = s.get_final_response()
        assert summary == REASONING and done.output_text == "Echo: three two one"
        cut = client.responses.create(model="fake-chat", input=LONG, max_output_tokens=16)
        assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
        server.add_fault(failed_after=1)
        events = list(client.responses.create(model="fake-chat", input="a b", stream=True))
        assert events[-1].type == "response.failed" and events[-1].response.error.code == "server_error"
        server.add_fault(error_event_after=1)
        events = list(client.responses.create(model="fake-chat", input="a b", stream=True))
        assert events[-1].type == "error" and events[-1].code == "server_error"
        with pytest.raises(openai.BadRequestError):
            client.responses.create(model="gpt-5.4", input="x", temperature=0.5)
        with pytest.raises(openai.NotFoundError):
            client.responses.create(model="gpt-9", input="x")


def test_a_strict_schema_outside_the_subset_is_a_400(post: Any) -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "note": {"type": "string"}},
              "required": ["a"], "additionalProperties": False}  # a pydantic model's optional field, as sent raw
    r = post(model="fake-chat", input="x", text={"format": {"type": "json_schema", "name": "pick", "schema": schema,
                                                           "strict": True}})
    assert r.status_code == 400 and r.json()["error"] == {
        "message": "Invalid schema for response_format 'pick': In context=(), 'required' is required to be supplied "
                   "and to be an array including every key in properties. Missing 'note'.",
        "type": "invalid_request_error", "param": "text.format.schema", "code": "invalid_json_schema"}
