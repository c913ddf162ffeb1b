"""jupyter_openai: call OpenAI-compatible models from IPython and Jupyter.

Load it in a notebook with ``%load_ext jupyter_openai``. The HTTP client and the
session log are importable without IPython (``jupyter_openai.client``). Heavy parts
(the HTTP stack, ipywidgets, pandas) load on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["OpenAIClient", "CompletionForm", "session_log", "load_ipython_extension", "unload_ipython_extension"]

_LAZY = {"OpenAIClient": ("client", "OpenAIClient"), "CompletionForm": ("widgets", "CompletionForm"),
         "session_log": ("log", "session_log")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from importlib import import_module

        module, attribute = _LAZY[name]
        return getattr(import_module(f"{__name__}.{module}"), attribute)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def keep_question_prompts(lines: list[str]) -> list[str]:
    """Input cleanup: IPython reads any line ending in ``?`` as a help request, so
    ``%complete What is the capital of France?`` would never be sent. Such lines become
    the equivalent ``run_line_magic`` call (``%complete?`` alone still shows the help)."""
    import re

    if not lines or lines[0].lstrip().startswith("%%"):  # cell magic bodies are text
        return lines
    out = []
    for line in lines:
        match = re.match(r"(\s*)%complete[ \t]+(\S.*?\?)[ \t]*(\n?)$", line)
        if match:
            indent, prompt, newline = match.groups()
            line = f"{indent}get_ipython().run_line_magic('complete', {prompt!r}){newline}"
        out.append(line)
    return out


def load_ipython_extension(ipython: Any) -> None:
    """Register the magics (``%load_ext jupyter_openai``)."""
    from .magics import CompleteMagics

    ipython.register_magics(CompleteMagics)
    if keep_question_prompts not in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.append(keep_question_prompts)


def unload_ipython_extension(ipython: Any) -> None:
    """Remove the magics and their configurable (``%unload_ext jupyter_openai``)."""
    from .magics import CompleteMagics

    while keep_question_prompts in ipython.input_transformers_cleanup:
        ipython.input_transformers_cleanup.remove(keep_question_prompts)
    manager = ipython.magics_manager
    instance = manager.registry.pop(CompleteMagics.__name__, None)
    for kind, names in CompleteMagics.magics.items():
        for name in names:
            manager.magics[kind].pop(name, None)
    if instance is not None:
        if instance in ipython.configurables:
            ipython.configurables.remove(instance)
        if instance._client is not None:
            instance._client.close()
