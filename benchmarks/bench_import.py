"""Import and ``%load_ext`` cost in fresh interpreters.

    python benchmarks/bench_import.py [--runs 9] [--install-jai] [--commit REV [--rounds 25] [--load-ext-only]]

1. ``import requests``, ``import jupyter_openai.client`` and ``import openai``, each timed with
   ``time.perf_counter()`` and ``time.process_time()`` around the import in a fresh ``python -c``
   (rounds interleaved, medians; ``openai`` in every third round only).
   Target: the client adds < 30 ms beyond ``requests``. One ``-X importtime`` run lists what the client
   imports beyond ``requests``.
2. ``%load_ext jupyter_openai`` in a fresh interpreter that has IPython imported and an
   ``InteractiveShell`` created (history off, IPYTHONDIR in a temp dir): only the ``load_ext`` is
   timed, side by side with ``import openai`` in the same kind of interpreter and, when it is
   installed, ``%load_ext jupyter_ai_magics``. Target: ≤ 30 ms. The heavy modules each one pulled in
   are listed (``%load_ext jupyter_openai`` should pull in none).

3. With ``--commit REV``: ``%load_ext jupyter_openai`` at that commit beside the checkout. The
   commit's ``jupyter_openai`` is extracted with ``git archive`` into a temp folder (as
   ``compare_commits.py`` does); each of ``--rounds`` rounds runs both, in alternating order, each
   in a fresh interpreter as in 2. Judged: the median over rounds of (checkout CPU / commit CPU), measured in
   the same round. Target: ≤ 0.8. Timed twice: with bytecode caches warm (judged: what a user
   pays once the package has been imported or installed) and with each tree's package compiled
   from source in every round (the rest from caches: what ``PYTHONDONTWRITEBYTECODE=1`` with no
   ``__pycache__`` gives). ``--load-ext-only`` skips 1 and the other cases of 2.

Before the timed step each child runs ``gc.collect()``: creating the shell leaves thousands of young
objects, and the first generation-1 collection that sweeps them (1.5–3 ms of CPU) would otherwise be
charged to whatever runs next, the same for every case, diluting every ratio; the timed step pays for
the collections its own allocations cause.

Every child runs with ``-X pycache_prefix`` set to a private temp folder and bytecode writing on
(whatever the environment says), so the warm-up round writes the caches the timed rounds read
and nothing is written into the checkout.

``jupyter_ai_magics`` is looked for in this interpreter, then in a private virtualenv (system site
packages visible) at ``$JUPYTER_OPENAI_BENCH_JAI_VENV`` or ``~/.cache/jupyter-openai-bench/jai-venv``;
``--install-jai`` creates that virtualenv and ``pip install``s jupyter-ai-magics into it (never into
this environment), giving up after 10 minutes.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common  # noqa: E402

IMPORT_TARGET = 0.030
LOAD_EXT_TARGET = 0.030
SIDE_BY_SIDE_TARGET = 0.8  #: checkout / commit, %load_ext CPU time, bytecode caches warm
IMPORTS = ("requests", "jupyter_openai.client", "openai")
HEAVY = ("requests", "urllib3", "ipywidgets", "pandas", "numpy", "openai", "httpx", "pydantic", "langchain",
         "langchain_core", "aiohttp", "jupyter_ai_magics", "jupyter_openai.client")
JAI_VENV = Path(os.environ.get("JUPYTER_OPENAI_BENCH_JAI_VENV", Path.home() / ".cache" / "jupyter-openai-bench" /
                               "jai-venv"))

IMPORT_SNIPPET = """\
import time
t, c = time.perf_counter(), time.process_time()
import {module}
print(time.perf_counter() - t, time.process_time() - c)
"""

SHELL_SNIPPET = """\
import json, os, shutil, sys, tempfile, time
tree = sys.argv[2] if len(sys.argv) > 2 else None
if tree:
    sys.path.insert(0, tree)
home = tempfile.mkdtemp(prefix="bench-ipython-")
os.environ["IPYTHONDIR"] = home
t0 = time.perf_counter()
from IPython.core.history import HistoryAccessor
from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config
HistoryAccessor.enabled = False
config = Config()
config.HistoryManager.enabled = False
ip = InteractiveShell.instance(config=config)
shell_start = time.perf_counter() - t0
what = sys.argv[1]
import gc
before = set(sys.modules)
gc.collect()  # the shell's own young objects are not charged to the step that happens to run next
t, c = time.perf_counter(), time.process_time()
if what == "import openai":
    import openai
else:
    ip.run_line_magic("load_ext", what)
elapsed, cpu = time.perf_counter() - t, time.process_time() - c
new = set(sys.modules) - before
heavy = [h for h in {heavy!r} if h in new]
if what != "import openai" and what not in ip.extension_manager.loaded:
    raise SystemExit("load_ext did not load " + what)
if tree and not sys.modules[what].__file__.startswith(os.path.join(tree, "")):
    raise SystemExit(what + " came from " + sys.modules[what].__file__ + ", not " + tree)
print(json.dumps({{"seconds": elapsed, "cpu": cpu, "shell_start": shell_start, "modules": len(new), "heavy": heavy}}))
shutil.rmtree(home, ignore_errors=True)
"""


def _env(cache: str | None = None, write: bool = True) -> dict[str, str]:
    """The children's environment; ``cache``: their bytecode cache folder (``-X pycache_prefix``),
    written unless ``write`` is False."""
    env = common.clean_env()
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if cache is not None:
        env["PYTHONPYCACHEPREFIX"] = cache
        if not write:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(python: str, args: list[str], cwd: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run([python, *args], capture_output=True, text=True, cwd=cwd,
                          env=env if env is not None else _env(str(Path(cwd) / "pycache")), timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip().splitlines()[-1]


def time_imports(runs: int, cwd: str) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    """Per round: wall and CPU seconds per module, each in a fresh interpreter. ``requests`` and the
    client run in every one of ``3 * runs`` rounds (their difference is small: it needs many
    samples); the slow ``openai`` in every third round (``runs`` samples)."""
    for module in IMPORTS:  # warm-up: compile caches
        _run(sys.executable, ["-c", IMPORT_SNIPPET.format(module=module)], cwd)
    wall: list[dict[str, float]] = []
    cpu: list[dict[str, float]] = []
    for r in range(3 * runs):
        present = [m for m in IMPORTS if m != "openai" or r % 3 == 0]
        order = present[r % len(present):] + present[:r % len(present)]
        wall.append({})
        cpu.append({})
        for module in order:
            w, c = _run(sys.executable, ["-c", IMPORT_SNIPPET.format(module=module)], cwd).split()
            wall[-1][module] = float(w)
            cpu[-1][module] = float(c)
    return wall, cpu


def _columns(rows: list[dict[str, float]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for row in rows:
        for name, value in row.items():
            out.setdefault(name, []).append(value)
    return out


def importtime_extra(cwd: str, top: int = 8) -> list[tuple[str, float]]:
    """Modules ``import jupyter_openai.client`` loads beyond ``import requests``, by self time (µs)."""
    def profile(module: str) -> dict[str, int]:
        done = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], capture_output=True,
                              text=True, cwd=cwd, env=_env(str(Path(cwd) / "pycache")), timeout=120)
        out: dict[str, int] = {}
        for line in done.stderr.splitlines():
            if not line.startswith("import time:") or "self [us]" in line:
                continue
            self_us, _cumulative, name = line[len("import time:"):].split("|")
            out[name.strip()] = int(self_us)
        return out

    base, client = profile("requests"), profile("jupyter_openai.client")
    extra = {name: us for name, us in client.items() if name not in base}
    return [(name, us / 1e6) for name, us in sorted(extra.items(), key=lambda kv: -kv[1])[:top]]


def find_jai_python() -> str | None:
    try:
        import importlib.util

        if importlib.util.find_spec("jupyter_ai_magics") is not None:
            return sys.executable
    except (ImportError, ValueError):
        pass
    python = JAI_VENV / "bin" / "python"
    if python.exists():
        check = subprocess.run([str(python), "-c", "import jupyter_ai_magics"], capture_output=True,
                               env=common.clean_env(), timeout=120)
        if check.returncode == 0:
            return str(python)
    return None


def _version(python: str) -> str:
    done = subprocess.run([python, "-c", "from importlib.metadata import version; print(version('jupyter-ai-magics'))"],
                          capture_output=True, text=True, env=common.clean_env(), timeout=60)
    return done.stdout.strip() or "(version unknown)"


def install_jai(timeout: float = 600) -> str:
    """Create the private virtualenv and install jupyter-ai-magics there; a one-line status."""
    try:
        if not (JAI_VENV / "bin" / "python").exists():
            subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(JAI_VENV)], check=True,
                           capture_output=True, timeout=120)
        done = subprocess.run([str(JAI_VENV / "bin" / "python"), "-m", "pip", "install", "-q", "jupyter-ai-magics"],
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"not installable here (pip did not finish within {timeout:.0f} s)"
    except (OSError, subprocess.CalledProcessError) as exc:
        return f"not installable here ({exc})"
    if done.returncode != 0:
        return "not installable here (pip: " + (done.stderr.strip().splitlines() or ["failed"])[-1][:160] + ")"
    return f"installed into {JAI_VENV}"


def time_load_ext(runs: int, cwd: str, jai_python: str | None) -> dict[str, list[dict[str, Any]]]:
    """``%load_ext`` of the checkout (and of jupyter_ai_magics) and ``import openai``, rounds interleaved."""
    snippet = SHELL_SNIPPET.format(heavy=HEAVY)
    cases: dict[str, list[str]] = {
        "%load_ext jupyter_openai": [sys.executable, "-c", snippet, "jupyter_openai", str(common.ROOT)],
        "import openai": [sys.executable, "-c", snippet, "import openai"],
    }
    if jai_python:
        cases["%load_ext jupyter_ai_magics"] = [jai_python, "-c", snippet, "jupyter_ai_magics"]
    names = list(cases)
    for name in names:  # warm-up: writes the bytecode caches
        _run(cases[name][0], cases[name][1:], cwd)
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for r in range(runs):
        for name in names[r % len(names):] + names[:r % len(names)]:
            samples[name].append(json.loads(_run(cases[name][0], cases[name][1:], cwd)))
    return samples


def time_side_by_side(commit: str, rounds: int, cwd: str) -> dict[str, Any]:
    """``%load_ext jupyter_openai`` at ``commit`` and in the checkout, each round both in alternating
    order: with bytecode caches warm, and with each package compiled from source (its cached
    bytecode removed before every run, none written). Per condition: CPU and wall seconds per tree."""
    from compare_commits import extract  # git archive of jupyter_openai/ into cwd/<short sha>

    sha = extract(commit, Path(cwd))
    trees = {"checkout": str(common.ROOT), sha: str(Path(cwd) / sha)}
    snippet = SHELL_SNIPPET.format(heavy=HEAVY)
    cache = str(Path(cwd) / "pycache")
    for tree in trees.values():  # warm-up: writes the caches (IPython, the stdlib and both trees)
        _run(sys.executable, ["-c", snippet, "jupyter_openai", tree], cwd, _env(cache))
    out: dict[str, Any] = {"commit": sha, "rounds": rounds}
    for condition, write in (("warm", True), ("source", False)):
        samples: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name in list(trees)[r % 2:] + list(trees)[:r % 2]:
                if condition == "source":  # this tree's package from source; the rest still cached
                    shutil.rmtree(cache + str(Path(trees[name]) / "jupyter_openai"), ignore_errors=True)
                samples[name].append(json.loads(_run(sys.executable, ["-c", snippet, "jupyter_openai", trees[name]],
                                                     cwd, _env(cache, write=write))))
        cpu = {name: [s["cpu"] for s in rows] for name, rows in samples.items()}
        out[condition] = {
            "cpu": cpu,
            "wall": {name: [s["seconds"] for s in rows] for name, rows in samples.items()},
            "modules": {name: int(common.median([s["modules"] for s in rows])) for name, rows in samples.items()},
            "ratio": common.median([a / b for a, b in zip(cpu["checkout"], cpu[sha], strict=True)]),
            "ratio_of_medians": common.median(cpu["checkout"]) / common.median(cpu[sha]),
        }
    out["met"] = out["warm"]["ratio"] <= SIDE_BY_SIDE_TARGET
    return out


def measure(runs: int, install: bool, commit: str | None = None, load_ext_only: bool = False,
            rounds: int = 25) -> dict[str, Any]:
    cwd = tempfile.mkdtemp(prefix="bench-import-")  # not the repo: no local shadowing
    try:
        result = {"runs": runs} if load_ext_only else _measure_all(runs, install, cwd)
        if commit:
            load = common.Load()
            result["side_by_side"] = time_side_by_side(commit, rounds, cwd)
            result["side_by_side"]["machine"] = common.Load.text(load.summary())
            result.setdefault("targets", {})[f"%load_ext ≤ {SIDE_BY_SIDE_TARGET}× {commit}'s, side by side"] = \
                result["side_by_side"]["met"]
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    return result


def _measure_all(runs: int, install: bool, cwd: str) -> dict[str, Any]:
    """Parts 1 and 2 (in ``cwd``)."""
    wall_rows, cpu_rows = time_imports(runs, cwd)
    wall, cpu = _columns(wall_rows), _columns(cpu_rows)
    extra = importtime_extra(cwd)
    jai_status = ""
    jai_python = find_jai_python()
    if jai_python is None and install:
        jai_status = install_jai()
        jai_python = find_jai_python()
    if jai_python is None and not jai_status:
        jai_status = "not installed (python benchmarks/bench_import.py --install-jai tries)"
    elif jai_python is not None:
        where = jai_python.replace(str(Path.home()), "~")
        jai_status = "jupyter_ai_magics " + _version(jai_python) + " from " + where
    load = time_load_ext(runs, cwd, jai_python)
    med = common.median
    wall_m = {m: med(t) for m, t in wall.items()}
    cpu_m = {m: med(t) for m, t in cpu.items()}
    # Judged: the median over rounds of (client − requests) CPU time, both measured in the same round.
    diff_cpu = med([row["jupyter_openai.client"] - row["requests"] for row in cpu_rows])
    diff_wall = med([row["jupyter_openai.client"] - row["requests"] for row in wall_rows])
    load_wall = {name: med([s["seconds"] for s in samples]) for name, samples in load.items()}
    load_cpu = {name: med([s["cpu"] for s in samples]) for name, samples in load.items()}
    ours = "%load_ext jupyter_openai"
    return {
        "runs": runs,
        "imports": wall,
        "imports_cpu": cpu,
        "import_medians": wall_m,
        "import_cpu_medians": cpu_m,
        "client_minus_requests": diff_wall,
        "client_minus_requests_cpu": diff_cpu,
        "client_minus_requests_of_medians": cpu_m["jupyter_openai.client"] - cpu_m["requests"],
        "importtime_extra": extra,
        "load_ext": {name: [s["seconds"] for s in samples] for name, samples in load.items()},
        "load_ext_medians": load_wall,
        "load_ext_cpu_medians": load_cpu,
        "load_ext_heavy": {name: sorted({h for s in samples for h in s["heavy"]}) for name, samples in load.items()},
        "load_ext_modules": {name: int(med([s["modules"] for s in samples])) for name, samples in load.items()},
        "shell_start": med([s["shell_start"] for samples in load.values() for s in samples]),
        "jai_status": jai_status,
        # Judged on the median process CPU time: it is what the wall time is on an idle machine (the
        # imports are CPU-bound with a warm file cache) and, unlike the wall time, it does not grow when
        # other work on the machine takes the CPUs. Both are reported.
        "targets": {
            "client import adds < 30 ms over requests": diff_cpu < IMPORT_TARGET,
            "%load_ext jupyter_openai <= 30 ms": load_cpu[ours] <= LOAD_EXT_TARGET,
        },
    }


def report(result: dict[str, Any]) -> str:
    parts = [_report_all(result)] if "imports" in result else []
    if "side_by_side" in result:
        parts.append(report_side_by_side(result["side_by_side"]))
    return "\n\n".join(parts)


def report_side_by_side(side: dict[str, Any]) -> str:
    sha, ms = side["commit"], common.fmt_ms
    rows = []
    for condition, label in (("warm", "warm caches (judged)"), ("source", "each package compiled from source")):
        got = side[condition]
        rows.append([label, ms(common.median(got["cpu"]["checkout"])), ms(common.median(got["cpu"][sha])),
                     f"**{got['ratio']:.2f}×**" if condition == "warm" else f"{got['ratio']:.2f}×",
                     f"{got['ratio_of_medians']:.2f}×",
                     f"{ms(common.median(got['wall']['checkout']))} / {ms(common.median(got['wall'][sha]))}",
                     f"{got['modules']['checkout']} / {got['modules'][sha]}"])
    warm = side["warm"]
    return "\n".join([
        f"`%load_ext jupyter_openai` in the checkout beside commit {sha}, {side['rounds']} rounds (each runs both, "
        f"in alternating order, each in a fresh interpreter with IPython imported and a shell created); "
        f"CPU = process CPU time of the load_ext alone. Machine: {side['machine']}.",
        "",
        common.table(["bytecode", "checkout CPU", f"{sha} CPU", f"checkout / {sha} (median of per-round ratios)",
                      "ratio of medians", "wall (checkout / commit)", "new modules (checkout / commit)"], rows),
        "",
        f"- %load_ext jupyter_openai: **{common.median(warm['cpu']['checkout']) * 1000:.1f} ms CPU**, "
        f"**{warm['ratio']:.2f}×** {sha}'s ({common.median(warm['cpu'][sha]) * 1000:.1f} ms) with warm caches; "
        f"target ≤ {SIDE_BY_SIDE_TARGET}×: **{common.verdict(side['met'])}**",
    ])


def _report_all(result: dict[str, Any]) -> str:
    runs, ms = result["runs"], common.fmt_ms
    rows = [
        [
            f"import {m}",
            ms(result["import_cpu_medians"][m]),
            ms(result["import_medians"][m]),
            common.spread([x * 1000 for x in result["imports"][m]]) + " ms",
        ]
        for m in IMPORTS
    ]
    met = result["targets"]["client import adds < 30 ms over requests"]
    counts = {m: len(result["imports"][m]) for m in IMPORTS}
    lines = [
        f"Import cost in a fresh interpreter ({counts['requests']} interleaved rounds, `openai` in "
        f"{counts['openai']} of them; CPU = process CPU time, the judged figure, robust to other load; "
        "wall = elapsed):",
        "",
        common.table(["import", "median CPU", "median wall", "wall range"], rows),
        "",
        f"- jupyter_openai.client − requests (median of per-round differences): "
        f"**{result['client_minus_requests_cpu'] * 1000:.1f} ms CPU** "
        f"({result['client_minus_requests'] * 1000:.1f} ms wall; difference of the CPU medians "
        f"{result['client_minus_requests_of_medians'] * 1000:.1f} ms); target < 30 ms: **{common.verdict(met)}**",
    ]
    if result["importtime_extra"]:
        top = ", ".join(f"{name} {sec * 1000:.1f}" for name, sec in result["importtime_extra"][:6])
        lines.append(f"- beyond requests, by self time (ms, one -X importtime run): {top}")
    rows = []
    for name, m in result["load_ext_medians"].items():
        heavy = ", ".join(result["load_ext_heavy"][name]) or "none"
        rows.append(
            [
                name,
                ms(result["load_ext_cpu_medians"][name]),
                ms(m),
                common.spread([x * 1000 for x in result["load_ext"][name]]) + " ms",
                str(result["load_ext_modules"][name]),
                heavy,
            ]
        )
    ours = "%load_ext jupyter_openai"
    met = result["targets"]["%load_ext jupyter_openai <= 30 ms"]
    lines += [
        "",
        f"In a fresh interpreter with IPython imported and an InteractiveShell created "
        f"(that start: median {result['shell_start'] * 1000:.0f} ms wall, not counted), median of {runs}:",
        "",
        common.table(
            ["timed step", "median CPU", "median wall", "wall range", "new modules", "heavy modules pulled in"], rows
        ),
        "",
        f"- %load_ext jupyter_openai: **{result['load_ext_cpu_medians'][ours] * 1000:.1f} ms CPU** "
        f"({result['load_ext_medians'][ours] * 1000:.1f} ms wall); target ≤ 30 ms: **{common.verdict(met)}**",
        f"- jupyter-ai-magics: {result['jai_status']}",
    ]
    return "\n".join(lines)


def main() -> dict[str, Any]:
    args = common.parse_args(
        __doc__.splitlines()[0],
        lambda p: (
            p.add_argument("--runs", type=int, default=7, help="fresh interpreters per case (default and minimum 7)"),
            p.add_argument(
                "--install-jai",
                action="store_true",
                help="pip install jupyter-ai-magics into a private virtualenv first, if missing",
            ),
            p.add_argument("--commit", metavar="REV",
                           help="also time %%load_ext jupyter_openai at this commit beside the checkout"),
            p.add_argument("--rounds", type=int, default=25,
                           help="with --commit: rounds, each timing both trees (default 25)"),
            p.add_argument("--load-ext-only", action="store_true",
                           help="with --commit: time only the side-by-side %%load_ext"),
        ),
    )
    if args.load_ext_only and not args.commit:
        raise SystemExit("--load-ext-only needs --commit REV")
    result = measure(max(args.runs, 7), args.install_jai, args.commit, args.load_ext_only, max(args.rounds, 7))
    text = report(result)
    print(text)
    return common.publish(args, result, text)


if __name__ == "__main__":
    main()
