"""Answers from the API as light objects: a finished completion, and a live stream.

:class:`Completion` wraps a non-streamed answer of either endpoint. :class:`Stream`
reads a server-sent-events answer incrementally, yields :class:`Delta` tuples, and keeps
everything received so far (text per choice, usage, finish reasons, timings), so partial
text survives errors, ``break`` and Ctrl-C. No pydantic: plain attributes and dicts.
"""

from __future__ import annotations

import json
import json.scanner
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

import requests
import urllib3

from . import connection
from .errors import APIConnectionError, StreamError, redact
from .sse import SSEDecoder

if TYPE_CHECKING:
    from .cancel import CancelToken

CHAT_KIND = "chat"
COMPLETIONS_KIND = "completions"
_DECODER = json.JSONDecoder()
_make_scanner = json.scanner.c_make_scanner  # None without the _json C accelerator
_new_tuple = tuple.__new__


def _json_loader() -> Callable[[str], Any]:
    """``json.loads`` for one SSE payload, minus its Python layers (loads → decode → raw_decode and two
    whitespace regexes): the C scanner directly. Anything it does not take whole (leading or trailing
    whitespace, invalid JSON) goes through ``json.loads``, so results and errors are exactly its own."""
    if _make_scanner is None:
        return json.loads
    scan = _make_scanner(_DECODER)  # one per stream: the scanner keeps a memo between calls
    loads = json.loads

    def load(data: str) -> Any:
        try:
            obj, end = scan(data, 0)
        except StopIteration:
            return loads(data)  # raises the usual JSONDecodeError (a ValueError)
        return obj if end == len(data) else loads(data)

    return load


def _choice_text(choice: dict[str, Any], kind: str) -> str:
    if kind == CHAT_KIND:
        message = choice.get("message") or {}
        return message.get("content") or ""
    return choice.get("text") or ""


class Completion:
    """A finished, non-streamed answer from ``/completions`` or ``/chat/completions``."""

    __slots__ = ("raw", "kind", "request_id", "latency")

    def __init__(
        self, raw: dict[str, Any], kind: str, request_id: str | None = None, latency: float | None = None
    ) -> None:
        self.raw = raw
        self.kind = kind
        self.request_id = request_id
        self.latency = latency

    id = property(lambda self: self.raw.get("id"))
    model = property(lambda self: self.raw.get("model"))
    created = property(lambda self: self.raw.get("created"))
    usage = property(lambda self: self.raw.get("usage") or None)

    @property
    def choices(self) -> list[dict[str, Any]]:
        return self.raw.get("choices") or []

    @property
    def texts(self) -> list[str]:
        """The text of every choice, in index order."""
        ordered = sorted(self.choices, key=lambda c: c.get("index", 0))
        return [_choice_text(c, self.kind) for c in ordered]

    @property
    def text(self) -> str:
        """The first choice's text ("" when there is none)."""
        texts = self.texts
        return texts[0] if texts else ""

    @property
    def finish_reasons(self) -> list[str | None]:
        return [c.get("finish_reason") for c in sorted(self.choices, key=lambda c: c.get("index", 0))]

    @property
    def finish_reason(self) -> str | None:
        reasons = self.finish_reasons
        return reasons[0] if reasons else None

    def __repr__(self) -> str:
        return f"Completion(model={self.model!r}, finish_reason={self.finish_reason!r}, text={self.text[:60]!r})"


class Delta(NamedTuple):
    """A piece of a streamed answer: which choice, the new text, and its finish reason."""

    index: int
    text: str
    finish_reason: str | None


class Stream:
    """A streamed answer being read. Iterate it for :class:`Delta` items.

    ``status`` is ``"streaming"`` while open, then ``"ok"`` (``[DONE]`` seen), ``"truncated"``
    (the server closed without ``[DONE]``), ``"error"`` or ``"interrupted"`` (closed early,
    for instance by Ctrl-C). The connection is released whatever happens.
    """

    def __init__(
        self,
        response: requests.Response,
        kind: str,
        *,
        started: float,
        secrets: tuple[str, ...] = (),
        on_read_error: Callable[[BaseException], BaseException] | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self.kind = kind
        request_id = response.headers.get("x-request-id")
        self.request_id: str | None = redact(request_id, secrets) if request_id else None
        self.id: str | None = None
        self.model: str | None = None
        self.created: int | None = None
        self.usage: dict[str, Any] | None = None
        self.finish_reasons: dict[int, str] = {}
        self.status = "streaming"
        self.error: BaseException | None = None
        self.started = started
        self.first_token_at: float | None = None
        self.ended_at: float | None = None
        self._parts: dict[int, list[str]] = {}
        self._response = response
        self._secrets = secrets
        self._on_read_error = on_read_error
        self._cancel = cancel
        self._iterator: Iterator[Delta] | None = None

    # -- reading -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Delta]:
        if self._iterator is None:
            self._iterator = self._deltas()
        return self._iterator

    def _deltas(self) -> Iterator[Delta]:
        loads = _json_loader()
        chat = self.kind == CHAT_KIND
        parts = self._parts
        decoder = SSEDecoder()
        need_meta = True
        if self.status != "streaming":  # closed (or finished) before iteration began: nothing to read
            return
        try:
            for chunk in self._chunks():
                for event in decoder.feed(chunk):
                    data = event.data
                    if data == "[DONE]":
                        self.status = "ok"
                        connection.reuse(self._response)
                        return
                    try:
                        obj = loads(data)
                    except ValueError:
                        obj = None
                    if type(obj) is not dict:
                        snippet = redact(data[:80], self._secrets)
                        raise self._fail(StreamError(f"malformed chunk: {snippet!r}", request_id=self.request_id))
                    if event.event == "error" or obj.get("error") is not None or obj.get("object") == "error":
                        error = self._stream_error(obj)  # not on the raise line: verbose tracebacks show its
                        raise self._fail(error)  # variables, and ``obj`` is raw server data (maybe an echoed key)
                    if need_meta:  # Azure's first chunk has empty id and model: take the first real ones
                        self.id = obj.get("id") or self.id
                        self.model = obj.get("model") or self.model
                        self.created = obj.get("created") or self.created
                        need_meta = not (self.id and self.model)
                    if obj.get("usage"):
                        self.usage = obj["usage"]
                    for choice in obj.get("choices") or ():
                        if chat:
                            text = (choice.get("delta") or {}).get("content")
                        else:
                            text = choice.get("text")
                        reason = choice.get("finish_reason")
                        if not text and not reason:
                            continue
                        index = choice.get("index", 0)
                        if text:
                            if self.first_token_at is None:
                                self.first_token_at = time.monotonic()
                            bucket = parts.get(index)
                            if bucket is None:
                                bucket = parts[index] = []
                            bucket.append(text)
                        if reason:
                            self.finish_reasons[index] = reason
                        yield _new_tuple(Delta, (index, text or "", reason))  # Delta(...) minus its Python __new__
            decoder.close()
            if self.status == "streaming":  # EOF without [DONE] (a cancel set "interrupted")
                self.status = "truncated"
            connection.drop(self._response)
        except GeneratorExit:
            if self.status == "streaming":
                self.status = "interrupted"
            raise
        except KeyboardInterrupt:
            self.status = "interrupted"
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to the project's errors
            if self.status == "streaming":
                self.status = "error"
                self.error = exc
            raise
        finally:
            self.close()

    def _chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive; ends quietly (status ``interrupted``) when cancelled."""
        cancel = self._cancel
        try:
            for chunk in self._response.iter_content(chunk_size=None):
                if cancel is not None and cancel.cancelled:
                    break
                yield chunk
        except (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if cancel is None or not cancel.cancelled:
                mapped = self._on_read_error(exc) if self._on_read_error else APIConnectionError(str(exc))
                raise self._fail(mapped) from None
        if cancel is not None and cancel.cancelled:
            self.status = "interrupted"

    def _fail(self, exc: BaseException) -> BaseException:
        self.status = "error"
        self.error = exc
        return exc

    def _stream_error(self, obj: dict[str, Any]) -> StreamError:
        inner = obj.get("error", obj)
        message = inner.get("message") if isinstance(inner, dict) else inner
        text = redact(str(message or json.dumps(obj))[:300], self._secrets)
        return StreamError(f"the server sent an error mid-stream: {text}", request_id=self.request_id)

    def read(self) -> Stream:
        """Consume the whole stream; return self."""
        for _ in self:
            pass
        return self

    # -- results -------------------------------------------------------------------
    @property
    def texts(self) -> list[str]:
        """Text received so far for every choice, in index order."""
        return ["".join(self._parts[i]) for i in sorted(self._parts)]

    @property
    def text(self) -> str:
        """Text of choice 0 received so far."""
        return "".join(self._parts.get(0, ()))

    @property
    def finish_reason(self) -> str | None:
        return self.finish_reasons.get(0)

    @property
    def truncated(self) -> bool:
        return self.status == "truncated"

    @property
    def latency(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started

    @property
    def time_to_first_token(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    # -- lifetime ------------------------------------------------------------------
    def close(self) -> None:
        """Release the connection (idempotent). Unread text is abandoned."""
        if self.ended_at is None:
            self.ended_at = time.monotonic()
        if self.status == "streaming":
            self.status = "interrupted"
        iterator = self._iterator
        if iterator is not None and iterator.gi_frame is not None and not iterator.gi_running:
            iterator.close()  # a suspended reader ends quietly instead of reading a closed socket
        self._response.close()

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._iterator is not None and self.status == "streaming":
            self._iterator.close()
        self.close()

    def __del__(self) -> None:
        try:
            self._response.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass

    def __repr__(self) -> str:
        return f"Stream(model={self.model!r}, status={self.status!r}, chars={len(self.text)})"


__all__ = ["Completion", "Stream", "Delta"]
