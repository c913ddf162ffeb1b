"""IPython's ``@magic_arguments``, with the parser and the help built on first use.

IPython's decorator builds a magic's ``argparse`` parser, and formats its whole help into the
method's ``__doc__``, when the class is created: for this package's magics that was most of
what ``%load_ext jupyter_openai`` cost. :class:`magic_arguments` here takes the same
``@argument`` declarations and leaves an :class:`ArgumentMagic` in the class, which builds the
parser with IPython's own :func:`~IPython.core.magic_arguments.construct_parser` the first time
it is needed: a call (``self.complete.parser``, :func:`parse_argstring`), ``%%complete?``,
Shift-Tab help (IPython's inspector reads ``__doc__``), ``%magic``, the completer. The help is
the same text IPython's decorator gives.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from IPython.core import magic_arguments as _ipython
from IPython.core.magic_arguments import MagicArgumentParser, construct_parser

__all__ = ["ArgumentMagic", "magic_arguments"]


class ArgumentMagic:
    """A magic method whose parser (``.parser``) and help (``__doc__``) are built on first use.

    Bound to a :class:`~IPython.core.magic.Magics` instance it is an ordinary bound method
    (:class:`types.MethodType`), whose attributes come from here: ``parser``, ``__doc__``, and
    those of the decorated function (``has_arguments``, ``decorators``, IPython's
    ``no_var_expand`` mark; ``__wrapped__`` for the signature and the source file).
    """

    def __init__(self, func: Callable[..., Any]) -> None:
        self.__wrapped__ = func
        self.__name__ = func.__name__
        self.__qualname__ = func.__qualname__
        self.__module__ = func.__module__
        self._parser: MagicArgumentParser | None = None

    @property
    def parser(self) -> MagicArgumentParser:
        """The magic's parser (built now if it was not yet; its help becomes the docstring)."""
        if self._parser is None:
            self._parser = construct_parser(self.__wrapped__)
        return self._parser

    @property  # type: ignore[override]
    def __doc__(self) -> str | None:
        """The magic's whole help, as IPython's decorator writes it (building the parser writes it)."""
        self.parser  # noqa: B018 - built on first use
        return self.__wrapped__.__doc__

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.__wrapped__(*args, **kwargs)

    def __get__(self, instance: Any, owner: type | None = None) -> Any:
        return self if instance is None else types.MethodType(self, instance)

    def __getattr__(self, name: str) -> Any:
        if name == "__wrapped__":  # not yet set (copying, unpickling): no recursion
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __repr__(self) -> str:
        return f"<magic {self.__qualname__} (parser {'built' if self._parser is not None else 'not built yet'})>"


class magic_arguments(_ipython.magic_arguments):  # noqa: N801 - IPython's name, as the magics are written
    """``@magic_arguments()`` as IPython has it, except that the parser is built on first use."""

    def __call__(self, func: Callable[..., Any]) -> ArgumentMagic:  # type: ignore[override]
        if not getattr(func, "has_arguments", False):
            func.has_arguments = True  # type: ignore[attr-defined]
            func.decorators = []  # type: ignore[attr-defined]
        if self.name is not None:
            func.argcmd_name = self.name  # type: ignore[attr-defined]
        return ArgumentMagic(func)
