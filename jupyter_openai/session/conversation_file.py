"""A conversation's JSON file: every field checked on load, written atomically.

:func:`check` reads what :meth:`~jupyter_openai.session.conversation.Conversation.to_dict` writes and
rejects anything else with one :class:`~jupyter_openai.errors.ConfigurationError` naming the field
(``'turns[2].user' is text, got a number (5)``), so a wrong file fails on load, never later in a
request. :func:`encode` keeps text UTF-8 cannot hold (a lone surrogate pasted from elsewhere) as a
JSON ``\\uXXXX`` escape, and :func:`write_atomically` writes through a temporary file in the same
folder renamed over the target, so a failed save leaves the earlier file whole. No IPython here.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError

FORMAT_VERSION = 1
#: Statuses a turn may have: a complete answer, one cut short by the length limit, one stopped by Ctrl-C/Stop.
TURN_STATUSES = ("ok", "truncated", "interrupted")
#: A turn's optional text fields, as :class:`~jupyter_openai.session.conversation.Turn` names them.
TURN_TEXTS = ("assistant", "key", "model", "refusal")


def check(data: Any) -> dict[str, Any]:
    """The fields of a conversation file's object, checked: ``name``, ``system`` (text or None),
    ``max_turns``, ``max_tokens`` (None or a whole number >= 1), and ``turns`` (a list of
    :class:`Turn` keyword dicts) or, when the file has no turns, ``messages`` (unchecked here: chat
    messages, which the conversation reads and checks itself)."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"a conversation file holds a JSON object or a list of messages, not {kind(data)}")
    version = data.get("version", FORMAT_VERSION)
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION:
        raise ConfigurationError(f"'version' is a format this version reads (1 to {FORMAT_VERSION}), "
                                 f"got {shown(version)}")
    fields: dict[str, Any] = {key: text(data.get(key), key, optional=True) for key in ("name", "system")}
    fields["system"] = fields["system"] or None
    for key in ("max_turns", "max_tokens"):
        value = data.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigurationError(f"'{key}' is a whole number of at least 1 (or null), got {shown(value)}")
        fields[key] = value
    turns, messages = data.get("turns"), data.get("messages")
    if "turns" in data and not isinstance(turns, list):
        raise ConfigurationError(f"'turns' is a list of turns, got {shown(turns)}")
    if turns is None and messages is not None and not isinstance(messages, list):
        raise ConfigurationError(f"'messages' is a list of messages, got {shown(messages)}")
    fields["turns"] = None if turns is None else [turn(raw, i) for i, raw in enumerate(turns)]
    fields["messages"] = messages
    return fields


def turn(raw: Any, i: int) -> dict[str, Any]:
    """One saved turn as :class:`Turn`'s keyword arguments, every field checked (``turns[i].field`` named)."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"'turns[{i}]' is an object with a user text, got {shown(raw)}")
    status = raw.get("status") or "ok"
    if status not in TURN_STATUSES:
        raise ConfigurationError(f"'turns[{i}].status' is one of {', '.join(TURN_STATUSES)}, got {shown(status)}")
    fields = {key: text(raw.get(key), f"turns[{i}].{key}", optional=True) for key in TURN_TEXTS}
    return {"user": text(raw.get("user"), f"turns[{i}].user"), **fields, "assistant": fields["assistant"] or "",
            "status": status}


def text(value: Any, where: str, *, optional: bool = False) -> Any:
    """``value`` if it is text (or, ``optional``, None); else the error naming the field ``where``."""
    if (value is None and optional) or isinstance(value, str):
        return value
    raise ConfigurationError(f"'{where}' is {'text or null' if optional else 'text'}, got {shown(value)}")


def kind(value: Any) -> str:
    """The JSON name of a value's type, with its article."""
    names = {bool: "a boolean", dict: "an object", list: "a list", str: "a string", int: "a number",
             float: "a number", type(None): "null"}
    return next((name for typ, name in names.items() if isinstance(value, typ)), f"a {type(value).__name__}")


def shown(value: Any) -> str:
    """A wrong value, named by its JSON type and shown short."""
    written = json.dumps(value, ensure_ascii=False, default=str)
    return f"{kind(value)} ({written[:40] + '…' if len(written) > 40 else written})"


def encode(data: Any) -> bytes:
    """``data`` as indented JSON in UTF-8; a character UTF-8 cannot hold (a lone surrogate) becomes the
    JSON escape ``\\uXXXX``, which reads back as the same character."""
    return json.dumps(data, ensure_ascii=False, indent=1).encode("utf-8", "backslashreplace")


def write_atomically(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder renamed over it
    (``os.replace``): ``path`` is the old file or the new one, never half written. An existing
    file's permissions are kept; a new one is readable by its owner only (as ``mkstemp`` makes it)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        mode: int | None = stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        mode = None
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        if mode is not None:
            os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
