"""A deterministic OpenAI-compatible HTTP/1.1 server with fault injection, for tests and benchmarks.

In-process::

    with FakeOpenAIServer() as server:          # api_key=TEST_KEY, ephemeral port on 127.0.0.1
        server.add_fault(path="/chat", status=429, retry_after="2")
        ...  # point a client at server.url ("http://127.0.0.1:PORT/v1")
        server.requests[-1].body

Out of process: ``python tests/fakeserver.py --port 0 --api-key KEY`` (or ``--no-auth``) prints
``READY http://127.0.0.1:PORT/v1``; drive it with ``POST /_control/faults`` (a fault dict, or a list),
``POST /_control/reset`` and ``GET /_control/requests``.

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/completions``,
``POST /v1/chat/completions`` (``stream: true`` supported). The answer text is ``"Echo: "`` plus the
prompt's (last user message's) words reversed; see ``fakeserver_payloads``.

Faults: each request (``/_control/*`` excluded) takes the first queued fault whose ``path`` (substring)
matches and uses one of its ``times`` (default 1, ``None`` = forever). Keys are listed in FAULT_KEYS;
stream faults count "events" = SSE data payloads as sent (Azure preamble, role chunk, content chunks,
finish chunk, usage chunk, ``[DONE]``); comments and the BOM are not events.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import sys
import threading
import traceback
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

try:  # imported as part of a package (tests.fakeserver)
    from . import fakeserver_payloads as payloads
except ImportError:  # imported with tests/ on sys.path, or run as a script
    import fakeserver_payloads as payloads  # type: ignore[no-redef]

TEST_KEY = "sk-test-not-a-real-key"
DEFAULT_MODELS = ("fake-chat", "fake-instruct", "davinci-002", "gpt-3.5-turbo-instruct", "gpt-4o-mini")
FAULT_KEYS = frozenset({
    "path", "times",  # matching
    "status", "body_style", "message", "retry_after", "retry_after_ms", "should_retry",  # error answers
    "delay",  # seconds before the status line
    "crlf", "cr", "byte_by_byte", "bom", "no_done", "empty_choices_first", "chunk_delay", "stall_after",
    "stall", "drop_after", "malformed_after", "error_after", "comments",  # stream shape
    "huge", "reject_stream_options", "chunks", "words", "ignore_n",  # content
})
BUFFER = 64 * 1024  # HTTP chunk size when many events are coalesced
_DISCONNECTS = (ConnectionError, TimeoutError)


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


class _ChunkedWriter:
    """Writes a chunked HTTP body; ``flush`` turns what was buffered into one HTTP chunk."""

    def __init__(self, wfile: Any) -> None:
        self.wfile, self.parts, self.size = wfile, [], 0

    def write(self, data: bytes, limit: int = 0) -> None:
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


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    fake: FakeOpenAIServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (*_DISCONNECTS, OSError)):
            super().handle_error(request, client_address)


class FakeOpenAIServer:
    """See the module docstring. Attributes: ``url``, ``port``, ``requests`` (list of RecordedRequest)."""

    def __init__(self, api_key: str | None = TEST_KEY, host: str = "127.0.0.1", port: int = 0,
                 models: tuple[str, ...] | list[str] = DEFAULT_MODELS) -> None:
        self.api_key, self.host, self.models = api_key, host, tuple(models)
        self.requests: list[RecordedRequest] = []
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._stopping.clear()
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"fake-openai-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; wakes sleeping fault handlers and closes open connections."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- faults and records
    def add_fault(self, **fault: Any) -> None:
        """Queue a fault (keys: FAULT_KEYS) for the next matching request(s)."""
        unknown = set(fault) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        if fault.get("body_style", "openai") not in ("openai", "int_code", "flat", "detail", "string",
                                                       "html", "empty"):
            raise ValueError(f"unknown body_style {fault['body_style']!r}")
        fault = {"times": 1, **fault}
        if fault["times"] is not None and not (isinstance(fault["times"], int) and fault["times"] >= 1):
            raise ValueError("times must be a positive integer, or None for forever")
        with self._lock:
            self._faults.append(fault)

    @property
    def faults(self) -> list[dict[str, Any]]:
        """A copy of the queued faults (with their remaining ``times``)."""
        with self._lock:
            return [dict(f) for f in self._faults]

    def reset(self) -> None:
        """Forget queued faults and recorded requests (the list object is kept)."""
        with self._lock:
            self._faults.clear()
            self.requests.clear()

    def _take_fault(self, path: str, body: Any) -> dict[str, Any] | None:
        with self._lock:
            for fault in self._faults:
                if fault.get("path") and fault["path"] not in path:
                    continue
                if fault.get("reject_stream_options") and not (
                        isinstance(body, dict) and body.get("stream_options") is not None):
                    continue
                if fault["times"] is not None:
                    fault["times"] -= 1
                    if fault["times"] <= 0:
                        self._faults.remove(fault)
                return {k: v for k, v in fault.items() if k != "times"}
        return None

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(rec)

    def _sleep(self, seconds: float) -> None:
        self._stopping.wait(seconds)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    request_id = ""
    headers_sent = False

    # ---- plumbing
    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.server.fake._lock:
            self.server.fake._connections.add(self.connection)

    def finish(self) -> None:
        with self.server.fake._lock:
            self.server.fake._connections.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except _DISCONNECTS:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:  # no access log on stderr
        pass

    def _read_body(self) -> bytes:
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
            raise payloads.ApiError(400, f"Invalid Content-Length {length!r}")
        return self.rfile.read(int(length))

    def _start(self, status: int, content_type: str | None, length: int | None,
               extra: dict[str, str] | None = None) -> None:
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

    def _send(self, status: int, body: bytes, content_type: str | None = "application/json",
              extra: dict[str, str] | None = None) -> None:
        self._start(status, content_type, len(body), extra)
        self.wfile.write(body)

    def _send_json(self, status: int, obj: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, payloads.dumps(obj).encode(), extra=extra)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = lambda self: self._dispatch()  # noqa: E731

    def _dispatch(self) -> None:
        fake = self.server.fake
        self.request_id, self.headers_sent = f"req_{next(fake._ids)}", False
        path = urlsplit(self.path).path
        try:
            raw = self._read_body()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = None
            if path.startswith("/_control/"):
                return self._control(path, body)
            fault = fake._take_fault(self.path, body)
            rec = RecordedRequest(self.command, self.path, Headers(self.headers.items()), body, raw, fault,
                                  self.request_id)
            fake._record(rec)
            self._api(path, body, raw, fault or {})
        except _DISCONNECTS:
            raise
        except payloads.ApiError as e:
            self._send_json(e.status, e.body())
        except Exception:  # a bug in the double: say so loudly, answer 500 if still possible
            traceback.print_exc()
            self.close_connection = True
            if not self.headers_sent:
                error = payloads.ApiError(500, "fakeserver internal error", type="server_error")
                self._send_json(500, error.body())

    # ---- /_control
    def _control(self, path: str, body: Any) -> None:
        fake = self.server.fake
        if path == "/_control/faults" and self.command == "POST":
            faults = body if isinstance(body, list) else [body]
            try:
                for fault in faults:
                    fake.add_fault(**fault)
            except (TypeError, ValueError) as e:
                raise payloads.ApiError(400, str(e)) from None
            return self._send_json(200, {"queued": len(faults)})
        if path == "/_control/faults":
            return self._send_json(200, fake.faults)
        if path == "/_control/reset" and self.command == "POST":
            fake.reset()
            return self._send_json(200, {"ok": True})
        if path == "/_control/requests":
            with fake._lock:
                records = [r.to_json() for r in fake.requests]
            return self._send_json(200, records)
        raise payloads.ApiError(404, f"Unknown control endpoint {self.command} {path}")

    # ---- the API
    def _api(self, path: str, body: Any, raw: bytes, fault: dict[str, Any]) -> None:
        fake = self.server.fake
        if fault.get("delay"):
            fake._sleep(float(fault["delay"]))
        extra = {name: str(fault[key]) for key, name in (("retry_after", "Retry-After"),
                 ("retry_after_ms", "retry-after-ms"), ("should_retry", "x-should-retry")) if key in fault}
        if fault.get("reject_stream_options"):
            err = payloads.ApiError(400, "Unrecognized request argument supplied: stream_options",
                                    "stream_options")
            return self._send_json(400, err.body(), extra)
        if fault.get("status"):
            status = int(fault["status"])
            data, ctype = payloads.error_payload(status, self.responses.get(status, ("Error",))[0],
                                                 fault.get("message"), fault.get("body_style", "openai"))
            return self._send(status, data, ctype, extra)
        self._check_auth()
        if path in ("/v1/models", "/v1/models/") and self.command == "GET":
            data = [payloads.model_object(m) for m in fake.models]
            return self._send_json(200, {"object": "list", "data": data}, extra)
        if path.startswith("/v1/models/") and self.command == "GET":
            model = unquote(path[len("/v1/models/"):])
            return self._send_json(200, payloads.model_object(self._known_model(model, None)), extra)
        kind = {"/v1/completions": "completions", "/v1/chat/completions": "chat"}.get(path.rstrip("/"))
        if kind is None or self.command != "POST":
            raise payloads.ApiError(404, f"Invalid URL ({self.command} {path})")
        if body is None and raw:
            raise payloads.ApiError(400, "We could not parse the JSON body of your request. (HINT: This likely "
                                         "means you aren't using your HTTP library correctly. The OpenAI API "
                                         "expects a JSON payload, but what was sent was not valid JSON.)")
        payloads.validate(kind, body)
        self._known_model(body["model"], "model")
        stream = bool(body.get("stream"))
        plan = payloads.plan(kind, body, fault, stream)
        response_id = f"{'cmpl' if kind == 'completions' else 'chatcmpl'}-fake{self.request_id[4:]}"
        if not stream:
            return self._send_json(200, payloads.response_body(plan, response_id), extra)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        events = payloads.stream_events(plan, response_id, include_usage, bool(fault.get("empty_choices_first")),
                                        not fault.get("no_done"))
        self._stream(events, fault, extra)

    def _check_auth(self) -> None:
        key = self.server.fake.api_key
        if key is None:
            return
        auth = self.headers.get("Authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else self.headers.get("api-key", "")
        if given == key:
            return
        message = (f"Incorrect API key provided: {payloads.mask_key(given)}." if given else
                   "You didn't provide an API key. You need to provide your API key in an Authorization header "
                   "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        raise payloads.ApiError(401, message, None, "invalid_api_key")

    def _known_model(self, model: str, param: str | None) -> str:
        if model not in self.server.fake.models:
            raise payloads.ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                                    param, "model_not_found")
        return model

    def _stream(self, events: list[str], fault: dict[str, Any], extra: dict[str, str]) -> None:
        """Send SSE events over a chunked body, shaped and broken as the fault asks."""
        fake = self.server.fake
        eol = b"\r\n" if fault.get("crlf") else b"\r" if fault.get("cr") else b"\n"
        byte_by_byte, delay = bool(fault.get("byte_by_byte")), float(fault.get("chunk_delay") or 0)
        # Coalesce many events into 64 KiB HTTP chunks unless the timing of each event matters.
        limit = BUFFER if len(events) > 64 and not delay and not byte_by_byte else 0
        stall_after, drop_after = fault.get("stall_after"), fault.get("drop_after")
        malformed_after, error_after = fault.get("malformed_after"), fault.get("error_after")
        self._start(200, "text/event-stream", None, extra)
        out = _ChunkedWriter(self.wfile)
        write = (lambda data: [out.write(data[i:i + 1]) for i in range(len(data))]) if byte_by_byte else \
            (lambda data: out.write(data, limit))
        if fault.get("bom"):
            write(b"\xef\xbb\xbf")
        for k, payload in enumerate(events):
            if k == drop_after:
                out.flush()
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)  # no terminating chunk: the body is cut short
                return
            if k == stall_after:
                out.flush()
                fake._sleep(float(fault.get("stall", 1.0)))
            if k == malformed_after:
                write(b"data: {not json" + eol + eol)
            if k == error_after:
                error = {"error": {"message": fault.get("message") or "The server had an error while processing "
                                   "your request.", "type": "server_error", "param": None, "code": None}}
                write(b"data: " + payloads.dumps(error).encode() + eol + eol)
                out.finish()
                return
            if fault.get("comments") and k:
                write(b": keep-alive" + eol + eol)
            write(b"data: " + payload.encode() + eol + eol)
            if delay and k < len(events) - 1:
                out.flush()
                fake._sleep(delay)
        out.finish()


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=TEST_KEY)
    parser.add_argument("--no-auth", action="store_true", help="accept any (or no) key")
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS))
    args = parser.parse_args(argv)
    server = FakeOpenAIServer(None if args.no_auth else args.api_key, args.host, args.port, args.models).start()
    print(f"READY {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
