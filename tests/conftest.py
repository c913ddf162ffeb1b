"""Shared fixtures: the project's OpenAI-compatible test server, clients, and a real IPython shell."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fakeserver import TEST_KEY, FakeOpenAIServer  # noqa: E402

#: A fake key planted by the leak tests; it must never show up anywhere.
CANARY_KEY = "sk-canary-" + "C4N4RY" * 6

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


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own OpenAI settings."""
    for name in _OPENAI_ENV:
        monkeypatch.delenv(name, raising=False)


class Recorder(list):
    """A ``sleep`` replacement for clients that records the delays it was asked for."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


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


class RaisingShell:
    """Made on first use: an ``InteractiveShell`` whose ``run_cell`` raises the cell's error."""

    cls: type | None = None

    @classmethod
    def get(cls) -> type:
        if cls.cls is None:
            from IPython.core.interactiveshell import InteractiveShell

            class _RaisingShell(InteractiveShell):
                def run_cell(self, raw_cell: str, *args: object, **kwargs: object):  # type: ignore[override]
                    result = super().run_cell(raw_cell, *args, **kwargs)
                    result.raise_error()
                    return result

            cls.cls = _RaisingShell
        return cls.cls


def new_shell(config: object, ipython_dir: Path) -> object:
    """A real InteractiveShell with jupyter_openai loaded (GUIDE 7's recipe); close with :func:`close_shell`."""
    import os

    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_openai.log import session_log

    os.environ["IPYTHONDIR"] = str(ipython_dir)
    shell_class = RaisingShell.get()
    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    shell_class.clear_instance()
    config.HistoryManager.enabled = False  # type: ignore[attr-defined]
    ip = shell_class.instance(config=config)
    session_log.clear()
    session_log.path = None
    ip.run_line_magic("load_ext", "jupyter_openai")
    return ip


def close_shell(ip: object) -> None:
    """Unload the extension and forget the shell singleton and the session log."""
    from IPython.core.interactiveshell import InteractiveShell

    from jupyter_openai.log import session_log

    ip.run_line_magic("unload_ext", "jupyter_openai")  # type: ignore[attr-defined]
    session_log.clear()
    session_log.path = None
    RaisingShell.get().clear_instance()
    InteractiveShell.clear_instance()


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
