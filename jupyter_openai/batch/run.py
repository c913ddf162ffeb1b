"""One prompt template over many rows: :func:`run_batch`, the template, the cache look-up and the result.

``run_batch(df, "Label this review: {text}")`` renders the template for every row (``{column}``
fields, ``{{ }}`` for braces), looks each request up in the on-disk cache
(:mod:`~jupyter_openai.batch.cache`), sends only the missing ones through an engine (``via``):
``"local"`` (:mod:`~jupyter_openai.batch.threads`, the default), ``"openai-batch"`` (OpenAI's Batch API,
:mod:`~jupyter_openai.batch.openai_batch`), ``"ray"`` (:mod:`~jupyter_openai.batch.ray_engine`) or ``"jsonl"`` (only
write the request file ``vllm run-batch`` and the Batch API read), and returns one result row per input
row, in the input's order: a DataFrame for a DataFrame (pandas stays optional), else a list of dicts.
Every call is logged (source ``batch``, the batch id, the row key), then one ``batch-summary`` record.
No IPython here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ..calls.request import CallRequest, build_request
from ..errors import ConfigurationError
from ..session.log import SessionLog, session_log
from .cache import BatchCache
from .job import DEFAULT_CACHE, ENGINES, NOT_RUN, RESULT_COLUMNS, BatchRun, Rows, render, wire_body

__all__ = ["DEFAULT_CACHE", "ENGINES", "NOT_RUN", "RESULT_COLUMNS", "BatchRun", "Rows", "render", "run_batch",
           "wire_body"]


def _open_cache(cache: Any) -> Any:
    if cache is None or isinstance(cache, BatchCache):
        return cache
    return BatchCache(None if cache == DEFAULT_CACHE else cache)


def run_batch(rows: Any, template: str, *, model: str | None = None, endpoint: str | None = None,
              concurrency: int = 8, schema: Any = None, via: str = "local", cache: Any = DEFAULT_CACHE,
              client: Any = None, system: str | None = None, log: SessionLog | None = None,
              progress: bool = True, defaults: Mapping[str, Any] | None = None, execution_count: int | None = None,
              jsonl_path: str = "batch_requests.jsonl", poll_interval: float = 5.0, urls: Sequence[str] | None = None,
              on_line: Callable[[str], None] | None = print, **params: Any) -> Any:
    """Send ``template`` filled from each row; the rows with ``answer``, ``status``, ``error``, tokens,
    ``latency``, ``cost`` (None until prices are known), ``finish_reason``, ``cached`` and the schema's
    fields, in the input's order. A failed row keeps its error; Ctrl-C stops and returns what finished.
    The run's own columns keep their names: an input column named like one comes back as ``input_<name>``,
    a schema field named like one (or like an input column) as ``answer_<field>``, each said in a note
    (``on_line``), as are template fields filled from NaN/None cells (empty text). A template naming a
    column the rows lack is one :class:`ConfigurationError` before anything is sent.

    ``cache``: a path, a :class:`~jupyter_openai.batch.cache.BatchCache`, the default file, or None (off).
    ``client``: an :class:`~jupyter_openai.client.OpenAIClient` (default: one from the environment).
    ``via="openai-batch"``: polled every ``poll_interval`` s; ``via="ray"``: ``urls`` spreads the rows over
    these OpenAI-compatible servers (default: the client's); ``via="jsonl"``: writes ``jsonl_path``, returns it.
    ``**params``: sampling parameters as the client takes them (``max_tokens=20``, ``temperature=0``).
    """
    if via not in ENGINES:
        raise ConfigurationError(f"unknown engine via={via!r}: use one of {', '.join(ENGINES)}")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(f"concurrency must be a whole number >= 1, got {concurrency!r}")
    if not isinstance(template, str) or not template.strip():
        raise ConfigurationError("the template is empty")
    table = Rows(rows)
    options = {"prompt": "-", "model": model, "endpoint": endpoint, "system": system, "schema": schema,
               "stream": False, **params}
    base = build_request(options, defaults or {})
    owned = client is None
    if owned:
        client, offline_model = default_client()
        if offline_model:  # as %%complete does: the offline model's name and its server's schema format
            base = build_request({**options, "model": model or offline_model}, {**(defaults or {}), "offline": True})
    run = BatchRun(table, template, base, client, cache=_open_cache(cache), log=log if log is not None else session_log,
                   concurrency=concurrency, execution_count=execution_count, progress=progress)
    say = on_line or (lambda line: None)
    try:
        for note in run.notes():
            say(note)
        if via == "jsonl":
            from .openai_batch import write_requests

            return write_requests(run, jsonl_path)
        pending = run.prepare()
        if pending:
            engine = _engine(via)
            engine(run, pending, poll_interval=poll_interval, urls=urls)
        run.log.append(run.summary(via))
        if progress or run.interrupted:
            say(("Interrupted: " if run.interrupted else "") + run.log[-1]["completion"]
                + ("; run it again to send only the rest" if run.interrupted else ""))
        output = run.output()
        for note in run.output_notes():
            say(note)
        return output
    finally:
        if owned:
            client.close()
        if run.cache is not None and run.cache is not cache:
            run.cache.close()


def default_client() -> tuple[Any, str | None]:
    """A client from the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``); with neither set and the
    offline model installed, one for the bundled offline model (as ``%%complete`` does), and its model
    name (else None)."""
    import os

    from ..client import OpenAIClient
    from ..config import ENV_API_KEY, ENV_BASE_URL

    if not os.environ.get(ENV_API_KEY, "").strip() and not os.environ.get(ENV_BASE_URL, "").strip():
        from ..offline import server as local_server

        if local_server.is_available():
            server = local_server.shared_server()
            return OpenAIClient(base_url=server.base_url, api_key=server.api_key, direct=True), local_server.MODEL_ALIAS
    return OpenAIClient(), None


class BatchAccessor:
    """``df.openai.batch(template, **options)``: :func:`run_batch` over the DataFrame's rows."""

    def __init__(self, frame: Any) -> None:
        self._frame = frame

    def batch(self, template: str, **options: Any) -> Any:
        """The rows with the answers (see :func:`run_batch` for the options)."""
        return run_batch(self._frame, template, **options)


def register_accessor(name: str = "openai") -> None:
    """Make ``DataFrame.<name>.batch`` available (done on import when pandas is installed)."""
    import warnings

    import pandas as pd

    if not hasattr(pd.DataFrame, name):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd.api.extensions.register_dataframe_accessor(name)(BatchAccessor)


def _engine(via: str) -> Callable[..., None]:
    if via == "local":
        from .threads import run_local

        return run_local
    if via == "openai-batch":
        from .openai_batch import run_openai_batch

        return run_openai_batch
    from .ray_engine import run_ray

    return run_ray


def iter_requests(run: BatchRun, pending: Sequence[int]) -> Iterator[tuple[int, CallRequest]]:
    """The pending rows with their requests, built one at a time."""
    for i in pending:
        yield i, run.request(i)


def _register_if_pandas() -> None:
    import importlib.util

    if importlib.util.find_spec("pandas") is not None:
        register_accessor()


_register_if_pandas()
