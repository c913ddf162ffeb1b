"""``%%complete_batch DF [-o NAME] [options]``: the cell is a template sent once per row of ``DF``.

A thin adapter over :func:`~jupyter_openai.batch.run.run_batch`: it reads ``%%complete``'s options (and
a few of its own), takes the settings, client and session log of the shell's ``CompleteMagics``,
and shows the result. Registered by :func:`~jupyter_openai.magics.complete.load` with :func:`register`.
"""

from __future__ import annotations

from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, magics_class, no_var_expand

from ..api.params import ENDPOINT_CHOICES, OPTION_PARAMS
from .configurable import usage_errors
from .options import argument, magic_arguments, param_options


@magics_class
class BatchMagics(Magics):
    """Run one prompt template over every row of a DataFrame (or a list of dicts)."""

    @magic_arguments()
    @argument("rows", help="The DataFrame (or list of dicts) whose rows fill the template's {column} fields.")
    @argument("-o", "--out", help="Store the result DataFrame in this variable (else it is the cell's value).")
    @argument("-m", "--model", help="Model id (default: the model trait).")
    @argument("-e", "--endpoint", choices=ENDPOINT_CHOICES, help="auto, chat, completions or responses.")
    @argument("-s", "--system", help="System message (chat; instructions on responses).")
    @param_options(OPTION_PARAMS)
    @argument("-c", "--concurrency", type=int, default=8, help="Rows in flight at once (local engine).")
    @argument("--via", choices=("local", "openai-batch", "ray", "jsonl"), default="local",
              help="local (the default), openai-batch (OpenAI's Batch API), ray, or jsonl (write the request file).")
    @argument("--cache", metavar="PATH", help="The cache file of finished rows (default: the user cache).")
    @argument("--no-cache", action="store_true", help="Send every row, keep nothing on disk.")
    @argument("-q", "--quiet", action="store_true", help="No progress bar and no summary line.")
    @no_var_expand
    @cell_magic
    def complete_batch(self, line: str, cell: str) -> Any:
        """Send the cell, filled from each row (``{column}``; ``{{ }}`` for braces), and return the
        rows with answer, status, error, tokens, latency and cost. Finished rows are cached on disk:
        running the cell again sends only what is missing.

        Example::

            %%complete_batch reviews -o labels --schema label_schema --max-tokens 20
            Classify the sentiment of this review: {text}
        """
        from ..batch.run import run_batch
        from ..calls.line import check_out_name, option_value, schema_option, split_options, unescape
        from ..display.cell import show_note

        magics = self.shell.magics_manager.registry.get("CompleteMagics")
        if magics is None:
            raise UsageError("load the extension first: %load_ext jupyter_openai")
        name, _, options = line.strip().partition(" ")
        if not name or name.startswith("-"):
            raise UsageError("name the rows first: %%complete_batch DF [options]")
        with usage_errors():
            argv, rest = split_options(options, self.complete_batch.parser._option_string_actions)
            argv = [option_value(token, self.shell.user_ns) for token in argv]
        if rest:
            raise UsageError(f"unexpected text on the %%complete_batch line: {rest!r} (the template goes in the cell)")
        args = self.complete_batch.parser.parse_args([*argv, name])
        if args.rows not in self.shell.user_ns:
            raise UsageError(f"no variable named {args.rows!r} (the DataFrame to run the template over)")
        if args.out is not None:
            with usage_errors():
                check_out_name(args.out)
        template = cell[:-1] if cell.endswith("\n") else cell
        params = {param.name: getattr(args, param.name) for param in OPTION_PARAMS}
        params["stop"] = [unescape(s) for s in args.stop] if args.stop else None
        params = {k: v for k, v in params.items() if v is not None and k != "schema"}
        client = magics.client()
        with usage_errors():
            result = run_batch(self.shell.user_ns[args.rows], template, model=args.model, endpoint=args.endpoint,
                               system=unescape(args.system) if args.system is not None else None,
                               schema=schema_option(args.schema, self.shell.user_ns), concurrency=args.concurrency,
                               via=args.via, cache=None if args.no_cache else (args.cache or "default"),
                               client=client, log=magics.log, progress=not args.quiet,
                               defaults=magics.defaults(), execution_count=magics._cell_number(),
                               on_line=lambda note: show_note(self.shell, note), **params)
        if args.out:
            self.shell.user_ns[args.out] = result
            return None
        return result


def register(ipython: Any) -> None:
    """Add ``%%complete_batch`` (called by the extension's load)."""
    ipython.register_magics(BatchMagics)


def unregister(ipython: Any) -> None:
    """Remove ``%%complete_batch`` (called by the extension's unload)."""
    from .configurable import remove_magics

    remove_magics(ipython, BatchMagics)
