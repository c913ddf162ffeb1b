"""Streaming parse speed: this client vs the official SDK vs requests + sseclient-py vs a socket floor.

    python benchmarks/bench_stream.py [--rounds 15] [--sdk-every 3] [--profile]

The project's test server (``tests/fakeserver.py``) runs in a child process and answers every
``POST /v1/completions`` with 20,000 text chunks as fast as it can (fault ``{"chunks": 20000,
"coalesce": true}``: the events are packed into 64 KiB HTTP chunks of a chunked body; without
``coalesce`` the server sends one HTTP chunk per event, as real servers do). Every path sends the same request
(``stream: true``, ``stream_options.include_usage``), so it receives the same 20,003 SSE events
(20,000 text chunks, the finish chunk, the usage chunk, ``[DONE]``), JSON-decodes each one and
collects the text. Each path is checked first: exactly 20,000 non-empty text pieces whose
concatenation is the expected text.

Paths, run in interleaved rounds (the order rotates each round; the slow SDK in every third round), medians:

* ``client``: ``jupyter_openai.client.OpenAIClient(...).completion(..., stream=True)``, iterated;
* ``sdk``: ``openai.OpenAI(...).completions.create(..., stream=True)``, iterated;
* ``sseclient``: ``requests`` (stream=True) + ``sseclient.SSEClient(response)`` as its README shows
  (it iterates the response: requests' 128-byte reads; handing it ``iter_content(None)`` instead was
  measured slower here), ``json.loads`` per event;
* ``floor``: a raw socket: the HTTP request written by hand, a ``recv`` loop, a minimal chunked
  transfer decoder (the server has no non-chunked streaming mode), the body cut at the last blank
  line, decoded once per cut, split on blank lines, ``json.loads`` per event. No Python client can
  do less work per event; its only costs are the ones every client has.
* ``drain`` (information only): the same socket reading the whole body without parsing anything:
  how fast the server can send. When the floor is close to it, the server is the bottleneck.
"""

from __future__ import annotations

import gc
import json
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

MODEL = "davinci-002"
PROMPT = "x"
RECV_SIZE = 256 * 1024


# ------------------------------------------------------------------------------------------- the paths
def make_client(url: str) -> Callable[[], list[str]]:
    from jupyter_openai.client import OpenAIClient

    client = OpenAIClient(base_url=url, api_key=common.BENCH_KEY)

    def run() -> list[str]:
        stream = client.completion(MODEL, PROMPT, stream=True)
        parts = [delta.text for delta in stream if delta.text]
        if stream.status != "ok":
            raise RuntimeError(f"client stream ended with status {stream.status}")
        if stream.text != "".join(parts):
            raise RuntimeError("client: Stream.text differs from the deltas")
        return parts

    return run


def make_sdk(url: str) -> Callable[[], list[str]]:
    import openai

    client = openai.OpenAI(base_url=url, api_key=common.BENCH_KEY, max_retries=0)

    def run() -> list[str]:
        parts: list[str] = []
        append = parts.append
        stream = client.completions.create(model=MODEL, prompt=PROMPT, stream=True,
                                           stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices:
                text = chunk.choices[0].text
                if text:
                    append(text)
        return parts

    return run


def make_sseclient(url: str) -> Callable[[], list[str]]:
    import requests
    import sseclient

    session = requests.Session()
    headers = {"Authorization": f"Bearer {common.BENCH_KEY}", "Accept": "text/event-stream"}
    body = {"model": MODEL, "prompt": PROMPT, "stream": True, "stream_options": {"include_usage": True}}

    def run() -> list[str]:
        parts: list[str] = []
        append = parts.append
        loads = json.loads
        response = session.post(url + "/completions", json=body, headers=headers, stream=True)
        response.raise_for_status()
        try:
            for event in sseclient.SSEClient(response).events():
                if event.data == "[DONE]":
                    break
                choices = loads(event.data)["choices"]
                if choices:
                    text = choices[0]["text"]
                    if text:
                        append(text)
        finally:
            response.close()
        return parts

    return run


def _request_bytes(url: str) -> tuple[str, int, bytes]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps({"model": MODEL, "prompt": PROMPT, "stream": True,
                       "stream_options": {"include_usage": True}}).encode()
    head = (f"POST {parts.path}/completions HTTP/1.1\r\nHost: {host}:{port}\r\n"
            f"Authorization: Bearer {common.BENCH_KEY}\r\nAccept: text/event-stream\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
    return host, port, head.encode() + body


def _open(host: str, port: int, request: bytes) -> tuple[socket.socket, bytes]:
    """Connect, send, read the response head; return the socket and the body bytes read so far."""
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(request)
    raw = b""
    while b"\r\n\r\n" not in raw:
        data = sock.recv(RECV_SIZE)
        if not data:
            raise RuntimeError("connection closed before the response head")
        raw += data
    head, raw = raw.split(b"\r\n\r\n", 1)
    lines = head.split(b"\r\n")
    if b" 200 " not in lines[0] + b" ":
        raise RuntimeError(f"floor: unexpected status {lines[0]!r}")
    if not any(line.lower().startswith(b"transfer-encoding:") and b"chunked" in line.lower() for line in lines[1:]):
        raise RuntimeError("floor: this minimal reader expects a chunked body")
    return sock, raw


def make_floor(url: str) -> Callable[[], list[str]]:
    host, port, request = _request_bytes(url)

    def run() -> list[str]:
        loads = json.loads
        parts: list[str] = []
        append = parts.append
        sock, raw = _open(host, port, request)
        recv = sock.recv
        left = 0  # body bytes left in the current HTTP chunk
        pending = b""  # de-chunked SSE bytes after the last complete event
        done = False
        try:
            while not done:
                # -- de-chunk what has arrived
                pos, end, body = 0, len(raw), []
                while pos < end:
                    if left:
                        piece = raw[pos:pos + left]
                        body.append(piece)
                        pos += len(piece)
                        left -= len(piece)
                        continue
                    eol = raw.find(b"\r\n", pos + (2 if raw.startswith(b"\r\n", pos) else 0))
                    if eol < 0:
                        break
                    line = raw[pos:eol].strip()  # "\r\n" ending the previous chunk, then "SIZE"
                    size = int(line.split(b";")[0], 16)
                    if size == 0:
                        done = True
                        break
                    pos, left = eol + 2, size
                raw = raw[pos:]
                # -- cut the SSE text at the last blank line; one json.loads per event
                if body:
                    pending = pending + b"".join(body) if pending else b"".join(body)
                    cut = pending.rfind(b"\n\n")
                    if cut >= 0:
                        block, pending = pending[:cut].decode(), pending[cut + 2:]
                        for event in block.split("\n\n"):
                            data = event[6:]  # every event of this server is one "data: ..." line
                            if data == "[DONE]":
                                done = True
                                break
                            choices = loads(data)["choices"]
                            if choices:
                                text = choices[0]["text"]
                                if text:
                                    append(text)
                if not done:
                    data = recv(RECV_SIZE)
                    if not data:
                        raise RuntimeError("floor: connection closed before [DONE]")
                    raw += data
        finally:
            sock.close()
        return parts

    return run


#: Time to the response head seen by each drain run: the server builds all its events before it
#: answers, a head start that every path waits for alike.
DRAIN_TTFB: list[float] = []


def make_drain(url: str) -> Callable[[], list[str]]:
    """Read the whole response, parse nothing (returns no text; not verified)."""
    host, port, request = _request_bytes(url)

    def run() -> list[str]:
        started = time.perf_counter()
        sock, raw = _open(host, port, request)
        DRAIN_TTFB.append(time.perf_counter() - started)
        recv, tail = sock.recv, raw[-5:]
        try:
            while tail != b"0\r\n\r\n":
                data = recv(RECV_SIZE)
                if not data:
                    break
                tail = (tail + data)[-5:]
        finally:
            sock.close()
        return []

    return run


PATHS: dict[str, tuple[str, Callable[[str], Callable[[], list[str]]]]] = {
    "client": ("jupyter_openai client", make_client),
    "sdk": ("openai SDK", make_sdk),
    "sseclient": ("requests + sseclient-py", make_sseclient),
    "floor": ("floor: socket + json.loads", make_floor),
    "drain": ("server only: socket, no parsing", make_drain),
}
VERIFIED = ("client", "sdk", "sseclient", "floor")


# ------------------------------------------------------------------------------------------- measuring
def verify(name: str, parts: list[str]) -> None:
    if len(parts) != common.CHUNKS:
        raise RuntimeError(f"{name}: got {len(parts)} text chunks, expected {common.CHUNKS}")
    if "".join(parts) != common.EXPECTED_TEXT:
        raise RuntimeError(f"{name}: the streamed text differs from the expected text")


def timed(run: Callable[[], list[str]]) -> tuple[float, list[str]]:
    gc.collect()
    started = time.perf_counter()
    parts = run()
    return time.perf_counter() - started, parts


def measure(url: str, rounds: int, paths: list[str] | None = None, sdk_every: int = 1) -> list[dict[str, float]]:
    """Seconds per path, one dict per round. The SDK (20x slower than the rest) runs in every
    ``sdk_every``-th round only, so that the fast paths get more rounds in the same time."""
    names = paths or list(PATHS)
    runners = {name: PATHS[name][1](url) for name in names}
    for name in names:  # correctness before speed (also the warm-up round)
        _, parts = timed(runners[name])
        if name in VERIFIED:
            verify(name, parts)
    log: list[dict[str, float]] = []
    for r in range(rounds):
        present = [n for n in names if n != "sdk" or r % sdk_every == 0]
        order = present[r % len(present):] + present[:r % len(present)]
        row: dict[str, float] = {}
        for name in order:
            elapsed, parts = timed(runners[name])
            if name in VERIFIED and len(parts) != common.CHUNKS:
                raise RuntimeError(f"{name}: got {len(parts)} text chunks in round {r}")
            row[name] = elapsed
            if name == "drain":
                row["_head_start"] = DRAIN_TTFB[-1]
        log.append(row)
    return log


def per_path(log: list[dict[str, float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in log:
        for name, seconds in row.items():
            if not name.startswith("_"):
                out.setdefault(name, []).append(seconds)
    return out


def paired_ratio(log: list[dict[str, float]], a: str, b: str) -> float:
    """Median over the rounds that ran both of rate(a)/rate(b) = time(b)/time(a): side by side."""
    return common.median([row[b] / row[a] for row in log if a in row and b in row])


def summarize(log: list[dict[str, float]]) -> dict[str, Any]:
    times = per_path(log)
    rates = {name: common.EVENTS / common.median(t) for name, t in times.items()}
    ttfb = common.median(DRAIN_TTFB[-len(times["drain"]):]) if DRAIN_TTFB and "drain" in times else 0.0
    net = {name: common.EVENTS / max(common.median(t) - ttfb, 1e-9) for name, t in times.items()}
    ratios, best = {}, {}
    for other in ("floor", "sdk", "sseclient"):
        ratios[f"client/{other}"] = paired_ratio(log, "client", other)
        best[f"client/{other}"] = min(times[other]) / min(times["client"])
    if ttfb:
        ratios["client/floor, server head start removed"] = common.median(
            [(row["floor"] - row["_head_start"]) / (row["client"] - row["_head_start"]) for row in log])
        best["client/floor, server head start removed"] = (min(times["floor"]) - ttfb) / (min(times["client"]) - ttfb)
    if "drain" in times:
        ratios["floor/drain"] = paired_ratio(log, "floor", "drain")
        best["floor/drain"] = min(times["drain"]) / min(times["floor"])
    targets = {
        "client >= 0.7x floor": ratios["client/floor"] >= 0.7,
        "client >= 10x SDK": ratios["client/sdk"] >= 10,
    }
    return {"rates": rates, "rates_after_head_start": net, "server_head_start": ttfb, "ratios": ratios,
            "best_ratios": best, "targets": targets, "runs": {k: len(v) for k, v in times.items()},
            "times": {k: [round(x, 5) for x in v] for k, v in times.items()}}


def report(result: dict[str, Any], rounds: int) -> str:
    rows = []
    for name, (label, _) in PATHS.items():
        if name not in result["times"]:
            continue
        t = result["times"][name]
        rows.append([label, common.fmt_rate(result["rates"][name]), f"{common.median(t) * 1000:.1f}",
                     f"{min(t) * 1000:.1f}–{max(t) * 1000:.1f}",
                     common.fmt_rate(result["rates_after_head_start"][name])])
    head_start = result["server_head_start"] * 1000
    runs = result["runs"]
    lines = [f"Streaming {common.CHUNKS:,} completion chunks ({common.EVENTS:,} SSE events), "
             f"{runs['client']} interleaved rounds (the SDK in {runs['sdk']} of them); medians:", "",
             common.table(["path", "events/s", "median ms", "range ms",
                           f"events/s without the server's {head_start:.0f} ms head start"], rows), "",
             f"The server builds all {common.EVENTS:,} events before it sends its response head "
             f"(median {head_start:.1f} ms, seen by the drain path); every path waits for it alike. "
             "The last column subtracts it.", ""]
    ratio_rows = [[k, f"{v:.2f}x", f"{result['best_ratios'][k]:.2f}x"] for k, v in result["ratios"].items()]
    lines += [common.table(["ratio", "median of per-round ratios (judged)", "best run vs best run (noise check)"],
                           ratio_rows), ""]
    lines += [f"- target {k}: **{common.verdict(v)}**" for k, v in result["targets"].items()]
    return "\n".join(lines)


def profile_client(url: str, top: int = 18) -> str:
    """cProfile of one client run (for finding hot spots), after a warm-up run."""
    run = make_client(url)
    run()
    return common.profile(run, top)


def main() -> dict[str, Any]:
    args = common.parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--rounds", type=int, default=15, help="measured rounds (default 15)"),
        p.add_argument("--sdk-every", type=int, default=3,
                       help="run the slow SDK path in every Nth round only (default 3: 5 SDK runs of 15)"),
        p.add_argument("--profile", action="store_true", help="also print a cProfile of the client path")))
    common.scrub_environ()
    with common.Server() as server:
        server.stream_chunks_forever()
        log = measure(server.url, args.rounds, sdk_every=max(1, args.sdk_every))
        result = summarize(log)
        result["rounds"] = args.rounds
        text = report(result, args.rounds)
        print(text)
        if args.profile:
            print("\ncProfile of one client run (tottime):\n" + profile_client(server.url))
    return common.publish(args, result, text)


if __name__ == "__main__":
    main()
