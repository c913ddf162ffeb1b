"""The session log: one flat record per call, thread-safe, ready for ``pandas.DataFrame(log)``.

A record is a flat dict whose columns are :data:`COLUMNS` (scalars only; the parameters sent and the
texts of extra choices are JSON strings); it is kept as a tuple in that order, with values that repeat
from call to call (the model, the parameters) kept once, since a batch logs a record per row. Token
counts are ``None`` when the server sent none, never a made-up 0. The key is never part of a record.
With ``path`` set, each record is also appended to a JSONL file as soon as it is made, so a crash loses
at most the call in flight.

Writing never loses the outcome: text that UTF-8 cannot encode (a lone surrogate) is written
escaped (``\\udcff``, which JSON reads back as the same text); a file that cannot be written (a
missing folder, no permission, a full disk) gives one :class:`LogFileWarning` line per path and
problem while the record stays in memory. Files this module creates are private (mode 0600).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timezone
from typing import Any, overload

COLUMNS: tuple[str, ...] = (
    "id",
    "timestamp",
    "source",
    "execution_count",
    "model",
    "requested_model",
    "endpoint",
    "host",
    "prompt",
    "system",
    "completion",
    "completions",
    "reasoning",
    "refusal",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "reasoning_tokens",
    "latency",
    "time_to_first_token",
    "status",
    "error",
    "request_id",
    "params",
    "batch_id",
    "row_key",
    "cost_usd",
    "conversation",
    "turn",
    "messages_sent",
)
STATUSES = ("ok", "error", "interrupted", "truncated")
#: Columns whose values repeat from call to call (a batch's thousands of rows): one copy of each value kept.
_SHARED = frozenset({"source", "model", "requested_model", "endpoint", "host", "system", "finish_reason", "status",
                     "params", "batch_id"})
FILE_MODE = 0o600


class LogFileWarning(UserWarning):
    """The session log file could not be written; the records are still kept in memory."""


def warn_one_line(message: str) -> None:
    """Issue a :class:`LogFileWarning` that prints as one line (no source line, no traceback)."""
    warnings.warn_explicit(message, LogFileWarning, "jupyter_openai", 0)


def _encode(text: str) -> bytes:
    """UTF-8, with what it cannot encode (lone surrogates) escaped as ``\\udcxx``, valid JSON."""
    return text.encode("utf-8", "backslashreplace")


def _open_private(path: str, flags: int) -> int:
    """A file descriptor for ``path``, creating the file with mode 0600."""
    return os.open(path, flags | os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), FILE_MODE)


def utc_now() -> str:
    """The current UTC time in ISO 8601 with milliseconds."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class SessionLog(Sequence):
    """A list-like, thread-safe log of calls. ``pandas.DataFrame(log)`` takes it as is."""

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 on_write_error: Callable[[str], None] | None = None) -> None:
        self._records: list[tuple[Any, ...]] = []  #: one tuple per record, in COLUMNS order (a third of a dict)
        self._shared: dict[str, str] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._warned: tuple[str, str] | None = None
        #: Called with one line when the file cannot be written (default: :func:`warn_one_line`).
        self.on_write_error = on_write_error or warn_one_line
        self.path = path

    @property
    def path(self) -> str | None:
        """The JSONL file each new record is appended to (None: memory only)."""
        return self._path

    @path.setter
    def path(self, value: str | os.PathLike[str] | None) -> None:
        self._path = os.fspath(os.path.expanduser(value)) if value else None

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        """Add a record (missing columns become None); return the stored copy."""
        unknown = set(record) - set(COLUMNS)
        if unknown:
            raise ValueError(f"unknown log column(s): {', '.join(sorted(unknown))}")
        with self._lock:
            row = {column: record.get(column) for column in COLUMNS}
            row["id"] = row["id"] or next(self._ids)
            row["timestamp"] = row["timestamp"] or utc_now()
            self._records.append(tuple(self._shared.setdefault(value, value) if column in _SHARED and
                                       isinstance(value, str) else value for column, value in row.items()))
            if self._path:
                self._write_line(self._path, row)
        return row

    def _write_line(self, path: str, row: dict[str, Any]) -> None:
        """Append one record to the file; a failure is reported once (per path and reason), not raised."""
        line = _encode(json.dumps(row, ensure_ascii=False, default=str) + "\n")
        try:
            with os.fdopen(_open_private(path, os.O_APPEND), "ab") as handle:
                handle.write(line)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            if self._warned != (path, reason):
                self._warned = (path, reason)
                self.on_write_error(f"could not write the session log file {path} ({reason}); "
                                    "calls are still kept in memory (jupyter_openai.session.log.session_log)")
        else:
            self._warned = None

    # -- list-like -----------------------------------------------------------------
    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        with self._lock:
            if isinstance(index, slice):
                return [dict(zip(COLUMNS, values, strict=True)) for values in self._records[index]]
            return dict(zip(COLUMNS, self._records[index], strict=True))

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        with self._lock:
            snapshot = list(self._records)
        return (dict(zip(COLUMNS, values, strict=True)) for values in snapshot)

    def tail(self, count: int = 10) -> list[dict[str, Any]]:
        """The last ``count`` records, oldest first."""
        with self._lock:
            rows = self._records[-count:] if count > 0 else []
        return [dict(zip(COLUMNS, values, strict=True)) for values in rows]

    def clear(self) -> None:
        """Forget every record kept in memory (the JSONL file, if any, is left as is)."""
        with self._lock:
            self._records.clear()
            self._shared.clear()

    def __repr__(self) -> str:
        return f"<SessionLog: {len(self)} call(s){', file ' + self._path if self._path else ''}>"

    # -- export --------------------------------------------------------------------
    def to_dataframe(self) -> Any:
        """A pandas DataFrame with one row per call (needs pandas)."""
        import pandas as pd

        with self._lock:
            records = list(self._records)
        if not records:  # keeps one column per field, as for a full log
            return pd.DataFrame({column: [] for column in COLUMNS}, columns=list(COLUMNS))
        return pd.DataFrame.from_records(records, columns=list(COLUMNS))

    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """The records as one JSON array; written to ``path`` when given."""
        return _write(path, json.dumps(list(self), ensure_ascii=False, indent=1))

    def to_jsonl(self, path: str | os.PathLike[str] | None = None) -> str:
        """The records as JSON Lines; written to ``path`` when given."""
        return _write(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self))

    def to_csv(self, path: str | os.PathLike[str] | None = None) -> str:
        """The records as CSV with a header row; written to ``path`` when given."""
        import csv  # export only

        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(self)
        return _write(path, buffer.getvalue())


def _write(path: str | os.PathLike[str] | None, text: str) -> str:
    """Write ``text`` to ``path`` (created 0600); encoded before the file is opened, so an
    export never leaves an empty file behind because of its content."""
    if path is not None:
        data = _encode(text)
        with os.fdopen(_open_private(os.path.expanduser(path), os.O_TRUNC), "wb") as handle:
            handle.write(data)
    return text


#: The log shared by the magic and the form within one kernel.
session_log = SessionLog()
