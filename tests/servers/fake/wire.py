"""Wire-level pieces of ``fakeserver``: the threading HTTP/1.1 server and handler plumbing (connection
tracking, request bodies, status lines), request records, the chunked body writer, SSE framing, and
connection-level helpers (an address whose connects hang, a port that refuses).

Nothing here knows the OpenAI API's routes or bodies.
"""

from __future__ import annotations

import socket
import sys
import threading
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .errors import ApiError, dumps

#: HTTP chunk size when many events are coalesced (only with ``coalesce``; see fakeserver).
BUFFER = 64 * 1024
#: One SSE event as the payload builders hand it over: the ``data`` text alone, or
#: ``(event name, data)`` for typed streams (the Responses API sends ``event: NAME`` lines).
Event = str | tuple[str, str]
DISCONNECTS = (ConnectionError, TimeoutError)


class Headers(dict):
    """A plain dict with lower-cased keys whose lookups ignore case (JSON-serializable)."""

    def __init__(self, items: Any = ()) -> None:
        super().__init__((k.lower(), v) for k, v in (items.items() if hasattr(items, "items") else items))

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)


@dataclass
class RecordedRequest:
    method: str
    path: str  # with the query string
    headers: Headers
    body: Any  # parsed JSON (dict for the API), None when empty or not JSON
    raw_body: bytes
    fault: dict | None = None  # the fault this request consumed
    request_id: str = ""

    def to_json(self) -> dict[str, Any]:
        headers = dict(self.headers)
        for name in ("authorization", "api-key"):
            if name in headers:
                headers[name] = "Bearer ***" if name == "authorization" else "***"
        return {**asdict(self), "headers": headers, "raw_body": self.raw_body.decode("utf-8", "replace")}


class Server(ThreadingHTTPServer):
    """A threading server that tracks its open connections in ``connections`` (guarded by ``lock``; both
    may be shared with the owner, so tests can watch sockets come and go), and can end them all."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    fake: Any  # the FakeOpenAIServer this serves

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 lock: threading.Lock | None = None, connections: set[socket.socket] | None = None) -> None:
        super().__init__(address, handler)
        self.lock = lock or threading.Lock()
        self.connections: set[socket.socket] = set() if connections is None else connections

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (*DISCONNECTS, OSError)):
            super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self.lock:
            conns = list(self.connections)
            self.connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class BaseHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive plumbing: TCP_NODELAY, quiet disconnects, body reading, responses."""

    protocol_version = "HTTP/1.1"
    server: Server
    request_id = ""
    headers_sent = False

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.lock:
            self.server.connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except DISCONNECTS:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass

    def read_body(self) -> bytes:
        # Acknowledge the headers at once: a client that writes headers and body in two pieces without
        # TCP_NODELAY (http.client does) holds the body back until this ACK (Nagle's algorithm), and
        # Linux would delay it up to 40 ms (tcp(7), TCP_QUICKACK).
        if hasattr(socket, "TCP_QUICKACK"):
            try:
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
            except OSError:
                pass
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):  # trailers
                pass
            return b"".join(parts)
        length = self.headers.get("Content-Length") or "0"
        if not length.isdigit():
            self.close_connection = True
            raise ApiError(400, f"Invalid Content-Length {length!r}")
        return self.rfile.read(int(length))

    def start(self, status: int, content_type: str | None, length: int | None,
              extra: dict[str, str] | None = None) -> None:
        """Send the status line and headers (a chunked body when ``length`` is None)."""
        self.headers_sent = True
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        if length is None:
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
        else:
            self.send_header("Content-Length", str(length))
        self.send_header("x-request-id", self.request_id)
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def send(self, status: int, body: bytes, content_type: str | None = "application/json",
             extra: dict[str, str] | None = None) -> None:
        self.start(status, content_type, len(body), extra)
        self.wfile.write(body)

    def send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self.send(status, dumps(obj).encode(), extra=extra)


class ChunkedWriter:
    """Writes a chunked HTTP body; ``flush`` turns what was buffered into one HTTP chunk."""

    def __init__(self, wfile: Any) -> None:
        self.wfile, self.parts, self.size = wfile, [], 0

    def write(self, data: bytes, limit: int = 0) -> None:
        """Buffer ``data``; send the buffer as one HTTP chunk once it holds ``limit`` bytes (0: at once)."""
        self.parts.append(data)
        self.size += len(data)
        if self.size >= limit:
            self.flush()

    def flush(self) -> None:
        if self.size:
            data = b"".join(self.parts)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.parts, self.size = [], 0

    def finish(self) -> None:
        self.flush()
        self.wfile.write(b"0\r\n\r\n")


def sse_bytes(event: Event, eol: bytes) -> bytes:
    """One whole SSE event (``event:`` line if named, ``data:`` line, blank line) with line ends ``eol``."""
    if isinstance(event, tuple):
        name, data = event
        return b"event: " + name.encode() + eol + b"data: " + data.encode() + eol + eol
    return b"data: " + event.encode() + eol + eol


# ---------------------------------------------------------------- connection-level helpers
_HELD: list[socket.socket] = []  # sockets kept open for the life of the process


def unaccepting_address() -> tuple[str, int]:
    """A 127.0.0.1 address whose listen backlog is full: connects hang (SYNs are dropped) until timeout."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    _HELD.append(listener)
    for _ in range(3):  # one fills the accept queue, the rest sit in SYN_SENT
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        _HELD.append(filler)
    return "127.0.0.1", port


def closed_port() -> int:
    """A 127.0.0.1 port with nothing listening (bound, so no one else takes it): connection refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    _HELD.append(sock)
    return sock.getsockname()[1]
