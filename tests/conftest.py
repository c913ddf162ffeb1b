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


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> Iterator[object]:
    """A real InteractiveShell with jupyter_openai loaded and pointed at the test server.

    ``shell.run_cell`` raises the cell's error, so failures are not swallowed.
    """
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    from jupyter_openai.log import session_log

    class RaisingShell(InteractiveShell):
        def run_cell(self, raw_cell: str, *args: object, **kwargs: object):  # type: ignore[override]
            result = super().run_cell(raw_cell, *args, **kwargs)
            result.raise_error()
            return result

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    RaisingShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    config.CompleteMagics.model = "fake-chat"
    config.CompleteMagics.connect_timeout = 2.0
    config.CompleteMagics.timeout = 5.0
    ip = RaisingShell.instance(config=config)
    session_log.clear()
    session_log.path = None
    ip.run_line_magic("load_ext", "jupyter_openai")
    yield ip
    ip.run_line_magic("unload_ext", "jupyter_openai")
    session_log.clear()
    session_log.path = None
    RaisingShell.clear_instance()
    InteractiveShell.clear_instance()
