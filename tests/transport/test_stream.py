"""Tests of reasoning text and refusals in chat answers, streamed (``jupyter_openai.transport.stream``) and not
(``jupyter_openai.api.completion``), and of the chunk shapes a stream refuses.

Over real sockets: the test server's ``fake-reasoner`` (``reasoning_content``, as llama.cpp, vLLM and
DeepSeek send it), ``fake-reasoner-ollama`` (``reasoning``) and ``fake-refuser`` (``refusal``), GUIDE 10;
shapes no API sends come from a ``ScriptedServer`` (the ``scripted`` fixture).
"""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_openai.api.completion import CHAT_KIND, Completion
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import StreamError
from jupyter_openai.transport.stream import Stream
from tests.servers.fake import FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text
from tests.servers.scripted import sse

MESSAGES = [{"role": "user", "content": "one two three"}]
ANSWER = "Echo: three two one"
REASONING = reasoning_text("one two three")
REASONERS = ["fake-reasoner", "fake-reasoner-ollama"]


def chat(client: OpenAIClient, model: str, stream: bool, **params: Any) -> Completion | Stream:
    result = client.chat(model, MESSAGES, stream=stream, **params)
    return result.read() if isinstance(result, Stream) else result


def chunk(delta: dict, finish: str | None = None, **extra: Any) -> dict:
    return {"id": "c1", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


# -- reasoning text ------------------------------------------------------------------------
@pytest.mark.parametrize("model", REASONERS)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_reasoning_is_apart_from_the_answer(client: OpenAIClient, model: str, stream: bool) -> None:
    result = chat(client, model, stream)
    assert (result.text, result.texts, result.reasoning) == (ANSWER, [ANSWER], REASONING)
    assert result.finish_reason == "stop" and result.refusal == ""
    reasoning_tokens = len(REASONING.split())
    assert result.usage == {"prompt_tokens": 3, "completion_tokens": 4 + reasoning_tokens,
                            "total_tokens": 7 + reasoning_tokens,
                            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
                            "reasoning_tokens": reasoning_tokens}


@pytest.mark.parametrize("model", REASONERS)
def test_streamed_reasoning_comes_first_as_deltas_of_its_own(client: OpenAIClient, model: str) -> None:
    deltas = list(client.chat(model, MESSAGES, stream=True))
    kinds = ["reasoning" if d.reasoning else "text" if d.text else "end" for d in deltas]
    first_text = kinds.index("text")
    assert set(kinds[:first_text]) == {"reasoning"} and "reasoning" not in kinds[first_text:]
    assert "".join(d.reasoning for d in deltas) == REASONING and "".join(d.text for d in deltas) == ANSWER
    assert all(not (d.text and d.reasoning) for d in deltas)


def test_models_without_reasoning_have_none(client: OpenAIClient) -> None:
    for stream in (False, True):
        assert chat(client, "fake-chat", stream).reasoning == ""


def test_gpt5_reasoning_tokens_are_counted_but_hidden(client: OpenAIClient) -> None:
    result = chat(client, "gpt-5.4-mini", True, reasoning_effort="high")
    assert (result.text, result.reasoning, result.usage["reasoning_tokens"]) == (ANSWER, "", 16)


def test_a_chunk_with_both_reasoning_and_text_keeps_both(scripted: Any) -> None:
    body = sse(chunk({"role": "assistant", "reasoning_content": "Think."}),
               chunk({"reasoning_content": " More.", "content": "Hi"}),
               chunk({"content": " there"}, "stop"))
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.chat("m", MESSAGES, stream=True)
    deltas = list(stream)
    assert (stream.text, stream.reasoning, stream.status) == ("Hi there", "Think. More.", "ok")
    assert [(d.text, d.reasoning) for d in deltas[:2]] == [("", "Think."), ("Hi", " More.")]


def test_an_empty_reasoning_content_does_not_hide_reasoning(scripted: Any) -> None:
    """Servers in transition send both names, one of them null (vLLM renamed reasoning_content)."""
    body = sse(chunk({"reasoning_content": None, "reasoning": "Hmm."}), chunk({"content": "ok"}, "stop"))
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.chat("m", MESSAGES, stream=True).read()
    assert (stream.text, stream.reasoning) == ("ok", "Hmm.")
    plain = Completion({"choices": [{"message": {"reasoning_content": None, "reasoning": "Hmm.", "content": "ok"}}]},
                       CHAT_KIND)
    assert (plain.text, plain.reasoning) == ("ok", "Hmm.")


# -- refusals ------------------------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "streamed"])
def test_refusal_is_kept_and_the_answer_is_empty(client: OpenAIClient, server: FakeOpenAIServer,
                                                 stream: bool) -> None:
    result = chat(client, "fake-refuser", stream)
    assert (result.text, result.refusal, result.reasoning, result.finish_reason) == ("", REFUSAL_TEXT, "", "stop")
    assert result.usage["completion_tokens"] == len(REFUSAL_TEXT.split())


def test_completion_refusal_of_odd_messages() -> None:
    for message in ({"refusal": 5}, {"refusal": None}, "text", None):
        completion = Completion({"choices": [{"message": message}]}, CHAT_KIND)
        assert (completion.text, completion.refusal, completion.reasoning) == ("", "", "")


# -- shapes no API sends -------------------------------------------------------------------
ODD = [
    {"choices": "x"},
    {"choices": [1]},
    {"choices": [{"index": "0", "delta": {"content": "a"}}]},
    {"choices": [{"index": 0, "delta": "text"}]},
    {"choices": [{"index": 0, "delta": {"content": 5}}]},
    {"choices": [{"index": 0, "delta": {"reasoning_content": ["a"]}}]},
    {"choices": [{"index": 0, "delta": {"reasoning": {"text": "a"}}}]},
    {"choices": [{"index": 0, "delta": {"refusal": 5}}]},
    {"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": 3}]},
    {"usage": [1], "choices": []},
]


@pytest.mark.parametrize("odd", ODD, ids=[f"odd-{i}" for i in range(len(ODD))])
def test_an_odd_chat_chunk_is_a_stream_error_keeping_the_text(scripted: Any, odd: dict) -> None:
    body = sse(chunk({"content": "Hello"}), odd, chunk({"content": " never"}, "stop"))
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.chat("m", MESSAGES, stream=True)
    with pytest.raises(StreamError, match=r"^Stream error: a chunk of an unexpected shape: '\{"):
        stream.read()
    assert (stream.text, stream.status) == ("Hello", "error")


def test_an_odd_model_name_in_the_first_chunk_is_a_stream_error(scripted: Any) -> None:
    _, client = scripted(lambda method, path, request: (200, sse({"id": "c1", "model": 5, "choices": []})))
    stream = client.chat("m", MESSAGES, stream=True)
    with pytest.raises(StreamError, match="^Stream error: a chunk of an unexpected shape: "):
        stream.read()
    assert (stream.text, stream.model, stream.status) == ("", None, "error")


@pytest.mark.parametrize("odd", ["[1, 2]", "3", '"text"', "null", "{not json"])
def test_a_chunk_that_is_no_object_is_malformed(scripted: Any, odd: str) -> None:
    body = sse(chunk({"content": "Hello"}), done=False) + f"data: {odd}\n\n".encode()
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.chat("m", MESSAGES, stream=True)
    with pytest.raises(StreamError, match="^Stream error: malformed chunk: "):
        stream.read()
    assert stream.text == "Hello"


ODD_EVENTS = [
    {"type": "response.output_text.delta", "delta": 5},
    {"type": "response.reasoning_text.delta", "delta": ["x"]},
    {"type": "response.refusal.delta", "delta": {"a": 1}},
    {"type": "response.completed", "response": "done"},
    {"type": "response.created", "response": {"model": 7}},
]


@pytest.mark.parametrize("odd", ODD_EVENTS, ids=[e["type"] for e in ODD_EVENTS])
def test_an_odd_responses_event_is_a_stream_error(scripted: Any, odd: dict) -> None:
    body = sse((TEXT := "response.output_text.delta", {"type": TEXT, "delta": "Hello"}), (odd["type"], odd),
               done=False)
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.responses("m", "hi", stream=True)
    with pytest.raises(StreamError, match="^Stream error: a chunk of an unexpected shape: "):
        stream.read()
    assert (stream.text, stream.status) == ("Hello", "error")


def test_a_responses_stream_cut_before_its_final_event_is_truncated(scripted: Any) -> None:
    body = sse(("response.output_text.delta", {"type": "response.output_text.delta", "delta": "Hel"}), done=False)
    _, client = scripted(lambda method, path, request: (200, body))
    stream = client.responses("m", "hi", stream=True).read()
    assert (stream.text, stream.status, stream.finish_reason) == ("Hel", "truncated", None)
