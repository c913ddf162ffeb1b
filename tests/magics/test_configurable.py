"""Tests of the magics' configuration (``jupyter_openai.magics.configurable``) that reach the wire: the
``store`` trait and the ``--store`` option, in a real shell over real HTTP to the test server; and the
offline model's sampling defaults (issue 22, item 8), which apply only when calls go to the bundled model
and the user has set nothing (``%config`` and a call's options win).

The Responses API keeps every response on OpenAI's servers unless a request says ``store: false``
(CreateResponse.store defaults to true; GUIDE 18): ``%%complete`` and ``%%chat`` say so on every Responses
request, unless the trait or the option asks to store. The form is tested in tests/widgets, the Batch API's
lines in tests/batch/test_openai_batch.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_openai.calls.request import build_request
from jupyter_openai.magics.configurable import OFFLINE_DEFAULTS, ConfiguredMagics
from tests.servers.fake import FakeOpenAIServer
from tests.support.cells import run
from tests.support.checks import checker, oneof_to_anyof, responses_components

PROMPT = "one two three"


@pytest.fixture(scope="module")
def create_response():
    pytest.importorskip("jsonschema")
    check = checker(oneof_to_anyof(responses_components()))
    return lambda body: check("CreateResponse", body)


def last_store(server: FakeOpenAIServer, create_response) -> object:
    record = server.requests[-1]
    assert record.path == "/v1/responses"
    create_response(record.body)
    return record.body.get("store", "absent")


@pytest.mark.parametrize("magic", ["complete", "chat"])
def test_responses_calls_send_store_false_unless_asked(shell: InteractiveShell, server: FakeOpenAIServer,
                                                       create_response, magic: str) -> None:
    """Before: no store field, so OpenAI kept every response; ``--store`` and the trait did not exist."""
    run(shell, f"%%{magic} -e responses --no-stream\n{PROMPT}")
    assert last_store(server, create_response) is False and server.stored == []
    run(shell, f"%%{magic} -e responses --store\n{PROMPT}")
    assert last_store(server, create_response) is True and len(server.stored) == 1
    shell.run_line_magic("config", "CompleteMagics.store = True")
    run(shell, f"%%{magic} -e responses\n{PROMPT}")
    assert last_store(server, create_response) is True and len(server.stored) == 2
    shell.run_line_magic("config", "CompleteMagics.store = False")
    run(shell, f"%%{magic} -e responses\n{PROMPT}")
    assert last_store(server, create_response) is False and len(server.stored) == 2


def test_the_store_trait_leaves_chat_alone_and_the_option_names_its_endpoint(shell: InteractiveShell,
                                                                             server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", "CompleteMagics.store = True")
    run(shell, f"%%complete -e chat\n{PROMPT}")
    assert "store" not in server.requests[-1].body  # chat completions store nothing by default
    with pytest.raises(UsageError, match="--store works with the responses endpoint only"):
        run(shell, f"%%complete -e chat --store\n{PROMPT}")
    assert len(server.requests) == 1


def test_the_trait_is_documented_and_false_by_default() -> None:
    trait = ConfiguredMagics.class_traits()["store"]
    assert trait.default_value is False and trait.metadata.get("config") is True
    assert "store: false" in trait.help


# -- the offline model's sampling defaults ------------------------------------------
def _magics(shell: Any) -> Any:
    return shell.magics_manager.registry["CompleteMagics"]


def test_offline_calls_get_the_measured_sampling(make_shell: Any) -> None:
    magics = _magics(make_shell(env={}))  # no key, no base URL: the bundled model (not started here)
    assert magics.offline()
    defaults = magics.defaults()
    assert {name: defaults[name] for name in OFFLINE_DEFAULTS} == OFFLINE_DEFAULTS
    assert OFFLINE_DEFAULTS["temperature"] < 0.8  # below the llama-cpp-python server's own default
    request = build_request({"prompt": "What is my name?"}, defaults)
    assert request.params["temperature"] == OFFLINE_DEFAULTS["temperature"]
    assert "top_p" not in request.params and request.system is None  # measured: the server's own serve best
    assert build_request({"prompt": "x", "temperature": 1.3}, defaults).params["temperature"] == 1.3  # options win


def test_the_users_configuration_wins_offline(make_shell: Any) -> None:
    shell = make_shell(env={})
    shell.run_line_magic("config", "CompleteMagics.temperature = 0.9")
    assert _magics(shell).defaults()["temperature"] == 0.9
    shell.run_line_magic("config", "CompleteMagics.temperature = None")  # set, even to the class default
    assert _magics(shell).defaults()["temperature"] is None  # the server's own, as the user asked


def test_other_servers_keep_their_own_sampling(shell: Any) -> None:
    magics = _magics(shell)
    assert not magics.offline()
    defaults = magics.defaults()
    assert defaults["temperature"] is None and defaults["top_p"] is None
    assert "temperature" not in build_request({"prompt": "x"}, defaults).params
