"""Shared helpers for the benchmarks: the out-of-process test server, medians, tables, JSON results.

Not a test module. Each ``bench_*.py`` is runnable alone (``python benchmarks/bench_stream.py``) and
accepts ``--json PATH`` so that ``run_all.py`` can collect its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH_KEY = "sk-bench-not-a-key"
CHUNKS = 20_000
#: Every SSE data event of a 20,000-chunk completions stream with include_usage:
#: 20,000 text chunks + the finish chunk + the usage chunk + [DONE].
EVENTS = CHUNKS + 3
#: The text the server streams for ``CHUNKS`` pieces ("w0 w1 ... w19999").
EXPECTED_TEXT = " ".join(f"w{i}" for i in range(CHUNKS))

#: Settings that would redirect a client: the benchmarks never see the developer's own.
_OPENAI_ENV = ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL")


def clean_env() -> dict[str, str]:
    """The environment without OpenAI settings or proxies (all traffic is to 127.0.0.1)."""
    env = {k: v for k, v in os.environ.items() if k not in _OPENAI_ENV}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    return env


def scrub_environ() -> None:
    """Apply :func:`clean_env` to this process."""
    for name in _OPENAI_ENV:
        os.environ.pop(name, None)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


class Server:
    """``python -m tests.servers.fake --port 0 --no-auth`` in a child process (from the repository's root).

    ``url`` is the API root (``http://127.0.0.1:PORT/v1``), ``root`` the server root (for
    ``/_control``). Use as a context manager; the child is always stopped.
    """

    def __init__(self, *args: str) -> None:
        self.args = list(args)  #: more fakeserver options (``--latency 0.1``)
        self.proc: subprocess.Popen[str] | None = None
        self.url = ""
        self.root = ""

    def start(self, timeout: float = 20.0) -> Server:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.servers.fake", "--port", "0", "--no-auth", *self.args],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=str(ROOT), env=clean_env(),
        )
        deadline = time.monotonic() + timeout
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if line.startswith("READY "):
                self.url = line.split()[1].rstrip("/")
                self.root = self.url.rsplit("/v1", 1)[0]
                return self
            if not line and self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the test server did not print READY")

    def control(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.root + "/_control/" + path, data=data, method="POST" if data is not None
                                         or path == "reset" else "GET", headers={"Content-Type": "application/json"})
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return json.loads(response.read())

    def stream_chunks_forever(self, chunks: int = CHUNKS, coalesce: bool = True, path: str = "/completions") -> None:
        """Every request whose path holds ``path`` (default: completions and chat) streams ``chunks``
        text chunks from now on, as fast as possible (``path="/responses"``: the Responses API's typed
        events, ``chunks`` text deltas among them).

        ``coalesce=True`` packs the events into 64 KiB HTTP chunks (a best case); ``False`` sends each
        event as its own HTTP chunk, as real servers flush (GUIDE §14).
        """
        self.control("reset")
        self.control("faults", {"path": path, "chunks": chunks, "coalesce": coalesce, "times": None})

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Load:
    """How busy the machine was while a benchmark ran: load averages at start and end, and the CPU
    time spent by every process on the machine (``/proc/stat``) against the CPU time of this process,
    of the children it has waited for and of the given running child processes (the test servers);
    the difference is other work competing for the cores. Linux only; elsewhere it reports the load
    average alone (or nothing)."""

    def __init__(self, pids: list[int] | None = None) -> None:
        self.pids = list(pids or [])
        self.load_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        self.started = time.monotonic()
        self.machine_start = self._machine()
        self.ours_start = self._ours()

    @staticmethod
    def _machine() -> float | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        except OSError:
            return None
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(x) for x in fields[:8])
        return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")

    def _ours(self) -> float:
        times = os.times()  # this process, and the children (with theirs) it has waited for
        total = times.user + times.system + times.children_user + times.children_system
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime
        return total

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        out: dict[str, Any] = {"seconds": elapsed, "cores": len(os.sched_getaffinity(0))
                               if hasattr(os, "sched_getaffinity") else os.cpu_count(),
                               "load_start": self.load_start,
                               "load_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}
        machine = self._machine()
        if machine is not None and self.machine_start is not None and elapsed > 0:
            busy = (machine - self.machine_start) / elapsed
            ours = (self._ours() - self.ours_start) / elapsed
            out.update(busy_cores=busy, our_cores=ours, other_cores=max(busy - ours, 0.0))
        return out

    @staticmethod
    def text(summary: dict[str, Any]) -> str:
        parts = []
        if summary.get("load_start") is not None:
            parts.append(f"load average {summary['load_start']:.2f} at start, {summary['load_end']:.2f} at end")
        if "busy_cores" in summary:
            parts.append(f"machine busy {summary['busy_cores']:.2f} of {summary['cores']} cores over the "
                         f"{summary['seconds']:.0f} s run, {summary['our_cores']:.2f} of them this benchmark and "
                         f"its servers, **{summary['other_cores']:.2f} other work**")
        return "; ".join(parts) or "machine load unknown"


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    """min–max of a sample, for the table."""
    return f"{min(values):.4g}–{max(values):.4g}"


def machine() -> str:
    return (
        f"{os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else '?'}),"
        f" Python {platform.python_version()} ({platform.python_implementation()}), {platform.system()}"
        f" {platform.machine()}"
    )


def table(headers: list[str], rows: list[list[Any]]) -> str:
    """A GitHub-flavoured markdown table."""
    cells = [[str(c) for c in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def verdict(met: bool | None) -> str:
    return "n/a" if met is None else ("MET" if met else "MISSED")


def parse_args(description: str, extra: Any = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON to PATH (for run_all.py)")
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def write_json(path: str | None, result: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(result, indent=1, default=str))


def publish(args: argparse.Namespace, result: dict[str, Any], text: str) -> dict[str, Any]:
    """Keep the printed report with the result and write the JSON if ``--json`` asked for it."""
    result["markdown"] = text
    write_json(args.json, result)
    return result


def profile(run: Any, top: int = 20) -> str:
    """The ``tottime`` table of a cProfile of one ``run()``."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    return out.getvalue()


def fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
