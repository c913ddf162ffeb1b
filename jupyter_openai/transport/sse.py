"""Incremental decoder for server-sent events (``text/event-stream``).

Bytes go in, :class:`ServerSentEvent` objects come out. The decoder follows the
WHATWG "event stream interpretation" rules:

* lines end in LF, CRLF or a lone CR, also when a CRLF is split over two chunks;
* UTF-8 is decoded per complete line (never per chunk), with ``errors="replace"``,
  so a character split over chunks decodes whole; one leading BOM is dropped;
* ``:comment`` lines are ignored, ``field: value`` loses one leading space,
  a line without a colon is a field with an empty value, unknown fields are ignored;
* ``data`` lines are joined with ``"\\n"``; a blank line dispatches the event if
  any ``data`` line was seen, then resets the event type to ``"message"``;
* ``id`` persists across events (ids containing NUL are ignored); ``retry``
  is only accepted when it is all ASCII digits;
* an event not ended by a blank line at EOF is dropped.

The payload is not interpreted: ``data: [DONE]`` is just an event whose data is
``"[DONE]"``; JSON decoding is the client's job. Stdlib only.

Speed: the common shapes have fast paths. A chunk that is one whole event
(``data: ...\\n\\n``, or ``event: NAME\\ndata: ...\\n\\n``: servers flush every event
as its own chunk) becomes its event directly; big chunks holding many such blocks
are decoded once, split on ``"\\n\\n"`` and turned into events in bulk; anything
else goes through a small per-line parser.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import repeat

__all__ = ["ServerSentEvent", "SSEDecoder", "iter_events"]

_BOM = b"\xef\xbb\xbf"


class ServerSentEvent:
    """One dispatched event: ``event`` type, ``data``, ``id`` and ``retry``."""

    __slots__ = ("event", "data", "id", "retry")

    def __init__(
        self, event: str = "message", data: str = "", id: str = "", retry: int | None = None
    ) -> None:
        self.event = event
        self.data = data
        self.id = id
        self.retry = retry

    def __repr__(self) -> str:
        return (
            f"ServerSentEvent(event={self.event!r}, data={self.data!r}, "
            f"id={self.id!r}, retry={self.retry!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerSentEvent):
            return NotImplemented
        return (self.event, self.data, self.id, self.retry) == (
            other.event, other.data, other.id, other.retry,
        )

    __hash__ = None  # type: ignore[assignment]  # mutable


class SSEDecoder:
    """Incremental event-stream decoder: :meth:`feed` bytes, get events back.

    ``last_event_id`` is the id to send as ``Last-Event-ID`` when reconnecting:
    the id buffer as of the last blank line, so the id of an event cut off by a
    dropped connection does not count. ``retry`` is the last valid retry value.
    """

    def __init__(self) -> None:
        self.last_event_id: str = ""
        self.retry: int | None = None
        self._id = ""  # last event ID buffer (set by ``id:`` lines immediately)
        self._data: list[str] = []  # data lines of the current event
        self._event = ""  # event type buffer
        self._ev_retry: int | None = None  # retry given inside the current event
        self._parts: list[bytes] = []  # carry-over: start of an incomplete line
        self._head: bytes | None = b""  # bytes seen before the BOM check; None once done
        self._cr = False  # previous chunk ended in CR: skip one leading LF

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Consume ``chunk``; return the events it completes."""
        if (chunk[-2:] == b"\n\n" and self._head is None and not self._parts and not self._cr and not self._data
                and not self._event and self._ev_retry is None and b"\r" not in chunk):
            # Fast path: the chunk is one whole event and the decoder sits between events, the shape
            # servers flush (GUIDE 14): "data: X\n\n", or "event: NAME\ndata: X\n\n" (the Responses API).
            lines = chunk.count(b"\n")
            if lines == 2 and chunk[:6] == b"data: ":
                self.last_event_id = self._id
                return [ServerSentEvent("message", chunk[6:-2].decode("utf-8", "replace"), self._id)]
            if lines == 3 and chunk[:7] == b"event: ":
                eol = chunk.find(b"\n")
                if chunk[eol + 1:eol + 7] == b"data: ":
                    self.last_event_id = self._id
                    return [ServerSentEvent(chunk[7:eol].decode("utf-8", "replace") or "message",
                                            chunk[eol + 7:-2].decode("utf-8", "replace"), self._id)]
        if self._head is not None:  # stream start: drop one BOM, even a split one
            chunk = self._head + bytes(chunk)
            if len(chunk) < 3 and _BOM.startswith(chunk):
                self._head = chunk
                return []
            self._head = None
            if chunk.startswith(_BOM):
                chunk = chunk[3:]
        if not chunk:
            return []
        if self._cr:
            self._cr = False
            if chunk[0] == 10:
                chunk = chunk[1:]
                if not chunk:
                    return []
        has_cr = b"\r" in chunk
        if not has_cr and b"\n" not in chunk:  # no line ends: just carry it
            self._parts.append(bytes(chunk))
            return []
        if self._parts:
            self._parts.append(chunk)
            buf = b"".join(self._parts)
            self._parts = []
        else:
            buf = chunk
        if has_cr:
            cut = max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
            text = buf[:cut].decode("utf-8", "replace")
            self._cr = cut == len(buf) and text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        else:
            cut = buf.rfind(b"\n") + 1
            text = buf[:cut].decode("utf-8", "replace")
        if cut < len(buf):
            self._parts.append(buf[cut:])
        return self._feed_text(text)

    def close(self) -> list[ServerSentEvent]:
        """Signal EOF: a final unterminated line still counts as a line, but an
        event not ended by a blank line is dropped. Always returns ``[]``."""
        rest = b"".join(self._parts) if self._head is None else self._head
        if rest:  # holds no line terminator: it is one unterminated line
            self._lines([rest.decode("utf-8", "replace")], [])
        self._parts = []
        self._head = None
        self._cr = False
        self._data = []
        self._event = ""
        self._ev_retry = None
        return []

    # -- internals -------------------------------------------------------

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        """Parse ``text``: whole lines, each ended by exactly one ``"\\n"``."""
        events: list[ServerSentEvent] = []
        pos = 0
        if self._data or self._event or self._ev_retry is not None:
            # Mid-event: run the line parser up to and including the next blank line.
            if text[0] == "\n":
                pos = 1
            else:
                end = text.find("\n\n")
                if end < 0:
                    self._lines(text[:-1].split("\n"), events)
                    return events
                self._lines(text[:end].split("\n"), events)
                pos = end + 2
            self._dispatch(events)
        # Clean state at a line start: every "\n\n" now ends an event.
        end = text.rfind("\n\n", pos)
        if end >= 0:
            region = text[pos:end]
            self.last_event_id = self._id
            n = region.count("\n\ndata: ")
            if region.startswith("data: ") and region.count("\n") == 2 * n:
                # Every block is exactly one "data: ..." line: build them in bulk.
                datas = region[6:].split("\n\ndata: ")
                events.extend(map(ServerSentEvent, repeat("message"), datas, repeat(self._id)))
            else:
                for block in region.split("\n\n"):
                    if block.startswith("data: ") and "\n" not in block:
                        events.append(ServerSentEvent("message", block[6:], self._id))
                    elif (block.startswith("event: ") and (eol := block.find("\n")) == block.rfind("\n")
                          and block.startswith("data: ", eol + 1)):  # "event: NAME" + one data line
                        events.append(ServerSentEvent(block[7:eol] or "message", block[eol + 7:], self._id))
                    else:
                        self._lines(block.split("\n"), events)
                        self._dispatch(events)
            pos = end + 2
        if pos < len(text):  # complete lines of a not yet complete event
            self._lines(text[pos:-1].split("\n"), events)
        return events

    def _lines(self, lines: list[str], events: list[ServerSentEvent]) -> None:
        """Apply field lines; a blank line dispatches into ``events``."""
        for line in lines:
            if not line:
                self._dispatch(events)
                continue
            if line[0] == ":":
                continue
            name, colon, value = line.partition(":")
            if colon and value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._id = value
            elif name == "retry":
                if value.isascii() and value.isdigit():
                    self.retry = self._ev_retry = int(value)

    def _dispatch(self, events: list[ServerSentEvent]) -> None:
        """Blank line: emit the pending event if it has data, then reset."""
        self.last_event_id = self._id
        if self._data:
            events.append(
                ServerSentEvent(
                    self._event or "message", "\n".join(self._data), self._id, self._ev_retry
                )
            )
            self._data = []
        self._event = ""
        self._ev_retry = None


def iter_events(chunks: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of byte chunks (e.g. ``response.iter_content(None)``)."""
    decoder = SSEDecoder()
    for chunk in chunks:
        yield from decoder.feed(chunk)
    yield from decoder.close()
