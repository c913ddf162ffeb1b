"""The form with today's API: reasoning effort and verbosity dropdowns, the Responses endpoint,
reasoning shown apart from the answer, refusals and GPT-5 notes (test_widgets.py holds the rest).

As there: widgets in plain pytest (no kernel), real HTTP to the test server, the worker thread awaited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from IPython.utils.capture import capture_output

from jupyter_openai.api.params import REASONING_EFFORTS, VERBOSITIES
from jupyter_openai.client import OpenAIClient
from jupyter_openai.session.log import SessionLog
from jupyter_openai.widgets.form import CompletionForm
from tests.servers.fake import FakeOpenAIServer
from tests.servers.fake.models import REFUSAL_TEXT, reasoning_text

DEFAULTS = {"model": "fake-chat", "endpoint": "auto", "system": None, "temperature": None, "top_p": None,
            "max_tokens": 256, "stream": True}
PROMPT = "one two three"
ANSWER = "Echo: three two one"
REASONING = reasoning_text(PROMPT)


@pytest.fixture
def log() -> SessionLog:
    return SessionLog()


@pytest.fixture
def make_form(client: OpenAIClient, log: SessionLog) -> Iterator[Callable[..., CompletionForm]]:
    forms: list[CompletionForm] = []

    def make(defaults: dict | None = None, **presets: Any) -> CompletionForm:
        forms.append(CompletionForm(client, log=log, defaults={**DEFAULTS, **(defaults or {})},
                                    **{"prompt": PROMPT, **presets}))
        assert forms[-1].wait_models(10), "the form's model list did not arrive"  # its GET comes first
        return forms[-1]

    yield make
    for form in forms:
        form.close()


def run(form: CompletionForm) -> CompletionForm:
    assert form.submit(), form.error_text
    assert form.wait(10), "the call did not finish"
    return form


def test_dropdowns_offer_the_default_and_each_value(make_form: Callable[..., CompletionForm]) -> None:
    form = make_form()
    assert form._reasoning_effort.options == (("default", None), *((v, v) for v in REASONING_EFFORTS))
    assert form._verbosity.options == (("default", None), *((v, v) for v in VERBOSITIES))
    assert (form._reasoning_effort.value, form._verbosity.value) == (None, None)
    assert form._endpoint.options == ("chat", "completions", "responses")


@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "plain"])
def test_dropdowns_reach_the_chat_request_and_the_preview(make_form: Callable[..., CompletionForm],
                                                          server: FakeOpenAIServer, log: SessionLog,
                                                          stream: bool) -> None:
    form = make_form(model="gpt-5.4", stream=stream)
    form._reasoning_effort.value, form._verbosity.value = "low", "high"
    assert form.preview == ("%%complete -m gpt-5.4 --reasoning-effort low --verbosity high"
                            + ("" if stream else " --no-stream"))
    assert form.request().params == {"max_tokens": 256, "reasoning_effort": "low", "verbosity": "high"}
    run(form)
    body = server.requests[-1].body
    assert (body["reasoning_effort"], body["verbosity"], body["max_completion_tokens"]) == ("low", "high", 256)
    assert form.text == ANSWER and form.error_text == ""
    assert form.status_text.startswith("gpt-5.4 · 3 in / 8 out tokens (4 reasoning) · ")
    assert log[-1]["reasoning_tokens"] == 4


def test_the_responses_endpoint_nests_them_and_sends_the_system_message(make_form: Callable[..., CompletionForm],
                                                                         server: FakeOpenAIServer) -> None:
    form = make_form(model="gpt-5.4-mini")
    form._endpoint.value = "responses"
    form._system.value = "Be brief."
    form._reasoning_effort.value, form._verbosity.value = "minimal", "low"
    assert form.preview == ('%%complete -m gpt-5.4-mini -e responses -s "Be brief." --reasoning-effort minimal '
                            '--verbosity low')
    assert form._system.disabled is False and "responses" in form._system.placeholder
    run(form)
    record = server.requests[-1]
    assert record.path == "/v1/responses"
    assert {k: v for k, v in record.body.items() if k != "stream"} == {
        "model": "gpt-5.4-mini", "input": PROMPT, "instructions": "Be brief.", "max_output_tokens": 256,
        "reasoning": {"effort": "minimal"}, "text": {"verbosity": "low"}, "store": False}  # GUIDE 18: not kept
    assert form.text == ANSWER and form.status_text.startswith("gpt-5.4-mini · 5 in / 6 out tokens (2 reasoning)")


def test_the_store_setting_reaches_the_form(make_form: Callable[..., CompletionForm],
                                            server: FakeOpenAIServer) -> None:
    """The magics' ``store`` trait comes to the form as a default: stored only when it says so."""
    form = make_form({"store": True, "endpoint": "responses"})
    run(form)
    assert server.requests[-1].body["store"] is True and "--store" not in form.preview
    assert server.stored != []


def test_configured_defaults_show_in_the_dropdowns_and_apply(make_form: Callable[..., CompletionForm],
                                                             server: FakeOpenAIServer) -> None:
    form = make_form({"reasoning_effort": "high", "verbosity": "medium", "endpoint": "responses"}, model="gpt-5.4")
    assert (form._reasoning_effort.value, form._verbosity.value, form._endpoint.value) == ("high", "medium",
                                                                                           "responses")
    assert form.preview == "%%complete -m gpt-5.4"  # as configured: no option needed
    run(form)
    body = server.requests[-1].body
    assert (body["reasoning"], body["text"]) == ({"effort": "high"}, {"verbosity": "medium"})


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
def test_reasoning_shows_above_the_answer(make_form: Callable[..., CompletionForm], log: SessionLog,
                                          endpoint: str) -> None:
    form = make_form(model="fake-reasoner", endpoint=endpoint)
    run(form)
    reasoning, answer = form._output.outputs
    assert reasoning["output_type"] == "display_data" and "<details" in reasoning["data"]["text/html"]
    assert " open>" not in reasoning["data"]["text/html"]  # folded: the answer is complete
    assert reasoning["data"]["text/plain"] == f"[reasoning]\n{REASONING}"
    assert answer["data"] == {"text/markdown": ANSWER, "text/plain": ANSWER}
    assert (form.text, form.reasoning, form.output_text) == (ANSWER, REASONING, ANSWER)
    assert (log[-1]["completion"], log[-1]["reasoning"]) == (ANSWER, REASONING)


def test_show_reasoning_off_hides_it(make_form: Callable[..., CompletionForm], log: SessionLog) -> None:
    form = make_form({"show_reasoning": False}, model="fake-reasoner-ollama")
    run(form)
    assert [o["data"] for o in form._output.outputs] == [{"text/markdown": ANSWER, "text/plain": ANSWER}]
    assert log[-1]["reasoning"] == REASONING


def test_complete_form_follows_the_show_reasoning_trait(shell: Any, server: FakeOpenAIServer) -> None:
    shell.run_line_magic("config", "CompleteMagics.show_reasoning = False")
    with capture_output():
        form = shell.run_cell("%complete_form -m fake-reasoner one two three").result
    try:
        run(form)
        assert [o["metadata"]["jupyter_openai"] for o in form._output.outputs] == ["answer"] and form.text == ANSWER
    finally:
        form.close()


def test_a_refusal_is_the_error_line(make_form: Callable[..., CompletionForm], log: SessionLog) -> None:
    form = make_form(model="fake-refuser")
    run(form)
    assert (form.text, form.output_text, form.error_text) == ("", "", f"Refused: {REFUSAL_TEXT}")
    assert form.status_text.startswith("fake-refuser · 3 in / 8 out tokens · ")
    assert (log[-1]["refusal"], log[-1]["status"]) == (REFUSAL_TEXT, "ok")


def test_gpt5_temperature_is_dropped_with_a_note(make_form: Callable[..., CompletionForm],
                                                 server: FakeOpenAIServer, log: SessionLog) -> None:
    form = make_form(model="gpt-5.4-mini")
    form._temperature.value = 0.2
    assert form.preview == "%%complete -m gpt-5.4-mini -t 0.2"
    run(form)
    # two tries of the call (the form lists the models in the background, in any order with them)
    assert form.text == ANSWER and [r.method for r in server.requests if r.method == "POST"] == ["POST", "POST"]
    assert form.note_text == ("Note: gpt-5.4-mini does not accept temperature=0.2: sent without it "
                              "(remembered for this session)") and form.error_text == ""  # muted, not red
    assert "temperature" not in log[-1]["params"]
