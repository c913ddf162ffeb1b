"""Settings that cannot leak or misroute the key (issue 12): malformed keys are one configuration line
before any request, never quoting the key; surrounding whitespace is stripped; ``direct`` settings
(the bundled local server's) never go through a proxy from the environment.

Requests go to the test server on 127.0.0.1; the proxy variables point at :class:`Listener`, a listening
socket that only counts connections, so any request that took the proxy would show up there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from jupyter_openai.client import OpenAIClient
from jupyter_openai.config import Settings
from jupyter_openai.errors import APIConnectionError, ConfigurationError
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.sockets import Listener

KEY = "sk-proj-" + "k3y" * 10
MESSAGES = [{"role": "user", "content": "hello there"}]


@pytest.fixture
def trap(monkeypatch: pytest.MonkeyPatch) -> Iterator[Listener]:
    """Every proxy variable points at a :class:`Listener`; NO_PROXY is unset."""
    listener = Listener()
    for name in ("NO_PROXY", "no_proxy", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, f"http://127.0.0.1:{listener.port}")
    yield listener
    listener.sock.close()


# ---------------------------------------------------------------- malformed keys (issue 12)

@pytest.mark.parametrize("bad, words", [
    (KEY[:10] + "\u201d" + KEY[10:], "typographic quote"),
    (KEY + "\u201c", "typographic quote"),
    (KEY[:10] + "\u00e9" + KEY[10:], "non-ASCII"),
    (KEY[:10] + " " + KEY[10:], "space or line break"),
    (KEY[:10] + "\n" + KEY[10:], "space or line break"),
    (KEY[:10] + "\x00" + KEY[10:], "control character"),
    (KEY[:10] + "\x7f" + KEY[10:], "control character"),
    (KEY.encode(), "must be a string"),
])
def test_malformed_key_is_one_configuration_line_that_never_quotes_it(trap: Listener, bad: object,
                                                                      words: str) -> None:
    """Today a curly quote raised UnicodeEncodeError from http.client; now: one line, before any request."""
    for make in (lambda: Settings(api_key=bad), lambda: OpenAIClient(api_key=bad, max_retries=0),
                 lambda: Settings.from_env(api_key=bad), lambda: Settings().with_overrides(api_key=bad)):
        with pytest.raises(ConfigurationError) as info:
            make()
        message = str(info.value)
        assert words in message and "\n" not in message
        assert KEY[:12] not in message and KEY[-12:] not in message and "k3yk3y" not in message
    assert trap.connections() == 0


def test_malformed_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY + "\u2019")
    with pytest.raises(ConfigurationError, match="typographic quote") as info:
        OpenAIClient()
    assert "k3yk3y" not in str(info.value)


@pytest.mark.parametrize("padded", [KEY + "\n", KEY + "\r\n", f"  {KEY}\t", "\ufeff" + KEY])
def test_surrounding_whitespace_is_stripped_and_the_key_works(server: FakeOpenAIServer, padded: str,
                                                              delays: list) -> None:
    """Today a key read with open(...).read() kept its newline: sent, retried three times, two-line error."""
    key = padded.replace(KEY, TEST_KEY)
    if key.startswith("\ufeff"):  # a byte-order mark is not whitespace: that one is refused, in one line
        with pytest.raises(ConfigurationError, match="non-ASCII"):
            OpenAIClient(api_key=key, base_url=server.url)
        return
    with OpenAIClient(api_key=key, base_url=server.url, sleep=delays) as client:
        assert client.settings.api_key == Settings(api_key=TEST_KEY).api_key
        client.list_models()
    assert server.requests[-1].headers["authorization"] == f"Bearer {TEST_KEY}" and delays == []


# ---------------------------------------------------------------- direct settings: never a proxy (issue 12)

def test_direct_settings_never_use_a_proxy(trap: Listener, server: FakeOpenAIServer) -> None:
    """The bundled server's settings (``direct=True``): HTTP_PROXY without NO_PROXY used to capture them."""
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0, connect_timeout=1,
                      direct=True) as client:
        assert len(client.list_models()) == len(server.models)
        assert client.chat("fake-chat", MESSAGES, stream=True).read().text == "Echo: there hello"
    assert [r.path for r in server.requests] == ["/v1/models", "/v1/chat/completions"]
    assert trap.connections() == 0
    assert Settings(direct=True) != Settings() and "direct=True" in repr(Settings(direct=True))
    assert Settings(direct=True).with_overrides(api_key=KEY).direct


def test_direct_control_the_trap_catches_normal_settings(trap: Listener, server: FakeOpenAIServer) -> None:
    """Control: without ``direct`` the same call goes to the proxy trap (and fails there)."""
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0, connect_timeout=1,
                      read_timeout=0.3) as client, pytest.raises(APIConnectionError):
        client.list_models()
    assert trap.connections() == 1 and server.requests == []
