"""Tests of the magics' configuration (``jupyter_openai.magics.configurable``) that reach the wire: the
``store`` trait and the ``--store`` option, in a real shell over real HTTP to the test server.

The Responses API keeps every response on OpenAI's servers unless a request says ``store: false``
(CreateResponse.store defaults to true; GUIDE 18): ``%%complete`` and ``%%chat`` say so on every Responses
request, unless the trait or the option asks to store. The form is tested in tests/widgets, the Batch API's
lines in tests/batch/test_openai_batch.py.
"""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from jupyter_openai.magics.configurable import ConfiguredMagics
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
