"""The IPython magics and their traitlets configuration: parse the line, delegate to ``calls/``, display."""

from ..lazy import exports

__all__ = ["CompleteMagics", "load", "unload", "ChatMagics", "LabMagics", "BatchMagics", "KeyMagics",
           "settings_report", "current_client"]
__getattr__, __dir__ = exports(__name__, {
    ".complete": ("CompleteMagics", "load", "unload"),
    ".chat": ("ChatMagics",),
    ".lab": ("LabMagics",),
    ".batch": ("BatchMagics",),
    ".key": ("KeyMagics",),
    ".sources": ("settings_report", "current_client"),
})
