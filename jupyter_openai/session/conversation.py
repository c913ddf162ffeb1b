"""Conversations across cells: a system message and ordered turns, each keyed by the cell that made it.

A :class:`Conversation` is what ``%%chat`` and the form's conversation mode send: the system
message, then every earlier turn (user text, then assistant text), then the new user text. A
turn is keyed by the id of the notebook cell that ran it (JupyterLab, Notebook 7 and VS Code
send one with each execution), so re-running a cell replaces its own turn in place and sees only
the turns before it; a turn with no key (terminal IPython) is appended. Caps keep the history
bounded: at most ``max_turns`` turns and an estimated ``max_tokens`` budget, oldest dropped first.
A turn the model refused keeps the refusal's text, which is what later calls resend as its answer.

The history is resent on every call (stateless), so it works on chat and on responses alike,
on any OpenAI-compatible server. :data:`conversations` is the registry by name that the magic
and the form share. No IPython here.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import ConfigurationError
from . import conversation_file

DEFAULT_NAME = "default"
FORMAT_VERSION = conversation_file.FORMAT_VERSION
TURN_STATUSES = conversation_file.TURN_STATUSES
#: Tokens counted for each message besides its text (role and separators, as chat templates add).
MESSAGE_OVERHEAD = 4


def estimate_tokens(text: str) -> int:
    """A rough token count: about four characters a token (OpenAI's rule of thumb for English)."""
    return math.ceil(len(text) / 4) if text else 0


@dataclass
class Turn:
    """One exchange: what the user sent, what came back (partial when ``status`` is ``interrupted``),
    the cell it came from (``key``; None when the front end sent no cell id), and the model's refusal
    when it refused instead of answering."""

    user: str
    assistant: str
    key: str | None = None
    status: str = "ok"
    model: str | None = None
    refusal: str | None = None

    @classmethod
    def answered(cls, prompt: str, outcome: Any, key: str | None = None) -> Turn:
        """The turn a finished call makes (``outcome``: a :class:`~jupyter_openai.calls.run.CallOutcome`):
        its text, status and model, and its refusal if any."""
        return cls(prompt, outcome.text, key, outcome.status, outcome.model, getattr(outcome, "refusal", "") or None)

    @property
    def reply(self) -> str:
        """What the assistant said: its text, else its refusal (resent as the answer, never an empty message)."""
        return self.assistant or self.refusal or ""

    def messages(self) -> list[dict[str, str]]:
        """The turn as a user message and an assistant message."""
        return [{"role": "user", "content": self.user}, {"role": "assistant", "content": self.reply}]

    def tokens(self) -> int:
        """The estimated tokens of its two messages."""
        return estimate_tokens(self.user) + estimate_tokens(self.reply) + 2 * MESSAGE_OVERHEAD


@dataclass
class Plan:
    """What the next call of a conversation sends: the earlier turns as messages, where the new
    turn goes (``index``; ``replaces``: it takes the place of the cell's earlier turn), and how
    many of the oldest turns were dropped to fit the caps (``dropped``, and ``why``)."""

    history: list[dict[str, str]]
    index: int
    replaces: bool
    dropped: int = 0
    why: str = ""


@dataclass
class Conversation:
    """A named conversation: its system message, its turns in order, its caps (None: no cap)."""

    name: str = DEFAULT_NAME
    system: str | None = None
    turns: list[Turn] = field(default_factory=list)
    max_turns: int | None = None
    max_tokens: int | None = None

    def __len__(self) -> int:
        return len(self.turns)

    def __iter__(self) -> Iterator[Turn]:
        return iter(self.turns)

    # -- what is sent ----------------------------------------------------------------
    def to_messages(self, *, system: bool = True) -> list[dict[str, str]]:
        """The whole conversation as chat messages (the system message first), ready for
        ``client.chat(model, messages)``."""
        head = [{"role": "system", "content": self.system}] if system and self.system else []
        return head + [message for turn in self.turns for message in turn.messages()]

    def to_input(self) -> list[dict[str, str]]:
        """The turns as the Responses API's ``input`` list of message items (the system message goes as
        ``instructions``)."""
        return [{"type": "message", **message} for message in self.to_messages(system=False)]

    def index_of(self, key: str | None) -> int | None:
        """The position of the turn made by cell ``key``, or None."""
        if key is None:
            return None
        return next((i for i, turn in enumerate(self.turns) if turn.key == key), None)

    def plan(self, prompt: str, key: str | None = None, *, max_turns: int | None = None,
             max_tokens: int | None = None) -> Plan:
        """The next call for ``prompt`` from cell ``key``: a cell that made a turn before sees the
        turns above its own and will replace it; any other cell sees them all and appends. The
        caps (these, else the conversation's own) drop the oldest turns first: at most ``max_turns``
        earlier turns, and the system message, the kept turns and the prompt within ``max_tokens``
        estimated tokens. Nothing is changed until :meth:`record`."""
        max_turns = self.max_turns if max_turns is None else max_turns
        max_tokens = self.max_tokens if max_tokens is None else max_tokens
        index = self.index_of(key)
        replaces = index is not None
        earlier = self.turns[:index] if replaces else list(self.turns)
        dropped, why = 0, ""
        if max_turns is not None and len(earlier) > max(max_turns - 1, 0):
            dropped = len(earlier) - max(max_turns - 1, 0)
            why = f"at most {max_turns} turn(s)"
        if max_tokens is not None:
            fixed = estimate_tokens(self.system or "") + estimate_tokens(prompt) + 2 * MESSAGE_OVERHEAD
            kept = earlier[dropped:]
            while kept and fixed + sum(turn.tokens() for turn in kept) > max_tokens:
                kept = kept[1:]
                dropped += 1
                why = why or f"about {max_tokens} tokens"
        history = [message for turn in earlier[dropped:] for message in turn.messages()]
        return Plan(history, (index if replaces else len(self.turns)) - dropped, replaces, dropped, why)

    def record(self, plan: Plan, turn: Turn) -> int:
        """Store ``turn`` as ``plan`` says (dropping the oldest turns it dropped); return its number (1-based)."""
        if turn.status not in TURN_STATUSES:
            raise ConfigurationError(f"a turn's status is one of {', '.join(TURN_STATUSES)}, got {turn.status!r}")
        del self.turns[:plan.dropped]
        if plan.replaces:
            self.turns[plan.index] = turn
        else:
            self.turns.append(turn)
        return (plan.index if plan.replaces else len(self.turns) - 1) + 1

    # -- editing ---------------------------------------------------------------------
    def add(self, user: str, assistant: str, key: str | None = None, status: str = "ok") -> Turn:
        """Append a turn by hand (from Python)."""
        turn = Turn(user, assistant, key, status)
        self.record(Plan([], len(self.turns), False), turn)
        return turn

    def reset(self, system: str | None = None) -> None:
        """Start over: no turns; the system message is kept unless ``system`` is given."""
        self.turns.clear()
        if system is not None:
            self.system = system or None

    @classmethod
    def from_messages(cls, messages: Sequence[Mapping[str, Any]], name: str = DEFAULT_NAME) -> Conversation:
        """A conversation from chat messages: a leading system message, then user/assistant pairs
        (a user message with no answer after it gets an empty one; an assistant message with a
        ``refusal`` and no content, as chat answers a refusal, keeps it)."""
        conversation = cls(name)
        items = list(enumerate(messages))
        if items and _field(items[0][1], 0, "role") in ("system", "developer"):
            conversation.system = _content(items.pop(0)[1], 0)
        for at in range(0, len(items), 2):
            i, message = items[at]
            if _field(message, i, "role") != "user":
                raise ConfigurationError(f"message {i}: expected a user message, got role {message['role']!r}")
            turn = Turn(_content(message, i), "")
            if at + 1 < len(items):
                j, reply = items[at + 1]
                if _field(reply, j, "role") != "assistant":
                    raise ConfigurationError(f"message {j}: expected an assistant message after the user's")
                if reply.get("content") is None and isinstance(reply.get("refusal"), str):
                    turn.refusal = reply["refusal"]
                else:
                    turn.assistant = _content(reply, j)
            conversation.turns.append(turn)
        return conversation

    # -- files -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The conversation as plain data (what :meth:`save` writes)."""
        return {"version": FORMAT_VERSION, "name": self.name, "system": self.system, "max_turns": self.max_turns,
                "max_tokens": self.max_tokens, "turns": [asdict(turn) for turn in self.turns],
                "messages": self.to_messages()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], name: str | None = None) -> Conversation:
        """The conversation :meth:`to_dict` describes (``messages`` alone, as the client takes them, also
        works). Every field's type is checked: a mistake is one :class:`ConfigurationError` naming the field."""
        if isinstance(data, list):
            return cls.from_messages(data, name or DEFAULT_NAME)
        fields = conversation_file.check(data)
        own = name or fields["name"] or DEFAULT_NAME
        if fields["turns"] is None:
            conversation = cls.from_messages(fields["messages"] or [], own)
        else:
            conversation = cls(own, fields["system"], [Turn(**turn) for turn in fields["turns"]])
        conversation.max_turns, conversation.max_tokens = fields["max_turns"], fields["max_tokens"]
        return conversation

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the conversation to ``path`` as JSON, atomically (a temporary file in the same folder,
        then renamed over it: a failure leaves any earlier file whole); return the text written. Text
        UTF-8 cannot hold (a lone surrogate) is written as a JSON ``\\uXXXX`` escape, which loads back the same."""
        data = conversation_file.encode(self.to_dict())
        conversation_file.write_atomically(os.path.expanduser(path), data)
        return data.decode("utf-8")

    @classmethod
    def load(cls, path: str | os.PathLike[str], name: str | None = None) -> Conversation:
        """Read a conversation written by :meth:`save` (or a JSON list of messages); a file that is not
        one is a one-line :class:`ConfigurationError` naming the file and the field."""
        with open(os.path.expanduser(path), encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except ValueError as exc:
                raise ConfigurationError(f"{path} is not JSON: {exc}") from None
        try:
            return cls.from_dict(data, name)
        except ConfigurationError as exc:
            raise ConfigurationError(f"{path}: {exc}") from None

    # -- showing ---------------------------------------------------------------------
    def transcript(self, markdown: bool = False) -> str:
        """The conversation as text (``markdown``: headed and quoted for a notebook)."""
        lines = [f"Conversation {self.name!r}: {len(self.turns)} turn(s)"]
        if markdown:
            lines = [f"**Conversation `{self.name}`**: {len(self.turns)} turn(s)"]
        if self.system:
            lines.append(f"*System:* {self.system}" if markdown else f"[system] {self.system}")
        for number, turn in enumerate(self.turns, 1):
            marks = [turn.status] if turn.status != "ok" else []
            marks += ["refused"] if turn.refusal and not turn.assistant else []
            mark = f" ({', '.join(marks)})" if marks else ""
            if markdown:
                lines += [f"**{number}. User:** {turn.user}", f"**Assistant{mark}:** {turn.reply}"]
            else:
                lines += [f"[{number}. user] {turn.user}", f"[assistant{mark}] {turn.reply}"]
        return ("\n\n" if markdown else "\n").join(lines)

    def __repr__(self) -> str:
        return self.transcript()

    def _repr_markdown_(self) -> str:
        from ..markdown import escape_money

        return escape_money(self.transcript(markdown=True))  # "$5" is money, not TeX


def _field(message: Any, index: int, name: str) -> Any:
    if not isinstance(message, Mapping) or name not in message:
        raise ConfigurationError(f"message {index}: needs a {name}")
    return message[name]


def _content(message: Mapping[str, Any], index: int) -> str:
    content = _field(message, index, "content")
    if not isinstance(content, str):
        raise ConfigurationError(f"message {index}: only text content is kept in a conversation")
    return content


def _cap(value: Any) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigurationError(f"a cap is a whole number of at least 1, got {value!r}")
    return value


class Conversations:
    """The conversations of a session by name (made on first use); thread-safe."""

    def __init__(self) -> None:
        self._items: dict[str, Conversation] = {}
        self._lock = threading.Lock()

    def get(self, name: str = DEFAULT_NAME) -> Conversation:
        """The conversation called ``name``, made empty if there is none."""
        if not name or not name.strip():
            raise ConfigurationError("a conversation needs a name")
        with self._lock:
            return self._items.setdefault(name, Conversation(name))

    def __getitem__(self, name: str) -> Conversation:
        return self.get(name)

    def __setitem__(self, name: str, conversation: Conversation) -> None:
        if not isinstance(conversation, Conversation):
            conversation = Conversation.from_messages(conversation, name)
        conversation.name = name
        with self._lock:
            self._items[name] = conversation

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def pop(self, name: str) -> Conversation | None:
        """Forget the conversation called ``name``."""
        with self._lock:
            return self._items.pop(name, None)

    def clear(self) -> None:
        """Forget every conversation."""
        with self._lock:
            self._items.clear()

    def __repr__(self) -> str:
        return f"<Conversations: {', '.join(f'{n} ({len(c)} turns)' for n, c in self._items.items()) or 'none'}>"


#: The conversations shared by ``%%chat`` and the form within one kernel.
conversations = Conversations()
