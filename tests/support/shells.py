"""Real IPython shells with jupyter_openai loaded (GUIDE 7's recipe), made and closed cleanly."""

from __future__ import annotations

import atexit
from pathlib import Path


class RaisingShell:
    """Made on first use: an ``InteractiveShell`` whose ``run_cell`` raises the cell's error."""

    cls: type | None = None

    @classmethod
    def get(cls) -> type:
        if cls.cls is None:
            from IPython.core.interactiveshell import InteractiveShell

            class _RaisingShell(InteractiveShell):
                def run_cell(self, raw_cell: str, *args: object, **kwargs: object):  # type: ignore[override]
                    result = super().run_cell(raw_cell, *args, **kwargs)
                    result.raise_error()
                    return result

            cls.cls = _RaisingShell
        return cls.cls


def new_shell(config: object, ipython_dir: Path) -> object:
    """A real InteractiveShell with jupyter_openai loaded (GUIDE 7's recipe); close with :func:`close_shell`."""
    import os

    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_openai.session.conversation import conversations
    from jupyter_openai.session.log import session_log

    os.environ["IPYTHONDIR"] = str(ipython_dir)
    shell_class = RaisingShell.get()
    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    shell_class.clear_instance()
    config.HistoryManager.enabled = False  # type: ignore[attr-defined]
    ip = shell_class.instance(config=config)
    session_log.clear()
    session_log.path = None
    conversations.clear()
    ip.run_line_magic("load_ext", "jupyter_openai")
    return ip


def close_shell(ip: object) -> None:
    """Unload the extension and forget the shell singleton, the session log and the conversations."""
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_openai.session.conversation import conversations
    from jupyter_openai.session.log import session_log

    ip.run_line_magic("unload_ext", "jupyter_openai")  # type: ignore[attr-defined]
    session_log.clear()
    conversations.clear()
    session_log.path = None
    RaisingShell.get().clear_instance()
    InteractiveShell.clear_instance()
    # Each shell registers an exit handler that resets it (a full gc.collect() each): with hundreds
    # of shells made and dropped, the run went on for minutes after its last test. This one is done.
    atexit.unregister(ip.atexit_operations)  # type: ignore[attr-defined]
