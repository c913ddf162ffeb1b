"""Tests of the fake OpenAI server itself: behaviour, every fault key, and an honesty check against the
official ``openai`` SDK and the reference OpenAPI schemas."""

from __future__ import annotations

import copy
import json
import re
import socket
import struct
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers.fake import TEST_KEY, FakeOpenAIServer, closed_port, unaccepting_address
from tests.support import checks
from tests.support.checks import SUBSET, checker, load_components, sse_data
from tests.support.keys import AUTH

CHAT = {"model": "fake-chat", "messages": [{"role": "system", "content": "be brief"},
                                           {"role": "user", "content": "one two three"}]}
COMPLETION = {"model": "fake-instruct", "prompt": "one two three"}

ROOT = Path(__file__).resolve().parents[2]  #: the repository: ``python -m tests.servers.fake`` runs from it


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def schema_check():
    """``check(name, obj)`` validates obj against components/schemas/<name> of the reference spec."""
    components = load_components(SUBSET)
    # The spec says streamed completions share the response's shape, but mid-stream chunks carry
    # "finish_reason": null (as the real API sends); derive a chunk schema that allows it.
    chunk = copy.deepcopy(components["schemas"]["CreateCompletionResponse"])
    reason = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
    chunk["properties"]["choices"]["items"]["properties"]["finish_reason"] = {"anyOf": [reason, {"type": "null"}]}
    components["schemas"]["DerivedCompletionStreamChunk"] = chunk
    return checker(components)


def stream(http: requests.Session, server: FakeOpenAIServer, path: str, body: dict,
           **kw: Any) -> tuple[requests.Response, bytes, list[str]]:
    r = http.post(server.url + path, json={**body, "stream": True}, stream=True, **kw)
    raw = b"".join(r.iter_content(chunk_size=None))
    return r, raw, sse_data(raw)


def chunks_of(events: list[str]) -> list[dict]:
    return [json.loads(e) for e in events if e != "[DONE]"]


def chat_text(events: list[str]) -> str:
    return "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks_of(events) if c["choices"])


def raw_http(server: FakeOpenAIServer, path: str, body: dict) -> tuple[bytes, list[bytes]]:
    """POST over a bare socket; return the head and the list of HTTP chunks of a chunked body."""
    return checks.raw_http(server.port, path, body, TEST_KEY)


# ---------------------------------------------------------------- auth, ids, models

def test_auth_missing_wrong_and_masked(server, schema_check):
    r = requests.get(server.url + "/models")
    assert r.status_code == 401 and "didn't provide an API key" in r.json()["error"]["message"]
    wrong = "sk-test-wrong-key-1234"
    r = requests.get(server.url + "/models", headers={"Authorization": f"Bearer {wrong}"})
    assert r.status_code == 401
    assert r.json() == {"error": {"message": "Incorrect API key provided: sk-te****.",
                                  "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    assert wrong not in r.text and "wrong" not in r.text
    schema_check("ErrorResponse", r.json())
    assert re.fullmatch(r"req_\d+", r.headers["x-request-id"])
    assert len(server.requests) == 2 and server.requests[1].headers["AUTHORIZATION"] == f"Bearer {wrong}"


def test_no_auth_mode_and_request_ids():
    with FakeOpenAIServer(api_key=None, models=("m1",)) as srv:
        ids = [requests.get(srv.url + "/models").headers["x-request-id"] for _ in range(3)]
        assert ids == ["req_1", "req_2", "req_3"]
        assert [m["id"] for m in requests.get(srv.url + "/models").json()["data"]] == ["m1"]


def test_models_list_and_retrieve(server, http, schema_check):
    r = http.get(server.url + "/models")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    schema_check("ListModelsResponse", r.json())
    assert [m["id"] for m in r.json()["data"]] == list(server.models)
    assert r.json()["data"][0] == {"id": "fake-chat", "object": "model", "created": 1700000000, "owned_by": "fake"}
    r = http.get(server.url + "/models/gpt-4o-mini")
    assert r.status_code == 200 and r.json()["id"] == "gpt-4o-mini"
    schema_check("Model", r.json())
    r = http.get(server.url + "/models/nope")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    schema_check("ErrorResponse", r.json())


def test_unknown_path_and_bad_json(server, http):
    r = http.post(server.url + "/embeddings", json={})
    assert r.status_code == 404 and "Invalid URL" in r.json()["error"]["message"]
    r = http.post(server.url + "/chat/completions", data=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "parse the JSON body" in r.json()["error"]["message"]


# ---------------------------------------------------------------- completions and chat

def test_completion_text_usage_and_options(server, http, schema_check):
    post = lambda **kw: http.post(server.url + "/completions", json={**COMPLETION, **kw}).json()  # noqa: E731
    r = post()
    schema_check("CreateCompletionResponse", r)
    assert r["object"] == "text_completion" and r["id"].startswith("cmpl-")
    assert r["choices"] == [{"text": "Echo: three two one", "index": 0, "logprobs": None, "finish_reason": "stop"}]
    assert r["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert post(max_tokens=2)["choices"][0] | {} == {"text": "Echo: three", "index": 0, "logprobs": None,
                                                     "finish_reason": "length"}
    assert post(max_tokens=0)["choices"][0]["text"] == ""
    assert post(prompt=" ".join(["w"] * 30))["choices"][0]["finish_reason"] == "length"  # default 16
    r = post(stop=["two", "zzz"])
    assert (r["choices"][0]["text"], r["choices"][0]["finish_reason"]) == ("Echo: three ", "stop")
    assert post(echo=True)["choices"][0]["text"] == "one two threeEcho: three two one"
    assert post(suffix=" END")["choices"][0]["text"] == "Echo: three two one END"
    texts = [c["text"] for c in post(n=3, temperature=0, seed=1)["choices"]]
    assert texts == ["Echo: three two one", "Echo2: three two one", "Echo3: three two one"]
    r = post(prompt=["a b", "c"])
    assert [c["text"] for c in r["choices"]] == ["Echo: b a", "Echo: c"] and r["usage"]["prompt_tokens"] == 3


def test_chat_answer_uses_last_user_message(server, http, schema_check):
    r = http.post(server.url + "/chat/completions", json=CHAT).json()
    schema_check("CreateChatCompletionResponse", r)
    assert r["object"] == "chat.completion" and r["system_fingerprint"] == "fp_fake"
    assert r["choices"][0] == {"index": 0, "message": {"role": "assistant", "content": "Echo: three two one",
                                                       "refusal": None}, "logprobs": None, "finish_reason": "stop"}
    assert r["usage"] == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    parts = {"model": "fake-chat", "messages": [{"role": "user", "content": [{"type": "text", "text": "x y"}]}],
             "max_completion_tokens": 2, "n": 2}
    r = http.post(server.url + "/chat/completions", json=parts).json()
    assert [(c["message"]["content"], c["finish_reason"]) for c in r["choices"]] == [
        ("Echo: y", "length"), ("Echo2: y", "length")]
    assert server.requests[-1].body == parts and server.requests[-1].path == "/v1/chat/completions"


@pytest.mark.parametrize("path,patch,param", [
    ("/completions", {"model": None}, "model"),
    ("/completions", {"prompt": None}, "prompt"),
    ("/completions", {"temperature": 2.5}, "temperature"),
    ("/completions", {"temperature": "hot"}, "temperature"),
    ("/completions", {"n": 0}, "n"),
    ("/completions", {"n": 129}, "n"),
    ("/completions", {"max_tokens": -1}, "max_tokens"),
    ("/completions", {"top_p": 1.5}, "top_p"),
    ("/completions", {"logprobs": 6}, "logprobs"),
    ("/completions", {"stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ("/completions", {"presence_penalty": -3}, "presence_penalty"),
    ("/completions", {"stream_options": {"include_usage": True}}, "stream_options"),
    ("/chat/completions", {"messages": []}, "messages"),
    ("/chat/completions", {"messages": None}, "messages"),
    ("/chat/completions", {"messages": [{"content": "x"}]}, "messages[0].role"),
    ("/chat/completions", {"frequency_penalty": 2.1}, "frequency_penalty"),
    ("/chat/completions", {"top_logprobs": 21}, "top_logprobs"),
    ("/chat/completions", {"max_completion_tokens": -5}, "max_completion_tokens"),
])
def test_validation_errors(server, http, schema_check, path, patch, param):
    body = {**(COMPLETION if path == "/completions" else CHAT), **patch}
    body = {k: v for k, v in body.items() if v is not None}
    r = http.post(server.url + path, json=body)
    assert r.status_code == 400, r.text
    assert r.json()["error"]["param"] == param and r.json()["error"]["type"] == "invalid_request_error"
    schema_check("ErrorResponse", r.json())


def test_unknown_model_is_404(server, http):
    r = http.post(server.url + "/chat/completions", json={**CHAT, "model": "gpt-9"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    assert "gpt-9" in r.json()["error"]["message"]


# ---------------------------------------------------------------- streaming

def test_stream_chat_shape_and_usage(server, http, schema_check):
    body = {**CHAT, "stream_options": {"include_usage": True}}
    r, raw, events = stream(http, server, "/chat/completions", body)
    assert r.headers["Content-Type"] == "text/event-stream"  # no charset, like Ollama and OpenAI
    assert r.headers["Transfer-Encoding"] == "chunked" and "Content-Length" not in r.headers
    assert raw.endswith(b"data: [DONE]\n\n") and b"\r" not in raw
    chunks = chunks_of(events)
    for c in chunks:
        schema_check("CreateChatCompletionStreamResponse", c)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert [c["choices"][0]["delta"]["content"] for c in chunks[1:5]] == ["Echo:", " three", " two", " one"]
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["choices"][0]["delta"] == {}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 9
    assert all(c["usage"] is None for c in chunks[:-1])
    _, _, plain = stream(http, server, "/chat/completions", CHAT)
    assert all("usage" not in c for c in chunks_of(plain)) and chat_text(plain) == "Echo: three two one"


def test_stream_completion_matches_non_stream(server, http, schema_check):
    body = {**COMPLETION, "max_tokens": 3, "n": 2, "stream_options": {"include_usage": True}}
    _, _, events = stream(http, server, "/completions", body)
    chunks = chunks_of(events)
    for c in chunks:
        schema_check("DerivedCompletionStreamChunk", c)
    texts = ["".join(ch["text"] for c in chunks for ch in c["choices"] if ch["index"] == i) for i in (0, 1)]
    whole = http.post(server.url + "/completions", json={k: v for k, v in body.items() if k != "stream_options"})
    assert texts == [c["text"] for c in whole.json()["choices"]] == ["Echo: three two", "Echo2: three two"]
    assert [ch["finish_reason"] for c in chunks[-3:-1] for ch in c["choices"]] == ["length", "length"]
    assert chunks[-1]["usage"] == whole.json()["usage"] and events[-1] == "[DONE]"


def test_keep_alive_reuses_one_connection(server):
    conn = HTTPConnection("127.0.0.1", server.port, timeout=5)
    headers = {**AUTH, "Content-Type": "application/json"}
    sockets = []
    for body in (CHAT, {**CHAT, "stream": True}, CHAT, {**COMPLETION, "stream": True}):
        path = "/v1/chat/completions" if "messages" in body else "/v1/completions"
        conn.request("POST", path, json.dumps(body), headers)
        resp = conn.getresponse()
        assert resp.status == 200 and resp.read() and not resp.will_close
        sockets.append(conn.sock)
    conn.request("GET", "/v1/models", headers=AUTH)
    assert conn.getresponse().read()
    assert conn.sock is sockets[0] and len(set(map(id, sockets))) == 1
    conn.close()


# ---------------------------------------------------------------- faults

@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422, 429, 500, 502, 503])
def test_status_faults_openai_style(server, http, schema_check, status):
    server.add_fault(status=status, message="boom")
    r = http.post(server.url + "/chat/completions", json=CHAT)
    assert r.status_code == status and r.json()["error"]["message"] == "boom"
    schema_check("ErrorResponse", r.json())
    assert http.post(server.url + "/chat/completions", json=CHAT).status_code == 200  # times=1 used up


@pytest.mark.parametrize("style,check", [
    ("int_code", lambda r: r.json()["error"]["code"] == 500),
    ("flat", lambda r: r.json()["object"] == "error" and r.json()["code"] == 500),
    ("detail", lambda r: r.json() == {"detail": "boom"}),
    ("string", lambda r: r.json() == "boom"),
    ("html", lambda r: r.headers["Content-Type"] == "text/html" and "<title>500 Internal Server Error" in r.text
     and "nginx" in r.text),
    ("empty", lambda r: r.content == b"" and r.headers["Content-Length"] == "0"),
])
def test_error_body_styles(server, http, style, check):
    server.add_fault(status=500, body_style=style, message="boom")
    assert check(http.get(server.url + "/models"))


def test_retry_headers_times_and_path_matching(server, http):
    server.add_fault(path="/chat", status=429, retry_after="2", retry_after_ms="100", should_retry="false",
                     times=2)
    assert http.get(server.url + "/models").status_code == 200  # path does not match
    for _ in range(2):
        r = http.post(server.url + "/chat/completions", json=CHAT)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit_exceeded"
        assert (r.headers["Retry-After"], r.headers["retry-after-ms"], r.headers["x-should-retry"]) == (
            "2", "100", "false")
    assert http.post(server.url + "/chat/completions", json=CHAT).status_code == 200
    assert [rec.fault is not None for rec in server.requests] == [False, True, True, False]


def test_add_fault_checks_keys_and_times(server):
    with pytest.raises(ValueError):
        server.add_fault(stauts=500)
    with pytest.raises(ValueError):
        server.add_fault(status=500, body_style="xml")
    with pytest.raises(ValueError):
        server.add_fault(status=500, times=0)
    server.add_fault(path="/models", status=500, times=None)  # forever, until reset
    assert [requests.get(server.url + "/models").status_code for _ in range(3)] == [500] * 3


def test_delay_before_headers(server, http):
    server.add_fault(delay=0.3)
    t0 = time.monotonic()
    assert http.get(server.url + "/models").status_code == 200 and time.monotonic() - t0 >= 0.3
    server.add_fault(delay=1)
    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(server.url + "/models", timeout=(2, 0.2))


@pytest.mark.parametrize("fault,raw_check", [
    ({"crlf": True}, lambda raw: raw.count(b"\r\n\r\n") == 7 and b"\n\n" not in raw.replace(b"\r\n", b"")),
    ({"cr": True}, lambda raw: b"\n" not in raw and raw.endswith(b"data: [DONE]\r\r")),
    ({"bom": True}, lambda raw: raw.startswith(b"\xef\xbb\xbfdata: {")),
    ({"comments": True}, lambda raw: raw.count(b": keep-alive\n\n") == 6),
    ({"no_done": True}, lambda raw: b"[DONE]" not in raw and raw.endswith(b"}\n\n")),
])
def test_stream_shape_faults(server, http, fault, raw_check):
    server.add_fault(**fault)
    _, raw, events = stream(http, server, "/chat/completions", CHAT)
    assert raw_check(raw), raw
    assert chat_text(events) == "Echo: three two one"


def test_empty_choices_first(server, http):
    server.add_fault(empty_choices_first=True)
    _, _, events = stream(http, server, "/chat/completions", CHAT)
    first = json.loads(events[0])
    assert first["choices"] == [] and "prompt_filter_results" in first
    assert chat_text(events) == "Echo: three two one"


def test_byte_by_byte_sends_one_http_chunk_per_byte(server):
    server.add_fault(byte_by_byte=True, bom=True)
    head, parts = raw_http(server, "/chat/completions", {**CHAT, "stream": True})
    assert b"Transfer-Encoding: chunked" in head and len(parts) > 300
    assert all(len(p) == 1 for p in parts)
    assert chat_text(sse_data(b"".join(parts))) == "Echo: three two one"


def test_every_event_is_its_own_http_chunk_by_default(server):
    server.add_fault(chunks=3000)  # GUIDE §14: real servers flush each event
    _, parts = raw_http(server, "/chat/completions", {**CHAT, "stream": True})
    assert len(parts) == 3000 + 3 and all(p.startswith(b"data: ") and p.endswith(b"\n\n") for p in parts)
    assert all(len(sse_data(p)) == 1 for p in parts)


def test_coalesce_packs_events_into_64k_http_chunks(server):
    server.add_fault(chunks=3000, coalesce=True)
    _, parts = raw_http(server, "/chat/completions", {**CHAT, "stream": True})
    whole = b"".join(parts)
    assert len(parts) <= len(whole) // (64 * 1024) + 1 and all(len(p) >= 64 * 1024 for p in parts[:-1])
    assert len(sse_data(whole)) == 3000 + 3
    server.add_fault(coalesce=True)  # short streams (<= 64 events) are never coalesced
    _, parts = raw_http(server, "/chat/completions", {**CHAT, "stream": True})
    assert len(parts) == 7
    with FakeOpenAIServer(coalesce=True) as packed:  # the server-wide setting, and a fault overriding it
        body = {**CHAT, "stream": True}
        packed.add_fault(chunks=3000)
        assert len(checks.raw_http(packed.port, "/chat/completions", body, TEST_KEY)[1]) < 20
        packed.add_fault(chunks=3000, coalesce=False)
        assert len(checks.raw_http(packed.port, "/chat/completions", body, TEST_KEY)[1]) == 3003


def test_chunk_delay_and_stall(server, http):
    server.add_fault(chunk_delay=0.05)
    r = http.post(server.url + "/chat/completions", json={**CHAT, "stream": True}, stream=True)
    stamps = [time.monotonic() for _ in r.iter_content(chunk_size=None)]
    assert len(stamps) >= 7 and stamps[-1] - stamps[0] >= 0.25
    server.add_fault(stall_after=2, stall=0.3)
    t0 = time.monotonic()
    _, _, events = stream(http, server, "/chat/completions", CHAT)
    assert time.monotonic() - t0 >= 0.3 and chat_text(events) == "Echo: three two one"
    server.add_fault(stall_after=2, stall=1)
    with pytest.raises(requests.exceptions.ConnectionError):  # urllib3 read timeout mid-body
        stream(http, server, "/chat/completions", CHAT, timeout=(2, 0.2))


def test_drop_after_cuts_the_chunked_body(server, http):
    server.add_fault(drop_after=3)
    r = http.post(server.url + "/chat/completions", json={**CHAT, "stream": True}, stream=True)
    got = b""
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        for chunk in r.iter_content(chunk_size=None):
            got += chunk
    assert len(sse_data(got)) == 3 and chat_text(sse_data(got)) == "Echo: three"


def test_malformed_and_error_events(server, http):
    server.add_fault(malformed_after=2)
    _, _, events = stream(http, server, "/chat/completions", CHAT)
    assert events[2] == "{not json" and events[-1] == "[DONE]"
    server.add_fault(error_after=2, message="llama died")
    _, raw, events = stream(http, server, "/completions", COMPLETION)
    assert len(events) == 3 and b"[DONE]" not in raw
    assert json.loads(events[-1]) == {"error": {"message": "llama died", "type": "server_error", "param": None,
                                                "code": None}}


def test_huge_responses(server, http):
    server.add_fault(huge=3_000_000)
    r = http.post(server.url + "/completions", json=COMPLETION)
    assert len(r.json()["choices"][0]["text"]) == 3_000_000 and int(r.headers["Content-Length"]) > 3_000_000
    server.add_fault(huge=5000)
    _, _, events = stream(http, server, "/completions", COMPLETION)
    assert len(events) == 5000 + 2


def test_chunks_mode_streams_every_chunk(server, http):
    # How fast the server sends them is measured, not tested: benchmarks/bench_stream.py ("drain").
    server.add_fault(chunks=20_000)
    _, raw, events = stream(http, server, "/chat/completions", CHAT)
    assert len(events) == 20_000 + 3  # role chunk, 20,000 content chunks, finish chunk, [DONE]
    assert json.loads(events[20_000])["choices"][0]["delta"]["content"] == " w19999"
    _, _, events = stream(http, server, "/completions", {**COMPLETION, "fake_chunks": 10})  # body option
    assert "".join(c["choices"][0]["text"] for c in chunks_of(events)) == " ".join(f"w{i}" for i in range(10))


def test_custom_words_keep_utf8_and_line_separators(server, http):
    words = ["héllo", " 日本", "\u2028", "\U0001F600"]
    server.add_fault(words=words, byte_by_byte=True)
    _, raw, events = stream(http, server, "/chat/completions", CHAT)
    assert "日本".encode() in raw and "\u2028".encode() in raw  # raw UTF-8, not \u-escaped
    assert chat_text(events) == "".join(words)


def test_reject_stream_options_until_retried_without(server, http):
    server.add_fault(reject_stream_options=True)
    _, _, events = stream(http, server, "/chat/completions", CHAT)  # no stream_options: fault not consumed
    assert chat_text(events) == "Echo: three two one" and len(server.faults) == 1
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    r = http.post(server.url + "/chat/completions", json=body)
    assert r.status_code == 400 and r.json() == {"error": {
        "message": "Unrecognized request argument supplied: stream_options", "type": "invalid_request_error",
        "param": "stream_options", "code": None}}
    assert server.faults == []


# ---------------------------------------------------------------- control API, CLI, connection helpers

def test_control_endpoints(server, http):
    assert requests.post(server.url.removesuffix("/v1") + "/_control/faults",
                         json=[{"status": 503}, {"status": 502, "body_style": "html"}]).json() == {"queued": 2}
    assert http.get(server.url + "/models").status_code == 503
    assert http.get(server.url + "/models").status_code == 502
    bad = requests.post(server.url.removesuffix("/v1") + "/_control/faults", json={"nope": 1})
    assert bad.status_code == 400
    records = requests.get(server.url.removesuffix("/v1") + "/_control/requests").json()
    assert [r["path"] for r in records] == ["/v1/models", "/v1/models"]
    assert records[0]["headers"]["authorization"] == "Bearer ***" and records[0]["fault"]["status"] == 503
    assert TEST_KEY not in json.dumps(records)
    requests.post(server.url.removesuffix("/v1") + "/_control/reset")
    assert server.requests == [] and server.faults == []


def test_cli_ready_line_and_quiet_disconnects():
    proc = subprocess.Popen([sys.executable, "-m", "tests.servers.fake", "--port", "0", "--api-key", "k"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        line = proc.stdout.readline()
        assert re.fullmatch(r"READY http://127\.0\.0\.1:\d+/v1\n", line)
        url = line.split()[1]
        assert requests.get(url + "/models", headers={"Authorization": "Bearer k"}).status_code == 200
        requests.post(url.removesuffix("/v1") + "/_control/faults", json={"chunk_delay": 0.05, "times": 2})
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        for linger in (0, 1):  # hang up mid-stream: with RST (reset) and with FIN (broken pipe)
            data = json.dumps({**CHAT, "stream": True}).encode()
            with socket.create_connection(("127.0.0.1", port)) as s:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer k\r\n"
                          b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
                assert s.recv(100).startswith(b"HTTP/1.1 200")
                if linger == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        time.sleep(0.4)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=5)
    assert err == ""  # no access log, no BrokenPipe traceback


def test_stop_wakes_a_delayed_request():
    srv = FakeOpenAIServer().start()
    srv.add_fault(delay=30)
    errors: list[BaseException] = []

    def call() -> None:
        try:
            requests.get(srv.url + "/models", headers=AUTH, timeout=60)
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
    t = threading.Thread(target=call)
    t.start()
    deadline = time.monotonic() + 20
    while not srv.requests and time.monotonic() < deadline:  # the request is in, waiting out its delay
        time.sleep(0.01)
    srv.stop()
    t.join(20)
    assert not t.is_alive()  # stop() ended the 30 s delay: the call returned before it was over


def test_connect_timeout_and_refused():
    host, port = unaccepting_address()
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectTimeout):
        requests.get(f"http://{host}:{port}/v1/models", timeout=(0.5, 5))
    assert time.monotonic() - t0 < 5  # the connect timeout, not the 5 s read timeout
    with pytest.raises(requests.exceptions.ConnectionError) as exc:
        requests.get(f"http://127.0.0.1:{closed_port()}/v1/models", timeout=2)
    assert not isinstance(exc.value, requests.exceptions.ConnectTimeout)


# ---------------------------------------------------------------- the official SDK

def test_official_sdk_and_reference_schemas(server, http, schema_check):
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=server.url, api_key=TEST_KEY, max_retries=0)
    assert [m.id for m in client.models.list()] == list(server.models)
    assert client.models.retrieve("fake-instruct").owned_by == "fake"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nope")
    c = client.completions.create(model="fake-instruct", prompt="one two three", max_tokens=3)
    assert (c.choices[0].text, c.choices[0].finish_reason, c.usage.total_tokens) == ("Echo: three two", "length", 6)
    chat = client.chat.completions.create(**CHAT)
    assert chat.choices[0].message.content == "Echo: three two one" and chat.usage.prompt_tokens == 5
    chunks = list(client.chat.completions.create(**CHAT, stream=True, stream_options={"include_usage": True}))
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices) == "Echo: three two one"
    assert chunks[-1].usage.completion_tokens == 4
    text = "".join(ch.choices[0].text for ch in client.completions.create(
        model="fake-instruct", prompt="a b", stream=True) if ch.choices)
    assert text == "Echo: b a"
    server.add_fault(status=429, retry_after="1")
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**CHAT)
    server.add_fault(error_after=2)
    with pytest.raises(openai.APIError):
        list(client.chat.completions.create(**CHAT, stream=True))
    # The raw JSON of what the server said to the SDK, checked against the reference schemas.
    raw = client.chat.completions.with_raw_response.create(**CHAT).http_response.json()
    schema_check("CreateChatCompletionResponse", raw)
    raw = client.completions.with_raw_response.create(model="fake-instruct", prompt="x").http_response.json()
    schema_check("CreateCompletionResponse", raw)
    schema_check("ListModelsResponse", client.models.with_raw_response.list().http_response.json())
    schema_check("Model", client.models.with_raw_response.retrieve("fake-chat").http_response.json())
    for path, body, name in (("/chat/completions", CHAT, "CreateChatCompletionStreamResponse"),
                             ("/completions", COMPLETION, "DerivedCompletionStreamChunk")):
        _, _, events = stream(http, server, path, {**body, "stream_options": {"include_usage": True}})
        for chunk in chunks_of(events):
            schema_check(name, chunk)
    agent = [r.headers["user-agent"] for r in server.requests if "OpenAI/Python" in r.headers.get("user-agent", "")]
    assert agent, "the SDK's requests were recorded"


# ---------------------------------------------------------------- strict structured output (fakeserver_strict)

STRICT_CASES = [  # (schema, the API's words): OpenAI's Structured Outputs guide, "Supported schemas"
    ({"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}}, "required": ["a"],
      "additionalProperties": False},
     "In context=(), 'required' is required to be supplied and to be an array including every key in properties. "
     "Missing 'b'."),
    ({"type": "object", "properties": {"o": {"type": "object", "properties": {}}}, "required": ["o"],
      "additionalProperties": False},
     "In context=('properties', 'o'), 'additionalProperties' is required to be supplied and to be false."),
    ({"type": "object", "properties": {"v": {"oneOf": [{"type": "string"}]}}, "required": ["v"],
      "additionalProperties": False}, "In context=('properties', 'v'), 'oneOf' is not permitted."),
    ({"type": "array"}, "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"array\"'."),
]


@pytest.mark.parametrize("schema, words", STRICT_CASES)
def test_a_strict_schema_outside_the_subset_is_a_400(server, http, schema_check, schema, words):
    fmt = {"type": "json_schema", "json_schema": {"name": "pick", "schema": schema, "strict": True}}
    r = http.post(server.url + "/chat/completions", json={**CHAT, "response_format": fmt})
    assert r.status_code == 400 and r.json()["error"]["param"] == "response_format"
    assert r.json()["error"]["message"] == f"Invalid schema for response_format 'pick': {words}"
    schema_check("ErrorResponse", r.json())
    loose = {"type": "json_schema", "json_schema": {"name": "pick", "schema": schema}}  # without strict: taken
    assert http.post(server.url + "/chat/completions", json={**CHAT, "response_format": loose}).status_code == 200
