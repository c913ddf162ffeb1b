"""How a ``%%complete`` line is read and written: options vs prompt, quotes, escapes, ``{name}``,
``$name`` option values and ``--out`` names.

Shared by the magic (which reads lines) and the form (whose preview writes one with
:func:`format_options` that reads back to the same request). No IPython here: mistakes raise
:class:`ConfigurationError`, which the magic shows as a one-line ``UsageError``.
"""

from __future__ import annotations

import keyword
import numbers
import re
import string
from collections.abc import Mapping
from typing import Any

from ..api.params import CHAT, OPTION_PARAMS, RESPONSES
from ..errors import ConfigurationError

_TOKEN = re.compile(r"""(?:"[^"]*"|'[^']*'|\S)+""")
_QUOTED = re.compile(r""""([^"]*)"|'([^']*)'""")
_BARE = re.compile(r"[^\s'\"]+")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}
_VARIABLE = re.compile(r"\$([A-Za-z_]\w*)")


def split_options(line: str, actions: Mapping[str, Any]) -> tuple[list[str], str]:
    """Split ``-opt value … prompt words`` into option arguments (quotes removed) and the verbatim rest.

    ``actions`` maps option strings to argparse actions (``parser._option_string_actions``).
    Options end at the first word that is not one, or at ``--``; ``-t0.5`` and ``--opt=value``
    are read as argparse reads them.
    """
    argv: list[str] = []
    end, expect_value = 0, False
    for match in _TOKEN.finditer(line):
        token, option = match.group(0), argv[-1] if expect_value else None
        if not expect_value:
            if not token.startswith("-") or token in ("-", "--"):
                end = match.end() if token == "--" else end
                break
            name = token.split("=", 1)[0]
            action = actions.get(name) or (actions.get(token[:2]) if token[1] != "-" else None)
            if action is None:
                import difflib  # only for the hint

                near = difflib.get_close_matches(name, [a for a in actions if a.startswith("--")], n=1, cutoff=0.6)
                hint = f" (did you mean {near[0]}?)" if near else ""
                raise ConfigurationError(f"unknown option {token!r}{hint}; see %%complete?")
            expect_value = action.nargs != 0 and name == token and name in actions
        else:
            expect_value = False
        _check_quotes(token, option)
        argv.append(_QUOTED.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), token))
        end = match.end()
    return argv, line[end:].strip()


def _check_quotes(token: str, option: str | None) -> None:
    """A word of the options whose quote is never closed (``-s "unterminated``) is a mistake, not text."""
    left = _QUOTED.sub("", token)
    mark = next((q for q in left if q in "\"'"), None)
    if mark is not None:
        other = "'" if mark == '"' else '"'
        where = f"{option}: the value" if option else "the option"
        raise ConfigurationError(f"{where} {token!r} has an unbalanced {mark} (close the quote; a value holding "
                                 f"{mark} goes in {other} quotes)")


def option_value(token: str, namespace: Mapping[str, Any]) -> str:
    """``token`` itself, or, written ``$name``, the notebook variable ``name`` as text: it must hold a
    str, int or float (``None``, a list or any other object would be sent as its ``str()``)."""
    match = _VARIABLE.fullmatch(token)
    if match is None:
        return token
    name = match.group(1)
    if name not in namespace:
        raise ConfigurationError(f"{token}: no variable named {name!r}")
    value = namespace[name]
    if isinstance(value, bool) or not isinstance(value, (str, numbers.Real)):
        raise ConfigurationError(f"{token}: the variable {name!r} holds {_a(type(value).__name__)}; "
                                 "an option value must be a str, int or float")
    try:
        return str(value)
    except Exception as exc:  # noqa: BLE001 - a user subclass's __str__
        why = _describe(exc)
        raise ConfigurationError(f"{token}: the variable {name!r} cannot be written as text: {why}") from None


def _a(noun: str) -> str:
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"


def schema_option(value: str | None, namespace: Mapping[str, Any]) -> Any:
    """``--schema VALUE``: the notebook variable ``VALUE`` names (a dict or a pydantic model class),
    else the text itself (JSON, or a path to a ``.json`` file); None when not given."""
    if value is not None and value.isidentifier() and value in namespace:
        return namespace[value]
    return value


def check_out_name(name: str) -> str:
    """``name`` when it can be a notebook variable (``--out``): an identifier that is not a keyword."""
    if not name:
        raise ConfigurationError("--out needs a variable name (-o NAME)")
    if not name.isidentifier() or keyword.iskeyword(name):
        what = "a Python keyword" if keyword.iskeyword(name) else "not a variable name"
        raise ConfigurationError(f"--out {name!r}: {what} (use letters, digits and _, not starting with a digit)")
    return name


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


def unfilled_names(prompt: str, namespace: Mapping[str, Any]) -> list[str]:
    """The ``{name}`` fields of ``prompt`` that name a variable of ``namespace`` (sent as written
    unless the prompt is interpolated); ``{{ }}`` and anything that is not a plain name are skipped."""
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(prompt) if field]
    except ValueError:
        return []
    return sorted({f for f in fields if f.isidentifier() and f in namespace})


def interpolate(prompt: str, namespace: Mapping[str, Any]) -> str:
    """Fill ``{name}`` from the namespace; ``{{`` and ``}}`` stay literal braces."""

    class Strict(dict):
        def __missing__(self, key: str) -> Any:
            if key in namespace:
                return namespace[key]
            raise ConfigurationError(
                f"--interpolate: name {key!r} is not defined (write {{{{ and }}}} for literal braces)"
            )

    return fill_fields(prompt, Strict(), "--interpolate: cannot fill the prompt")


class _Filler(string.Formatter):
    """``str.format`` that names the field whose value could not be read, converted or formatted."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.names: dict[int, str] = {}  #: the field each value came from (a nested spec reads another meanwhile)

    def _fail(self, doing: str, field: str, exc: BaseException) -> ConfigurationError:
        return ConfigurationError(f"{self.what}: {doing} {{{field}}} raised {_describe(exc)}")

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        try:
            value, first = super().get_field(field_name, args, kwargs)
        except ConfigurationError:
            raise
        except Exception as exc:  # noqa: BLE001 - a user object's __getattr__/__getitem__: any error
            raise self._fail("reading", field_name, exc) from None
        self.names[id(value)] = field_name
        return value, first

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        field = self.names.get(id(value), "")
        try:
            converted = super().convert_field(value, conversion)
        except Exception as exc:  # noqa: BLE001 - a user object's __str__/__repr__
            raise self._fail("converting", field, exc) from None
        self.names[id(converted)] = field
        return converted

    def format_field(self, value: Any, format_spec: str) -> Any:
        try:
            return super().format_field(value, format_spec)
        except Exception as exc:  # noqa: BLE001 - a user object's __format__
            raise self._fail("formatting", self.names.get(id(value), ""), exc) from None


def _describe(exc: BaseException) -> str:
    """``Type: message`` on one line, even when the exception's own ``str()`` fails."""
    try:
        text = " ".join(str(exc).split())
    except Exception:  # noqa: BLE001
        text = ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def fill_fields(template: str, values: Mapping[str, Any], what: str) -> str:
    """``template.format_map(values)`` where any failure is one :class:`ConfigurationError` starting with
    ``what`` and naming the field (a value's ``__format__`` that raises included); ``values`` may raise
    its own :class:`ConfigurationError` for a missing name."""
    try:
        return _Filler(what).vformat(template, (), values)
    except ConfigurationError:
        raise
    except (IndexError, ValueError, AttributeError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{what}: {_describe(exc)}") from None


def format_options(options: Mapping[str, Any], auto_endpoint: str, shown: Mapping[str, Any]) -> list[str]:
    """The ``%%complete`` words that set ``options`` (``None``: not set, no word): the model and
    the system message when they differ from ``shown``, the endpoint when it differs from
    ``auto_endpoint``, each parameter by its first flag, ``--no-stream``."""
    words: list[str] = []
    if options.get("model") and options["model"] != shown.get("model"):
        words += ["-m", quote(options["model"])]
    if options.get("endpoint") and options["endpoint"] != auto_endpoint:
        words += ["-e", options["endpoint"]]
    if options.get("endpoint") in (CHAT, RESPONSES) and options.get("system") is not None:
        words += ["-s", quote(escape(options["system"]))]
    for param in OPTION_PARAMS:
        value = options.get(param.name)
        if value is None or value is False:
            continue
        flag = param.flags[0]
        if value is True:
            words.append(flag)
        elif isinstance(value, list):
            for item in value:
                words += [flag, quote(escape(item))]
        elif isinstance(value, (int, float)):
            words += [flag, f"{value:g}"]
        else:
            words += [flag, quote(escape(str(value)))]
    if options.get("stream") is False:
        words.append("--no-stream")
    return words
