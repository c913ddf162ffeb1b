"""Batch throughput and memory: ``run_batch`` vs an ``openai.AsyncOpenAI`` + ``asyncio.Semaphore`` script vs a loop.

    python benchmarks/bench_batch.py [--rows 1000] [--concurrency 16] [--latency 0.1] [--loop-rows 100]
                                     [--memory-rows 100000] [--json PATH]

The project's test server runs in a child process and waits ``--latency`` seconds before every answer
(``--latency``), as a remote model would. Three ways to send the same ``--rows`` chat requests
(``max_tokens`` 16, non-streamed), each checked to get every answer right:

* ``engine``: ``jupyter_openai.batch.run.run_batch(rows, "{text}", concurrency=16, cache=None)``;
* ``sdk``: the script people write by hand: ``openai.AsyncOpenAI`` with ``asyncio.Semaphore(16)`` and
  ``asyncio.gather`` over every row;
* ``loop``: one ``OpenAIClient.chat`` call after the other (over ``--loop-rows`` rows: it is slow).

Targets: engine ≥ 1.0× the sdk script's rows/s and ≥ 14× the loop's. Then, against a server with a
rate limit of 50 requests per 0.5 s (100/s: less than 16 rows in flight at 0.1 s ask) that answers 429
past it (``--rate-limit``): the engine loses no row, and the server never admits more than its limit in
a window (its own count). Last, in a fresh
interpreter: the peak memory (``ru_maxrss``) of ``run_batch`` over ``--memory-rows`` rows with no
latency, above the interpreter with pandas and the package imported; target under 200 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from jupyter_openai.batch.run import run_batch  # noqa: E402
from jupyter_openai.client import OpenAIClient  # noqa: E402
from jupyter_openai.session.log import SessionLog  # noqa: E402

MODEL = "fake-chat"


def rows(n: int) -> list[dict[str, str]]:
    return [{"text": f"row {i} of the benchmark"} for i in range(n)]


def expected(row: dict[str, str]) -> str:
    return "Echo: " + " ".join(reversed(row["text"].split()))


def engine(url: str, data: list[dict[str, str]], concurrency: int) -> float:
    with OpenAIClient(api_key=common.BENCH_KEY, base_url=url, read_timeout=30) as client:
        started = time.perf_counter()
        out = run_batch(data, "{text}", model=MODEL, client=client, concurrency=concurrency, cache=None,
                        progress=False, log=SessionLog(), max_tokens=16, on_line=None)
        took = time.perf_counter() - started
    assert [r["answer"] for r in out] == [expected(r) for r in data], "engine: wrong answers"
    return len(data) / took


def sdk(url: str, data: list[dict[str, str]], concurrency: int) -> float:
    import openai

    async def main() -> list[str]:
        client = openai.AsyncOpenAI(api_key=common.BENCH_KEY, base_url=url)
        gate = asyncio.Semaphore(concurrency)

        async def one(row: dict[str, str]) -> str:
            async with gate:
                answer = await client.chat.completions.create(
                    model=MODEL, messages=[{"role": "user", "content": row["text"]}], max_tokens=16)
                return answer.choices[0].message.content

        try:
            return await asyncio.gather(*(one(row) for row in data))
        finally:
            await client.close()

    started = time.perf_counter()
    answers = asyncio.run(main())
    took = time.perf_counter() - started
    assert answers == [expected(r) for r in data], "sdk: wrong answers"
    return len(data) / took


def loop(url: str, data: list[dict[str, str]]) -> float:
    with OpenAIClient(api_key=common.BENCH_KEY, base_url=url, read_timeout=30) as client:
        started = time.perf_counter()
        answers = [client.chat(MODEL, [{"role": "user", "content": r["text"]}], max_tokens=16).text for r in data]
        took = time.perf_counter() - started
    assert answers == [expected(r) for r in data], "loop: wrong answers"
    return len(data) / took


def rate_limited(data: list[dict[str, str]], concurrency: int, latency: float) -> dict[str, Any]:
    with common.Server("--latency", str(latency), "--rate-limit", "50/0.5") as server:
        with OpenAIClient(api_key=common.BENCH_KEY, base_url=server.url, read_timeout=30) as client:
            started = time.perf_counter()
            out = run_batch(data, "{text}", model=MODEL, client=client, concurrency=concurrency, cache=None,
                            progress=False, log=SessionLog(), max_tokens=16, on_line=None)
            took = time.perf_counter() - started
        limits = server.control("limits")
    lost = sum(r["status"] != "ok" for r in out)
    return {"rows": len(data), "lost": lost, "seconds": round(took, 2), "admitted": limits["admitted"],
            "rejected_429": limits["rejected"], "peak_per_window": limits["peak"], "limit": limits["requests"],
            "window_s": limits["window"]}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--loop-rows", type=int, default=100)
    parser.add_argument("--memory-rows", type=int, default=100_000)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    common.scrub_environ()
    data = rows(args.rows)
    with common.Server("--latency", str(args.latency)) as server:
        load = common.Load([server.proc.pid])
        figures = {"engine": engine(server.url, data, args.concurrency), "sdk": sdk(server.url, data, args.concurrency),
                   "loop": loop(server.url, data[:args.loop_rows])}
        machine = load.summary()
    with common.Server() as server:
        mem = memory(server.url, args.memory_rows) if args.memory_rows else None
    limited = rate_limited(rows(min(args.rows, 500)), args.concurrency, args.latency)
    result = {
        "rows": args.rows, "concurrency": args.concurrency, "latency_s": args.latency,
        "rows_per_s": {k: round(v, 1) for k, v in figures.items()},
        "engine_vs_sdk": round(figures["engine"] / figures["sdk"], 2),
        "engine_vs_loop": round(figures["engine"] / figures["loop"], 1),
        "rate_limited": limited, "memory": mem, "machine": machine,
    }
    result["targets"] = {"engine >= 1.0x sdk": result["engine_vs_sdk"] >= 1.0,
                         "engine >= 14x loop": result["engine_vs_loop"] >= 14,
                         "no row lost under 429s": limited["lost"] == 0,
                         "never over the limit": limited["peak_per_window"] <= limited["limit"],
                         "memory < 200 MB above the interpreter": mem is None or mem["above_mb"] < 200}
    print(json.dumps(result, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
