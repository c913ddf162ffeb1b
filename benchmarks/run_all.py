"""Run every benchmark and write ``benchmarks/results.md``.

    python benchmarks/run_all.py

Each benchmark runs in its own fresh interpreter (``python benchmarks/bench_*.py --json ...``), so
one's imports do not warm up another. The figures are medians of several interleaved runs, on a
machine that may be busy with other work: the load average, and the CPU time that other processes
took while the benchmarks ran, are recorded with them. Benchmarks are not tests (the test suite never
runs them): this exits 0 and says which targets are met.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

HERE = Path(__file__).resolve().parent
BENCHES = [
    ("bench_stream.py", ["--rounds", "15", "--sdk-every", "3"]),  # chat; both shapes, judged on one event per chunk
    ("bench_responses.py", ["--rounds", "15", "--sdk-every", "3"]),  # the Responses API, one event per chunk
    ("bench_import.py", ["--runs", "7"]),
    ("bench_magic.py", ["--rounds", "7"]),
    ("bench_log.py", ["--runs", "5"]),
]


def run(script: str, args: list[str], tmp: str) -> tuple[dict[str, Any] | None, str, float]:
    out = os.path.join(tmp, script + ".json")
    started = time.perf_counter()
    done = subprocess.run([sys.executable, str(HERE / script), *args, "--json", out], capture_output=True,
                          text=True, cwd=str(common.ROOT), env=common.clean_env(), timeout=600)
    elapsed = time.perf_counter() - started
    if done.returncode != 0 or not os.path.exists(out):
        return (
            None,
            f"**{script} failed** (exit {done.returncode}):\n\n```\n{done.stderr.strip()[-2000:]}\n```",
            elapsed,
        )
    return json.loads(Path(out).read_text()), "", elapsed


def stream_rows(result: dict[str, Any], label: str) -> list[list[str]]:
    """Target rows of bench_stream.py / bench_responses.py: judged on one event per HTTP chunk; the
    coalesced shape, when measured, is shown beside it (not judged)."""
    rows = []
    shapes = result["shapes"]
    judged = shapes.get("event")
    coalesced = shapes.get("coalesced")
    checks = [("floor", "0.7× floor", "client >= 0.7x floor (event)"), ("sdk", "10× official SDK",
                                                                        "client >= 10x SDK (event)")]
    for other, target, key in checks:
        if judged is None or f"client/{other}" not in judged["ratios"]:
            continue
        ratio = judged["ratios"][f"client/{other}"]
        cpu = judged["cpu_ratios"].get(f"client/{other}")
        text = (f"{ratio:.2f}× ({judged['rates']['client']:,.0f} vs {judged['rates'][other]:,.0f} events/s; "
                f"CPU time {cpu:.2f}×)")
        if other == "floor" and "floor/drain" in judged["ratios"]:
            text += f"; floor/server-only {judged['ratios']['floor/drain']:.2f}×"
        cap = judged["ratios"].get("drain/sdk (server only vs SDK)")
        if other == "sdk" and cap is not None:
            text += f"; the server alone sends {cap:.2f}× the SDK's rate (the most any client can reach here)"
        if coalesced is not None and f"client/{other}" in coalesced["ratios"]:
            text += f"; coalesced (not judged): {coalesced['ratios'][f'client/{other}']:.2f}×"
        rows.append([f"{label}, one event per HTTP chunk: client ≥ {target}", text,
                     common.verdict(result["targets"].get(key))])
    return rows


def summary_rows(results: dict[str, dict[str, Any] | None]) -> list[list[str]]:
    rows = []
    stream = results.get("bench_stream.py")
    if stream:
        rows += stream_rows(stream, f"streaming ({stream['endpoint']})")
    responses = results.get("bench_responses.py")
    if responses:
        rows += stream_rows(responses, "Responses stream")
    imports = results.get("bench_import.py")
    if imports:
        rows.append(
            [
                "import jupyter_openai.client − import requests < 30 ms",
                f"{imports['client_minus_requests_cpu'] * 1000:.1f} ms CPU "
                f"({imports['client_minus_requests'] * 1000:.1f} ms wall)",
                common.verdict(imports["targets"]["client import adds < 30 ms over requests"]),
            ]
        )
        cpu, wall, ours = imports["load_ext_cpu_medians"], imports["load_ext_medians"], "%load_ext jupyter_openai"
        others = "; ".join(f"{k}: {v * 1000:.0f} ms CPU" for k, v in cpu.items() if k != ours)
        rows.append(
            [
                "%load_ext jupyter_openai ≤ 30 ms",
                f"{cpu[ours] * 1000:.1f} ms CPU ({wall[ours] * 1000:.1f} ms wall); {others}",
                common.verdict(imports["targets"]["%load_ext jupyter_openai <= 30 ms"]),
            ]
        )
    magic = results.get("bench_magic.py")
    if magic:
        rows.append(
            [
                "%%complete ≥ 0.5× bare client",
                f"{magic['ratio']:.2f}× ({magic['magic_rate']:,.0f} vs {magic['bare_rate']:,.0f} events/s)",
                common.verdict(magic["targets"]["magic >= 0.5x bare client"]),
            ]
        )
        slow = magic.get("slow") or {}
        rows.append(
            [
                "display updates bounded by ~25/s",
                f"{min(magic['displays'])}–{max(magic['displays'])} per "
                f"20,000-chunk cell; {slow.get('per_second', float('nan')):.1f}/s on a ~2 s stream",
                common.verdict(magic["targets"]["display updates bounded by ~25/s"]),
            ]
        )
    log = results.get("bench_log.py")
    if log:
        for name, seconds in log["medians"].items():
            rows.append([f"100,000 records: {name} < 1 s", f"{seconds:.3f} s", common.verdict(seconds < 1.0)])
    return rows


def command() -> str:
    """The command line that ran this, with the PYTHONPATH it had (relative to the checkout when inside it)."""
    path = os.environ.get("PYTHONPATH")
    if path:
        parts = ["." if Path(p).resolve() == common.ROOT else p for p in path.split(os.pathsep)]
        path = "PYTHONPATH=" + os.pathsep.join(parts) + " "
    return f"{path or ''}python benchmarks/run_all.py {' '.join(sys.argv[1:])}".rstrip()


def measured() -> str:
    """Which code was measured: the commit, whether the tree had changes, where jupyter_openai came from."""
    def run(*args: str) -> str:
        try:
            return subprocess.run(list(args), capture_output=True, text=True, cwd=str(common.ROOT), timeout=60,
                                  env=common.clean_env()).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    commit = run("git", "rev-parse", "--short", "HEAD") or "unknown"
    changed = run("git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!benchmarks/results.md")
    dirty = " with uncommitted changes" if changed else ""
    where = run(sys.executable, "-c", f"import sys; sys.path[0] = {str(HERE)!r}; import jupyter_openai, os; "
                "print(os.path.dirname(jupyter_openai.__file__))")  # as a bench script imports it
    if where and Path(where).resolve().is_relative_to(common.ROOT):
        where = str(Path(where).resolve().relative_to(common.ROOT))
    return f"commit {commit}{dirty}, jupyter_openai imported from `{where or 'unknown'}`"


#: A section of results.md that this script does not make (offline_defaults.py's, run on its own).
KEPT_SECTION = "## Offline model defaults"


def main() -> None:
    started = time.perf_counter()
    machine_load = common.Load()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    results: dict[str, dict[str, Any] | None] = {}
    sections: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-all-") as tmp:
        for script, args in BENCHES:
            print(f"running {script} ...", flush=True)
            result, failure, elapsed = run(script, args, tmp)
            results[script] = result
            body = failure or result["markdown"]  # type: ignore[index]
            sections.append(f"### {script} ({elapsed:.0f} s)\n\n{body}")
    load = common.Load.text(machine_load.summary())
    text = "\n".join(
        [
            "# Benchmark results",
            "",
            f"- date: {when}",
            f"- machine: {common.machine()}; {load} (other work on the machine adds noise: "
            "figures are medians of interleaved runs, ratios are measured side by side in one run)",
            f"- command: `{command()}` (each `benchmarks/bench_*.py` also runs alone); {measured()}",
            f"- total time: {time.perf_counter() - started:.0f} s",
            "",
            "## Targets",
            "",
            common.table(["target", "measured", "status"], summary_rows(results)),
            "",
            "## Details",
            "",
            "\n\n".join(sections),
            "",
        ]
    )
    previous = (HERE / "results.md").read_text() if (HERE / "results.md").exists() else ""
    if KEPT_SECTION in previous:  # measured by a script of its own (the offline model): kept as it is
        text += "\n" + previous[previous.index(KEPT_SECTION):]
    (HERE / "results.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
