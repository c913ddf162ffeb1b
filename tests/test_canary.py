"""The key never leaks: a canary key is planted and every string the client can produce is searched.

For every fault case (status errors in every body style, Retry-After beyond the cap, timeouts, refused
connections, stalls, drops, malformed and error chunks, EOF without ``[DONE]``, rejected
``stream_options``) the canary must not appear in: ``repr``/``str`` of the client, its settings, the
key attribute, the headers dict, results (``Completion``, ``Stream``, ``Delta``), every exception,
its ``args`` and attributes and every exception in its ``__cause__``/``__context__`` chain, the
traceback as ``traceback.format_exception`` prints it, the same with every frame's local variables
(``capture_locals=True``), and IPython's verbose traceback (``%xmode Verbose``).

Servers that echo things back are covered too: the test server repeating the key in its error
messages (in every body style and mid-stream), and :class:`EchoServer`, which copies the
``Authorization`` header into every field of error bodies, ``x-request-id``, HTML pages, non-JSON
answers and malformed chunks, answers of odd shapes (the key in a field of the wrong type, placed
across the point where a snippet is cut) and 200 answers to a streamed call that are no event
stream (text, NDJSON, no content type). Also run with a key that does not look like ``sk-…`` (a
local server's token), which only the explicit redaction of the configured key can catch.
"""

from __future__ import annotations

import json
import threading
import traceback
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from jupyter_openai.api.completion import Completion
from jupyter_openai.client import USER_AGENT, OpenAIClient
from jupyter_openai.errors import APIStatusError, AuthenticationError, OpenAIError
from jupyter_openai.transport.stream import Stream
from tests.servers.fake import TEST_KEY, FakeOpenAIServer, closed_port, unaccepting_address
from tests.support.clock import Recorder
from tests.support.keys import CANARY_KEY, fragments, json_texts

MESSAGES = [{"role": "user", "content": "one two three"}]
#: A key without the ``sk-`` shape: only redaction of the configured key itself can hide it.
PLAIN_CANARY = "LocalToken" + "Q7x" * 10


def verbose_ipython_traceback(exc: BaseException) -> str:
    ultratb = pytest.importorskip("IPython.core.ultratb")
    import IPython

    if IPython.version_info >= (9,):
        formatter = ultratb.VerboseTB(theme_name="nocolor")
    else:
        formatter = ultratb.VerboseTB(color_scheme="NoColor")
    return formatter.text(type(exc), exc, exc.__traceback__)


def exception_strings(exc: BaseException, *, with_locals: bool = True) -> list[str]:
    texts = ["".join(traceback.format_exception(exc)), verbose_ipython_traceback(exc)]
    if with_locals:
        texts.append("".join(traceback.TracebackException.from_exception(exc, capture_locals=True).format()))
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        texts += [str(current), repr(current), repr(current.args), repr(vars(current))]
        texts += [str(getattr(current, name, "")) for name in ("message", "url", "request_id", "type", "code",
                                                               "param")]
        texts += json_texts(current.args, vars(current))
        # the chain as tracebacks show it: a context suppressed by ``raise ... from None`` is never displayed
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return texts


def object_strings(obj: Any) -> list[str]:
    if obj is None:
        return []
    texts = [repr(obj), str(obj), f"{obj}"]
    if isinstance(obj, OpenAIClient):
        s = obj.settings
        values = {name: getattr(s, name) for name in s.FIELDS}
        texts += [repr(s), str(s), repr(s.api_key), str(s.api_key), f"{s.api_key}", "%s" % s.api_key,  # noqa: UP031 - %-formatting is a route too
                  repr(values), repr(vars(obj)), repr(s.headers(USER_AGENT)), repr(s.wire_headers(USER_AGENT))]
        texts += json_texts(s, values, s.api_key, s.headers(USER_AGENT), vars(obj))
    if isinstance(obj, Stream):
        texts += [repr(obj.error), str(obj.error), str(obj.request_id), repr(list(obj)), obj.status]
    return texts


def assert_no_canary(key: str, *, error: BaseException | None = None, with_locals: bool = True,
                     objects: tuple = ()) -> None:
    texts = exception_strings(error, with_locals=with_locals) if error is not None else []
    for obj in objects:
        texts += object_strings(obj)
    if isinstance(error, OpenAIError):
        assert "\n" not in str(error)
    for text in texts:
        for piece in fragments(key):
            assert piece not in text, f"key fragment {piece!r} leaked in: {text[:300]!r}"


def capture(call: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    """Run ``call`` (reading a stream to the end); return (result, error)."""
    result = None
    try:
        result = call()
        if isinstance(result, Completion) and result.error is not None:  # an answer of an unexpected shape
            return result, result.error
        if isinstance(result, Stream):
            stream = result
            try:
                stream.read()
            except BaseException as exc:  # noqa: BLE001 - the error is the object under test
                return stream, exc
        return result, None
    except BaseException as exc:  # noqa: BLE001
        return result, exc


# ================================================================ the key everywhere, in every fault case

@pytest.fixture
def canary_client(canary_server: FakeOpenAIServer, delays: Recorder) -> Iterator[OpenAIClient]:
    with OpenAIClient(api_key=CANARY_KEY, base_url=canary_server.url, read_timeout=0.15, connect_timeout=0.5,
                      sleep=delays) as client:
        yield client


def test_client_settings_and_headers_never_show_the_key(canary_client: OpenAIClient) -> None:
    assert canary_client.settings.api_key.reveal() == CANARY_KEY  # the key is there...
    assert canary_client.settings.headers(USER_AGENT)["Authorization"].reveal() == f"Bearer {CANARY_KEY}"
    assert_no_canary(CANARY_KEY, objects=(canary_client,))  # ...and shows nowhere


def test_successful_calls_never_show_the_key(canary_server: FakeOpenAIServer, delays: Recorder) -> None:
    # Its own client: the fixture's 0.15 s read timeout is for the fault cases (a busy machine can take
    # longer than that to answer, and these calls must succeed).
    canary_client = OpenAIClient(api_key=CANARY_KEY, base_url=canary_server.url, read_timeout=10, sleep=delays)
    results = [canary_client.list_models(), canary_client.retrieve_model("fake-chat"),
               canary_client.chat("fake-chat", MESSAGES), canary_client.completion("davinci-002", "a b")]
    stream = canary_client.chat("fake-chat", MESSAGES, stream=True)
    deltas = list(stream)
    assert stream.text == "Echo: three two one"
    assert canary_server.requests[-1].headers["authorization"] == f"Bearer {CANARY_KEY}"
    assert_no_canary(CANARY_KEY, objects=(canary_client, stream, *deltas, *results))
    sent = stream._response.request  # what requests keeps of the request: the header shows masked
    for text in (repr(sent.headers), repr(vars(sent)), repr(dict(sent.headers))):
        assert CANARY_KEY not in text and "C4N4RYC4N4RY" not in text
    canary_client.close()


STATUS_FAULTS = [  # every status, and every body style (on a 4xx and a 5xx)
    *({"status": status, "should_retry": "false"} for status in (401, 403, 404, 409, 422, 429, 503)),
    *({"status": status, "body_style": style, "should_retry": "false"} for status in (400, 502)
      for style in ("openai", "int_code", "flat", "detail", "string", "html", "empty")),
]
OTHER_FAULTS = [
    {"status": 429, "retry_after": "120"},
    {"status": 503, "times": None},
    {"delay": 1, "times": None},
    {"stall_after": 2, "stall": 0.5},
    {"drop_after": 2},
    {"malformed_after": 2},
    {"error_after": 2},
    {"no_done": True},
    {"empty_choices_first": True},
    {"reject_stream_options": True},
    {"huge": 20_000},
    {"bom": True, "crlf": True, "byte_by_byte": True, "comments": True},
]


def _calls(client: OpenAIClient) -> dict[str, Callable[[], Any]]:
    return {
        "models": client.list_models,
        "chat": lambda: client.chat("fake-chat", MESSAGES),
        "chat-stream": lambda: client.chat("fake-chat", MESSAGES, stream=True),
        "completion-stream": lambda: client.completion("davinci-002", "one two", stream=True),
    }


@pytest.mark.parametrize("fault", STATUS_FAULTS + OTHER_FAULTS,
                         ids=lambda f: "+".join(f"{k}={v}" for k, v in f.items()))
def test_every_fault_case(canary_client: OpenAIClient, canary_server: FakeOpenAIServer, fault: dict) -> None:
    outcomes = []
    for name, call in _calls(canary_client).items():
        canary_server.reset()
        canary_server.add_fault(**fault)
        result, error = capture(call)
        outcomes.append((name, result, error))
        assert_no_canary(CANARY_KEY, error=error, objects=(canary_client, result))
    if "status" in fault:  # the control: these faults really did produce errors
        assert all(isinstance(error, APIStatusError) for _, _, error in outcomes)


@pytest.mark.parametrize("base", ["refused", "connect-timeout"])
def test_connection_failures(base: str, delays: Recorder) -> None:
    if base == "refused":
        url = f"http://127.0.0.1:{closed_port()}/v1"
    else:
        host, port = unaccepting_address()
        url = f"http://{host}:{port}/v1"
    client = OpenAIClient(api_key=CANARY_KEY, base_url=url, connect_timeout=0.15, max_retries=0, sleep=delays)
    for call in _calls(client).values():
        result, error = capture(call)
        assert isinstance(error, OpenAIError)
        assert_no_canary(CANARY_KEY, error=error, objects=(client, result))


def test_interrupted_stream(canary_client: OpenAIClient, canary_server: FakeOpenAIServer) -> None:
    canary_server.add_fault(chunks=100, chunk_delay=0.01)
    with canary_client.completion("davinci-002", "x", stream=True) as stream:
        for delta in stream:
            if delta.text == " w2":
                break
    assert stream.status == "interrupted"
    assert_no_canary(CANARY_KEY, objects=(canary_client, stream, delta))


def test_canary_as_a_wrong_key(server: FakeOpenAIServer, delays: Recorder) -> None:
    """The canary sent to a server that expects another key: the 401 must not repeat it."""
    client = OpenAIClient(api_key=CANARY_KEY, base_url=server.url, sleep=delays)
    for call in _calls(client).values():
        result, error = capture(call)
        assert isinstance(error, AuthenticationError)
        assert "Incorrect API key provided" in str(error)
        assert_no_canary(CANARY_KEY, error=error, objects=(client, result))


def test_wrong_key_against_the_canary_server(canary_server: FakeOpenAIServer, delays: Recorder) -> None:
    """A wrong key against a server whose real key is the canary: neither shows."""
    wrong = "sk-wrong-" + "W" * 30
    client = OpenAIClient(api_key=wrong, base_url=canary_server.url, sleep=delays)
    for call in _calls(client).values():
        result, error = capture(call)
        assert isinstance(error, AuthenticationError) and error.status == 401
        assert_no_canary(CANARY_KEY, error=error, objects=(client, result))
        assert_no_canary(wrong, error=error, objects=(client, result))


@pytest.mark.parametrize("fault", [
    {"status": 400, "body_style": "openai"}, {"status": 401, "body_style": "detail"},
    {"status": 500, "body_style": "flat", "should_retry": "false"}, {"status": 422, "body_style": "string"},
    {"status": 403, "body_style": "int_code"}, {"status": 429, "retry_after": "999"},
    {"error_after": 2},
], ids=lambda f: "+".join(f"{k}={v}" for k, v in f.items()))
def test_server_echoing_the_key_in_its_messages(canary_client: OpenAIClient, canary_server: FakeOpenAIServer,
                                                fault: dict) -> None:
    for name, call in _calls(canary_client).items():
        if "status" not in fault and "stream" not in name:
            continue  # a mid-stream fault
        canary_server.reset()
        canary_server.add_fault(message=f"Incorrect API key provided: {CANARY_KEY} (Bearer {CANARY_KEY})", **fault)
        result, error = capture(call)
        assert isinstance(error, OpenAIError), name
        assert "sk-***" in str(error)  # the echo arrived, redacted
        # locals of the reading frames hold the raw bytes the server sent: only displayed strings count here
        assert_no_canary(CANARY_KEY, error=error, with_locals=False, objects=(canary_client, result))


# ================================================================ a server that echoes the key everywhere

class _EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        self._answer()

    def do_POST(self) -> None:  # noqa: N802
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._streamed = bool(json.loads(raw or b"{}").get("stream"))
        self._answer()

    def _send(self, status: int, ctype: str | None, body: bytes, extra: dict[str, str] | None = None) -> None:
        auth = self.headers.get("Authorization", "")
        self.send_response(status)
        if ctype is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-request-id", f"req {auth}")
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        auth = self.headers.get("Authorization", "")
        key = auth.removeprefix("Bearer ")
        mode = self.path.split("/")[1]
        if mode == "json-error":
            body = {"error": {"message": f"bad key {key} / {auth}", "type": key, "param": key, "code": key}}
            return self._send(400, "application/json", json.dumps(body).encode())
        if mode == "json-any":  # the key inside list- and object-valued fields (issue 12)
            body = {"error": {"message": [f"bad {key}"], "type": {"t": [key]}, "param": [key, 1],
                              "code": {"auth": auth, "n": 401}}}
            return self._send(400, "application/json", json.dumps(body).encode())
        if mode == "flat-any":
            return self._send(422, "application/json", json.dumps({"detail": [{"loc": [key], "msg": auth}],
                                                                    "param": {"k": [key]}}).encode())
        if mode == "detail":
            return self._send(401, "application/json", json.dumps({"detail": f"Invalid API key {key}"}).encode())
        if mode == "html":
            page = f"<html><head><title>Denied {key}</title></head><body><p>{auth}</p></body></html>"
            return self._send(502, "text/html", page.encode(), {"x-should-retry": "false"})
        if mode == "html-no-title":
            page = f"<html><body><h1>Proxy says</h1><pre>{auth}</pre></body></html>"
            return self._send(403, "text/html", page.encode())
        if mode == "text":
            return self._send(500, "text/plain", f"upstream rejected {auth}".encode(), {"x-should-retry": "false"})
        if mode == "retry-after":
            body = {"error": {"message": f"slow down {key}", "type": "requests"}}
            return self._send(429, "application/json", json.dumps(body).encode(), {"Retry-After": "900"})
        if mode == "not-json":
            return self._send(200, "text/html", f"<html>portal for {auth}</html>".encode())
        if mode in NOT_EVENT_STREAMS:  # a 200 that is no event stream, the key across the snippet's cut
            ctype, line = NOT_EVENT_STREAMS[mode]
            return self._send(200, ctype, (line.format(pad="x" * 100, key=key, auth=auth) * 2).encode())
        if mode == "odd-shape" and self.command == "GET":
            return self._send(200, "application/json", json.dumps({"data": {"id": key, "owned_by": auth}}).encode())
        if mode == "odd-shape" and not getattr(self, "_streamed", False):
            body = {"id": "c", "choices": [{"index": 0, "message": {"content": {"token": key}}}], "usage": auth}
            return self._send(200, "application/json", json.dumps(body).encode())
        chunk = json.dumps({"id": "c", "model": "m", "choices": [{"index": 0, "text": "ok",
                                                                   "delta": {"content": "ok"}}]})
        if mode == "malformed":
            events = f"data: {chunk}\n\ndata: {{broken {auth}\n\n"
        elif mode == "error-chunk":
            events = f"data: {chunk}\n\ndata: {json.dumps({'error': {'message': f'key {key} revoked'}})}\n\n"
        elif mode == "error-chunk-any":
            error = {"error": {"message": [key], "param": [key], "code": {"k": key}}}
            events = f"data: {chunk}\n\ndata: {json.dumps(error)}\n\n"
        elif mode == "error-event":
            events = f"data: {chunk}\n\nevent: error\ndata: {json.dumps({'message': auth})}\n\n"
        elif mode == "odd-shape":  # the key where a 80-character snippet of the chunk is cut
            odd = {"choices": [{"index": 0, "delta": {"content": [key], "text": [key]}, "text": [key]}]}
            events = f"data: {chunk}\n\ndata: {json.dumps(odd)}\n\n"
        else:
            return self._send(404, "application/json", b'{"detail": "Not Found"}')
        return self._send(200, "text/event-stream", events.encode())


NOT_EVENT_STREAMS = {  # mode: content type, one line of the body
    "plain-200": ("text/plain", "{pad} upstream says {auth}\n"),
    "ndjson-200": ("application/x-ndjson", '{{"pad": "{pad}", "message": {{"content": "{key}"}}, "done": false}}\n'),
    "untyped-200": (None, "{pad} denied for {key}\n"),
}
ECHO_MODES = ["json-error", "json-any", "flat-any", "detail", "html", "html-no-title", "text", "retry-after",
              "not-json", "malformed", "error-chunk", "error-chunk-any", "error-event", "odd-shape", *NOT_EVENT_STREAMS]


@pytest.fixture(scope="module")
def echo_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _EchoHandler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize("key", [CANARY_KEY, PLAIN_CANARY], ids=["sk-canary", "plain-token"])
@pytest.mark.parametrize("mode", ECHO_MODES)
def test_echo_server(echo_server: str, delays: Recorder, mode: str, key: str) -> None:
    client = OpenAIClient(api_key=key, base_url=f"{echo_server}/{mode}/v1", read_timeout=2, sleep=delays)
    for name, call in _calls(client).items():
        result, error = capture(call)
        assert isinstance(error, OpenAIError), (name, result)
        assert_no_canary(key, error=error, with_locals=False, objects=(client, result))
        if isinstance(result, Stream):
            assert result.text == "ok" and result.status == "error"
    assert delays == []  # nothing here is worth a retry (Retry-After 900 is beyond the cap)


def test_echo_server_control(echo_server: str) -> None:
    """Control: the echo server really does send the key back (so the test above can fail)."""
    import requests

    answer = requests.post(f"{echo_server}/json-error/v1/chat/completions", json={},
                           headers={"Authorization": f"Bearer {CANARY_KEY}"}, timeout=5)
    assert CANARY_KEY in answer.text and CANARY_KEY in answer.headers["x-request-id"]


def test_key_is_still_sent_correctly(server: FakeOpenAIServer) -> None:
    """Masking never alters what goes on the wire."""
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url) as client:
        client.chat("fake-chat", MESSAGES, stream=True).read()
    assert server.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert server.requests[-1].raw_body.find(TEST_KEY.encode()) == -1


# ================================================================ the session log (through the call pipeline)

@pytest.mark.parametrize("mode", ["json-error", "json-any", "html", "retry-after", "malformed", "error-chunk",
                                  "error-chunk-any", "not-json", "odd-shape", *NOT_EVENT_STREAMS])
@pytest.mark.parametrize("stream", [True, False])
def test_session_log_never_holds_the_key(echo_server: str, delays: Recorder, mode: str, stream: bool) -> None:
    from jupyter_openai.calls.request import CallRequest
    from jupyter_openai.calls.run import run_call
    from jupyter_openai.session.log import SessionLog

    log = SessionLog()
    for key in (CANARY_KEY, PLAIN_CANARY):
        client = OpenAIClient(api_key=key, base_url=f"{echo_server}/{mode}/v1", read_timeout=2, sleep=delays)
        outcome = run_call(client, CallRequest("hi", "fake-chat", "chat", stream=stream), log=log)
        assert outcome.status == "error" and outcome.error is not None
        texts = [log.to_jsonl(), log.to_csv(), repr(log), repr(outcome), str(outcome.error),
                 *json_texts(list(log), outcome.record)]
        for text in texts:
            for piece in fragments(key):
                assert piece not in text, f"key fragment {piece!r} leaked in the log: {text[:300]!r}"
    assert len(log) == 2


# ================================================================ snippets: redacted before they are cut

@pytest.mark.parametrize("key", [CANARY_KEY, PLAIN_CANARY], ids=["sk-canary", "plain-token"])
@pytest.mark.parametrize("case", ["malformed-chunk", "odd-chunk", "not-json", "not-a-stream"])
def test_a_key_across_a_snippet_cut_never_shows(body_server: Any, key: str, case: str) -> None:
    """Every error quoting what a server sent cuts it short: a key straddling the cut must be masked whole."""
    client = OpenAIClient(api_key=key, base_url=body_server.url, read_timeout=2, max_retries=0)
    for pad in range(0, 200, 7):  # the key starts before, at and after every cut (80, 120, 160 characters)
        if case == "malformed-chunk":
            body_server.answer(f"data: {{{'x' * pad}{key}\n\n".encode(), "text/event-stream")
        elif case == "odd-chunk":
            odd = json.dumps({"choices": [{"index": 0, "delta": {"content": ["x" * pad + key]}}]})
            body_server.answer(f"data: {odd}\n\n".encode(), "text/event-stream")
        elif case == "not-json":
            body_server.answer(f"{'x' * pad}{key}".encode(), "application/json")
        else:
            body_server.answer(f"{'x' * pad}{key}".encode(), "text/plain")
        for call in (lambda: client.chat("m", MESSAGES, stream=case != "not-json"), client.list_models):
            result, error = capture(call)
            assert isinstance(error, OpenAIError), (case, pad)
            assert_no_canary(key, error=error, with_locals=False, objects=(client, result))
            if case != "not-json":
                break
