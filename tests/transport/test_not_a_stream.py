"""A 200 answer to a streamed call that is no event stream (issue 12, family 11), over real sockets.

``text/plain``, ``application/x-ndjson`` (what Ollama's own API streams) or no content type at all
must not read as an empty, merely truncated stream: one :class:`APIConnectionError` line says what
came (content type, first bytes, redacted) and the likely fix. An event stream sent with another
content type, or none, is still read.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.calls.request import CallRequest
from jupyter_openai.calls.run import run_call
from jupyter_openai.calls.summary import summarize
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import APIConnectionError
from jupyter_openai.session.log import SessionLog, session_log
from tests.servers.body import BodyServer
from tests.servers.fake import TEST_KEY

HINT = "(is the base URL the server's OpenAI-compatible /v1 endpoint?)"
OLLAMA_LINES = [{"model": "llama3", "created_at": "2024-01-01T00:00:00Z",
                 "message": {"role": "assistant", "content": word}, "done": False} for word in ("Hi", " there")]
NDJSON = "".join(json.dumps(line) + "\n" for line in OLLAMA_LINES).encode()
SSE = b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}}]}\n\ndata: [DONE]\n\n'


@pytest.fixture
def plain_client(body_server: BodyServer) -> Iterator[OpenAIClient]:
    with OpenAIClient(api_key=TEST_KEY, base_url=body_server.url, read_timeout=5, max_retries=0) as made:
        yield made


@pytest.mark.parametrize("content_type, body, expected", [
    ("text/plain; charset=utf-8", b"Hello from a plain server\n", "text/plain: Hello from a plain server"),
    ("application/x-ndjson", NDJSON, 'application/x-ndjson: {"model": "llama3", "created_at": "2024-01-01'),
    (None, b"Welcome to nginx\n", "no content type: Welcome to nginx"),
    (None, b"", "no content type: (empty body)"),
    ("text/plain", b"\n\n  \n", "text/plain: (empty body)"),
    ("application/octet-stream", b"\x00\x01binary", "application/octet-stream: \ufffd\ufffdbinary"),
])
def test_200_that_is_no_event_stream_says_what_came(body_server: BodyServer, plain_client: OpenAIClient,
                                                    content_type: str | None, body: bytes, expected: str) -> None:
    body_server.answer(body, content_type)
    for call in (lambda: plain_client.chat("m", [{"role": "user", "content": "hi"}], stream=True),
                 lambda: plain_client.completion("m", "hi", stream=True)):
        with pytest.raises(APIConnectionError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"Expected an event stream but the server sent {expected}"), message
        assert message.endswith(HINT) and "\n" not in message


def test_the_call_is_an_error_not_a_truncated_stream(body_server: BodyServer, plain_client: OpenAIClient) -> None:
    body_server.answer(NDJSON, "application/x-ndjson")
    log = SessionLog()
    outcome = run_call(plain_client, CallRequest("hi", "m", "chat"), log=log)
    assert outcome.status == "error" and isinstance(outcome.error, APIConnectionError)
    summary = summarize(outcome)
    errors = summary.errors  # an error (red), not a note
    assert len(errors) == 1
    assert errors[0].startswith("Expected an event stream but the server sent application/x-ndjson")
    assert "without [DONE]" not in " ".join(errors + summary.notes) and log[-1]["status"] == "error"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/octet-stream"])
@pytest.mark.parametrize("body", [SSE, b"\xef\xbb\xbf" + SSE, b": keep-alive\n\n" + SSE, b"\r\n" + SSE],
                         ids=["data", "bom", "comment", "blank-line"])
def test_event_stream_with_another_content_type_is_read(body_server: BodyServer, plain_client: OpenAIClient,
                                                        content_type: str | None, body: bytes) -> None:
    body_server.answer(body, content_type)
    stream = plain_client.chat("m", [{"role": "user", "content": "hi"}], stream=True).read()
    assert (stream.text, stream.status) == ("hi", "ok")


class TrickleServer:
    """Sends a chunked 200 answer piece by piece: ``parts`` are bytes or pauses (seconds)."""

    def __init__(self, content_type: str, parts: list[bytes | float]) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        self.head = (f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n"
                     "Connection: close\r\n\r\n").encode()
        self.parts = parts
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, _, body = data.partition(b"\r\n\r\n")
            length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                           if line.lower().startswith(b"content-length:")), 0)
            while len(body) < length:  # read it all: closing on unread bytes resets the connection
                body += conn.recv(65536)
            try:
                conn.sendall(self.head)
                for part in self.parts:
                    if isinstance(part, float):
                        time.sleep(part)
                    else:
                        conn.sendall(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                conn.sendall(b"0\r\n\r\n")
            except OSError:
                pass

    def close(self) -> None:
        self.sock.close()


def test_a_slow_ndjson_stream_is_reported_at_its_first_line() -> None:
    """Ollama's own API streams NDJSON for as long as the model writes: the error must not wait for it."""
    server = TrickleServer("application/x-ndjson", [NDJSON.split(b"\n")[0] + b"\n", 3.0, b"{}\n"])
    try:
        with OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=10, max_retries=0) as slow:
            started = time.monotonic()
            with pytest.raises(APIConnectionError, match="sent application/x-ndjson: {\"model\": \"llama3\""):
                slow.chat("m", [{"role": "user", "content": "hi"}], stream=True)
            assert time.monotonic() - started < 3.0  # the server pauses 3 s after its first line
    finally:
        server.close()


def test_a_trickled_event_stream_without_its_type_streams() -> None:
    server = TrickleServer("text/plain", [b"data: {\"choices\": [{\"delta\": {\"content\": \"a\"}}]}\n\n", 0.3,
                                          b"data: {\"choices\": [{\"delta\": {\"content\": \"b\"}}]}\n\n",
                                          b"data: [DONE]\n\n"])
    try:
        with OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=5, max_retries=0) as slow:
            stream = slow.chat("m", [{"role": "user", "content": "hi"}], stream=True)
            assert next(iter(stream)).text == "a" and stream.status == "streaming"  # before the pause ends
            assert stream.read().text == "ab" and stream.status == "ok"
    finally:
        server.close()


def test_through_the_magic_one_line(make_shell: Any, body_server: BodyServer) -> None:
    config = Config()
    config.CompleteMagics.model = "llama3"
    shell = make_shell(config, {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": body_server.url})
    body_server.answer(b"Ollama is running", "text/plain; charset=utf-8")
    with capture_output() as shown:
        shell.run_cell_magic("complete", "-o answer", "hi")
    assert shown.stderr.strip().splitlines() == [
        f"Expected an event stream but the server sent text/plain: Ollama is running {HINT}"]
    assert shell.user_ns["answer"] == "" and session_log[-1]["status"] == "error"
