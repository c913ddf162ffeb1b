"""Where the kernels of one machine find their one shared offline server, how it knows it is used,
and the offline server's small process helpers (free port, direct JSON request, ending a process group).

Standard library only (the server process loads this file by its path, without the package). The
registry is a folder of the cache (``${JUPYTER_OPENAI_CACHE:-~/.cache/jupyter-openai}/offline-server``,
mode 0700) holding:

- ``server.json`` (mode 0600, written atomically): the running server's pid, port, key, model and log;
- ``lock``: an ``flock`` taken while a kernel looks for the server or starts it, and while the
  server decides to stop, so two kernels starting at once make one server and a kernel never adopts
  a server that is stopping;
- ``leases/<pid>``: one file per process (kernel) using the server, holding that process's start
  time (a reused pid does not count as the same process).

The server watches the leases (:func:`watch`): once no live process has held one for the idle time,
it removes ``server.json`` and exits.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

CACHE_ENV = "JUPYTER_OPENAI_CACHE"
#: Seconds the shared server lives on once no kernel uses it.
IDLE_ENV = "JUPYTER_OPENAI_OFFLINE_IDLE"
DEFAULT_IDLE = 300.0
RECORD = "server.json"
LEASES = "leases"


def cache_folder() -> Path:
    """``$JUPYTER_OPENAI_CACHE``, else ``~/.cache/jupyter-openai``."""
    configured = os.environ.get(CACHE_ENV, "").strip()
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "jupyter-openai"


def idle_time(value: float | None = None) -> float:
    """``value``, else ``$JUPYTER_OPENAI_OFFLINE_IDLE`` (seconds), else :data:`DEFAULT_IDLE`."""
    if value is not None:
        return float(value)
    try:
        return max(0.0, float(os.environ.get(IDLE_ENV, "")))
    except ValueError:
        return DEFAULT_IDLE


def folder(base: Path | None = None) -> Path:
    """The registry folder, created private (0700); refused when another user owns it."""
    path = (base or cache_folder()) / "offline-server"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    (path / LEASES).mkdir(mode=0o700, exist_ok=True)
    return path


@contextlib.contextmanager
def locked(path: Path) -> Iterator[None]:
    """Hold the registry's lock (an exclusive ``flock`` on ``path/lock``)."""
    import fcntl

    handle = os.open(path / "lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the lock


def read_record(path: Path) -> dict[str, Any] | None:
    """The recorded server, or None (none, or unreadable)."""
    try:
        record = json.loads((path / RECORD).read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def write_record(path: Path, record: dict[str, Any]) -> None:
    """Write ``server.json`` atomically, readable by its owner only (``mkstemp`` makes it 0600)."""
    handle, name = tempfile.mkstemp(prefix=".server-", suffix=".json", dir=path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(name, path / RECORD)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def remove_record(path: Path, pid: int) -> None:
    """Remove ``server.json`` if it names the server ``pid``."""
    record = read_record(path)
    if record is not None and record["pid"] == pid:
        (path / RECORD).unlink(missing_ok=True)


def started(pid: int) -> str | None:
    """The process's start time (field 22 of ``/proc/<pid>/stat``); None where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def alive(pid: int, since: str | None = None) -> bool:
    """True while ``pid`` runs (a zombie is dead); with ``since``: only if it is still the process that
    started then."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: the signal said it lives
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] != "Z" and (since is None or fields[19] == since)


def lease(path: Path, pid: int | None = None) -> None:
    """Record that process ``pid`` (default: this one) uses the server."""
    pid = os.getpid() if pid is None else pid
    (path / LEASES / str(pid)).write_text(started(pid) or "")


def release(path: Path, pid: int | None = None) -> None:
    """This process (or ``pid``) no longer uses the server."""
    (path / LEASES / str(os.getpid() if pid is None else pid)).unlink(missing_ok=True)


def live_leases(path: Path) -> list[int]:
    """The pids of the live processes holding a lease; leases of dead processes are removed."""
    found = []
    for entry in (path / LEASES).iterdir():
        try:
            pid, since = int(entry.name), entry.read_text().strip() or None
        except (ValueError, OSError):
            entry.unlink(missing_ok=True)
            continue
        if alive(pid, since):
            found.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return sorted(found)


def watch(path: Path, idle: float, pid: int | None = None) -> None:
    """The server's watchdog (runs in the server process ``pid``): returns once no live process has
    held a lease for ``idle`` seconds, after removing ``server.json`` (under the lock, so no kernel
    adopts the server meanwhile), or once the registry is gone or names another server."""
    pid = os.getpid() if pid is None else pid
    poll = min(1.0, max(0.05, idle / 5))
    idle_since: float | None = None
    while True:
        time.sleep(poll)
        try:
            with locked(path):
                record = read_record(path)
                if record is not None and record["pid"] != pid:
                    return  # another server took the registry over: this one is no one's
                if live_leases(path):
                    idle_since = None
                    continue
                now = time.monotonic()
                idle_since = now if idle_since is None else idle_since
                if now - idle_since >= idle:
                    remove_record(path, pid)
                    return
        except OSError:  # the registry folder was removed: no kernel can find this server any more
            return


# -- the offline server's process helpers -------------------------------------------------
def free_port(host: str) -> int:
    """A port free on ``host`` now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def get_json(url: str, api_key: str, timeout: float, body: Any = None) -> Any:
    """GET (or POST ``body``) straight to the local server, never through a proxy (an HTTP_PROXY
    without NO_PROXY would otherwise carry the request to the proxy)."""
    data = None if body is None else json.dumps(body).encode()
    headers = {"Authorization": "Bearer " + api_key, **({"Content-Type": "application/json"} if data else {})}
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, data=data, headers=headers), timeout=timeout) as answer:
        return json.load(answer)


def end_group(pid: int, process: subprocess.Popen[bytes] | None = None, wait: float = 5.0) -> None:
    """SIGTERM the server's process group, SIGKILL it if it lingers; wait for the end."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if (process.poll() is not None) if process is not None else not alive(pid):
                return
            time.sleep(0.05)
