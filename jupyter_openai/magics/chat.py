"""The conversation magics: ``%%chat`` (one cell, one turn) and ``%chat_history``.

``%%chat`` sends the cell as the next user turn of a named conversation
(:mod:`~jupyter_openai.session.conversation`) with the system message and the earlier turns, through
the very path ``%%complete`` takes (:meth:`CompleteMagics.build` and :meth:`CompleteMagics.show_call`:
same options, same display, same settings and client, same log). The turn is keyed by the id of
the cell being run, which front ends send with each execution and IPython hands to the
``pre_run_cell`` event: re-running a cell replaces its own turn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand

from ..api.params import CHAT, OPTION_PARAMS, RESPONSES
from .configurable import usage_errors
from .options import argument, call_options, magic_arguments, parse_argstring

if TYPE_CHECKING:
    from ..session.conversation import Conversation

#: Outcome statuses a turn is kept with (an ``error`` turn is not added).
KEPT = ("ok", "truncated", "interrupted")
#: ``%%complete``'s parameter options that apply to a turn: those of chat or responses (``--logprobs``
#: is chat's ``top_logprobs``), one answer a turn (no ``-n``).
CHAT_PARAMS = tuple(p for p in OPTION_PARAMS if p.name != "n" and ({CHAT, RESPONSES} & set(p.endpoints)
                                                                    or p.name == "logprobs"))


@magics_class
class ChatMagics(Magics):
    """Conversations across cells; the settings, client and log are :class:`CompleteMagics`' own."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._running: list[list[Any]] = []  # per cell being run (nested runs too): [its id, turns made so far]

    @property
    def cell_id(self) -> str | None:
        """The id of the cell being run (None: the front end sent none, or no cell is running)."""
        return self._running[-1][0] if self._running else None

    def pre_run_cell(self, info: Any) -> None:
        """``pre_run_cell`` event: note the running cell's id (ipykernel takes it from the execute
        request's metadata, ``cellId``)."""
        cell_id = getattr(info, "cell_id", None)
        self._running.append([str(cell_id) if cell_id else None, 0])

    def post_run_cell(self, result: Any) -> None:
        """``post_run_cell`` event: the cell is over, its id no longer applies."""
        if self._running:
            self._running.pop()

    def turn_key(self) -> str | None:
        """The key of the next turn the running cell makes: its id, then ``id#2``, ``id#3`` … for more
        turns made by the same cell (two ``%chat`` lines), so each keeps its own place on a re-run."""
        if not self._running or self._running[-1][0] is None:
            return None
        entry = self._running[-1]
        entry[1] += 1
        return entry[0] if entry[1] == 1 else f"{entry[0]}#{entry[1]}"

    @property
    def settings(self) -> Any:
        """The loaded :class:`~jupyter_openai.magics.complete.CompleteMagics` (traits, client, log)."""
        found = self.shell.magics_manager.registry.get("CompleteMagics")
        if found is None:
            raise UsageError("jupyter_openai is not loaded: %load_ext jupyter_openai")
        return found

    # -- %%chat ----------------------------------------------------------------------
    @magic_arguments()
    @argument("--name", help="The conversation (default: default); each name is its own.")
    @argument("--reset", action="store_true", help="Start the conversation over (its system message is kept).")
    @argument("--max-turns", type=int, metavar="N", help="Send at most N turns, this one included; the oldest are "
              "dropped first (kept for the conversation; default: the chat_max_turns setting).")
    @argument("--token-budget", type=int, metavar="N", help="Send at most about N tokens (4 characters a token); the "
              "oldest turns are dropped first (kept for the conversation; default: the chat_max_tokens setting).")
    @call_options(system_help="Set the conversation's system message (kept for its later turns; \"\" removes it).",
                  params=CHAT_PARAMS)
    @argument("prompt", nargs="*", help="Line form only: the user turn.")
    @no_var_expand
    @line_cell_magic
    def chat(self, line: str, cell: str | None = None) -> None:
        """Send the cell as the next user turn of a conversation, with its system message and
        earlier turns; the answer streams as with ``%%complete``, whose options all apply.

        Each cell is one turn, keyed by the cell's id: re-running a cell replaces its own turn in
        place and sees only the turns before it, so editing cell 3 and re-running it changes what
        cell 5 sees when it runs next. Without a cell id (terminal IPython) every run appends.
        A failed call adds nothing; an interrupted one is kept with its partial text, marked so.
        The history is resent on every call, so chat and responses both work, on any server.

        Examples::

            %%chat --system "You are a patient maths tutor."
            My name is Ada. What is a prime number?

            %%chat
            What is my name?

            %chat --reset
            %chat_history
        """
        from ..calls.line import check_out_name, option_value, split_options

        magic = self.chat
        with usage_errors():
            argv, rest = split_options(line, magic.parser._option_string_actions)
            argv = [option_value(token, self.shell.user_ns) for token in argv]
        args = magic.parser.parse_args(argv)
        if args.out is not None:
            with usage_errors():
                check_out_name(args.out)
        if cell is not None and rest:
            raise UsageError(f"unexpected text on the %%chat line: {rest!r} (options start with -; the turn goes in "
                             "the cell)")
        prompt = rest if cell is None else (cell[:-1] if cell.endswith("\n") else cell)
        for flag, cap in (("--max-turns", args.max_turns), ("--token-budget", args.token_budget)):
            if cap is not None and cap < 1:
                raise UsageError(f"{flag} must be at least 1, got {cap}")
        conversation = _conversation(args.name)
        changed = self._control(conversation, args)
        if not prompt.strip():
            if changed:
                return
            raise UsageError("the prompt is empty: write the turn in the cell below %%chat")
        self._turn(conversation, args, prompt)

    def _control(self, conversation: Conversation, args: Any) -> bool:
        """Apply ``--reset``, ``--system`` and the caps; True if any was given."""
        from ..calls.line import unescape

        if args.reset:
            conversation.reset()
            print(f"Conversation {conversation.name!r} started over.")
        if args.system is not None:
            conversation.system = unescape(args.system) or None
        if args.max_turns is not None:
            conversation.max_turns = args.max_turns
        if args.token_budget is not None:
            conversation.max_tokens = args.token_budget
        return args.reset or args.system is not None or args.max_turns is not None or args.token_budget is not None

    def caps(self, conversation: Conversation) -> tuple[int | None, int | None]:
        """The caps a turn of ``conversation`` obeys: its own, else the settings' (turns, tokens)."""
        settings = self.settings
        turns = conversation.max_turns or settings.chat_max_turns
        tokens = conversation.max_tokens or settings.chat_max_tokens
        if tokens is None and settings.offline():
            from .sources import OFFLINE_TOKEN_BUDGET

            tokens = OFFLINE_TOKEN_BUDGET
        return turns, tokens

    def _turn(self, conversation: Conversation, args: Any, prompt: str) -> None:
        from ..api.params import COMPLETIONS
        from ..calls.run import Origin
        from ..calls.summary import dropped_turns
        from ..display.cell import error_line
        from ..session.conversation import Turn

        settings, key = self.settings, self.turn_key()
        max_turns, max_tokens = self.caps(conversation)
        plan = conversation.plan(prompt, key, max_turns=max_turns, max_tokens=max_tokens)
        request = settings.build(args, prompt, history=plan.history, system=conversation.system)
        if request.endpoint == COMPLETIONS:
            raise UsageError("%%chat works with the chat and responses endpoints only (-e chat or -e responses)")
        notes = (dropped_turns(plan.dropped, conversation.name, plan.why),) if plan.dropped else ()
        number = plan.index + 1
        origin = Origin("chat", settings._cell_number(), conversation=conversation.name, turn=number)

        def keep(outcome: Any) -> None:
            if outcome.status in KEPT:
                conversation.record(plan, Turn.answered(request.prompt, outcome, key))

        outcome = settings.show_call(args, request, origin, on_outcome=keep, notes=notes)
        if outcome.status not in KEPT:
            error_line(f"Turn {number} was not added to conversation {conversation.name!r} (the call failed); "
                       "run the cell again to retry")

    # -- %chat_history ---------------------------------------------------------------
    @magic_arguments()
    @argument("name", nargs="?", help="The conversation (default: default).")
    @argument("--clear", action="store_true", help="Forget its turns (the system message is kept).")
    @argument("--save", metavar="FILE", help="Write it to FILE as JSON (turns, and the messages as sent).")
    @argument("--load", metavar="FILE", help="Replace it with the conversation in FILE (JSON: saved here, or a "
              "list of chat messages).")
    @line_magic
    def chat_history(self, line: str) -> Any:
        """Show a conversation's transcript (Markdown in Jupyter), clear it, save or load it.

        Its value is the :class:`~jupyter_openai.session.conversation.Conversation`:
        ``.to_messages()`` is the list of messages to pass to a client, ``.turns`` can be edited,
        and ``jupyter_openai.conversations[name]`` is the same object from Python.
        """
        from ..session.conversation import Conversation, conversations

        args = parse_argstring(self.chat_history, line)
        if sum(bool(x) for x in (args.clear, args.save, args.load)) > 1:
            raise UsageError("use one of --clear, --save and --load at a time")
        conversation = _conversation(args.name)
        args.name = conversation.name
        if args.clear:
            conversation.reset()
            print(f"Conversation {args.name!r} cleared.")
            return None
        if args.save:
            try:
                conversation.save(args.save)
            except OSError as exc:
                raise UsageError(f"--save: cannot write {args.save}: {exc.strerror or exc}") from None
            print(f"Saved {len(conversation)} turn(s) of conversation {args.name!r} to {args.save}")
            return None
        if args.load:
            try:
                with usage_errors():
                    loaded = Conversation.load(args.load, args.name)
            except OSError as exc:
                raise UsageError(f"--load: cannot read {args.load}: {exc.strerror or exc}") from None
            conversations[args.name] = loaded
            print(f"Loaded {len(loaded)} turn(s) into conversation {args.name!r} from {args.load}")
            return None
        return conversation


def _conversation(name: str | None) -> Conversation:
    """The conversation ``name`` (None: the default one; the options leave the default unset so that the
    conversations module loads on first use, not with the extension)."""
    from ..session.conversation import conversations

    with usage_errors():
        return conversations.get() if name is None else conversations.get(name)


def load(ipython: Any) -> None:
    """Register the conversation magics and the cell-id events (from :func:`jupyter_openai.magics.complete.load`)."""
    from .configurable import register_following_cells

    register_following_cells(ipython, ChatMagics(ipython))


def unload(ipython: Any) -> None:
    """Undo :func:`load`."""
    from .configurable import remove_following_cells

    remove_following_cells(ipython, ChatMagics)
