"""Batch rows at the wire's cost: ``run_batch`` beside an ``AsyncOpenAI`` script and a bare ``http.client`` loop.

    PYTHONPATH=. python benchmarks/bench_batch.py [--rows 1000] [--rounds 3] [--memory-rows 100000] [--json PATH]

The project's test server runs in a child process (``python -m tests.servers.fake``; it sets TCP_NODELAY
and acknowledges a request's headers at once, so no client waits on Nagle's algorithm and a delayed ACK
when it writes headers and body in two pieces). Every way sends the same chat requests (``max_tokens``
16, not streamed) and every answer is checked. CPU is this process's ``process_time`` (all its threads),
per row; rows/s is wall time. Rounds are interleaved; the table shows medians.

1. **At the wire's cost** (a server that answers at once):
   ``engine``: ``run_batch(rows, "{text}", concurrency=16)`` with a progress bar and a session log, once
   with the cache off and once on (a fresh SQLite file each round); ``sdk``: ``openai.AsyncOpenAI`` with
   ``asyncio.Semaphore(16)`` and ``asyncio.gather``; ``floor``: one thread of ``http.client`` with
   keep-alive, building each body with ``json.dumps`` and parsing each answer with ``json.loads``.
   Targets: engine ≤ 1.0 ms of CPU a row (≤ 3.3× the floor's) and ≥ 3× the sdk script's rows/s.
2. **Against a remote model** (0.1 s before every answer), 16 rows in flight: the limit is 16 / 0.1 s =
   160 rows/s. Target: the engine holds ≥ 0.95× the limit.
3. **Under a rate limit** of 50 requests per 0.5 s (429 past it): no row lost, never more than the limit
   admitted in a window (the server's own count).
4. **Memory**: in a fresh interpreter, the peak RSS of ``run_batch`` over ``--memory-rows`` rows above the
   interpreter with pandas and the package imported. Target: < 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_openai.batch.run import run_batch  # noqa: E402
from jupyter_openai.client import OpenAIClient  # noqa: E402
from jupyter_openai.session.log import SessionLog  # noqa: E402

MODEL = "fake-chat"
CONCURRENCY = 16
LATENCY = 0.1


def rows(n: int, start: int = 0) -> list[dict[str, str]]:
    return [{"text": f"row {i} of the benchmark"} for i in range(start, start + n)]


def expected(row: dict[str, str]) -> str:
    return "Echo: " + " ".join(reversed(row["text"].split()))


def measured(run: Callable[[], list[str]], data: list[dict[str, str]]) -> dict[str, float]:
    """rows/s (wall) and ms of this process's CPU a row for one run, its answers checked."""
    wall, cpu = time.perf_counter(), time.process_time()
    answers = run()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert answers == [expected(r) for r in data], "wrong answers"
    return {"rows_per_s": len(data) / wall, "cpu_ms_per_row": 1000 * cpu / len(data)}


def engine(url: str, data: list[dict[str, str]], cache: bool) -> dict[str, float]:
    with OpenAIClient(api_key=common.BENCH_KEY, base_url=url, read_timeout=30) as client, \
            tempfile.TemporaryDirectory() as folder:
        def run() -> list[str]:
            out = run_batch(data, "{text}", model=MODEL, client=client, concurrency=CONCURRENCY,
                            cache=f"{folder}/cache.sqlite" if cache else None, progress=True, log=SessionLog(),
                            max_tokens=16, on_line=None)
            return [r["answer"] for r in out]

        return measured(run, data)


def sdk(url: str, data: list[dict[str, str]]) -> dict[str, float]:
    import openai

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(api_key=common.BENCH_KEY, base_url=url)
        gate = asyncio.Semaphore(CONCURRENCY)

        async def one(row: dict[str, str]) -> str:
            async with gate:
                answer = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": row["text"]}], max_tokens=16)
                return answer.choices[0].message.content

        try:
            return await asyncio.gather(*(one(row) for row in data))
        finally:
            await client.close()

    return measured(lambda: asyncio.run(main()), data)


def floor(url: str, data: list[dict[str, str]]) -> dict[str, float]:
    """The least a client can do: one keep-alive connection, a body built and an answer parsed a row."""
    parts = urlsplit(url)
    path = parts.path + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {common.BENCH_KEY}"}

    def run() -> list[str]:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        answers = []
        try:
            for row in data:
                body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": row["text"]}],
                                   "max_tokens": 16}).encode()
                conn.request("POST", path, body, headers)
                answers.append(json.loads(conn.getresponse().read())["choices"][0]["message"]["content"])
        finally:
            conn.close()
        return answers

    return measured(run, data)


def rate_limited(data: list[dict[str, str]]) -> dict[str, Any]:
    with common.Server("--latency", str(LATENCY), "--rate-limit", "50/0.5") as server:
        with OpenAIClient(api_key=common.BENCH_KEY, base_url=server.url, read_timeout=30) as client:
            started = time.perf_counter()
            out = run_batch(data, "{text}", model=MODEL, client=client, concurrency=CONCURRENCY, cache=None,
                            progress=False, log=SessionLog(), max_tokens=16, on_line=None)
            took = time.perf_counter() - started
        limits = server.control("limits")
    return {"rows": len(data), "lost": sum(r["status"] != "ok" for r in out), "seconds": round(took, 2),
            "admitted": limits["admitted"], "rejected_429": limits["rejected"], "peak_per_window": limits["peak"],
            "limit": limits["requests"], "window_s": limits["window"]}


MEMORY_SCRIPT = r"""
import json, resource, sys, tempfile
sys.path.insert(0, {root!r})
import pandas as pd
from jupyter_openai.batch.run import run_batch
from jupyter_openai.client import OpenAIClient
from jupyter_openai.session.log import SessionLog
import tqdm, sqlite3, jsonschema  # imported before the baseline too
frame = pd.DataFrame({{"text": [f"row {{i}} of the benchmark" for i in range({n})]}})
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
with tempfile.TemporaryDirectory() as tmp, OpenAIClient(api_key={key!r}, base_url={url!r}) as client:
    out = run_batch(frame, "{{text}}", model="fake-chat", client=client, concurrency=16, cache=tmp + "/c.sqlite",
                    progress=False, log=SessionLog(), max_tokens=16, on_line=None)
    ok = int((out.status == "ok").sum())
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"rows": {n}, "ok": ok, "baseline_mb": base / 1024, "peak_mb": peak / 1024,
                  "above_mb": (peak - base) / 1024}}))
"""


def memory(url: str, n: int) -> dict[str, Any]:
    code = MEMORY_SCRIPT.format(root=str(ROOT), n=n, key=common.BENCH_KEY, url=url)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=common.clean_env(),
                          check=True, timeout=3600)
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures


def medians(samples: list[dict[str, float]]) -> dict[str, float]:
    return {key: common.median([s[key] for s in samples]) for key in samples[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000, help="rows a round at the wire's cost")
    parser.add_argument("--latency-rows", type=int, default=480, help="rows a round against 0.1 s latency")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    common.scrub_environ()
    ways: dict[str, Callable[[str, list[dict[str, str]]], dict[str, float]]] = {
        "engine, cache off": lambda url, data: engine(url, data, cache=False),
        "engine, cache on": lambda url, data: engine(url, data, cache=True),
        "sdk": sdk,
        "floor": floor,
    }
    wire: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    with common.Server() as server:
        load = common.Load([server.proc.pid])
        for round_ in range(args.rounds):
            for name, way in ways.items():  # interleaved; fresh rows each time (the cache sees new ones)
                wire[name].append(way(server.url, rows(args.rows, start=round_ * 10 * args.rows)))
        wire_load = load.summary()
    remote: dict[str, list[dict[str, float]]] = {"engine, cache off": [], "sdk": []}
    with common.Server("--latency", str(LATENCY)) as server:
        for _ in range(args.rounds):
            remote["engine, cache off"].append(ways["engine, cache off"](server.url, rows(args.latency_rows)))
            remote["sdk"].append(sdk(server.url, rows(args.latency_rows)))
    wire_m = {name: medians(samples) for name, samples in wire.items()}
    remote_m = {name: medians(samples) for name, samples in remote.items()}
    limit = CONCURRENCY / LATENCY
    limited = rate_limited(rows(min(args.rows, 500)))
    with common.Server() as server:
        mem = memory(server.url, args.memory_rows) if args.memory_rows else None

    engine_cpu = max(wire_m["engine, cache off"]["cpu_ms_per_row"], wire_m["engine, cache on"]["cpu_ms_per_row"])
    result: dict[str, Any] = {
        "rows": args.rows, "rounds": args.rounds, "concurrency": CONCURRENCY, "latency_s": LATENCY,
        "wire": wire_m, "remote": remote_m, "limit_rows_per_s": limit,
        "engine_cpu_vs_floor": engine_cpu / wire_m["floor"]["cpu_ms_per_row"],
        "engine_vs_sdk_rows_per_s": wire_m["engine, cache off"]["rows_per_s"] / wire_m["sdk"]["rows_per_s"],
        "engine_vs_limit": remote_m["engine, cache off"]["rows_per_s"] / limit,
        "rate_limited": limited, "memory": mem, "machine": wire_load,
    }
    result["targets"] = {
        "engine <= 1.0 ms CPU a row": engine_cpu <= 1.0,
        "engine CPU <= 3.3x the floor": result["engine_cpu_vs_floor"] <= 3.3,
        "engine >= 3x the sdk's rows/s": result["engine_vs_sdk_rows_per_s"] >= 3,
        "engine >= 0.95x the limit at 0.1 s": result["engine_vs_limit"] >= 0.95,
        "no row lost under 429s": limited["lost"] == 0,
        "never over the limit": limited["peak_per_window"] <= limited["limit"],
        "memory < 150 MB above the interpreter": mem is None or mem["above_mb"] < 150,
    }
    floor_cpu = wire_m["floor"]["cpu_ms_per_row"]
    lines = [common.table(
        ["at the wire's cost", "CPU a row", "× floor", "rows/s", "× sdk"],
        [[name, f"{m['cpu_ms_per_row']:.2f} ms", f"{m['cpu_ms_per_row'] / floor_cpu:.2f}×",
          common.fmt_rate(m["rows_per_s"]), f"{m['rows_per_s'] / wire_m['sdk']['rows_per_s']:.2f}×"]
         for name, m in wire_m.items()]),
        "",
        common.table(["0.1 s latency, 16 in flight", "rows/s", "× the limit (160/s)"],
                     [[name, common.fmt_rate(m["rows_per_s"]), f"{m['rows_per_s'] / limit:.2f}×"]
                      for name, m in remote_m.items()]),
        "",
        f"rate limit 50/0.5 s: {limited['lost']} rows lost, peak {limited['peak_per_window']} a window "
        f"(limit {limited['limit']}), {limited['rejected_429']} answered 429",
        f"memory: {mem['above_mb']:.0f} MB above the interpreter for {mem['rows']:,} rows" if mem else "",
        common.Load.text(wire_load),
        "",
        *(f"{common.verdict(met)}: {target}" for target, met in result["targets"].items()),
    ]
    text = "\n".join(lines)
    print(text)
    common.publish(args, result, text)


if __name__ == "__main__":
    main()
