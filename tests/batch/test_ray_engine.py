"""Tests of the Ray engine (``via="ray"``) on a local Ray with 2 CPUs, over real HTTP to the test servers:
rows through Ray Data and back in order, spread over two servers, cached and logged as the local engine does.
The whole module is skipped, with the reason, when Ray Data cannot be imported."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray", reason='Ray is not installed (pip install "jupyter-openai[ray]")')
pytest.importorskip("ray.data", reason="Ray Data cannot be imported")

from jupyter_openai.batch.run import run_batch  # noqa: E402
from jupyter_openai.client import OpenAIClient  # noqa: E402
from jupyter_openai.session.log import SessionLog  # noqa: E402
from tests.servers.fake import TEST_KEY, FakeOpenAIServer  # noqa: E402


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """A local Ray (2 CPUs) whose workers read the test key from their environment."""
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", TEST_KEY)  # workers inherit the driver's environment: the key is never pickled
    mp.setenv("RAY_DATA_DISABLE_PROGRESS_BARS", "1")
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    mp.setenv("RAY_agent_register_timeout_ms", "120000")  # as run_ray sets it: a busy machine starts agents slowly
    for attempt in (1, 2):
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
            break
        except Exception as exc:  # noqa: BLE001 - Ray's own start-up failure, reported as a skip below
            ray.shutdown()
            if attempt == 2:
                mp.undo()
                pytest.skip(f"a local Ray did not start twice ({str(exc)[:120]}): the raylet gives up on slow "
                            "agents (ray-project/ray#65983)")
    yield
    ray.shutdown()
    mp.undo()


def test_rows_go_through_ray_data_and_come_back_in_order(local_ray: None, make_server: Any, tmp_path: Path) -> None:
    first, second = make_server(), make_server()
    rows = [{"text": f"row number {i}"} for i in range(24)]
    log = SessionLog()
    with OpenAIClient(api_key=TEST_KEY, base_url=first.url) as client:
        out = run_batch(rows, "{text}", model="fake-chat", client=client, via="ray", urls=[first.url, second.url],
                        concurrency=4, cache=tmp_path / "c.sqlite", progress=False, log=log, max_tokens=10)
        assert [r["answer"] for r in out] == [f"Echo: {i} number row" for i in range(24)]
        assert all(r["status"] == "ok" and r["total_tokens"] == 3 + 4 for r in out)
        assert len(first.requests) == 12 and len(second.requests) == 12
        assert all(r.headers.get("Authorization") == f"Bearer {TEST_KEY}" for r in first.requests)
        batch = [r for r in log if r["source"] == "batch"]
        assert sorted(int(r["row_key"]) for r in batch) == list(range(24))
        assert {r["batch_id"] for r in batch} == {log[-1]["batch_id"]} and log[-1]["source"] == "batch-summary"
        first.reset()
        second.reset()
        again = run_batch(rows, "{text}", model="fake-chat", client=client, via="ray", urls=[first.url, second.url],
                          cache=tmp_path / "c.sqlite", progress=False, log=log, max_tokens=10)
    assert all(r["cached"] for r in again) and first.requests == [] and second.requests == []


def test_a_failed_row_keeps_its_error(local_ray: None, server: FakeOpenAIServer) -> None:
    server.add_fault(path="/chat", status=400, message="refused here")
    with OpenAIClient(api_key=TEST_KEY, base_url=server.url) as client:
        out = run_batch([{"t": "a"}, {"t": "b"}, {"t": "c"}], "{t}", model="fake-chat", client=client, via="ray",
                        concurrency=1, cache=None, progress=False, log=SessionLog())
    assert sorted(r["status"] for r in out) == ["error", "ok", "ok"]
    assert "refused here" in next(r["error"] for r in out if r["status"] == "error")
