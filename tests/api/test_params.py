"""Parameter checks (``jupyter_openai.api.params``) through the real client and the test server.

Every range edge is tried at the bound (accepted: the request reaches the server, which checks the
same ranges, with the value as given) and just past it (``math.nextafter`` for decimals, ±1 for
integers: refused with a ``ConfigurationError`` naming the parameter, before any request is sent —
``server.requests`` stays empty). Also type errors, ``stop`` lists of 1 to 4, fields that belong to one
endpoint only, unknown parameters, NaN, and the table's agreement with the reference schema.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from jupyter_openai.api.params import CHAT, COMPLETIONS, PARAMS, RESPONSES, check_params
from jupyter_openai.errors import ConfigurationError
from tests.support.checks import SUBSET

MESSAGES = [{"role": "user", "content": "one two three"}]


def call(client: Any, endpoint: str, **params: Any) -> Any:
    if endpoint == CHAT:
        return client.chat("fake-chat", MESSAGES, **params)
    if endpoint == RESPONSES:
        return client.responses("fake-chat", "one two three", **params)
    return client.completion("davinci-002", "one two three", **params)


def refused(client: Any, server: Any, endpoint: str, match: str, **params: Any) -> ConfigurationError:
    with pytest.raises(ConfigurationError, match=match) as info:
        call(client, endpoint, **params)
    assert server.requests == [], "a refused parameter must not cause any request"
    return info.value


def _bounded() -> list[tuple[str, str]]:
    cases = []
    for p in PARAMS.values():
        if p.low is None and p.high is None:
            continue
        for endpoint in p.endpoints:
            if (p.name, endpoint) != ("max_tokens", RESPONSES):  # sent as max_output_tokens, tested as such
                cases.append((p.name, endpoint))
    return cases


BOUNDED = _bounded()


def _is_int(name: str) -> bool:
    kind = PARAMS[name].kind
    return kind is int or (isinstance(kind, tuple) and int in kind and float not in kind)


def test_every_ranged_field_is_covered() -> None:
    names = {name for name, _ in BOUNDED}
    assert names == {"max_tokens", "max_completion_tokens", "max_output_tokens", "temperature", "top_p", "n",
                     "presence_penalty",
                     "frequency_penalty", "logprobs", "best_of", "top_logprobs"}


#: What a field needs beside it to be sent at all (GUIDE 18): chat's top_logprobs comes with logprobs.
COMPANIONS = {"top_logprobs": {"logprobs": True}}


@pytest.mark.parametrize("name, endpoint", BOUNDED)
def test_value_at_each_bound_is_sent(client: Any, server: Any, name: str, endpoint: str) -> None:
    spec = PARAMS[name]
    for bound in (spec.low, spec.high):
        if bound is None:
            continue
        value = int(bound) if _is_int(name) else float(bound)
        server.reset()
        if (name, value) == ("best_of", 0):  # the schema's minimum, below every n (n >= 1): refused as such
            refused(client, server, endpoint, r"best_of \(0\) must be at least n \(1\)", best_of=0)
            continue
        call(client, endpoint, **{name: value}, **COMPANIONS.get(name, {}))
        assert len(server.requests) == 1
        sent = server.requests[0].body[name]
        assert sent == value and type(sent) is type(value)


@pytest.mark.parametrize("name, endpoint", BOUNDED)
def test_value_just_past_each_bound_is_refused(client: Any, server: Any, name: str, endpoint: str) -> None:
    spec = PARAMS[name]
    for bound, direction in ((spec.low, -math.inf), (spec.high, math.inf)):
        if bound is None:
            continue
        if _is_int(name):
            value: float = int(bound) + (1 if direction > 0 else -1)
        else:
            value = math.nextafter(float(bound), direction)
        err = refused(client, server, endpoint, name, **{name: value})
        assert ("between" in str(err) or "at least" in str(err)) and str(value) in str(err)


@pytest.mark.parametrize("name", ["temperature", "top_p", "presence_penalty", "frequency_penalty"])
@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
def test_decimal_fields_take_integers_and_refuse_nan_and_infinity(client: Any, server: Any, name: str,
                                                                    endpoint: str) -> None:
    call(client, endpoint, **{name: 1})
    assert server.requests[-1].body[name] == 1
    server.reset()
    refused(client, server, endpoint, name, **{name: math.nan})
    refused(client, server, endpoint, name, **{name: math.inf})
    refused(client, server, endpoint, name, **{name: -math.inf})


TYPE_ERRORS = [
    ("temperature", "0.5"), ("temperature", True), ("top_p", [1]), ("n", 2.0), ("n", "2"), ("n", True),
    ("max_tokens", 16.0), ("max_tokens", "16"), ("max_tokens", False), ("presence_penalty", "0"),
    ("frequency_penalty", [0]), ("seed", 1.5), ("seed", "42"), ("user", 123), ("logit_bias", [1, 2]),
    ("stop", 5), ("stop", ("a", "b")), ("stream_options", True),
]


@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
@pytest.mark.parametrize("name, value", TYPE_ERRORS, ids=[f"{n}={v!r}" for n, v in TYPE_ERRORS])
def test_wrong_types_are_refused(client: Any, server: Any, endpoint: str, name: str, value: Any) -> None:
    refused(client, server, endpoint, name, **{name: value})


@pytest.mark.parametrize("name, value", [("logprobs", True), ("logprobs", 2.0), ("echo", 1), ("echo", "yes"),
                                         ("suffix", 3), ("best_of", "2")])
def test_wrong_types_for_completions_fields(client: Any, server: Any, name: str, value: Any) -> None:
    refused(client, server, COMPLETIONS, name, **{name: value})


@pytest.mark.parametrize("value", [0, 1, 5, "true"])
def test_chat_logprobs_must_be_a_boolean(client: Any, server: Any, value: Any) -> None:
    refused(client, server, CHAT, "logprobs must be true or false", logprobs=value)


@pytest.mark.parametrize("value", [True, False])
def test_chat_logprobs_boolean_is_sent(client: Any, server: Any, value: bool) -> None:
    call(client, CHAT, logprobs=value, top_logprobs=3 if value else None)
    body = server.requests[-1].body
    assert body["logprobs"] is value
    assert body.get("top_logprobs") == (3 if value else None)


@pytest.mark.parametrize("stop", ["END", ["a"], ["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"]])
@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
def test_stop_one_to_four_strings(client: Any, server: Any, endpoint: str, stop: Any) -> None:
    call(client, endpoint, stop=stop)
    assert server.requests[-1].body["stop"] == stop


@pytest.mark.parametrize("stop", [[], ["a", "b", "c", "d", "e"], ["a", 1], ["a", ""], "", [None]])
@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
def test_bad_stop_lists_are_refused(client: Any, server: Any, endpoint: str, stop: Any) -> None:
    refused(client, server, endpoint, "stop", stop=stop)


def test_stop_really_stops_on_the_server(client: Any) -> None:
    result = client.completion("davinci-002", "one two three", stop=["two"])
    assert result.text == "Echo: three " and result.finish_reason == "stop"


CHAT_ONLY = {"max_completion_tokens": 5, "top_logprobs": 2}
COMPLETIONS_ONLY = {"echo": True, "suffix": "!", "best_of": 2, "logprobs": 2}


@pytest.mark.parametrize("name", CHAT_ONLY)
def test_chat_only_fields_are_refused_on_completions(client: Any, server: Any, name: str) -> None:
    err = refused(client, server, COMPLETIONS, name, **{name: CHAT_ONLY[name]})
    assert "not a parameter of the completions endpoint" in str(err)


@pytest.mark.parametrize("name", COMPLETIONS_ONLY)
def test_completions_only_fields_are_refused_on_chat(client: Any, server: Any, name: str) -> None:
    if name == "logprobs":  # an integer is a completions-style value; chat wants a boolean
        refused(client, server, CHAT, "logprobs", logprobs=2)
        return
    err = refused(client, server, CHAT, name, **{name: COMPLETIONS_ONLY[name]})
    assert "not a parameter of the chat endpoint" in str(err)


@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
def test_unknown_parameter_is_refused_and_points_to_extra_body(client: Any, server: Any, endpoint: str) -> None:
    err = refused(client, server, endpoint, "unknown parameter 'temprature'", temprature=0.5)
    assert "extra_body" in str(err)


def test_extra_body_is_sent_unchecked(client: Any, server: Any) -> None:
    call(client, CHAT, extra_body={"repetition_penalty": 1.1, "top_k": 40})
    body = server.requests[-1].body
    assert body["repetition_penalty"] == 1.1 and body["top_k"] == 40


@pytest.mark.parametrize("endpoint", [COMPLETIONS, CHAT])
def test_none_values_are_left_out(client: Any, server: Any, endpoint: str) -> None:
    call(client, endpoint, temperature=None, n=None, stop=None, seed=None)
    body = server.requests[-1].body
    assert not {"temperature", "n", "stop", "seed"} & set(body)


@pytest.mark.parametrize("bias, ok", [({"50256": -100}, True), ({"50256": 100}, True), ({"1": 0, "2": 5}, True),
                                      ({"50256": -101}, False), ({"50256": 101}, False), ({"1": 0.5}, False),
                                      ({"1": "x"}, False), ({"1": True}, False), ({"1": math.nan}, False)])
def test_logit_bias_range(client: Any, server: Any, bias: dict, ok: bool) -> None:
    if ok:
        call(client, COMPLETIONS, logit_bias=bias)
        assert server.requests[-1].body["logit_bias"] == bias
    else:
        refused(client, server, COMPLETIONS, "logit_bias", logit_bias=bias)


@pytest.mark.parametrize("kwargs, match", [
    ({"model": ""}, "model"), ({"model": "   "}, "model"), ({"model": None}, "model"), ({"prompt": ""}, "prompt"),
    ({"prompt": []}, "prompt"), ({"prompt": None}, "prompt"),
])
def test_empty_model_or_prompt_is_refused(client: Any, server: Any, kwargs: dict, match: str) -> None:
    args = {"model": "davinci-002", "prompt": "hi", **kwargs}
    with pytest.raises(ConfigurationError, match=match):
        client.completion(args["model"], args["prompt"])
    assert server.requests == []


@pytest.mark.parametrize("messages, match", [([], "at least one"), ([{"content": "hi"}], "role"),
                                             (["hi"], "role"), (None, "at least one")])
def test_bad_messages_are_refused(client: Any, server: Any, messages: Any, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        client.chat("fake-chat", messages)
    assert server.requests == []


def test_streamed_calls_are_checked_before_sending_too(client: Any, server: Any) -> None:
    with pytest.raises(ConfigurationError, match="temperature"):
        client.chat("fake-chat", MESSAGES, stream=True, temperature=3)
    assert server.requests == []


def test_check_params_unknown_endpoint() -> None:
    with pytest.raises(ConfigurationError, match="unknown endpoint"):
        check_params("embeddings", {})


def test_check_params_returns_a_clean_copy() -> None:
    given = {"temperature": 0.2, "n": None, "stop": ["x"]}
    assert check_params(COMPLETIONS, given) == {"temperature": 0.2, "stop": ["x"]}
    assert given["n"] is None  # the input is not modified


def test_table_matches_reference_schema() -> None:
    """The ranges written in params.py are those of CreateCompletionRequest in the reference file, but
    for max_tokens: the schema allows 0 (nothing generated); here, as in the magic and the form, 1."""
    props = json.loads(SUBSET.read_text())["components"]["schemas"]["CreateCompletionRequest"]["properties"]
    for name, spec in PARAMS.items():
        if COMPLETIONS not in spec.endpoints or name not in props:
            continue
        assert props[name].get("minimum") == (0 if name == "max_tokens" else spec.low), name
        assert props[name].get("maximum") == spec.high, name
        if "default" in props[name] and spec.default is not None:
            assert props[name]["default"] == spec.default, name


# -- combinations the API refuses (GUIDE 18), refused before anything is sent ------------------------
@pytest.mark.parametrize("endpoint, params, match", [
    (CHAT, {"top_logprobs": 3}, "top_logprobs needs logprobs=True"),
    (CHAT, {"top_logprobs": 3, "logprobs": False}, "top_logprobs needs logprobs=True"),
    (CHAT, {"top_logprobs": 0}, "top_logprobs needs logprobs=True"),
    (CHAT, {"stream_options": {"include_usage": True}}, "stream_options works only with stream=True"),
    (COMPLETIONS, {"stream_options": {"include_usage": True}, "stream": False}, "stream_options works only"),
    (COMPLETIONS, {"best_of": 3, "stream": True}, "best_of cannot be streamed"),
    (COMPLETIONS, {"best_of": 2, "n": 3}, r"best_of \(2\) must be at least n \(3\)"),
    (COMPLETIONS, {"best_of": 1, "n": 2, "stream": True}, "best_of cannot be streamed"),
])
def test_combinations_the_api_refuses(client: Any, server: Any, endpoint: str, params: dict, match: str) -> None:
    refused(client, server, endpoint, match, **params)


@pytest.mark.parametrize("endpoint, params", [
    (CHAT, {"top_logprobs": 3, "logprobs": True}),
    (CHAT, {"stream_options": {"include_usage": False}, "stream": True}),
    (COMPLETIONS, {"best_of": 3, "n": 3}),
    (COMPLETIONS, {"best_of": 2}),
])
def test_the_allowed_combinations_are_sent(client: Any, server: Any, endpoint: str, params: dict) -> None:
    result = call(client, endpoint, **params)
    if params.get("stream"):
        result.read()
    body = server.requests[-1].body
    assert {k: body[k] for k in params if k != "stream"} == {k: v for k, v in params.items() if k != "stream"}


def test_check_params_knows_the_combinations_without_a_client() -> None:
    with pytest.raises(ConfigurationError, match="best_of cannot be streamed"):
        check_params(COMPLETIONS, {"best_of": 2}, stream=True)
    with pytest.raises(ConfigurationError, match="stream_options works only"):
        check_params(CHAT, {"stream_options": {}}, stream=False)
    assert check_params(CHAT, {"stream_options": {}}) == {"stream_options": {}}  # streaming not known here
