"""jupyter_openai.transport.chunked: a chunked HTTP body read from the socket file, exactly as urllib3 would read it.

Unit tests drive :class:`ChunkedReader` with scripted reads (any chunking of any body, any split of the
wire bytes, every error); the rest go through ``OpenAIClient`` over real sockets: chunk extensions and
trailers, events split over chunks, gzip and Content-Length bodies (read the ordinary way), and the
connection going back to the pool only when the body ended cleanly.
"""

from __future__ import annotations

import gzip
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from urllib3.exceptions import InvalidChunkLength, ProtocolError, ReadTimeoutError

from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import APIConnectionError, APITimeoutError
from jupyter_openai.transport.chunked import MAX_LINE, ChunkedReader

KEY = "sk-test-chunked-not-a-key"


# ================================================================ unit: scripted reads

class FakeFile:
    """``read1`` returns the scripted pieces in turn (an exception in the script is raised), then b""."""

    def __init__(self, pieces: list[Any]) -> None:
        self.pieces = list(pieces)
        self.reads = 0

    def read1(self, size: int) -> bytes:
        self.reads += 1
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if isinstance(piece, BaseException):
            raise piece
        assert len(piece) <= size
        return piece


class FakeRaw:
    _pool = None
    length_remaining = None

    def tell(self) -> int:
        return 0

    def __init__(self) -> None:
        self.closed = self.released = False

    def close(self) -> None:
        self.closed = True

    def release_conn(self) -> None:
        self.released = True


class FakeOriginal:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


def reader_for(*pieces: Any) -> tuple[ChunkedReader, FakeRaw, FakeOriginal]:
    raw, original = FakeRaw(), FakeOriginal()
    return ChunkedReader(raw, original, FakeFile(list(pieces))), raw, original


def wire(bodies: list[bytes], extensions: bool = False, trailers: bytes = b"", upper: bool = False) -> bytes:
    out = b""
    for i, body in enumerate(bodies):
        size = b"%X" % len(body) if upper else b"%x" % len(body)
        out += size + (b";ext=%d" % i if extensions else b"") + b"\r\n" + body + b"\r\n"
    return out + b"0\r\n" + trailers + b"\r\n"


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(c % (len(data) + 1) for c in cuts), len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]


bodies_st = st.lists(st.one_of(st.binary(min_size=1, max_size=40),
                               st.sampled_from([b"\r\n", b"0\r\n\r\n", b"data: x\n\n", b"\r", b"\n", b";"])),
                     max_size=12)


@settings(max_examples=300, deadline=None)
@given(bodies=bodies_st, cuts=st.lists(st.integers(0, 10_000), max_size=20), extensions=st.booleans(),
       trailers=st.sampled_from([b"", b"X-Trailer: 1\r\n", b"A: 1\r\nB: 2\r\n"]), upper=st.booleans())
def test_any_chunking_read_in_any_pieces_gives_the_body(bodies: list[bytes], cuts: list[int], extensions: bool,
                                                        trailers: bytes, upper: bool) -> None:
    reader, raw, original = reader_for(*split(wire(bodies, extensions, trailers, upper), cuts))
    got = list(reader)
    assert b"".join(got) == b"".join(bodies)
    assert all(got)  # never an empty piece
    assert reader.done and reader.pooled and original.closed and raw.released and not raw.closed


def test_every_chunk_that_has_arrived_comes_in_one_piece() -> None:
    data = wire([b"data: a\n\n", b"data: b\n\n", b"data: c\n\n"])
    reader, _, _ = reader_for(data[:30], data[30:])
    assert list(reader) == [b"data: a\n\ndata: b\n\n", b"data: c\n\n"]


def test_a_chunk_that_is_the_whole_read_is_not_copied() -> None:
    reader, _, _ = reader_for(b"5\r\n", b"hello", b"\r\n0\r\n\r\n")
    assert list(reader) == [b"hello"]


def test_eof_between_chunks_is_a_body_cut_short() -> None:
    reader, raw, original = reader_for(b"1\r\na\r\n")
    with pytest.raises(ProtocolError, match="Response ended prematurely"):
        list(reader)
    assert raw.closed and not raw.released and reader.done and not reader.pooled


def test_eof_inside_a_chunk_is_an_incomplete_read() -> None:
    reader, raw, _ = reader_for(b"a\r\nabc")
    got = []
    with pytest.raises(ProtocolError, match=r"Connection broken: IncompleteRead\(7 bytes"):
        for piece in reader:
            got.append(piece)
    assert got == [b"abc"] and raw.closed


def test_eof_after_the_last_chunk_is_the_end_even_without_its_crlf() -> None:
    """urllib3 allows it too ("some sites may not end with CRLF")."""
    reader, raw, _ = reader_for(b"1\r\na\r\n0\r\n")
    assert list(reader) == [b"a"] and reader.pooled and raw.released


@pytest.mark.parametrize("line", [b"zz", b"-1", b"", b" "])
def test_invalid_chunk_size(line: bytes) -> None:
    reader, raw, _ = reader_for(b"1\r\na\r\n" + line + b"\r\nxx")
    got = []
    with pytest.raises(InvalidChunkLength):
        for piece in reader:
            got.append(piece)
    assert got == [b"a"] and raw.closed


@pytest.mark.parametrize("terminated", [True, False])
def test_size_line_too_long(terminated: bool) -> None:
    line = b"1" * 100 + b";" + b"x" * MAX_LINE + (b"\r\n" if terminated else b"")
    reader, raw, _ = reader_for(*split(line, [30_000, 60_000]))
    with pytest.raises(ProtocolError, match="exceeded maximum allowed length"):
        list(reader)
    assert raw.closed


@pytest.mark.parametrize("error, expected", [
    (TimeoutError("timed out"), ReadTimeoutError),
    (ConnectionResetError(104, "Connection reset by peer"), ProtocolError),
])
def test_read_errors_are_urllib3_errors_and_close_the_connection(error: BaseException, expected: type) -> None:
    reader, raw, _ = reader_for(b"1\r\na\r\n", error)
    got = []
    with pytest.raises(expected) as info:
        for piece in reader:
            got.append(piece)
    assert got == [b"a"] and raw.closed and info.value.__cause__ is error


def test_ctrl_c_and_an_abandoned_reader_close_the_connection() -> None:
    reader, raw, _ = reader_for(b"1\r\na\r\n", KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        list(reader)
    assert raw.closed
    reader, raw, _ = reader_for(b"1\r\na\r\n", b"1\r\nb\r\n")
    pieces = iter(reader)
    assert next(pieces) == b"a"
    pieces.close()  # type: ignore[attr-defined]
    assert raw.closed and not raw.released


@pytest.mark.parametrize("rest, reusable", [
    ([b"0\r\n\r\n"], True),
    ([b"0\r", b"\n", b"X: y\r\n\r\n"], True),
    ([b"3\r\nabc\r\n0\r\n\r\n"], False),  # more data after the end the caller expected
    ([], False),  # EOF
    ([b"0\r\n"], False),  # EOF in the trailers: not a clean end for a connection to reuse
])
def test_drain_reads_the_end_of_the_body(rest: list[bytes], reusable: bool) -> None:
    reader, raw, _ = reader_for(b"4\r\ndone\r\n", *rest)
    pieces = iter(reader)
    assert next(pieces) == b"done"
    assert reader.drain(1024) is reusable
    assert reader.done and reader.pooled is reusable and raw.released is reusable and raw.closed is not reusable


def test_drain_stops_at_its_limit() -> None:
    reader, raw, _ = reader_for(b"1\r\na\r\n", b"ff\r\n" + b"x" * 255 + b"\r\n0\r\n\r\n")
    next(iter(reader))
    assert reader.drain(100) is False and raw.closed


def test_drain_after_the_end_was_already_read() -> None:
    reader, raw, _ = reader_for(b"4\r\ndone\r\n0\r\n\r\n")
    pieces = iter(reader)
    assert next(pieces) == b"done"
    assert reader.drain(1024) is True and raw.released  # the end was in the same read: nothing to wait for
    assert list(pieces) == [] and reader.drain(1024) is True


# ================================================================ through the client, over real sockets

class KeepAliveServer:
    """Answers every request with the next scripted response (bytes, or a list of bytes and pauses in
    seconds), keeping the connection open unless the script says ``"close"``. Counts connections."""

    def __init__(self, responses: list[Any]) -> None:
        self.responses = list(responses)
        self.connections = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/v1"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while self.responses:
                while b"\r\n\r\n" not in data:
                    part = conn.recv(65536)
                    if not part:
                        return
                    data += part
                head, _, data = data.partition(b"\r\n\r\n")
                length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                while len(data) < length:
                    data += conn.recv(65536)
                data = data[length:]
                script = self.responses.pop(0)
                for part in script if isinstance(script, list) else [script]:
                    if part == "close":
                        return
                    if isinstance(part, float):
                        time.sleep(part)
                    else:
                        conn.sendall(part)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def keepalive() -> Iterator[Any]:
    servers: list[KeepAliveServer] = []

    def start(*responses: Any) -> tuple[OpenAIClient, KeepAliveServer]:
        srv = KeepAliveServer(list(responses))
        servers.append(srv)
        return OpenAIClient(api_key=KEY, base_url=srv.url, read_timeout=2, max_retries=0), srv

    yield start
    for srv in servers:
        srv.close()


HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nx-request-id: raw_1\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"


def chunk(text: str) -> str:
    return json.dumps({"id": "c1", "model": "m", "choices": [{"index": 0, "text": text}]})


def sse_body(*texts: str, done: bool = True) -> bytes:
    return b"".join(f"data: {chunk(t)}\n\n".encode() for t in texts) + (b"data: [DONE]\n\n" if done else b"")


def pieces_of(body: bytes, sizes: list[int]) -> list[bytes]:
    out, pos = [], 0
    for size in sizes:
        out.append(body[pos:pos + size])
        pos += size
    return [p for p in out + [body[pos:]] if p]


def test_events_across_chunks_with_extensions_and_trailers_reuse_the_connection(keepalive: Any) -> None:
    body = sse_body("héllo", " wörld", " 😀")
    bodies = pieces_of(body, [7, 1, 60, 3])  # events and a UTF-8 character cut across HTTP chunks
    answer = CHUNKED + wire(bodies, extensions=True, trailers=b"X-Checksum: 1\r\n")
    client, srv = keepalive(answer, [answer[:50], 0.05, answer[50:]])
    for _ in range(2):
        stream = client.completion("m", "x", stream=True)
        assert stream.read().text == "héllo wörld 😀" and stream.status == "ok"
        assert stream._reader is not None
    assert srv.connections == 1  # the second call reused the first one's connection
    client.close()


def test_responses_stream_ending_at_eof_of_the_body_pools_the_connection(keepalive: Any) -> None:
    events = [("response.output_text.delta", {"type": "response.output_text.delta", "delta": "hi"}),
              ("response.completed", {"type": "response.completed",
                                      "response": {"id": "r1", "model": "m", "status": "completed",
                                                   "usage": {"input_tokens": 1, "output_tokens": 1}}})]
    bodies = [f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events]
    client, srv = keepalive(CHUNKED + wire(bodies), CHUNKED + wire(bodies))
    for _ in range(2):
        stream = client.responses("m", "x", stream=True).read()
        assert (stream.text, stream.status) == ("hi", "ok")
    assert srv.connections == 1
    client.close()


def test_data_after_done_means_a_new_connection_next_time(keepalive: Any) -> None:
    answer = CHUNKED + wire([sse_body("a"), b"data: late\n\n"])
    cut = answer.index(b"\r\n", answer.index(b"[DONE]")) + 2  # the late chunk comes in a later read
    client, srv = keepalive([answer[:cut], 0.05, answer[cut:]], [answer[:cut], 0.05, answer[cut:]])
    for _ in range(2):
        assert client.completion("m", "x", stream=True).read().text == "a"
    assert srv.connections == 2
    client.close()


def test_gzip_encoded_stream_is_read_through_urllib3s_decoder(keepalive: Any) -> None:
    packed = gzip.compress(sse_body("zip", "ped"))
    answer = HEAD + b"Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n" + wire(pieces_of(packed, [10, 9]))
    client, _ = keepalive(answer)
    stream = client.completion("m", "x", stream=True)
    assert stream.read().text == "zipped" and stream.status == "ok" and stream._reader is None
    client.close()


def test_content_length_stream_is_read_the_ordinary_way(keepalive: Any) -> None:
    body = sse_body("plain", " body")
    client, _ = keepalive(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
    stream = client.completion("m", "x", stream=True)
    assert stream.read().text == "plain body" and stream._reader is None
    client.close()


def test_drop_inside_a_chunk_keeps_the_partial_text(keepalive: Any) -> None:
    body = sse_body("kept", " lost")
    client, _ = keepalive([CHUNKED + b"%x\r\n" % len(body) + body[:len(body) - 30], "close"])
    stream = client.completion("m", "x", stream=True)
    with pytest.raises(APIConnectionError, match=r"^The stream was cut off: connection dropped before the answer"):
        stream.read()
    assert (stream.text, stream.status) == ("kept", "error")
    client.close()


def test_invalid_chunk_size_keeps_the_partial_text(keepalive: Any) -> None:
    client, _ = keepalive([CHUNKED + wire([sse_body("kept", done=False)])[:-5] + b"nonsense\r\n\r\n", "close"])
    stream = client.completion("m", "x", stream=True)
    with pytest.raises(APIConnectionError, match=r"^The stream was cut off: "):
        stream.read()
    assert (stream.text, stream.status) == ("kept", "error")
    client.close()


def test_stall_inside_a_chunk_is_a_read_timeout(keepalive: Any) -> None:
    body = sse_body("kept", " late")
    cut = body.index(b"\n\n") + 10
    client, _ = keepalive([CHUNKED + b"%x\r\n" % len(body) + body[:cut], 3.0, body[cut:] + b"\r\n0\r\n\r\n"])
    stream = client.completion("m", "x", stream=True)
    with pytest.raises(APITimeoutError, match=r"^The stream stalled: no data for 2 s$"):
        stream.read()
    assert (stream.text, stream.status) == ("kept", "error")
    client.close()
