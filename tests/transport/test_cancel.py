"""Stopping a call from another thread with a CancelToken, over real sockets."""

from __future__ import annotations

import time

import pytest

from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import Cancelled
from jupyter_openai.transport.cancel import CancelToken
from tests.servers.fake import FakeOpenAIServer
from tests.support.clock import cancel_when, read_cancelling_at_stall

CHAT = [{"role": "user", "content": "one two three four five six seven eight"}]


def test_a_cancelled_token_sends_nothing(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        client.chat("fake-chat", CHAT, cancel=token)
    assert server.requests == []


def test_cancel_ends_a_stalled_read_at_once(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", stall_after=3, stall=30)
    token = CancelToken()
    stream = client.chat("fake-chat", CHAT, stream=True, cancel=token)
    deltas, took = read_cancelling_at_stall(stream, token, " eight")
    assert took < 30  # not the 30 s stall
    assert stream.status == "interrupted"
    assert stream.error is None
    assert [d.text for d in deltas] == ["Echo:", " eight"]  # what arrived before the stall is kept
    assert stream.text == "Echo: eight"
    assert stream._response.raw.closed


def test_cancel_ends_a_wait_between_retries(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", status=503, retry_after="30", times=3)
    token = CancelToken()
    fired = cancel_when(token, lambda: server.requests)  # the 503 is on its way: the client then waits
    started = time.monotonic()
    with pytest.raises(Cancelled):
        client.chat("fake-chat", CHAT, cancel=token)
    fired.join()
    assert time.monotonic() - started < 30  # not the 30 s wait
    assert len(server.requests) == 1  # no retry after the cancel


def test_cancel_before_the_headers_stops_when_they_arrive(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", delay=0.6)
    token = CancelToken()
    fired = cancel_when(token, lambda: server.requests)  # the request is in, its headers 0.6 s away
    with pytest.raises(Cancelled):
        client.chat("fake-chat", CHAT, stream=True, cancel=token)
    fired.join()
    assert len(server.requests) == 1


def test_an_uncancelled_token_changes_nothing(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    token = CancelToken()
    stream = client.chat("fake-chat", CHAT, stream=True, cancel=token).read()
    assert stream.status == "ok" and stream.text.startswith("Echo:")
    assert client.completion("davinci-002", "a b", cancel=token).text == "Echo: b a"
    assert repr(token) == "CancelToken(cancelled=False)"
