"""The IPython magics: ``%%complete``, ``%complete``, ``%complete_log`` and ``%complete_models``.

They parse options, delegate to :mod:`jupyter_openai.call` and display. Settings are
traits of :class:`CompleteMagics` (``%config CompleteMagics``, ``ipython_config.py``),
re-read on every call. The HTTP stack is imported on first use, not at load time.
"""

from __future__ import annotations

import os
import re
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from traitlets import Bool, CaselessStrEnum, Float, Int, Unicode

from .config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    MISSING_KEY_HELP,
    Settings,
)
from .errors import ConfigurationError
from .log import session_log
from .magicline import interpolate, split_options, unescape
from .traits import MaskedConfigMixin, SecretTrait

ENDPOINT_CHOICES = ("auto", "chat", "completions")
_VARIABLE = re.compile(r"\$([A-Za-z_]\w*)")
FORMATS = ("text", "markdown")
LOG_COLUMNS = ("id", "timestamp", "source", "model", "status", "prompt_tokens", "completion_tokens", "latency", "prompt", "completion")


Secret = SecretTrait  # the trait's old name: it lives in traits.py with the masking of Config objects


@magics_class
class CompleteMagics(MaskedConfigMixin, Magics):
    """Send prompts to an OpenAI-compatible server and stream the answers into the cell."""

    api_key = Secret(help="API key. Prefer the OPENAI_API_KEY environment variable; never paste it into a notebook.").tag(config=True)
    organization = Unicode(None, allow_none=True, help="Organization id (OpenAI-Organization header); else $OPENAI_ORG_ID.").tag(config=True)
    project = Unicode(None, allow_none=True, help="Project id (OpenAI-Project header); else $OPENAI_PROJECT_ID.").tag(config=True)
    base_url = Unicode(None, allow_none=True, help="Server URL ending in /v1; else $OPENAI_BASE_URL, else OpenAI.").tag(config=True)
    model = Unicode("gpt-4o-mini", help="Default model.").tag(config=True)
    endpoint = CaselessStrEnum(ENDPOINT_CHOICES, default_value="auto",
                               help="chat, completions, or auto: completions for instruct/legacy models, chat otherwise.").tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system message (chat).").tag(config=True)
    temperature = Float(None, allow_none=True, help="Default temperature, 0 to 2 (None: the server's).").tag(config=True)
    top_p = Float(None, allow_none=True, help="Default top_p, 0 to 1 (None: the server's).").tag(config=True)
    max_tokens = Int(256, allow_none=True, help="Default largest number of tokens to generate.").tag(config=True)
    stream = Bool(True, help="Stream answers into the cell as they arrive.").tag(config=True)
    timeout = Float(DEFAULT_READ_TIMEOUT, help="Read timeout in seconds: longest wait for the next byte.").tag(config=True)
    connect_timeout = Float(DEFAULT_CONNECT_TIMEOUT, help="Connect timeout in seconds.").tag(config=True)
    max_retries = Int(DEFAULT_MAX_RETRIES, help="Retries on 408/409/429/5xx and connection errors.").tag(config=True)
    output_format = CaselessStrEnum(FORMATS, default_value="text", help="text, or markdown (rendered at the end).").tag(config=True)
    interpolate = Bool(False, help="Fill {name} in prompts from the notebook's variables ({{ }} escape).").tag(config=True)
    log_file = Unicode(None, allow_none=True, help="Append every call to this JSONL file as it happens.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: Any = None
        self._client_settings: Settings | None = None

    # -- settings and client -------------------------------------------------------
    def settings(self) -> Settings:
        """Settings from traits over the environment (traits win); the offline model when neither
        a key nor a base URL is configured anywhere."""
        try:
            settings = Settings.from_env(
                api_key=self.api_key, organization=self.organization, project=self.project, base_url=self.base_url,
                read_timeout=self.timeout, connect_timeout=self.connect_timeout, max_retries=self.max_retries,
            )
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
        if self.offline(settings):
            return self._offline_settings(settings)
        return settings

    def offline(self, settings: Settings | None = None) -> bool:
        """True when no key and no base URL are set: calls go to the bundled offline model."""
        # Decided from the raw values, so a malformed OPENAI_BASE_URL still ends as settings()' UsageError.
        has_key = settings.api_key is not None if settings is not None else bool(
            self.api_key or os.environ.get(ENV_API_KEY, "").strip())
        return not has_key and not self.base_url and not os.environ.get(ENV_BASE_URL, "").strip()

    def _offline_settings(self, settings: Settings) -> Settings:
        from . import local

        if not local.is_available():
            raise UsageError(f"{MISSING_KEY_HELP} Or, to work with no key and no internet, {local.INSTALL_HINT}.")
        first_use = not local.shared_server(start=False).running
        try:
            server = local.shared_server()
        except local.LocalServerError as exc:
            raise UsageError(str(exc)) from None
        if first_use:
            print(f"Using the offline model {local.MODEL_LABEL}: no API key or base URL is set. "
                  "For OpenAI, set OPENAI_API_KEY in the environment or ipython_config.py.")
        return settings.with_overrides(base_url=server.base_url, api_key=server.api_key, direct=True)  # no proxy

    def default_model(self) -> str:
        """The model trait, or the offline model's name when the trait is untouched and calls go offline."""
        from .local import MODEL_ALIAS

        untouched = self.model == type(self).model.default_value
        return MODEL_ALIAS if untouched and self.offline() else self.model

    def client(self) -> Any:
        """The client for the current settings (kept while they do not change)."""
        from .client import OpenAIClient

        settings = self.settings()
        if self._client is None or self._client_settings != settings:
            if self._client is not None:
                self._client.close()
            self._client, self._client_settings = OpenAIClient(settings), settings
        return self._client

    # -- %%complete ----------------------------------------------------------------
    @magic_arguments()
    @argument("-m", "--model", help="Model id (default: the model trait).")
    @argument("-e", "--endpoint", choices=ENDPOINT_CHOICES, help="auto (completions for instruct/legacy models, chat otherwise), chat or completions.")
    @argument("-s", "--system", help="System message (chat).")
    @argument("-t", "--temperature", type=float, help="Sampling temperature, 0 to 2.")
    @argument("--max-tokens", type=int, help="Largest number of tokens to generate (>= 1).")
    @argument("--top-p", type=float, help="Nucleus sampling mass, 0 to 1.")
    @argument("-n", type=int, help="Number of choices to generate (>= 1).")
    @argument("--stop", action="append", help=r"Stop sequence; repeat for up to 4. \n means newline.")
    @argument("--echo", action="store_true", default=None, help="Completions: include the prompt in the answer.")
    @argument("--suffix", help="Completions: text that follows the insertion.")
    @argument("--presence-penalty", type=float, help="Presence penalty, -2 to 2.")
    @argument("--frequency-penalty", type=float, help="Frequency penalty, -2 to 2.")
    @argument("--seed", type=int, help="Seed for repeatable sampling.")
    @argument("--logprobs", type=int, help="Log probabilities of the top N tokens (completions 0-5; chat: top_logprobs).")
    @argument("--no-stream", action="store_true", help="Wait for the whole answer instead of streaming.")
    @argument("-o", "--out", help="Store the answer text in this variable.")
    @argument("-f", "--format", choices=FORMATS, help="text, or markdown (rendered at the end).")
    @argument("-q", "--quiet", action="store_true", help="Show nothing but errors (use with --out).")
    @argument("-i", "--interpolate", action="store_true", default=None, help="Fill {name} from notebook variables.")
    @argument("prompt", nargs="*", help="Line form only: the prompt.")
    @no_var_expand  # {name} and $name in a prompt are text, not IPython expansions
    @line_cell_magic
    def complete(self, line: str, cell: str | None = None) -> None:
        """Send the cell (or the rest of the line) as a prompt and stream the answer.

        An option value written ``$name`` is the notebook variable ``name`` (``-m $model``);
        the prompt itself is sent as written (see ``--interpolate``).

        Examples::

            %%complete --model gpt-4o-mini -t 0.2 --max-tokens 100
            Write a haiku about notebooks.

            %complete -m gpt-3.5-turbo-instruct Say hello
        """
        argv, rest = self._split_line(line)
        args = self.complete.parser.parse_args([self._variable(token) for token in argv])
        if cell is None:
            prompt = rest
        elif rest:
            raise UsageError(f"unexpected text on the %%complete line: {rest!r} (options start with -; the prompt goes in the cell)")
        else:
            prompt = cell[:-1] if cell.endswith("\n") else cell  # the newline IPython appends to every cell
        self._run(args, prompt)

    def _variable(self, token: str) -> str:
        """An option value written ``$name`` is the notebook variable ``name`` (``-m $model``);
        prompts are never expanded."""
        match = _VARIABLE.fullmatch(token)
        if match is None:
            return token
        if match.group(1) not in self.shell.user_ns:
            raise UsageError(f"{token}: no variable named {match.group(1)!r}")
        return str(self.shell.user_ns[match.group(1)])

    def _cell_number(self) -> int | None:
        """The number of the cell being run (``In [n]``). IPython 9 counts the cell before running
        it and IPython 8 after, so ``execution_count`` is off by one on one of them; the history
        of inputs is not (its entry 0 is a placeholder)."""
        history = getattr(self.shell, "history_manager", None)
        inputs = getattr(history, "input_hist_raw", None)
        if inputs:
            return len(inputs) - 1
        return getattr(self.shell, "execution_count", None)

    def _split_line(self, line: str) -> tuple[list[str], str]:
        """Split ``-opt value … prompt words`` into option arguments and the verbatim rest."""
        try:
            return split_options(line, self.complete.parser._option_string_actions)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None

    def _request(self, args: Any, prompt: str) -> Any:
        from .call import CallRequest, choose_endpoint

        if not prompt.strip():
            raise UsageError("the prompt is empty: write it in the cell below %%complete")
        if args.interpolate or (args.interpolate is None and self.interpolate):
            try:
                prompt = interpolate(prompt, self.shell.user_ns)
            except ConfigurationError as exc:
                raise UsageError(str(exc)) from None
        model = args.model or self.default_model()
        endpoint = args.endpoint or self.endpoint
        try:
            endpoint = choose_endpoint(model, endpoint)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
        if args.max_tokens is not None and args.max_tokens < 1:
            raise UsageError(f"--max-tokens must be at least 1, got {args.max_tokens}")
        params: dict[str, Any] = {
            "temperature": args.temperature if args.temperature is not None else self.temperature,
            "top_p": args.top_p if args.top_p is not None else self.top_p,
            "max_tokens": args.max_tokens if args.max_tokens is not None else self.max_tokens,
            "n": args.n,
            "stop": [unescape(s) for s in args.stop] if args.stop else None,
            "presence_penalty": args.presence_penalty,
            "frequency_penalty": args.frequency_penalty,
            "seed": args.seed,
        }
        if endpoint == "completions":
            params.update(echo=args.echo, suffix=args.suffix, logprobs=args.logprobs)
        elif args.echo or args.suffix is not None:
            raise UsageError("--echo and --suffix work with the completions endpoint only (add -e completions)")
        elif args.logprobs is not None:
            params.update(logprobs=True, top_logprobs=args.logprobs)
        system = unescape(args.system) if args.system is not None else self.system
        if system and endpoint == "completions":
            raise UsageError("--system works with the chat endpoint only")
        request = CallRequest(prompt, model, endpoint, system, stream=self.stream and not args.no_stream, params=params)
        self._validate(request, endpoint)
        return request

    @staticmethod
    def _validate(request: Any, endpoint: str) -> None:
        from .params import check_params

        if request.params.get("n") is not None and request.params["n"] < 1:
            raise UsageError(f"-n must be at least 1, got {request.params['n']}")
        try:
            check_params(endpoint, request.params)
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None

    def _run(self, args: Any, prompt: str) -> None:
        from .call import run_call
        from .display import CellView, error_line, status_line

        request = self._request(args, prompt)
        client = self.client()
        session_log.path = self.log_file
        quiet = args.quiet
        view = CellView(self.shell, n=request.params.get("n") or 1,
                        markdown=(args.format or self.output_format) == "markdown")
        try:
            outcome = run_call(client, request, on_update=None if quiet else view.update, source="magic",
                               execution_count=self._cell_number())
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
        if not quiet:
            view.finish(outcome.texts)
        if args.out:
            self.shell.user_ns[args.out] = outcome.texts if len(outcome.texts) > 1 else outcome.text
        asked = request.params.get("n") or 1
        if outcome.error is None and 0 < len(outcome.texts) < asked:
            error_line(f"Note: asked for {asked} choices, the server returned {len(outcome.texts)}")
        if outcome.error is not None:
            kept = f" (partial text kept: {len(outcome.text)} chars)" if outcome.text else ""
            error_line(f"{outcome.error}{kept}")
        elif outcome.status == "interrupted":
            error_line(f"Interrupted: the request was stopped (partial text kept: {len(outcome.text)} chars)")
        elif outcome.status == "truncated":
            error_line("Warning: the server closed the stream without [DONE]; the answer may be incomplete")
        if not quiet:
            print(status_line(outcome.model, outcome.usage, outcome.latency, outcome.time_to_first_token,
                              outcome.finish_reasons[0] if outcome.finish_reasons else None, outcome.status))

    # -- %complete_log -------------------------------------------------------------
    @magic_arguments()
    @argument("-n", "--last", type=int, default=10, help="How many of the latest calls to show.")
    @argument("--clear", action="store_true", help="Forget the calls logged so far.")
    @argument("--save", metavar="PATH", help="Export the whole log to PATH (.json, .jsonl or .csv).")
    @line_magic
    def complete_log(self, line: str) -> Any:
        """Show the latest calls of the session log as a table (``jupyter_openai.log`` for all)."""
        from .display import Table

        args = parse_argstring(self.complete_log, line)
        if args.clear:
            session_log.clear()
            print("Session log cleared.")
            return None
        if args.save:
            writers = {".json": session_log.to_json, ".jsonl": session_log.to_jsonl, ".csv": session_log.to_csv}
            suffix = next((s for s in writers if args.save.lower().endswith(s)), None)
            if suffix is None:
                raise UsageError("--save needs a file name ending in .json, .jsonl or .csv")
            writers[suffix](args.save)
            print(f"Saved {len(session_log)} call(s) to {args.save}")
            return None
        return Table(session_log.tail(args.last), LOG_COLUMNS)

    # -- %complete_models ----------------------------------------------------------
    @magic_arguments()
    @argument("model_id", nargs="?", help="Describe this model instead of listing all.")
    @line_magic
    def complete_models(self, line: str) -> Any:
        """List the server's models, or describe one: ``%complete_models [ID]``."""
        from datetime import datetime, timezone

        from .display import Table, error_line
        from .errors import OpenAIError

        args = parse_argstring(self.complete_models, line)
        try:
            client = self.client()
            models = [client.retrieve_model(args.model_id)] if args.model_id else client.list_models()
        except ConfigurationError as exc:
            raise UsageError(str(exc)) from None
        except OpenAIError as exc:
            error_line(str(exc))
            return None
        rows = []
        for model in sorted(models, key=lambda m: str(m.get("id"))):
            created = model.get("created")
            when = datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%d") if isinstance(created, (int, float)) else None
            rows.append({**model, "created": when})
        columns = ["id", "owned_by", "created"] + sorted({k for m in rows for k in m} - {"id", "owned_by", "created", "object"})
        return Table(rows, columns if args.model_id else ["id", "owned_by", "created"])

    # -- %complete_form ------------------------------------------------------------
    @magic_arguments()
    @argument("-m", "--model", help="Preset model.")
    @argument("-e", "--endpoint", choices=("chat", "completions"), help="Preset endpoint.")
    @argument("-s", "--system", help="Preset system message (chat).")
    @argument("-t", "--temperature", type=float, help="Preset temperature, 0 to 2.")
    @argument("--max-tokens", type=int, help="Preset largest number of tokens.")
    @argument("prompt", nargs="*", help="Preset prompt.")
    @line_magic
    def complete_form(self, line: str) -> Any:
        """Open the form: tune parameters with sliders, stream the answer, stop it."""
        from .widgets import CompletionForm

        args = parse_argstring(self.complete_form, line)
        presets = {"model": args.model, "endpoint": args.endpoint, "system": args.system,
                   "temperature": args.temperature, "max_tokens": args.max_tokens,
                   "prompt": " ".join(args.prompt) or None}
        return CompletionForm.from_magics(self, **{k: v for k, v in presets.items() if v is not None})

    # -- %complete_local -----------------------------------------------------------
    @magic_arguments()
    @argument("action", nargs="?", default="status", choices=("start", "stop", "status"), help="What to do.")
    @line_magic
    def complete_local(self, line: str) -> None:
        """Start, stop or show the bundled offline model server: ``%complete_local start|stop|status``."""
        from . import local

        args = parse_argstring(self.complete_local, line)
        if args.action == "stop":
            print("Stopped the local model server." if local.stop_shared_server() else "The local model server is not running.")
            return
        if not local.is_available():
            raise UsageError(f"The offline model is not installed: {local.INSTALL_HINT}")
        try:
            server = local.shared_server(start=args.action == "start")
        except local.LocalServerError as exc:
            raise UsageError(str(exc)) from None
        state = server.status()
        if not state["running"]:
            print("The local model server is not running (it starts on first use; %complete_local start starts it now).")
            return
        print(f"{local.MODEL_LABEL} as model {state['model']!r} at {state['base_url']} (pid {state['pid']}, log {state['log']})")
