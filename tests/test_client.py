"""The HTTP client (``jupyter_openai.client``) against the real test server on 127.0.0.1.

* Endpoints: models (list, retrieve), completions and chat, streamed and not, with every field of
  CreateCompletionRequest passed through as sent (checked on the wire and against the reference
  schema), ``stream_options.include_usage`` and the retry without it when a server rejects it.
* Retries: the backoff formula, ``Retry-After`` / ``retry-after-ms`` / HTTP dates / the 60 s cap,
  ``x-should-retry``, which statuses are retried (GUIDE section 3) — delays are recorded with
  ``OpenAIClient(sleep=recorder)`` instead of slept, and requests are counted on the server.
* Every fault row of GUIDE section 6 that concerns the client: status errors in every body style,
  refused / timed-out connections, read timeouts before headers and mid-stream, dropped connections,
  malformed and error chunks, EOF without ``[DONE]``, HTML pages, huge answers, Ctrl-C. For stream
  failures the partial text and status stay on the Stream, nothing is retried once bytes were read,
  and the connection is released.

A few shapes the test server cannot produce (a 200 answer that is not JSON, a chunk that is JSON but
not an object) come from :class:`RawServer`, a one-shot socket server defined here.
"""

from __future__ import annotations

import email.utils
import json
import re
import signal
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_openai.api.completion import Completion
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
)
from jupyter_openai.transport.retries import INITIAL_RETRY_DELAY, MAX_RETRY_AFTER, MAX_RETRY_DELAY, backoff_delay
from jupyter_openai.transport.stream import Stream
from tests.servers.fake import TEST_KEY, FakeOpenAIServer, closed_port, unaccepting_address
from tests.support.checks import SUBSET, load_components
from tests.support.clock import Recorder

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
TEXT = "Echo: three two one"


# Read timeouts: a test waits for an answer as long as its work can take on a busy machine (building
# 30,000 events or 3 MB, then a garbage collection, took over 0.5 s under load; a timeout then retries
# and the retry finds the fault spent). Only tests that wait out a stall or a delay use IMPATIENT,
# against stalls and delays several times longer, while the work before them is a few small events.
PATIENT, IMPATIENT = 10.0, 0.5


@pytest.fixture
def fast(server: FakeOpenAIServer, delays: Recorder) -> Iterator[OpenAIClient]:
    """A client whose backoff sleeps are recorded, not slept."""
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, connect_timeout=PATIENT, read_timeout=PATIENT,
                      sleep=delays) as client:
        yield client


@pytest.fixture
def impatient(server: FakeOpenAIServer, delays: Recorder) -> Iterator[OpenAIClient]:
    """Like ``fast``, with a read timeout of IMPATIENT seconds, for tests that wait out a stall."""
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, connect_timeout=PATIENT, read_timeout=IMPATIENT,
                      sleep=delays) as client:
        yield client


def ask(client: OpenAIClient, kind: str = "chat", stream: bool = False, **params: Any) -> Completion | Stream:
    if kind == "chat":
        return client.chat("fake-chat", MESSAGES, stream=stream, **params)
    return client.completion("davinci-002", "one two three", stream=stream, **params)


def in_backoff_range(delay: float, attempt: int) -> bool:
    top = min(INITIAL_RETRY_DELAY * 2 ** attempt, MAX_RETRY_DELAY)
    return 0.75 * top <= delay <= top


def released(stream: Stream) -> bool:
    """The stream's socket is closed (not left open nor handed back half-read)."""
    raw = stream._response.raw
    return raw.closed and (raw._connection is None or raw._connection.sock is None)


def one_line(err: BaseException) -> str:
    text = str(err)
    assert text and "\n" not in text and "\r" not in text
    return text


# ================================================================ endpoints

def test_list_models(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    models = client.list_models()
    assert [m["id"] for m in models] == list(server.models)
    assert all(m["object"] == "model" and m["owned_by"] == "fake" for m in models)
    (req,) = server.requests
    assert (req.method, req.path, req.body) == ("GET", "/v1/models", None)


def test_retrieve_model(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    assert client.retrieve_model("gpt-4o-mini") == {"id": "gpt-4o-mini", "object": "model",
                                                    "created": 1_700_000_000, "owned_by": "fake"}
    assert server.requests[-1].path == "/v1/models/gpt-4o-mini"


def test_retrieve_model_quotes_the_id(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(NotFoundError) as info:
        client.retrieve_model("org/some model?x=1")
    first, listed = server.requests  # the 404, then the list it looked in (in vain)
    assert first.path == "/v1/models/org%2Fsome%20model%3Fx%3D1" and listed.path == "/v1/models"
    assert "`org/some model?x=1` does not exist" in str(info.value)
    assert info.value.code == "model_not_found" and info.value.request_id == first.request_id


def test_retrieve_model_falls_back_to_the_list(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    """Servers without ``GET /models/{id}`` (llama-server, llama-cpp-python): the list's entry."""
    server.add_fault(path="/v1/models/fake-chat", status=404, body_style="detail")
    assert client.retrieve_model("fake-chat") == client.list_models()[0]
    assert [r.path for r in server.requests] == ["/v1/models/fake-chat", "/v1/models", "/v1/models"]


def test_retrieve_model_keeps_the_404_when_the_list_fails(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/v1/models/fake-chat", status=404, message="no such route")
    server.add_fault(path="/v1/models", status=403)
    with pytest.raises(NotFoundError, match="no such route"):
        client.retrieve_model("fake-chat")
    assert [r.path for r in server.requests] == ["/v1/models/fake-chat", "/v1/models"]


def test_retrieve_model_needs_an_id(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigurationError):
        client.retrieve_model("")
    assert server.requests == []


def test_unknown_model_is_not_found(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(NotFoundError, match="no-such-model") as info:
        client.chat("no-such-model", MESSAGES)
    # issue 11: one line that names the closest models the server lists (one GET /models, no retry)
    assert "Available models closest to 'no-such-model': " in str(info.value) and "\n" not in str(info.value)
    assert [r.method for r in server.requests] == ["POST", "GET"]


@pytest.fixture(scope="module")
def spec() -> dict:
    return load_components(SUBSET)


def validate(spec: dict, name: str, obj: Any) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(obj, {"$ref": f"#/components/schemas/{name}", "components": spec})


ALL_COMPLETION_FIELDS = {
    "suffix": " [end]", "max_tokens": 8, "temperature": 0.7, "top_p": 0.9, "n": 2, "logprobs": 3, "echo": True,
    "stop": ["zzz", "yyy"], "presence_penalty": 0.5, "frequency_penalty": -0.5, "best_of": 2,
    "logit_bias": {"50256": -100, "13": 5}, "seed": 1234, "user": "user-42",
}


@pytest.mark.parametrize("stream", [False, True])
def test_completion_sends_every_field_as_given(client: OpenAIClient, server: FakeOpenAIServer, spec: dict,
                                               stream: bool) -> None:
    props = set(spec["schemas"]["CreateCompletionRequest"]["properties"])
    assert props - {"model", "prompt", "stream", "stream_options"} == set(ALL_COMPLETION_FIELDS)
    fields = {k: v for k, v in ALL_COMPLETION_FIELDS.items() if not (stream and k == "best_of")}  # GUIDE 18
    result = client.completion("davinci-002", "one two three", stream=stream, **fields)
    if stream:
        result.read()
    body = server.requests[-1].body
    expected = {"model": "davinci-002", "prompt": "one two three", **fields}
    if stream:
        expected |= {"stream": True, "stream_options": {"include_usage": True}}
    assert body == expected
    assert json.loads(server.requests[-1].raw_body) == expected
    validate(spec, "CreateCompletionRequest", body)
    # echo puts the prompt first, suffix last; n=2 gives two choices
    assert result.texts == ["one two three" + TEXT + " [end]", "one two three" + TEXT.replace("Echo:", "Echo2:")
                            + " [end]"]


ALL_CHAT_FIELDS = {
    "max_completion_tokens": 8, "max_tokens": 9, "temperature": 0.0, "top_p": 1.0, "n": 2, "stop": "zzz",
    "presence_penalty": 2.0, "frequency_penalty": -2.0, "logit_bias": {"1": 1}, "seed": -7, "user": "u",
    "logprobs": True, "top_logprobs": 5,
}


@pytest.mark.parametrize("stream", [False, True])
def test_chat_sends_every_field_as_given(client: OpenAIClient, server: FakeOpenAIServer, spec: dict,
                                         stream: bool) -> None:
    result = client.chat("fake-chat", MESSAGES, stream=stream, **ALL_CHAT_FIELDS)
    if stream:
        result.read()
    body = server.requests[-1].body
    expected = {"model": "fake-chat", "messages": MESSAGES, **ALL_CHAT_FIELDS}
    if stream:
        expected |= {"stream": True, "stream_options": {"include_usage": True}}
    assert body == expected
    validate(spec, "CreateChatCompletionRequest", body)
    assert result.texts == [TEXT, TEXT.replace("Echo:", "Echo2:")]


def test_chat_max_completion_tokens_limits_the_answer(client: OpenAIClient) -> None:
    result = client.chat("fake-chat", MESSAGES, max_completion_tokens=2)
    assert (result.text, result.finish_reason) == ("Echo: three", "length")
    assert result.usage["completion_tokens"] == 2


def test_completion_prompt_list_gives_one_choice_per_prompt(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    result = client.completion("davinci-002", ["a b", "c d"])
    assert result.texts == ["Echo: b a", "Echo: d c"]
    assert server.requests[-1].body["prompt"] == ["a b", "c d"]


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_non_streamed_result(client: OpenAIClient, server: FakeOpenAIServer, kind: str) -> None:
    result = ask(client, kind)
    assert isinstance(result, Completion)
    assert (result.text, result.texts, result.finish_reason) == (TEXT, [TEXT], "stop")
    assert result.model == ("fake-chat" if kind == "chat" else "davinci-002")
    assert result.id.startswith("chatcmpl-" if kind == "chat" else "cmpl-") and result.created == 1_700_000_000
    assert result.usage == {"prompt_tokens": 5 if kind == "chat" else 3, "completion_tokens": 4,
                            "total_tokens": 9 if kind == "chat" else 7}
    assert result.request_id == server.requests[-1].request_id and len(result.choices) == 1
    assert "stream" not in server.requests[-1].body and "stream_options" not in server.requests[-1].body


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_streamed_result_asks_for_usage(client: OpenAIClient, server: FakeOpenAIServer, kind: str) -> None:
    stream = ask(client, kind, stream=True)
    assert isinstance(stream, Stream)
    stream.read()
    body = server.requests[-1].body
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert stream.usage["completion_tokens"] == 4 and stream.text == TEXT and stream.status == "ok"
    assert stream.request_id == server.requests[-1].request_id


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_streamed_n_choices(client: OpenAIClient, kind: str) -> None:
    stream = ask(client, kind, stream=True, n=2).read()
    assert stream.texts == [TEXT, TEXT.replace("Echo:", "Echo2:")]
    assert stream.finish_reasons == {0: "stop", 1: "stop"}


def test_callers_stream_options_are_kept(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True, stream_options={"include_usage": False}).read()
    assert server.requests[-1].body["stream_options"] == {"include_usage": False}
    assert stream.usage is None and stream.text == TEXT


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_rejected_stream_options_retried_once_without_and_remembered(fast: OpenAIClient, server: FakeOpenAIServer,
                                                                     delays: Recorder, kind: str) -> None:
    server.add_fault(reject_stream_options=True, times=None)  # this server never accepts the field
    stream = ask(fast, kind, stream=True).read()
    first, second = server.requests
    assert first.body["stream_options"] == {"include_usage": True} and first.fault
    assert "stream_options" not in second.body and second.body["stream"] is True
    assert stream.text == TEXT and stream.status == "ok" and stream.usage is None
    assert delays == []  # not a backoff retry: an immediate second request
    server.requests.clear()
    ask(fast, kind, stream=True).read()
    (third,) = server.requests  # remembered: no wasted request any more
    assert "stream_options" not in third.body
    assert isinstance(ask(fast, kind).text, str)  # non-streamed calls are unaffected
    assert "stream_options" not in server.requests[-1].body


def test_other_bad_requests_on_streams_are_not_retried(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(status=400, message="Invalid 'temperature'")
    with pytest.raises(BadRequestError, match="Invalid 'temperature'"):
        ask(fast, stream=True)
    assert len(server.requests) == 1
    ask(fast, stream=True).read()
    assert server.requests[-1].body["stream_options"] == {"include_usage": True}  # not wrongly remembered


def test_client_repr_and_context_manager(server: FakeOpenAIServer) -> None:
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url) as client:
        client.list_models()
        pool = client._session.adapters["http://"].poolmanager
        assert len(pool.pools) == 1
        assert TEST_KEY not in repr(client) and server.url in repr(client)
    assert len(pool.pools) == 0


# ================================================================ retries and backoff

@pytest.mark.parametrize("attempt", range(8))
def test_backoff_formula(attempt: int) -> None:
    top = min(0.5 * 2 ** attempt, 8)
    assert backoff_delay(attempt, rng=lambda: 0.0) == top
    assert backoff_delay(attempt, rng=lambda: 1.0) == pytest.approx(0.75 * top)
    assert all(in_backoff_range(backoff_delay(attempt), attempt) for _ in range(200))
    assert (INITIAL_RETRY_DELAY, MAX_RETRY_DELAY, MAX_RETRY_AFTER) == (0.5, 8.0, 60.0)


def test_backoff_sequence_through_the_client(server: FakeOpenAIServer, delays: Recorder) -> None:
    server.add_fault(status=503, times=6)
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=6, sleep=delays)
    assert ask(client).text == TEXT
    assert len(server.requests) == 7 and len(delays) == 6
    assert all(in_backoff_range(d, n) for n, d in enumerate(delays)), delays
    assert delays[5] <= 8.0  # capped: 0.5 * 2**5 = 16 would be too long


@pytest.mark.parametrize("kind, stream", [("chat", False), ("chat", True), ("completions", False)])
def test_429_without_retry_after_backs_off_then_succeeds(fast: OpenAIClient, server: FakeOpenAIServer,
                                                         delays: Recorder, kind: str, stream: bool) -> None:
    server.add_fault(status=429)
    result = ask(fast, kind, stream=stream)
    assert (result.read() if stream else result).text == TEXT
    assert len(server.requests) == 2 and len(delays) == 1 and in_backoff_range(delays[0], 0)


def _http_date(seconds_ahead: float) -> str:
    return email.utils.formatdate(time.time() + seconds_ahead, usegmt=True)


@pytest.mark.parametrize("headers, low, high", [
    ({"retry_after": "2"}, 2, 2),
    ({"retry_after": "0.25"}, 0.25, 0.25),
    ({"retry_after": "0"}, 0, 0),
    ({"retry_after_ms": "1500"}, 1.5, 1.5),
    ({"retry_after_ms": "250", "retry_after": "30"}, 0.25, 0.25),  # the ms header wins
    ({"retry_after_ms": "soon", "retry_after": "3"}, 3, 3),  # a broken ms header is skipped
    ({"retry_after": "__date+5"}, 3.5, 5.01),  # an HTTP date
    ({"retry_after": "__date-30"}, 0.375, 0.5),  # a date in the past: normal backoff
    ({"retry_after": "soon"}, 0.375, 0.5),  # unreadable: normal backoff
    ({"retry_after": "60"}, 60, 60),  # at the cap: still waited for
])
def test_retry_after_is_honoured(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder,
                                 headers: dict, low: float, high: float) -> None:
    fault = {k: (_http_date(float(v[6:])) if v.startswith("__date") else v) for k, v in headers.items()}
    server.add_fault(status=429, **fault)
    assert ask(fast).text == TEXT
    assert len(server.requests) == 2 and len(delays) == 1
    assert low <= delays[0] <= high, delays


@pytest.mark.parametrize("retry_after, seconds", [("120", 120), ("3600", 3600), ("__date+600", 600)])
@pytest.mark.parametrize("max_retries", [2, 0])
def test_retry_after_beyond_the_cap_fails_at_once_saying_when(server: FakeOpenAIServer, delays: Recorder,
                                                              retry_after: str, seconds: int,
                                                              max_retries: int) -> None:
    value = _http_date(seconds) if retry_after.startswith("__date") else retry_after
    server.add_fault(status=429, retry_after=value, times=3)
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, sleep=delays, max_retries=max_retries)
    started = time.monotonic()
    with pytest.raises(RateLimitError) as info:
        ask(client)
    took = time.monotonic() - started  # an HTTP date counts down meanwhile (a busy machine: seconds)
    assert delays == [] and len(server.requests) == 1  # at once: no wait, no retry
    err = info.value
    assert seconds - 2 - took <= err.retry_after <= seconds
    text = one_line(err)
    assert "wait" in text and any(f"{s} s" in text for s in range(int(seconds - 2 - took), seconds + 1))
    assert text.startswith("429 Rate limited: Rate limit reached") and err.args == (text,)


def test_retry_after_beyond_the_cap_on_503(server: FakeOpenAIServer, delays: Recorder) -> None:
    server.add_fault(status=503, retry_after="300")
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, sleep=delays)
    with pytest.raises(InternalServerError, match=r"retry after 300 s"):
        ask(client)
    assert len(server.requests) == 1 and delays == []


@pytest.mark.parametrize("status, style", [(500, "openai"), (502, "html"), (503, "openai"), (504, "empty"),
                                           (500, "detail"), (408, "openai"), (409, "openai")])
@pytest.mark.parametrize("stream", [False, True])
def test_transient_statuses_are_retried(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder,
                                        status: int, style: str, stream: bool) -> None:
    server.add_fault(status=status, body_style=style)
    result = ask(fast, stream=stream)
    assert (result.read() if stream else result).text == TEXT
    assert [(r.fault or {}).get("status") for r in server.requests] == [status, None]
    assert len(delays) == 1 and in_backoff_range(delays[0], 0)


@pytest.mark.parametrize("status, cls", [(500, InternalServerError), (503, InternalServerError),
                                         (429, RateLimitError), (409, ConflictError), (408, APIStatusError)])
def test_retries_give_up_after_max_retries(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder,
                                           status: int, cls: type) -> None:
    server.add_fault(status=status, times=None)
    with pytest.raises(cls) as info:
        ask(fast)
    assert type(info.value) is cls and info.value.status == status
    assert len(server.requests) == 3 and len(delays) == 2
    assert in_backoff_range(delays[0], 0) and in_backoff_range(delays[1], 1)
    assert info.value.request_id == server.requests[-1].request_id  # the last attempt's id


def test_max_retries_zero(server: FakeOpenAIServer, delays: Recorder) -> None:
    server.add_fault(status=503)
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0, sleep=delays)
    with pytest.raises(InternalServerError):
        ask(client)
    assert len(server.requests) == 1 and delays == []


@pytest.mark.parametrize("status", [500, 429, 503])
def test_x_should_retry_false_stops_retries(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder,
                                            status: int) -> None:
    server.add_fault(status=status, should_retry="false")
    with pytest.raises(APIStatusError):
        ask(fast)
    assert len(server.requests) == 1 and delays == []


@pytest.mark.parametrize("status", [400, 401, 404])
def test_x_should_retry_true_forces_a_retry(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder,
                                            status: int) -> None:
    server.add_fault(status=status, should_retry="true")
    assert ask(fast).text == TEXT
    assert len(server.requests) == 2 and len(delays) == 1


NOT_RETRIED = [
    (400, BadRequestError, "Bad request", "Bad request (injected fault)."),
    (401, AuthenticationError, "Authentication failed", "Incorrect API key provided: sk-te****."),
    (403, PermissionDeniedError, "Permission denied", "Country, region, or territory not supported."),
    (404, NotFoundError, "Not found", "The model `fake-chat` does not exist or you do not have access to it."),
    (422, BadRequestError, "Bad request", "Unprocessable entity (injected fault)."),
]


@pytest.mark.parametrize("status, cls, label, message", NOT_RETRIED, ids=[str(r[0]) for r in NOT_RETRIED])
@pytest.mark.parametrize("kind, stream", [("chat", False), ("chat", True), ("completions", False),
                                          ("completions", True)])
def test_client_errors_are_not_retried(fast: OpenAIClient, server: FakeOpenAIServer, delays: Recorder, status: int,
                                       cls: type, label: str, message: str, kind: str, stream: bool) -> None:
    server.add_fault(status=status)
    with pytest.raises(cls) as info:
        ask(fast, kind, stream=stream)
    err = info.value
    posts = [r for r in server.requests if r.method == "POST"]  # a 404 may list the models once (issue 11)
    assert type(err) is cls and len(posts) == 1 and delays == []
    request_id = server.requests[0].request_id
    assert (err.status, err.message, err.request_id, err.type) == (status, message, request_id,
                                                                   "invalid_request_error")
    text = one_line(err)
    assert text.startswith(f"{status} {label}: {message}") and text.endswith(f"[request id {request_id}]")


def test_409_follows_the_reference_and_is_retried(fast: OpenAIClient, server: FakeOpenAIServer,
                                                  delays: Recorder) -> None:
    """GUIDE section 3: the official SDK retries 409; with ``x-should-retry: false`` it is final."""
    server.add_fault(status=409, should_retry="false")
    with pytest.raises(ConflictError, match=r"^409 Conflict: Conflict \(injected fault\)\. \[request id req_"):
        ask(fast)
    assert len(server.requests) == 1 and delays == []


def test_real_authentication_failure(server: FakeOpenAIServer, delays: Recorder) -> None:
    client = OpenAIClient(api_key="sk-wrong-key-0123456789", base_url=server.url, sleep=delays)
    for call in (client.list_models, lambda: ask(client), lambda: ask(client, stream=True)):
        with pytest.raises(AuthenticationError, match="Incorrect API key provided: sk-wr"):
            call()
    assert len(server.requests) == 3 and delays == []


# ================================================================ error bodies in every style

STYLES = [
    ("openai", "Bad request (injected fault).", None),
    ("int_code", "Bad request (injected fault).", 400),
    ("flat", "Bad request (injected fault).", 400),
    ("detail", "Bad request (injected fault).", None),
    ("string", "Bad request (injected fault).", None),
    ("html", "HTML page: 400 Bad Request", None),
    ("empty", "(empty body)", None),
]


@pytest.mark.parametrize("style, message, code", STYLES, ids=[s[0] for s in STYLES])
@pytest.mark.parametrize("stream", [False, True])
def test_every_error_body_style(fast: OpenAIClient, server: FakeOpenAIServer, style: str, message: str,
                                code: int | None, stream: bool) -> None:
    server.add_fault(status=400, body_style=style)
    with pytest.raises(BadRequestError) as info:
        ask(fast, stream=stream)
    err = info.value
    assert err.message == message and err.code == code
    text = one_line(err)
    assert text.startswith(f"400 Bad request: {message}") and len(text) < 200
    assert "<" not in text and "nginx" not in text


def test_html_502_page_when_retries_run_out(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(status=502, body_style="html", times=None)
    with pytest.raises(InternalServerError) as info:
        ask(fast, stream=True)
    assert one_line(info.value).startswith("502 Server error: HTML page: 502 Bad Gateway [request id req_")
    assert len(server.requests) == 3


@pytest.mark.parametrize("stream", [False, True])
def test_huge_error_body_is_cut_short(fast: OpenAIClient, server: FakeOpenAIServer, stream: bool) -> None:
    server.add_fault(status=500, should_retry="false", message="overloaded " + "x" * 300_000)
    with pytest.raises(InternalServerError) as info:
        ask(fast, stream=stream)
    text = one_line(info.value)
    assert len(text) < 700 and "overloaded" in text


# ================================================================ connection faults

def test_connection_refused(delays: Recorder) -> None:
    port = closed_port()
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"http://127.0.0.1:{port}/v1", sleep=delays)
    with pytest.raises(APIConnectionError) as info:
        ask(client, stream=True)
    err = info.value
    assert type(err) is APIConnectionError  # not a timeout
    assert one_line(err) == f"Could not connect to 127.0.0.1:{port}: Connection refused"
    assert err.url == f"http://127.0.0.1:{port}/v1/chat/completions"
    assert len(delays) == 2 and in_backoff_range(delays[0], 0) and in_backoff_range(delays[1], 1)


def test_connect_timeout(delays: Recorder) -> None:
    host, port = unaccepting_address()
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"http://{host}:{port}/v1", connect_timeout=0.2,
                          read_timeout=5, max_retries=1, sleep=delays)
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        client.list_models()
    elapsed = time.monotonic() - started
    assert one_line(info.value) == f"Timed out connecting to {host}:{port} after 0.2 s"
    assert 0.35 <= elapsed < 5  # two attempts of 0.2 s each, not the 5 s read timeout
    assert len(delays) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_read_timeout_before_headers_without_retries(server: FakeOpenAIServer, stream: bool) -> None:
    server.add_fault(delay=30)
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=0.3, max_retries=0)
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        ask(client, stream=stream)
    assert time.monotonic() - started < 30  # the read timeout, not the 30 s delay
    assert one_line(info.value) == f"No answer from 127.0.0.1:{server.port} within 0.3 s"
    assert len(server.requests) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_read_timeout_before_headers_is_retried(impatient: OpenAIClient, server: FakeOpenAIServer,
                                                delays: Recorder, stream: bool) -> None:
    server.add_fault(delay=1.5)
    result = ask(impatient, stream=stream)
    assert (result.read() if stream else result).text == TEXT
    assert len(server.requests) == 2 and len(delays) == 1


# ================================================================ stream faults

STREAM_FAULTS = [
    # fault, exception class, message pattern, text received before the fault
    ({"stall_after": 3, "stall": 2}, APITimeoutError, r"^The stream stalled: no data for 0\.5 s$", "Echo: three"),
    ({"drop_after": 3}, APIConnectionError, r"^The stream was cut off: ", "Echo: three"),
    ({"drop_after": 1}, APIConnectionError, r"^The stream was cut off: ", ""),
    ({"malformed_after": 3}, StreamError, r"^Stream error: malformed chunk: '\{not json' \[request id req_\d+\]$",
     "Echo: three"),
    ({"malformed_after": 3, "chunk_delay": 0.2}, StreamError, r"malformed chunk", "Echo: three"),  # more to come
    ({"error_after": 3}, StreamError, r"^Stream error: the server sent an error mid-stream: The server had an "
     r"error while processing your request\. \[request id req_\d+\]$", "Echo: three"),
    ({"error_after": 2, "message": "Model crashed"}, StreamError,
     r"^Stream error: the server sent an error mid-stream: Model crashed \[request id", "Echo:"),
    ({"stall_after": 2, "stall": 2, "byte_by_byte": True}, APITimeoutError, r"stalled", "Echo:"),
    ({"drop_after": 4, "crlf": True, "bom": True}, APIConnectionError, r"cut off", "Echo: three two"),
]


@pytest.mark.parametrize("fault, cls, pattern, partial", STREAM_FAULTS,
                         ids=["+".join(f"{k}={v}" for k, v in f[0].items()) for f in STREAM_FAULTS])
def test_stream_faults_keep_partial_text_and_release(impatient: OpenAIClient, server: FakeOpenAIServer,
                                                     delays: Recorder, fault: dict, cls: type, pattern: str,
                                                     partial: str) -> None:
    """Events: 0 = role chunk, 1 = "Echo:", 2 = " three", 3 = " two", 4 = " one", ..."""
    server.add_fault(**fault)
    stream = ask(impatient, stream=True)
    received: list[str] = []
    with pytest.raises(cls) as info:
        for delta in stream:
            received.append(delta.text)
    err = info.value
    assert type(err) is cls
    one_line(err)
    assert re.search(pattern, str(err)), str(err)
    assert stream.text == partial == "".join(received)
    assert stream.status == "error" and stream.error is err
    assert released(stream)
    assert len(server.requests) == 1 and delays == []  # never retried once stream bytes were read
    assert list(stream) == []  # finished: iterating again yields nothing
    if cls is StreamError:
        assert err.request_id == server.requests[0].request_id


def test_stream_fault_in_completions(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(drop_after=2)
    stream = ask(fast, "completions", stream=True)
    with pytest.raises(APIConnectionError):
        stream.read()
    assert stream.text == "Echo: three" and stream.status == "error" and released(stream)


def test_stream_error_inside_with_block(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(malformed_after=2)
    with pytest.raises(StreamError):
        with ask(fast, stream=True) as stream:
            for _ in stream:
                pass
    assert stream.status == "error" and stream.text == "Echo:" and released(stream)


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_eof_without_done_is_truncated_not_an_error(fast: OpenAIClient, server: FakeOpenAIServer,
                                                    kind: str) -> None:
    server.add_fault(no_done=True)
    stream = ask(fast, kind, stream=True).read()
    assert stream.status == "truncated" and stream.truncated and stream.error is None
    assert stream.text == TEXT and stream.usage is not None
    assert len(server.requests) == 1


def test_eof_without_done_after_partial_answer(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(no_done=True, words=["a", " b"], comments=True)
    assert ask(fast, stream=True).read().text == "a b"


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_empty_choices_first_chunk(fast: OpenAIClient, server: FakeOpenAIServer, kind: str) -> None:
    server.add_fault(empty_choices_first=True)
    stream = ask(fast, kind, stream=True).read()
    assert (stream.text, stream.status, stream.finish_reason) == (TEXT, "ok", "stop")
    assert stream.model and stream.id


def test_huge_non_streamed_answer(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(huge=3_000_000)
    result = ask(fast, "completions")
    assert len(result.text) == 3_000_000 and result.finish_reason == "length"
    assert len(server.requests) == 1  # answered the first time, not retried after a timeout


def test_huge_streamed_answer(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(huge=30_000)
    stream = ask(fast, stream=True).read()
    assert stream.status == "ok" and stream.text.count(" w") == 29_999 and stream.text.endswith(" w29999")
    assert len(server.requests) == 1  # answered the first time, not retried after a timeout


def test_many_byte_by_byte_events_in_crlf(fast: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(chunks=50, byte_by_byte=True, crlf=True)
    assert ask(fast, stream=True).read().text.split()[-1] == "w49"


# ================================================================ Ctrl-C and early exits

@pytest.fixture
def own_server() -> Iterator[FakeOpenAIServer]:
    """A private server, so that its open connections can be counted."""
    with FakeOpenAIServer() as srv:
        yield srv


def server_connections_close(srv: FakeOpenAIServer, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with srv._lock:
            if not srv._connections:
                return True
        time.sleep(0.02)
    return False


def slow_stream(srv: FakeOpenAIServer) -> tuple[OpenAIClient, Stream]:
    srv.add_fault(chunks=300, chunk_delay=0.05)
    client = OpenAIClient(api_key=TEST_KEY, base_url=srv.url, read_timeout=5)
    return client, client.completion("davinci-002", "x", stream=True)


def test_keyboard_interrupt_in_loop_body_inside_with(own_server: FakeOpenAIServer) -> None:
    client, stream = slow_stream(own_server)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with stream:
            for delta in stream:
                if delta.text == " w3":
                    raise KeyboardInterrupt
    assert stream.status == "interrupted" and stream.text == "w0 w1 w2 w3" and stream.error is None
    assert released(stream)
    assert server_connections_close(own_server), "the server still sees the connection open"
    assert time.monotonic() - started < 15  # did not wait for the 15 s stream to end
    client.close()


def test_keyboard_interrupt_in_loop_body_then_close(own_server: FakeOpenAIServer) -> None:
    client, stream = slow_stream(own_server)
    try:
        for delta in stream:
            if delta.text == " w2":
                raise KeyboardInterrupt
    except KeyboardInterrupt:
        stream.close()
    assert stream.status == "interrupted" and stream.text == "w0 w1 w2" and released(stream)
    assert server_connections_close(own_server)
    client.close()


def test_sigint_while_waiting_for_data(own_server: FakeOpenAIServer) -> None:
    """A real Ctrl-C (SIGINT, as a kernel interrupt sends) arrives while the stream waits in a read:
    the stream marks itself interrupted and closes, with no ``with`` block or ``close()`` by the caller."""
    own_server.add_fault(chunks=50, chunk_delay=1.0)
    client = OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, read_timeout=5)
    stream = client.completion("davinci-002", "x", stream=True)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    timer: threading.Timer | None = None
    try:
        with pytest.raises(KeyboardInterrupt):
            for delta in stream:
                if delta.text == " w1" and timer is None:  # now blocked ~1 s until the next chunk
                    timer = threading.Timer(0.1, signal.pthread_kill, (threading.main_thread().ident, signal.SIGINT))
                    timer.start()
    finally:
        if timer is not None:
            timer.cancel()
        signal.signal(signal.SIGINT, previous)
    assert stream.status == "interrupted" and stream.text == "w0 w1" and released(stream)
    assert server_connections_close(own_server)
    client.close()


def test_break_out_of_with_block_closes_the_connection(own_server: FakeOpenAIServer) -> None:
    client, stream = slow_stream(own_server)
    with stream:
        for delta in stream:
            if delta.text == " w1":
                break
    assert stream.status == "interrupted" and stream.text == "w0 w1" and released(stream)
    assert server_connections_close(own_server)
    client.close()


def _open_sockets(srv: FakeOpenAIServer) -> frozenset:
    time.sleep(0.05)  # let the server notice a close, if any
    with srv._lock:
        return frozenset(srv._connections)


def test_finished_streams_leave_no_connections_behind(own_server: FakeOpenAIServer) -> None:
    """A stream ends at ``[DONE]`` and closes its connection (as the official SDK does: the end of the
    HTTP body is not waited for); later calls work and at most one idle keep-alive connection stays."""
    with OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, max_retries=0) as client:
        for _ in range(3):
            assert client.chat("fake-chat", MESSAGES, stream=True).read().status == "ok"
            assert client.completion("davinci-002", "a", stream=True).read().status == "ok"
            client.list_models()
        assert len(_open_sockets(own_server)) <= 1


def test_slow_end_of_body_after_done_does_not_hang(raw_server: Any) -> None:
    chunk = json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "text": "all"}]})
    events = sse(chunk, "[DONE]")
    head = (b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
            b"x-request-id: raw_1\r\n\r\n")
    client = raw_server([head, b"%x\r\n%s\r\n" % (len(events), events), 3.0, b"0\r\n\r\n"])
    stream = client.completion("m", "x", stream=True)
    started = time.monotonic()
    assert stream.read().text == "all"
    assert time.monotonic() - started < 3.0 and stream.status == "ok" and released(stream)  # not the 3 s pause


# ================================================================ shapes the test server cannot make

class RawServer:
    """Answers every connection on 127.0.0.1 with the same raw bytes, then closes it. ``response`` may
    be a list of byte strings and pauses (floats, in seconds) to send them with gaps."""

    def __init__(self, response: bytes | list[bytes | float]) -> None:
        self.response = [response] if isinstance(response, bytes) else response
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.requests: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                data = b""
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        break
                    data += part
                head, _, body = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(body) < length:
                    body += conn.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + body)
                try:
                    for part in self.response:
                        if isinstance(part, float):
                            time.sleep(part)
                        else:
                            conn.sendall(part)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


def http_response(body: bytes, content_type: str = "application/json", status: str = "200 OK",
                  headers: str = "") -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
            f"x-request-id: raw_1\r\n{headers}Connection: close\r\n\r\n").encode() + body


def sse(*datas: str) -> bytes:
    return b"".join(f"data: {d}\n\n".encode() for d in datas)


@pytest.fixture
def raw_server() -> Iterator[Any]:
    servers: list[RawServer] = []

    def start(response: bytes | list[bytes | float]) -> OpenAIClient:
        srv = RawServer(response)
        servers.append(srv)
        return OpenAIClient(api_key=TEST_KEY, base_url=srv.url, read_timeout=2, max_retries=0)

    yield start
    for srv in servers:
        srv.close()


def test_non_json_200_answer(raw_server: Any) -> None:
    client = raw_server(http_response(b"<html><body>Captive portal: please log in</body></html>", "text/html"))
    with pytest.raises(APIConnectionError, match=r"^the server's answer is not JSON: '<html><body>Captive"):
        client.list_models()


@pytest.mark.parametrize("content_type, body, expected", [
    ("text/html; charset=utf-8", b"<html><head><title>Hotel Wi-Fi login</title></head><body>...</body></html>",
     "Expected an event stream but the server sent text/html: HTML page: Hotel Wi-Fi login"),
    ("application/json", b'{"id": "x", "choices": [{"text": "whole answer"}]}',
     'Expected an event stream but the server sent application/json: {"id": "x", "choices": [{"text": "whole'),
])
def test_streamed_call_answered_without_an_event_stream(raw_server: Any, content_type: str, body: bytes,
                                                        expected: str) -> None:
    """A proxy or portal answering 200 with a page must not look like an empty, merely truncated stream."""
    client = raw_server(http_response(body, content_type))
    with pytest.raises(APIConnectionError) as info:
        client.completion("m", "x", stream=True)
    assert one_line(info.value).startswith(expected)


def test_event_stream_without_content_type_is_still_read(raw_server: Any) -> None:
    chunk = json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "text": "hi"}]})
    body = sse(chunk, "[DONE]")
    response = (f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body
    stream = raw_server(response).completion("m", "x", stream=True).read()
    assert (stream.text, stream.status) == ("hi", "ok")


@pytest.mark.parametrize("data", ["42", "null", '"text"', "[1, 2]", "true"])
def test_chunk_that_is_json_but_not_an_object(raw_server: Any, data: str) -> None:
    chunk = json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "text": "hi"}]})
    client = raw_server(http_response(sse(chunk, data, "[DONE]"), "text/event-stream"))
    stream = client.completion("m", "x", stream=True)
    with pytest.raises(StreamError, match="malformed chunk"):
        stream.read()
    assert stream.text == "hi" and stream.status == "error" and stream.request_id == "raw_1"


def test_null_error_field_in_a_chunk_is_not_an_error(raw_server: Any) -> None:
    chunk = json.dumps({"id": "c1", "model": "m", "error": None, "choices": [{"index": 0, "text": "ok"}]})
    client = raw_server(http_response(sse(chunk, "[DONE]"), "text/event-stream"))
    stream = client.completion("m", "x", stream=True).read()
    assert (stream.text, stream.status) == ("ok", "ok")


@pytest.mark.parametrize("payload", [
    'event: error\ndata: {"message": "quota exceeded"}\n\n',
    'data: {"object": "error", "message": "quota exceeded", "code": 429}\n\n',
    'data: {"error": "quota exceeded"}\n\n',
])
def test_error_event_shapes_mid_stream(raw_server: Any, payload: str) -> None:
    first = sse(json.dumps({"id": "c", "model": "m", "choices": [{"index": 0, "text": "so far"}]}))
    client = raw_server(http_response(first + payload.encode(), "text/event-stream"))
    stream = client.completion("m", "x", stream=True)
    with pytest.raises(StreamError, match="mid-stream: quota exceeded"):
        stream.read()
    assert stream.text == "so far" and stream.status == "error"


def test_stream_without_ids_or_usage(raw_server: Any) -> None:
    """llama.cpp-style: no usage, no created; a role-only first delta."""
    chunks = [json.dumps({"choices": [{"index": 0, "delta": {"role": "assistant"}}]}),
              json.dumps({"choices": [{"index": 0, "delta": {"content": "hé"}}]}),
              json.dumps({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), "[DONE]"]
    client = raw_server(http_response(sse(*chunks), "text/event-stream"))
    stream = client.chat("m", MESSAGES, stream=True).read()
    assert (stream.text, stream.finish_reason, stream.usage, stream.id, stream.created) == ("hé", "stop", None,
                                                                                           None, None)



def test_a_404_from_a_base_url_without_v1_says_so(server: FakeOpenAIServer) -> None:
    """Issue 13: a base URL missing /v1 answers 404 on every path; the one line names the likely fix."""
    root = server.url[: -len("/v1")]
    with OpenAIClient(api_key=TEST_KEY, base_url=root, max_retries=0) as client:
        with pytest.raises(NotFoundError) as info:
            client.chat("fake-chat", MESSAGES)
    assert "the base URL does not end in /v1" in str(info.value) and "\n" not in str(info.value)
