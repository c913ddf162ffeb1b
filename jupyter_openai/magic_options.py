"""The magics' shared options: one argparse option per parameter of :mod:`~jupyter_openai.params`,
and the whole set of call options ``%%complete`` and ``%%chat`` both take (so ``%%chat?`` lists
what ``%%complete?`` lists, from the same declarations)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.magic_arguments import argument

from .magic_config import FORMAT_HELP, FORMATS
from .params import ENDPOINT_CHOICES, OPTION_PARAMS, Param


def param_options(params: tuple[Param, ...], prefix: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add one magic option per parameter (flags, help and type from :mod:`~jupyter_openai.params`)."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for param in reversed(params):  # magic_arguments adds decorators in reverse order
            func = argument(*param.flags, dest=param.name, help=prefix + param.help, **argparse_kind(param))(func)
        return func

    return decorate


def call_options(system_help: str,
                 params: tuple[Param, ...] = OPTION_PARAMS) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The options of a call and of how it is shown, as ``%%complete`` has them (``%%chat`` too):
    model, endpoint, system message (``system_help`` says what it does there), every parameter,
    streaming, ``--out``, format, quiet, reasoning and ``--interpolate``."""
    decorators = (
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
    )

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        for decorator in reversed(decorators):  # as if written one above the other
            func = decorator(func)
        return func

    return decorate


def argparse_kind(param: Param) -> dict[str, Any]:
    if param.kind is bool:
        return {"action": "store_true", "default": None}
    if param.kind == (str, list):
        return {"action": "append"}
    if param.kind in (int, float):
        return {"type": param.kind}
    if param.choices:
        return {"choices": param.choices}
    return {}
