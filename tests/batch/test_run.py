"""Tests of :func:`jupyter_openai.batch.run.run_batch` with the local engine, over real HTTP to the test server:
the template, the result's shape and order, failed rows, the cache (resume sends only what is missing),
Ctrl-C, rate limits (429, Retry-After, x-ratelimit-*), the connection pool, structured output, the log."""

from __future__ import annotations

import _thread
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from jupyter_openai.batch.cache import BatchCache
from jupyter_openai.batch.run import RESULT_COLUMNS, render, run_batch
from jupyter_openai.batch.threads import RateGate, parse_reset
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import ConfigurationError
from jupyter_openai.session.log import SessionLog
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.servers.fake.batches import RateLimit

REVIEWS = ["great little film", "boring and far too long", "I laughed a lot", "the sound was bad", "fine"]


def _client(server: FakeOpenAIServer, **kwargs: Any) -> OpenAIClient:
    return OpenAIClient(api_key=TEST_KEY, base_url=server.url, read_timeout=10, connect_timeout=2, **kwargs)


def _chat_prompts(server: FakeOpenAIServer) -> list[str]:
    return [r.body["messages"][-1]["content"] for r in server.requests if r.path.endswith("/chat/completions")]


def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.005)


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"text": REVIEWS, "stars": [5, 1, 4, 2, 3]}, index=[f"r{i}" for i in range(5)])


# == the template ========================================================================
def test_render_fills_columns_and_keeps_doubled_braces() -> None:
    assert render("{text} ({stars}*) {{json}}", {"text": "ok", "stars": 3}) == "ok (3*) {json}"
    with pytest.raises(ConfigurationError, match=r"\{title\}, which is not a column"):
        render("{title}", {"text": "ok"})
    with pytest.raises(ConfigurationError, match="cannot fill"):
        render("{text", {"text": "ok"})


# == shape, order, errors ================================================================
def test_a_dataframe_comes_back_in_order_with_the_result_columns(server: FakeOpenAIServer, frame: pd.DataFrame,
                                                                 tmp_path: Path) -> None:
    log = SessionLog()
    with _client(server) as client:
        out = run_batch(frame, "Review ({stars}): {text}", model="fake-chat", client=client, log=log,
                        cache=tmp_path / "c.sqlite", concurrency=3, max_tokens=30, progress=False)
    assert list(out.index) == list(frame.index)
    assert list(out.columns) == ["text", "stars", *RESULT_COLUMNS]
    for key, row in out.iterrows():
        words = f"Review ({row.stars}): {row.text}".split()
        assert row.answer == "Echo: " + " ".join(reversed(words)), key
        assert row.status == "ok" and row.error is None and not row.cached
        assert row.total_tokens == row.prompt_tokens + row.completion_tokens > 0
        assert row.latency > 0 and row.cost is None
    assert sorted(_chat_prompts(server)) == sorted(f"Review ({s}): {t}" for t, s in zip(REVIEWS, frame.stars,
                                                                                       strict=True))
    assert all(r.body["max_tokens"] == 30 and "stream" not in r.body for r in server.requests)
    rows = [r for r in log if r["source"] == "batch"]
    assert sorted(r["row_key"] for r in rows) == list(frame.index)
    assert len({r["batch_id"] for r in rows}) == 1 and rows[0]["batch_id"].startswith("batch_")
    summary = log[-1]
    assert summary["source"] == "batch-summary" and summary["batch_id"] == rows[0]["batch_id"]
    assert summary["completion"].startswith("5 rows: 5 ok (0 from the cache), 0 errors")
    assert summary["total_tokens"] == int(out.total_tokens.sum())
    assert pd.DataFrame(log).shape[0] == 6


def test_a_list_of_dicts_gives_a_list_of_dicts(server: FakeOpenAIServer) -> None:
    with _client(server) as client:
        out = run_batch([{"q": "one two"}, {"q": "three"}], "{q}", model="fake-chat", client=client, cache=None,
                        progress=False, log=SessionLog())
    assert [r["answer"] for r in out] == ["Echo: two one", "Echo: three"]
    assert out[0]["q"] == "one two" and out[0]["status"] == "ok"


def test_a_failed_row_keeps_its_error_and_the_batch_goes_on(server: FakeOpenAIServer, frame: pd.DataFrame) -> None:
    server.add_fault(path="/chat", status=400, message="this row is refused")
    with _client(server) as client:
        out = run_batch(frame, "{text}", model="fake-chat", client=client, cache=None, concurrency=1,
                        progress=False, log=SessionLog())
    assert list(out.status).count("error") == 1 and list(out.status).count("ok") == 4
    bad = out[out.status == "error"].iloc[0]
    assert "400" in bad.error and "this row is refused" in bad.error and bad.answer == ""


def test_a_row_that_cannot_fill_the_template_is_an_error_row_and_sends_nothing(server: FakeOpenAIServer) -> None:
    with _client(server) as client:
        out = run_batch([{"a": "x"}, {"b": "y"}, {"a": "  "}], "{a}", model="fake-chat", client=client, cache=None,
                        progress=False, log=SessionLog())
    assert [r["status"] for r in out] == ["ok", "error", "error"]
    assert "not a column" in out[1]["error"] and "empty" in out[2]["error"]
    assert len(server.requests) == 1


def test_mistakes_in_the_call_itself_are_one_configuration_error(server: FakeOpenAIServer) -> None:
    with _client(server) as client:
        for kwargs, words in (({"via": "carrier-pigeon"}, "unknown engine"), ({"concurrency": 0}, "concurrency"),
                              ({"temperature": 9}, "temperature"), ({"endpoint": "completions", "schema": {}},
                                                                    "schema")):
            with pytest.raises(ConfigurationError, match=words):
                run_batch([{"a": 1}], "{a}", model="fake-chat", client=client, cache=None, **kwargs)
        with pytest.raises(ConfigurationError, match="DataFrame or a list of dicts"):
            run_batch("not rows", "{a}", model="fake-chat", client=client, cache=None)
    assert server.requests == []


# == the cache: resume ===================================================================
def test_running_again_sends_only_the_missing_rows(server: FakeOpenAIServer, frame: pd.DataFrame,
                                                   tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    server.add_fault(path="/chat", status=500, times=3)  # one row fails its 3 attempts (max_retries=2)
    with _client(server, max_retries=2) as client:
        first = run_batch(frame, "{text}", model="fake-chat", client=client, cache=path, concurrency=1,
                          progress=False, log=SessionLog())
        assert list(first.status).count("error") == 1
        failed = first[first.status == "error"].text.iloc[0]
        server.reset()
        second = run_batch(frame, "{text}", model="fake-chat", client=client, cache=path, progress=False,
                           log=SessionLog())
        assert _chat_prompts(server) == [failed]
        assert list(second.status) == ["ok"] * 5
        assert list(second.cached) == [row != failed for row in frame.text]
        kept = second.cached.to_numpy(dtype=bool)
        assert list(second.answer[kept]) == list(first.answer[kept])
        server.reset()
        changed = run_batch(frame, "{text}", model="fake-chat", client=client, cache=path, progress=False,
                            log=SessionLog(), max_tokens=7)  # another body: another key
        assert len(server.requests) == 5 and not changed.cached.any()
        server.reset()
        run_batch(frame, "{text}", model="fake-chat", client=client, cache=None, progress=False, log=SessionLog())
        assert len(server.requests) == 5
    text = path.read_bytes()
    assert TEST_KEY.encode() not in text and b"Authorization" not in text
    assert (path.stat().st_mode & 0o777) == 0o600


def test_ctrl_c_stops_cleanly_keeps_finished_rows_and_a_rerun_sends_the_rest(make_server: Any,
                                                                             tmp_path: Path) -> None:
    server = make_server(latency=0.05)
    rows = [{"n": f"row {i}"} for i in range(40)]
    path = tmp_path / "cache.sqlite"

    def interrupt() -> None:
        _until(lambda: len(server.requests) >= 8)
        # The rows after these wait at the server until Ctrl-C is taken (its sleeps end when it stops):
        # however busy the machine, the batch does not finish before the interrupt lands (32 s of waits).
        server.add_fault(delay=1, times=None)
        _thread.interrupt_main()

    log = SessionLog()
    with _client(server) as client:
        threading.Thread(target=interrupt, daemon=True).start()
        out = run_batch(rows, "{n}", model="fake-chat", client=client, cache=path, concurrency=2, progress=False,
                        log=log, on_line=None)
        done = [r for r in out if r["status"] == "ok"]
        assert 0 < len(done) < 40
        assert all(r["status"] in ("ok", "not run", "interrupted") for r in out)
        assert log[-1]["source"] == "batch-summary" and log[-1]["status"] == "interrupted"
        assert len(BatchCache(path)) == len(done)
        server.reset()
        again = run_batch(rows, "{n}", model="fake-chat", client=client, cache=path, concurrency=4, progress=False,
                          log=log)
    assert all(r["status"] == "ok" for r in again)
    assert len(server.requests) == 40 - len(done)
    assert sorted(_chat_prompts(server)) == sorted(r["n"] for r in out if r["status"] != "ok")


# == rate limits and concurrency =========================================================
def test_parse_reset_reads_openai_durations() -> None:
    assert parse_reset("1s") == 1.0 and parse_reset("6m0s") == 360.0 and parse_reset("20ms") == 0.02
    assert parse_reset("0.5") == 0.5 and parse_reset("soon") is None and parse_reset(None) is None


def test_the_gate_halves_on_429_waits_for_the_server_and_grows_back() -> None:
    now = [100.0]
    gate = RateGate(8, clock=lambda: now[0])
    assert gate.may_start(7) == 0 and gate.may_start(8) > 0
    gate.observe(429, {"retry-after-ms": "500"})
    assert gate.limit == 4 and gate.may_start(0) == pytest.approx(0.5)
    now[0] += 0.5
    assert gate.may_start(3) == 0 and gate.may_start(4) > 0
    for _ in range(40):
        gate.observe(200, {})
    assert gate.limit == 8
    gate.observe(200, {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"})
    assert gate.may_start(0) == pytest.approx(2.0)
    gate.observe(200, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "6m0s"})
    assert gate.may_start(0) == pytest.approx(60.0)  # capped: a notebook does not sleep for minutes unasked


def test_under_a_rate_limit_no_row_is_lost(make_server: Any) -> None:
    limit = RateLimit(requests=10, window=0.25)
    server = make_server(rate_limit=limit, latency=0.01)
    rows = [{"n": f"row {i}"} for i in range(60)]
    with _client(server) as client:
        out = run_batch(rows, "{n}", model="fake-chat", client=client, cache=None, concurrency=16, progress=False,
                        log=SessionLog())
    assert [r["status"] for r in out] == ["ok"] * 60
    assert limit.admitted == 60 and limit.peak <= 10
    assert limit.rejected <= 60  # the gate pauses after each 429: at most about one burst per window


def test_the_connection_pool_holds_the_concurrency(make_server: Any) -> None:
    server = make_server(latency=0.05)
    rows = [{"n": f"row {i}"} for i in range(64)]
    with _client(server) as client:
        run_batch(rows, "{n}", model="fake-chat", client=client, cache=None, concurrency=16, progress=False,
                  log=SessionLog())
        assert client._session.get_adapter("http://")._pool_maxsize >= 16
        assert len(server._httpd.connections) <= 16  # pooled and reused: not one connection per row


def test_concurrency_runs_rows_at_once(make_server: Any) -> None:
    """Rows in flight together, seen on the server (not timed: a busy machine makes any run slower)."""
    server = make_server(latency=0.5)
    rows = [{"n": f"row {i}"} for i in range(16)]
    open_at_once: list[int] = [0]
    done = threading.Event()

    def watch() -> None:  # the most connections the server held open at once
        while not done.is_set():
            with server._lock:
                open_at_once[0] = max(open_at_once[0], len(server._connections))
            done.wait(0.005)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with _client(server) as client:
            run_batch(rows, "{n}", model="fake-chat", client=client, cache=None, concurrency=16, progress=False,
                      log=SessionLog())
    finally:
        done.set()
        watcher.join()
    assert open_at_once[0] >= 4, open_at_once  # a loop would use one kept-alive connection


# == structured output ===================================================================
SCHEMA = {"type": "object", "properties": {"label": {"type": "string"}, "score": {"type": "integer"}},
          "required": ["label"], "additionalProperties": False}


def test_a_schema_is_sent_answers_become_columns_and_invalid_ones_row_errors(server: FakeOpenAIServer) -> None:
    rows = [{"j": '{"label": "good", "score": 3}'}, {"j": '{"score": "high"}'}, {"j": "not json"}]
    said: list[str] = []
    with _client(server) as client:  # with a json_schema format the test server answers the prompt itself
        out = run_batch(rows, "{j}", model="fake-chat", schema=SCHEMA, client=client, cache=None, progress=False,
                        log=SessionLog(), on_line=said.append)
    assert said == ["Note: schema 'answer' sent in OpenAI's strict form, as the SDK's parse() does: optional score "
                    "now required and nullable"]  # once, before anything is sent
    sent = server.requests[0].body["response_format"]
    strict = {**SCHEMA, "required": ["label", "score"], "properties": {**SCHEMA["properties"],  # GUIDE 18
                                                                      "score": {"type": ["integer", "null"]}}}
    assert sent == {"type": "json_schema", "json_schema": {"name": "answer", "schema": strict, "strict": True}}
    assert [r["status"] for r in out] == ["ok", "error", "error"]
    assert (out[0]["label"], out[0]["score"]) == ("good", 3)
    assert out[1]["label"] is None and "does not match the schema" in out[1]["error"]
    assert "not JSON" in out[2]["error"]


def test_a_pydantic_model_is_a_schema_on_the_responses_endpoint(server: FakeOpenAIServer) -> None:
    pydantic = pytest.importorskip("pydantic")

    class Label(pydantic.BaseModel):
        label: str
        score: int

    with _client(server) as client:
        out = run_batch([{"j": '{"label": "bad", "score": 1}'}], "{j}", model="fake-chat", endpoint="responses",
                        schema=Label, client=client, cache=None, progress=False, log=SessionLog(), verbosity="low")
    text = server.requests[0].body["text"]
    assert text["format"]["type"] == "json_schema" and text["format"]["name"] == "Label"
    assert text["format"]["schema"]["required"] == ["label", "score"] and text["verbosity"] == "low"
    assert (out[0]["status"], out[0]["label"], out[0]["score"]) == ("ok", "bad", 1)


def test_schema_fields_become_columns_from_the_cache(server: FakeOpenAIServer, tmp_path: Path) -> None:
    from jupyter_openai.batch.run import BatchRun, Rows
    from jupyter_openai.calls.request import build_request

    base = build_request({"prompt": "-", "model": "fake-chat", "schema": SCHEMA, "stream": False})
    with _client(server) as client:
        run = BatchRun(Rows([{"a": 1}, {"a": 2}]), "{a}", base, client, cache=BatchCache(tmp_path / "c"),
                       log=SessionLog(), concurrency=1, execution_count=None, progress=False)
        run.prepare()
        run.finish(0, {"answer": json.dumps({"label": "good", "score": 4}), "status": "ok"})
        run.finish(1, {"answer": json.dumps({"label": "bad"}), "status": "ok"})
        out = run.output()
    assert [(r["label"], r["score"]) for r in out] == [("good", 4), ("bad", None)]


def test_the_dataframe_accessor_runs_the_batch(server: FakeOpenAIServer, frame: pd.DataFrame) -> None:
    import jupyter_openai.batch.run  # noqa: F401 - importing it registers the accessor

    with _client(server) as client:
        out = frame.openai.batch("{text}", model="fake-chat", client=client, cache=None, progress=False,
                                 log=SessionLog(), max_tokens=3)
    assert list(out.index) == list(frame.index) and list(out.status) == ["ok"] * 5
    assert out.answer["r1"] == "Echo: long too" and out.finish_reason["r1"] == "length"


def test_the_progress_bar_counts_rows_tokens_and_errors(server: FakeOpenAIServer, capsys: Any) -> None:
    server.add_fault(path="/chat", status=400)
    with _client(server) as client:
        run_batch([{"a": "x y"}, {"a": "z"}], "{a}", model="fake-chat", client=client, cache=None, concurrency=1,
                  log=SessionLog())
    err = capsys.readouterr()
    assert "2/2" in err.err and "errors=1" in err.err and "tokens=" in err.err and "row/s" in err.err
    assert "2 rows: 1 ok (0 from the cache), 1 errors" in err.out


def test_a_schema_on_the_real_servers(real_server: Any) -> None:
    """llama-cpp-python's server (the offline model) takes the schema as json_object + schema, llama.cpp's
    llama-server as json_schema; the grammar makes even the 135M model answer valid JSON."""
    schema = {"type": "object", "properties": {"sentiment": {"type": "string", "enum": ["positive", "negative"]}},
              "required": ["sentiment"], "additionalProperties": False}
    offline = real_server.name == "llama-cpp-python"
    with OpenAIClient(api_key=real_server.api_key, base_url=real_server.base_url, read_timeout=120) as client:
        out = run_batch([{"text": "I loved it, wonderful."}], "Positive or negative? Answer in JSON. {text}",
                        model=real_server.model, client=client, schema=schema, cache=None, progress=False,
                        log=SessionLog(), defaults={"offline": offline}, max_tokens=24, temperature=0)
    assert out[0]["status"] == "ok", out[0]["error"]
    assert out[0]["sentiment"] in ("positive", "negative") and json.loads(out[0]["answer"]) == {
        "sentiment": out[0]["sentiment"]}


def test_each_row_costs_what_its_call_was_priced(server: FakeOpenAIServer, frame: pd.DataFrame,
                                                 tmp_path: Path) -> None:
    """With a price table (US dollars per million input and output tokens) every row has its cost."""
    from jupyter_openai.session import cost

    cost.pricing.set_table({"fake-chat": (1.0, 2.0)})
    try:
        with _client(server) as client:
            out = run_batch(frame, "Review: {text}", model="fake-chat", client=client, log=SessionLog(),
                            cache=None, max_tokens=30, progress=False)
    finally:
        cost.pricing.set_table(None)
    for _, row in out.iterrows():
        assert row.cost == pytest.approx((row.prompt_tokens * 1.0 + row.completion_tokens * 2.0) / 1e6)


# == the run's columns apart from the input's and the schema's; the template checked once (issue 21) ==
def test_input_columns_named_like_the_runs_are_kept_apart_with_a_note(server: FakeOpenAIServer,
                                                                      capsys: Any) -> None:
    frame = pd.DataFrame({"question": ["one two", "three"], "answer": ["two one", "3"], "status": ["new", "old"]})
    with _client(server) as client:
        out = run_batch(frame, "{question} ({status})", model="fake-chat", client=client, cache=None,
                        progress=False, log=SessionLog())
    assert list(out.columns) == ["question", "input_answer", "input_status", *RESULT_COLUMNS]
    assert list(out.input_answer) == ["two one", "3"] and list(out.input_status) == ["new", "old"]
    assert list(out.status) == ["ok", "ok"] and out.answer.iloc[0] == "Echo: (new) two one"
    note = capsys.readouterr().out
    assert "the input's column 'answer' is in 'input_answer'; the input's column 'status' is in 'input_status'" in note
    with _client(server) as client:
        as_dicts = run_batch([{"answer": "x", "q": "hi"}], "{q}", model="fake-chat", client=client, cache=None,
                             progress=False, log=SessionLog(), on_line=None)
    assert as_dicts[0]["input_answer"] == "x" and as_dicts[0]["answer"] == "Echo: hi"


def test_schema_fields_named_like_the_runs_columns_do_not_overwrite_them(server: FakeOpenAIServer,
                                                                         tmp_path: Path) -> None:
    schema = {"type": "object", "additionalProperties": False, "required": ["answer", "status", "error", "label"],
              "properties": {name: {"type": "string"} for name in ("answer", "status", "error", "label")}}
    said: list[str] = []
    rows = [{"j": json.dumps({"answer": "42", "status": "failed", "error": "none", "label": "x"}), "label": "gold"}]
    log = SessionLog()
    with _client(server) as client:
        out = run_batch(rows * 3, "{j}", model="fake-chat", schema=schema, client=client, cache=tmp_path / "c",
                        log=log, on_line=said.append)
    row = out[0]
    assert (row["status"], row["error"], json.loads(row["answer"])["answer"]) == ("ok", None, "42")
    assert (row["answer_answer"], row["answer_status"], row["answer_error"]) == ("42", "failed", "none")
    assert (row["label"], row["answer_label"]) == ("gold", "x")
    assert log[-1]["completion"].startswith("3 rows: 3 ok") and said[0].startswith("3 rows: 3 ok")
    assert said[1] == ("Note: the schema's field 'answer' is in 'answer_answer'; the schema's field 'status' is in "
                       "'answer_status'; the schema's field 'error' is in 'answer_error'; the schema's field 'label' "
                       "is in 'answer_label' (answer, status, error … are the run's own columns)")


@pytest.mark.parametrize(("template", "words"), [
    ("Title: {title}, text: {text}", "the template names {title}, which is not a column (columns: text, stars;"),
    ("{text} {stars:>{width}}", "the template names {width}, which is not a column"),
    ("{text} {0}", "the template's field {0} is positional"),
    ("{text", "cannot fill the template"),
])
def test_a_template_naming_a_missing_column_is_one_error_before_any_request(server: FakeOpenAIServer,
                                                                            frame: pd.DataFrame, tmp_path: Path,
                                                                            template: str, words: str) -> None:
    log = SessionLog()
    with _client(server) as client:
        for via in ("local", "jsonl"):
            with pytest.raises(ConfigurationError) as info:
                run_batch(frame, template, model="fake-chat", client=client, cache=None, log=log, via=via,
                          jsonl_path=str(tmp_path / "r.jsonl"))
            assert words in str(info.value) and "\n" not in str(info.value)
    assert server.requests == [] and len(log) == 0 and not (tmp_path / "r.jsonl").exists()


def test_nan_and_none_cells_are_empty_text_with_a_note(server: FakeOpenAIServer) -> None:
    frame = pd.DataFrame({"text": ["good", None, float("nan"), "bad"], "stars": [5, None, 2, pd.NA]},
                         index=["a", "b", "c", "d"])
    said: list[str] = []
    with _client(server) as client:
        out = run_batch(frame, "{text}|{stars:>3}", model="fake-chat", client=client, cache=None, progress=False,
                        log=SessionLog(), on_line=said.append)
    prompts = sorted(_chat_prompts(server))
    assert not any("nan" in p.lower() or "none" in p.lower() or "<na>" in p.lower() for p in prompts)
    assert prompts == sorted(["good|  5.0", "|", "|  2.0", "bad|"]) or prompts == sorted(["good|  5", "|", "|  2",
                                                                                            "bad|"])
    assert list(out.status) == ["ok"] * 4
    assert said == ["Note: {text} has no value (NaN/None) in 2 row(s) (b, c): filled with empty text",
                    "Note: {stars} has no value (NaN/None) in 2 row(s) (b, d): filled with empty text"]
    assert render("[{x!r}] [{x:.2f}]", {"x": None}) == "[] []"
