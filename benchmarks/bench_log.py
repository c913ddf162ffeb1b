"""Session log → DataFrame: 100,000 records through ``SessionLog.to_dataframe()`` and ``pandas.DataFrame(log)``.

    python benchmarks/bench_log.py [--records 100000] [--runs 5]

The records are realistic: every column of :data:`jupyter_openai.session.log.COLUMNS` filled the way the
magic fills it (a prompt of a few lines, a completion of ~600 characters, the parameters as JSON,
token counts, timings). They are added through ``SessionLog.append`` (timed too, for information),
then each conversion is timed ``--runs`` times, interleaved; medians reported. Target: < 1 s each.
"""

from __future__ import annotations

import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

TARGET_SECONDS = 1.0


def make_records(count: int) -> list[dict[str, Any]]:
    words = "the quick brown fox jumps over the lazy dog while notebooks stream answers".split()
    completion = " ".join(words[i % len(words)] for i in range(110))  # ~600 characters
    records = []
    for i in range(count):
        records.append({
            "source": "magic" if i % 5 else "form",
            "execution_count": i + 1,
            "model": "gpt-4o-mini" if i % 3 else "gpt-3.5-turbo-instruct",
            "endpoint": "chat" if i % 3 else "completions",
            "host": "api.openai.com",
            "prompt": f"Question {i}: summarize this cell\n" + " ".join(words) * 2,
            "system": "You are terse." if i % 3 else None,
            "completion": completion,
            "completions": None,
            "finish_reason": "stop" if i % 7 else "length",
            "prompt_tokens": 40 + i % 50,
            "completion_tokens": 110 if i % 11 else None,
            "total_tokens": 150 + i % 50 if i % 11 else None,
            "latency": 0.5 + (i % 100) / 100,
            "time_to_first_token": 0.2,
            "status": "ok" if i % 13 else "error",
            "error": None if i % 13 else "RateLimitError: 429 Rate limit reached (request id req_x)",
            "request_id": f"req_{i:08d}",
            "params": json.dumps({"max_tokens": 256, "stream": True, "temperature": 0.2}, sort_keys=True),
        })
    return records


def measure(count: int, runs: int) -> dict[str, Any]:
    import pandas as pd

    from jupyter_openai.session.log import COLUMNS, SessionLog

    records = make_records(count)
    log = SessionLog()  # memory only (no JSONL file)
    started = time.perf_counter()
    for record in records:
        log.append(record)
    append_seconds = time.perf_counter() - started
    del records

    def to_dataframe() -> Any:
        return log.to_dataframe()

    def dataframe_of_log() -> Any:
        return pd.DataFrame(log)

    ways = {"SessionLog.to_dataframe()": to_dataframe, "pandas.DataFrame(log)": dataframe_of_log}
    for name, way in ways.items():  # check the result first (and warm up)
        frame = way()
        if frame.shape != (count, len(COLUMNS)) or list(frame.columns) != list(COLUMNS):
            raise RuntimeError(f"{name}: shape {frame.shape}, columns {list(frame.columns)[:5]}...")
        if frame["request_id"].iloc[-1] != f"req_{count - 1:08d}" or frame["id"].iloc[0] != 1:
            raise RuntimeError(f"{name}: the rows are not the log's records in order")
        del frame
    times: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(runs):
        for name, way in ways.items():
            gc.collect()
            started = time.perf_counter()
            frame = way()
            times[name].append(time.perf_counter() - started)
            del frame
    medians = {name: common.median(t) for name, t in times.items()}
    return {"records": count, "runs": runs, "append_seconds": append_seconds, "times": times, "medians": medians,
            "targets": {f"{name} < 1 s": m < TARGET_SECONDS for name, m in medians.items()}}


def report(result: dict[str, Any]) -> str:
    rows = [[name, f"{m:.3f}", common.spread(result["times"][name]), common.verdict(m < TARGET_SECONDS)]
            for name, m in result["medians"].items()]
    lines = [f"{result['records']:,} log records → DataFrame ({len(rows)} ways, median of {result['runs']}):", "",
             common.table(["conversion", "median s", "range s", "target < 1 s"], rows), "",
             f"(building the log: {result['records']:,} × SessionLog.append took {result['append_seconds']:.2f} s)"]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    args = common.parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("--records", type=int, default=100_000),
        p.add_argument("--runs", type=int, default=5)))
    result = measure(args.records, args.runs)
    text = report(result)
    print(text)
    return common.publish(args, result, text)


if __name__ == "__main__":
    main()
