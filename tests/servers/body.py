"""A tiny HTTP server that answers every request with the status, content type and body a test sets.

For answers no fault of the test server produces: well-formed JSON of odd shapes, a 200 that is not
an event stream, a body with no content type. ``conftest.body_server`` gives one per session.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class BodyServer:
    """Answers every request with ``status`` and ``body`` (``content_type`` None: no such header)."""

    def __init__(self) -> None:
        self.body, self.content_type, self.status, self.hits = b"", "application/json", 200, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK wait

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._answer()

            def do_POST(self) -> None:  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self._answer()

            def _answer(self) -> None:
                owner.hits += 1
                body = owner.body
                self.send_response(owner.status)
                if owner.content_type is not None:
                    self.send_header("Content-Type", owner.content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def answer(self, body: bytes | Any, content_type: str | None = "application/json", status: int = 200) -> None:
        """Set the next answers: bytes as they are, anything else as JSON."""
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.content_type, self.status = content_type, status

    def events(self, *chunks: Any, done: bool = True) -> None:
        """Answer with an event stream of these chunks (JSON), then ``[DONE]``."""
        data = [json.dumps(chunk) for chunk in chunks] + (["[DONE]"] if done else [])
        self.answer("".join(f"data: {d}\n\n" for d in data).encode(), "text/event-stream")

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
