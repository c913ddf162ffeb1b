"""``%%complete`` throughput on the 20,000-chunk stream vs the bare client, and its display updates.

    python benchmarks/bench_magic.py [--rounds 7] [--profile]

A real ``InteractiveShell`` (IPYTHONDIR in a temp dir, history off, as in ``tests/conftest.py``) loads
the extension, is pointed at the project's test server (a child process streaming 20,000 completion
chunks per request) with ``%config CompleteMagics.base_url = ...``, and runs the cell
``%%complete -m davinci-002`` through ``shell.run_cell`` inside ``IPython.utils.capture.capture_output()``.
In the same process and the same interleaved rounds, the bare client streams the same answer.

Reported: events/s of each (medians), the ratio magic/client (median of per-round ratios; target
≥ 0.5×), and the display messages the magic sent (first display + updates, counted in the capture)
against the elapsed time: coalescing should bound them by ~25/s, whatever the token count.
Each run is checked: the last display holds exactly the full text, and the log recorded status ok.
"""

from __future__ import annotations

import gc
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

CELL = "%%complete -m davinci-002\nx"
RATE_LIMIT = 25  # jupyter_openai.calls.run.UPDATES_PER_SECOND
TARGET_RATIO = 0.5
SLOW_CHUNKS = 1500
SLOW_DELAY = 0.001


def make_shell(url: str, home: str) -> Any:
    os.environ["IPYTHONDIR"] = home
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "jupyter_openai")
    shell.run_line_magic("config", f"CompleteMagics.base_url = {url!r}")
    shell.run_line_magic("config", f"CompleteMagics.api_key = {common.BENCH_KEY!r}")
    return shell


def run_magic(shell: Any, expected: str = common.EXPECTED_TEXT) -> tuple[float, int]:
    """One ``%%complete`` cell; returns (seconds, display messages sent). Checks the result."""
    from IPython.utils.capture import capture_output

    from jupyter_openai.session.log import session_log

    gc.collect()
    with capture_output() as captured:
        started = time.perf_counter()
        result = shell.run_cell(CELL)
        elapsed = time.perf_counter() - started
    if not result.success:
        raise RuntimeError(f"%%complete failed: {result.error_in_exec or result.error_before_exec}")
    status = [o for o in captured.outputs if 'class="jo-status"' in o.data.get("text/html", "")]
    outputs = [o for o in captured.outputs if 'class="jo-status"' not in o.data.get("text/html", "")]  # the answer
    if not outputs or outputs[-1].data.get("text/plain") != expected:
        raise RuntimeError("%%complete: the answer's last display is not exactly the streamed text: "
                           f"{[len(o.data.get('text/plain') or '') for o in captured.outputs[-3:]]} vs {len(expected)}")
    record = session_log[-1]
    if record["status"] != "ok" or record["completion"] != expected:
        raise RuntimeError(f"%%complete: the log recorded status {record['status']!r}")
    if len(status) != 1 or "davinci-002" not in status[0].data["text/plain"]:
        raise RuntimeError("%%complete: no status line (a display of its own after the answer)")
    return elapsed, len(outputs)


def make_bare(url: str) -> Any:
    from jupyter_openai.client import OpenAIClient

    client = OpenAIClient(base_url=url, api_key=common.BENCH_KEY)

    def run() -> float:
        gc.collect()
        started = time.perf_counter()
        stream = client.completion("davinci-002", "x", stream=True)
        count = sum(1 for delta in stream if delta.text)
        elapsed = time.perf_counter() - started
        if count != common.CHUNKS or stream.text != common.EXPECTED_TEXT or stream.status != "ok":
            raise RuntimeError(f"bare client: {count} chunks, status {stream.status}")
        return elapsed

    return run


def measure(url: str, shell: Any, rounds: int) -> dict[str, Any]:
    bare = make_bare(url)
    run_magic(shell)  # warm-up and check
    bare()
    magic_times: list[float] = []
    bare_times: list[float] = []
    displays: list[int] = []
    for r in range(rounds):
        if r % 2:
            bare_times.append(bare())
        elapsed, count = run_magic(shell)
        magic_times.append(elapsed)
        displays.append(count)
        if not r % 2:
            bare_times.append(bare())
    ratio = common.median([b / m for m, b in zip(magic_times, bare_times, strict=False)])
    per_second = [d / t for d, t in zip(displays, magic_times, strict=False)]
    # The bound: one display every 1/25 s while text grows, plus the first and the final one.
    within = all(d <= t * RATE_LIMIT + 2 for d, t in zip(displays, magic_times, strict=False))
    return {
        "rounds": rounds,
        "magic_times": magic_times,
        "bare_times": bare_times,
        "displays": displays,
        "magic_rate": common.EVENTS / common.median(magic_times),
        "bare_rate": common.EVENTS / common.median(bare_times),
        "ratio": ratio,
        "displays_per_second": common.median(per_second),
        "displays_within_bound": within,
        "targets": {"magic >= 0.5x bare client": ratio >= TARGET_RATIO, "display updates bounded by ~25/s": within},
    }


def measure_coalescing(server: common.Server, shell: Any, chunks: int = SLOW_CHUNKS) -> dict[str, Any]:
    """One cell on a slow stream (the server sleeps ~1 ms between chunks, ~2 s in all): over a
    duration that long the display rate shows, and it must stay near 25/s (not 1,000/s)."""
    server.control("reset")
    server.control("faults", [{"path": "/completions", "chunks": chunks, "chunk_delay": SLOW_DELAY, "times": 1},
                              {"path": "/completions", "chunks": common.CHUNKS, "coalesce": True, "times": None}])
    elapsed, count = run_magic(shell, " ".join(f"w{i}" for i in range(chunks)))
    return {
        "chunks": chunks,
        "seconds": elapsed,
        "displays": count,
        "per_second": count / elapsed,
        "within": count <= elapsed * RATE_LIMIT + 2,
    }


def report(result: dict[str, Any]) -> str:
    rows = [
        [
            "%%complete (real InteractiveShell, captured)",
            common.fmt_rate(result["magic_rate"]),
            f"{common.median(result['magic_times']) * 1000:.1f}",
        ],
        ["bare client", common.fmt_rate(result["bare_rate"]), f"{common.median(result['bare_times']) * 1000:.1f}"],
    ]
    displays = result["displays"]
    lines = [
        f"%%complete on {common.CHUNKS:,} chunks ({common.EVENTS:,} SSE events) vs the bare client, "
        f"median of {result['rounds']} interleaved rounds:",
        "",
        common.table(["path", "events/s", "median ms"], rows),
        "",
        f"- magic/client: **{result['ratio']:.2f}x**; target ≥ 0.5x: "
        f"**{common.verdict(result['ratio'] >= TARGET_RATIO)}**",
        f"- display messages per cell (first display + updates + final): {min(displays)}–{max(displays)} "
        f"for {common.CHUNKS:,} chunks, median {result['displays_per_second']:.1f}/s of cell time; "
        f"bound {RATE_LIMIT}/s + 2: **{common.verdict(result['displays_within_bound'])}**",
    ]
    slow = result.get("slow")
    if slow:
        lines.append(
            f"- slow stream ({slow['chunks']:,} chunks, ~{SLOW_DELAY * 1000:g} ms apart): {slow['displays']} "
            f"display messages in {slow['seconds']:.2f} s = **{slow['per_second']:.1f}/s** "
            f"(vs {slow['chunks'] / slow['seconds']:.0f} chunks/s); bound {RATE_LIMIT}/s + 2: "
            f"**{common.verdict(slow['within'])}**"
        )
    return "\n".join(lines)


def profile_magic(shell: Any, top: int = 20) -> str:
    """cProfile of one %%complete run."""
    return common.profile(lambda: run_magic(shell), top)


def main() -> dict[str, Any]:
    args = common.parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)"),
            p.add_argument("--profile", action="store_true", help="also print a cProfile of one %%complete run"),
        ),
    )
    common.scrub_environ()
    home = tempfile.mkdtemp(prefix="bench-magic-ipython-")
    try:
        with common.Server() as server:
            server.stream_chunks_forever()
            shell = make_shell(server.url, home)
            result = measure(server.url, shell, args.rounds)
            result["slow"] = measure_coalescing(server, shell)
            result["targets"]["display updates bounded by ~25/s"] &= result["slow"]["within"]
            text = report(result)
            print(text)
            if args.profile:
                print("\ncProfile of one %%complete run (tottime):\n" + profile_magic(shell))
            shell.run_line_magic("unload_ext", "jupyter_openai")
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return common.publish(args, result, text)


if __name__ == "__main__":
    main()
