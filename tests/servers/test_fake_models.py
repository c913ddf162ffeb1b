"""Tests of the fake server's model families and profiles (``fakeserver_models``): GPT-5 rejections,
reasoning and refusal answers, model_not_found, the llama.cpp / llama-cpp-python profiles; over real
sockets, checked against the reference chat schema and read back with the official SDK."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.servers.fake import DEFAULT_MODELS, TEST_KEY, FakeOpenAIServer
from tests.servers.fake.models import GPT5_EFFORTS, GPT5_REASONING_TOKENS, REFUSAL_TEXT, reasoning_text
from tests.support.checks import SUBSET, checker, load_components, sse_data
from tests.support.keys import AUTH

MESSAGES = [{"role": "user", "content": "one two three"}]
REASONING = reasoning_text("one two three")  # "The user wrote 3 words. I will echo them in reverse order."

ROOT = Path(__file__).resolve().parents[2]  #: the repository: ``python -m tests.servers.fake`` runs from it


@pytest.fixture(scope="module")
def schema_check():
    return checker(load_components(SUBSET))


def chat(post: Any, model: str, **body: Any) -> requests.Response:
    return post("/chat/completions", model=model, messages=MESSAGES, **body)


def streamed(post: Any, model: str, **body: Any) -> list[dict]:
    r = chat(post, model, stream=True, **body)
    assert r.status_code == 200, r.text
    events = sse_data(r.content)
    assert events[-1] == "[DONE]"
    return [json.loads(e) for e in events[:-1]]


def test_new_models_are_listed_and_old_ones_kept(server: FakeOpenAIServer, post: Any) -> None:
    assert DEFAULT_MODELS[:4] == ("fake-chat", "fake-instruct", "gpt-3.5-turbo-instruct", "gpt-4o-mini")
    for model in ("gpt-5.4-mini", "gpt-5.4", "gpt-5.4-nano", "gpt-5.5", "fake-reasoner", "fake-reasoner-ollama",
                  "fake-refuser"):
        assert model in server.models
    r = requests.get(server.url + "/models/gpt-5.5", headers=AUTH)
    assert r.json() == {"id": "gpt-5.5", "object": "model", "created": 1700000000, "owned_by": "fake"}


# ---------------------------------------------------------------- GPT-5 (GUIDE §10)

def test_gpt5_rejects_max_tokens_with_the_exact_body(post: Any, schema_check: Any) -> None:
    r = chat(post, "gpt-5.4-mini", max_tokens=50)
    assert r.status_code == 400
    assert r.json() == {"error": {
        "message": "Unsupported parameter: 'max_tokens' is not supported with this model. "
                   "Use 'max_completion_tokens' instead.",
        "type": "invalid_request_error", "param": "max_tokens", "code": "unsupported_parameter"}}
    schema_check("ErrorResponse", r.json())


@pytest.mark.parametrize("name,value,message", [
    ("temperature", 0.2, "Unsupported value: 'temperature' does not support 0.2 with this model. "
                         "Only the default (1) value is supported."),
    ("temperature", 0, "Unsupported value: 'temperature' does not support 0 with this model. "
                       "Only the default (1) value is supported."),
    ("temperature", 0.0, "Unsupported value: 'temperature' does not support 0.0 with this model. "
                         "Only the default (1) value is supported."),
    ("top_p", 0.5, "Unsupported value: 'top_p' does not support 0.5 with this model. "
                   "Only the default (1) value is supported."),
    ("presence_penalty", 0.5, "Unsupported value: 'presence_penalty' does not support 0.5 with this model. "
                              "Only the default (0) value is supported."),
    ("frequency_penalty", -1, "Unsupported value: 'frequency_penalty' does not support -1 with this model. "
                              "Only the default (0) value is supported."),
    ("reasoning_effort", "max", "Unsupported value: 'reasoning_effort' does not support 'max' with this model. "
                                "Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'."),
    ("reasoning_effort", "huge", "Unsupported value: 'reasoning_effort' does not support 'huge' with this "
                                 "model. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and "
                                 "'xhigh'."),
])
def test_gpt5_rejects_unsupported_values(post: Any, schema_check: Any, name: str, value: Any, message: str) -> None:
    r = chat(post, "gpt-5.4", **{name: value})
    assert r.status_code == 400
    assert r.json() == {"error": {"message": message, "type": "invalid_request_error", "param": name,
                                  "code": "unsupported_value"}}
    schema_check("ErrorResponse", r.json())


@pytest.mark.parametrize("body,param", [({"logprobs": True}, "logprobs"),
                                        ({"logprobs": True, "top_logprobs": 2}, "logprobs"),
                                        ({"top_logprobs": 0}, "top_logprobs")])
def test_gpt5_rejects_logprobs(post: Any, body: dict, param: str) -> None:
    r = chat(post, "gpt-5.5", **body)
    assert r.status_code == 400 and r.json() == {"error": {
        "message": f"Unsupported parameter: '{param}' is not supported with this model.",
        "type": "invalid_request_error", "param": param, "code": "unsupported_parameter"}}


def test_gpt5_accepts_defaults_and_its_own_fields(post: Any, schema_check: Any) -> None:
    body = {"temperature": 1, "top_p": 1.0, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False,
            "max_completion_tokens": 100, "verbosity": "low", "reasoning_effort": "high"}
    r = chat(post, "gpt-5.4-nano", **body)
    assert r.status_code == 200, r.text
    schema_check("CreateChatCompletionResponse", r.json())
    assert r.json()["choices"][0]["message"] == {"role": "assistant", "content": "Echo: three two one",
                                                 "refusal": None}
    assert r.json()["usage"] == {"prompt_tokens": 3, "completion_tokens": 4 + 16, "total_tokens": 23,
                                 "completion_tokens_details": {"reasoning_tokens": 16}}


@pytest.mark.parametrize("effort", [None, *GPT5_EFFORTS])
def test_gpt5_reasoning_tokens_follow_the_effort(post: Any, effort: str | None) -> None:
    usage = chat(post, "gpt-5.4", **({} if effort is None else {"reasoning_effort": effort})).json()["usage"]
    expected = GPT5_REASONING_TOKENS[effort or "medium"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": expected}
    assert usage["completion_tokens"] == 4 + expected
    assert (expected > 0) == (effort != "none")


def test_gpt5_reasoning_counts_against_max_completion_tokens(post: Any) -> None:
    r = chat(post, "gpt-5.4", max_completion_tokens=10).json()  # 8 reasoning tokens leave 2 visible
    assert (r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]) == ("Echo: three", "length")
    r = chat(post, "gpt-5.4", max_completion_tokens=5).json()  # all spent on reasoning: an empty answer
    assert (r["choices"][0]["message"]["content"], r["choices"][0]["finish_reason"]) == ("", "length")
    assert r["usage"]["completion_tokens_details"] == {"reasoning_tokens": 5}


def test_gpt5_stream_usage_has_reasoning_tokens(post: Any, schema_check: Any) -> None:
    chunks = streamed(post, "gpt-5.4-mini", stream_options={"include_usage": True}, reasoning_effort="low")
    for c in chunks:
        schema_check("CreateChatCompletionStreamResponse", c)
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 4}


def test_other_models_keep_max_tokens_and_sampling(post: Any) -> None:
    r = chat(post, "gpt-4o-mini", max_tokens=2, temperature=0.2, top_p=0.5, logprobs=True, top_logprobs=2)
    assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Echo: three"
    assert "completion_tokens_details" not in r.json()["usage"]
    r = chat(post, "fake-chat", verbosity="loud")  # the schema's enum holds for every model
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_value"
    assert r.json()["error"]["param"] == "verbosity"


# ---------------------------------------------------------------- reasoning text (GUIDE §10)

@pytest.mark.parametrize("model,field", [("fake-reasoner", "reasoning_content"), ("fake-reasoner-ollama", "reasoning")])
def test_reasoner_answers_with_reasoning_first(post: Any, schema_check: Any, model: str, field: str) -> None:
    r = chat(post, model).json()
    schema_check("CreateChatCompletionResponse", r)
    message = r["choices"][0]["message"]
    assert (message["content"], message[field]) == ("Echo: three two one", REASONING)
    assert r["usage"] == {"prompt_tokens": 3, "completion_tokens": 4 + 12, "total_tokens": 19,
                          "completion_tokens_details": {"reasoning_tokens": 12}}
    chunks = streamed(post, model, stream_options={"include_usage": True})
    for c in chunks:
        schema_check("CreateChatCompletionStreamResponse", c)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    kinds = ["reasoning" if field in d else "content" for d in deltas[1:-1]]
    assert kinds == ["reasoning"] * 12 + ["content"] * 4  # all the reasoning, then all the answer
    assert "".join(d.get(field, "") for d in deltas) == REASONING
    assert "".join(d.get("content") or "" for d in deltas) == "Echo: three two one"
    assert chunks[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 12}
    other = "reasoning" if field == "reasoning_content" else "reasoning_content"
    assert not any(other in d for d in deltas)


def test_ollama_reasoning_deltas_carry_an_empty_content(post: Any) -> None:
    deltas = [c["choices"][0]["delta"] for c in streamed(post, "fake-reasoner-ollama")]
    assert deltas[1] == {"role": "assistant", "content": "", "reasoning": "The"}
    assert streamed(post, "fake-reasoner")[1]["choices"][0]["delta"] == {"reasoning_content": "The"}


def test_reasoner_budget_spends_reasoning_first(post: Any) -> None:
    r = chat(post, "fake-reasoner", max_completion_tokens=5).json()
    message = r["choices"][0]["message"]
    assert (message["reasoning_content"], message["content"]) == ("The user wrote 3 words.", "")
    assert r["choices"][0]["finish_reason"] == "length"


# ---------------------------------------------------------------- refusals (chat schema ``refusal``)

def test_refuser_refuses(post: Any, schema_check: Any) -> None:
    r = chat(post, "fake-refuser").json()
    schema_check("CreateChatCompletionResponse", r)
    assert r["choices"][0]["message"] == {"role": "assistant", "content": None, "refusal": REFUSAL_TEXT}
    assert r["choices"][0]["finish_reason"] == "stop"
    chunks = streamed(post, "fake-refuser")
    for c in chunks:
        schema_check("CreateChatCompletionStreamResponse", c)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas[0] == {"role": "assistant", "content": None, "refusal": ""}
    assert all(set(d) == {"refusal"} for d in deltas[1:-1]) and deltas[-1] == {}
    assert "".join(d.get("refusal") or "" for d in deltas) == REFUSAL_TEXT


# ---------------------------------------------------------------- model_not_found

NOT_FOUND = {"error": {"message": "The model `gpt-9` does not exist or you do not have access to it.",
                       "type": "invalid_request_error", "param": None, "code": "model_not_found"}}


@pytest.mark.parametrize("path,body", [
    ("/chat/completions", {"messages": MESSAGES}), ("/completions", {"prompt": "x"}), ("/responses", {"input": "x"}),
])
def test_unknown_model_is_404_everywhere(post: Any, schema_check: Any, path: str, body: dict) -> None:
    r = post(path, model="gpt-9", **body)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)
    schema_check("ErrorResponse", r.json())


def test_unknown_model_retrieve_is_404(server: FakeOpenAIServer) -> None:
    r = requests.get(server.url + "/models/gpt-9", headers=AUTH)
    assert (r.status_code, r.json()) == (404, NOT_FOUND)


def test_strict_models_off_accepts_any_name() -> None:
    with FakeOpenAIServer(strict_models=False, models=("only-one",)) as srv:
        for path, body in (("/chat/completions", {"messages": MESSAGES}), ("/completions", {"prompt": "a b"}),
                           ("/responses", {"input": "a b"})):
            r = requests.post(srv.url + path, json={"model": "gpt-9", **body}, headers=AUTH)
            assert r.status_code == 200 and r.json()["model"] == "gpt-9"
        r = requests.get(srv.url + "/models/gpt-9", headers=AUTH)
        assert r.status_code == 200 and r.json()["id"] == "gpt-9"
        # families are decided by name, listed or not
        r = requests.post(srv.url + "/chat/completions", json={"model": "gpt-5.9", "messages": MESSAGES,
                                                               "max_tokens": 3}, headers=AUTH)
        assert r.json()["error"]["code"] == "unsupported_parameter"


# ---------------------------------------------------------------- profiles (GUIDE §4, §12)

def test_llama_cpp_profile_has_no_model_route() -> None:
    with FakeOpenAIServer(profile="llama.cpp") as srv:
        assert srv.models == ("SmolLM2-135M-Instruct.Q4_1.gguf",) and not srv.strict_models
        r = requests.get(srv.url + "/models", headers=AUTH).json()
        assert [m["id"] for m in r["data"]] == ["SmolLM2-135M-Instruct.Q4_1.gguf"] and r["object"] == "list"
        assert r["data"][0]["owned_by"] == "llamacpp" and "n_ctx_train" in r["data"][0]["meta"]
        assert r["models"][0]["name"] == r["models"][0]["model"] == "SmolLM2-135M-Instruct.Q4_1.gguf"
        for name in ("SmolLM2-135M-Instruct.Q4_1.gguf", "fake-chat"):
            r = requests.get(srv.url + "/models/" + name, headers=AUTH)
            assert r.status_code == 404
            assert r.json() == {"error": {"message": "File Not Found", "type": "not_found_error", "code": 404}}
        r = requests.post(srv.url + "/chat/completions", json={"model": "anything", "messages": MESSAGES},
                          headers=AUTH)  # the model name in requests is ignored (GUIDE §12)
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"] == "Echo: three two one"
        assert requests.post(srv.url + "/responses", json={"model": "x", "input": "a"}, headers=AUTH).ok
        assert requests.post(srv.url + "/embeddings", json={}, headers=AUTH).json()["error"]["code"] == 404


def test_llama_cpp_python_profile() -> None:
    with FakeOpenAIServer(profile="llama-cpp-python", models=("smol",)) as srv:
        r = requests.get(srv.url + "/models", headers=AUTH).json()
        assert r == {"object": "list", "data": [{"id": "smol", "object": "model", "owned_by": "me",
                                                  "permissions": []}]}
        for method, path in (("GET", "/models/smol"), ("POST", "/responses")):
            r = requests.request(method, srv.url + path, json={"model": "smol", "input": "a"}, headers=AUTH)
            assert (r.status_code, r.json()) == (404, {"detail": "Not Found"})


def test_cli_profile_lenient_and_coalesce_flags() -> None:
    for flags, check in (
        (["--profile", "llama.cpp"], lambda url: requests.get(url + "/models/x").status_code == 404),
        (["--lenient-models", "--coalesce", "--models", "m1"],
         lambda url: requests.post(url + "/chat/completions", json={"model": "gpt-9", "messages": MESSAGES}).ok),
    ):
        proc = subprocess.Popen([sys.executable, "-m", "tests.servers.fake", "--port", "0", "--no-auth", *flags],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            url = proc.stdout.readline().split()[1]
            assert check(url), flags
        finally:
            proc.terminate()
            proc.communicate(timeout=5)


def test_unknown_profile_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        FakeOpenAIServer(profile="vllm")


# ---------------------------------------------------------------- the official SDK reads these answers

def test_official_sdk_reads_reasoning_and_refusals(server: FakeOpenAIServer) -> None:
    openai = pytest.importorskip("openai")
    with openai.OpenAI(base_url=server.url, api_key=TEST_KEY, max_retries=0) as client:
        r = client.chat.completions.create(model="fake-reasoner", messages=MESSAGES)
        message = r.choices[0].message
        assert message.content == "Echo: three two one" and message.model_extra["reasoning_content"] == REASONING
        assert r.usage.completion_tokens_details.reasoning_tokens == 12
        chunks = list(client.chat.completions.create(model="fake-reasoner-ollama", messages=MESSAGES, stream=True))
        deltas = [c.choices[0].delta for c in chunks if c.choices]
        assert "".join((d.model_extra or {}).get("reasoning", "") for d in deltas) == REASONING
        assert "".join(d.content or "" for d in deltas) == "Echo: three two one"
        refused = client.chat.completions.create(model="fake-refuser", messages=MESSAGES).choices[0].message
        assert (refused.content, refused.refusal) == (None, REFUSAL_TEXT)
        chunks = list(client.chat.completions.create(model="fake-refuser", messages=MESSAGES, stream=True))
        assert "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices) == REFUSAL_TEXT
        r = client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, max_completion_tokens=50,
                                           reasoning_effort="minimal", verbosity="low")
        assert r.usage.completion_tokens_details.reasoning_tokens == 2
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="gpt-5.4", messages=MESSAGES, temperature=0.2)
        assert exc.value.code == "unsupported_value" and exc.value.param == "temperature"
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="gpt-9", messages=MESSAGES)
