"""How a call looks in a cell (IPython display, no widgets): the growing answer, its reasoning, the
status line, errors and tables."""

from ..lazy import exports

__all__ = ["CellView", "Table", "error_line"]
__getattr__, __dir__ = exports(__name__, {
    ".cell": ("CellView", "Table", "error_line"),
})
