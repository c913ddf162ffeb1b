"""Behaviour every OpenAI-compatible server should show, checked on two real ones with SmolLM2-135M.

The module-scoped ``real_server`` fixture (conftest) runs each test against llama-cpp-python's
server (:class:`jupyter_openai.offline.server.LocalServer`, marker ``local_model``) and against llama.cpp's
own ``llama-server`` (marker ``llama_server``; skipped when scripts/build_llama_server.sh has not
built it). Assertions are on structure, never on the model's words (text differs between builds);
where the servers differ (GUIDE sections 4, 8 and 12) the test says what each one does:
llama-cpp-python sends no usage in streams and names the model by its alias; llama-server puts
usage on the finish chunk and names the model by its file path. Neither has ``GET /v1/models/{id}``:
the client then describes the model from the list.

The terminal summary says how long the tests took on each server (CI keeps those figures).
llama-cpp-python-only behaviour (process lifetime, the offline default, its error shapes) stays in
test_local.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_openai.api.completion import Completion
from jupyter_openai.calls.request import CallRequest
from jupyter_openai.calls.run import Origin, Progress, run_call
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import AuthenticationError, NotFoundError
from jupyter_openai.session.log import SessionLog
from jupyter_openai.transport.stream import Stream

#: An unfinished sentence makes completions go on (a finished one often gets an end-of-text at once).
STORY_START = "Once upon a time, in a quiet village by the sea, there lived an old fisherman who"
LONG_PROMPT = "Write a long story about a dragon who lives in a library."
CHAT = [{"role": "user", "content": "Tell me about the sea."}]


@pytest.fixture(scope="module", autouse=True)
def _module_timing(timing_report: list[str]) -> Iterator[None]:
    """The whole module's time; the per-server lines come from ``real_server``'s teardown."""
    started = time.monotonic()
    yield
    timing_report.append(f"real-server tests (both servers) took {time.monotonic() - started:.1f} s")


def _one_line(error: BaseException) -> str:
    text = str(error)
    assert text and "\n" not in text and len(text) < 800, text
    return text


def _usage_ints(usage: Any) -> None:
    assert isinstance(usage, dict), usage
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage[key], int) and usage[key] >= 0, usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], usage


# -- models --------------------------------------------------------------------------------
def test_list_models(real_server: Any, real_client: OpenAIClient) -> None:
    models = real_client.list_models()
    ids = [m.get("id") for m in models]
    assert ids == [real_server.model], models
    assert models[0].get("object") == "model"
    if real_server.name == "llama-cpp-python":
        assert "created" not in models[0]  # GUIDE 4: blank in the magic's table, not 1970
    else:
        assert real_server.model.endswith(".gguf")  # llama-server: the model file's path


def test_describe_a_model(real_server: Any, real_client: OpenAIClient) -> None:
    """No ``GET /v1/models/{id}`` on either server (404): the client falls back to the list."""
    described = real_client.retrieve_model(real_server.model)
    assert described["id"] == real_server.model and described == real_client.list_models()[0]
    with pytest.raises(NotFoundError) as info:
        real_client.retrieve_model("no-such-model")
    assert info.value.status == 404
    _one_line(info.value)


# -- completions and chat, not streamed ----------------------------------------------------------
def test_completion(real_server: Any, real_client: OpenAIClient) -> None:
    answer = real_client.completion(real_server.model, STORY_START, max_tokens=5, temperature=0)
    assert isinstance(answer, Completion) and answer.kind == "completions"
    assert answer.text.strip()
    _usage_ints(answer.usage)
    assert answer.finish_reason == "length", "a long story should be cut at 5 tokens"
    assert answer.usage["completion_tokens"] == 5
    assert answer.latency is not None


def test_chat(real_server: Any, real_client: OpenAIClient) -> None:
    answer = real_client.chat(real_server.model, [{"role": "system", "content": "Answer briefly."}, *CHAT],
                              max_tokens=10, temperature=0)
    assert isinstance(answer, Completion) and answer.kind == "chat"
    assert answer.text.strip()
    assert answer.choices[0]["message"]["role"] == "assistant"
    assert answer.finish_reason in ("stop", "length")
    _usage_ints(answer.usage)
    assert 1 <= answer.usage["completion_tokens"] <= 10
    assert isinstance(answer.model, str) and answer.model


def test_stop_sequence_ends_the_text(real_server: Any, real_client: OpenAIClient) -> None:
    # Pick the stop string from the model's own temperature-0 answer, so the test never guesses words.
    base = real_client.completion(real_server.model, STORY_START, max_tokens=24, temperature=0).text
    words = [w for w in base.split() if len(w) >= 3]
    assert words, f"the model said too little to pick a stop string: {base!r}"
    stop = words[len(words) // 2]
    answer = real_client.completion(real_server.model, STORY_START, max_tokens=24, temperature=0, stop=[stop])
    assert stop not in answer.text
    assert answer.finish_reason == "stop"
    assert base.startswith(answer.text)


def test_temperature_zero_with_a_seed_is_repeatable(real_server: Any, real_client: OpenAIClient) -> None:
    params = {"max_tokens": 12, "temperature": 0, "seed": 1234}
    first = real_client.completion(real_server.model, STORY_START, **params)
    second = real_client.completion(real_server.model, STORY_START, **params)
    assert first.text and first.text == second.text
    chat_a = real_client.chat(real_server.model, CHAT, **params)
    chat_b = real_client.chat(real_server.model, CHAT, **params)
    assert chat_a.text and chat_a.text == chat_b.text


# -- streaming -----------------------------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_stream(real_server: Any, real_client: OpenAIClient, endpoint: str) -> None:
    if endpoint == "chat":
        stream = real_client.chat(real_server.model, CHAT, max_tokens=16, temperature=0, stream=True)
    else:
        stream = real_client.completion(real_server.model, STORY_START, max_tokens=16, temperature=0, stream=True)
    assert isinstance(stream, Stream)
    deltas = list(stream)
    pieces = [d.text for d in deltas if d.text]
    assert len(pieces) >= 2, "the answer should arrive in several pieces"
    # Role-only first chat chunks and usage-only chunks are skipped: each delta has text or a finish.
    assert all(d.text or d.finish_reason for d in deltas)
    assert "".join(pieces) == stream.text and stream.text.strip()
    assert stream.status == "ok" and stream.finish_reason in ("stop", "length")
    assert isinstance(stream.model, str) and stream.model and stream.id
    assert stream.time_to_first_token is not None and stream.latency >= stream.time_to_first_token
    if real_server.stream_usage:  # llama-server: on the finish chunk
        _usage_ints(stream.usage)
        assert 1 <= stream.usage["completion_tokens"] <= 16
    else:  # llama-cpp-python ignores include_usage: no usage, not zeros
        assert stream.usage is None


def test_stream_usage_in_the_session_log(real_server: Any, real_client: OpenAIClient) -> None:
    log = SessionLog()
    outcome = run_call(real_client, CallRequest("Say hello.", real_server.model, "chat", params={"max_tokens": 8}),
                       origin=Origin("test"), log=log)
    assert outcome.status == "ok" and outcome.text.strip()
    record = log[-1]
    assert record["status"] == "ok" and record["error"] is None and '"stream": true' in record["params"]
    tokens = [record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]]
    if real_server.stream_usage:
        assert all(isinstance(n, int) for n in tokens) and 1 <= tokens[1] <= 8, record
        assert tokens[2] == tokens[0] + tokens[1]
    else:
        assert tokens == [None, None, None]  # never a made-up 0


# -- interrupts ----------------------------------------------------------------------------------
def test_closing_a_stream_early_leaves_the_server_usable(real_server: Any, real_client: OpenAIClient) -> None:
    stream = real_client.completion(real_server.model, STORY_START, max_tokens=200, temperature=0, stream=True)
    with stream:
        for count, _ in enumerate(stream, 1):
            if count == 3:
                break
    assert stream.status == "interrupted" and stream.text
    started = time.monotonic()
    answer = real_client.chat(real_server.model, CHAT, max_tokens=4)
    real_server.timing["next call after a closed stream"] = time.monotonic() - started
    assert answer.text and answer.finish_reason in ("stop", "length")


def test_keyboard_interrupt_mid_stream_leaves_the_server_usable(real_server: Any, real_client: OpenAIClient) -> None:
    log = SessionLog()
    fired: list[str] = []

    def on_update(progress: Progress) -> None:
        texts = progress.texts
        if not fired and texts and texts[0]:
            fired.append(texts[0])
            raise KeyboardInterrupt

    request = CallRequest(LONG_PROMPT, real_server.model, "chat", params={"max_tokens": 200, "temperature": 0})
    outcome = run_call(real_client, request, on_update=on_update, origin=Origin("test"), log=log)
    assert fired and outcome.status == "interrupted" and outcome.text.startswith(fired[0])
    assert log[-1]["status"] == "interrupted" and log[-1]["completion"] == outcome.text
    started = time.monotonic()
    again = run_call(real_client, CallRequest("Say hello.", real_server.model, "chat", params={"max_tokens": 4}),
                     origin=Origin("test"), log=log)
    real_server.timing["next call after Ctrl-C"] = time.monotonic() - started
    assert again.status == "ok" and again.text


# -- authentication ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["wrong-key", None])
def test_wrong_key_is_an_authentication_error(real_server: Any, key: str | None) -> None:
    with OpenAIClient(api_key=key, base_url=real_server.base_url, max_retries=0, connect_timeout=5) as client:
        with pytest.raises(AuthenticationError) as info:
            client.list_models()
        assert info.value.status == 401
        text = _one_line(info.value)
        assert "invalid api key" in text.lower() and "detail" not in text and "{" not in text
        with pytest.raises(AuthenticationError) as info:
            client.chat(real_server.model, CHAT, max_tokens=2, stream=True)
        assert "invalid api key" in _one_line(info.value).lower()
        if key:
            assert key not in str(info.value)
