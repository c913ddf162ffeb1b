"""Tests of the Batch API engine (``via="openai-batch"``) and the request file (``via="jsonl"``), over real
HTTP to the test server's ``/v1/files`` and ``/v1/batches``: upload, status transitions, output and error
files merged by ``custom_id``, failed lines, splitting, resuming a kept batch id, cancelling."""

from __future__ import annotations

import _thread
import json
import sqlite3
import threading
import time
from pathlib import Path

import pandas as pd
import pytest

from jupyter_openai.batch.cache import BatchCache
from jupyter_openai.batch.openai_batch import cancel_batch, split, start
from jupyter_openai.batch.run import run_batch
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import NotFoundError
from jupyter_openai.session.log import SessionLog
from tests.servers.fake import TEST_KEY, FakeOpenAIServer
from tests.support.checks import checker, oneof_to_anyof, responses_components


@pytest.fixture
def frame() -> pd.DataFrame:
    return pd.DataFrame({"text": ["one two", "three four", "five"]}, index=["a", "b", "c"])


def _paths(server: FakeOpenAIServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in server.requests]


def _uploaded(server: FakeOpenAIServer) -> list[dict]:
    """The request lines of the input files the server received."""
    store = server.batches
    return [json.loads(line) for file_id, entry in store.files.items() if entry["purpose"] == "batch"
            for line in store.contents[file_id].splitlines()]


def test_a_batch_is_uploaded_polled_and_merged_by_custom_id(server: FakeOpenAIServer, client: OpenAIClient,
                                                            frame: pd.DataFrame, tmp_path: Path) -> None:
    server.batches.fail.add("b")
    log = SessionLog()
    out = run_batch(frame, "Say {text}", model="fake-chat", client=client, via="openai-batch", poll_interval=0.01,
                    cache=tmp_path / "c.sqlite", progress=False, log=log, max_tokens=10)
    assert list(out.index) == ["a", "b", "c"]  # the output file lists lines in reverse: merged by custom_id
    assert list(out.answer) == ["Echo: two one Say", "", "Echo: five Say"]
    assert list(out.status) == ["ok", "error", "ok"] and "500" in out.error["b"]
    assert list(out.total_tokens) == [7, pd.NA, 5] or out.total_tokens.isna().tolist() == [False, True, False]
    paths = _paths(server)
    assert paths[:2] == ["POST /v1/files", "POST /v1/batches"]
    assert paths.count("GET /v1/batches/" + log[-1]["batch_id"]) == 3  # validating -> ... -> completed
    upload = server.requests[0]
    assert b'name="purpose"' in upload.raw_body and TEST_KEY.encode() not in upload.raw_body
    lines = _uploaded(server)
    assert [line["custom_id"] for line in lines] == ["a", "b", "c"]
    assert lines[0] == {"custom_id": "a", "method": "POST", "url": "/v1/chat/completions",
                        "body": {"model": "fake-chat", "messages": [{"role": "user", "content": "Say one two"}],
                                 "max_tokens": 10}}
    created = server.requests[1].body
    assert created["endpoint"] == "/v1/chat/completions" and created["completion_window"] == "24h"
    rows = [r for r in log if r["source"] == "batch"]
    assert sorted(r["row_key"] for r in rows) == ["a", "b", "c"]
    assert {r["batch_id"] for r in rows} == {log[-1]["batch_id"]} and log[-1]["batch_id"].startswith("batch_fake")
    server.reset()  # run again: the ok rows come from the cache, only "b" is sent, in a new batch
    again = run_batch(frame, "Say {text}", model="fake-chat", client=client, via="openai-batch", poll_interval=0.01,
                      cache=tmp_path / "c.sqlite", progress=False, log=log, max_tokens=10)
    assert list(again.status) == ["ok"] * 3 and list(again.cached) == [True, False, True]
    lines = _uploaded(server)
    assert [line["custom_id"] for line in lines] == ["b"]


def test_a_batch_that_fails_validation_gives_every_row_its_reason(server: FakeOpenAIServer,
                                                                   client: OpenAIClient) -> None:
    out = run_batch([{"t": "x"}], "{t}", model="fake-chat", endpoint="responses", client=client, via="openai-batch",
                    poll_interval=0.01, cache=None, progress=False, log=SessionLog())
    assert out[0]["status"] == "ok" and out[0]["answer"] == "Echo: x"  # the responses endpoint works too
    batch = start(client, "/v1/chat/completions", b'{"custom_id": "1", "url": "/v1/completions"}\n')
    seen = client.api_request("GET", f"/batches/{batch['id']}").json()
    assert seen["status"] == "failed" and seen["errors"]["data"][0]["code"] == "mismatched_endpoint"


def test_a_kept_batch_id_is_resumed_instead_of_starting_again(server: FakeOpenAIServer, client: OpenAIClient,
                                                              frame: pd.DataFrame, tmp_path: Path) -> None:
    cache = BatchCache(tmp_path / "c.sqlite")

    def kept_jobs() -> int:
        with sqlite3.connect(tmp_path / "c.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM jobs").fetchone()[0]

    def interrupt_while_polling() -> None:  # Ctrl-C once the batch is created and its id kept
        deadline = time.monotonic() + 10
        while not kept_jobs() and time.monotonic() < deadline:
            time.sleep(0.005)
        _thread.interrupt_main()

    threading.Thread(target=interrupt_while_polling, daemon=True).start()
    first = run_batch(frame, "{text}", model="fake-chat", client=client, via="openai-batch", cache=cache,
                      poll_interval=30, progress=False, log=SessionLog(), on_line=None)
    assert set(first.status) == {"not run"}
    assert _paths(server).count("POST /v1/batches") == 1
    remote = next(iter(server.batches.batches))
    server.requests.clear()
    again = run_batch(frame, "{text}", model="fake-chat", client=client, via="openai-batch", cache=cache,
                      poll_interval=0.01, progress=False, log=SessionLog())
    assert list(again.status) == ["ok"] * 3
    assert "POST /v1/batches" not in _paths(server) and f"GET /v1/batches/{remote}" in _paths(server)


def test_cancel_stops_a_batch(server: FakeOpenAIServer, client: OpenAIClient) -> None:
    batch = start(client, "/v1/chat/completions", b'{"custom_id": "1", "url": "/v1/chat/completions", "body": {}}\n')
    assert cancel_batch(client, batch["id"])["status"] == "cancelling"
    assert client.api_request("GET", f"/batches/{batch['id']}").json()["status"] == "cancelled"
    with pytest.raises(NotFoundError):
        cancel_batch(client, "batch_nope")


def test_split_keeps_files_under_both_limits() -> None:
    lines = [(i, b"x" * 10 + b"\n") for i in range(25)]
    parts = list(split(iter(lines), max_lines=10, max_bytes=10**6))
    assert [len(rows) for rows, _ in parts] == [10, 10, 5]
    parts = list(split(iter(lines), max_lines=100, max_bytes=55))
    assert [len(rows) for rows, _ in parts] == [5, 5, 5, 5, 5] and all(len(d) <= 55 for _, d in parts)
    assert [i for rows, _ in parts for i in rows] == list(range(25))


def test_jsonl_writes_the_request_file_for_vllm_run_batch(server: FakeOpenAIServer, client: OpenAIClient,
                                                          frame: pd.DataFrame, tmp_path: Path) -> None:
    path = run_batch(frame, "{text}", model="fake-chat", client=client, via="jsonl", jsonl_path=str(tmp_path / "r"),
                     cache=None, system="Be brief.", temperature=0)
    lines = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert [line["custom_id"] for line in lines] == ["a", "b", "c"]
    assert lines[2]["body"] == {"model": "fake-chat", "temperature": 0, "max_tokens": 256,
                                "messages": [{"role": "system", "content": "Be brief."},
                                             {"role": "user", "content": "five"}]}
    assert server.requests == []


def test_rows_cost_half_the_direct_price(server: FakeOpenAIServer, client: OpenAIClient, frame: pd.DataFrame) -> None:
    """GUIDE 13: the Batch API is half the price of the same calls made directly."""
    from jupyter_openai.session import cost

    cost.pricing.set_table({"fake-chat": (1.0, 2.0)})
    try:
        out = run_batch(frame, "Say {text}", model="fake-chat", client=client, via="openai-batch", poll_interval=0.01,
                        cache=None, progress=False, log=SessionLog(), max_tokens=10)
    finally:
        cost.pricing.set_table(None)
    for _, row in out.iterrows():
        assert row.cost == pytest.approx((row.prompt_tokens * 1.0 + row.completion_tokens * 2.0) / 2e6)


@pytest.mark.parametrize("store", [None, True])
def test_responses_lines_are_not_stored_unless_asked(server: FakeOpenAIServer, client: OpenAIClient,
                                                     frame: pd.DataFrame, store: bool | None) -> None:
    """Before: Batch API lines for /v1/responses had no store field, so OpenAI kept every answer."""
    extra = {} if store is None else {"store": store}
    out = run_batch(frame, "{text}", model="fake-chat", endpoint="responses", client=client, via="openai-batch",
                    poll_interval=0.05, cache=None, progress=False, **extra)
    assert list(out.status) == ["ok"] * 3
    upload = next(r for r in server.requests if r.path == "/v1/files")
    lines = [json.loads(line) for line in upload.raw_body.decode().splitlines() if line.startswith('{"custom_id"')]
    check = checker(oneof_to_anyof(responses_components()))
    assert len(lines) == 3
    for line in lines:
        check("CreateResponse", line["body"])
        assert line["url"] == "/v1/responses" and line["body"]["store"] is (store is True)
