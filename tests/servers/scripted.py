"""A tiny HTTP server whose answers a test writes as a function, for shapes the fake server never sends.

``FakeOpenAIServer`` answers as the real APIs do; some tests need a server that does not (a 400 whose
``param`` is a list, a chat answer naming another model than the one asked for, a server that refuses
every name of a field). :class:`ScriptedServer` runs ``answer(method, path, body)`` for each request
and sends back the ``(status, JSON value)`` it returns (``bytes``: sent as they are, as an event
stream, see :func:`sse`), over a real socket::

    with ScriptedServer(lambda method, path, body: (200, {"ok": True})) as server:
        ...  # point a client at server.url; server.bodies holds the JSON bodies received
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Answer = Callable[[str, str, Any], tuple[int, Any]]


class ScriptedServer:
    """Serves ``answer``'s replies on 127.0.0.1; ``requests`` lists ``(method, path, body)`` received."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None, "not started"
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def bodies(self) -> list[Any]:
        """The JSON bodies of the POST requests, in order."""
        return [body for method, _, body in self.requests if method == "POST"]

    def __enter__(self) -> ScriptedServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _reply(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                owner.requests.append((self.command, self.path, body))
                status, value = owner.answer(self.command, self.path, body)
                raw_bytes = isinstance(value, bytes)
                data = value if raw_bytes else json.dumps(value).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/event-stream" if raw_bytes else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _reply

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None


def chat_answer(model: str, text: str) -> dict[str, Any]:
    """A minimal non-streamed chat completion from ``model``."""
    return {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}


def sse(*events: Any, done: bool = True) -> bytes:
    """An event stream of ``events`` (JSON values; a ``(name, value)`` pair gets an ``event:`` line),
    ended by ``[DONE]`` when ``done``."""
    out = []
    for event in events:
        name, value = event if isinstance(event, tuple) else (None, event)
        out.append((f"event: {name}\n" if name else "") + f"data: {json.dumps(value)}\n\n")
    return ("".join(out) + ("data: [DONE]\n\n" if done else "")).encode()
