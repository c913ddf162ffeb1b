"""The call options ``%%complete`` and ``%%chat`` both take, as one decorator (so ``%%chat?`` lists
what ``%%complete?`` lists, from the same declarations: the parameters' options come from
:func:`~jupyter_openai.magics.configurable.param_options`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from IPython.core.magic_arguments import argument

from ..api.params import ENDPOINT_CHOICES, OPTION_PARAMS, Param
from .configurable import FORMAT_HELP, FORMATS, param_options


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
