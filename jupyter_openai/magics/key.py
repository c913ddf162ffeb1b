"""``%complete_key``: the API key typed at a prompt that does not echo it, never into a cell.

A key typed into a cell (``%config CompleteMagics.api_key = 'sk-…'``, ``%env OPENAI_API_KEY=…``) stays
in ``In[]``, in ``%history`` and in the saved notebook, however well it is masked afterwards.
``%complete_key`` asks for it with :func:`getpass.getpass` (in a kernel, the front end's password box:
ipykernel routes getpass through an input request) and sets it for the session, leaving no trace
in the history or the outputs. A key set from a cell, seen either way (the ``api_key`` trait set
while a cell runs, or a cell whose source assigns a key literal), gets one warning line pointing here.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from IPython.core.error import StdinNotImplementedError, UsageError
from IPython.core.magic import Magics, line_magic, magics_class

PROMPT = "API key (not shown, not saved in the notebook): "
FROM_CELL = ("The API key was set from a cell: it stays in this notebook's history (In[], %history) and saved "
             "file. Use %complete_key instead (it asks without echo and leaves no trace), and remove the key "
             "from this cell.")
NO_INPUT = ("This front end cannot ask for input: set OPENAI_API_KEY in the environment before starting "
            "Jupyter, or c.CompleteMagics.api_key in ipython_config.py")
#: A cell that writes a key literal: ``api_key = '…'`` (any ``…api_key`` name, as a keyword, a dict
#: key or an environ item), or ``%env``/``%set_env`` of an ``…API_KEY`` variable. ``KEY_IN_SOURCE``, the
#: compiled pattern, is compiled when the first cell runs (:func:`key_in_source`), not at ``%load_ext``.
KEY_PATTERN = r"""
      api_key\w*['"]?\]?\s*[=:,]\s*[rbuf]{0,2}['"][^'"\s]
    | ^\s*%(?:set_)?env\s+\w*api_key\w*(?:\s*=\s*|\s+)\S
"""


@functools.cache
def key_in_source() -> re.Pattern[str]:
    """:data:`KEY_PATTERN`, compiled (once)."""
    return re.compile(KEY_PATTERN, re.I | re.M | re.X)


KEY_IN_SOURCE: re.Pattern[str]  # the module's __getattr__ gives it: key_in_source()


def __getattr__(name: str) -> Any:
    if name == "KEY_IN_SOURCE":
        return key_in_source()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@magics_class
class KeyMagics(Magics):
    """``%complete_key``, and the watch for keys set from cells (``pre_run_cell``/``post_run_cell``)."""

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self._running = 0  #: cells being run (nested runs counted)
        self._warned = False  #: the running cell was warned about already
        self._from_prompt = False  #: %complete_key is setting the key

    def pre_run_cell(self, info: Any) -> None:
        """``pre_run_cell`` event: a cell starts; warn if its source writes a key."""
        self._running += 1
        self._warned = False
        if key_in_source().search(getattr(info, "raw_cell", None) or ""):
            self._warn()

    def post_run_cell(self, result: Any) -> None:
        """``post_run_cell`` event: the cell is over."""
        self._running = max(self._running - 1, 0)

    def key_set(self, value: Any) -> None:
        """The ``api_key`` trait changed to ``value`` (CompleteMagics' observer): warn when a cell set it."""
        if value and self._running and not self._from_prompt:
            self._warn()

    def _warn(self) -> None:
        if not self._warned:
            from ..display.cell import error_line

            self._warned = True
            error_line(FROM_CELL)

    @line_magic
    def complete_key(self, line: str) -> None:
        """Ask for the API key without showing it and use it for this session: ``%complete_key``.

        Nothing of the key goes into the cell, ``In[]``, ``%history`` or the outputs (a key typed
        into a cell would be saved with the notebook); ``%config CompleteMagics`` shows it masked.
        It wins over ``OPENAI_API_KEY`` until the kernel restarts. An empty answer changes nothing."""
        import getpass

        from traitlets.config import Config

        from ..config import _clean_key
        from ..secret import mask_key

        if line.strip():
            raise UsageError("%complete_key takes no value: it asks for the key, so that the key is not saved "
                             "with the notebook")
        magics = self.shell.magics_manager.registry.get("CompleteMagics")
        if magics is None:
            raise UsageError("jupyter_openai is not loaded: %load_ext jupyter_openai")
        try:
            typed = getpass.getpass(PROMPT)  # looked up now: ipykernel replaces it while a cell runs
        except StdinNotImplementedError:
            raise UsageError(NO_INPUT) from None
        except (EOFError, KeyboardInterrupt):
            typed = ""
        key, problem = _clean_key(typed)
        del typed
        if problem:
            raise UsageError(problem)
        if key is None:
            print("No key entered: the key is unchanged.")
            return
        self._from_prompt = True
        try:  # through the config, as %config would, so %complete_config and the masking see it
            magics.update_config(Config({type(magics).__name__: {"api_key": key}}))
        finally:
            self._from_prompt = False
        print(f"API key set for this session: {mask_key(key)}.")


def load(ipython: Any) -> None:
    """Register ``%complete_key`` and the watch for keys set from cells (from the extension's load)."""
    from .configurable import register_following_cells

    register_following_cells(ipython, KeyMagics(ipython))


def unload(ipython: Any) -> None:
    """Undo :func:`load`."""
    from .configurable import remove_following_cells

    remove_following_cells(ipython, KeyMagics)


__all__ = ["FROM_CELL", "KEY_IN_SOURCE", "KEY_PATTERN", "KeyMagics", "key_in_source", "load", "unload"]
