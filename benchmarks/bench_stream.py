"""Streaming parse speed: this client vs the official SDK vs requests + sseclient-py vs a socket floor.

    python benchmarks/bench_stream.py [--rounds 15] [--sdk-every 3] [--endpoint chat] [--shapes event,coalesced]
                                      [--profile]

The project's test server (``tests/servers/fake/server.py``) runs in child processes, one per shape, and
answers every streamed request with 20,000 text chunks as fast as it can (fault ``{"chunks": 20000}``).
Two shapes of the same bytes, measured side by side in the same rounds (GUIDE §14):

* ``event``: one HTTP chunk per SSE event, as real servers (OpenAI, vLLM, llama.cpp) flush them: every
  event costs a reader one chunk-size line, one read and one hand-over. **The targets are judged here.**
* ``coalesced``: the events packed into 64 KiB HTTP chunks (fault ``"coalesce": true``), a best case
  that no user sees; it shows the per-event parsing cost without the per-chunk cost.

Endpoints (``--endpoint``): ``chat`` (default; ``POST /v1/chat/completions`` with
``stream_options.include_usage``: the role chunk, 20,000 text chunks, the finish chunk, the usage chunk,
``[DONE]``), ``completions`` (the legacy endpoint the first figures used), ``responses`` (typed
``event:`` + ``data:`` events ending at EOF; ``bench_responses.py`` runs that one). Every path sends
the same request, JSON-decodes every event and collects the text; each is checked first: exactly
20,000 non-empty text pieces whose concatenation is the expected text.

Paths, run in interleaved rounds (the shapes alternate, the order of the paths rotates each round, the
slow SDK runs in every third round), medians:

* ``client``: ``jupyter_openai.client.OpenAIClient`` (``chat``/``completion``/``responses`` with
  ``stream=True``), iterated;
* ``sdk``: ``openai.OpenAI(...)`` (``chat.completions.create``/``completions.create``/``responses.create``
  with ``stream=True``), iterated;
* ``sseclient``: ``requests`` (stream=True) + ``sseclient.SSEClient(response)`` as its README shows
  (it iterates the response: requests' 128-byte reads; handing it ``iter_content(None)`` instead was
  measured slower here), ``json.loads`` per event;
* ``floor``: a raw socket: the HTTP request written by hand, a ``recv`` loop, a minimal chunked
  transfer decoder (the server has no non-chunked streaming mode), the body cut at the last blank
  line, decoded once per cut, split on blank lines, ``json.loads`` per event. No Python client can
  do less work per event; its only costs are the ones every client has.
* ``drain`` (information only): the same socket reading the whole body without parsing anything:
  how fast the server can send. When the floor is close to it, the server is the bottleneck and the
  floor measures the server: then the CPU time per event (this process only; the server is another
  process) shows what each reader costs.
"""

from __future__ import annotations

import gc
import json
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

PROMPT = "x"
RECV_SIZE = 256 * 1024
SHAPES = {"event": "one event per HTTP chunk (as real servers send)", "coalesced": "coalesced 64 KiB HTTP chunks"}
JUDGED_SHAPE = "event"
TARGET_FLOOR, TARGET_SDK = 0.7, 10.0


@dataclass(frozen=True)
class Endpoint:
    name: str
    path: str  # under /v1
    model: str
    body: dict[str, Any]  # what the hand-written paths send (the client and SDK send the same)
    events: int  # SSE events per answer
    what: str
    fault_path: str = "/completions"
    extract: Callable[[Any], Any] = field(default=lambda obj: None)  # floor/sseclient: text of one event


def _completions_text(obj: Any) -> Any:
    choices = obj["choices"]
    return choices[0]["text"] if choices else None


def _chat_text(obj: Any) -> Any:
    choices = obj["choices"]
    return choices[0]["delta"].get("content") if choices else None


def _responses_text(obj: Any) -> Any:
    return obj["delta"] if obj["type"] == "response.output_text.delta" else None


ENDPOINTS = {
    "chat": Endpoint("chat", "/chat/completions", "gpt-4o-mini",
                     {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": PROMPT}], "stream": True,
                      "stream_options": {"include_usage": True}},
                     common.CHUNKS + 4, "chat completion chunks", extract=_chat_text),
    "completions": Endpoint("completions", "/completions", "davinci-002",
                            {"model": "davinci-002", "prompt": PROMPT, "stream": True,
                             "stream_options": {"include_usage": True}},
                            common.CHUNKS + 3, "completion chunks", extract=_completions_text),
    "responses": Endpoint("responses", "/responses", "gpt-4o-mini",
                          {"model": "gpt-4o-mini", "input": PROMPT, "stream": True},
                          common.CHUNKS + 8, "Responses text deltas", fault_path="/responses",
                          extract=_responses_text),
}


# ------------------------------------------------------------------------------------------- the paths
def make_client(url: str, ep: Endpoint) -> Callable[[], list[str]]:
    from jupyter_openai.client import OpenAIClient

    client = OpenAIClient(base_url=url, api_key=common.BENCH_KEY)
    if ep.name == "chat":
        def start() -> Any:
            return client.chat(ep.model, ep.body["messages"], stream=True)
    elif ep.name == "completions":
        def start() -> Any:
            return client.completion(ep.model, PROMPT, stream=True)
    else:
        def start() -> Any:
            return client.responses(ep.model, PROMPT, stream=True)

    def run() -> list[str]:
        stream = start()
        parts = [delta.text for delta in stream if delta.text]
        if stream.status != "ok":
            raise RuntimeError(f"client stream ended with status {stream.status}")
        if stream.text != "".join(parts):
            raise RuntimeError("client: Stream.text differs from the deltas")
        return parts

    return run


def make_sdk(url: str, ep: Endpoint) -> Callable[[], list[str]]:
    import openai

    client = openai.OpenAI(base_url=url, api_key=common.BENCH_KEY, max_retries=0)

    def run() -> list[str]:
        parts: list[str] = []
        append = parts.append
        if ep.name == "responses":
            for event in client.responses.create(model=ep.model, input=PROMPT, stream=True):
                if event.type == "response.output_text.delta" and event.delta:
                    append(event.delta)
            return parts
        if ep.name == "chat":
            stream = client.chat.completions.create(model=ep.model, messages=ep.body["messages"], stream=True,
                                                    stream_options={"include_usage": True})
            for chunk in stream:
                if chunk.choices:
                    text = chunk.choices[0].delta.content
                    if text:
                        append(text)
            return parts
        stream = client.completions.create(model=ep.model, prompt=PROMPT, stream=True,
                                           stream_options={"include_usage": True})
        for chunk in stream:
            if chunk.choices:
                text = chunk.choices[0].text
                if text:
                    append(text)
        return parts

    return run


def make_sseclient(url: str, ep: Endpoint) -> Callable[[], list[str]]:
    import requests
    import sseclient

    session = requests.Session()
    headers = {"Authorization": f"Bearer {common.BENCH_KEY}", "Accept": "text/event-stream"}
    extract = ep.extract

    def run() -> list[str]:
        parts: list[str] = []
        append = parts.append
        loads = json.loads
        response = session.post(url + ep.path, json=ep.body, headers=headers, stream=True)
        response.raise_for_status()
        try:
            for event in sseclient.SSEClient(response).events():
                if event.data == "[DONE]":
                    break
                text = extract(loads(event.data))
                if text:
                    append(text)
        finally:
            response.close()
        return parts

    return run


def _request_bytes(url: str, ep: Endpoint) -> tuple[str, int, bytes]:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    body = json.dumps(ep.body).encode()
    head = (f"POST {parts.path}{ep.path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
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


def make_floor(url: str, ep: Endpoint) -> Callable[[], list[str]]:
    host, port, request = _request_bytes(url, ep)
    typed = ep.name == "responses"  # "event: NAME\ndata: {...}" blocks, no [DONE]: the body ends at EOF
    extract = ep.extract

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
                            # every event of this server is one "data: ..." line, after one "event: ..." line
                            data = event[event.index("\ndata: ") + 7:] if typed else event[6:]
                            if data == "[DONE]":
                                done = True
                                break
                            text = extract(loads(data))
                            if text:
                                append(text)
                if not done:
                    data = recv(RECV_SIZE)
                    if not data:
                        raise RuntimeError("floor: connection closed before the end of the stream")
                    raw += data
        finally:
            sock.close()
        return parts

    return run


def make_drain(url: str, ep: Endpoint) -> Callable[[], list[str]]:
    """Read the whole response, parse nothing (returns no text; not verified). ``run.ttfb`` holds the
    time to the response head of each run: the server builds all its events before it answers, a head
    start that every path waits for alike."""
    host, port, request = _request_bytes(url, ep)
    ttfb: list[float] = []

    def run() -> list[str]:
        started = time.perf_counter()
        sock, raw = _open(host, port, request)
        ttfb.append(time.perf_counter() - started)
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

    run.ttfb = ttfb  # type: ignore[attr-defined]
    return run


PATHS: dict[str, tuple[str, Callable[[str, Endpoint], Callable[[], list[str]]]]] = {
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


def timed(run: Callable[[], list[str]]) -> tuple[float, float, list[str]]:
    """Wall seconds, CPU seconds of this process, and the text pieces of one run."""
    gc.collect()
    cpu = time.process_time()
    started = time.perf_counter()
    parts = run()
    return time.perf_counter() - started, time.process_time() - cpu, parts


def measure(urls: dict[str, str], ep: Endpoint, rounds: int, paths: list[str] | None = None,
            sdk_every: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Per shape, one row per round: ``{"wall": {path: s}, "cpu": {path: s}, "head": s}``. The shapes
    alternate (which one goes first flips each round), the path order rotates. The SDK (20x slower than
    the rest) runs in every ``sdk_every``-th round only, so that the fast paths get more rounds."""
    names = paths or list(PATHS)
    runners = {shape: {name: PATHS[name][1](url, ep) for name in names} for shape, url in urls.items()}
    for shape in urls:  # correctness before speed (also the warm-up round)
        for name in names:
            _, _, parts = timed(runners[shape][name])
            if name in VERIFIED:
                verify(f"{name} ({shape})", parts)
    log: dict[str, list[dict[str, Any]]] = {shape: [] for shape in urls}
    shapes = list(urls)
    for r in range(rounds):
        present = [n for n in names if n != "sdk" or r % sdk_every == 0]
        order = present[r % len(present):] + present[:r % len(present)]
        for shape in shapes[r % len(shapes):] + shapes[:r % len(shapes)]:
            row: dict[str, Any] = {"wall": {}, "cpu": {}}
            for name in order:
                wall, cpu, parts = timed(runners[shape][name])
                if name in VERIFIED and len(parts) != common.CHUNKS:
                    raise RuntimeError(f"{name} ({shape}): got {len(parts)} text chunks in round {r}")
                row["wall"][name], row["cpu"][name] = wall, cpu
                if name == "drain":
                    row["head"] = runners[shape]["drain"].ttfb[-1]  # type: ignore[attr-defined]
            log[shape].append(row)
    return log


def paired(rows: list[dict[str, Any]], a: str, b: str, what: str = "wall") -> float:
    """Median over the rounds that ran both of rate(a)/rate(b) = time(b)/time(a): side by side."""
    return common.median([row[what][b] / row[what][a] for row in rows if a in row[what] and b in row[what]])


def summarize_shape(rows: list[dict[str, Any]], ep: Endpoint) -> dict[str, Any]:
    times: dict[str, list[float]] = {}
    cpus: dict[str, list[float]] = {}
    for row in rows:
        for name, seconds in row["wall"].items():
            times.setdefault(name, []).append(seconds)
            cpus.setdefault(name, []).append(row["cpu"][name])
    events = ep.events
    rates = {name: events / common.median(t) for name, t in times.items()}
    heads = [row["head"] for row in rows if "head" in row]
    head = common.median(heads) if heads else 0.0
    net = {name: events / max(common.median(t) - head, 1e-9) for name, t in times.items()}
    cpu_us = {name: common.median(c) / events * 1e6 for name, c in cpus.items()}
    ratios, best = {}, {}
    for other in ("floor", "sdk", "sseclient"):
        if other in times and "client" in times:
            ratios[f"client/{other}"] = paired(rows, "client", other)
            best[f"client/{other}"] = min(times[other]) / min(times["client"])
    if head and "floor" in times:
        ratios["client/floor, server head start removed"] = common.median(
            [(row["wall"]["floor"] - row["head"]) / (row["wall"]["client"] - row["head"]) for row in rows])
        best["client/floor, server head start removed"] = (min(times["floor"]) - head) / (min(times["client"]) - head)
    if "drain" in times and "floor" in times:
        ratios["floor/drain"] = paired(rows, "floor", "drain")
        best["floor/drain"] = min(times["drain"]) / min(times["floor"])
    if "drain" in times and "sdk" in times:  # no reader can beat the server: the most client/sdk can be here
        ratios["drain/sdk (server only vs SDK)"] = paired(rows, "drain", "sdk")
        best["drain/sdk (server only vs SDK)"] = min(times["sdk"]) / min(times["drain"])
    cpu_ratios = {f"client/{other}": paired(rows, "client", other, "cpu")
                  for other in ("floor", "sdk", "sseclient") if other in cpus and "client" in cpus}
    return {"rates": rates, "rates_after_head_start": net, "server_head_start": head, "ratios": ratios,
            "best_ratios": best, "cpu_us_per_event": cpu_us, "cpu_ratios": cpu_ratios,
            "runs": {k: len(v) for k, v in times.items()},
            "times": {k: [round(x, 5) for x in v] for k, v in times.items()},
            "cpu_times": {k: [round(x, 5) for x in v] for k, v in cpus.items()}}


def summarize(log: dict[str, list[dict[str, Any]]], ep: Endpoint) -> dict[str, Any]:
    shapes = {shape: summarize_shape(rows, ep) for shape, rows in log.items()}
    targets: dict[str, bool] = {}
    info: dict[str, bool] = {}
    for shape, s in shapes.items():
        where = targets if shape == JUDGED_SHAPE else info
        if "client/floor" in s["ratios"]:
            where[f"client >= {TARGET_FLOOR}x floor ({shape})"] = s["ratios"]["client/floor"] >= TARGET_FLOOR
        if "client/sdk" in s["ratios"]:
            where[f"client >= {TARGET_SDK:g}x SDK ({shape})"] = s["ratios"]["client/sdk"] >= TARGET_SDK
    return {"endpoint": ep.name, "events": ep.events, "shapes": shapes, "targets": targets, "not_judged": info}


def report(result: dict[str, Any], ep: Endpoint) -> str:
    shapes = "both shapes side by side in the same" if len(result["shapes"]) > 1 else "one shape,"
    lines = [f"Streaming {common.CHUNKS:,} {ep.what} (`POST /v1{ep.path}`, {ep.events:,} SSE events per answer), "
             f"{shapes} interleaved rounds; medians. Machine: {result['load_text']}.", ""]
    for shape, s in result["shapes"].items():
        runs = s["runs"]
        head_start = s["server_head_start"] * 1000
        rows = []
        for name, (label, _) in PATHS.items():
            if name not in s["times"]:
                continue
            t = s["times"][name]
            rows.append([label, common.fmt_rate(s["rates"][name]), f"{common.median(t) * 1000:.1f}",
                         f"{min(t) * 1000:.1f}–{max(t) * 1000:.1f}", f"{s['cpu_us_per_event'][name]:.2f}",
                         common.fmt_rate(s["rates_after_head_start"][name])])
        judged = " (**judged**)" if shape == JUDGED_SHAPE else " (best case, not judged)"
        lines += [f"#### Shape: {SHAPES[shape]}{judged}", "",
                  f"{runs.get('client', 0)} rounds (the SDK in {runs.get('sdk', 0)} of them):", "",
                  common.table(["path", "events/s", "median ms", "range ms", "CPU µs/event (this process)",
                                f"events/s without the server's {head_start:.0f} ms head start"], rows), ""]
        ratio_rows = [[k, f"{v:.2f}x", f"{s['best_ratios'][k]:.2f}x",
                       f"{s['cpu_ratios'][k]:.2f}x" if k in s["cpu_ratios"] else ""]
                      for k, v in s["ratios"].items()]
        lines += [common.table(["ratio", "median of per-round ratios (judged)",
                                "best run vs best run (noise check)", "CPU time, median of per-round ratios"],
                               ratio_rows), ""]
    lines += ["The server builds all events before it sends its response head (seen by the drain path); every "
              "path waits for it alike, and the last column of each table subtracts it. The CPU column counts "
              "this process only (the server is another process): when floor/drain is near 1 the server is "
              "the bottleneck of the wall-clock figures and CPU time per event shows the readers' own cost; "
              "drain/sdk is then the most that client/sdk can reach on this server.", ""]
    lines += [f"- target {k}: **{common.verdict(v)}**" for k, v in result["targets"].items()]
    lines += [f"- (not judged) {k}: {common.verdict(v)}" for k, v in result["not_judged"].items()]
    return "\n".join(lines)


def profile_client(url: str, ep: Endpoint, top: int = 18) -> str:
    """cProfile of one client run (for finding hot spots), after a warm-up run."""
    run = make_client(url, ep)
    run()
    return common.profile(run, top)


def add_arguments(parser: Any, endpoint: str = "chat", shapes: str = "event,coalesced") -> None:
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds (default 15)")
    parser.add_argument("--sdk-every", type=int, default=3,
                        help="run the slow SDK path in every Nth round only (default 3: 5 SDK runs of 15)")
    parser.add_argument("--endpoint", choices=list(ENDPOINTS), default=endpoint, help=f"default {endpoint}")
    parser.add_argument("--shapes", default=shapes, help=f"comma-separated, of {', '.join(SHAPES)} (default {shapes})")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated subset of " + ", ".join(PATHS))
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the client path")


def main(description: str | None = None, endpoint: str = "chat", shapes: str = "event,coalesced") -> dict[str, Any]:
    args = common.parse_args(description or __doc__.splitlines()[0],
                             lambda p: add_arguments(p, endpoint, shapes))
    ep = ENDPOINTS[args.endpoint]
    chosen = [s for s in args.shapes.split(",") if s]
    unknown = [s for s in chosen if s not in SHAPES] + [p for p in args.paths.split(",") if p not in PATHS]
    if unknown:
        raise SystemExit(f"unknown shape or path: {', '.join(unknown)}")
    common.scrub_environ()
    servers = {shape: common.Server() for shape in chosen}
    try:
        for shape, server in servers.items():
            server.start()
            server.stream_chunks_forever(coalesce=shape == "coalesced", path=ep.fault_path)
        load = common.Load([s.proc.pid for s in servers.values() if s.proc is not None])
        log = measure({shape: s.url for shape, s in servers.items()}, ep, args.rounds,
                      [p for p in args.paths.split(",") if p], sdk_every=max(1, args.sdk_every))
        result = summarize(log, ep)
        result["load"] = load.summary()
        result["load_text"] = common.Load.text(result["load"])
        result["rounds"] = args.rounds
        text = report(result, ep)
        print(text)
        if args.profile:
            for shape, server in servers.items():
                print(f"\ncProfile of one client run, {shape} shape (tottime):\n" + profile_client(server.url, ep))
    finally:
        for server in servers.values():
            server.stop()
    return common.publish(args, result, text)


if __name__ == "__main__":
    main()
