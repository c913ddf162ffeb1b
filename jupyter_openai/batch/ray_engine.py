"""The Ray engine (``via="ray"``, the ``ray`` extra): the same rows through Ray Data, past one machine.

The pending rows become a ``ray.data`` dataset of ``(row, request)`` items; ``map_batches`` hands them
to a pool of actors, each with an :class:`~jupyter_openai.client.OpenAIClient` per OpenAI-compatible URL
(``urls=``: a fleet of vLLM or llama.cpp servers, row ``i`` to ``urls[i % n]``; default the client's
own); each actor calls its rows from a few threads with :func:`~jupyter_openai.calls.run.run_call` (the
client's retries apply). Results come back to the driver, which keeps them by row index (so in the input's
order), caches and logs them as the local engine does.

The API key is never pickled (a :class:`~jupyter_openai.secret.Secret` refuses to be): workers read it
from ``OPENAI_API_KEY`` in their environment, which a local ``ray.init()`` passes on from the driver's.
Ray is started here when it is not running yet (``ray.init()``; start it yourself for a cluster).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ConfigurationError
from .job import BatchRun, progress_bar

INSTALL_HINT = 'pip install "jupyter-openai[ray]"'
AGENT_TIMEOUT = "RAY_agent_register_timeout_ms"  #: Ray's wait for its agents (a busy machine needs more)
ACTOR_CPUS = 0.25  #: a caller waits on sockets: four share a CPU


class _Caller:
    """A Ray Data actor: a client per URL, calling a batch of rows from threads (row ``i`` goes to
    ``urls[i % len(urls)]``)."""

    def __init__(self, urls: Sequence[str], threads: int, timeouts: tuple[float, float, int]) -> None:
        from ..client import OpenAIClient

        connect, read, retries = timeouts
        self.clients = [OpenAIClient(base_url=url, connect_timeout=connect, read_timeout=read, max_retries=retries)
                        for url in urls]
        for client in self.clients:
            client.ensure_pool(threads)
        self.threads = threads

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        rows = [int(i) for i in batch["i"]]
        with ThreadPoolExecutor(self.threads) as pool:
            results = list(pool.map(self._one, rows, batch["request"]))
        return {"i": rows, "result": [r[0] for r in results], "record": [r[1] for r in results]}

    def _one(self, i: int, text: str) -> tuple[str, str]:
        from ..calls.request import CallRequest
        from ..calls.run import run_call
        from ..session.log import SessionLog
        from .threads import outcome_record

        fields = json.loads(text)
        request = CallRequest(fields["prompt"], fields["model"], fields["endpoint"], fields["system"], False,
                              fields["params"], fields["schema"])
        outcome = run_call(self.clients[i % len(self.clients)], request, log=SessionLog())
        record = dict(outcome.record)
        record.pop("id", None)
        return json.dumps(outcome_record(outcome)), json.dumps(record, default=str)


def run_ray(run: BatchRun, pending: Sequence[int], *, urls: Sequence[str] | None = None, actors: int | None = None,
            **_: Any) -> None:
    """Send the ``pending`` rows of ``run`` through Ray Data (see the module docstring)."""
    try:
        import ray
        import ray.data
    except ImportError:
        raise ConfigurationError(f"via='ray' needs Ray Data: {INSTALL_HINT}") from None
    if not ray.is_initialized():
        import os

        os.environ.setdefault(AGENT_TIMEOUT, "120000")  # the raylet's wait for its agents, on a busy machine
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    settings = run.client.settings
    urls = list(urls or [settings.base_url])
    actors = actors or max(1, min(len(urls) * 2, int(ray.available_resources().get("CPU", 1) / ACTOR_CPUS)))
    threads = max(1, math.ceil(run.concurrency / actors))
    base = run.base
    items = [{"i": i, "request": json.dumps({"prompt": run.request(i).prompt, "model": base.model,
                                             "endpoint": base.endpoint, "system": base.system,
                                             "params": base.params, "schema": base.schema})} for i in pending]
    dataset = ray.data.from_items(items).map_batches(
        _Caller, fn_constructor_kwargs={"urls": urls, "threads": threads,
                                        "timeouts": (settings.connect_timeout, settings.read_timeout,
                                                     settings.max_retries)},
        batch_size=max(1, threads), concurrency=actors, num_cpus=ACTOR_CPUS)
    bar = progress_bar(len(run.rows), len(run.rows) - len(pending), run.progress, "batch (ray)")
    try:
        for row in dataset.iter_rows():
            i = int(row["i"])
            result = json.loads(row["result"])
            run.finish(i, result)
            record = json.loads(row["record"])
            record.update(source="batch", execution_count=run.execution_count, batch_id=run.batch_id,
                          row_key=run.rows.keys[i])
            run.log.append(record)
            bar.update(1)
    except KeyboardInterrupt:
        run.interrupted = True
    finally:
        bar.close()
