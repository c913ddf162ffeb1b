"""How a ``%%complete`` line is read and written: options vs prompt, quotes, escapes, ``{name}``.

Shared by the magic (which reads lines) and the form (whose preview writes one that reads
back to the same request). No IPython here: mistakes raise :class:`ConfigurationError`,
which the magic shows as a one-line ``UsageError``.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from .errors import ConfigurationError

_TOKEN = re.compile(r"""(?:"[^"]*"|'[^']*'|\S)+""")
_QUOTED = re.compile(r""""([^"]*)"|'([^']*)'""")
_BARE = re.compile(r"[^\s'\"]+")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


def split_options(line: str, actions: Mapping[str, Any]) -> tuple[list[str], str]:
    """Split ``-opt value … prompt words`` into option arguments (quotes removed) and the verbatim rest.

    ``actions`` maps option strings to argparse actions (``parser._option_string_actions``).
    Options end at the first word that is not one, or at ``--``; ``-t0.5`` and ``--opt=value``
    are read as argparse reads them.
    """
    argv: list[str] = []
    end, expect_value = 0, False
    for match in _TOKEN.finditer(line):
        token = match.group(0)
        if not expect_value:
            if not token.startswith("-") or token in ("-", "--"):
                end = match.end() if token == "--" else end
                break
            name = token.split("=", 1)[0]
            action = actions.get(name) or (actions.get(token[:2]) if token[1] != "-" else None)
            if action is None:
                raise ConfigurationError(f"unknown option {token!r}; see %%complete?")
            expect_value = action.nargs != 0 and name == token and name in actions
        else:
            expect_value = False
        argv.append(_QUOTED.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), token))
        end = match.end()
    return argv, line[end:].strip()


def unescape(text: str) -> str:
    """``\\n``, ``\\t`` and ``\\\\`` typed on the magic line become the characters."""
    return re.sub(r"\\([nt\\])", lambda m: _ESCAPES[m.group(1)], text)


def escape(value: str) -> str:
    """The inverse of :func:`unescape`: how a value with newlines is written on one line."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def quote(value: str) -> str:
    """A value as one word of the magic line, which drops quotes and keeps backslashes: bare when
    it can be, else quoted (a ``"`` inside double quotes is written ``"'"'"``)."""
    if _BARE.fullmatch(value) and not value.startswith("-"):
        return value
    if '"' in value and "'" not in value:
        return f"'{value}'"
    return '"' + value.replace('"', '"\'"\'"') + '"'


def interpolate(prompt: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``{name}`` from the namespace; ``{{`` and ``}}`` stay literal braces."""

    class Strict(dict):
        def __missing__(self, key: str) -> Any:
            if key in namespace:
                return namespace[key]
            raise ConfigurationError(f"--interpolate: name {key!r} is not defined (write {{{{ and }}}} for literal braces)")

    try:
        return string.Formatter().vformat(prompt, (), Strict())
    except ConfigurationError:
        raise
    except (IndexError, ValueError, AttributeError, KeyError) as exc:
        raise ConfigurationError(f"--interpolate: cannot fill the prompt: {exc}") from None
