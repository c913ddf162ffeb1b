"""Tests of ``jupyter_openai.calls.run``: the endpoint rule, update coalescing, and one call from request to log.

``run_call`` runs against the project's test server over real HTTP, with a private
:class:`SessionLog` so the kernel-wide log is left alone.
"""

from __future__ import annotations

import threading
import time

import pytest

from jupyter_openai.calls import run as call
from jupyter_openai.calls.request import CallRequest, choose_endpoint
from jupyter_openai.calls.run import Coalescer, Origin, Progress, run_call
from jupyter_openai.errors import AuthenticationError, ConfigurationError
from jupyter_openai.session.log import SessionLog, session_log
from jupyter_openai.transport.cancel import CancelToken
from tests.servers.fake import FakeOpenAIServer
from tests.support.clock import cancel_after

PROMPT = "one two three four five six"
ANSWER = "Echo: six five four three two one"
SLOW_WORDS = [f" w{i}" for i in range(200)]  # with chunk_delay=0.02: about 4 s of stream


# -- the auto endpoint rule --------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-3.5-turbo-instruct", "completions"),
        ("davinci-002", "completions"),
        ("babbage-002", "completions"),
        ("text-davinci-003", "completions"),
        ("code-cushman-001", "completions"),
        ("curie", "completions"),
        ("ada", "completions"),
        ("gpt-4o-mini", "chat"),
        ("gpt-5.4-mini", "chat"),
        ("SmolLM2-135M-Instruct", "chat"),  # GUIDE 10: -Instruct on Hugging Face means a chat model
        ("Qwen2.5-7B-Instruct", "chat"),
        ("fake-instruct", "chat"),
        ("fake-chat", "chat"),
        ("llama3", "chat"),
        ("adapter-model", "chat"),  # starts with "ada" but is not the legacy model
        ("", "chat"),
    ],
)
def test_auto_endpoint_rule(model: str, expected: str) -> None:
    assert choose_endpoint(model) == expected
    assert choose_endpoint(model, "auto") == expected


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_explicit_endpoint_wins_over_the_rule(endpoint: str) -> None:
    assert choose_endpoint("gpt-3.5-turbo-instruct", endpoint) == endpoint
    assert choose_endpoint("gpt-4o", endpoint) == endpoint


def test_unknown_endpoint_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="unknown endpoint 'embeddings'"):
        choose_endpoint("gpt-4o", "embeddings")


def test_chat_messages_with_and_without_system() -> None:
    assert CallRequest("hi", "m").messages() == [{"role": "user", "content": "hi"}]
    assert CallRequest("hi", "m", system="be brief").messages() == [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


# -- coalescing --------------------------------------------------------------------------
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_coalescer_renders_at_most_once_per_interval_and_always_at_the_end() -> None:
    clock, rendered = FakeClock(), []
    coalescer = Coalescer(rendered.append, rate=25, clock=clock)  # one render per 40 ms
    for at, text in [(0.0, "a"), (0.010, "ab"), (0.039, "abc"), (0.040, "abcd"), (0.050, "abcde"), (0.085, "abcdef")]:
        clock.now = 100.0 + at
        coalescer.offer(lambda text=text: [text])
    assert rendered == [["a"], ["abcd"], ["abcdef"]]
    coalescer.offer(lambda: ["abcdefg"])  # same instant: held back
    coalescer.finish(["abcdefgh"])
    assert rendered[-1] == ["abcdefgh"]
    assert coalescer.count == len(rendered) == 4


def test_coalescer_bound_does_not_depend_on_the_token_rate() -> None:
    clock, rendered = FakeClock(), []
    coalescer = Coalescer(rendered.append, rate=25, clock=clock)
    for i in range(100_000):  # 100,000 tokens in 2 s
        clock.now = 100.0 + i * 0.00002
        coalescer.offer(lambda: ["x"])
    assert 50 <= coalescer.count <= 2 * 25 + 1


def test_coalescer_does_not_build_texts_it_will_not_render() -> None:
    clock, built = FakeClock(), []
    coalescer = Coalescer(lambda texts: None, rate=25, clock=clock)

    def texts_now() -> list[str]:
        built.append(1)
        return ["x"]

    for _ in range(1000):
        coalescer.offer(texts_now)
    assert len(built) == 1


# -- run_call against the test server ----------------------------------------------------
@pytest.fixture
def private_log() -> SessionLog:
    return SessionLog()


def test_run_call_streams_and_logs(client, server: FakeOpenAIServer, private_log: SessionLog) -> None:
    seen: list[list[str]] = []
    before = len(session_log)
    outcome = run_call(client, CallRequest(PROMPT, "fake-chat", params={"max_tokens": 50}),
                       on_update=lambda progress: seen.append(progress.texts),
                       log=private_log, origin=Origin("form", 7))
    assert outcome.status == "ok"
    assert outcome.texts == [ANSWER]
    assert outcome.finish_reasons == ["stop"]
    assert outcome.usage == {"prompt_tokens": 6, "completion_tokens": 7, "total_tokens": 13}
    assert seen[-1] == [ANSWER]
    assert all(ANSWER.startswith(texts[0]) for texts in seen)
    assert outcome.updates == len(seen)
    assert list(private_log) == [outcome.record]
    assert len(session_log) == before  # the private log was used, not the kernel's
    record = outcome.record
    assert (record["source"], record["execution_count"], record["endpoint"]) == ("form", 7, "chat")
    assert record["request_id"] == server.requests[-1].request_id
    assert server.requests[-1].body["stream"] is True


def test_run_call_without_streaming(client, server: FakeOpenAIServer, private_log: SessionLog) -> None:
    seen: list[list[str]] = []
    outcome = run_call(client, CallRequest(PROMPT, "davinci-002", stream=False, params={"max_tokens": 50}),
                       on_update=lambda progress: seen.append(progress.texts), log=private_log)
    assert server.requests[-1].path == "/v1/completions"
    assert "stream" not in server.requests[-1].body
    assert seen == [[ANSWER]]
    assert outcome.status == "ok"
    assert outcome.time_to_first_token == outcome.latency
    assert outcome.record["completion"] == ANSWER


def test_run_call_keeps_an_error_in_the_outcome_and_log(client, server: FakeOpenAIServer,
                                                        private_log: SessionLog) -> None:
    server.add_fault(status=401)
    outcome = run_call(client, CallRequest(PROMPT, "fake-chat"), log=private_log)
    assert outcome.status == "error"
    assert isinstance(outcome.error, AuthenticationError)
    assert outcome.texts == []
    assert outcome.record["status"] == "error"
    assert outcome.record["error"] == str(outcome.error)
    assert "401" in outcome.record["error"]
    assert outcome.record["completion"] == ""


def test_run_call_raises_configuration_errors(client, server: FakeOpenAIServer, private_log: SessionLog) -> None:
    with pytest.raises(ConfigurationError):
        run_call(client, CallRequest(PROMPT, "fake-chat", params={"temperature": 5.0}), log=private_log)
    assert server.requests == []
    assert len(private_log) == 0


def _wait_closed(server: FakeOpenAIServer, sockets: set, timeout: float = 30.0) -> bool:
    """True once none of ``sockets`` is still served (the handler saw the client close it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with server._lock:
            if not sockets & server._connections:
                return True
        time.sleep(0.02)
    return False


def test_run_call_cancel_token_stops_the_stream(client, server: FakeOpenAIServer, private_log: SessionLog) -> None:
    server.add_fault(words=SLOW_WORDS, chunk_delay=0.02)
    with server._lock:
        before = set(server._connections)
    cancel = CancelToken()
    timers: list[threading.Timer] = []

    def stop_soon(progress: Progress) -> None:  # once text has come, Stop is pressed from another thread
        if progress.texts[0] and not timers:
            timers.append(cancel_after(cancel, 0.1))

    started = time.monotonic()
    try:
        outcome = run_call(client, CallRequest("x", "fake-chat"), log=private_log, cancel=cancel,
                           on_update=stop_soon)
    finally:
        for timer in timers:
            timer.cancel()
    assert time.monotonic() - started < 4.0  # the 4 s stream (200 waits of 0.02 s) was not read to its end
    assert outcome.status == "interrupted"
    assert outcome.record["status"] == "interrupted"
    assert 0 < len(outcome.text) < len("".join(SLOW_WORDS))
    assert "".join(SLOW_WORDS).startswith(outcome.text)
    with server._lock:
        streamed = set(server._connections) - before
    assert _wait_closed(server, streamed), "the stream's connection is still open on the server"


def test_run_call_ctrl_c_inside_the_display_callback(
    client, server: FakeOpenAIServer, private_log: SessionLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A KeyboardInterrupt can land in the display code; the stream still closes and is logged."""
    server.add_fault(words=SLOW_WORDS, chunk_delay=0.01)
    calls: list[list[str]] = []
    raised: list[bool] = []

    def on_update(progress: Progress) -> None:
        calls.append(list(progress.texts))
        # Ctrl-C reaches the main thread only (renders after a pause come from a timer thread).
        if len(calls) == 3 and threading.current_thread() is threading.main_thread() and not raised:
            raised.append(True)
            raise KeyboardInterrupt

    # 1000 updates/s: every chunk (10 ms apart) is drawn at once on the main thread, none by the timer.
    monkeypatch.setattr(call, "UPDATES_PER_SECOND", 1000)
    outcome = run_call(client, CallRequest("x", "fake-chat"), on_update=on_update, log=private_log)
    assert outcome.status == "interrupted"
    assert calls[-1] == outcome.texts  # the final render still happened
    assert 0 < len(outcome.text) < len("".join(SLOW_WORDS))
    assert private_log[-1]["status"] == "interrupted"


def test_ctrl_c_during_the_final_render_still_logs_the_call(
    client, server: FakeOpenAIServer, private_log: SessionLog
) -> None:
    """The answer is complete when the last render starts: a Ctrl-C there loses nothing."""

    def on_update(texts: list[str]) -> None:
        if texts and texts[0] == ANSWER:
            raise KeyboardInterrupt

    outcome = run_call(client, CallRequest(PROMPT, "fake-chat", stream=False), on_update=on_update, log=private_log)
    assert outcome.status == "ok" and outcome.text == ANSWER
    assert private_log[-1]["completion"] == ANSWER
