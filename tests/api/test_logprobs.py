"""Token probabilities: both shapes read (whole answers and streamed chunks), on the test server in
its OpenAI and llama.cpp profiles and on the real servers with the bundled model; the temperature
re-weighting and the top_p illustration."""

from __future__ import annotations

import math

import pytest

from jupyter_openai.api.completion import Delta
from jupyter_openai.api.logprobs import LOWEST, TokenProb, clamp, nucleus, probability, read, reweight, text_of
from jupyter_openai.client import OpenAIClient
from tests.servers.fake import TEST_KEY, FakeOpenAIServer

PROMPT = "one two three"
ANSWER = "Echo: three two one"

COMPLETIONS_SHAPE = {"tokens": ["Hi", " there"], "token_logprobs": [-0.1, -1.5],
                     "top_logprobs": [{"Hi": -0.1, "Hello": -2.5}, {" you": -1.0, " there": -1.5}],
                     "text_offset": [0, 2]}
CHAT_SHAPE = {"content": [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105],
                           "top_logprobs": [{"token": "Hello", "logprob": -2.5}, {"token": "Hi", "logprob": -0.1}]},
                          {"token": " there", "logprob": -1.5, "top_logprobs": []}], "refusal": None}


# -- reading --------------------------------------------------------------------------------
def test_the_completions_shape_reads_as_tokens_with_sorted_alternatives() -> None:
    tokens = read(COMPLETIONS_SHAPE)
    assert [t.token for t in tokens] == ["Hi", " there"]
    assert tokens[0] == TokenProb("Hi", -0.1, (("Hi", -0.1), ("Hello", -2.5)))
    assert tokens[1].top == ((" you", -1.0), (" there", -1.5))
    assert tokens[0].prob == pytest.approx(math.exp(-0.1))


def test_the_chat_shape_reads_the_same() -> None:
    tokens = read(CHAT_SHAPE)
    assert text_of(tokens) == "Hi there"
    assert tokens[0] == TokenProb("Hi", -0.1, (("Hi", -0.1), ("Hello", -2.5)))
    assert tokens[1] == TokenProb(" there", -1.5, ())


@pytest.mark.parametrize("raw", [None, [], "x", {}, {"content": None}, {"tokens": "abc"}, {"content": [1, None]}])
def test_nothing_readable_is_no_tokens(raw: object) -> None:
    assert read(raw) == []


def test_malformed_entries_are_skipped_or_unknown() -> None:
    tokens = read({"tokens": ["a", 5, "b"], "token_logprobs": [True, None], "top_logprobs": [None, {"x": "no"}]})
    assert tokens == [TokenProb("a", None, ()), TokenProb("b", None, ())]
    assert tokens[0].prob is None
    minus_infinity = read({"content": [{"token": "z", "logprob": float("-inf"), "top_logprobs": []}]})
    assert minus_infinity[0].prob == 0.0


ODD = [1000, float("inf"), 10**400, float("nan"), "0.5", True, 1e-12, -float("inf"), -1e400]


def test_every_number_is_clamped_to_a_log_probability_never_raised() -> None:
    """A log probability is <= 0: a server's 1000 or inf is probability 1, NaN and non-numbers unknown,
    -inf a very small number; nothing overflows (math.exp(1000) would)."""
    assert [clamp(v) for v in ODD] == [0.0, 0.0, None, None, None, None, 0.0, LOWEST, LOWEST]
    chat = read({"content": [{"token": "a", "logprob": 1000, "top_logprobs": [
        {"token": "a", "logprob": 1000}, {"token": "b", "logprob": float("nan")}, {"token": "c", "logprob": -1e400}]}]})
    assert chat == [TokenProb("a", 0.0, (("a", 0.0), ("c", LOWEST)))] and chat[0].prob == 1.0
    completions = read({"tokens": ["x", "y"], "token_logprobs": [10**400, 5e300],
                        "top_logprobs": [{"x": 1e308, "z": float("inf")}, None]})
    assert [t.prob for t in completions] == [None, 1.0] and completions[0].top == (("x", 0.0), ("z", 0.0))
    assert [probability(v) for v in (1000, None, "x", -1e400)] == [1.0, None, None, 0.0]
    # Hand-made tokens too: the property and the illustrations clamp what they are given.
    assert TokenProb("t", 1000.0).prob == 1.0
    b = math.exp(-10) / (1 + math.exp(-10))  # 1000 read as 0: e^0 against e^(-5 / 0.5)
    assert dict(reweight([("a", 1000.0), ("b", -5.0), ("c", float("nan"))], 0.5)) == pytest.approx({"a": 1 - b, "b": b})
    assert dict(reweight([("a", LOWEST), ("b", LOWEST), ("c", 0.0)], 1e-300)) == {"a": 0.0, "b": 0.0, "c": 1.0}
    assert dict(reweight([("a", -1.0), ("b", -2.0)], float("nan"))) == {"a": 1.0, "b": 0.0}


# -- the illustrations ---------------------------------------------------------------------------
TOP = [("a", math.log(0.6)), ("b", math.log(0.3)), ("c", math.log(0.1))]


def test_reweight_at_one_renormalises_and_lower_temperatures_sharpen() -> None:
    same = dict(reweight(TOP, 1.0))
    assert same == pytest.approx({"a": 0.6, "b": 0.3, "c": 0.1})
    cold, hot = dict(reweight(TOP, 0.5)), dict(reweight(TOP, 2.0))
    assert cold["a"] > 0.6 > hot["a"] and hot["c"] > 0.1
    assert sum(cold.values()) == pytest.approx(1) and sum(hot.values()) == pytest.approx(1)
    assert dict(reweight(TOP, 0)) == {"a": 1.0, "b": 0.0, "c": 0.0}
    assert reweight([], 1.0) == []


def test_nucleus_keeps_the_likeliest_up_to_top_p() -> None:
    probs = [("b", 0.3), ("a", 0.6), ("c", 0.1)]
    assert nucleus(probs, 0.5) == ["a"]
    assert nucleus(probs, 0.8) == ["a", "b"]
    assert nucleus(probs, 1.0) == ["a", "b", "c"]
    assert nucleus(probs, 0.0) == ["a"]  # always at least one


# -- the test server, both endpoints, streamed and not ------------------------------------------
def _ask(client: OpenAIClient, endpoint: str, stream: bool, top: int = 3) -> tuple[object, list[Delta]]:
    if endpoint == "completions":
        result = client.completion("davinci-002", PROMPT, logprobs=top, stream=stream)
    else:
        result = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], logprobs=True, top_logprobs=top,
                             stream=stream)
    deltas = list(result) if stream else []
    return result, deltas


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_streamed_and_whole_answers_carry_the_same_probabilities(client: OpenAIClient, endpoint: str) -> None:
    whole, _ = _ask(client, endpoint, stream=False)
    streamed, deltas = _ask(client, endpoint, stream=True)
    assert whole.text == streamed.text == ANSWER
    assert whole.logprobs == streamed.logprobs
    tokens = streamed.logprobs
    assert text_of(tokens) == ANSWER
    assert [round(t.prob, 3) for t in tokens] == [0.9, 0.7, 0.5, 0.3]  # the fake server's cycle
    assert all(len(t.top) == 3 and t.top == tuple(sorted(t.top, key=lambda p: -p[1])) for t in tokens)
    assert tokens[3].top[0] == (" alt1", pytest.approx(math.log(0.7 * 0.6)))  # more likely than the chosen one
    texts = [d for d in deltas if d.text]
    assert [d.logprobs[0].token for d in texts] == [d.text for d in texts]  # each delta its own token


@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_no_probabilities_unless_asked(client: OpenAIClient, endpoint: str) -> None:
    if endpoint == "completions":
        stream = client.completion("davinci-002", PROMPT, stream=True)
    else:
        stream = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], stream=True)
    deltas = list(stream)
    assert stream.logprobs == [] and all(d.logprobs is None for d in deltas)
    assert stream.text == ANSWER


@pytest.mark.parametrize("stream", [False, True])
def test_llama_server_completions_in_the_chat_shape_are_read(stream: bool) -> None:
    with FakeOpenAIServer(profile="llama.cpp") as srv, OpenAIClient(api_key=TEST_KEY, base_url=srv.url) as client:
        result = client.completion("davinci-002", PROMPT, logprobs=2, stream=stream)
        if stream:
            result.read()
        else:
            assert set(result.raw["choices"][0]["logprobs"]) == {"content", "refusal"}
        assert text_of(result.logprobs) == ANSWER and all(len(t.top) == 2 for t in result.logprobs)


def test_several_choices_keep_their_own_tokens(client: OpenAIClient) -> None:
    stream = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], n=2, logprobs=True, top_logprobs=1,
                         stream=True).read()
    first, second = stream.all_logprobs
    assert text_of(first) == stream.texts[0] and text_of(second) == stream.texts[1]


# -- the real servers with the bundled model -----------------------------------------------------
def _ascii(text: str) -> str:
    return text.encode("ascii", "ignore").decode().strip()


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("endpoint", ["completions", "chat"])
def test_real_servers_send_probabilities_we_read(real_server: object, real_client: OpenAIClient, endpoint: str,
                                                 stream: bool) -> None:
    if endpoint == "completions":
        result = real_client.completion(real_server.model, "The capital of France is", max_tokens=4, logprobs=3,
                                        temperature=0, stream=stream)
    else:
        result = real_client.chat(real_server.model, [{"role": "user", "content": "Say hello"}], max_tokens=4,
                                  logprobs=True, top_logprobs=3, temperature=0, stream=stream)
    if stream:
        result.read()
    tokens = result.logprobs
    assert tokens, f"{real_server.name} {endpoint} stream={stream}: no tokens read"
    # a character of several tokens (an emoji) comes as tokens "" with bytes null from llama-cpp-python
    assert _ascii(text_of(tokens)) == _ascii(result.text)
    assert all(t.prob is not None and 0 < t.prob <= 1.0 + 1e-6 for t in tokens)
    assert any(t.top for t in tokens) and all(len(t.top) <= 3 for t in tokens)
