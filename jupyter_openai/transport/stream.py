"""A streamed answer being read: server-sent events in, :class:`~jupyter_openai.api.completion.Delta` out.

:class:`Stream` reads an answer of any endpoint incrementally and keeps everything received
so far (text and reasoning per choice, refusal, usage, finish reasons, timings), so partial
text survives errors, ``break`` and Ctrl-C. Chat and completions streams are data-only
chunks ended by ``[DONE]``; a Responses stream is typed events (GUIDE 11) that ends at EOF
after ``response.completed``. Reasoning text (``delta.reasoning_content`` / ``delta.reasoning``,
``response.reasoning_*`` events) is kept apart from the answer, never mixed into it.
"""

from __future__ import annotations

import json
import json.scanner
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import requests
import urllib3

from ..api import logprobs, responses
from ..api.completion import CHAT_KIND, REASONING_FIELDS, RESPONSES_KIND, Delta, normal_usage
from ..api.logprobs import TokenProb
from ..errors import APIConnectionError, StreamError, redact
from . import connection
from .chunked import ChunkedReader
from .sse import SSEDecoder

if TYPE_CHECKING:
    from .cancel import CancelToken

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


class _Shape(Exception):
    """A chunk of well-formed JSON in a shape no API sends (becomes a :class:`StreamError`)."""


class Stream:
    """A streamed answer being read. Iterate it for :class:`~jupyter_openai.api.completion.Delta` items.

    ``status`` is ``"streaming"`` while open, then ``"ok"`` (``[DONE]`` seen, or EOF after a
    Responses stream's final event), ``"truncated"`` (the server closed early), ``"error"`` or
    ``"interrupted"`` (closed early, for instance by Ctrl-C). The connection is released
    whatever happens.
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
        chunks: Iterable[bytes] | None = None,
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
        self._reasoning: dict[int, list[str]] = {}
        self._refusal: list[str] = []
        self._logprobs: dict[int, list[TokenProb]] = {}  # per choice, when the request asked for them
        self._completed = False  # a Responses stream saw response.completed / response.incomplete
        self.sent: dict[str, Any] = {}  #: the parameters the request that answered carried
        self.notes: list[str] = []  #: what the client changed to get an answer (one line each)
        self._response = response
        self._secrets = secrets
        self._on_read_error = on_read_error
        self._cancel = cancel
        self._source = chunks  # the body's chunks when the client began reading them (None: read the response)
        self._reader: ChunkedReader | None = None  # reads the body when it can (faster than iter_content)
        self._iterator: Iterator[Delta] | None = None

    # -- reading -------------------------------------------------------------------
    def __iter__(self) -> Iterator[Delta]:
        if self._iterator is None:
            self._iterator = self._deltas()
        return self._iterator

    def _deltas(self) -> Iterator[Delta]:
        loads = _json_loader()
        typed = self.kind == RESPONSES_KIND
        decoder = SSEDecoder()
        if self.status != "streaming":  # closed (or finished) before iteration began: nothing to read
            return
        try:
            for chunk in self._chunks():
                for event in decoder.feed(chunk):
                    data = event.data
                    if data == "[DONE]":
                        self.status = "ok"
                        connection.reuse(self._response, self._reader)
                        return
                    try:
                        obj = loads(data)
                    except ValueError:
                        obj = None
                    if type(obj) is not dict:
                        found: Any = self._malformed("malformed chunk", data)
                    else:
                        try:
                            found = self._typed_event(obj) if typed else self._chunk(obj, event.event)
                        except _Shape:
                            found = self._malformed("a chunk of an unexpected shape", data)
                    if type(found) is StreamError:  # raised on a line of its own: verbose tracebacks show the
                        error = found  # variables of the raising line, and the chunk is raw server data
                        raise self._fail(error)
                    if found:
                        yield from found
            decoder.close()
            if self.status == "streaming":  # EOF: the normal end of a Responses stream, else no [DONE]
                self.status = "ok" if self._completed else "truncated"
            if self.status == "truncated":
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

    def _malformed(self, what: str, data: str) -> StreamError:
        # redacted before it is cut short, so no piece of a key survives the cut
        return StreamError(f"{what}: {redact(data, self._secrets)[:80]!r}", request_id=self.request_id)

    def _chunk(self, obj: dict[str, Any], event: str) -> list[Delta] | StreamError | None:
        """A chat or completions chunk: its deltas (None when it has none), or the error it carries."""
        if event == "error" or obj.get("error") is not None or obj.get("object") == "error":
            return self._stream_error(obj)
        if self.model is None or self.id is None:  # Azure's first chunk has empty id and model
            self._meta(obj)
        usage = obj.get("usage")
        if usage:
            if not isinstance(usage, dict):
                raise _Shape
            self.usage = normal_usage(usage, self.kind)
        choices = obj.get("choices")
        if not choices:
            return None
        if type(choices) is not list:
            raise _Shape
        chat = self.kind == CHAT_KIND
        found: list[Delta] = []
        for choice in choices:
            if type(choice) is not dict:
                raise _Shape
            index = choice.get("index", 0)
            if type(index) is not int or index < 0:
                raise _Shape
            reasoning = ""
            if chat:
                delta = choice.get("delta") or {}
                if type(delta) is not dict:
                    raise _Shape
                text = delta.get("content")
                for name in REASONING_FIELDS:  # the first one set: a server may send both, one null
                    if delta.get(name):
                        reasoning = delta[name]
                        break
                if "refusal" in delta and delta["refusal"]:
                    self._keep_refusal(delta["refusal"])
            else:
                text = choice.get("text")
            reason = choice.get("finish_reason")
            probs = choice.get("logprobs")
            if probs:  # only when asked for: the usual chunk says null
                probs = self._keep_logprobs(index, probs)
            if not text and not reason and not reasoning:
                continue
            found.append(self._keep(index, text or "", reason, reasoning, probs or None))
        return found

    def _keep_logprobs(self, index: int, raw: Any) -> tuple[TokenProb, ...]:
        """Record the tokens of one chunk's ``logprobs`` (either shape); return them."""
        tokens = logprobs.read(raw)
        if tokens:
            self._logprobs.setdefault(index, []).extend(tokens)
        return tuple(tokens)

    def _keep(self, index: int, text: Any, reason: Any, reasoning: Any,
              probs: tuple[TokenProb, ...] | None = None) -> Delta:
        """Record one delta's text, reasoning and finish reason; return it."""
        if type(text) is not str or type(reasoning) is not str or reason is not None and type(reason) is not str:
            raise _Shape
        if text or reasoning:
            if self.first_token_at is None:
                self.first_token_at = time.monotonic()
            if reasoning:  # before the text: a chunk may carry the end of one and the start of the other
                self._reasoning.setdefault(index, []).append(reasoning)
            if text:
                bucket = self._parts.get(index)
                if bucket is None:
                    bucket = self._parts[index] = []
                bucket.append(text)
        if reason:
            self.finish_reasons[index] = reason
        return _new_tuple(Delta, (index, text, reason, reasoning, probs))  # Delta(...) minus its Python __new__

    def _keep_refusal(self, text: Any) -> None:
        if type(text) is not str:
            raise _Shape
        self._refusal.append(text)

    def _meta(self, obj: dict[str, Any]) -> None:
        for name in ("id", "model", "created"):
            value = obj.get(name)
            if value and getattr(self, name) is None:
                wrong = not isinstance(value, (int, float)) if name == "created" else type(value) is not str
                if wrong:
                    raise _Shape
                setattr(self, name, value)

    def _typed_event(self, obj: dict[str, Any]) -> list[Delta] | StreamError | None:
        """One Responses stream event (GUIDE 11): deltas, the final usage, or an error."""
        kind = obj.get("type")
        if kind is not None and type(kind) is not str:  # a list would not even be looked up in a set
            raise _Shape
        if kind == responses.TEXT_DELTA:
            return [self._keep(0, obj.get("delta") or "", None, "")]
        if kind in responses.REASONING_DELTAS:
            return [self._keep(0, "", None, obj.get("delta") or "")]
        if kind == responses.REFUSAL_DELTA:
            self._keep_refusal(obj.get("delta") or "")
            return None
        if kind in (responses.FAILED, responses.ERROR):
            return StreamError(f"the server sent an error mid-stream: "
                               f"{redact(responses.error_message(obj)[:300], self._secrets)}",
                               request_id=self.request_id)
        response = obj.get("response")
        if response is not None and type(response) is not dict:
            raise _Shape
        if response:
            self._meta(response)
        if kind in responses.FINAL and response:
            self._completed = True
            self.usage = normal_usage(response.get("usage"), RESPONSES_KIND)
            reason = responses.finish_reason(response)
            return [self._keep(0, "", reason, "")] if reason else None
        return None

    def _chunks(self) -> Iterator[bytes]:
        """The body's bytes as they arrive; ends quietly (status ``interrupted``) when cancelled."""
        cancel = self._cancel
        try:
            if self._source is not None:  # the client has begun reading the body: go on from there
                chunks: Any = self._source
            else:
                self._reader = ChunkedReader.open(self._response)
                chunks = self._reader if self._reader is not None else self._response.iter_content(chunk_size=None)
            for chunk in chunks:
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
    def reasoning(self) -> str:
        """Reasoning text of choice 0 received so far, apart from the answer ("" when none)."""
        return "".join(self._reasoning.get(0, ()))

    @property
    def refusal(self) -> str:
        """The refusal received so far, when the model refused instead of answering."""
        return "".join(self._refusal)

    @property
    def logprobs(self) -> list[TokenProb]:
        """Choice 0's tokens with their probabilities received so far ([] when not asked for)."""
        return self._logprobs.get(0, [])

    @property
    def all_logprobs(self) -> list[list[TokenProb]]:
        """Every choice's tokens with their probabilities, in index order."""
        return [self._logprobs.get(i, []) for i in sorted(self._parts)]

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


__all__ = ["Stream"]
