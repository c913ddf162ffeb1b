"""Record a session's HTTP exchanges to a file, and answer the same requests from it later.

Works at the transport level: a ``requests`` transport adapter mounted on the client's session.
:class:`Recorder` passes each request on to the network and writes it with its answer to a JSONL
file: the method, the path, the JSON body, the status, the content type and the raw body chunks
as they arrived (so a stream replays chunk by chunk as recorded). Never a header of the request,
so never the key, and any key text in an answer is masked. :class:`Replayer` answers from such a
file without any network: a request is found by method, path and canonical JSON body (identical
requests recorded twice are answered in turn); one not in the file is a one-line
:class:`ReplayMiss`. The file's first line says which server it was recorded against, so a
replayed notebook sends the same bodies (which depend on the server, GUIDE 10). Every line of the
file is checked as it loads (:func:`check_entry`): a field of the wrong type is one ``ValueError``
naming the file's line, never a crash of the call it answers. No IPython here.
"""

from __future__ import annotations

import base64
import json
import os
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter, HTTPAdapter
from requests.structures import CaseInsensitiveDict

from ..errors import APIConnectionError, redact

VERSION = 1
#: The answer headers a recording keeps (none can carry a secret).
KEPT_HEADERS = ("content-type", "x-request-id")
FILE_MODE = 0o600


class ReplayMiss(APIConnectionError):
    """A request the recording does not hold (replay never goes to the network)."""


def canonical(body: bytes | str | None) -> str:
    """The request body as canonical JSON (sorted keys, no spaces): what identifies a request."""
    if body is None or body == b"" or body == "":
        return ""
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    try:
        return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def request_key(method: str, url: str, body: bytes | str | None) -> tuple[str, str, str]:
    """``(method, path, canonical body)``: the host and every header left out."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return method.upper(), path, canonical(body)


def _encode_chunk(chunk: bytes) -> dict[str, str] | str:
    try:
        return chunk.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(chunk).decode("ascii")}


def _decode_chunk(item: Any) -> bytes:
    if isinstance(item, str):
        return item.encode("utf-8")
    return base64.b64decode(item["b64"])


def _shown(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _chunk_problem(item: Any) -> str | None:
    if isinstance(item, str):
        return None
    if isinstance(item, dict) and set(item) == {"b64"} and isinstance(item["b64"], str):
        try:
            base64.b64decode(item["b64"], validate=True)
        except ValueError:
            return "a chunk's b64 is not base64"
        return None
    return f"a chunk must be text or {{\"b64\": …}}, got {_shown(item)}"


def _exchange_problem(entry: dict[str, Any]) -> str | None:
    for name in ("method", "path", "body", "status", "chunks"):
        if name not in entry:
            return f"an exchange without its {name!r} field"
    method, path, status, chunks, headers = (entry["method"], entry["path"], entry["status"], entry["chunks"],
                                             entry.get("headers"))
    if not isinstance(method, str) or not method.isalpha() or not method.isupper():
        return f"the exchange's 'method' must be an HTTP method such as \"POST\", got {_shown(method)}"
    if not isinstance(path, str) or not path.startswith("/"):
        return f"the exchange's 'path' must be a URL path starting with /, got {_shown(path)}"
    if not isinstance(entry["body"], str):
        return f"the exchange's 'body' must be the request body as text, got {_shown(entry['body'])}"
    if not _is_int(status) or not 100 <= status <= 599:
        return f"the exchange's 'status' must be an HTTP status (a whole number 100 to 599), got {_shown(status)}"
    if headers is not None and not (isinstance(headers, dict)
                                    and all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())):
        return f"the exchange's 'headers' must be an object of text values, got {_shown(headers)}"
    if not isinstance(chunks, list):
        return f"the exchange's 'chunks' must be a list of the answer's body pieces, got {_shown(chunks)}"
    for item in chunks:
        problem = _chunk_problem(item)
        if problem:
            return f"the exchange's 'chunks': {problem}"
    return None


def _header_problem(entry: dict[str, Any]) -> str | None:
    version = entry.get("version")
    if not _is_int(version) or version < 1:
        return f"the header's 'version' must be a whole number, got {_shown(version)}"
    if version > VERSION:
        return f"recorded in format version {version}; this jupyter_openai reads version {VERSION}: update it"
    base_url = entry.get("base_url")
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        return f"the header's 'base_url' must be an http(s) URL, got {_shown(base_url)}"
    if not isinstance(entry.get("offline", False), bool):
        return f"the header's 'offline' must be true or false, got {_shown(entry.get('offline'))}"
    return None


def check_entry(entry: Any) -> str | None:
    """What is wrong with one line of a recording, read as JSON (None: it is a good header or
    exchange), in words that name the field."""
    kind = entry.get("type") if isinstance(entry, dict) else None
    if kind == "header":
        return _header_problem(entry)
    if kind == "exchange":
        return _exchange_problem(entry)
    return f"not a recording's header or exchange (its 'type' is {_shown(kind)})"


class _Body:
    """A response body for ``requests`` (``response.raw``): recorded chunks, or a live body whose
    chunks are kept as they are read. Offers what ``requests`` and this package call on a raw body
    (``stream``, ``read``, ``close``, ``shutdown``) and nothing of urllib3's internals, so every
    reader goes through it."""

    def __init__(self, chunks: Iterator[bytes], on_end: Any = None, live: Any = None) -> None:
        self._chunks = chunks
        self._buffer = b""
        self._on_end = on_end
        self._live = live  # the network body being recorded (a cancel shuts its socket down)
        self._ended = False
        self.closed = False

    def _next(self) -> bytes | None:
        if self._ended:
            return None
        for chunk in self._chunks:
            if chunk:
                return chunk
        self._end()
        return None

    def _end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._on_end is not None:
                self._on_end()

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        if self._buffer:
            buffered, self._buffer = self._buffer, b""
            yield buffered
        while not self.closed:
            chunk = self._next()
            if chunk is None:
                return
            yield chunk

    def read(self, amt: int | None = None, decode_content: bool | None = None, **_: Any) -> bytes:
        data = self._buffer
        while amt is None or len(data) < amt:
            chunk = self._next()
            if chunk is None:
                break
            data += chunk
        if amt is not None and len(data) > amt:
            data, self._buffer = data[:amt], data[amt:]
        else:
            self._buffer = b""
        return data

    def release_conn(self) -> None:
        pass

    def shutdown(self) -> None:
        self.closed = True
        shutdown = getattr(self._live, "shutdown", None)
        if shutdown is not None:  # a read blocked on the socket returns at once (urllib3 >= 2.3)
            shutdown()

    def close(self) -> None:
        self.closed = True
        self._end()


def _response(request: requests.PreparedRequest, status: int, headers: Mapping[str, str], body: _Body,
              adapter: BaseAdapter) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response.headers = CaseInsensitiveDict(headers)
    response.raw = body
    response.url = request.url or ""
    response.request = request
    response.encoding = requests.utils.get_encoding_from_headers(response.headers)
    response.reason = "OK" if status < 400 else "Error"
    response.connection = adapter
    return response


class Recorder(BaseAdapter):
    """An adapter that sends through ``requests``' own and appends every exchange to ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, base_url: str, offline: bool = False,
                 secrets: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.secrets = secrets
        self._inner = HTTPAdapter()
        self._lock = threading.Lock()
        self.count = 0
        header = {"type": "header", "version": VERSION, "base_url": base_url, "offline": offline}
        with os.fdopen(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE), "w",
                       encoding="utf-8") as handle:
            handle.write(json.dumps(header) + "\n")

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        live = self._inner.send(request, stream=True, timeout=timeout, verify=verify, cert=cert, proxies=proxies)
        method, path, body = request_key(request.method or "GET", request.url or "", request.body)
        kept: list[bytes] = []
        headers = {name: live.headers[name] for name in KEPT_HEADERS if name in live.headers}

        def chunks() -> Iterator[bytes]:
            for chunk in live.raw.stream(None, decode_content=True):
                kept.append(chunk)
                yield chunk

        def on_end() -> None:
            live.close()
            self._write({"type": "exchange", "method": method, "path": path, "body": body,
                         "status": live.status_code, "headers": headers,
                         "chunks": [_encode_chunk(self._mask(c)) for c in kept]})

        response = _response(request, live.status_code, live.headers, _Body(chunks(), on_end, live.raw), self)
        response.reason = live.reason
        return response

    def _mask(self, chunk: bytes) -> bytes:
        text = chunk.decode("utf-8", "surrogateescape")
        return redact(text, self.secrets).encode("utf-8", "surrogateescape")

    def _write(self, entry: dict[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False) + "\n"
        with self._lock, open(self.path, "a", encoding="utf-8") as handle:
            handle.write(line)
            self.count += 1

    def close(self) -> None:
        self._inner.close()


class Replayer(BaseAdapter):
    """An adapter that answers from a recording, never from the network."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = os.fspath(path)
        self.header: dict[str, Any] = {}
        self._answers: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        self._served: dict[tuple[str, str, str], int] = {}
        self._lock = threading.Lock()
        with open(self.path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                except ValueError:
                    raise ValueError(f"{self.path} line {number} is not JSON: not a recording") from None
                problem = check_entry(entry)
                if problem:
                    raise ValueError(f"{self.path} line {number}: {problem}")
                if entry["type"] == "header":
                    if self.header:
                        raise ValueError(f"{self.path} line {number}: a second header: not one recording")
                    self.header = entry
                else:
                    key = (entry["method"], entry["path"], entry["body"])
                    self._answers.setdefault(key, []).append(entry)
        if not self.header:
            raise ValueError(f"{self.path} has no header line: not a recording made by %complete_replay record")

    @property
    def base_url(self) -> str:
        return str(self.header.get("base_url") or "")

    @property
    def offline(self) -> bool:
        return bool(self.header.get("offline"))

    def __len__(self) -> int:
        return sum(map(len, self._answers.values()))

    def send(self, request: requests.PreparedRequest, stream: bool = False, timeout: Any = None,
             verify: Any = True, cert: Any = None, proxies: Any = None) -> requests.Response:
        key = request_key(request.method or "GET", request.url or "", request.body)
        with self._lock:
            answers = self._answers.get(key)
            if not answers:
                raise ReplayMiss(f"replay: {key[0]} {key[1]} with this body is not in {self.path} "
                                 f"({len(self)} recorded; record the notebook again, or %complete_replay off)")
            served = self._served.get(key, 0)
            self._served[key] = served + 1
            entry = answers[min(served, len(answers) - 1)]  # the last one again once all were served
        chunks = iter([_decode_chunk(c) for c in entry["chunks"]])
        return _response(request, int(entry["status"]), entry.get("headers") or {}, _Body(chunks), self)

    def close(self) -> None:
        pass


#: The recorder or replayer in force for this kernel (None: off), mounted on every new client.
active: Recorder | Replayer | None = None


def attach(session: requests.Session, adapter: BaseAdapter | None = None) -> None:
    """Mount ``adapter`` (default: the active one) on ``session`` for every URL."""
    adapter = adapter if adapter is not None else active
    if adapter is not None:
        session.mount("http://", adapter)
        session.mount("https://", adapter)


__all__ = ["Recorder", "ReplayMiss", "Replayer", "active", "attach", "canonical", "check_entry", "request_key"]
