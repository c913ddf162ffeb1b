"""Tests of models as users meet them: the default model, a model that is not found, one model's
description on servers without ``GET /models/{id}``, and the model named in the status line and log.

``jupyter_openai.api.model_list`` is tested as pure functions; the rest over real sockets against the test
server (``strict_models``, the ``llama.cpp`` and ``llama-cpp-python`` profiles) and a
``ScriptedServer`` that answers under another model name, through the client and the magics.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.api import model_list as models
from jupyter_openai.calls.request import DEFAULT_MODEL
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import NotFoundError
from jupyter_openai.session.log import session_log
from tests.servers.fake import LOCAL_MODELS, TEST_KEY, FakeOpenAIServer
from tests.servers.scripted import chat_answer, sse
from tests.support.shown import answer_outputs, status

MESSAGES = [{"role": "user", "content": "one two three"}]
PROMPT = "one two three"
ANSWER = "Echo: three two one"
LLAMA_MODEL = LOCAL_MODELS[0]


def env(url: str) -> dict[str, str]:
    return {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": url}


def run(shell: Any, cell: str) -> capture_output:
    with capture_output() as cap:
        shell.run_cell(cell)
    return cap


def calls(server: FakeOpenAIServer) -> list[tuple[str, str]]:
    return [(r.method, r.path) for r in server.requests]


# -- pure ------------------------------------------------------------------------------------
def test_closest_puts_the_near_names_first_and_caps_the_count() -> None:
    listed = ["fake-chat", "gpt-5.4", "gpt-5.4-mini", "gpt-5.4-nano", "gpt-5.5", "gpt-4o-mini", "davinci-002"]
    assert models.closest("gpt-5.4-min", listed) == ["gpt-5.4-mini", "gpt-4o-mini", "gpt-5.4-nano", "gpt-5.4",
                                                     "gpt-5.5"]
    assert models.closest("GPT-5.4-MINI", listed, 1) == ["gpt-5.4-mini"]
    assert models.closest("zzz", listed, 2) == ["fake-chat", "gpt-5.4"]  # none close: the first listed
    assert models.closest("x", []) == []


@pytest.mark.parametrize(("listing", "expected"), [
    ({"object": "list", "data": [{"id": "a"}, {"id": ""}, {"id": 3}, "b", {"name": "c"}, {"id": "d"}]}, ["a", "d"]),
    ({"models": [{"name": "a"}], "data": [{"id": "a"}]}, ["a"]),  # llama-server's two lists
    ([{"id": "a"}], ["a"]), ({"data": "x"}, []), (None, []), ("text", []),
])
def test_ids_of_odd_listings(listing: Any, expected: list[str]) -> None:
    assert models.ids(listing) == expected


# -- the default model -------------------------------------------------------------------------
def test_no_model_configured_sends_the_servers_first_model(make_shell: Callable[..., Any],
                                                           make_server: Callable[..., FakeOpenAIServer]) -> None:
    server = make_server(models=("zeta-chat", "alpha-chat"))
    shell = make_shell(Config(), env(server.url))
    first = run(shell, f"%%complete\n{PROMPT}")
    run(shell, f"%complete {PROMPT}")
    assert calls(server) == [("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                             ("POST", "/v1/chat/completions")]
    assert [r.body["model"] for r in server.requests[1:]] == ["zeta-chat", "zeta-chat"]
    assert status(first).startswith("zeta-chat · 3 in / 4 out tokens · ")
    assert [(r["model"], r["requested_model"]) for r in session_log] == [("zeta-chat", "zeta-chat")] * 2
    shell.run_line_magic("config", "CompleteMagics.timeout = 7.0")  # new settings: a new client asks again
    run(shell, f"%complete {PROMPT}")
    assert calls(server)[3:] == [("GET", "/v1/models"), ("POST", "/v1/chat/completions")]


def test_a_configured_model_is_used_even_when_it_is_the_default(make_shell: Callable[..., Any],
                                                                server: FakeOpenAIServer) -> None:
    config = Config()
    config.CompleteMagics.model = DEFAULT_MODEL
    shell = make_shell(config)
    run(shell, f"%%complete\n{PROMPT}")
    assert [(r.method, r.body and r.body["model"]) for r in server.requests] == [("POST", DEFAULT_MODEL)]


def test_a_server_that_lists_nothing_gets_the_default_model(make_shell: Callable[..., Any],
                                                            make_server: Callable[..., FakeOpenAIServer]) -> None:
    server = make_server(models=(), strict_models=False)
    shell = make_shell(Config(), env(server.url))
    run(shell, f"%%complete\n{PROMPT}")
    run(shell, f"%%complete\n{PROMPT}")
    assert calls(server) == [("GET", "/v1/models")] + [("POST", "/v1/chat/completions")] * 2
    assert server.requests[-1].body["model"] == DEFAULT_MODEL


def test_a_failing_model_list_gets_the_default_model(make_shell: Callable[..., Any],
                                                     server: FakeOpenAIServer) -> None:
    server.add_fault(path="/v1/models", status=403)
    shell = make_shell(Config())
    run(shell, f"%%complete -e responses\n{PROMPT}")
    assert calls(server) == [("GET", "/v1/models"), ("POST", "/v1/responses")]
    assert server.requests[-1].body["model"] == DEFAULT_MODEL


def test_the_openai_host_keeps_the_default_without_asking(make_shell: Callable[..., Any],
                                                          server: FakeOpenAIServer) -> None:
    shell = make_shell(Config(), env("https://api.openai.com/v1"))
    magics = shell.magics_manager.registry["CompleteMagics"]
    assert magics.default_model() == DEFAULT_MODEL and magics.defaults()["model"] == DEFAULT_MODEL
    assert server.requests == []


# -- the model that answered -------------------------------------------------------------------
def _dated(method: str, path: str, body: Any) -> tuple[int, Any]:
    """OpenAI answers with the dated snapshot of the model asked for."""
    if body.get("stream"):
        chunk = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"] + "-2026-03-05",
                 "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}
        return 200, sse(chunk, {"id": "c1", "model": body["model"] + "-2026-03-05", "choices": [],
                                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}})
    return 200, chat_answer(body["model"] + "-2026-03-05", "hi")


@pytest.mark.parametrize("stream", ["", " --no-stream"], ids=["streamed", "plain"])
def test_status_line_and_log_name_both_models_when_they_differ(make_shell: Callable[..., Any], scripted: Any,
                                                               stream: str) -> None:
    scripted_server, _ = scripted(_dated)
    config = Config()
    config.CompleteMagics.model = "gpt-5.4-mini"
    shell = make_shell(config, env(scripted_server.url))
    cap = run(shell, f"%%complete{stream}\n{PROMPT}")
    assert status(cap).startswith("gpt-5.4-mini-2026-03-05 (asked for gpt-5.4-mini) · 1 in / 1 out tokens · ")
    record = session_log[-1]
    assert (record["model"], record["requested_model"], record["completion"]) == (
        "gpt-5.4-mini-2026-03-05", "gpt-5.4-mini", "hi")


# -- a model that is not found -----------------------------------------------------------------
def test_unknown_model_lists_the_closest_in_one_line(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    with pytest.raises(NotFoundError) as caught:
        client.chat("gpt-5.4-min", MESSAGES, stream=True)
    assert str(caught.value) == (
        "404 Not found: The model `gpt-5.4-min` does not exist or you do not have access to it. Available models "
        "closest to 'gpt-5.4-min': gpt-5.4-mini, gpt-4o-mini, gpt-5.4-nano, gpt-5.4, gpt-5.5 (code=model_not_found) "
        f"[request id {server.requests[0].request_id}]")
    assert calls(server) == [("POST", "/v1/chat/completions"), ("GET", "/v1/models")]


@pytest.mark.parametrize("endpoint", ["chat", "responses", "completions"])
def test_unknown_model_through_the_magic_is_one_line(shell: Any, server: FakeOpenAIServer, endpoint: str) -> None:
    cap = run(shell, f"%%complete -m gpt5-mini -e {endpoint}\n{PROMPT}")
    lines = cap.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in cap.stderr + cap.stdout
    assert lines[0].startswith("404 Not found: The model `gpt5-mini` does not exist")
    near = lines[0].split("Available models closest to 'gpt5-mini': ")[1].split(" (code=")[0].split(", ")
    assert len(near) == 5 and near[0] == "gpt-5.4-mini" and set(near) <= set(server.models)
    assert answer_outputs(cap) == [] and status(cap).startswith("gpt5-mini · ") and "tokens" not in status(cap)
    assert (session_log[-1]["status"], session_log[-1]["error"]) == ("error", lines[0])
    assert [m for m, _ in calls(server)] == ["POST", "GET"]


def test_a_short_list_names_every_model(make_server: Callable[..., FakeOpenAIServer]) -> None:
    server = make_server(models=("alpha", "beta"), strict_models=True)
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url) as short:
        with pytest.raises(NotFoundError, match=r"Available models closest to 'alpah': alpha, beta \(code="):
            short.chat("alpah", MESSAGES)


# -- one model's description without GET /models/{id} ------------------------------------------
@pytest.mark.parametrize("profile", ["llama.cpp", "llama-cpp-python"])
def test_retrieve_model_falls_back_to_the_list(make_server: Callable[..., FakeOpenAIServer], profile: str) -> None:
    server = make_server(profile=profile)
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0) as local:
        entry = local.retrieve_model(LLAMA_MODEL)
        assert entry == local.list_models()[0] and entry["id"] == LLAMA_MODEL
        assert calls(server)[:2] == [("GET", f"/v1/models/{LLAMA_MODEL}"), ("GET", "/v1/models")]
        server.reset()
        with pytest.raises(NotFoundError) as caught:
            local.retrieve_model("SmolLM2-360M")
    assert str(caught.value) == (f"404 Not found: The server lists no model 'SmolLM2-360M'. Available models "
                                 f"closest to 'SmolLM2-360M': {LLAMA_MODEL} "
                                 f"[request id {server.requests[0].request_id}]")


def test_complete_models_id_on_llama_server(make_shell: Callable[..., Any],
                                            make_server: Callable[..., FakeOpenAIServer]) -> None:
    server = make_server(profile="llama.cpp")
    shell = make_shell(Config(), env(server.url))
    with capture_output():
        table = shell.run_cell(f"%complete_models {LLAMA_MODEL}").result
    assert table.columns == ["id", "owned_by", "created", "aliases", "meta", "tags"]
    (row,) = table.rows
    assert (row["id"], row["owned_by"], row["created"], row["meta"]["n_ctx"]) == (
        LLAMA_MODEL, "llamacpp", "2023-11-14", 2048)
    cap = run(shell, "%complete_models SmolLM2-360M")
    assert cap.stderr.startswith("404 Not found: The server lists no model 'SmolLM2-360M'.")
    assert cap.stderr.count("\n") == 1 and cap.outputs == [] and "File Not Found" not in cap.stderr
