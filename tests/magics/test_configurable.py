"""The magics' configuration: the offline model's sampling defaults (issue 22, item 8), which apply only
when calls go to the bundled model and the user has set nothing; ``%config`` and a call's options win."""

from __future__ import annotations

from typing import Any

from jupyter_openai.calls.request import build_request
from jupyter_openai.magics.configurable import OFFLINE_DEFAULTS


def _magics(shell: Any) -> Any:
    return shell.magics_manager.registry["CompleteMagics"]


def test_offline_calls_get_the_measured_sampling(make_shell: Any) -> None:
    magics = _magics(make_shell(env={}))  # no key, no base URL: the bundled model (not started here)
    assert magics.offline()
    defaults = magics.defaults()
    assert {name: defaults[name] for name in OFFLINE_DEFAULTS} == OFFLINE_DEFAULTS
    assert OFFLINE_DEFAULTS["temperature"] < 0.8  # below the llama-cpp-python server's own default
    request = build_request({"prompt": "What is my name?"}, defaults)
    assert request.params["temperature"] == OFFLINE_DEFAULTS["temperature"]
    assert "top_p" not in request.params and request.system is None  # measured: the server's own serve best
    assert build_request({"prompt": "x", "temperature": 1.3}, defaults).params["temperature"] == 1.3  # options win


def test_the_users_configuration_wins_offline(make_shell: Any) -> None:
    shell = make_shell(env={})
    shell.run_line_magic("config", "CompleteMagics.temperature = 0.9")
    assert _magics(shell).defaults()["temperature"] == 0.9
    shell.run_line_magic("config", "CompleteMagics.temperature = None")  # set, even to the class default
    assert _magics(shell).defaults()["temperature"] is None  # the server's own, as the user asked


def test_other_servers_keep_their_own_sampling(shell: Any) -> None:
    magics = _magics(shell)
    assert not magics.offline()
    defaults = magics.defaults()
    assert defaults["temperature"] is None and defaults["top_p"] is None
    assert "temperature" not in build_request({"prompt": "x"}, defaults).params
