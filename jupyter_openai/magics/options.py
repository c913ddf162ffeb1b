"""The magics' options: how they are declared, and the options several magics share.

``@magic_arguments()`` and ``@argument(...)`` are written and stacked as IPython's are (the
decorator on top, one ``@argument`` per option, each taking ``add_argument``'s arguments), but
they only record the declarations: the method left in the class is an :class:`ArgumentMagic`,
which builds its ``argparse`` parser with IPython's own
:func:`~IPython.core.magic_arguments.construct_parser` (a ``MagicArgumentParser``: its errors are
``UsageError``) and writes the whole help into ``__doc__``, as IPython's decorator does, the
first time either is needed: a call (``self.complete.parser``, :func:`parse_argstring`),
``%%complete?``, Shift-Tab help (IPython's inspector reads ``__doc__``), ``%magic``, the
completer. IPython's decorator builds them when the class is created, which was most of what
``%load_ext jupyter_openai`` cost; its module is imported on first use too.

:func:`param_options` adds one option per request parameter (from
:mod:`~jupyter_openai.api.params`), and :func:`call_options` the options of a call that
``%%complete`` and ``%%chat`` both take, so ``%%chat?`` lists what ``%%complete?`` lists, from
the same declarations; both are :class:`options`, whose ``@argument`` lines are made when the
parser is built too.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..api.params import ENDPOINT_CHOICES, OPTION_PARAMS, Param
from .configurable import FORMAT_HELP, FORMATS

if TYPE_CHECKING:
    from IPython.core.magic_arguments import MagicArgumentParser


def _declarations(func: Callable[..., Any]) -> list[Any]:
    """The declarations recorded on ``func`` (IPython's attributes: ``has_arguments``, ``decorators``)."""
    if not getattr(func, "has_arguments", False):
        func.has_arguments = True  # type: ignore[attr-defined]
        func.decorators = []  # type: ignore[attr-defined]
    return func.decorators  # type: ignore[attr-defined,no-any-return]


class argument:  # noqa: N801 - IPython's name, as the magics are written
    """``@argument(*args, **kwargs)``: one ``parser.add_argument(*args, **kwargs)``, applied when
    the parser is built (IPython's ``argument``, whose ``add_to_parser`` this is)."""

    def __init__(self, *args: Any, **kwds: Any) -> None:
        self.args, self.kwds = args, kwds

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        _declarations(func).append(self)
        return func

    def add_to_parser(self, parser: Any, group: Any) -> None:
        (parser if group is None else group).add_argument(*self.args, **self.kwds)


class magic_arguments:  # noqa: N801 - IPython's name, as the magics are written
    """``@magic_arguments(name=None)`` on top of the ``@argument`` lines: the method becomes an
    :class:`ArgumentMagic` (``name``: the magic's name in the usage line, as IPython's)."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name

    def __call__(self, func: Callable[..., Any]) -> ArgumentMagic:
        _declarations(func)
        if self.name is not None:
            func.argcmd_name = self.name  # type: ignore[attr-defined]
        return ArgumentMagic(func)


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
            from IPython.core.magic_arguments import construct_parser

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


def parse_argstring(magic_func: Any, argstring: str, *, partial: bool = False) -> Any:
    """IPython's ``parse_argstring``: parse the magic's line with its parser (built if need be)."""
    return magic_func.parser.parse_argstring(argstring, partial=partial)


class options:  # noqa: N801 - used as a decorator, as argument is
    """Several ``@argument`` lines as one decorator: ``make()`` returns them, in the order they would be
    written, when the parser is built (so a magic's class is created without them)."""

    def __init__(self, make: Callable[[], list[Any]]) -> None:
        self.make = make

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        _declarations(func).append(self)
        return func

    def add_to_parser(self, parser: Any, group: Any) -> None:
        for declaration in self.make():
            declaration.add_to_parser(parser, group)


def param_options(params: tuple[Param, ...], prefix: str = "") -> options:
    """One magic option per parameter (flags, help and type from :mod:`~jupyter_openai.api.params`)."""
    return options(lambda: [argument(*param.flags, dest=param.name, help=prefix + param.help,
                                     **_argparse_kind(param)) for param in params])


def _argparse_kind(param: Param) -> dict[str, Any]:
    if param.kind is bool:
        return {"action": "store_true", "default": None}
    if param.kind == (str, list):
        return {"action": "append"}
    if param.kind in (int, float):
        return {"type": param.kind}
    if param.choices:
        return {"choices": param.choices}
    return {}


def call_options(system_help: str, params: tuple[Param, ...] = OPTION_PARAMS) -> options:
    """The options of a call and of how it is shown, as ``%%complete`` has them (``%%chat`` too):
    model, endpoint, system message (``system_help`` says what it does there), every parameter,
    streaming, ``--out``, format, quiet, reasoning and ``--interpolate``."""
    return options(lambda: [
        argument("-m", "--model", help="Model id (default: the model trait)."),
        argument("-e", "--endpoint", choices=ENDPOINT_CHOICES,
                 help="auto (completions for OpenAI's legacy completion models, chat otherwise), chat, completions "
                      "or responses."),
        argument("-s", "--system", help=system_help),
        param_options(params),
        argument("--no-stream", action="store_true", help="Wait for the whole answer instead of streaming."),
        argument("-o", "--out", help="Store the answer text in this variable."),
        argument("-f", "--format", choices=FORMATS, help=FORMAT_HELP),
        argument("-q", "--quiet", action="store_true", help="Show nothing but errors (use with --out)."),
        argument("--no-reasoning", action="store_true", help="Hide the reasoning text a model sends apart."),
        argument("-i", "--interpolate", action="store_true", default=None,
                 help="Fill {name} from notebook variables."),
    ])
