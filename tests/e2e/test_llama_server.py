"""llama.cpp's own ``llama-server`` with SmolLM2-135M: the Responses API and reasoning text.

Marked ``llama_server``; skipped only when the binary is absent (scripts/build_llama_server.sh
builds and caches it; scripts/test.sh exports ``JUPYTER_OPENAI_LLAMA_SERVER``). Written against
the client API as specified (``OpenAIClient.responses``; ``Completion.reasoning`` and
``Stream.reasoning`` from ``reasoning_content``): these tests fail, not skip, while that is missing.

GUIDE section 11: llama-server serves ``POST /v1/responses`` (converted to chat inside). With
``--jinja --chat-template-file <DeepSeek-R1 template> --reasoning-format deepseek`` it moves the
model's ``<think>…</think>`` text into ``reasoning_content``. Seen here with SmolLM2-135M: the template
ends the prompt with ``<｜Assistant｜><think>\n`` and the model, which knows nothing of thinking,
never writes ``</think>``: the whole answer arrives as ``reasoning_content`` (streamed: only
``delta.reasoning_content``) and ``content`` is ``""``. That the content stays empty is the model's
habit, not a promise, so what is asserted is the split: reasoning non-empty, the answer free of
``<think>`` tags and of the reasoning. ``chat_template_kwargs: {"enable_thinking": false}`` closes the
think block in the prompt: then the answer is all content and there is no reasoning.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from jupyter_openai.client import OpenAIClient
from tests.support.llama_server import LlamaServer

pytestmark = pytest.mark.llama_server

QUESTION = [{"role": "user", "content": "What is 2 + 3? Think step by step."}]


@pytest.fixture(scope="module", autouse=True)
def _module_timing(timing_report: list[str]) -> Iterator[None]:
    started = time.monotonic()
    yield
    timing_report.append(f"llama-server feature tests (responses, reasoning) took {time.monotonic() - started:.1f} s")


def _client(server: LlamaServer) -> OpenAIClient:
    """Default retries: llama-server closes the connection after each stream (see conftest's real_client)."""
    return OpenAIClient(api_key=server.api_key, base_url=server.base_url, read_timeout=60, connect_timeout=5)


@pytest.fixture(scope="module")
def client(llama_server: LlamaServer) -> Iterator[OpenAIClient]:
    with _client(llama_server) as c:
        yield c


@pytest.fixture(scope="module")
def reasoning_client(llama_reasoning_server: LlamaServer) -> Iterator[OpenAIClient]:
    with _client(llama_reasoning_server) as c:
        yield c


def _usage_ints(usage: Any) -> None:
    assert isinstance(usage, dict), usage
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage[key], int) and usage[key] >= 0, usage
    assert usage["completion_tokens"] >= 1, usage
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"], usage


def _split_cleanly(text: str, reasoning: str) -> None:
    """Reasoning came apart from the answer: no tags in either, and none of it in the answer."""
    assert isinstance(reasoning, str) and reasoning.strip(), f"no reasoning; answer={text!r}"
    assert isinstance(text, str)
    for tag in ("<think>", "</think>"):
        assert tag not in text and tag not in reasoning, (text, reasoning)
    assert reasoning.strip() not in text, (text, reasoning)


# -- the Responses API ----------------------------------------------------------------------------
def test_responses_not_streamed(llama_server: LlamaServer, client: OpenAIClient) -> None:
    answer = client.responses(llama_server.model, "Tell me about the sea.", instructions="Answer briefly.",
                              max_output_tokens=16, temperature=0)
    assert answer.text.strip()
    assert answer.status == "ok"
    _usage_ints(answer.usage)
    assert answer.usage["completion_tokens"] <= 16


def test_responses_streamed(llama_server: LlamaServer, client: OpenAIClient) -> None:
    stream = client.responses(llama_server.model, "Tell me about the sea.", instructions="Answer briefly.",
                              stream=True, max_output_tokens=16, temperature=0)
    pieces = [getattr(delta, "text", "") for delta in stream]
    assert len([p for p in pieces if p]) >= 2, "the answer should arrive in several pieces"
    assert stream.text.strip() and "".join(pieces) == stream.text
    assert stream.status == "ok"
    _usage_ints(stream.usage)
    assert stream.usage["completion_tokens"] <= 16


def test_responses_text_matches_chat(llama_server: LlamaServer, client: OpenAIClient) -> None:
    """llama-server turns a Responses call into a chat call: same greedy answer, same tokens."""
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Tell me about the sea."}]
    chat = client.chat(llama_server.model, messages, max_tokens=16, temperature=0)
    answer = client.responses(llama_server.model, "Tell me about the sea.", instructions="Answer briefly.",
                              max_output_tokens=16, temperature=0)
    assert answer.text == chat.text and answer.usage["completion_tokens"] == chat.usage["completion_tokens"]


# -- reasoning text -------------------------------------------------------------------------------
def test_reasoning_not_streamed(llama_reasoning_server: LlamaServer, reasoning_client: OpenAIClient) -> None:
    answer = reasoning_client.chat(llama_reasoning_server.model, QUESTION, max_tokens=48, temperature=0)
    assert answer.choices[0]["message"].get("reasoning_content")  # what the server sent, read raw
    _split_cleanly(answer.text, answer.reasoning)
    assert answer.reasoning == answer.choices[0]["message"]["reasoning_content"]


def test_reasoning_streamed(llama_reasoning_server: LlamaServer, reasoning_client: OpenAIClient) -> None:
    stream = reasoning_client.chat(llama_reasoning_server.model, QUESTION, max_tokens=48, temperature=0, stream=True)
    deltas = list(stream)
    assert stream.status == "ok" and deltas
    _split_cleanly(stream.text, stream.reasoning)
    # Streamed and not streamed give the same split at temperature 0.
    whole = reasoning_client.chat(llama_reasoning_server.model, QUESTION, max_tokens=48, temperature=0)
    assert stream.reasoning == whole.reasoning and stream.text == whole.text


def test_thinking_off_gives_content_and_no_reasoning(llama_reasoning_server: LlamaServer,
                                                     reasoning_client: OpenAIClient) -> None:
    off = {"chat_template_kwargs": {"enable_thinking": False}}
    answer = reasoning_client.chat(llama_reasoning_server.model, QUESTION, max_tokens=24, temperature=0, extra_body=off)
    assert "reasoning_content" not in answer.choices[0]["message"]
    assert answer.text.strip() and answer.reasoning == ""
    stream = reasoning_client.chat(llama_reasoning_server.model, QUESTION, max_tokens=24, temperature=0,
                                   extra_body=off, stream=True)
    list(stream)
    assert stream.status == "ok" and stream.text == answer.text and stream.reasoning == ""


def test_no_reasoning_is_an_empty_string(llama_server: LlamaServer, client: OpenAIClient) -> None:
    """Without ``--reasoning-format`` there is no ``reasoning_content``: ``.reasoning`` is '' (not None)."""
    answer = client.chat(llama_server.model, QUESTION, max_tokens=8, temperature=0)
    assert answer.reasoning == ""
    stream = client.chat(llama_server.model, QUESTION, max_tokens=8, temperature=0, stream=True)
    list(stream)
    assert stream.reasoning == "" and stream.text


# -- token counts in streams (issue 22) -------------------------------------------------------------
def test_streams_report_tokens_when_asked_and_the_status_line_shows_them(llama_server: LlamaServer,
                                                                         client: OpenAIClient) -> None:
    """llama-server (this build) sends usage in a stream only when asked with ``stream_options:
    {"include_usage": true}`` (a last chunk with ``choices: []``); the client asks, so a streamed call's
    status line and log record carry the server's own counts, no estimate and no ``?``."""
    from jupyter_openai.calls.request import CallRequest
    from jupyter_openai.calls.run import run_call
    from jupyter_openai.calls.summary import summarize
    from jupyter_openai.session.log import SessionLog

    for endpoint, prompt in (("chat", "Tell me about the sea."), ("completions", "Once upon a time")):
        out = run_call(client, CallRequest(prompt, llama_server.model, endpoint, stream=True,
                                           params={"max_tokens": 6, "temperature": 0}), log=SessionLog())
        assert out.status == "ok", out.error
        assert out.record["prompt_tokens"] and out.record["completion_tokens"], out.record
        user = [{"role": "user", "content": prompt}]
        whole = (client.chat(llama_server.model, user, max_tokens=1) if endpoint == "chat"
                 else client.completion(llama_server.model, prompt, max_tokens=1))
        assert out.record["prompt_tokens"] == whole.usage["prompt_tokens"]
        status = summarize(out).status
        assert f"{out.record['prompt_tokens']} in / {out.record['completion_tokens']} out tokens" in status, status
        assert "?" not in status and "estimated" not in status
