"""The widget form without a browser: widgets work in plain pytest (no kernel), so the tests
set values, click buttons, wait for the worker thread and read the widgets' state."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable

import ipywidgets as W
import pytest

import jupyter_openai
from jupyter_openai.client import OpenAIClient
from jupyter_openai.session.log import SessionLog, session_log
from jupyter_openai.widgets.controls import STOP_INK
from jupyter_openai.widgets.form import CompletionForm
from tests.servers.fake import DEFAULT_MODELS, TEST_KEY, closed_port
from tests.servers.fake.payloads import numbered_pieces
from tests.support.forms import DEFAULTS
from tests.support.keys import CANARY_KEY

#: What %%complete uses for unset options, fixed so no loaded extension changes the tests.
PROMPT = "one two three"
ANSWER = "Echo: three two one"


@pytest.fixture
def log() -> SessionLog:
    return SessionLog()


@pytest.fixture
def make_form(client: OpenAIClient, log: SessionLog) -> Callable[..., CompletionForm]:
    forms: list[CompletionForm] = []

    def make(wait_models: bool = True, **kwargs: object) -> CompletionForm:
        """A form; ``wait_models``: once its model list (or the failure note) has arrived."""
        kwargs = {"log": log, "defaults": DEFAULTS, "prompt": PROMPT, **kwargs}
        form = CompletionForm(kwargs.pop("client", client), **kwargs)
        forms.append(form)
        if wait_models:
            assert form.wait_models(10), "the model list did not arrive"
        return form

    yield make
    for form in forms:
        form.close()


def run(form: CompletionForm, timeout: float = 10) -> CompletionForm:
    form.submit()
    assert form.wait(timeout), "the call did not finish"
    return form


def until(condition: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def all_widgets(root: W.Widget) -> list[W.Widget]:
    """The form and every widget under it, with their layouts and styles."""
    found, stack = [], [root]
    while stack:
        widget = stack.pop()
        found.append(widget)
        stack.extend(getattr(widget, "children", ()))
        stack.extend(w for w in (getattr(widget, "layout", None), getattr(widget, "style", None)) if w is not None)
    return found

ANSWER_OUTPUT = {"output_type": "display_data", "data": {"text/markdown": ANSWER, "text/plain": ANSWER},
                 "metadata": {"jupyter_openai": "answer"}}


# ---------------------------------------------------------------- submit, output, status, log
def test_submit_streams_into_output_writes_status_and_log(make_form, server, log):
    form = make_form()
    form._temperature.value = 0.3
    run(form)
    assert form.text == ANSWER and form.output_text == ANSWER
    assert form._output.outputs == (ANSWER_OUTPUT,)  # rendered as Markdown
    assert form.status_text.startswith("fake-chat · 3 in / 4 out tokens · ") and form.status_text.endswith(
        "finish: stop"
    )
    assert form.error_text == "" and not form._submit.disabled and form._stop.disabled and not form.running
    (record,) = list(log)
    assert record["source"] == "form" and record["status"] == "ok" and record["completion"] == ANSWER
    assert record["endpoint"] == "chat" and record["model"] == "fake-chat" and record["prompt"] == PROMPT
    assert json.loads(record["params"]) == {"temperature": 0.3, "max_tokens": 256, "stream": True}
    body = server.requests[-1].body
    assert body["temperature"] == 0.3 and body["max_tokens"] == 256 and body["stream"] is True
    assert form.outcome.status == "ok" and form.preview == "%%complete -t 0.3"


def test_non_streamed_call_and_n_choices(make_form, server, log):
    form = make_form(n=2)
    form._stream.value = False
    run(form)
    assert "stream" not in server.requests[-1].body and server.requests[-1].body["n"] == 2
    assert form.texts == [ANSWER, "Echo2: three two one"]
    assert [o["data"]["text/markdown"] for o in form._output.outputs] == [
        f"**choice 0**\n\n{ANSWER}\n",
        "**choice 1**\n\nEcho2: three two one\n",
    ]
    assert form.preview == "%%complete -n 2 --no-stream"
    assert json.loads(log[-1]["completions"]) == form.texts


def test_completions_endpoint_with_system_disabled_and_echo(make_form, server, log):
    form = make_form(model="davinci-002", stop=["\n", "END"], seed=7)
    assert form._endpoint.value == "completions" and form._system.disabled and not form._echo.disabled
    form._echo.value = True
    run(form)
    body = server.requests[-1].body
    assert server.requests[-1].path.endswith("/completions") and body["echo"] is True
    assert body["stop"] == ["\n", "END"] and body["seed"] == 7 and body["prompt"] == PROMPT
    assert form.text.startswith(PROMPT) and log[-1]["system"] is None
    assert form.preview == r"%%complete -m davinci-002 --stop \n --stop END --echo --seed 7"


# ---------------------------------------------------------------- the "as a magic" preview
def test_preview_follows_every_change(make_form):
    form = make_form()
    seen: list[str] = []
    form._preview.observe(lambda change: seen.append(change["new"]), names="value")
    assert form.preview == "%%complete"
    form._model.value = "davinci-002"  # the endpoint follows the model (auto)...
    assert form._endpoint.value == "completions" and form.preview == "%%complete -m davinci-002"
    form._endpoint.value = "chat"  # ...unless chosen
    assert form.preview == "%%complete -m davinci-002 -e chat"
    form._system.value = "Be brief."
    form._temperature.value = 0.7
    form._max_tokens.value = 64
    form._top_p.value = 0.9
    form._n.value = 3
    form._stop_sequences.value = r"END, \n"
    form._presence_penalty.value = 0.5
    form._frequency_penalty.value = -1.0
    form._seed.value = "42"
    form._stream.value = False
    assert form.preview == (
        '%%complete -m davinci-002 -e chat -s "Be brief." -t 0.7 --max-tokens 64 --top-p 0.9 -n 3 '
        r"--stop END --stop \n --presence-penalty 0.5 --frequency-penalty -1 --seed 42 --no-stream"
    )
    assert len(seen) >= 12  # one update per change
    form._preview.value = "%%complete -m something-else"  # read-only: edits are undone
    assert form.preview.startswith("%%complete -m davinci-002 -e chat")
    form._temperature.value = 1.0  # back to the default: the option disappears
    assert " -t " not in form.preview


SETTINGS = {
    "completions": {
        "_model": "davinci-002",
        "_temperature": 0.25,
        "_max_tokens": 3,
        "_stop_sequences": "two",
        "_seed": "5",
        "_echo": True,
    },
    "chat": {
        "_system": 'Be "brief", it\'s fine.',
        "_top_p": 0.5,
        "_n": 2,
        "_stop_sequences": r"th ree, \n",
        "_presence_penalty": 0.3,
        "_frequency_penalty": -0.2,
        "_stream": False,
    },
}


@pytest.mark.parametrize("settings", list(SETTINGS))
def test_preview_reproduces_the_request_through_the_magic(shell, server, settings):
    form = shell.run_line_magic("complete_form", PROMPT)
    assert form.wait_models(10)  # its /models request is not the last one recorded
    for name, value in SETTINGS[settings].items():
        getattr(form, name).value = value
    run(form)
    shell.run_cell(form.preview + "\n" + PROMPT)
    from_form, from_magic = session_log[-2], session_log[-1]
    assert (from_form["source"], from_magic["source"]) == ("form", "magic")
    for column in ("model", "endpoint", "system", "prompt", "params", "completion", "status"):
        assert from_form[column] == from_magic[column], column
    assert server.requests[-1].body == server.requests[-2].body
    form._endpoint.value, form._system.value = "chat", 'say "hi"'
    assert " -s 'say \"hi\"'" in form.preview
    form.close()


# ---------------------------------------------------------------- the model list
def test_model_dropdown_lists_server_models_with_default_selected(make_form):
    form = make_form()
    assert isinstance(form._model, W.Dropdown) and form._model.value == "fake-chat"
    assert set(DEFAULT_MODELS) <= set(form._model.options)
    assert not any("Could not list" in getattr(w, "value", "") for w in all_widgets(form) if isinstance(w, W.Label))


def test_model_falls_back_to_text_when_listing_fails(make_form, server, log):
    server.add_fault(path="/models", status=500)  # the form's listing is not retried
    form = make_form()
    assert isinstance(form._model, W.Text) and form._model.value == "fake-chat"
    notes = [w.value for w in all_widgets(form) if "jo-model-note" in getattr(w, "_dom_classes", ())]
    assert len(notes) == 1 and "Could not list the server's models (500" in notes[0]
    run(form)  # the server is fine again: the typed model works
    assert form.text == ANSWER


def test_form_appears_before_a_slow_model_list_and_keeps_what_was_typed(make_form, server, log):
    server.add_fault(path="/models", delay=3)
    started = time.monotonic()
    form = make_form(wait_models=False)
    assert time.monotonic() - started < 3.0  # before the server's 3 s delay is over
    assert isinstance(form._model, W.Text) and form._model.value == "fake-chat" and not form.wait_models(0)
    form._model.value = "gpt-4o-mini"  # typed while the list is on its way
    assert form.preview.startswith("%%complete -m gpt-4o-mini")
    assert form.wait_models(10)
    assert isinstance(form._model, W.Dropdown) and form._model.value == "gpt-4o-mini"
    assert set(DEFAULT_MODELS) <= set(form._model.options)
    form._model.value = "fake-chat"  # the new field is watched like the old one
    assert form.preview == "%%complete"
    run(form)
    assert form.text == ANSWER and log[-1]["model"] == "fake-chat"


def test_a_typed_model_the_server_does_not_list_stays(make_form, server):
    server.add_fault(path="/models", delay=1)
    form = make_form(wait_models=False)
    form._model.value = "my-fine-tune"
    assert form.wait_models(10) and isinstance(form._model, W.Dropdown)
    assert form._model.value == "my-fine-tune" and form._model.options[0] == "my-fine-tune"
    assert set(DEFAULT_MODELS) <= set(form._model.options)


def test_a_stalled_model_list_times_out_with_a_note_and_no_retry(make_form, server, monkeypatch):
    import jupyter_openai.widgets.controls as controls

    monkeypatch.setattr(controls, "MODELS_TIMEOUTS", (1.0, 0.3))  # the form's own short timeouts
    server.add_fault(path="/models", delay=2, times=None)
    slow = OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=30, max_retries=2)
    form = make_form(client=slow, wait_models=False)  # not waiting for the list: the tests above
    assert form.wait_models(10) and isinstance(form._model, W.Text)
    notes = [w.value for w in all_widgets(form) if "jo-model-note" in getattr(w, "_dom_classes", ())]
    assert notes == [f"Could not list the server's models (No answer from 127.0.0.1:{server.port} within 0.3 s): "
                     "type a model id."]
    assert len([r for r in server.requests if r.path == "/v1/models"]) == 1  # no retries
    assert slow.settings.read_timeout == 30  # the form's own client, not the one it was given


def test_a_failing_client_factory_is_a_note(make_form):
    def broken() -> OpenAIClient:
        raise ValueError("the settings are wrong")

    form = make_form(client=broken)
    notes = [w.value for w in all_widgets(form) if "jo-model-note" in getattr(w, "_dom_classes", ())]
    assert notes == ["Could not list the server's models (the settings are wrong): type a model id."]
    assert isinstance(form._model, W.Text) and not form.submit()
    assert form.error_text == "the settings are wrong"


def test_complete_form_does_not_wait_for_the_models(make_shell, server):
    """With the model setting untouched, the default model is the server's first listed one: the form
    shows at once and takes it when the list arrives (no listing in the magic itself)."""
    from traitlets.config import Config

    config = Config()
    config.CompleteMagics.max_retries = 2
    config.CompleteMagics.timeout = 30.0
    shell = make_shell(config)
    server.add_fault(path="/models", delay=3)
    started = time.monotonic()
    form = shell.run_line_magic("complete_form", PROMPT)
    assert time.monotonic() - started < 3.0 and not form.wait_models(0)  # before the 3 s delay is over
    assert form.wait_models(10) and isinstance(form._model, W.Dropdown)
    assert form._model.value == DEFAULT_MODELS[0] and form.preview == "%%complete"
    run(form)
    assert session_log[-1]["model"] == DEFAULT_MODELS[0] and session_log[-1]["source"] == "form"
    form.close()


def test_closed_port_gives_text_field_and_one_red_line(make_form, log):
    client = OpenAIClient(api_key=TEST_KEY, base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=0)
    form = make_form(client=client)
    assert isinstance(form._model, W.Text)
    run(form)
    assert form.error_text.startswith("Could not connect to 127.0.0.1") and "\n" not in form.error_text
    assert log[-1]["status"] == "error" and log[-1]["source"] == "form"


# ---------------------------------------------------------------- Stop
def test_stop_mid_stream_keeps_partial_text_and_closes_the_connection(make_form, server, log):
    form = make_form()
    run(form)
    server.add_fault(path="/chat", chunks=2000, chunk_delay=0.01)
    form.submit()
    assert form._submit.disabled and not form._stop.disabled and form.running
    until(lambda: len(form.text) > 20)
    streaming = len(server._connections)  # the stream's own, plus idle keep-alive ones
    form.stop()
    assert form.wait(2)
    assert form.status_text.endswith(" · interrupted") and "finish" not in form.status_text
    assert form.note_text.startswith("Interrupted: the request was stopped") and form.error_text == ""
    assert 20 < len(form.text) < len(" w".join(numbered_pieces(2000))) and form.output_text == form.text
    assert not form._submit.disabled and form._stop.disabled
    record = log[-1]
    assert record["status"] == "interrupted" and record["source"] == "form" and record["completion"] == form.text
    until(lambda: len(server._connections) == streaming - 1)  # the server saw the stream's socket close
    run(form)  # the form works again after Stop
    assert form.text == ANSWER and log[-1]["status"] == "ok"


def test_stop_ends_a_stalled_read_at_once(make_form, server, log):
    form = make_form()
    server.add_fault(path="/chat", stall_after=3, stall=10)
    form.submit()
    until(lambda: form.text.startswith("Echo:"))
    time.sleep(0.2)  # the reader is now blocked in recv()
    form.stop()
    assert form.wait(2)
    assert form.text == "Echo: three" and "interrupted" in form.status_text
    assert log[-1]["status"] == "interrupted" and log[-1]["completion"] == "Echo: three"


def test_stop_before_the_server_answers_frees_the_form_and_logs_later(make_form, server, log):
    form = make_form()
    server.add_fault(path="/chat", delay=1.0)
    form.submit()
    time.sleep(0.1)
    form.stop()
    assert form.wait(0) and not form._submit.disabled  # stop() gave up on the worker after DETACH_AFTER
    assert form.status_text.startswith("interrupted") and form.text == ""
    until(lambda: len(log) == 1)  # the background request ends when the headers come
    assert log[-1]["status"] == "interrupted" and log[-1]["source"] == "form"
    run(form)
    assert form.text == ANSWER


# ---------------------------------------------------------------- concurrency and coalescing
def test_two_forms_submitting_at_once_keep_their_own_text(make_form, server, log):
    first = make_form(prompt="alpha beta gamma delta")
    second = make_form(prompt="red green blue yellow")
    server.add_fault(path="/chat", chunk_delay=0.03, times=2)
    first.submit()
    second.submit()
    assert first.running and second.running
    assert first.wait(5) and second.wait(5)
    assert first.text == "Echo: delta gamma beta alpha" and first.output_text == first.text
    assert second.text == "Echo: yellow blue green red" and second.output_text == second.text
    assert sorted(r["completion"] for r in log) == sorted([first.text, second.text])
    assert {r["source"] for r in log} == {"form"} and {r["status"] for r in log} == {"ok"}


@pytest.mark.parametrize("spread", [0, 0.0002], ids=["burst", "one-event-per-write"])
def test_fast_5000_chunk_stream_sends_a_bounded_number_of_output_updates(make_form, server, spread):
    form = make_form()
    updates: list[int] = []
    form._output.observe(lambda change: updates.append(len(change["new"])), names="outputs")
    server.add_fault(path="/chat", chunks=5000, chunk_delay=spread)
    started = time.monotonic()
    run(form)
    elapsed = time.monotonic() - started
    assert form.text == "".join(numbered_pieces(5000)) and form.output_text == form.text
    assert len(updates) <= 25 * elapsed + 3, (len(updates), elapsed)
    print(f"5000 chunks in {elapsed:.2f} s: {len(updates)} output updates")


# ---------------------------------------------------------------- faults: one red line, logged
FAULTS = {
    "500 repeated": ({"status": 500, "times": 3}, "500 Server error", False),
    "401": ({"status": 401}, "401 Authentication failed", False),
    "dropped stream": ({"drop_after": 3}, "The stream was cut off", True),
    "malformed chunk": ({"malformed_after": 3}, "malformed chunk", True),
    "error chunk": ({"error_after": 3}, "the server sent an error mid-stream", True),
    "HTML error page": ({"status": 502, "body_style": "html", "times": 3}, "502", False),
}


@pytest.mark.parametrize("name", list(FAULTS))
def test_faults_show_one_red_line_and_are_logged(make_form, server, log, name):
    fault, message, partial = FAULTS[name]
    form = make_form(prompt="one two three four five")
    server.add_fault(path="/chat", **fault)
    run(form)
    assert message in form.error_text and "\n" not in form.error_text and "Traceback" not in form.error_text
    assert "jo-error" in form._error._dom_classes and "error" in form.status_text  # red by the theme's error colour
    assert ("partial text kept" in form.error_text) == partial and bool(form.text) == partial
    assert "Traceback" not in form.output_text
    assert log[-1]["status"] == "error" and log[-1]["source"] == "form" and message in log[-1]["error"]
    assert not form._submit.disabled


def test_read_stall_times_out_with_partial_text(make_form, server, log):
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=0.3, max_retries=0)
    form = make_form(client=client)
    server.add_fault(path="/chat", stall_after=3, stall=2)
    run(form)
    assert form.text == "Echo: three" and form.error_text.startswith("The stream stalled")
    assert log[-1]["status"] == "error"


def test_stream_without_done_is_a_warning(make_form, server, log):
    form = make_form()
    server.add_fault(path="/chat", no_done=True)
    run(form)
    assert form.text == ANSWER and form.error_text.startswith("Warning") and log[-1]["status"] == "truncated"


def test_bad_input_shows_an_error_without_calling(make_form, server, log):
    form = make_form(prompt="  ")
    run(form)
    assert form.error_text.startswith("the prompt is empty") and len(log) == 0 and not server.requests[1:]
    form._prompt.value = PROMPT
    for field, value, message in (
        (form._seed, "abc", "seed must be a whole number"),
        (form._stop_sequences, "a,b,c,d,e", "stop takes 1 to 4"),
    ):
        field.value = value
        run(form)
        assert form.error_text.startswith(message) and len(log) == 0
        field.value = ""


# ---------------------------------------------------------------- secrets, magic, display
def test_canary_key_in_no_widget_state_nor_output(canary_server, server, log):
    forms = []
    with (
        OpenAIClient(api_key=CANARY_KEY, base_url=canary_server.url) as good,
        OpenAIClient(api_key=CANARY_KEY, base_url=server.url, max_retries=0) as rejected,
    ):
        for client in (good, rejected):  # a working call, and a 401 (with a fallback model field)
            form = CompletionForm(client, log=log, defaults=DEFAULTS, prompt=PROMPT)
            assert form.wait_models(10)  # the failure note (401) is in the form
            run(form)
            forms.append(form)
    assert forms[0].text == ANSWER and forms[1].error_text.startswith("401")
    for form in forms:
        for widget in all_widgets(form):
            assert CANARY_KEY not in json.dumps(widget.get_state(), default=str), widget
        assert CANARY_KEY not in form.output_text + form.error_text + form.status_text + form.preview + repr(form)
        form.close()
    assert CANARY_KEY not in json.dumps(list(log))


def test_complete_form_magic_returns_a_preset_form(shell, server):
    form = shell.run_line_magic("complete_form", "-m davinci-002")
    assert isinstance(form, CompletionForm) and form._model.value == "davinci-002"
    assert form.wait_models(10) and isinstance(form._model, W.Dropdown) and form._model.value == "davinci-002"
    assert form._endpoint.value == "completions" and form.preview == "%%complete -m davinci-002"
    form.close()
    form = shell.run_line_magic("complete_form", "-t 0.5 --max-tokens 32 four five six")
    assert form._prompt.value == "four five six" and form._model.value == "fake-chat"
    assert form.preview == "%%complete -t 0.5 --max-tokens 32"
    run(form)
    assert form.text == "Echo: six five four"
    assert session_log[-1]["source"] == "form" and json.loads(session_log[-1]["params"])["max_tokens"] == 32
    form.close()


def test_python_constructor_reads_the_environment_and_displays(monkeypatch, server):
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    assert jupyter_openai.CompletionForm is CompletionForm
    form = jupyter_openai.CompletionForm(model="fake-chat", prompt=PROMPT, log=SessionLog())
    bundle = form._repr_mimebundle_()
    assert bundle["text/plain"] == "CompletionForm(model='fake-chat', endpoint='chat')"
    assert "application/vnd.jupyter.widget-view+json" in bundle
    run(form)
    assert form.text == ANSWER
    form.close()


def test_submit_does_not_block_the_caller(make_form, server):
    form = make_form()
    server.add_fault(path="/chat", chunk_delay=0.1)
    form.submit()
    assert form.running  # submit() returned while the answer streams (its chunks come 0.1 s apart)
    form.submit()  # ignored while running
    assert threading.active_count() >= 2 and form.wait(5) and form.text == ANSWER
    assert len([r for r in server.requests if r.path.endswith("/chat/completions")]) == 1


def test_form_colours_come_from_the_theme(make_form):
    """No fixed colours: the form's stylesheet uses the front end's theme variables (with fallbacks)."""
    form = make_form()
    (sheet,) = [w for w in form.children if isinstance(w, W.HTML) and "<style>" in w.value]
    css = sheet.value
    assert ".jupyter-openai-form .jo-output { border: 1px solid var(--jp-border-color2" in css
    assert ".jupyter-openai-form .jo-error { color: var(--jp-error-color1" in css
    assert sheet.layout.display == "none"
    assert STOP_INK in css and "mod-warning" in STOP_INK  # the one fixed colour: dark text on the orange Stop
    assert not re.search(r"(?<!, )#[0-9a-fA-F]{3,6}\b", css.replace(STOP_INK, "")), "a colour outside a var() fallback"
    assert form._output.layout.border is None


def test_text_format_shows_raw_text_that_wraps_at_words(make_form):
    form = make_form(defaults={**DEFAULTS, "output_format": "text"}, prompt="**not** bold")
    run(form)
    (shown,) = form._output.outputs
    assert shown["data"]["text/plain"] == "Echo: bold **not**" == form.output_text
    assert "text/markdown" not in shown["data"] and "word-break:normal" in shown["data"]["text/html"]


def test_the_probabilities_checkbox_shows_the_probability_view(make_form, server):
    """As ``%%complete --show-probs``: logprobs asked for, the answer's tokens coloured below it."""
    form = make_form()
    form._show_probs.value = True
    assert form.preview == "%%complete --show-probs"
    run(form)
    body = server.requests[-1].body
    assert body["logprobs"] is True and body["top_logprobs"] == 5
    answer, probs = form._output.outputs
    assert answer["metadata"]["jupyter_openai"] == "answer" and form.output_text == ANSWER
    assert probs["metadata"]["jupyter_openai"] == "probabilities"
    assert 'class="jo-probs"' in probs["data"]["text/html"] and "jo-tok" in probs["data"]["text/html"]
    form._show_probs.value = False
    run(form)
    assert "logprobs" not in server.requests[-1].body and len(form._output.outputs) == 1


# ---------------------------------------------------------------- issue 22: notes, order, the length limit
def test_notes_are_muted_under_the_status_line_and_errors_red_below(make_form, server):
    from jupyter_openai.widgets.controls import FORM_STYLE

    form = make_form()
    children = list(form.children)
    assert children.index(form._status) + 1 == children.index(form._notes) == children.index(form._error) - 1
    assert form._output in children[:children.index(form._status)]  # the answer, then the lines about it
    assert "jo-note" in form._notes._dom_classes and "jo-error" in form._error._dom_classes
    muted = re.search(r"([^}]*)\{([^}]*)\}", FORM_STYLE[FORM_STYLE.index(".jupyter-openai-form .jo-status"):])
    assert ".jo-note" in muted.group(1) and "--jp-ui-font-color2" in muted.group(2)  # the status line's style
    server.add_fault(path="/chat", ignore_n=True)
    form._n.value = 3
    run(form)
    assert form.note_text == "Note: asked for 3 choices, the server returned 1" and form.error_text == ""
    server.add_fault(path="/chat", drop_after=1)
    form._n.value = 1
    run(form)
    assert form.note_text == "" and form.error_text.startswith("The stream was cut off")
    assert form.status_text.endswith(" · error")


def test_an_answer_cut_at_max_tokens_says_how_to_raise_it_in_the_form(make_form, server):
    form = make_form(prompt=" ".join(f"w{i}" for i in range(300)))
    run(form)
    assert form.status_text.endswith(" · stopped at max tokens 256 (the default): raise max tokens above "
                                     "(to 1024, say) or %config CompleteMagics.max_tokens = 1024")
    form._max_tokens.value = 3
    run(form)
    assert form.status_text.endswith(" · stopped at max tokens 3 (as asked): raise max tokens above (to 1024, say)")


def test_the_status_notes_and_error_lines_are_never_typeset_as_mathematics(make_form):
    """Widgets typeset ``$…$`` as TeX in JupyterLab; the classes MathJax skips keep "$0.51 of $0.50" text."""
    form = make_form()
    for label in (form._status, form._notes, form._error):
        assert {"tex2jax_ignore", "mathjax_ignore"} <= set(label._dom_classes)
