"""The magics' configuration: the traits ``%config CompleteMagics`` shows, and what they imply.

:class:`ConfiguredMagics` is the base of :class:`~jupyter_openai.magics.complete.CompleteMagics`: its
traits (``.tag(config=True)``, set by ``%config`` or ``ipython_config.py``) are re-read on
every call and become the connection :class:`~jupyter_openai.config.Settings` (over the
environment, or the bundled offline model when no key and no base URL are set anywhere),
the client kept for them, and the defaults of a request. The log it writes to is the
session log, whose file is the ``log_file`` trait.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics
from traitlets import Bool, CaselessStrEnum, Dict, Float, Int, TraitError, Unicode, observe, validate

from ..api.params import DEFAULTS, ENDPOINT_CHOICES, REASONING_EFFORTS, VERBOSITIES
from ..config import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    ENV_API_KEY,
    ENV_BASE_URL,
    MISSING_KEY_HELP,
    Settings,
)
from ..errors import ConfigurationError
from .traits import MaskedConfigMixin, SecretTrait

if TYPE_CHECKING:
    from ..session.log import SessionLog

FORMATS = ("auto", "text", "markdown")
FORMAT_HELP = ("How answers show: auto (Markdown in Jupyter, rendered as it streams; plain text in a terminal), "
               "markdown, or text (raw text, wrapped at word boundaries).")
#: The traits that are defaults of a request (what a call uses for options not given).
REQUEST_DEFAULTS = tuple(DEFAULTS)
#: The bundled offline model's sampling, chosen by measurement (``benchmarks/offline_defaults.py``,
#: ``benchmarks/results.md``): at the server's own temperature (0.8) the 135M model drifts into other
#: languages and rarely recalls a name one turn later. top_p (0.5 to 1.0 scored alike at 0.2), the
#: server's repeat_penalty (1.1: 1.0 scored worse, 1.3 no better) and no system message (each one
#: tried scored worse) stay as the server has them. Used when calls go offline and the trait is left
#: as it is; ``%config`` and a call's own options win.
OFFLINE_DEFAULTS: dict[str, Any] = {"temperature": 0.2}


@contextmanager
def usage_errors(*also: type[Exception]) -> Iterator[None]:
    """Show the core's configuration errors (and ``also`` these) as IPython shows user mistakes:
    one line, no traceback."""
    try:
        yield
    except (ConfigurationError, *also) as exc:
        raise UsageError(str(exc)) from None


def config_section(magics: Any) -> dict[str, Any]:
    """The magics' own section of the traitlets config, as a plain dict."""
    section = magics.config.get(type(magics).__name__, {})
    return dict(section) if hasattr(section, "keys") else {}


Secret = SecretTrait  # the trait's old name: it lives in traits.py with the masking of Config objects


class ConfiguredMagics(MaskedConfigMixin, Magics):
    """The configuration every jupyter_openai magic reads: traits, settings, client, defaults, log."""

    api_key = Secret(
        help="API key. Prefer the OPENAI_API_KEY environment variable; never paste it into a notebook."
    ).tag(config=True)
    organization = Unicode(
        None, allow_none=True, help="Organization id (OpenAI-Organization header); else $OPENAI_ORG_ID."
    ).tag(config=True)
    project = Unicode(None, allow_none=True, help="Project id (OpenAI-Project header); else $OPENAI_PROJECT_ID.").tag(
        config=True
    )
    base_url = Unicode(None, allow_none=True, help="Server URL ending in /v1; else $OPENAI_BASE_URL, else OpenAI.").tag(
        config=True
    )
    model = Unicode(DEFAULTS["model"], help="Default model.").tag(config=True)
    endpoint = CaselessStrEnum(
        ENDPOINT_CHOICES,
        default_value="auto",
        help="chat, completions, responses, or auto: completions for OpenAI's legacy completion models "
        "(gpt-3.5-turbo-instruct, davinci-002, babbage-002), chat otherwise. 'responses' makes the Responses "
        "API the default.",
    ).tag(config=True)
    system = Unicode(None, allow_none=True, help="Default system message (chat, responses).").tag(config=True)
    reasoning_effort = CaselessStrEnum(REASONING_EFFORTS, default_value=None, allow_none=True,
                                       help="Default reasoning effort for reasoning models (None: the model's)."
                                       ).tag(config=True)
    verbosity = CaselessStrEnum(VERBOSITIES, default_value=None, allow_none=True,
                                help="Default answer length for models that take it (None: the model's)."
                                ).tag(config=True)
    show_reasoning = Bool(True, help="Show the reasoning text models send apart from the answer (in a block of "
                          "its own above it).").tag(config=True)
    temperature = Float(None, allow_none=True, help="Default temperature, 0 to 2 (None: the server's).").tag(
        config=True
    )
    top_p = Float(None, allow_none=True, help="Default top_p, 0 to 1 (None: the server's).").tag(config=True)
    max_tokens = Int(DEFAULTS["max_tokens"], allow_none=True, help="Default largest number of tokens to generate.").tag(
        config=True
    )
    stream = Bool(True, help="Stream answers into the cell as they arrive.").tag(config=True)
    store = Bool(False, help="Responses API: keep responses on OpenAI's servers (store: true; the API's own default). "
                 "False: every Responses call sends store: false (a call's --store asks otherwise).").tag(config=True)
    timeout = Float(DEFAULT_READ_TIMEOUT, help="Read timeout in seconds: longest wait for the next byte.").tag(
        config=True
    )
    connect_timeout = Float(DEFAULT_CONNECT_TIMEOUT, help="Connect timeout in seconds.").tag(config=True)
    max_retries = Int(DEFAULT_MAX_RETRIES, help="Retries on 408/409/429/5xx and connection errors.").tag(config=True)
    output_format = CaselessStrEnum(FORMATS, default_value="auto", help=FORMAT_HELP).tag(
        config=True
    )
    interpolate = Bool(False, help="Fill {name} in prompts from the notebook's variables ({{ }} escape).").tag(
        config=True
    )
    log_file = Unicode(None, allow_none=True, help="Append every call to this JSONL file as it happens.").tag(
        config=True
    )
    prices = Dict(help="Your price table, over genai-prices': model id -> (input, output) US dollars per million "
                  "tokens, e.g. {'my-model': (0.15, 0.6)}.").tag(config=True)
    max_cost_usd = Float(None, allow_none=True, help="Budget: refuse calls once this session's calls have cost "
                         "this many US dollars, > 0 (None: no limit). Calls running at once count at their "
                         "estimate until they end.").tag(config=True)
    chat_max_turns = Int(None, allow_none=True, help="%%chat: most turns a conversation sends (the oldest are "
                         "dropped first; None: no cap). A conversation's own --max-turns wins.").tag(config=True)
    chat_max_tokens = Int(None, allow_none=True, help="%%chat: token budget of what a turn sends, estimated at 4 "
                          "characters a token (the oldest turns are dropped first). None: 1536 on the offline "
                          "model (its context is 2048 tokens), no cap elsewhere.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._client: Any = None
        self._client_settings: Settings | None = None
        # The session log writes to the log_file trait's file; one not imported yet has no file to reset.
        if self.log_file is not None or "jupyter_openai.session.log" in sys.modules:
            self.log.path = self.log_file
        self._config_at_load = config_section(self)  # what the config file (or the shell's start) set
        if self.prices or self.max_cost_usd is not None:  # from the config file: observers do not run for it
            self._on_prices()

    @observe("api_key")
    def _on_api_key(self, change: dict[str, Any]) -> None:
        registry = getattr(getattr(self.shell, "magics_manager", None), "registry", {})
        watch = registry.get("KeyMagics")  # magics/key.py: set from a cell, one warning pointing to %complete_key
        if watch is not None:
            watch.key_set(change["new"])

    @property
    def log(self) -> SessionLog:
        """The session log this shell's calls go to (its file: the ``log_file`` trait); imported on first use."""
        from ..session.log import session_log

        return session_log

    @observe("log_file")
    def _on_log_file(self, change: dict[str, Any]) -> None:
        self.log.path = change["new"]

    @validate("prices")
    def _check_prices(self, proposal: dict[str, Any]) -> dict[str, Any]:
        from ..session.cost import check_table

        try:
            check_table(proposal["value"])
        except ConfigurationError as exc:
            raise TraitError(str(exc)) from None
        return proposal["value"]

    @validate("max_cost_usd")
    def _check_budget(self, proposal: dict[str, Any]) -> float | None:
        from ..session.cost import check_budget_value

        try:
            return check_budget_value(proposal["value"])
        except ConfigurationError as exc:
            raise TraitError(str(exc)) from None

    @observe("prices", "max_cost_usd")
    def _on_prices(self, change: dict[str, Any] | None = None) -> None:
        from ..session.cost import pricing

        pricing.set_table(self.prices)
        pricing.max_cost_usd = self.max_cost_usd

    def close(self) -> None:
        """Release the client's connections (the extension's unload calls this)."""
        if self._client is not None:
            self._client.close()
            self._client, self._client_settings = None, None

    # -- settings and client -------------------------------------------------------
    def settings(self) -> Settings:
        """Settings from traits over the environment (traits win); the offline model when neither
        a key nor a base URL is configured anywhere; while a recording is replayed, the recorded
        server's URL and a placeholder key (nothing goes to the network)."""
        from ..transport import replay

        if isinstance(replay.active, replay.Replayer):
            return self._replay_settings(replay.active)
        with usage_errors():
            settings = Settings.from_env(
                api_key=self.api_key,
                organization=self.organization,
                project=self.project,
                base_url=self.base_url,
                read_timeout=self.timeout,
                connect_timeout=self.connect_timeout,
                max_retries=self.max_retries,
            )
        if self.offline(settings):
            return self._offline_settings(settings)
        return settings

    def _replay_settings(self, replayer: Any) -> Settings:
        with usage_errors():
            return Settings.from_env(api_key=self.api_key or "sk-replay-no-key", base_url=replayer.base_url,
                                     read_timeout=self.timeout, connect_timeout=self.connect_timeout,
                                     max_retries=0).with_overrides(direct=True)

    def offline(self, settings: Settings | None = None) -> bool:
        """True when no key and no base URL are set: calls go to the bundled offline model (while a
        recording is replayed: when it was recorded from the offline model)."""
        from ..transport import replay

        if isinstance(replay.active, replay.Replayer):
            return replay.active.offline
        # Decided from the raw values, so a malformed OPENAI_BASE_URL still ends as settings()' UsageError.
        has_key = (
            settings.api_key is not None
            if settings is not None
            else bool(self.api_key or os.environ.get(ENV_API_KEY, "").strip())
        )
        return not has_key and not self.base_url and not os.environ.get(ENV_BASE_URL, "").strip()

    def _offline_settings(self, settings: Settings) -> Settings:
        from ..offline import server as local_server

        if not local_server.is_available():
            hint = local_server.INSTALL_HINT
            raise UsageError(f"{MISSING_KEY_HELP} Or, to work with no key and no internet, {hint}.")
        first_use = not local_server.shared_server(start=False).running
        with usage_errors(local_server.LocalServerError):
            server = local_server.shared_server()
        if first_use:
            from ..display.cell import show_note

            show_note(self.shell, f"Using the offline model {local_server.MODEL_LABEL}: no API key or base URL is set. "
                                  "For OpenAI, set OPENAI_API_KEY in the environment or ipython_config.py.")
        return settings.with_overrides(base_url=server.base_url, api_key=server.api_key, direct=True)  # no proxy

    def default_model(self, *, ask_server: bool = True) -> str:
        """The model trait. When it is untouched: the offline model's name when calls go offline,
        and the server's first listed model when the base URL points at another server than OpenAI
        (one ``/models`` request per client; ``ask_server=False``: only if already known)."""
        from ..offline.server import MODEL_ALIAS

        if not self._model_untouched():
            return self.model
        if self.offline():
            return MODEL_ALIAS
        if self.server_picks_model():
            return self.client().first_model(ask=ask_server) or self.model
        return self.model

    def _model_untouched(self) -> bool:
        return self.model == type(self).model.default_value and "model" not in self._explicit_traits()

    def server_picks_model(self) -> bool:
        """True when the default model is the server's first listed one (the model trait untouched,
        calls going to another server than OpenAI and not offline)."""
        from ..config import is_openai_host

        return self._model_untouched() and not self.offline() and not is_openai_host(self.settings().base_url)

    def _explicit_traits(self) -> set[str]:
        """The traits set in this magics' config (``ipython_config.py``, ``%config``)."""
        return set(config_section(self))

    def defaults(self, *, ask_server: bool = True) -> dict[str, Any]:
        """What a call uses for options not given: the traits (``%config``), with the offline
        model's name and sampling (:data:`OFFLINE_DEFAULTS`, for traits left untouched) when calls go
        to it (``ask_server``: see :meth:`default_model`)."""
        offline = self.offline()
        values = {name: getattr(self, name) for name in REQUEST_DEFAULTS}
        if offline:
            values.update({name: value for name, value in OFFLINE_DEFAULTS.items() if self._untouched(name)})
        return {**values, "model": self.default_model(ask_server=ask_server),
                "show_reasoning": self.show_reasoning, "offline": offline, "output_format": self.output_format}

    def _untouched(self, name: str) -> bool:
        """True when trait ``name`` has its class default and no configuration set it."""
        return getattr(self, name) == self.traits()[name].default_value and name not in self._explicit_traits()

    def client(self) -> Any:
        """The client for the current settings (kept while they do not change)."""
        from ..client import OpenAIClient

        settings = self.settings()
        if self._client is None or self._client_settings != settings:
            if self._client is not None:
                self._client.close()
            self._client, self._client_settings = OpenAIClient(settings), settings
            from ..transport import replay

            replay.attach(self._client._session)  # a recording or a replay in force (none: nothing)
            if self.offline() and not isinstance(replay.active, replay.Replayer):
                from ..offline import server as local_server

                self._client.prompt_counter = local_server.prompt_counter(local_server.shared_server(start=False))
        return self._client


def remove_magics(ipython: Any, magics_class: type) -> Any:
    """Unregister every magic of ``magics_class`` (the other half of ``register_magics``); return the
    instance that served them, if any."""
    manager = ipython.magics_manager
    instance = manager.registry.pop(magics_class.__name__, None)
    for kind, names in magics_class.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    return instance


#: The cell events a magics instance with ``pre_run_cell``/``post_run_cell`` methods follows.
CELL_EVENTS = ("pre_run_cell", "post_run_cell")


def register_following_cells(ipython: Any, magics: Any) -> None:
    """Register ``magics`` and its ``pre_run_cell``/``post_run_cell`` methods on the shell's cell events."""
    ipython.register_magics(magics)
    for event in CELL_EVENTS:
        ipython.events.register(event, getattr(magics, event))


def remove_following_cells(ipython: Any, magics_class: type) -> None:
    """Undo :func:`register_following_cells` for the instance of ``magics_class``."""
    instance = remove_magics(ipython, magics_class)
    if instance is not None:
        for event in CELL_EVENTS:
            try:
                ipython.events.unregister(event, getattr(instance, event))
            except ValueError:
                pass
