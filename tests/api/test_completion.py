"""Result objects (``jupyter_openai.api.completion``): :class:`Completion` over plain dicts, and :class:`Stream`
read from the real test server — deltas, per-choice texts, usage, metadata, timings, status, every
stream shape the server can produce (CRLF, lone CR, byte-by-byte, BOM, comments, Azure's
``choices: []`` first chunk), and the lifetime rules (``with``, ``break``, ``close()``).
"""

from __future__ import annotations

import gc
import time
from typing import Any

import pytest

from jupyter_openai.api.completion import CHAT_KIND, COMPLETIONS_KIND, Completion, Delta
from jupyter_openai.client import OpenAIClient
from jupyter_openai.transport.stream import Stream
from tests.servers.fake import TEST_KEY, FakeOpenAIServer

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "one two three"}]
CHAT_TEXT = "Echo: three two one"
CREATED = 1_700_000_000


# ---------------------------------------------------------------- Completion (plain dicts)

def test_completion_from_completions_body() -> None:
    raw = {"id": "cmpl-1", "model": "m", "created": 5, "usage": {"total_tokens": 3},
           "choices": [{"index": 1, "text": "second", "finish_reason": "length"},
                       {"index": 0, "text": "first", "finish_reason": "stop"}]}
    c = Completion(raw, COMPLETIONS_KIND, "req_9", 0.25)
    assert (c.id, c.model, c.created, c.usage, c.request_id, c.latency) == ("cmpl-1", "m", 5, {"total_tokens": 3},
                                                                           "req_9", 0.25)
    assert c.texts == ["first", "second"] and c.text == "first"
    assert c.finish_reasons == ["stop", "length"] and c.finish_reason == "stop"
    assert c.choices == sorted(raw["choices"], key=lambda choice: choice["index"]) and c.raw is raw


def test_completion_from_chat_body() -> None:
    raw = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"},
                       {"index": 1, "message": {"role": "assistant", "content": None, "tool_calls": []},
                        "finish_reason": "tool_calls"}]}
    c = Completion(raw, CHAT_KIND)
    assert c.texts == ["hi", ""] and c.finish_reasons == ["stop", "tool_calls"]


@pytest.mark.parametrize("raw", [{}, {"choices": []}, {"choices": None, "usage": {}}, {"choices": [{}]}])
def test_completion_tolerates_missing_fields(raw: dict) -> None:
    for kind in (CHAT_KIND, COMPLETIONS_KIND):
        c = Completion(raw, kind)
        assert c.text == "" and c.usage is None and c.id is None and c.created is None and c.model is None
        assert c.finish_reason is None


def test_completion_repr_is_short() -> None:
    c = Completion({"model": "m", "choices": [{"text": "x" * 500, "finish_reason": "length"}]}, COMPLETIONS_KIND)
    assert repr(c) == f"Completion(model='m', finish_reason='length', text={'x' * 60!r})"


def test_completion_from_server(client: Any, server: FakeOpenAIServer) -> None:
    c = client.chat("fake-chat", MESSAGES)
    assert isinstance(c, Completion)
    assert c.text == CHAT_TEXT and c.finish_reason == "stop"
    assert c.usage == {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9}
    assert c.model == "fake-chat" and c.created == CREATED and c.id.startswith("chatcmpl-")
    assert c.request_id == server.requests[-1].request_id
    assert c.latency is not None and 0 < c.latency < 5


# ---------------------------------------------------------------- Stream over the wire

@pytest.mark.parametrize("kind", [CHAT_KIND, COMPLETIONS_KIND])
def test_stream_deltas_text_and_metadata(client: Any, server: FakeOpenAIServer, kind: str) -> None:
    if kind == CHAT_KIND:
        stream = client.chat("fake-chat", MESSAGES, stream=True)
    else:
        stream = client.completion("davinci-002", "one two three", stream=True)
    assert isinstance(stream, Stream) and stream.status == "streaming" and stream.text == ""
    deltas = list(stream)
    assert all(isinstance(d, Delta) for d in deltas)
    assert [d.text for d in deltas] == ["Echo:", " three", " two", " one", ""]
    assert deltas[-1] == Delta(0, "", "stop")
    assert stream.status == "ok" and not stream.truncated and stream.error is None
    assert stream.text == CHAT_TEXT and stream.texts == [CHAT_TEXT]
    assert stream.finish_reason == "stop" and stream.finish_reasons == {0: "stop"}
    assert stream.usage is not None and stream.usage["completion_tokens"] == 4
    assert stream.model == ("fake-chat" if kind == CHAT_KIND else "davinci-002")
    assert stream.created == CREATED and stream.id and stream.id.endswith(server.requests[-1].request_id[4:])
    assert stream.request_id == server.requests[-1].request_id
    assert 0 < stream.time_to_first_token <= stream.latency < 5
    assert repr(stream) == f"Stream(model={stream.model!r}, status='ok', chars={len(CHAT_TEXT)})"
    assert stream._response.raw.closed or stream._response.raw._fp is None


@pytest.mark.parametrize("kind", [CHAT_KIND, COMPLETIONS_KIND])
def test_stream_n_choices_are_kept_apart(client: Any, kind: str) -> None:
    if kind == CHAT_KIND:
        stream = client.chat("fake-chat", MESSAGES, stream=True, n=3)
    else:
        stream = client.completion("davinci-002", "one two three", stream=True, n=3)
    stream.read()
    assert stream.texts == [CHAT_TEXT, "Echo2: three two one", "Echo3: three two one"]
    assert stream.text == CHAT_TEXT
    assert stream.finish_reasons == {0: "stop", 1: "stop", 2: "stop"}
    assert stream.usage["completion_tokens"] == 12


def test_stream_length_finish_reason(client: Any) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True, max_completion_tokens=2).read()
    assert stream.text == "Echo: three" and stream.finish_reason == "length"


SHAPES = [{}, {"crlf": True}, {"cr": True}, {"byte_by_byte": True}, {"bom": True}, {"comments": True},
          {"empty_choices_first": True}, {"bom": True, "crlf": True, "byte_by_byte": True, "comments": True},
          {"cr": True, "empty_choices_first": True, "byte_by_byte": True}]


@pytest.mark.parametrize("kind", [CHAT_KIND, COMPLETIONS_KIND])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "+".join(s) or "plain")
def test_every_stream_shape_gives_the_same_result(client: Any, server: FakeOpenAIServer, kind: str,
                                                  shape: dict) -> None:
    server.add_fault(**shape)
    if kind == CHAT_KIND:
        stream = client.chat("fake-chat", MESSAGES, stream=True)
    else:
        stream = client.completion("davinci-002", "one two three", stream=True)
    stream.read()
    assert server.requests[-1].fault == shape
    assert (stream.status, stream.text, stream.finish_reason) == ("ok", CHAT_TEXT, "stop")
    assert stream.model == ("fake-chat" if kind == CHAT_KIND else "davinci-002")  # not Azure's empty ""
    assert stream.id and stream.created == CREATED and stream.usage["total_tokens"] > 0


def test_multibyte_text_split_byte_by_byte(client: Any, server: FakeOpenAIServer) -> None:
    words = ["héllo", " wörld", " 你好", " 🎉", " a\u2028b"]
    server.add_fault(words=words, byte_by_byte=True)
    stream = client.chat("fake-chat", MESSAGES, stream=True).read()
    assert stream.text == "".join(words) and stream.status == "ok"


def test_many_chunks(client: Any, server: FakeOpenAIServer) -> None:
    server.add_fault(chunks=5000)
    stream = client.completion("davinci-002", "x", stream=True).read()
    assert stream.text.split() == [f"w{i}" for i in range(5000)]
    assert stream.status == "ok"


# ---------------------------------------------------------------- lifetime

def test_read_is_idempotent_and_iterating_again_yields_nothing(client: Any) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True)
    assert stream.read() is stream
    assert stream.read().text == CHAT_TEXT
    assert list(stream) == [] and stream.status == "ok"


def test_iteration_can_resume_after_break(client: Any) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True)
    for delta in stream:  # noqa: B007 - the loop is left at once on purpose
        break
    assert delta.text == "Echo:" and stream.status == "streaming"
    assert stream.read().text == CHAT_TEXT and stream.status == "ok"


def test_break_inside_with_closes(client: Any, server: FakeOpenAIServer) -> None:
    server.add_fault(chunks=200, chunk_delay=0.01)
    with client.completion("davinci-002", "x", stream=True) as stream:
        for delta in stream:
            if delta.text == " w2":
                break
    assert stream.status == "interrupted" and stream.text == "w0 w1 w2"
    assert stream._response.raw.closed
    assert stream.latency is not None


def test_exception_inside_with_closes(client: Any, server: FakeOpenAIServer) -> None:
    server.add_fault(chunks=200, chunk_delay=0.01)
    with pytest.raises(RuntimeError, match="caller"):
        with client.completion("davinci-002", "x", stream=True) as stream:
            for _ in stream:
                raise RuntimeError("caller's own bug")
    assert stream.status == "interrupted" and stream.text == "w0" and stream._response.raw.closed


def test_with_block_reads_normally(client: Any) -> None:
    with client.chat("fake-chat", MESSAGES, stream=True) as stream:
        text = "".join(d.text for d in stream)
    assert text == CHAT_TEXT and stream.status == "ok"


def test_close_before_reading(client: Any) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True)
    stream.close()
    stream.close()  # idempotent
    assert stream.status == "interrupted" and stream._response.raw.closed
    assert list(stream) == [] and stream.status == "interrupted" and stream.text == ""


def test_close_in_the_middle_then_iterating_ends_quietly(client: Any) -> None:
    stream = client.chat("fake-chat", MESSAGES, stream=True)
    iterator = iter(stream)
    assert next(iterator).text == "Echo:"
    stream.close()
    assert list(iterator) == [] and list(stream) == []
    assert stream.status == "interrupted" and stream.text == "Echo:" and stream.error is None


def test_with_without_iterating(client: Any) -> None:
    with client.chat("fake-chat", MESSAGES, stream=True) as stream:
        pass
    assert stream.status == "interrupted" and stream._response.raw.closed


def test_abandoned_stream_releases_its_connection(client: Any, server: FakeOpenAIServer) -> None:
    """A stream dropped after ``break`` without ``with`` is closed when garbage-collected."""
    server.add_fault(chunks=400, chunk_delay=0.01)
    stream = client.completion("davinci-002", "x", stream=True)
    for _ in stream:
        break
    raw = stream._response.raw
    assert not raw.closed
    del stream, _
    gc.collect()
    deadline = time.monotonic() + 2
    while not raw.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert raw.closed


# ---------------------------------------------------------------- connections after abnormal ends

@pytest.fixture
def own_server() -> Any:
    """A private server, so that its open connections can be counted."""
    with FakeOpenAIServer() as srv:
        yield srv


def open_connections(srv: FakeOpenAIServer, want: int, timeout: float = 30.0) -> int:
    """The server's count of open connections, once it reaches ``want`` (or after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        with srv._lock:
            count = len(srv._connections)
        if count == want or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


def test_truncated_stream_does_not_leave_its_connection_in_the_pool(own_server: FakeOpenAIServer) -> None:
    """Servers that end a stream without [DONE] tend to close the connection a moment later; reusing it
    from the pool would make the next call fail. Control: a plain call keeps its connection."""
    from jupyter_openai.client import OpenAIClient

    with OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, max_retries=0) as client:
        client.list_models()
        assert open_connections(own_server, 1) == 1  # an idle keep-alive connection in the pool
        own_server.add_fault(no_done=True)
        stream = client.chat("fake-chat", MESSAGES, stream=True).read()
        assert stream.status == "truncated" and stream.text == CHAT_TEXT
        assert open_connections(own_server, 0) == 0  # dropped, not pooled
        assert client.chat("fake-chat", MESSAGES).text == CHAT_TEXT


# ---------------------------------------------------------------- keep-alive after [DONE]
def _accepted(server: FakeOpenAIServer) -> set[int]:
    """The connections the server has open now (by identity)."""
    with server._lock:
        return {id(sock) for sock in server._connections}


def test_a_finished_stream_gives_its_connection_back(own_server: FakeOpenAIServer) -> None:
    messages = [{"role": "user", "content": "a b c"}]
    server, client = own_server, OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, read_timeout=5)
    first = client.chat("fake-chat", messages, stream=True).read()
    open_after_first = _accepted(server)
    second = client.chat("fake-chat", messages, stream=True).read()
    assert first.status == second.status == "ok"
    assert len(open_after_first) == 1 and _accepted(server) == open_after_first  # one connection served both


def test_a_reused_connection_gets_the_full_read_timeout_again(own_server: FakeOpenAIServer) -> None:
    messages = [{"role": "user", "content": "a b c"}]
    server, client = own_server, OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, read_timeout=5)
    client.chat("fake-chat", messages, stream=True).read()
    server.add_fault(path="/chat", stall_after=2, stall=1.5)  # longer than the 1 s drain wait, within read_timeout
    stream = client.chat("fake-chat", messages, stream=True).read()
    assert stream.status == "ok" and stream.text == "Echo: c b a"


def test_an_interrupted_or_truncated_stream_does_not_go_back_to_the_pool(own_server: FakeOpenAIServer) -> None:
    messages = [{"role": "user", "content": "a b c"}]
    server, client = own_server, OpenAIClient(api_key=TEST_KEY, base_url=own_server.url, read_timeout=5)
    server.add_fault(path="/chat", no_done=True)
    assert client.chat("fake-chat", messages, stream=True).read().status == "truncated"
    with client.chat("fake-chat", messages, stream=True) as stream:
        next(iter(stream))
    deadline = time.monotonic() + 2
    while _accepted(server) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _accepted(server) == set()
