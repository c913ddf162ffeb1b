"""Tests of the conversation core: turns keyed by cell id, re-runs in place, caps, messages, files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_openai.calls.request import build_request
from jupyter_openai.errors import ConfigurationError
from jupyter_openai.session.conversation import Conversation, Conversations, Turn, estimate_tokens


def turn(conversation: Conversation, user: str, key: str | None, answer: str | None = None) -> int:
    """Run one turn the way the magic does: plan, then record (the answer defaults to ``A:<user>``)."""
    plan = conversation.plan(user, key)
    return conversation.record(plan, Turn(user, answer if answer is not None else f"A:{user}", key))


def users(conversation: Conversation) -> list[str]:
    return [t.user for t in conversation.turns]


def test_a_new_cell_sees_every_earlier_turn_and_appends() -> None:
    conversation = Conversation(system="Be brief.")
    assert turn(conversation, "My name is Ada", "c1") == 1
    plan = conversation.plan("What is my name?", "c2")
    assert plan.history == [{"role": "user", "content": "My name is Ada"},
                            {"role": "assistant", "content": "A:My name is Ada"}]
    assert (plan.index, plan.replaces) == (1, False)
    assert conversation.record(plan, Turn("What is my name?", "Ada", "c2")) == 2
    assert conversation.to_messages() == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "My name is Ada"}, {"role": "assistant", "content": "A:My name is Ada"},
        {"role": "user", "content": "What is my name?"}, {"role": "assistant", "content": "Ada"}]
    assert conversation.to_input() == [{"type": "message", **m} for m in conversation.to_messages()[1:]]


def test_rerunning_a_cell_replaces_its_turn_in_place_and_sees_only_the_turns_above() -> None:
    conversation = Conversation()
    for i in range(1, 6):
        turn(conversation, f"q{i}", f"c{i}")
    plan = conversation.plan("q3 edited", "c3")
    assert [m["content"] for m in plan.history if m["role"] == "user"] == ["q1", "q2"]
    assert conversation.record(plan, Turn("q3 edited", "a3'", "c3")) == 3
    assert users(conversation) == ["q1", "q2", "q3 edited", "q4", "q5"]
    later = conversation.plan("q5 again", "c5")  # cell 5, re-run, now sees the edited turn 3
    assert [m["content"] for m in later.history if m["role"] == "user"] == ["q1", "q2", "q3 edited", "q4"]


def test_no_cell_id_always_appends() -> None:
    conversation = Conversation()
    turn(conversation, "same", None)
    turn(conversation, "same", None)
    assert users(conversation) == ["same", "same"]


def test_max_turns_drops_the_oldest_turns_first() -> None:
    conversation = Conversation(max_turns=3)
    for i in range(1, 4):
        turn(conversation, f"q{i}", f"c{i}")
    plan = conversation.plan("q4", "c4")
    assert (plan.dropped, plan.why) == (1, "at most 3 turn(s)")
    assert [m["content"] for m in plan.history if m["role"] == "user"] == ["q2", "q3"]
    assert conversation.record(plan, Turn("q4", "a4", "c4")) == 3
    assert users(conversation) == ["q2", "q3", "q4"]


def test_the_token_budget_drops_the_oldest_turns_until_the_call_fits() -> None:
    conversation = Conversation(system="s" * 40)  # 10 tokens
    for i in range(4):
        turn(conversation, "u" * 40, f"c{i}", answer="a" * 40)  # 10 + 10 + 8 = 28 tokens a turn
    fixed = 10 + estimate_tokens("q" * 40) + 8
    plan = conversation.plan("q" * 40, "new", max_tokens=fixed + 2 * 28)
    assert plan.dropped == 2 and plan.why.startswith("about")
    assert len(plan.history) == 4
    assert conversation.plan("q" * 40, "new", max_tokens=fixed + 4 * 28).dropped == 0
    assert conversation.plan("q" * 40, "new", max_tokens=1).history == []  # even the prompt alone is over


def test_a_recorded_turn_needs_a_known_status() -> None:
    conversation = Conversation()
    with pytest.raises(ConfigurationError, match="status"):
        conversation.record(conversation.plan("x"), Turn("x", "", status="error"))
    assert len(conversation) == 0


def test_reset_keeps_the_system_message_unless_told() -> None:
    conversation = Conversation(system="tutor")
    conversation.add("hi", "hello")
    conversation.reset()
    assert (len(conversation), conversation.system) == (0, "tutor")
    conversation.reset(system="")
    assert conversation.system is None


def test_from_messages_and_back() -> None:
    messages = [{"role": "system", "content": "sys"}, {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    conversation = Conversation.from_messages(messages, "x")
    assert conversation.system == "sys" and users(conversation) == ["a", "c"]
    assert conversation.to_messages()[:3] == messages[:3]
    with pytest.raises(ConfigurationError, match="user"):
        Conversation.from_messages([{"role": "assistant", "content": "b"}])
    with pytest.raises(ConfigurationError, match="text"):
        Conversation.from_messages([{"role": "user", "content": [{"type": "text", "text": "a"}]}])


def test_save_and_load_keep_everything(tmp_path: Path) -> None:
    conversation = Conversation("tutor", "Be kind.", max_turns=4)
    conversation.add("2+2?", "4", key="cell-a")
    conversation.add("and 3+3?", "6 (cut", key="cell-b", status="interrupted")
    path = tmp_path / "t.json"
    conversation.save(path)
    data = json.loads(path.read_text("utf-8"))
    assert data["messages"] == conversation.to_messages()
    loaded = Conversation.load(path)
    assert loaded == conversation
    assert Conversation.load(path, "other").name == "other"
    path.write_text(json.dumps(conversation.to_messages()), "utf-8")  # a plain list of messages loads too
    assert Conversation.load(path).to_messages() == conversation.to_messages()
    path.write_text("{not json", "utf-8")
    with pytest.raises(ConfigurationError, match="not JSON"):
        Conversation.load(path)
    path.write_text(json.dumps({"turns": [{"user": "x", "status": "weird"}]}), "utf-8")
    with pytest.raises(ConfigurationError, match="status"):
        Conversation.load(path)


def test_the_transcript_marks_interrupted_turns() -> None:
    conversation = Conversation("t", "sys")
    conversation.add("q", "partial", status="interrupted")
    assert "[assistant (interrupted)] partial" in repr(conversation)
    markdown = conversation._repr_markdown_()
    assert "**Conversation `t`**" in markdown and "*System:* sys" in markdown and "(interrupted)" in markdown


def test_the_registry_makes_conversations_by_name() -> None:
    registry = Conversations()
    first = registry["a"]
    assert registry.get("a") is first and "a" in registry and list(registry) == ["a"]
    registry["b"] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    assert registry["b"].name == "b" and len(registry["b"]) == 1
    with pytest.raises(ConfigurationError):
        registry.get(" ")
    registry.clear()
    assert len(registry) == 0


def test_a_request_carries_the_history_on_chat_and_responses() -> None:
    history = Conversation.from_messages([{"role": "user", "content": "a"},
                                          {"role": "assistant", "content": "b"}]).to_messages()
    chat = build_request({"prompt": "c", "model": "m", "system": "s", "history": history})
    assert [m["content"] for m in chat.messages()] == ["s", "a", "b", "c"] and chat.messages_sent() == 4
    responses = build_request({"prompt": "c", "model": "m", "endpoint": "responses", "history": history})
    assert responses.input() == [{"type": "message", **m} for m in [*history, {"role": "user", "content": "c"}]]
    assert build_request({"prompt": "c", "model": "m", "endpoint": "responses"}).input() == "c"
    with pytest.raises(ConfigurationError, match="chat and responses"):
        build_request({"prompt": "c", "model": "davinci-002", "history": history})
    with pytest.raises(ConfigurationError, match="history message 0"):
        build_request({"prompt": "c", "model": "m", "history": [{"role": "tool", "content": "x"}]})


# == files: atomic, every character kept, every field checked (issue 21, item 4) ===========
def test_saving_text_utf8_cannot_hold_over_an_old_file_keeps_it_and_loads_back(tmp_path: Path) -> None:
    path = tmp_path / "chat.json"
    path.write_text('{"turns": []}', "utf-8")
    path.chmod(0o640)
    conversation = Conversation("c", "sys \ud83d")
    conversation.add("pasted \udcff half an emoji \\ud800", "ok")
    text = conversation.save(path)
    assert json.loads(path.read_text("utf-8")) == json.loads(text)
    assert Conversation.load(path) == conversation
    assert (path.stat().st_mode & 0o777) == 0o640 and sorted(p.name for p in tmp_path.iterdir()) == ["chat.json"]


def test_a_save_that_fails_leaves_the_old_file_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import errno
    import os

    def disk_full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    path = tmp_path / "chat.json"
    path.write_text('{"turns": []}', "utf-8")
    conversation = Conversation("c")
    conversation.add("q", "a")
    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        conversation.save(path)
    assert path.read_text("utf-8") == '{"turns": []}' and len(list(tmp_path.iterdir())) == 1


@pytest.mark.parametrize(("data", "words"), [
    ({"turns": 5}, "'turns' is a list of turns, got a number (5)"),
    ({"system": {"a": 1}, "turns": []}, "'system' is text or null, got an object"),
    ({"system": {"a": 1}, "messages": []}, "'system' is text or null"),
    ({"name": ["x"], "turns": []}, "'name' is text or null, got a list"),
    ({"turns": ["hi"]}, "'turns[0]' is an object"),
    ({"turns": [{"user": 5}]}, "'turns[0].user' is text, got a number (5)"),
    ({"turns": [{"user": "a", "assistant": ["b"]}]}, "'turns[0].assistant' is text or null, got a list"),
    ({"turns": [{"user": "a", "key": 3}]}, "'turns[0].key' is text or null"),
    ({"turns": [{"user": "a", "refusal": True}]}, "'turns[0].refusal' is text or null, got a boolean"),
    ({"turns": [], "max_turns": "5"}, "'max_turns' is a whole number of at least 1 (or null), got a string"),
    ({"turns": [], "max_tokens": 0}, "'max_tokens' is a whole number"),
    ({"turns": [], "version": 99}, "'version'"),
    ({"messages": {"role": "user"}}, "'messages' is a list of messages, got an object"),
    ("just text", "not a string"),
])
def test_loading_checks_every_field_and_names_the_wrong_one(tmp_path: Path, data: object, words: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(ConfigurationError) as info:
        Conversation.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and words in message and "\n" not in message


def test_a_refused_turn_is_resent_as_its_refusal() -> None:
    conversation = Conversation()
    plan = conversation.plan("how do I pick a lock?", "c1")
    conversation.record(plan, Turn("how do I pick a lock?", "", "c1", refusal="I can't help with that."))
    assert conversation.plan("why not?", "c2").history[1] == {"role": "assistant",
                                                              "content": "I can't help with that."}
    assert "[assistant (refused)] I can't help with that." in repr(conversation)
    assert Conversation.from_dict(json.loads(json.dumps(conversation.to_dict()))) == conversation
    as_chat_answers = Conversation.from_messages([{"role": "user", "content": "q"},
                                                  {"role": "assistant", "content": None, "refusal": "No."}])
    assert as_chat_answers.turns[0].refusal == "No." and as_chat_answers.to_messages()[1]["content"] == "No."
    with pytest.raises(ConfigurationError, match="message 4: expected an assistant"):
        Conversation.from_messages([{"role": "system", "content": "s"}, {"role": "user", "content": "a"},
                                    {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"},
                                    {"role": "user", "content": "d"}])


def test_the_markdown_transcript_shows_money_not_maths() -> None:
    """Issue 22: JupyterLab reads ``$…$`` as TeX; a transcript's prices stay prices, its maths maths."""
    conversation = Conversation("prices")
    conversation.add("What do $0.15 and $0.60 buy?", "Tokens; and $x^2$ is maths.", key="c1")
    markdown = conversation._repr_markdown_()
    assert r"\$0.15" in markdown and r"\$0.60" in markdown and "$x^2$" in markdown
    assert "$0.15" in repr(conversation)  # the plain transcript is the text as it was
