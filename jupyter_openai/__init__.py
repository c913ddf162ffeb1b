"""jupyter_openai: call OpenAI-compatible models from IPython and Jupyter.

Load it in a notebook with ``%load_ext jupyter_openai``. Every public name is listed in ``__all__`` and
imported on first use (``import jupyter_openai`` loads nothing heavy): the HTTP client and the session
log work without IPython; the subpackages (``api``, ``transport``, ``session``, ``calls``, ``batch``,
``display``, ``widgets``, ``magics``) re-export their own names the same way.
"""

from __future__ import annotations

from typing import Any

from .lazy import exports
from .version import __version__

__all__ = [
    "__version__",
    # the client and the offline model
    "OpenAIClient", "LocalServer", "Secret", "is_openai_host",
    # the session
    "session_log", "SessionLog", "conversations", "Pricing", "pricing", "money",
    # batch runs
    "run_batch", "cancel_batch",
    # token probabilities
    "nucleus", "reweight", "alternatives_html",
    # the forms
    "CompletionForm", "ChatForm",
    # the loaded extension
    "settings_report", "current_client", "load_ipython_extension", "unload_ipython_extension",
    # errors
    "OpenAIError", "ConfigurationError", "APIConnectionError", "APITimeoutError", "APIStatusError", "Cancelled",
]

__getattr__, __dir__ = exports(__name__, {
    ".client": ("OpenAIClient",),
    ".offline.server": ("LocalServer",),
    ".secret": ("Secret",),
    ".config": ("is_openai_host",),
    ".session.log": ("session_log", "SessionLog"),
    ".session.conversation": ("conversations",),
    ".session.cost": ("Pricing", "pricing", "money"),
    ".batch.run": ("run_batch",),
    ".batch.openai_batch": ("cancel_batch",),
    ".api.logprobs": ("nucleus", "reweight"),
    ".widgets.probs": ("alternatives_html",),
    ".widgets.form": ("CompletionForm",),
    ".widgets.chat": ("ChatForm",),
    ".magics.sources": ("settings_report", "current_client"),
    ".errors": ("OpenAIError", "ConfigurationError", "APIConnectionError", "APITimeoutError", "APIStatusError",
                "Cancelled"),
})


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext jupyter_openai``)."""
    from .magics.complete import load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics, their configurable and connections (``%unload_ext jupyter_openai``)."""
    from .magics.complete import unload

    unload(ipython)
