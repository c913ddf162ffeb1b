"""The teaching lab's magic side: ``%complete_replay``, ``%%complete --compare`` and ``--show-probs``.

They reuse :class:`~jupyter_openai.magics.complete.CompleteMagics`' settings, client and log (the instance
registered in the shell's magics manager) and delegate to the core: :mod:`~jupyter_openai.transport.replay`,
:mod:`~jupyter_openai.calls.compare`, :mod:`~jupyter_openai.api.logprobs` and :mod:`~jupyter_openai.session.cost`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_magic, magics_class

from .configurable import usage_errors
from .options import argument, magic_arguments, parse_argstring

NO_PROBS = ("No token probabilities came back: the {endpoint} endpoint of this server sent none "
            "(the Responses API and some servers do not send logprobs)")


def complete_magics(shell: Any) -> Any:
    """The shell's :class:`~jupyter_openai.magics.complete.CompleteMagics` (loaded with the extension)."""
    instance = shell.magics_manager.registry.get("CompleteMagics")
    if instance is None:
        raise UsageError("jupyter_openai is not loaded: %load_ext jupyter_openai")
    return instance


# -- --show-probs --------------------------------------------------------------------
def show_probs(magics: Any, outcome: Any, origin: Any) -> list[str]:
    """Show the answer's tokens coloured by probability, as one output: in a kernel with ipywidgets the
    interactive view (click a token; on completions, continue from an alternative) with the HTML view
    as its fallback in the same bundle (what nbviewer and GitHub show); elsewhere the HTML view (hover
    for the alternatives). Returns the note to show after the status line when none came back."""
    from IPython.display import HTML, display

    from ..widgets.probs import probs_html

    if not outcome.logprobs:
        endpoint = outcome.request.endpoint if outcome.request is not None else "?"
        return [NO_PROBS.format(endpoint=endpoint)] if outcome.status == "ok" else []
    if getattr(magics.shell, "kernel", None) is not None:  # widgets need a front end to talk to
        try:
            view = probs_view(magics, outcome, origin)
        except ImportError:  # no ipywidgets: the HTML view is all
            view = None
        if view is not None:
            display(view)  # its bundle: the widget and the HTML view
            return []
    display(HTML(probs_html(outcome.logprobs)))
    return []


def probs_view(magics: Any, outcome: Any, origin: Any) -> Any:
    """The interactive view of ``outcome``'s tokens; on the completions endpoint a click on an
    alternative sends the prompt, the text so far and that token, as a new (logged) call."""
    from ..api.params import COMPLETIONS
    from ..widgets.probs import ProbsView

    request = outcome.request
    on_continue = None
    if request is not None and request.endpoint == COMPLETIONS:
        def on_continue(text: str) -> Sequence[Any]:
            from ..calls.run import run_call

            more = dataclasses.replace(request, prompt=request.prompt + text)
            with usage_errors():
                return run_call(magics.client(), more, log=magics.log, origin=origin).logprobs
    return ProbsView(outcome.logprobs, on_continue=on_continue)


# -- %%complete --compare ------------------------------------------------------------
class Grid:
    """The comparison grid: one row per call, the compared values, the answer, tokens, latency, cost."""

    def __init__(self, rows: list[dict[str, Any]], compared: Sequence[str]) -> None:
        self.rows = rows
        self.compared = list(compared)

    def _summary(self) -> str:
        from ..session.cost import money

        costs = [r["cost_usd"] for r in self.rows if r["cost_usd"] is not None]
        total = money(sum(costs)) if costs else "cost unknown"
        unknown = len(self.rows) - len(costs)
        return f"{len(self.rows)} calls · {total}" + (f" ({unknown} of unknown cost)" if costs and unknown else "")

    @staticmethod
    def _tokens(row: dict[str, Any]) -> str:
        from ..calls.summary import token_words

        if row["prompt_tokens"] is not None and row["completion_tokens"] is not None:
            return f"{row['prompt_tokens']} / {row['completion_tokens']}"
        return token_words(row["prompt_tokens"], row["completion_tokens"],  # what is missing, in words
                           row.get("completion_tokens_estimated"))

    def _cells(self, row: dict[str, Any]) -> list[str]:
        from ..session.cost import money

        latency = f"{row['latency']:.2f} s" if isinstance(row["latency"], (int, float)) else "?"
        status = row["status"] if not row["error"] else f"{row['status']}: {row['error']}"
        return [*(str(row[name]) for name in self.compared), row["answer"], self._tokens(row), latency,
                money(row["cost_usd"]) if row["cost_usd"] is not None else "unknown", status]

    @property
    def headers(self) -> list[str]:
        return [*self.compared, "answer", "tokens in / out", "latency", "cost", "status"]

    def _repr_html_(self) -> str:
        import html

        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.headers)
        body = ""
        for row in self.rows:
            cells = self._cells(row)
            body += "<tr>" + "".join(
                f'<td style="text-align:left;white-space:pre-wrap;vertical-align:top">{html.escape(c)}</td>'
                for c in cells) + "</tr>"
        return (f'<table class="jo-grid tex2jax_ignore mathjax_ignore"><thead><tr>{head}</tr></thead>'  # text, not TeX
                f"<tbody>{body}</tbody></table>"
                f"<div>{html.escape(self._summary())}</div>")

    def __repr__(self) -> str:
        lines = []
        for row in self.rows:
            cells = self._cells(row)
            label = ", ".join(f"{h}={c}" for h, c in zip(self.headers, cells[:len(self.compared)], strict=False))
            rest = " · ".join(cells[len(self.compared) + 1:])
            lines.append(f"[{label}] {rest}\n{cells[len(self.compared)]}")
        return "\n\n".join(lines + [self._summary()])


def run_compare(magics: Any, argv: list[str], prompt: str, origin: Any) -> None:
    """Run every combination of the comma-separated ``-m``, ``-t`` and ``--seed`` values in ``argv``,
    a few at once, each logged; show the grid (``-o``: store it as a DataFrame)."""
    from IPython.display import display

    from ..calls import compare
    from ..calls.line import check_out_name
    from ..calls.request import build_request
    from ..calls.run import run_call
    from ..errors import ConfigurationError
    from ..session.cost import pricing

    parser = magics.complete.parser
    with usage_errors():
        combinations = compare.expand(argv, parser._option_string_actions)
    requests = []
    out = quiet = None
    magics._notes_before = ()  # notes the combinations' options make (the same for each): shown once, after
    for combination in combinations:
        args = parser.parse_args(combination.argv)
        out, quiet = args.out, args.quiet
        with usage_errors():
            if out is not None:
                check_out_name(out)
            requests.append(build_request(magics._options(args, prompt), magics.defaults()))
    with usage_errors():
        pricing.check_budget(magics.log)
    client = magics.client()

    def call(request: Any) -> Any:
        try:
            return run_call(client, request, log=magics.log, origin=origin)
        except ConfigurationError as exc:  # the budget ran out while the others ran
            return exc

    outcomes = compare.run_all([lambda r=r: call(r) for r in requests])
    refused = [o for o in outcomes if isinstance(o, ConfigurationError)]
    done = [(c, o) for c, o in zip(combinations, outcomes, strict=True) if not isinstance(o, ConfigurationError)]
    rows = compare.rows([c for c, _ in done], [o for _, o in done])
    compared = [name for name in compare.COMPARED if rows and name in rows[0]]
    if out:
        magics.shell.user_ns[out] = _frame(rows)
    if not quiet:
        display(Grid(rows, compared))
    from ..display.cell import show_notes

    notes, magics._notes_before = list(dict.fromkeys(magics._notes_before)), ()
    show_notes(magics.shell, notes, [f"{len(refused)} call(s) not sent: {refused[0]}"] if refused else [])


def _frame(rows: list[dict[str, Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:
        return rows
    return pd.DataFrame.from_records(rows)


# -- %complete_replay ----------------------------------------------------------------
@magics_class
class LabMagics(Magics):
    """``%complete_replay``: record a session's requests and answers, or answer from a recording."""

    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=("record", "replay", "off", "status"),
              help="record FILE, replay FILE, off, or status (the default).")
    @argument("file", nargs="?", help="The recording (JSONL): written by record, read by replay.")
    @line_magic
    def complete_replay(self, line: str) -> None:
        """Record every request and answer to a file (never the key), or answer identical requests
        from it with no network (streams as recorded): ``%complete_replay record|replay FILE``, ``off``."""
        from ..transport import replay

        args = parse_argstring(self.complete_replay, line)
        magics = complete_magics(self.shell)
        if args.action in ("record", "replay") and not args.file:
            raise UsageError(f"%complete_replay {args.action} needs a FILE")
        if args.action == "status":
            active = replay.active
            if active is None:
                print("Not recording or replaying (%complete_replay record|replay FILE).")
            else:
                verb = "Recording to" if isinstance(active, replay.Recorder) else "Replaying from"
                print(f"{verb} {active.path}")
            return
        self._stop(magics)
        if args.action == "off":
            print("Recording and replay off: calls go to the server.")
            return
        if args.action == "record":
            settings = magics.settings()
            secrets = (settings.api_key,) if settings.api_key else ()
            try:
                replay.active = replay.Recorder(args.file, base_url=settings.base_url, offline=magics.offline(),
                                                secrets=secrets)
            except OSError as exc:
                raise UsageError(f"cannot write {args.file}: {exc.strerror or exc}") from None
            print(f"Recording every request and answer to {args.file} (never the key).")
            return
        try:
            replay.active = replay.Replayer(args.file)
        except (OSError, ValueError, KeyError) as exc:
            reason = str(getattr(exc, "strerror", None) or exc).removeprefix(f"{args.file} ")  # named once
            raise UsageError(f"cannot replay {args.file}: {reason}") from None
        print(f"Replaying {len(replay.active)} recorded answer(s) from {args.file}: no network.")

    @staticmethod
    def _stop(magics: Any) -> None:
        from ..transport import replay

        if replay.active is not None:
            replay.active.close()
            replay.active = None
        magics.close()  # the next call makes a client with (or without) the new adapter


def load(ipython: Any) -> None:
    """Register :class:`LabMagics` (called by the extension's load)."""
    ipython.register_magics(LabMagics)


def unload(ipython: Any) -> None:
    """Undo :func:`load`; recording or replay stops, the prices and budget are forgotten."""
    import sys

    from .configurable import remove_magics

    remove_magics(ipython, LabMagics)
    replay = sys.modules.get("jupyter_openai.transport.replay")
    if replay is not None and replay.active is not None:
        replay.active.close()
        replay.active = None
    cost = sys.modules.get("jupyter_openai.session.cost")
    if cost is not None:  # imported once a call was made or a price set: back to no table, no budget
        cost.pricing.set_table({})
        cost.pricing.max_cost_usd = None
