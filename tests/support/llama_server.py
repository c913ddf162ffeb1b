"""llama.cpp's own ``llama-server`` as a test server: find the binary, start it, stop it.

``scripts/build_llama_server.sh`` builds the binary once and caches it, with the DeepSeek-R1 chat
template, in ``${JUPYTER_OPENAI_CACHE:-$HOME/.cache/jupyter-openai}/llama-server-<version>/``;
``scripts/test.sh`` exports its path as ``JUPYTER_OPENAI_LLAMA_SERVER``. :class:`LlamaServer`
runs it on 127.0.0.1 with a free port, a random key and a log file that :meth:`~LlamaServer.stop`
removes; the child runs in its own process group, without OPENAI_*, LLAMA_ARG_* or proxy variables.
"""

from __future__ import annotations

import ctypes
import importlib.metadata
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

BINARY_ENV = "JUPYTER_OPENAI_LLAMA_SERVER"
CACHE_ENV = "JUPYTER_OPENAI_CACHE"
REASONING_TEMPLATE = "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"
STARTUP_TIMEOUT = 60.0
_PROXY_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}


def cache_dir() -> Path | None:
    """The cache folder for the installed llama-cpp-python's llama.cpp (None if it is not installed)."""
    try:
        version = importlib.metadata.version("llama-cpp-python")
    except importlib.metadata.PackageNotFoundError:
        return None
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "jupyter-openai")
    return Path(root) / f"llama-server-{version}"


def find_binary() -> tuple[Path | None, str]:
    """The ``llama-server`` binary (``$JUPYTER_OPENAI_LLAMA_SERVER``, else the cache), or None and why not."""
    named = os.environ.get(BINARY_ENV)
    if named:
        path = Path(named)
        if path.is_file() and os.access(path, os.X_OK):
            return path, ""
        return None, f"{BINARY_ENV}={named} is not an executable file"
    folder = cache_dir()
    if folder is None:
        return None, "llama-cpp-python is not installed, so no llama-server version to look for"
    path = folder / "llama-server"
    if (folder / "STAMP").is_file() and os.access(path, os.X_OK):
        return path, ""
    return None, f"llama-server is not built: run bash scripts/build_llama_server.sh (or set {BINARY_ENV})"


def child_env() -> dict[str, str]:
    """This process's environment without OpenAI settings, llama-server options or proxies."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "LLAMA_ARG_")) and k.lower() not in _PROXY_VARS}


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _new_group_dying_with_parent() -> None:
    """In the child before exec: its own process group, and SIGKILL when the test process dies."""
    os.setsid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


class LlamaServerError(RuntimeError):
    """llama-server did not start."""


class LlamaServer:
    """One ``llama-server`` process serving a GGUF model (``-t 1 -c 2048`` by default)."""

    def __init__(self, binary: str | os.PathLike[str], model_path: str | os.PathLike[str], *,
                 extra_args: Sequence[str] = (), host: str = "127.0.0.1", threads: int = 1, context: int = 2048,
                 startup_timeout: float = STARTUP_TIMEOUT) -> None:
        self.binary, self.model_path = Path(binary), Path(model_path)
        self.extra_args = list(extra_args)
        self.host, self.threads, self.context = host, threads, context
        self.startup_timeout = startup_timeout
        self.api_key = "llama-" + secrets.token_urlsafe(18)
        self.port: int | None = None
        self.model = ""  # the id /v1/models gives (llama-server: the model file's path)
        self.log_path: Path | None = None
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def command(self) -> list[str]:
        """The command line that starts the server."""
        return [str(self.binary), "-m", str(self.model_path), "--host", self.host, "--port", str(self.port),
                "--api-key", self.api_key, "-t", str(self.threads), "-c", str(self.context), *self.extra_args]

    def start(self) -> LlamaServer:
        """Start the server and wait until ``/v1/models`` answers 200 with a model."""
        if self.running:
            return self
        started = time.monotonic()
        self.port = _free_port(self.host)
        handle, name = tempfile.mkstemp(prefix="jupyter-openai-llama-server-", suffix=".log")
        self.log_path = Path(name)
        with os.fdopen(handle, "wb") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL, env=child_env(),
                                             preexec_fn=_new_group_dying_with_parent)
        try:
            self.model = self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started
        return self

    def _wait_ready(self) -> str:
        """Poll ``/v1/models`` until it lists a model (503 while loading), within the deadline."""
        deadline = time.monotonic() + self.startup_timeout
        with requests.Session() as session:
            session.trust_env = False  # straight to 127.0.0.1, whatever the proxy settings
            while time.monotonic() < deadline:
                if not self.running:
                    raise LlamaServerError(f"llama-server exited at start-up. Log tail:\n{self.log_tail()}")
                try:
                    answer = session.get(self.base_url + "/models", timeout=2,
                                         headers={"Authorization": "Bearer " + self.api_key})
                    if answer.status_code == 200:
                        data: list[dict[str, Any]] = answer.json().get("data") or []
                        if data and data[0].get("id"):
                            return str(data[0]["id"])
                except (requests.RequestException, ValueError):
                    pass
                time.sleep(0.1)
        raise LlamaServerError(f"llama-server did not answer within {self.startup_timeout:g} s. "
                               f"Log tail:\n{self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of the server's log."""
        if not self.log_path or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text("utf-8", "replace").splitlines()[-lines:])

    def stop(self) -> None:
        """Kill the server's process group, wait for it and remove the log (idempotent)."""
        process, self._process = self._process, None
        if process is not None:
            for sig, wait in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
                try:
                    os.killpg(process.pid, sig)
                except ProcessLookupError:
                    pass
                try:
                    process.wait(timeout=wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"LlamaServer(binary={str(self.binary)!r}, running={self.running}, port={self.port})"
