"""Tests of the batch cache: keys from the request alone (never headers or the key), rows kept across
connections and crashes, jobs, the file's mode."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from jupyter_openai.batch.cache import ENV_CACHE, BatchCache, default_path, request_key
from tests.servers.fake import TEST_KEY, FakeOpenAIServer

BODY = {"model": "m", "messages": [{"role": "user", "content": "hé"}], "max_tokens": 5}


def test_the_key_depends_on_the_request_only() -> None:
    key = request_key("api.openai.com", "/chat/completions", BODY)
    assert len(key) == 64 and key == request_key("api.openai.com", "/chat/completions", dict(reversed(BODY.items())))
    assert key != request_key("127.0.0.1:8000", "/chat/completions", BODY)
    assert key != request_key("api.openai.com", "/responses", BODY)
    assert key != request_key("api.openai.com", "/chat/completions", {**BODY, "max_tokens": 6})


def test_rows_and_jobs_survive_a_new_connection(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "c.sqlite"
    with BatchCache(path) as cache:
        cache.put("k1", {"answer": "é", "status": "ok"})
        cache.put_job("file-hash", {"id": "batch_1"})
    assert (path.stat().st_mode & 0o777) == 0o600
    with BatchCache(path) as cache:
        assert cache.get("k1") == {"answer": "é", "status": "ok"} and cache.get("nope") is None
        assert cache.get_many(["k1", "k2"]) == {"k1": {"answer": "é", "status": "ok"}}
        assert cache.job("file-hash") == {"id": "batch_1"} and len(cache) == 1
        cache.put_job("file-hash", None)
        assert cache.job("file-hash") is None
        cache.clear()
        assert len(cache) == 0


def test_a_row_is_on_disk_as_soon_as_it_is_put(tmp_path: Path) -> None:
    """A process killed right after put() keeps the row (each put is committed)."""
    path = tmp_path / "c.sqlite"
    code = ("import os, sys; from jupyter_openai.batch.cache import BatchCache; "
            f"c = BatchCache({str(path)!r}); c.put('k', {{'answer': 'x'}}); os._exit(9)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    assert subprocess.run([sys.executable, "-c", code], env=env, timeout=60).returncode == 9
    assert BatchCache(path).get("k") == {"answer": "x"}


def test_many_keys_are_read_in_chunks(tmp_path: Path) -> None:
    with BatchCache(tmp_path / "c") as cache:
        for i in range(1200):
            cache.put(f"k{i}", {"i": i})
        found = cache.get_many(f"k{i}" for i in range(0, 2400, 2))
    assert len(found) == 600 and found["k1198"] == {"i": 1198}


def test_the_default_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "mine.sqlite"))
    assert default_path() == str(tmp_path / "mine.sqlite")
    monkeypatch.delenv(ENV_CACHE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == str(tmp_path / "jupyter_openai" / "batch.sqlite")


def test_where_names_the_base_urls_path_and_query_never_its_password() -> None:
    from jupyter_openai.batch.job import where

    assert where("http://127.0.0.1:8000/p/alpha/v1/") == ("127.0.0.1:8000", "/p/alpha/v1")
    assert where("https://me:s3cret@GW.example.com/openai/deployments/x?api-version=2025-01-01") == (
        "gw.example.com", "/openai/deployments/x?api-version=2025-01-01")
    assert where("https://api.openai.com/v1") == ("api.openai.com", "/v1")


def test_two_gateway_routes_on_one_host_never_share_answers(server: FakeOpenAIServer, tmp_path: Path) -> None:
    """A gateway that routes by path (``/p/alpha/v1`` and ``/p/beta/v1``: two models behind one host):
    what one route answered is not another's cached answer."""
    from jupyter_openai.batch.run import run_batch
    from jupyter_openai.client import OpenAIClient
    from jupyter_openai.session.log import SessionLog

    rows = [{"q": "one two"}, {"q": "three"}]
    base = server.url.removesuffix("/v1")
    path = tmp_path / "c.sqlite"
    answers = {}
    for route in ("alpha", "beta", "alpha"):
        server.reset()
        with OpenAIClient(api_key=TEST_KEY, base_url=f"{base}/p/{route}/v1", max_retries=0) as client:
            out = run_batch(rows, "{q}", model="fake-chat", client=client, cache=path, progress=False,
                            log=SessionLog())
        answers.setdefault(route, []).append(out)
        sent = [r.path for r in server.requests]
        if len(answers[route]) == 1:  # the route's first run: every row sent to that route
            assert sent == [f"/p/{route}/v1/chat/completions"] * 2 and not any(r["cached"] for r in out)
        else:  # its second run: all from the cache
            assert sent == [] and all(r["cached"] for r in out)
    assert [r["status"] for r in answers["beta"][0]] == ["ok", "ok"]
