"""The form's conversation mode: the form with a transcript above the prompt, Send and Reset.

:class:`ChatForm` is the :class:`~jupyter_openai.widgets.form.CompletionForm` (same fields, same
request path, same Stop) whose calls are turns of a named conversation from
:data:`~jupyter_openai.session.conversation.conversations`, the registry ``%%chat`` uses, so a form and
cells share a conversation by name. Send sends the prompt with the system message and the earlier
turns, then adds the turn (a failed call adds nothing; a stopped one is kept with its partial text)
and clears the prompt; Reset starts the conversation over. The system field is the conversation's
system message.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W

from ..calls.request import CallRequest, build_request
from ..calls.run import CallOutcome, Origin
from ..calls.summary import dropped_turns
from ..errors import ConfigurationError
from ..markdown import NO_MATHS
from ..session.conversation import DEFAULT_NAME, Conversation, Conversations, Plan, Turn, conversations
from .controls import tag
from .form import CompletionForm

__all__ = ["ChatForm", "transcript_html"]

#: Statuses a turn is kept with (an ``error`` call adds nothing).
KEPT = ("ok", "truncated", "interrupted")


def transcript_html(conversation: Conversation) -> str:
    """The conversation as HTML for the form (every text escaped, never typeset as TeX)."""
    if not conversation.turns and not conversation.system:
        return f"<i>Conversation {html.escape(conversation.name)}: no turns yet.</i>"
    return f'<div class="{NO_MATHS}">{_turns_html(conversation)}</div>'


def _turns_html(conversation: Conversation) -> str:
    rows = [f"<div><b>Conversation {html.escape(conversation.name)}</b>: {len(conversation)} turn(s)</div>"]
    if conversation.system:
        rows.append(f"<div><i>System:</i> {html.escape(conversation.system)}</div>")
    for number, turn in enumerate(conversation.turns, 1):
        mark = "" if turn.status == "ok" else f" ({html.escape(turn.status)})"
        rows.append(f"<div><b>{number}. User:</b> {html.escape(turn.user)}</div>"
                    f"<div style='margin-left:1em'><b>Assistant{mark}:</b> {html.escape(turn.reply)}</div>")
    return "".join(rows)


class ChatForm(CompletionForm):
    """The form in conversation mode: each Send is one turn of the conversation ``name``.

    Takes :class:`CompletionForm`'s arguments, and ``name`` (the conversation), ``registry`` (where
    conversations live; default the one ``%%chat`` uses) and the caps ``max_turns`` and
    ``max_tokens`` (None: the conversation's own, if any).
    """

    def __init__(self, *args: Any, name: str = DEFAULT_NAME, registry: Conversations = conversations,
                 max_turns: int | None = None, max_tokens: int | None = None, **kwargs: Any) -> None:
        self.conversation = registry.get(name)
        if self.conversation.system is not None and "system" not in kwargs:
            kwargs["system"] = self.conversation.system
        super().__init__(*args, **kwargs)
        self._caps = (max_turns, max_tokens)
        self._plan: Plan | None = None
        self._request: CallRequest | None = None
        self._transcript = tag(W.HTML(layout=W.Layout(width="100%", max_height="24em", overflow="auto")),
                               "transcript")
        self._reset = tag(W.Button(description="Reset", icon="undo", tooltip="Start the conversation over"), "reset")
        self._reset.on_click(lambda _button: self.reset())
        self._submit.description = "Send"
        children = list(self.children)
        at = children.index(self._prompt)
        children.insert(at, self._transcript)
        buttons = next(child for child in children if isinstance(child, W.HBox) and self._submit in child.children)
        buttons.children = (*buttons.children, self._reset)
        self.children = tuple(children)
        self.add_class("jupyter-openai-chat-form")
        self.refresh()

    # -- the request -----------------------------------------------------------------
    def request(self) -> CallRequest:
        """The next turn's request: the prompt after the system message and the earlier turns."""
        if not self._prompt.value.strip():
            raise ConfigurationError("the prompt is empty: type it in the prompt box")
        options = self.options()
        system = self._system.value.strip() or None
        max_turns, max_tokens = self._caps
        plan = self.conversation.plan(options["prompt"], None, max_turns=max_turns, max_tokens=max_tokens)
        request = build_request({**options, "system": system, "history": plan.history}, self._base)
        if request.endpoint not in ("chat", "responses"):
            raise ConfigurationError("a conversation works with the chat and responses endpoints only")
        return request

    def submit(self) -> bool:
        """Send the prompt as the next turn (in a thread); False if a call is running or the values are wrong."""
        if self.running:
            return False
        try:
            request = self.request()
        except ConfigurationError:
            return super().submit()  # shows the error line as the form does
        max_turns, max_tokens = self._caps
        self.conversation.system = self._system.value.strip() or None  # the field is the conversation's
        plan = self._plan = self.conversation.plan(request.prompt, None, max_turns=max_turns, max_tokens=max_tokens)
        self._notes_before = [dropped_turns(plan.dropped, self.conversation.name, plan.why)] if plan.dropped else []
        self._request = request
        return super().submit()

    def _origin(self) -> Origin:
        plan = self._plan
        return Origin("form", conversation=self.conversation.name, turn=plan.index + 1 if plan is not None else None)

    def _finished(self, outcome: CallOutcome) -> None:
        plan, request = self._plan, outcome.request or self._request
        if plan is None or request is None or outcome.status not in KEPT:
            return
        self.conversation.record(plan, Turn.answered(request.prompt, outcome))
        self._plan = None
        if outcome.status != "interrupted":
            self._prompt.value = ""
        self.refresh()

    # -- public actions ----------------------------------------------------------------
    def reset(self) -> None:
        """Start the conversation over (its system message is kept)."""
        self.stop()
        self.conversation.reset()
        self._render([])
        self.refresh()

    def refresh(self) -> None:
        """Redraw the transcript (after ``%%chat`` cells changed the conversation, say)."""
        self._transcript.value = transcript_html(self.conversation)

    transcript = property(lambda self: self._transcript.value, doc="The transcript's HTML.")

    def __repr__(self) -> str:
        return f"ChatForm(conversation={self.conversation.name!r}, turns={len(self.conversation)})"
