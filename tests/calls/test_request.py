"""Tests of ``jupyter_openai.calls.request``: the auto endpoint rule and how options over defaults become one
validated :class:`CallRequest` (reasoning effort, verbosity, the Responses endpoint, the default model).

Pure: no server, no IPython. What reaches the wire is tested in test_responses.py and test_adapt.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from jupyter_openai.calls.request import DEFAULT_MODEL, DEFAULTS, CallRequest, build_request, choose_endpoint
from jupyter_openai.errors import ConfigurationError

PROMPT = "one two three"


def build(**options: Any) -> CallRequest:
    defaults = options.pop("defaults", {})
    return build_request({"prompt": PROMPT, **options}, {**DEFAULTS, **defaults})


# -- the auto endpoint rule ----------------------------------------------------------------------
@pytest.mark.parametrize(("model", "expected"), [
    ("SmolLM2-135M-Instruct", "chat"),  # Hugging Face: -Instruct means chat-tuned (GUIDE 10)
    ("SmolLM2-135M-Instruct.Q4_1.gguf", "chat"),  # llama-server names a model by its file
    ("Qwen/Qwen2.5-7B-Instruct", "chat"),
    ("gpt-3.5-turbo-instruct", "completions"),
    ("GPT-3.5-Turbo-Instruct", "completions"),
    ("davinci-002", "completions"),
    ("babbage-002", "completions"),
    ("text-davinci-003", "completions"),
    ("code-davinci-002", "completions"),
    ("gpt-5.4-mini", "chat"),
    ("davinci-002-ft", "completions"),  # fine-tunes of a legacy model keep its endpoint
    ("my-davinci-002", "chat"),  # the rule is anchored at the start
])
def test_auto_rule(model: str, expected: str) -> None:
    assert choose_endpoint(model) == expected
    assert build(model=model).endpoint == expected


def test_the_default_model_is_todays_and_goes_to_chat() -> None:
    request = build()
    assert (request.model, request.endpoint, DEFAULT_MODEL) == ("gpt-5.4-mini", "chat", "gpt-5.4-mini")
    assert request.params == {"max_tokens": 256} and request.stream is True


@pytest.mark.parametrize("endpoint", ["chat", "completions", "responses"])
def test_an_explicit_endpoint_wins(endpoint: str) -> None:
    assert choose_endpoint("davinci-002", endpoint) == endpoint
    assert build(model="SmolLM2-135M-Instruct", endpoint=endpoint).endpoint == endpoint


def test_an_unknown_endpoint_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="^unknown endpoint 'embeddings': use one of auto, chat, "
                                                 "completions, responses$"):
        choose_endpoint("m", "embeddings")


# -- reasoning effort and verbosity ----------------------------------------------------------------
@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_reasoning_options_and_defaults_reach_the_params(endpoint: str) -> None:
    unstored = {"store": False} if endpoint == "responses" else {}  # GUIDE 18: a Responses call is not kept
    given = build(endpoint=endpoint, reasoning_effort="high", verbosity="low")
    assert given.params == {"max_tokens": 256, "reasoning_effort": "high", "verbosity": "low", **unstored}
    configured = build(endpoint=endpoint, defaults={"reasoning_effort": "minimal", "verbosity": "high"})
    assert configured.params == {"max_tokens": 256, "reasoning_effort": "minimal", "verbosity": "high", **unstored}
    assert build(endpoint=endpoint, reasoning_effort="none", defaults={"reasoning_effort": "xhigh"}).params[
        "reasoning_effort"] == "none"  # the option wins over the trait


def test_configured_reasoning_defaults_are_left_out_on_completions() -> None:
    request = build(model="davinci-002", defaults={"reasoning_effort": "low", "verbosity": "low"})
    assert (request.endpoint, request.params) == ("completions", {"max_tokens": 256})


@pytest.mark.parametrize(("options", "message"), [
    ({"reasoning_effort": "max"}, "reasoning_effort (--reasoning-effort) must be one of none, minimal, low, medium, "
                                  "high, xhigh, got 'max'"),
    ({"verbosity": "loud"}, "verbosity (--verbosity) must be one of low, medium, high, got 'loud'"),
    ({"reasoning_effort": 3}, "reasoning_effort (--reasoning-effort) must be str, got 3"),
    ({"model": "davinci-002", "reasoning_effort": "low"}, "--reasoning-effort works with the chat and responses "
                                                         "endpoints only"),
    ({"endpoint": "completions", "verbosity": "low"}, "--verbosity works with the chat and responses endpoints only"),
    ({"endpoint": "responses", "n": 2}, "-n works with the chat and completions endpoints only"),
    ({"endpoint": "responses", "logprobs": 2}, "--logprobs works with the chat and completions endpoints only"),
    ({"endpoint": "responses", "echo": True}, "--echo works with the completions endpoint only (add -e completions)"),
    ({"endpoint": "completions", "system": "Be brief."}, "--system works with the chat and responses endpoints only"),
])
def test_mistakes_are_one_line(options: dict, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build(**options)
    assert str(caught.value) == message


# -- the Responses endpoint ------------------------------------------------------------------------
def test_responses_keeps_the_system_message_and_drops_chat_only_defaults() -> None:
    request = build(endpoint="responses", defaults={"system": "You are terse.", "top_p": 0.5})
    assert (request.endpoint, request.system) == ("responses", "You are terse.")
    assert request.params == {"max_tokens": 256, "top_p": 0.5, "store": False}
    assert build(endpoint="responses", system="Own.").system == "Own."


def test_responses_as_the_configured_default_endpoint() -> None:
    assert build(defaults={"endpoint": "responses"}).endpoint == "responses"
    assert build(endpoint="chat", defaults={"endpoint": "responses"}).endpoint == "chat"


def test_completions_ignore_a_configured_system_message() -> None:
    assert build(model="davinci-002", defaults={"system": "You are terse."}).system is None


def test_chat_logprobs_become_both_fields() -> None:
    assert build(logprobs=3).params == {"max_tokens": 256, "logprobs": True, "top_logprobs": 3}
