"""The form's conversation mode without a browser: Send adds turns, Reset clears, the transcript
shows them, and it shares conversations with ``%%chat`` by name."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_openai.client import OpenAIClient
from jupyter_openai.session.conversation import Conversation, Conversations, conversations
from jupyter_openai.session.log import SessionLog
from jupyter_openai.widgets.chat import ChatForm, transcript_html
from tests.servers.fake import FakeOpenAIServer
from tests.support.cells import SLOW_WORDS, run
from tests.support.forms import DEFAULTS

BUSY = "the call did not finish"


@pytest.fixture
def registry() -> Conversations:
    return Conversations()


@pytest.fixture
def form(client: OpenAIClient, registry: Conversations) -> Iterator[ChatForm]:
    made = ChatForm(client, log=SessionLog(), defaults=DEFAULTS, name="tutor", registry=registry)
    assert made.wait_models(10)
    yield made
    made.close()


def send(form: ChatForm, text: str) -> ChatForm:
    form._prompt.value = text
    assert form.submit()
    assert form.wait(10), BUSY
    return form


def test_send_adds_turns_that_the_next_send_carries(form: ChatForm, server: FakeOpenAIServer,
                                                    registry: Conversations) -> None:
    assert "no turns yet" in form.transcript and form._submit.description == "Send"
    children = list(form.children)
    assert children.index(form._transcript) == children.index(form._prompt) - 1  # above the prompt
    form._system.value = "Be kind."
    send(form, "My name is Ada")
    assert form.text == "Echo: Ada is name My" and form._prompt.value == ""
    send(form, "What is my name?")
    messages = server.requests[-1].body["messages"]
    assert [(m["role"], m["content"]) for m in messages] == [
        ("system", "Be kind."), ("user", "My name is Ada"), ("assistant", "Echo: Ada is name My"),
        ("user", "What is my name?")]
    tutor = registry["tutor"]
    assert [t.user for t in tutor] == ["My name is Ada", "What is my name?"] and tutor.system == "Be kind."
    assert "<b>2. User:</b> What is my name?" in form.transcript
    record = form._log[-1]
    assert (record["source"], record["conversation"], record["turn"], record["messages_sent"]) == (
        "form", "tutor", 2, 4)


def test_reset_clears_the_conversation(form: ChatForm, server: FakeOpenAIServer, registry: Conversations) -> None:
    send(form, "one")
    form._reset.click()
    assert len(registry["tutor"]) == 0 and "no turns yet" in form.transcript and form.output_text == ""
    send(form, "two")
    assert [m["content"] for m in server.requests[-1].body["messages"]] == ["two"]


def test_a_failed_send_adds_nothing_and_keeps_the_prompt(form: ChatForm, server: FakeOpenAIServer,
                                                         registry: Conversations) -> None:
    server.add_fault(path="/chat", status=400, message="nope")
    send(form, "lost")
    assert len(registry["tutor"]) == 0 and form._prompt.value == "lost" and "400" in form.error_text


def test_stop_keeps_the_partial_turn_marked(form: ChatForm, server: FakeOpenAIServer,
                                            registry: Conversations) -> None:
    server.add_fault(words=SLOW_WORDS, chunk_delay=0.02)
    form._prompt.value = "long"
    assert form.submit()
    deadline = time.monotonic() + 10
    while not form.text:
        assert time.monotonic() < deadline, "no text arrived"
        time.sleep(0.01)
    form.stop()
    assert form.wait(10), BUSY
    (turn,) = registry["tutor"].turns
    assert turn.status == "interrupted" and turn.assistant and "(interrupted)" in form.transcript


def test_the_responses_endpoint_and_the_caps(client: OpenAIClient, server: FakeOpenAIServer,
                                             registry: Conversations) -> None:
    registry["r"] = Conversation.from_messages([{"role": "user", "content": "a"},
                                                {"role": "assistant", "content": "b"},
                                                {"role": "user", "content": "c"},
                                                {"role": "assistant", "content": "d"}])
    form = ChatForm(client, log=SessionLog(), defaults=DEFAULTS, name="r", registry=registry, max_turns=2,
                    endpoint="responses")
    try:
        assert form.wait_models(10)  # its GET /models is not the call
        send(form, "e")
        call = next(r for r in reversed(server.requests) if r.path.endswith("/responses"))
        assert [(m["role"], m["content"]) for m in call.body["input"]] == [
            ("user", "c"), ("assistant", "d"), ("user", "e")]
        assert [t.user for t in registry["r"]] == ["c", "e"]
        form._endpoint.value = "completions"
        form._prompt.value = "f"
        assert not form.submit() and "chat and responses" in form.error_text
    finally:
        form.close()


def test_a_refused_send_keeps_the_refusal_for_the_next_send(client: OpenAIClient, server: FakeOpenAIServer,
                                                             registry: Conversations) -> None:
    from tests.servers.fake.models import REFUSAL_TEXT

    form = ChatForm(client, log=SessionLog(), defaults={**DEFAULTS, "model": "fake-refuser"}, name="n",
                    registry=registry)
    try:
        assert form.wait_models(10)
        send(form, "tell me a secret")
        assert registry["n"].turns[0].refusal == REFUSAL_TEXT and REFUSAL_TEXT.replace("'", "&#x27;") in form.transcript
        form._model.value = "fake-chat"
        send(form, "why not?")
        messages = server.requests[-1].body["messages"]
        assert messages[-2:] == [{"role": "assistant", "content": REFUSAL_TEXT},
                                 {"role": "user", "content": "why not?"}]
    finally:
        form.close()


def test_transcript_html_escapes_text() -> None:
    conversation = Conversation("x<y>")
    conversation.add("<script>", "a & b")
    shown = transcript_html(conversation)
    assert "<script>" not in shown and "&lt;script&gt;" in shown and "a &amp; b" in shown


def test_complete_form_chat_shares_the_conversation_with_chat_cells(shell: InteractiveShell,
                                                                     server: FakeOpenAIServer) -> None:
    run(shell, "%%chat --name shared\nMy name is Ada", cell_id="c1")
    form = shell.run_line_magic("complete_form", "--chat shared")
    try:
        assert isinstance(form, ChatForm) and "My name is Ada" in form.transcript
        assert form.wait_models(10)
        send(form, "What is my name?")
        assert ("user", "My name is Ada") in [(m["role"], m["content"]) for m in server.requests[-1].body["messages"]]
        run(shell, "%%chat --name shared\nAnd again?", cell_id="c3")
        assert [t.user for t in conversations["shared"]] == ["My name is Ada", "What is my name?", "And again?"]
        form.refresh()
        assert "And again?" in form.transcript
    finally:
        form.close()


def test_dropped_turns_are_a_muted_note_after_the_status_line(client: OpenAIClient, server: FakeOpenAIServer,
                                                              registry: Conversations) -> None:
    made = ChatForm(client, log=SessionLog(), defaults=DEFAULTS, name="capped", registry=registry, max_turns=2)
    try:
        assert made.wait_models(10)
        for text in ("t1", "t2"):
            send(made, text)
            assert made.note_text == ""
        send(made, "t3")
        assert made.note_text == "Note: dropped the 1 oldest turn(s) of conversation 'capped' to send at most 2 turn(s)"
        assert made.error_text == "" and made.status_text.endswith(" · finish: stop")
        assert [m["content"] for m in server.requests[-1].body["messages"] if m["role"] == "user"] == ["t2", "t3"]
    finally:
        made.close()


def test_the_transcript_is_never_typeset_as_mathematics(form: ChatForm) -> None:
    send(form, "Is $5 more than $4?")
    assert form.transcript.startswith('<div class="tex2jax_ignore mathjax_ignore">')
    assert "Is $5 more than $4?" in form.transcript
