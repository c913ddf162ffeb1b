"""Where each setting comes from: the report behind ``%complete_config`` and :func:`settings_report`.

For every connection setting (key masked, organization, project, base URL, model, endpoint,
timeouts, retries) and every call default (max tokens, temperature, top_p, output format,
reasoning, the chat caps, the budget) it names the value in effect and its source, by the precedence of
GUIDE 2: ``%config`` (set in this session), the config file (``ipython_config.py``, or the
Config the shell was started with), the environment, the bundled offline model, the server's
first listed model, or the built-in default. Notebooks read it instead of reaching into the
magics object.
"""

from __future__ import annotations

import os
from typing import Any

from ..config import ENV_API_KEY, ENV_BASE_URL, ENV_ORGANIZATION, ENV_PROJECT, is_openai_host
from ..secret import mask_key
from .configurable import config_section

#: setting (trait name) -> the environment variables that can set it
ENVIRONMENT = {"api_key": (ENV_API_KEY,), "organization": ENV_ORGANIZATION, "project": (ENV_PROJECT,),
               "base_url": (ENV_BASE_URL,)}
REPORTED = ("api_key", "organization", "project", "base_url", "model", "endpoint", "timeout", "connect_timeout",
            "max_retries")
#: What the offline model's %%chat turns send at most when chat_max_tokens is unset, in estimated tokens
#: (its context is 2048 tokens).
OFFLINE_TOKEN_BUDGET = 1536
#: The call defaults reported after the connection: setting -> what its unset value (None) means.
CALL_DEFAULTS = {"max_tokens": "no limit (the model's context)", "temperature": "the server's default",
                 "top_p": "the server's default", "output_format": None, "reasoning_effort": "the model's default",
                 "show_reasoning": None, "chat_max_turns": "no cap", "chat_max_tokens": "no cap",
                 "max_cost_usd": "no limit"}


def _configured(magics: Any, name: str, at_load: dict[str, Any]) -> str | None:
    section = config_section(magics)
    if name not in section:
        return None
    same = name in at_load and (at_load[name] is section[name] or _equal(at_load[name], section[name]))
    return "config file" if same else "%config"


def _equal(a: Any, b: Any) -> bool:
    try:
        return bool(a == b)
    except Exception:  # noqa: BLE001 - values of odd types: treat as changed
        return False


def source_of(magics: Any, name: str) -> str:
    """Where trait ``name``'s value comes from: ``%config``, ``config file`` or ``default``."""
    return _configured(magics, name, getattr(magics, "_config_at_load", {})) or "default"


def report(magics: Any) -> list[dict[str, Any]]:
    """One row per setting: ``setting``, ``value`` (the key masked) and ``source``."""
    at_load = getattr(magics, "_config_at_load", {})
    offline = magics.offline()
    settings = magics.settings()
    rows = []
    for name in REPORTED:
        source = _configured(magics, name, at_load)
        if source is None and any(os.environ.get(env, "").strip() for env in ENVIRONMENT.get(name, ())):
            source = "environment (" + next(e for e in ENVIRONMENT[name] if os.environ.get(e, "").strip()) + ")"
        if name in ("api_key", "base_url") and offline:
            source = "offline model"
        value: Any = getattr(magics, name)
        if name == "base_url":
            value = settings.base_url
        elif name == "api_key":
            value = mask_key(settings.api_key)
        elif name in ("organization", "project"):
            value = getattr(settings, name)
        elif name == "model" and source is None:
            value = magics.default_model()
            if offline:
                source = "offline model"
            elif not is_openai_host(settings.base_url) and value != magics.model:
                source = "the server's first listed model"
        rows.append({"setting": name, "value": value, "source": source or "default"})
    return rows + _call_defaults(magics, at_load, offline)


def _call_defaults(magics: Any, at_load: dict[str, Any], offline: bool) -> list[dict[str, Any]]:
    """The rows of the call defaults: a value left unset says what that means."""
    rows, used = [], magics.defaults(ask_server=False)  # what a call uses: the offline model's sampling too
    for name, unset in CALL_DEFAULTS.items():
        value, source = getattr(magics, name), _configured(magics, name, at_load) or "default"
        if value is None and name == "chat_max_tokens" and offline:
            value, source = OFFLINE_TOKEN_BUDGET, "offline model"
        elif value is None and offline and used.get(name) is not None:
            value, source = used[name], "offline model"
        rows.append({"setting": name, "value": unset if value is None else value, "source": source})
    return rows


def _loaded_magics(shell: Any) -> Any:
    """The ``CompleteMagics`` of ``shell`` (default: the running IPython); an error if not loaded."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    magics = shell.magics_manager.registry.get("CompleteMagics") if shell is not None else None
    if magics is None:
        raise RuntimeError("jupyter_openai is not loaded: run %load_ext jupyter_openai first")
    return magics


def settings_report(shell: Any = None) -> list[dict[str, Any]]:
    """Each setting of the loaded extension with its value (key masked) and source; ``pandas.DataFrame``
    takes it as is. ``shell`` defaults to the running IPython."""
    return report(_loaded_magics(shell))


def current_client(shell: Any = None) -> Any:
    """The :class:`~jupyter_openai.client.OpenAIClient` that ``%%complete`` would use now, with the
    settings in effect (``%config``, environment, the offline model); ``shell`` defaults to the running IPython."""
    return _loaded_magics(shell).client()
