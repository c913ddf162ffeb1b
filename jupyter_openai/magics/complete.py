"""The IPython magics: ``%%complete``, ``%complete``, ``%complete_log``, ``%complete_models``,
``%complete_form`` and ``%complete_local``, and the extension's load and unload (which also
load and unload :mod:`~jupyter_openai.magics.chat`' ``%%chat`` and ``%chat_history``).

They parse options, delegate to the core (:func:`~jupyter_openai.calls.request.build_request`,
:func:`~jupyter_openai.calls.run.run_call`, :func:`~jupyter_openai.calls.summary.summarize`) and display.
Settings are traits of :class:`CompleteMagics` (``%config CompleteMagics``,
``ipython_config.py``; declared in :mod:`~jupyter_openai.magics.configurable`), re-read on every
call. The HTTP stack is imported on first use, not at load time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import line_cell_magic, line_magic, magics_class, no_var_expand

from ..api.params import ENDPOINTS, OPTION_PARAMS, PARAMS
from . import batch
from .configurable import ConfiguredMagics, remove_magics, usage_errors
from .options import argument, call_options, magic_arguments, param_options, parse_argstring
from .questions import keep_question_prompts

#: The one line when Ctrl-C stops the final render or the status line (the call itself is over).
INTERRUPTED_DISPLAY = "Interrupted while showing the answer: the call is complete and logged"
LOG_COLUMNS = (
    "id",
    "timestamp",
    "source",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "latency",
    "prompt",
    "completion",
)


@magics_class
class CompleteMagics(ConfiguredMagics):
    """Send prompts to an OpenAI-compatible server and stream the answers into the cell."""

    # -- %%complete ----------------------------------------------------------------
    @magic_arguments()
    @call_options(system_help="System message (chat; instructions on responses).")
    @argument("--show-probs", action="store_true",
              help="Ask for token probabilities (top 5 unless --logprobs N) and colour each token by them.")
    @argument("--compare", action="store_true",
              help="Run every combination of comma-separated -m, -t and --seed values; show a grid.")
    @argument("prompt", nargs="*", help="Line form only: the prompt.")
    @no_var_expand  # {name} and $name in a prompt are text, not IPython expansions
    @line_cell_magic
    def complete(self, line: str, cell: str | None = None) -> None:
        """Send the cell (or the rest of the line) as a prompt and stream the answer.

        An option value written ``$name`` is the notebook variable ``name`` (``-m $model``);
        the prompt itself is sent as written (see ``--interpolate``).

        Examples::

            %%complete --model gpt-5.4-mini --reasoning-effort low --max-tokens 100
            Write a haiku about notebooks.

            %complete -m davinci-002 Once upon a time
        """
        from ..calls.line import check_out_name, option_value, split_options

        with usage_errors():
            argv, rest = split_options(line, self.complete.parser._option_string_actions)
            argv = [option_value(token, self.shell.user_ns) for token in argv]  # -m $model
        if cell is None:
            prompt = rest
        elif rest:
            raise UsageError(
                f"unexpected text on the %%complete line: {rest!r} (options start with -; the prompt goes in the cell)"
            )
        else:
            prompt = cell[:-1] if cell.endswith("\n") else cell  # the newline IPython appends to every cell
        if "--compare" in argv:  # comma-separated values: read per combination (lab_magics)
            from ..calls.run import Origin
            from .lab import run_compare

            return run_compare(self, argv, prompt, Origin("magic", self._cell_number()))
        args = self.complete.parser.parse_args(argv)
        if args.out is not None:
            with usage_errors():
                check_out_name(args.out)
        self._run(args, prompt)

    def _cell_number(self) -> int | None:
        """The number of the cell being run (``In [n]``). IPython 9 counts the cell before running
        it and IPython 8 after, so ``execution_count`` is off by one on one of them; the history
        of inputs is not (its entry 0 is a placeholder)."""
        history = getattr(self.shell, "history_manager", None)
        inputs = getattr(history, "input_hist_raw", None)
        if inputs:
            return len(inputs) - 1
        return getattr(self.shell, "execution_count", None)

    def _options(self, args: Any, prompt: str) -> dict[str, Any]:
        """The user's options for :func:`~jupyter_openai.calls.request.build_request` (None: not given)."""
        from ..calls.line import interpolate, schema_option, unescape, unfilled_names

        if not prompt.strip():
            raise UsageError("the prompt is empty: write it in the cell below %%complete")
        if args.interpolate or (args.interpolate is None and self.interpolate):
            with usage_errors():
                prompt = interpolate(prompt, self.shell.user_ns)
        elif names := unfilled_names(prompt, self.shell.user_ns):
            fields = ", ".join("{" + name + "}" for name in names)
            self._notes_before = [*self._notes_before, f"Note: {fields} sent as written; add -i to fill it from your "
                                  "variables"]
        options = {param.name: getattr(args, param.name, None) for param in OPTION_PARAMS}  # %%chat has fewer
        options["stop"] = [unescape(s) for s in args.stop] if args.stop else None
        options["schema"] = schema_option(args.schema, self.shell.user_ns)
        if getattr(args, "show_probs", False) and options.get("logprobs") is None:
            options["logprobs"] = 5
        system = unescape(args.system) if args.system is not None else None
        return {
            **options,
            "prompt": prompt,
            "model": args.model,
            "endpoint": args.endpoint,
            "system": system,
            "stream": False if args.no_stream else None,
        }

    def _run(self, args: Any, prompt: str) -> None:
        from ..calls.run import Origin

        self.show_call(args, self.build(args, prompt), Origin("magic", self._cell_number()))

    def build(self, args: Any, prompt: str, **extra: Any) -> Any:
        """The request for parsed options ``args`` and ``prompt`` (``extra``: more request fields,
        such as a conversation's ``history``); mistakes are one-line usage errors."""
        from ..calls.request import build_request

        self._notes_before = []  # notes about what is sent: shown after the call, with the others
        with usage_errors():
            return build_request({**self._options(args, prompt), **extra}, self.defaults())

    _notes_before: tuple[str, ...] | list[str] = ()  #: notes :meth:`build` made, for :meth:`show_call` to show

    def show_call(self, args: Any, request: Any, origin: Any, on_outcome: Callable[[Any], None] | None = None,
                  notes: tuple[str, ...] = ()) -> Any:
        """Run ``request`` and show it as ``%%complete`` does (streamed into the cell, ``--out``, then
        the status line, the notes (``notes``: the caller's, first) and the errors); return the
        :class:`~jupyter_openai.calls.run.CallOutcome`. ``on_outcome`` gets it as soon as the call is
        over, before anything is shown."""
        from ..calls.run import run_call
        from ..calls.summary import summarize
        from ..display.cell import CellView, error_line, show_notes, use_display_handles
        from .sources import source_of

        before, self._notes_before = [*self._notes_before, *notes], []

        client = self.client()
        shown_as = (args.format or self.output_format).lower()
        markdown = shown_as == "markdown" or (shown_as == "auto" and use_display_handles(self.shell))
        view = CellView(self.shell, n=request.choices, markdown=markdown,
                        reasoning=self.show_reasoning and not args.no_reasoning)
        with usage_errors():
            outcome = run_call(
                client,
                request,
                on_update=None if args.quiet else view.update,
                log=self.log,
                origin=origin,
            )
        if on_outcome is not None:
            on_outcome(outcome)
        if args.out:  # first: Ctrl-C while the answer is shown must not lose it
            self.shell.user_ns[args.out] = outcome.texts if len(outcome.texts) > 1 else outcome.text
        try:
            if not args.quiet:
                view.finish(outcome.progress)
            if getattr(args, "show_probs", False) and not args.quiet:
                from .lab import show_probs

                before += show_probs(self, outcome, origin)
            limit = "option" if getattr(args, "max_tokens", None) is not None else source_of(self, "max_tokens")
            summary = summarize(outcome, offline=self.offline(), limit_source=limit)
            if not args.quiet:
                view.status(summary.status)
            show_notes(self.shell, [*before, *summary.notes], summary.errors)
        except KeyboardInterrupt:
            error_line(INTERRUPTED_DISPLAY + (f" (the answer is in {args.out})" if args.out else ""))
        return outcome

    # -- %complete_log -------------------------------------------------------------
    @magic_arguments()
    @argument("-n", "--last", type=int, default=10, help="How many of the latest calls to show.")
    @argument("--clear", action="store_true", help="Forget the calls logged so far.")
    @argument("--save", metavar="PATH", help="Export the whole log to PATH (.json, .jsonl or .csv).")
    @argument("--full", action="store_true", help="Show every column and the whole text of each call.")
    @line_magic
    def complete_log(self, line: str) -> Any:
        """Show the latest calls of the session log as a table: empty columns hidden, text cut to
        fit (``--full`` for all of it; ``jupyter_openai.session_log`` for every field)."""
        from ..display.cell import log_table

        args = parse_argstring(self.complete_log, line)
        log = self.log
        if args.clear:
            log.clear()
            print("Session log cleared.")
            return None
        if args.save:
            writers = {".json": log.to_json, ".jsonl": log.to_jsonl, ".csv": log.to_csv}
            suffix = next((s for s in writers if args.save.lower().endswith(s)), None)
            if suffix is None:
                raise UsageError("--save needs a file name ending in .json, .jsonl or .csv")
            try:
                writers[suffix](args.save)
            except OSError as exc:
                raise UsageError(f"--save: cannot write {args.save}: {exc.strerror or exc}") from None
            print(f"Saved {len(log)} call(s) to {args.save}")
            return None
        from ..session.cost import money, session_total, unpriced

        if len(log):
            unknown = unpriced(log)
            print(f"Session cost: {money(session_total(log))} over {len(log)} call(s)"
                  + (f" ({unknown} of unknown cost)" if unknown else ""))
        return log_table(log.tail(args.last), LOG_COLUMNS, full=args.full, total=len(log))

    # -- %complete_models ----------------------------------------------------------
    @magic_arguments()
    @argument("model_id", nargs="?", help="Describe this model instead of listing all.")
    @line_magic
    def complete_models(self, line: str) -> Any:
        """List the server's models, or describe one: ``%complete_models [ID]``."""
        from ..api.model_list import created_day
        from ..display.cell import Table, error_line
        from ..errors import OpenAIError

        args = parse_argstring(self.complete_models, line)
        client = self.client()
        try:
            with usage_errors():
                models = [client.retrieve_model(args.model_id)] if args.model_id else client.list_models()
        except OpenAIError as exc:
            error_line(str(exc))
            return None
        rows = []
        for model in sorted(models, key=lambda m: str(m.get("id"))):
            rows.append({**model, "created": created_day(model.get("created"))})
        columns = ["id", "owned_by", "created"] + sorted(
            {k for m in rows for k in m} - {"id", "owned_by", "created", "object"}
        )
        return Table(rows, columns if args.model_id else ["id", "owned_by", "created"])

    # -- %complete_config ----------------------------------------------------------
    @line_magic
    def complete_config(self, line: str) -> Any:
        """Show each setting (key masked) with where it comes from: ``%config``, the config file,
        the environment, the offline model, the server, or the default."""
        from ..display.cell import Table
        from .sources import report

        if line.strip():
            raise UsageError("%complete_config takes no arguments")
        return Table(report(self), ("setting", "value", "source"))

    # -- %complete_form ------------------------------------------------------------
    @magic_arguments()
    @argument("-m", "--model", help="Preset model.")
    @argument("-e", "--endpoint", choices=ENDPOINTS, help="Preset endpoint.")
    @argument("-s", "--system", help="Preset system message (chat).")
    @param_options((PARAMS["temperature"], PARAMS["max_tokens"]), prefix="Preset: ")
    @argument("--chat", nargs="?", const="default", metavar="NAME",
              help="Conversation mode: a transcript above the prompt, Send adds a turn of conversation NAME "
                   "(default: default, shared with %%chat), Reset clears it.")
    @argument("prompt", nargs="*", help="Preset prompt.")
    @line_magic
    def complete_form(self, line: str) -> Any:
        """Open the form: tune parameters with sliders, stream the answer, stop it."""
        from ..calls.line import option_value, split_options, unescape
        from ..widgets.form import CompletionForm

        with usage_errors():  # read as %%complete's line is: quotes removed, the prompt as written
            argv, prompt = split_options(line, self.complete_form.parser._option_string_actions)
            argv = [option_value(token, self.shell.user_ns) for token in argv]
        args = self.complete_form.parser.parse_args(argv)
        if args.model is not None and not args.model.strip():
            raise UsageError("the model is empty: name one (-m MODEL, or the model setting)")
        presets = {
            "model": args.model,
            "endpoint": args.endpoint,
            "system": unescape(args.system) if args.system is not None else None,
            "temperature": args.temperature,
            "max_tokens": args.max_tokens,
            "prompt": prompt or None,
        }
        self.client()  # settings problems show here, as one line, before the form is drawn
        listed = self.server_picks_model() and args.model is None  # the form's own listing fills it in
        presets = {k: v for k, v in presets.items() if v is not None}
        if args.chat is not None:
            return self._chat_form(args.chat, listed, presets)
        return CompletionForm(self.client, log=self.log, defaults=self.defaults(ask_server=not listed),
                              model_from_server=listed, **presets)

    def _chat_form(self, name: str, listed: bool, presets: dict[str, Any]) -> Any:
        """The form in conversation mode, with the caps ``%%chat`` applies to ``name``."""
        from ..session.conversation import conversations
        from ..widgets.chat import ChatForm

        with usage_errors():
            conversation = conversations.get(name)
        chat = self.shell.magics_manager.registry.get("ChatMagics")
        max_turns, max_tokens = chat.caps(conversation) if chat is not None else (None, None)
        return ChatForm(self.client, log=self.log, defaults=self.defaults(ask_server=not listed),
                        model_from_server=listed, name=name, max_turns=max_turns, max_tokens=max_tokens, **presets)

    # -- %complete_local -----------------------------------------------------------
    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=("start", "stop", "status"), help="What to do.")
    @line_magic
    def complete_local(self, line: str) -> None:
        """Start, stop or show the bundled offline model server: ``%complete_local start|stop|status``."""
        from ..offline import server as local_server

        args = parse_argstring(self.complete_local, line)
        if args.action == "stop":
            if not local_server.stop_shared_server():
                print("The local model server is not running.")
            elif others := getattr(local_server.shared_server(start=False), "others", 0):
                print(f"This kernel no longer uses the local model server; {others} other process(es) still do, "
                      "so it keeps running (it stops once idle).")
            else:
                print("Stopped the local model server.")
            return
        if not local_server.is_available():
            raise UsageError(f"The offline model is not installed: {local_server.INSTALL_HINT}")
        with usage_errors(local_server.LocalServerError):
            server = local_server.shared_server(start=args.action == "start")
        state = server.status()
        if not state["running"]:
            print(
                "The local model server is not running (it starts on first use; %complete_local start starts it now)."
            )
            return
        shared = f", shared by {state['kernels']} processes" if int(state.get("kernels") or 0) > 1 else ""
        print(
            f"{local_server.MODEL_LABEL} as model {state['model']!r} at {state['base_url']} "
            f"(pid {state['pid']}, log {state['log']}{shared})"
        )


def load(ipython: Any) -> None:
    """Register the magics (``%%chat`` and ``%chat_history`` too) and the input cleanup that keeps
    ``?`` prompts (``%load_ext``)."""
    from . import chat, key, lab

    ipython.register_magics(CompleteMagics)
    chat.load(ipython)
    batch.register(ipython)
    lab.load(ipython)
    key.load(ipython)
    if keep_question_prompts not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(keep_question_prompts)


def unload(ipython: Any) -> None:
    """Undo :func:`load`: the magics, their configurable and connections, the input cleanup."""
    from . import chat, key, lab

    key.unload(ipython)
    lab.unload(ipython)
    chat.unload(ipython)
    while keep_question_prompts in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(keep_question_prompts)
    batch.unregister(ipython)
    instance = remove_magics(ipython, CompleteMagics)
    if instance is not None:
        if instance in ipython.configurables:
            ipython.configurables.remove(instance)
        instance.close()
