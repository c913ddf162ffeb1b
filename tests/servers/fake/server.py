"""A deterministic OpenAI-compatible HTTP/1.1 server with fault injection, for tests and benchmarks.

In-process::

    with FakeOpenAIServer() as server:          # api_key=TEST_KEY, ephemeral port on 127.0.0.1
        server.add_fault(path="/chat", status=429, retry_after="2")
        ...  # point a client at server.url ("http://127.0.0.1:PORT/v1")
        server.requests[-1].body

Out of process: ``python tests/servers/fake/server.py --port 0 --api-key KEY`` (or ``--no-auth``; also
``--profile``, ``--coalesce``, ``--lenient-models``, ``--models``, ``--latency``, ``--rate-limit N/SECONDS``)
prints ``READY http://127.0.0.1:PORT/v1``; drive it with ``POST /_control/faults`` (a fault dict, or a
list), ``POST /_control/reset`` and ``GET /_control/requests`` (``GET /_control/limits``: the rate limit's counts).

Endpoints: ``GET /v1/models``, ``GET /v1/models/{id}``, ``POST /v1/completions``,
``POST /v1/chat/completions``, ``POST /v1/responses`` (all three with ``stream: true``), and the Batch API
(``/v1/files``, ``/v1/batches``: ``fakeserver_batches``, whose ``BatchStore`` is ``server.batches``).
The answer text is ``"Echo: "`` plus the prompt's (last user message's) words reversed (with a
``json_schema`` response format, a prompt that is JSON is answered as it is: a test writes the JSON the
"model" answers); see ``fakeserver_payloads`` (chat/completions bodies), ``fakeserver_responses`` (the
Responses API) and ``fakeserver_models`` (DEFAULT_MODELS; the ``gpt-5*``, ``fake-reasoner*`` and
``fake-refuser*`` families; profiles).

Constructor flags: ``profile`` ("openai" | "llama.cpp" | "llama-cpp-python", GUIDE §4/§12: the latter two
have no ``/v1/models/{id}`` and list models their way); ``strict_models`` (a model not in ``models`` gets
404 ``model_not_found``; default True for "openai", False for the local-server profiles, which accept
any name); ``coalesce`` (False: every SSE event is its own HTTP chunk, as real servers flush, GUIDE §14;
True: streams of more than 64 events go out in 64 KiB HTTP chunks, the best case for a reader);
``latency`` (seconds every API request waits before its answer); ``rate_limit`` (a
``fakeserver_batches.RateLimit``: requests over it get 429s; every answer carries ``x-ratelimit-*``).

Faults: each request (``/_control/*`` excluded) takes the first queued fault whose ``path`` (substring)
matches and uses one of its ``times`` (default 1, ``None`` = forever). Keys are listed in FAULT_KEYS;
stream faults count "events" = SSE events as sent (Azure preamble, role chunk, content chunks, finish
chunk, usage chunk, ``[DONE]``; on ``/responses`` every typed event); comments and the BOM are not
events. ``coalesce`` in a fault overrides the server's setting for that request. ``error_after`` ends a
stream with an error: ``data: {"error": …}`` on chat/completions, an ``error`` event on ``/responses``.
``failed_after``, ``error_event_after`` and ``error_code``: see ``fakeserver_responses``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import socket
import threading
import traceback
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

from . import batches, errors, models, payloads, responses, wire

__all__ = ["BUFFER", "DEFAULT_MODELS", "FAULT_KEYS", "LOCAL_MODELS", "TEST_KEY", "FakeOpenAIServer", "Headers",
           "RecordedRequest", "closed_port", "unaccepting_address"]

BUFFER, Event, Headers, RecordedRequest = wire.BUFFER, wire.Event, wire.Headers, wire.RecordedRequest
closed_port, unaccepting_address = wire.closed_port, wire.unaccepting_address
TEST_KEY = "sk-test-not-a-real-key"
DEFAULT_MODELS = models.DEFAULT_MODELS
PROFILES = models.PROFILES
LOCAL_MODELS = models.LOCAL_MODELS
FAULT_KEYS = frozenset({
    "path", "times",  # matching
    "status", "body_style", "message", "retry_after", "retry_after_ms", "should_retry",  # error answers
    "delay",  # seconds before the status line
    "crlf", "cr", "byte_by_byte", "bom", "no_done", "empty_choices_first", "chunk_delay", "stall_after",
    "stall", "drop_after", "malformed_after", "error_after", "comments", "coalesce",  # stream shape
    "failed_after", "error_event_after", "error_code",  # Responses stream endings (fakeserver_responses)
    "huge", "reject_stream_options", "chunks", "words", "ignore_n",  # content
})
#: A gateway that routes by path puts its route before the API's own path; the test server serves any
#: ``/p/<route>/v1/…`` as ``/v1/…`` (Cloudflare AI Gateway's base URL is ``…/v1/{account_id}/{gateway_id}/openai``,
#: developers.cloudflare.com/ai-gateway/providers/openai/; LiteLLM proxies mount routes the same way).
_GATEWAY_ROUTE = re.compile(r"^/p/[^/]+(?=/v1/)")
_KINDS = {"/v1/completions": "completions", "/v1/chat/completions": "chat", "/v1/responses": "responses"}


class FakeOpenAIServer:
    """See the module docstring. Attributes: ``url``, ``port``, ``requests`` (list of RecordedRequest), ``stored``
    (the ids of the responses created without ``store: false``, which OpenAI would keep)."""

    def __init__(self, api_key: str | None = TEST_KEY, host: str = "127.0.0.1", port: int = 0,
                 models: tuple[str, ...] | list[str] | None = None, profile: str = "openai",
                 strict_models: bool | None = None, coalesce: bool = False, latency: float = 0.0,
                 rate_limit: batches.RateLimit | None = None) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; one of {PROFILES}")
        local = profile != "openai"
        self.api_key, self.host, self.profile, self.coalesce = api_key, host, profile, coalesce
        self.models = tuple(models if models is not None else LOCAL_MODELS if local else DEFAULT_MODELS)
        self.strict_models = (not local) if strict_models is None else strict_models
        self.requests: list[RecordedRequest] = []
        self.stored: list[str] = []  # the ids of the responses OpenAI would keep (store true or absent)
        self.latency, self.rate_limit, self.batches = latency, rate_limit, batches.BatchStore()
        self._faults: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()  # open client connections (tests watch them)
        self._httpd: wire.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._stopping.clear()
        self._httpd = wire.Server((self.host, self.port), _Handler, self._lock, self._connections)
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
        self._httpd.close_connections()
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
        if fault.get("body_style", "openai") not in errors.BODY_STYLES:
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
            self.stored.clear()
        self.batches.reset()

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


class _Handler(wire.BaseHandler):
    """The API routes, the control endpoints and the stream shaping."""

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = lambda self: self._dispatch()  # noqa: E731

    def _dispatch(self) -> None:
        fake = self.server.fake
        self.request_id, self.headers_sent = f"req_{next(fake._ids)}", False
        path = _GATEWAY_ROUTE.sub("", urlsplit(self.path).path)
        try:
            raw = self.read_body()
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
        except wire.DISCONNECTS:
            raise
        except errors.ApiError as e:
            self.send_json(e.status, e.body())
        except Exception:  # a bug in the double: say so loudly, answer 500 if still possible
            traceback.print_exc()
            self.close_connection = True
            if not self.headers_sent:
                error = errors.ApiError(500, "fakeserver internal error", type="server_error")
                self.send_json(500, error.body())

    # ---- /_control
    def _control(self, path: str, body: Any) -> None:
        fake = self.server.fake
        if path == "/_control/faults" and self.command == "POST":
            faults = body if isinstance(body, list) else [body]
            try:
                for fault in faults:
                    fake.add_fault(**fault)
            except (TypeError, ValueError) as e:
                raise errors.ApiError(400, str(e)) from None
            return self.send_json(200, {"queued": len(faults)})
        if path == "/_control/faults":
            return self.send_json(200, fake.faults)
        if path == "/_control/reset" and self.command == "POST":
            fake.reset()
            return self.send_json(200, {"ok": True})
        if path == "/_control/limits":
            limit = fake.rate_limit
            return self.send_json(200, {"admitted": limit.admitted, "rejected": limit.rejected, "peak": limit.peak,
                                        "requests": limit.requests, "window": limit.window} if limit else {})
        if path == "/_control/requests":
            with fake._lock:
                records = [r.to_json() for r in fake.requests]
            return self.send_json(200, records)
        raise errors.ApiError(404, f"Unknown control endpoint {self.command} {path}")

    # ---- the API
    def _api(self, path: str, body: Any, raw: bytes, fault: dict[str, Any]) -> None:
        fake = self.server.fake
        if fault.get("delay") or fake.latency:
            fake._sleep(float(fault.get("delay") or fake.latency))
        extra = {name: str(fault[key]) for key, name in (("retry_after", "Retry-After"),
                 ("retry_after_ms", "retry-after-ms"), ("should_retry", "x-should-retry")) if key in fault}
        if fake.rate_limit is not None:
            admitted, limits = fake.rate_limit.take()
            extra.update(limits)
            if not admitted:
                error = errors.ApiError(429, "Rate limit reached for requests", None, "rate_limit_exceeded",
                                        type="requests")
                return self.send_json(429, error.body(), extra)
        if fault.get("reject_stream_options"):
            err = errors.ApiError(400, "Unrecognized request argument supplied: stream_options", "stream_options")
            return self.send_json(400, err.body(), extra)
        if fault.get("status"):
            status = int(fault["status"])
            data, ctype = errors.error_payload(status, self.responses.get(status, ("Error",))[0],
                                               fault.get("message"), fault.get("body_style", "openai"))
            return self.send(status, data, ctype, extra)
        self._check_auth()
        handled = fake.batches.handle(self, path, raw, body)
        if handled is not None:
            status, answer = handled
            if isinstance(answer, bytes):
                return self.send(status, answer, "application/octet-stream", extra)
            return self.send_json(status, answer, extra)
        if path in ("/v1/models", "/v1/models/") and self.command == "GET":
            return self.send_json(200, models.model_list(fake.models, fake.profile), extra)
        # llama-server and llama-cpp-python have no /v1/models/{id} (GUIDE §4, §12)
        if path.startswith("/v1/models/") and self.command == "GET" and fake.profile == "openai":
            model = unquote(path[len("/v1/models/"):])
            return self.send_json(200, models.model_object(self._known_model(model), fake.profile), extra)
        kind = _KINDS.get(path.rstrip("/"))
        # llama-cpp-python's server has no Responses API (GUIDE §11)
        if kind is None or self.command != "POST" or (kind == "responses" and fake.profile == "llama-cpp-python"):
            raise models.not_found(fake.profile, self.command, path)
        if body is None and raw:
            raise errors.ApiError(400, payloads.NOT_JSON)
        if kind == "responses":
            responses.validate(body, fake.stored)
        else:
            payloads.validate(kind, body)
        self._known_model(body["model"])
        stream = bool(body.get("stream"))
        if kind == "responses":
            return self._responses(body, fault, stream, extra)
        plan = payloads.plan(kind, body, fault, stream)
        if fake.profile == "llama.cpp":  # llama-server sends completions logprobs in the chat shape
            plan.logprobs_shape = "chat"
        response_id = f"{'cmpl' if kind == 'completions' else 'chatcmpl'}-fake{self.request_id[4:]}"
        if not stream:
            return self.send_json(200, payloads.response_body(plan, response_id), extra)
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        if fake.profile == "llama-cpp-python":  # llama_cpp/llama.py streams no usage; stream_options is ignored
            include_usage = False
        events = payloads.stream_events(plan, response_id, include_usage, bool(fault.get("empty_choices_first")),
                                        not fault.get("no_done"))
        self._stream(events, fault, extra, _chat_error)

    def _responses(self, body: dict, fault: dict[str, Any], stream: bool, extra: dict[str, str]) -> None:
        """POST /v1/responses (GUIDE §11): a Response, or its typed events (no [DONE])."""
        plan = responses.plan(body, fault, stream)
        response_id = f"resp_fake{self.request_id[4:]}"
        if body.get("store", True) is not False:  # GUIDE §18: kept unless store is false
            self.server.fake.stored.append(response_id)
        if not stream:
            return self.send_json(200, responses.response_object(plan, response_id), extra)
        events: list[Event] = list(responses.stream_events(plan, response_id, fault))
        self._stream(events, fault, extra, responses.error_event)

    def _check_auth(self) -> None:
        key = self.server.fake.api_key
        if key is None:
            return
        auth = self.headers.get("Authorization", "")
        given = auth[7:].strip() if auth.lower().startswith("bearer ") else self.headers.get("api-key", "")
        if given == key:
            return
        message = (f"Incorrect API key provided: {errors.mask_key(given)}." if given else
                   "You didn't provide an API key. You need to provide your API key in an Authorization header "
                   "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
        raise errors.ApiError(401, message, None, "invalid_api_key")

    def _known_model(self, model: str) -> str:
        fake = self.server.fake
        if fake.strict_models and model not in fake.models:
            raise errors.model_not_found(model)  # OpenAI's 404 shape (param null)
        return model

    def _stream(self, events: list[Event], fault: dict[str, Any], extra: dict[str, str],
                error_event: Callable[[int, str | None], Event]) -> None:
        """Send SSE events over a chunked body, shaped and broken as the fault asks."""
        fake = self.server.fake
        eol = b"\r\n" if fault.get("crlf") else b"\r" if fault.get("cr") else b"\n"
        byte_by_byte, delay = bool(fault.get("byte_by_byte")), float(fault.get("chunk_delay") or 0)
        # One HTTP chunk per event, as real servers flush (GUIDE §14); with coalesce, many events are
        # packed into 64 KiB HTTP chunks unless the timing of each event matters.
        coalesce = fault.get("coalesce", fake.coalesce)
        limit = BUFFER if coalesce and len(events) > 64 and not delay and not byte_by_byte else 0
        stall_after, drop_after = fault.get("stall_after"), fault.get("drop_after")
        malformed_after, error_after = fault.get("malformed_after"), fault.get("error_after")
        self.start(200, "text/event-stream", None, extra)
        out = wire.ChunkedWriter(self.wfile)
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
                write(wire.sse_bytes(error_event(k, fault.get("message")), eol))
                out.finish()
                return
            if fault.get("comments") and k:
                write(b": keep-alive" + eol + eol)
            write(wire.sse_bytes(payload, eol))
            if delay and k < len(events) - 1:
                out.flush()
                fake._sleep(delay)
        out.finish()


def _chat_error(_: int, message: str | None) -> Event:
    """The error object some servers send mid-stream on chat/completions (GUIDE §3, §4)."""
    return errors.dumps({"error": {"message": message or "The server had an error while processing your request.",
                                   "type": "server_error", "param": None, "code": None}})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=TEST_KEY)
    parser.add_argument("--no-auth", action="store_true", help="accept any (or no) key")
    parser.add_argument("--models", nargs="+", default=None, help="default: DEFAULT_MODELS (or the profile's)")
    parser.add_argument("--profile", choices=PROFILES, default="openai")
    parser.add_argument("--coalesce", action="store_true", help="pack long streams into 64 KiB HTTP chunks")
    parser.add_argument("--lenient-models", action="store_true", help="accept any model name")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds each API request waits")
    parser.add_argument("--rate-limit", metavar="N/SECONDS", help="at most N API requests per window (429 past it)")
    args = parser.parse_args(argv)
    limit = None
    if args.rate_limit:
        count, _, window = args.rate_limit.partition("/")
        limit = batches.RateLimit(int(count), float(window or 1))
    server = FakeOpenAIServer(None if args.no_auth else args.api_key, args.host, args.port, args.models,
                              args.profile, False if args.lenient_models else None, args.coalesce,
                              latency=args.latency, rate_limit=limit).start()
    print(f"READY {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
