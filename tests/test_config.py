"""Settings (``jupyter_openai.config``): environment names, precedence, validation, key masking, the
headers that reach the wire, the missing-key guard, and proxies / CA bundles through requests'
``trust_env``.

Wire checks use the real client against the test server on 127.0.0.1 (``server.requests`` records
what arrived). Proxies are checked offline: ``HTTP_PROXY`` pointing at the test server makes it act
as the proxy (it receives the absolute-URI request for ``http://example.invalid/v1/...``), and
``HTTP_PROXY`` pointing at a closed port fails unless ``NO_PROXY`` exempts the host.
``REQUESTS_CA_BUNDLE`` is checked against a local HTTPS server whose self-signed certificate is made
with the ``openssl`` command (skipped when that command is missing).
"""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import jupyter_openai
from jupyter_openai.client import USER_AGENT, OpenAIClient
from jupyter_openai.config import (
    DEFAULT_BASE_URL,
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_RETRIES,
    DEFAULT_READ_TIMEOUT,
    MISSING_KEY_HELP,
    SecretStr,
    Settings,
    is_openai_host,
    mask_key,
    reveal,
)
from jupyter_openai.errors import APIConnectionError, AuthenticationError, ConfigurationError
from tests.servers.fake import TEST_KEY, FakeOpenAIServer, closed_port
from tests.support.sockets import Listener

KEY = "sk-proj-" + "k3y" * 10
MESSAGES = [{"role": "user", "content": "hello there"}]
PROXY_VARS = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY",
              "no_proxy", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in PROXY_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def nothing(_: float) -> None:
    """A ``sleep`` that does not sleep (retries stay fast)."""


# ---------------------------------------------------------------- environment and precedence

def test_defaults_without_environment() -> None:
    s = Settings.from_env()
    assert (s.api_key, s.organization, s.project, s.base_url) == (None, None, None, DEFAULT_BASE_URL)
    assert (s.connect_timeout, s.read_timeout, s.max_retries) == (DEFAULT_CONNECT_TIMEOUT, DEFAULT_READ_TIMEOUT,
                                                                   DEFAULT_MAX_RETRIES)
    assert DEFAULT_BASE_URL == "https://api.openai.com/v1"
    assert (DEFAULT_CONNECT_TIMEOUT, DEFAULT_MAX_RETRIES) == (5.0, 2)


@pytest.mark.parametrize("env, field, value", [
    ("OPENAI_API_KEY", "api_key", KEY),
    ("OPENAI_ORG_ID", "organization", "org-abc"),
    ("OPENAI_ORGANIZATION", "organization", "org-old"),
    ("OPENAI_PROJECT_ID", "project", "proj_123"),
    ("OPENAI_BASE_URL", "base_url", "http://127.0.0.1:8000/v1"),
])
def test_each_environment_variable(monkeypatch: pytest.MonkeyPatch, env: str, field: str, value: str) -> None:
    monkeypatch.setenv(env, value)
    got = getattr(Settings.from_env(), field)
    assert reveal(got) == value
    assert reveal(getattr(Settings.from_env(env={env: value}), field)) == value  # an explicit mapping works too


def test_org_id_wins_over_older_organization_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-old")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-new")
    assert Settings.from_env().organization == "org-new"


@pytest.mark.parametrize("blank", ["", "   ", "\t\n"])
def test_blank_environment_values_are_ignored(monkeypatch: pytest.MonkeyPatch, blank: str) -> None:
    for name in ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "OPENAI_BASE_URL"):
        monkeypatch.setenv(name, blank)
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-old")
    s = Settings.from_env()
    assert (s.api_key, s.organization, s.project, s.base_url) == (None, "org-old", None, DEFAULT_BASE_URL)


def test_environment_values_are_stripped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", f"  {KEY}\n")
    monkeypatch.setenv("OPENAI_BASE_URL", " http://127.0.0.1:9/v1/ ")
    s = Settings.from_env()
    assert reveal(s.api_key) == KEY and s.base_url == "http://127.0.0.1:9/v1"


def test_arguments_beat_environment_which_beats_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env-key-0123456789")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    s = Settings.from_env(api_key=KEY, organization="org-arg", base_url="http://arg.example/v1", read_timeout=7)
    assert (reveal(s.api_key), s.organization, s.project, s.base_url, s.read_timeout) == (
        KEY, "org-arg", "proj-env", "http://arg.example/v1", 7)
    assert s.connect_timeout == DEFAULT_CONNECT_TIMEOUT  # default where neither says anything


def test_none_and_empty_arguments_fall_back_to_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-env")
    s = Settings.from_env(api_key=None, project="", max_retries=None)
    assert (reveal(s.api_key), s.project, s.max_retries) == (KEY, "proj-env", DEFAULT_MAX_RETRIES)


def test_client_keyword_arguments_beat_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://env.example/v1")
    client = OpenAIClient(base_url="http://arg.example/v1", max_retries=0)
    assert client.settings.base_url == "http://arg.example/v1" and client.settings.max_retries == 0


def test_client_settings_object_with_overrides() -> None:
    base = Settings(api_key=KEY, base_url="http://a.example/v1", organization="org-a")
    client = OpenAIClient(base, organization="org-b", project=None)
    assert client.settings.organization == "org-b" and client.settings.base_url == "http://a.example/v1"
    assert base.organization == "org-a"  # Settings are immutable


@pytest.mark.parametrize("call", [lambda: Settings.from_env(api_kye="x"), lambda: Settings().with_overrides(tmeout=1),
                                  lambda: OpenAIClient(timeout=3)])
def test_unknown_settings_are_refused(call: Any) -> None:
    with pytest.raises(ConfigurationError, match="unknown setting"):
        call()


# ---------------------------------------------------------------- validation

@pytest.mark.parametrize("url, expected", [
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
    ("https://example.com/openai/v1/", "https://example.com/openai/v1"),
    ("  http://localhost:11434/v1//  ", "http://localhost:11434/v1"),
    ("HTTP://HOST.example/v1", "HTTP://HOST.example/v1"),
])
def test_valid_base_urls(url: str, expected: str) -> None:
    assert Settings(base_url=url).base_url.lower() == expected.lower()


@pytest.mark.parametrize("url", ["api.openai.com/v1", "localhost:8000", "ftp://host/v1", "http://", "", "   ",
                                 "file:///etc/passwd", None, 8000])
def test_invalid_base_urls(url: Any) -> None:
    with pytest.raises(ConfigurationError, match="base_url"):
        Settings(base_url=url)


def test_invalid_base_url_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "localhost:8000/v1")
    with pytest.raises(ConfigurationError, match="base_url must be an http"):
        OpenAIClient()


@pytest.mark.parametrize("field, value", [
    ("connect_timeout", 0), ("connect_timeout", -1), ("read_timeout", 0.0), ("read_timeout", float("nan")),
    ("read_timeout", float("inf")), ("connect_timeout", "5"), ("read_timeout", True), ("max_retries", -1),
    ("max_retries", 1.5), ("max_retries", True), ("max_retries", "2"),
])
def test_invalid_timeouts_and_retries(field: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=field.split("_")[-1] if field == "max_retries" else "timeout"):
        Settings(**{field: value})


def test_zero_retries_and_small_timeouts_are_fine() -> None:
    s = Settings(max_retries=0, connect_timeout=0.01, read_timeout=1)
    assert (s.max_retries, s.connect_timeout, s.read_timeout) == (0, 0.01, 1)


# ---------------------------------------------------------------- masking

@pytest.mark.parametrize("key, shown", [
    (None, "<not set>"), ("", "<not set>"), ("short-key", "<set: ***>"),
    ("sk-proj-abcdefghijklmnopWXYZ", "<set: sk-…WXYZ>"), ("abcdefghijklmnopqrstuvwxyz", "<set: …wxyz>"),
])
def test_mask_key(key: str | None, shown: str) -> None:
    assert mask_key(key) == shown


def test_secret_str_is_masked_everywhere_but_reveal() -> None:
    secret = SecretStr(KEY)  # the old name of jupyter_openai.secret.Secret (see test_secrets.py)
    masked = mask_key(KEY)
    assert repr(secret) == str(secret) == f"{secret}" == f"{secret}" == format(secret, "") == masked
    assert f"{secret!r}" == masked and KEY not in repr([secret]) and KEY not in repr({"k": secret})
    assert secret.reveal() == KEY and type(secret.reveal()) is str and reveal(secret) == KEY
    assert secret == SecretStr(KEY) and not isinstance(secret, str)  # no longer a str underneath
    assert reveal(None) is None and reveal("plain") == "plain"


def test_settings_repr_and_key_type() -> None:
    s = Settings(api_key=KEY, organization="org-x")
    assert isinstance(s.api_key, SecretStr)
    assert KEY not in repr(s) and KEY not in str(s) and KEY not in f"{s}"
    assert "<set: sk-…" in repr(s) and "org-x" in repr(s)
    assert "api_key=None" in repr(Settings())
    twice = Settings(api_key=s.api_key)  # re-wrapping a SecretStr keeps the real value
    assert reveal(twice.api_key) == KEY


def test_headers_only_when_set() -> None:
    bare = Settings().headers("ua/1")
    assert bare == {"User-Agent": "ua/1", "Accept": "application/json"}
    settings = Settings(api_key=KEY, organization="org-1", project="proj-1")
    full = settings.headers("ua/1")
    assert reveal(full["Authorization"]) == f"Bearer {KEY}"
    assert KEY not in repr(full), "the header value must stay masked in reprs (tracebacks with locals)"
    with pytest.raises(TypeError):
        json.dumps(full)  # the key is not a string: it cannot be serialized by accident
    assert KEY not in json.dumps(full, default=str)
    assert (full["OpenAI-Organization"], full["OpenAI-Project"]) == ("org-1", "proj-1")
    wire = settings.wire_headers("ua/1")  # made at send time only: plain str values, masked reprs
    assert wire["Authorization"] == f"Bearer {KEY}" and all(isinstance(v, str) for v in wire.values())
    assert KEY not in repr(wire)


# ---------------------------------------------------------------- on the wire

def test_default_headers_on_the_wire(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    client.list_models()
    headers = server.requests[-1].headers
    assert headers["authorization"] == f"Bearer {TEST_KEY}"
    assert "openai-organization" not in headers and "openai-project" not in headers
    assert headers["user-agent"] == USER_AGENT
    assert headers["user-agent"].startswith(f"jupyter-openai/{jupyter_openai.__version__} ")
    assert headers["accept"] == "application/json"


def test_post_and_stream_headers_on_the_wire(client: OpenAIClient, server: FakeOpenAIServer) -> None:
    client.chat("fake-chat", MESSAGES)
    assert server.requests[-1].headers["content-type"] == "application/json"
    client.chat("fake-chat", MESSAGES, stream=True).read()
    assert server.requests[-1].headers["accept"] == "text/event-stream"


def test_environment_alone_configures_the_client(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", TEST_KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url)
    monkeypatch.setenv("OPENAI_ORGANIZATION", "org-older-name")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj_env")
    with OpenAIClient() as client:
        assert [m["id"] for m in client.list_models()][:1] == ["fake-chat"]
    headers = server.requests[-1].headers
    assert headers["authorization"] == f"Bearer {TEST_KEY}"
    assert headers["openai-organization"] == "org-older-name" and headers["openai-project"] == "proj_env"


def test_arguments_beat_environment_on_the_wire(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-env-key-000000")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # nothing there: must not be used
    monkeypatch.setenv("OPENAI_ORG_ID", "org-env")
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url, organization="org-arg", project="proj-arg") as client:
        client.list_models()
    headers = server.requests[-1].headers
    assert headers["openai-organization"] == "org-arg" and headers["openai-project"] == "proj-arg"
    assert headers["authorization"] == f"Bearer {TEST_KEY}"


def test_environment_key_is_used_when_no_argument(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-env-key-000000")
    with OpenAIClient(base_url=server.url) as client, pytest.raises(AuthenticationError):
        client.list_models()
    assert server.requests[-1].headers["authorization"] == "Bearer sk-wrong-env-key-000000"


def test_local_server_without_key_works(no_proxy_env: pytest.MonkeyPatch) -> None:
    with FakeOpenAIServer(api_key=None) as open_server, OpenAIClient(base_url=open_server.url) as client:
        assert client.settings.api_key is None
        assert client.chat("fake-chat", MESSAGES).text == "Echo: there hello"
        assert client.completion("davinci-002", "a b", stream=True).read().text == "Echo: b a"
        assert all("authorization" not in r.headers for r in open_server.requests)


# ---------------------------------------------------------------- missing key against OpenAI

@pytest.fixture
def trap(no_proxy_env: pytest.MonkeyPatch) -> Iterator[Listener]:
    """Route every proxied request to a socket that counts connections: any request would show up."""
    listener = Listener()
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        no_proxy_env.setenv(name, f"http://127.0.0.1:{listener.port}")
    yield listener
    listener.sock.close()


@pytest.mark.parametrize("action", ["list_models", "retrieve_model", "completion", "chat", "chat_stream"])
@pytest.mark.parametrize("base_url", [None, "https://api.openai.com/v1/", "https://API.OpenAI.com/v1",
                                      "https://eu.api.openai.com/v1"])
def test_missing_key_against_openai_fails_before_any_request(trap: Listener, base_url: str | None,
                                                             action: str) -> None:
    client = OpenAIClient(base_url=base_url, max_retries=0, connect_timeout=0.5, read_timeout=0.5)
    calls = {
        "list_models": lambda: client.list_models(),
        "retrieve_model": lambda: client.retrieve_model("gpt-4o-mini"),
        "completion": lambda: client.completion("gpt-3.5-turbo-instruct", "hi"),
        "chat": lambda: client.chat("gpt-4o-mini", MESSAGES),
        "chat_stream": lambda: client.chat("gpt-4o-mini", MESSAGES, stream=True),
    }
    with pytest.raises(ConfigurationError) as info:
        calls[action]()
    message = str(info.value)
    assert message == MISSING_KEY_HELP
    assert "OPENAI_API_KEY" in message and "ipython_config.py" in message
    assert "notebook" in message and "%env" in message and "not paste" in message.lower()
    assert "\n" not in message
    assert trap.connections() == 0


def test_the_trap_does_catch_requests(trap: Listener) -> None:
    """Control for the test above: with a key, the same call does go out (to the trap)."""
    client = OpenAIClient(api_key=KEY, max_retries=0, connect_timeout=0.5, read_timeout=0.3)
    with pytest.raises(APIConnectionError):
        client.list_models()
    assert trap.connections() == 1


@pytest.mark.parametrize("url, expected", [
    ("https://api.openai.com/v1", True), ("https://openai.com", True), ("https://x.openai.com:443/v1", True),
    ("https://api.openai.com.evil.example/v1", False), ("https://notopenai.com/v1", False),
    ("http://127.0.0.1:8000/v1", False), ("https://my-resource.openai.azure.com/openai", False),
])
def test_is_openai_host(url: str, expected: bool) -> None:
    assert is_openai_host(url) is expected
    if not expected:
        Settings(base_url=url).require_key()  # no key needed elsewhere


# ---------------------------------------------------------------- proxies and CA bundles (trust_env)

def test_http_proxy_is_honoured(no_proxy_env: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{server.port}")
    with OpenAIClient(api_key=TEST_KEY, base_url="http://example.invalid/v1", max_retries=0) as client:
        assert len(client.list_models()) == len(server.models)
        assert client.chat("fake-chat", MESSAGES, stream=True).read().text == "Echo: there hello"
    first, second = server.requests
    assert first.path == "http://example.invalid/v1/models"  # an absolute URI: the proxy form
    assert first.headers["host"] == "example.invalid"
    assert second.path == "http://example.invalid/v1/chat/completions"


def test_lowercase_proxy_variable_is_honoured(no_proxy_env: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    no_proxy_env.setenv("http_proxy", f"http://127.0.0.1:{server.port}")
    with OpenAIClient(api_key=TEST_KEY, base_url="http://example.invalid/v1", max_retries=0) as client:
        client.list_models()
    assert server.requests[-1].path.startswith("http://example.invalid/")


def test_dead_proxy_fails_clearly_and_no_proxy_bypasses_it(no_proxy_env: pytest.MonkeyPatch,
                                                           server: FakeOpenAIServer) -> None:
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{closed_port()}")
    client = OpenAIClient(api_key=TEST_KEY, base_url=server.url, max_retries=0, sleep=nothing)
    with pytest.raises(APIConnectionError) as info:
        client.list_models()
    assert "proxy" in str(info.value) and "Connection refused" in str(info.value)
    assert server.requests == []
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    assert len(client.list_models()) == len(server.models)
    assert server.requests[-1].path == "/v1/models"


def _make_certificate(folder: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


class _ModelsHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        body = json.dumps({"object": "list", "data": [{"id": "tls-model", "object": "model"}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:  # failed handshakes are expected
        pass


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    cert, key = _make_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    httpd = _QuietServer(("127.0.0.1", 0), _ModelsHandler)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{httpd.server_address[1]}/v1", cert
    httpd.shutdown()
    httpd.server_close()


def test_requests_ca_bundle_is_honoured(no_proxy_env: pytest.MonkeyPatch, tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    client = OpenAIClient(api_key=KEY, base_url=url, max_retries=0, connect_timeout=2, read_timeout=2)
    with pytest.raises(APIConnectionError, match="(?i)certificate"):
        client.list_models()  # self-signed: refused without the bundle
    no_proxy_env.setenv("REQUESTS_CA_BUNDLE", str(cert))
    assert [m["id"] for m in client.list_models()] == ["tls-model"]
