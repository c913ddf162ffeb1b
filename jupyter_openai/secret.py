"""Secrets: a value that is never a string, its mask, and redaction of anything a server sends back.

:class:`Secret` holds an API key (or a header built from one). It is not a ``str``: ``repr``,
``str`` and ``format`` give the mask of :func:`mask_key`; ``key + ""``, ``"".join([key])`` and
iteration raise ``TypeError``; ``json.dumps`` raises ``TypeError`` (``default=str`` gives the mask);
pickling raises ``TypeError``; copies are the same object. Only :meth:`Secret.reveal` gives the
value. :func:`wire_value` turns it into the ``str`` the HTTP layer sends, at send time only.

:func:`redact` takes any JSON value (strings, numbers, lists, objects, nested) and returns the
same shape with every key-looking word and every given secret masked.

Core module: no IPython, no requests.
"""

from __future__ import annotations

import re
from typing import Any, NoReturn

__all__ = ["Secret", "mask_key", "reveal", "redact", "wire_value", "REDACTED"]

#: What a given secret becomes inside redacted text.
REDACTED = "sk-***"
#: What looks like an API key (``sk-``, ``rk-``, ``pk-`` and 8+ key characters), masked by :func:`redact`;
#: the re module compiles it on first use (not when the package, or ``%load_ext``, imports this module).
_KEY_PATTERN = r"\b(sk|rk|pk)-[A-Za-z0-9_\-*.]{8,}"


def mask_key(key: str | Secret | None) -> str:
    """Show that a key is set without revealing it: ``<set: sk-…WXYZ>`` (last four only)."""
    key = reveal(key)
    if not key:
        return "<not set>"
    if len(key) < 20:
        return "<set: ***>"
    prefix = key.split("-", 1)[0] + "-" if "-" in key[:8] else ""
    return f"<set: {prefix}…{key[-4:]}>"


class Secret:
    """A secret value that shows itself masked everywhere; :meth:`reveal` gives the plain ``str``.

    Immutable and hashable; equal only to another :class:`Secret` with the same value.
    """

    __slots__ = ("__value",)

    def __init__(self, value: str | Secret) -> None:
        if isinstance(value, Secret):
            value = value.reveal()
        if not isinstance(value, str):
            raise TypeError(f"a Secret holds a str, not {type(value).__name__} (the value is not shown)")
        object.__setattr__(self, "_Secret__value", value)

    def reveal(self) -> str:
        """The plain value. Call it only where the value must leave the process (an HTTP header)."""
        return self.__value

    def __repr__(self) -> str:
        return mask_key(self.__value)

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return format(mask_key(self.__value), spec)

    def __bool__(self) -> bool:
        return bool(self.__value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        import hmac  # here, not at import: hashlib is a few ms of %load_ext

        return hmac.compare_digest(self.__value.encode("utf-8", "surrogatepass"),
                                   other.reveal().encode("utf-8", "surrogatepass"))

    def __hash__(self) -> int:
        return hash((Secret, self.__value))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError("a Secret is immutable")

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a Secret cannot be pickled: the value would be written in clear")


def reveal(value: str | Secret | None) -> str | None:
    """The plain value of a :class:`Secret`; anything else is returned as it is."""
    return value.reveal() if isinstance(value, Secret) else value


class _WireValue(str):
    """The plain text of a secret as the HTTP layer needs it (a ``str``), still masked in reprs.

    Made by :func:`wire_value` at send time only, so that request objects and the local variables
    of sending frames (shown by verbose tracebacks) show the mask.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return mask_key(str.__str__(self))

    def __str__(self) -> str:
        return str.__str__(self)  # http.client and requests read it as text: this is the value sent

    def __reduce_ex__(self, protocol: object) -> NoReturn:
        raise TypeError("a header value made from a Secret cannot be pickled")


def wire_value(value: str | Secret) -> str:
    """What the HTTP layer sends for ``value``: a :class:`Secret` becomes a ``str`` with a masked repr."""
    return _WireValue(value.reveal()) if isinstance(value, Secret) else value


def redact(value: Any, secrets: tuple[str | Secret | None, ...] | list[str | Secret | None] = ()) -> Any:
    """``value`` with key-looking words (``sk-…``, ``rk-…``, ``pk-…``) and the given ``secrets`` masked.

    Works on any JSON value, recursively: strings are masked, lists, tuples and dicts (keys too)
    are rebuilt, numbers, booleans and ``None`` are kept; bytes are decoded (UTF-8, replacing)
    and a :class:`Secret` becomes its mask. Other objects become their redacted ``str``.
    """
    plain = sorted({text for text in map(reveal, secrets) if text}, key=len, reverse=True)
    return _redact(value, plain)


def _redact(value: Any, plain: list[str]) -> Any:
    if isinstance(value, str):
        text = str.__str__(value)
        for secret in plain:
            text = text.replace(secret, REDACTED)
        return re.sub(_KEY_PATTERN, lambda m: m.group(1) + "-***", text)
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, Secret):
        return repr(value)
    if isinstance(value, dict):
        return {_redact(k, plain): _redact(v, plain) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_redact(item, plain) for item in value)
    if isinstance(value, list):
        return [_redact(item, plain) for item in value]
    if isinstance(value, (bytes, bytearray)):
        return _redact(bytes(value).decode("utf-8", "replace"), plain)
    return _redact(str(value), plain)
