"""jupyter_openai: call OpenAI-compatible models from IPython and Jupyter.

Load it in a notebook with ``%load_ext jupyter_openai``. The HTTP client and the
session log are importable without IPython (``jupyter_openai.client``). Heavy parts
(the HTTP stack, ipywidgets, pandas) load on first use.
"""

from __future__ import annotations

from typing import Any

from .version import __version__

__all__ = ["__version__", "OpenAIClient", "CompletionForm", "session_log", "conversations", "settings_report",
           "load_ipython_extension", "unload_ipython_extension"]

_LAZY = {"OpenAIClient": ("client", "OpenAIClient"), "CompletionForm": ("widgets.form", "CompletionForm"),
         "session_log": ("session.log", "session_log"), "conversations": ("session.conversation", "conversations"),
         "settings_report": ("magics.sources", "settings_report")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(f"{__name__}.{module}"), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext jupyter_openai``)."""
    from .magics.complete import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics, their configurable and connections (``%unload_ext jupyter_openai``)."""
    from .magics.complete import unload

    unload(ipython)
