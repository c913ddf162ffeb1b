"""Where each setting comes from: ``%complete_config`` and ``settings_report`` in a real shell."""

from __future__ import annotations

import json

import pytest
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai import settings_report
from tests.servers.fake import TEST_KEY


def _by_setting(rows: list[dict]) -> dict[str, dict]:
    return {row["setting"]: row for row in rows}


def test_each_setting_names_its_source(make_shell, server, monkeypatch: pytest.MonkeyPatch) -> None:
    start = Config()
    start.CompleteMagics.timeout = 7.0  # as ipython_config.py would set it
    shell = make_shell(start, env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.url,
                                   "OPENAI_ORG_ID": "org-from-env"})
    shell.run_line_magic("config", "CompleteMagics.connect_timeout = 3.0")
    rows = _by_setting(settings_report(shell))
    assert rows["timeout"] == {"setting": "timeout", "value": 7.0, "source": "config file"}
    assert rows["connect_timeout"]["source"] == "%config" and rows["connect_timeout"]["value"] == 3.0
    assert rows["organization"] == {"setting": "organization", "value": "org-from-env",
                                    "source": "environment (OPENAI_ORG_ID)"}
    assert rows["base_url"] == {"setting": "base_url", "value": server.url, "source": "environment (OPENAI_BASE_URL)"}
    assert rows["api_key"]["source"] == "environment (OPENAI_API_KEY)" and TEST_KEY not in json.dumps(
        [dict(r, value=str(r["value"])) for r in rows.values()])
    assert rows["max_retries"] == {"setting": "max_retries", "value": 2, "source": "default"}
    assert rows["endpoint"]["source"] == "default"
    # no model configured and a server that is not OpenAI: its first listed model
    assert rows["model"] == {"setting": "model", "value": "fake-chat", "source": "the server's first listed model"}
    shell.run_line_magic("config", "CompleteMagics.model = 'davinci-002'")
    assert _by_setting(settings_report(shell))["model"] == {"setting": "model", "value": "davinci-002",
                                                            "source": "%config"}


def test_complete_config_shows_a_table_with_the_key_masked(make_shell, server) -> None:
    shell = make_shell(env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": server.url})
    with capture_output() as cap:
        table = shell.run_line_magic("complete_config", "")
    text, page = repr(table), table._repr_html_()
    assert text.splitlines()[0].split() == ["setting", "value", "source"]
    assert "base_url" in text and server.url in text and TEST_KEY not in text + page + cap.stdout
    assert "<table " in page and "environment (OPENAI_API_KEY)" in page


def test_report_without_the_extension_is_one_clear_error() -> None:
    class Bare:
        class magics_manager:  # noqa: N801 - a stand-in for a shell without the extension
            registry: dict = {}

    with pytest.raises(RuntimeError, match="%load_ext jupyter_openai"):
        settings_report(Bare())


def test_the_call_defaults_are_reported_with_their_sources(make_shell, server) -> None:
    """Issue 22: max tokens, temperature, endpoint, output format, reasoning, the chat caps and the
    budget, not only the connection, each with where it comes from."""
    start = Config()
    start.CompleteMagics.temperature = 0.3  # as ipython_config.py would set it
    shell = make_shell(start)
    shell.run_line_magic("config", "CompleteMagics.max_cost_usd = 0.5")
    rows = _by_setting(settings_report(shell))
    assert rows["max_tokens"] == {"setting": "max_tokens", "value": 256, "source": "default"}
    assert rows["temperature"] == {"setting": "temperature", "value": 0.3, "source": "config file"}
    assert rows["max_cost_usd"] == {"setting": "max_cost_usd", "value": 0.5, "source": "%config"}
    assert rows["top_p"] == {"setting": "top_p", "value": "the server's default", "source": "default"}
    assert rows["output_format"]["value"] == "auto" and rows["endpoint"]["value"] == "auto"
    assert rows["reasoning_effort"] == {"setting": "reasoning_effort", "value": "the model's default",
                                        "source": "default"}
    assert rows["show_reasoning"]["value"] is True
    assert rows["chat_max_turns"]["value"] == rows["chat_max_tokens"]["value"] == "no cap"
    settings = [row["setting"] for row in settings_report(shell)]
    assert settings.index("max_retries") < settings.index("max_tokens")  # the connection first, then the calls
    shell.run_line_magic("config", "CompleteMagics.max_tokens = 1024")
    table = shell.run_line_magic("complete_config", "")
    line = next(row for row in repr(table).splitlines() if row.startswith("max_tokens "))
    assert line.split() == ["max_tokens", "1024", "%config"]


def test_the_offline_chat_budget_is_reported_as_the_offline_models(make_shell, monkeypatch) -> None:
    from jupyter_openai.magics import configurable

    shell = make_shell(env={})
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    magics = shell.magics_manager.registry["CompleteMagics"]
    monkeypatch.setattr(type(magics), "offline", lambda self, settings=None: True)
    monkeypatch.setattr(type(magics), "settings", lambda self: configurable.Settings(api_key="x", base_url="http://h/v1"))
    monkeypatch.setattr(type(magics), "default_model", lambda self, **kw: "smollm2")
    rows = _by_setting(settings_report(shell))
    assert rows["chat_max_tokens"] == {"setting": "chat_max_tokens", "value": 1536, "source": "offline model"}
    assert rows["temperature"] == {"setting": "temperature", "value": 0.2, "source": "offline model"}  # measured
    shell.run_line_magic("config", "CompleteMagics.temperature = 0.7")
    assert _by_setting(settings_report(shell))["temperature"] == {"setting": "temperature", "value": 0.7,
                                                                  "source": "%config"}
