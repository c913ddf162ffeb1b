"""A chunked HTTP body read straight from the connection's buffered socket file.

Servers flush every SSE event as its own HTTP chunk (GUIDE 14). Read through ``requests`` (its
``iter_content`` generator, urllib3's ``stream``/``read_chunked``, a ``readline`` for each size line
and two ``_safe_read`` calls for each chunk), every event pays those layers. :class:`ChunkedReader`
takes what the socket has (``read1``: one ``recv`` at most, never waiting for more) and cuts all the
chunks in it at once, so it yields the body bytes of every chunk that has arrived in one piece.

It is used only where it reads exactly what urllib3 would: a ``Transfer-Encoding: chunked`` body
of an ``http.client`` response not read from yet, with no ``Content-Encoding`` (a gzip body goes
through urllib3's decoder). Everything else falls back to ``iter_content``. Errors are urllib3's
own (``ReadTimeoutError``, ``ProtocolError``, ``InvalidChunkLength``, ``SSLError``), raised where
urllib3 raises them, and after any error the connection is closed, never pooled. At the end of the
body (the last chunk and its trailers) the connection goes back to the pool, as urllib3 does.
"""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from typing import Any

from urllib3.exceptions import InvalidChunkLength, ProtocolError, ReadTimeoutError, SSLError

__all__ = ["ChunkedReader"]

READ_SIZE = 64 * 1024
MAX_LINE = 2**16  # urllib3's limit for a chunk size line or a trailer line


class ChunkedReader:
    """Iterate for the body's bytes as they arrive (never empty pieces); :meth:`drain` reads the rest."""

    def __init__(self, raw: Any, original: Any, fp: Any) -> None:
        self._raw, self._original, self._read1 = raw, original, fp.read1
        self._buf = b""  # bytes read but not parsed yet: the start of a size or trailer line
        self._left = 0  # data bytes of the current chunk still to come
        self._skip = 0  # bytes of the CRLF after the current chunk's data still to come
        self._trailers = False  # the last chunk was seen: reading trailer lines up to a blank one
        self._end = False  # the blank line after the trailers was seen: the body is complete
        self.done = False  # finished with: the connection was pooled (``pooled``) or closed
        self.pooled = False
        self._error: Exception | None = None  # found after body bytes that were handed over first

    @classmethod
    def open(cls, response: Any) -> ChunkedReader | None:
        """A reader for ``response`` (a ``requests.Response`` opened with ``stream=True``), or None
        when it must be read the ordinary way."""
        raw = getattr(response, "raw", None)
        original = getattr(raw, "_original_response", None)
        fp = getattr(original, "fp", None)
        if (fp is None or not getattr(raw, "chunked", False) or not isinstance(original, http.client.HTTPResponse)
                or getattr(raw, "_fp", None) is not original or not hasattr(fp, "read1")):
            return None
        if raw.chunk_left is not None or original.chunk_left is not None or raw.tell():  # already reading
            return None
        if response.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
            return None
        return cls(raw, original, fp)

    def __iter__(self) -> Iterator[bytes]:
        read1, parse = self._read1, self._parse
        try:
            while not self.done:
                try:
                    data = read1(READ_SIZE)
                except TimeoutError as exc:
                    raise ReadTimeoutError(self._raw._pool, None, "Read timed out.") from exc
                except ssl.SSLError as exc:
                    raise SSLError(exc) from exc
                except (http.client.HTTPException, OSError) as exc:
                    raise ProtocolError(f"Connection broken: {exc!r}", exc) from exc
                if not data:
                    self._eof()
                    return
                pieces = parse(data)
                if pieces:
                    yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                if self._error is not None:
                    raise self._error
                if self._end and not self.done:
                    self._finish()
        except BaseException:  # an error, Ctrl-C, or the reader abandoned mid-body (GeneratorExit)
            if not self.done:
                self._abandon()
            raise

    def drain(self, limit: int) -> bool:
        """Read the rest of the body, at most ``limit`` bytes; True when it held no more data and ended
        cleanly: the connection is then back in the pool. Otherwise (more data, too much, EOF, an
        error) the connection is closed."""
        if self.done:
            return self.pooled
        total = 0
        try:
            while not self._end:
                data = self._read1(min(READ_SIZE, limit - total + 1))
                total += len(data)
                if not data or total > limit or self._parse(data):
                    self._abandon()
                    return False
        except BaseException:
            if not self.done:
                self._abandon()
            raise
        self._finish()
        return True

    # -- internals -------------------------------------------------------
    def _parse(self, data: bytes) -> list[bytes]:
        """Cut ``data`` (after what was left over) into chunk bodies; return the body bytes."""
        buf = self._buf + data if self._buf else data
        pos, end, out = 0, len(buf), []
        left, skip = self._left, self._skip
        error: Exception | None = None
        while pos < end:
            if left:
                stop = pos + left
                if stop >= end:  # the data goes on in the next read (or its CRLF does)
                    out.append(buf[pos:] if pos else buf)
                    left, skip = stop - end, 0 if stop > end else 2
                    pos = end
                    break
                out.append(buf[pos:stop])
                pos, left, skip = stop, 0, 2
            if skip:  # the CRLF ending a chunk: skipped unread, as urllib3 does
                if end - pos < skip:
                    skip -= end - pos
                    pos = end
                    break
                pos += skip
                skip = 0
            eol = buf.find(b"\r\n", pos)
            if (end if eol < 0 else eol + 2) - pos > MAX_LINE:
                error = ProtocolError(f"Response chunk {'trailer' if self._trailers else 'size'} line exceeded "
                                      "maximum allowed length")
                break
            if eol < 0:
                break
            line = buf[pos:eol]
            pos = eol + 2
            if self._trailers:
                if not line:
                    self._end = True
                    pos = end  # anything after the body is not ours (urllib3 discards it with the file too)
                    break
                continue
            size_text = line.split(b";", 1)[0] if b";" in line else line
            try:
                size = int(size_text, 16)
            except ValueError:
                size = -1
            if size < 0:
                error = InvalidChunkLength(self._raw, size_text + b"\r\n")
                break
            if size == 0:
                self._trailers = True
                continue
            stop = pos + size
            if stop + 2 <= end:  # the whole chunk and its CRLF are here (the common case)
                out.append(buf[pos:stop])
                pos = stop + 2
                continue
            left = size
        self._buf = buf[pos:] if pos < end else b""
        self._left, self._skip = left, skip
        if error is not None:  # raised after the body bytes before it are handed over (partial text is kept)
            self._abandon()
            if not out:
                raise error
            self._error = error
        return out

    def _eof(self) -> None:
        """The connection closed: the normal end only after the last chunk (trailers may be cut short,
        as urllib3 allows); anything else is a body cut short."""
        if self._trailers:
            self._end = True
            self._finish()
            return
        self._abandon()
        if self._left:
            raise ProtocolError(f"Connection broken: IncompleteRead({self._left} bytes left in the chunk)")
        raise ProtocolError("Response ended prematurely")

    def _finish(self) -> None:
        """The body was read whole: close the ``http.client`` response and pool the connection."""
        self.done = self.pooled = True
        self._buf = b""
        self._original.close()
        self._raw.release_conn()

    def _abandon(self) -> None:
        """A broken body: close the response and its connection so the socket is never reused."""
        self.done = True
        self._buf = b""
        self._raw.close()
