"""The client's streaming path at several git commits, side by side in one run (to measure each change).

    python benchmarks/compare_commits.py COMMIT [COMMIT ...] [--rounds 15] [--endpoint chat] [--shapes event,coalesced]

Each commit's ``jupyter_openai/`` is extracted (``git archive``) into a temporary folder and imported
by a worker process of its own; the workers take turns (the order rotates every round) streaming the
same 20,000-chunk answers from the test servers of ``bench_stream.py`` (one per shape), and report the
wall and CPU time of each run. Printed: per commit and shape, the median events/s and CPU µs/event,
and each commit's median per-round speed-up over the first commit given. Not part of ``run_all.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402
import bench_stream  # noqa: E402

WORKER = r"""
import json, sys, time, gc
sys.path.insert(0, sys.argv[1])  # the extracted commit
sys.path.insert(1, sys.argv[2])  # benchmarks/
import bench_stream
ep = bench_stream.ENDPOINTS[sys.argv[3]]
runners = {}
for line in sys.stdin:
    url = line.strip()
    if url not in runners:
        runners[url] = bench_stream.make_client(url, ep)
        bench_stream.verify("client", runners[url]())
    wall, cpu, parts = bench_stream.timed(runners[url])
    print(json.dumps([wall, cpu, len(parts)]), flush=True)
"""


def extract(commit: str, into: Path) -> str:
    sha = subprocess.run(["git", "rev-parse", "--short", commit], capture_output=True, text=True, check=True,
                         cwd=common.ROOT).stdout.strip()
    data = subprocess.run(["git", "archive", sha, "jupyter_openai"], capture_output=True, check=True,
                          cwd=common.ROOT).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(into / sha, filter="data")
    return sha


def main() -> None:
    args = common.parse_args(__doc__.splitlines()[0], lambda p: (
        p.add_argument("commits", nargs="+"),
        p.add_argument("--rounds", type=int, default=15),
        p.add_argument("--endpoint", choices=list(bench_stream.ENDPOINTS), default="chat"),
        p.add_argument("--shapes", default="event,coalesced")))
    ep = bench_stream.ENDPOINTS[args.endpoint]
    shapes = [s for s in args.shapes.split(",") if s]
    common.scrub_environ()
    with tempfile.TemporaryDirectory(prefix="bench-commits-") as tmp:
        shas = [extract(c, Path(tmp)) for c in args.commits]
        servers = {shape: common.Server() for shape in shapes}
        workers: dict[str, subprocess.Popen[str]] = {}
        try:
            for shape, server in servers.items():
                server.start()
                server.stream_chunks_forever(coalesce=shape == "coalesced", path=ep.fault_path)
            for sha in shas:
                workers[sha] = subprocess.Popen(
                    [sys.executable, "-c", WORKER, str(Path(tmp) / sha), str(Path(__file__).parent), ep.name],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=common.clean_env())
            load = common.Load([s.proc.pid for s in servers.values() if s.proc] + [w.pid for w in workers.values()])
            log: dict[str, list[dict[str, tuple[float, float]]]] = {shape: [] for shape in shapes}

            def run(sha: str, url: str) -> tuple[float, float]:
                worker = workers[sha]
                assert worker.stdin is not None and worker.stdout is not None
                worker.stdin.write(url + "\n")
                worker.stdin.flush()
                wall, cpu, count = json.loads(worker.stdout.readline())
                if count != common.CHUNKS:
                    raise RuntimeError(f"{sha}: {count} text chunks")
                return wall, cpu

            for server in servers.values():  # warm-up and check
                for sha in shas:
                    run(sha, server.url)
            for r in range(args.rounds):
                for shape in shapes[r % len(shapes):] + shapes[:r % len(shapes)]:
                    order = shas[r % len(shas):] + shas[:r % len(shas)]
                    log[shape].append({sha: run(sha, servers[shape].url) for sha in order})
            summary = common.Load.text(load.summary())
        finally:
            for worker in workers.values():
                if worker.stdin:
                    worker.stdin.close()
                worker.wait(10)
            for server in servers.values():
                server.stop()
    lines = [f"Client path at {len(shas)} commits, {common.CHUNKS:,} {ep.what} ({ep.events:,} events), "
             f"{args.rounds} interleaved rounds; medians. Machine: {summary}.", ""]
    for shape in shapes:
        rows = []
        for sha in shas:
            walls = [row[sha][0] for row in log[shape]]
            cpus = [row[sha][1] for row in log[shape]]
            speed = common.median([row[shas[0]][0] / row[sha][0] for row in log[shape]])
            cpu_speed = common.median([row[shas[0]][1] / row[sha][1] for row in log[shape]])
            rows.append([sha, common.fmt_rate(ep.events / common.median(walls)),
                         f"{common.median(cpus) / ep.events * 1e6:.2f}", f"{speed:.2f}x", f"{cpu_speed:.2f}x"])
        lines += [f"#### {bench_stream.SHAPES[shape]}", "",
                  common.table(["commit", "events/s", "CPU µs/event", f"speed vs {shas[0]} (wall)",
                                f"vs {shas[0]} (CPU)"], rows), ""]
    print("\n".join(lines))


if __name__ == "__main__":
    main()
