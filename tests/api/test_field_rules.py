"""Tests of ``jupyter_openai.api.field_rules``: a 400 naming a field the model does not take is retried once
without it (``max_tokens`` renamed ``max_completion_tokens``), the rule is remembered per model, and
the user gets one note line; a 400 naming no field stays an error.

The rules are unit-tested on :class:`FieldRules`; the behaviour over real sockets against the test
server's GPT-5 models (OpenAI's exact error bodies, GUIDE 10), through the client and through
``%%complete``; hostile and unusual servers are played by a ``ScriptedServer`` (the ``scripted`` fixture).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from IPython.utils.capture import capture_output

import jupyter_openai.client
from jupyter_openai.api.field_rules import FieldRules, refused_field, takes_max_completion_tokens
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import APIStatusError, BadRequestError, one_line
from jupyter_openai.session.log import session_log
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.servers.fake import errors as fake_errors
from tests.servers.fake import models as fake_models
from tests.servers.scripted import chat_answer
from tests.support.shown import answer_outputs, notes, status

MESSAGES = [{"role": "user", "content": "one two three"}]
ANSWER = "Echo: three two one"
TEMPERATURE_NOTE = "Note: gpt-5.4-mini does not accept temperature=0.2: sent without it"
REMEMBERED = " (remembered for this session)"


def bad_request(message: Any, param: Any = None, code: Any = None) -> BadRequestError:
    return BadRequestError(400, message, param=param, code=code)


def posts(server: FakeOpenAIServer) -> list[dict]:
    return [r.body for r in server.requests if r.method == "POST"]


# -- which field a 400 refuses (pure) -------------------------------------------------------
@pytest.mark.parametrize(("error", "expected"), [
    (bad_request("Unsupported parameter: 'max_tokens' is not supported with this model.", "max_tokens",
                 "unsupported_parameter"), "max_tokens"),
    (bad_request("Unsupported value: 'temperature' does not support 0.2 with this model.", "temperature",
                 "unsupported_value"), "temperature"),
    (bad_request("Unrecognized request argument supplied: top_p 'top_p'"), "top_p"),  # a gateway: no code
    (bad_request("extra inputs are not permitted: 'verbosity'"), "verbosity"),
    (bad_request("Invalid value for 'temperature': must be at most 2"), None),  # the user's to fix
    (bad_request("Bad request (injected fault)."), None),
    (bad_request("Unsupported parameter: 'messages'", "messages", "unsupported_parameter"), None),  # never dropped
    (bad_request("Unsupported parameter: 'seed'", "seed", "unsupported_parameter"), None),  # not in the body
    (APIStatusError(404, "Unsupported parameter", param="temperature", code="unsupported_parameter"), None),
])
def test_refused_field(error: APIStatusError, expected: str | None) -> None:
    body = {"model": "m", "messages": [], "max_tokens": 5, "temperature": 0.2, "top_p": 0.5, "verbosity": "low"}
    assert refused_field(error, body) == expected


@pytest.mark.parametrize("odd", [["temperature"], {"name": "temperature"}, 400, True, 0.5, None])
def test_refused_field_takes_fields_of_any_json_type(odd: Any) -> None:
    body = {"model": "m", "messages": [], "temperature": 0.2}
    assert refused_field(bad_request("nothing to see", odd, odd), body) is None
    assert refused_field(bad_request(["not", "a", "string"], odd, odd), body) is None
    assert refused_field(bad_request("Unsupported parameter: 'temperature'", odd, odd), body) == "temperature"


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-5.4-mini", True), ("gpt-5", True), ("gpt-5.5-pro", True), ("openai/gpt-5.4-mini", True),
    ("o3-mini", True), ("o1", True), ("GPT-5.4", True),
    ("gpt-4o-mini", False), ("fake-chat", False), ("gpt-50", False), ("ollama-model", False), ("", False),
])
def test_reasoning_models_by_name(model: str, expected: bool) -> None:
    assert takes_max_completion_tokens(model) is expected


# -- what the rules change (pure) -----------------------------------------------------------
def test_learn_renames_max_tokens_and_remembers_it_for_that_model_only() -> None:
    rules, body = FieldRules(), {"model": "m", "max_tokens": 9}
    error = bad_request("Unsupported parameter: 'max_tokens'", "max_tokens", "unsupported_parameter")
    note = rules.learn("m", error, body)
    renamed = "Note: m takes max_completion_tokens instead of max_tokens: sent max_completion_tokens=9"
    assert note == renamed + REMEMBERED
    assert body == {"model": "m", "max_completion_tokens": 9}
    later, other = {"model": "m", "max_tokens": 3}, {"model": "n", "max_tokens": 3}
    assert rules.apply("m", later) == ["Note: m takes max_completion_tokens instead of max_tokens: "
                                       "sent max_completion_tokens=3"]
    assert later == {"model": "m", "max_completion_tokens": 3}
    assert rules.apply("n", other) == [] and other == {"model": "n", "max_tokens": 3}


def test_learn_drops_an_unsupported_value_and_logprobs_takes_top_logprobs_along() -> None:
    rules, body = FieldRules(), {"model": "m", "logprobs": True, "top_logprobs": 2, "max_tokens": 4}
    note = rules.learn("m", bad_request("x", "logprobs", "unsupported_value"), body)
    assert note == "Note: m does not accept logprobs=True: sent without it" + REMEMBERED
    assert body == {"model": "m", "max_tokens": 4}


def test_a_field_refused_under_both_names_is_dropped() -> None:
    rules, body = FieldRules(), {"model": "m", "max_tokens": 9}
    rules.learn("m", bad_request("x", "max_tokens", "unsupported_parameter"), body)
    note = rules.learn("m", bad_request("x", "max_completion_tokens", "unsupported_parameter"), body)
    assert note == "Note: m does not accept max_completion_tokens=9: sent without it" + REMEMBERED
    assert body == {"model": "m"}
    later = {"model": "m", "max_tokens": 5}
    rules.apply("m", later)
    assert later == {"model": "m"}


# -- GPT-5 on chat through the client, over sockets -----------------------------------------
def test_gpt5_temperature_is_retried_once_without_it_then_remembered(client: OpenAIClient,
                                                                    server: FakeOpenAIServer) -> None:
    result = client.chat("gpt-5.4-mini", MESSAGES, temperature=0.2, max_tokens=50)
    assert (result.text, result.notes) == (ANSWER, [TEMPERATURE_NOTE + REMEMBERED])
    first, second = posts(server)
    assert (first["temperature"], first["max_completion_tokens"], "max_tokens" in first) == (0.2, 50, False)
    assert second == {"model": "gpt-5.4-mini", "messages": MESSAGES, "max_completion_tokens": 50}
    assert result.sent == {"max_completion_tokens": 50}
    server.reset()
    again = client.chat("gpt-5.4-mini", MESSAGES, temperature=0.2, max_tokens=50, stream=True).read()
    assert (again.text, again.status, again.notes) == (ANSWER, "ok", [TEMPERATURE_NOTE])
    assert len(posts(server)) == 1 and "temperature" not in posts(server)[0]


def test_the_rule_belongs_to_one_model(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    client.chat("gpt-5.4-mini", MESSAGES, temperature=0.2)
    server.reset()
    result = client.chat("gpt-5.4", MESSAGES, temperature=0.2)
    assert len(posts(server)) == 2 and result.notes == [
        "Note: gpt-5.4 does not accept temperature=0.2: sent without it" + REMEMBERED]


def test_several_refused_fields_cost_at_most_one_extra_request_per_call(client: OpenAIClient,
                                                                        server: FakeOpenAIServer) -> None:
    """Issue 11: at most one extra request per call. OpenAI names one refused field per 400, so a call
    with three learns one rule, fails on the next field in one line, and the session's later calls
    apply what was learnt before sending."""
    fields = {"temperature": 0.2, "top_p": 0.5, "presence_penalty": 1.0}
    for learnt, refused_next in (("temperature", "top_p"), ("top_p", "presence_penalty")):
        server.reset()
        with pytest.raises(BadRequestError, match=refused_next):
            client.chat("gpt-5.4-nano", MESSAGES, stream=True, **fields)
        assert len(posts(server)) == 2 and learnt not in posts(server)[-1]
    server.reset()
    result = client.chat("gpt-5.4-nano", MESSAGES, stream=True, **fields)
    assert result.read().text == ANSWER and len(posts(server)) == 2
    assert [n.split(":")[1].strip() for n in result.notes] == [
        "gpt-5.4-nano does not accept temperature=0.2", "gpt-5.4-nano does not accept top_p=0.5",
        "gpt-5.4-nano does not accept presence_penalty=1.0"]
    server.reset()
    client.chat("gpt-5.4-nano", MESSAGES, **fields)
    assert len(posts(server)) == 1 and not set(fields) & set(posts(server)[0])


def test_openai_host_gets_max_completion_tokens_from_the_first_request(
        server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jupyter_openai.client, "is_openai_host", lambda url: True)
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url) as openai_client:
        result = openai_client.chat("fake-chat", MESSAGES, max_tokens=7)
    assert result.notes == [] and posts(server) == [{"model": "fake-chat", "messages": MESSAGES,
                                                     "max_completion_tokens": 7}]


def test_other_hosts_keep_max_tokens_for_other_models(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    client.chat("fake-chat", MESSAGES, max_tokens=7)
    assert posts(server)[0]["max_tokens"] == 7 and "max_completion_tokens" not in posts(server)[0]


def test_max_tokens_is_renamed_on_retry_for_a_deployment_name(scripted: Any) -> None:
    """An Azure-style deployment name hides the GPT-5 model: the server's answer decides."""
    def deployment(method: str, path: str, body: Any) -> tuple[int, Any]:
        try:
            fake_models.check_gpt5_chat(body)  # OpenAI's exact 400 bodies
        except fake_errors.ApiError as refused:
            return refused.status, refused.body()
        return 200, chat_answer("gpt-5.4-mini-2026-03-05", "hi")

    server, client = scripted(deployment)
    result = client.chat("prod-chat", MESSAGES, max_tokens=40)
    assert result.text == "hi" and [b.get("max_tokens") for b in server.bodies] == [40, None]
    assert server.bodies[1]["max_completion_tokens"] == 40
    assert result.notes == ["Note: prod-chat takes max_completion_tokens instead of max_tokens: "
                            "sent max_completion_tokens=40" + REMEMBERED]
    client.chat("prod-chat", MESSAGES, max_tokens=40)
    assert len(server.bodies) == 3 and "max_tokens" not in server.bodies[2]


def test_a_server_refusing_both_length_names_gets_neither(scripted: Any) -> None:
    def strict(method: str, path: str, body: Any) -> tuple[int, Any]:
        for name in ("max_tokens", "max_completion_tokens"):
            if name in body:
                return 400, fake_errors.unsupported_parameter(name).body()
        return 200, chat_answer(body["model"], "ok")

    server, client = scripted(strict)
    with pytest.raises(BadRequestError, match="max_completion_tokens"):  # renamed, refused again: one extra only
        client.chat("n-predict-only", MESSAGES, max_tokens=12)
    assert len(server.bodies) == 2
    assert client.chat("n-predict-only", MESSAGES, max_tokens=12).text == "ok"  # the rename applied, then dropped
    assert len(server.bodies) == 4
    client.chat("n-predict-only", MESSAGES, max_tokens=12)
    assert len(server.bodies) == 5 and set(server.bodies[4]) == {"model", "messages"}


# -- what stays an error ---------------------------------------------------------------------
def test_a_400_naming_no_field_is_not_retried(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", status=400)
    with pytest.raises(BadRequestError, match=r"^400 Bad request: Bad request \(injected fault\)\."):
        client.chat("gpt-5.4-mini", MESSAGES, temperature=0.2)
    assert len(posts(server)) == 1


def test_an_invalid_value_is_not_retried(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(BadRequestError, match="Invalid value: 'extreme'"):
        client.chat("fake-chat", MESSAGES, extra_body={"reasoning_effort": "extreme"})
    assert len(posts(server)) == 1


HOSTILE = [
    {"error": {"message": "Unsupported thing", "type": 1, "param": ["temperature"], "code": {"a": 1}}},
    {"error": {"message": ["Unsupported", "parameter"], "param": {"temperature": 1}, "code": ["unsupported_value"]}},
    {"error": {"message": "Unsupported value", "param": 7, "code": True}},
    {"error": {"message": None, "param": None, "code": None}},
    {"error": ["unsupported_parameter", "temperature"]},
    ["Unsupported parameter: temperature"],
    "Unsupported value",
    12,
]


@pytest.mark.parametrize("body", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_400_bodies_stay_one_line_errors(scripted: Any, body: Any) -> None:
    server, client = scripted(lambda method, path, request: (400, body))
    with pytest.raises(BadRequestError) as caught:
        client.chat("gpt-5.4-mini", MESSAGES, temperature=0.2)
    assert str(caught.value).startswith("400 Bad request: ") and one_line(caught.value, 10_000) == str(caught.value)
    assert len(server.bodies) == 1


# -- GPT-5 through %%complete -----------------------------------------------------------------
def test_magic_gpt5_with_temperature_succeeds_with_one_note(shell: Any, server: FakeOpenAIServer) -> None:
    with capture_output() as cap:
        shell.run_cell("%%complete -m gpt-5.4-mini -t 0.2\none two three")
    assert notes(cap) == [TEMPERATURE_NOTE + REMEMBERED] and cap.stderr == ""  # a note: muted, not red
    assert status(cap).startswith("gpt-5.4-mini · 3 in / 12 out tokens (8 reasoning) · ")
    assert answer_outputs(cap)[-1].data == {"text/markdown": ANSWER, "text/plain": ANSWER}
    assert len(posts(server)) == 2 and posts(server)[0]["temperature"] == 0.2
    record = session_log[-1]
    assert (record["status"], record["completion"]) == ("ok", ANSWER)
    assert json.loads(record["params"]) == {"max_completion_tokens": 256, "stream": True}
    server.reset()
    with capture_output() as cap:
        shell.run_cell("%%complete -m gpt-5.4-mini -t 0.2\none two three")
    assert notes(cap) == [TEMPERATURE_NOTE] and len(posts(server)) == 1
    assert json.loads(session_log[-1]["params"]) == {"max_completion_tokens": 256, "stream": True}


def test_magic_responses_endpoint_drops_the_temperature_too(shell: Any, server: FakeOpenAIServer) -> None:
    with capture_output() as cap:
        shell.run_cell("%%complete -m gpt-5.4 -e responses -t 0.2 --no-stream\none two three")
    assert notes(cap) == ["Note: gpt-5.4 does not accept temperature=0.2: sent without it" + REMEMBERED]
    assert [r.path for r in server.requests] == ["/v1/responses"] * 2
    assert json.loads(session_log[-1]["params"]) == {"max_output_tokens": 256, "store": False}
