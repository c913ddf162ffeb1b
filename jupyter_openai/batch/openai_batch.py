"""The Batch API engine (``via="openai-batch"``, GUIDE §13): half the price, answers within 24 h.

The rows still to send become JSONL request lines (``custom_id`` = the row key), split into files of at
most :data:`MAX_LINES` lines and :data:`MAX_BYTES` bytes; each is uploaded (``POST /files``,
``purpose=batch``) and becomes a batch (``POST /batches``), polled (``GET /batches/{id}``) with a
progress bar until it ends; its output and error files are merged back by ``custom_id`` (they come in any
order). The batch id of each file is kept in the cache (keyed by the file's sha256) and logged, so
running the same batch again after a crash or Ctrl-C polls the same remote batch instead of starting a
new one. :func:`cancel_batch` stops one. :func:`write_requests` (``via="jsonl"``) only writes the file,
which ``vllm run-batch`` reads too. No IPython here.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..api.completion import Completion
from ..errors import ConfigurationError, OpenAIError, one_line, redact
from .job import BatchRun, progress_bar, wire_body

MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024
TERMINAL = ("completed", "failed", "expired", "cancelled")


def request_lines(run: BatchRun, indices: Sequence[int]) -> Iterator[tuple[int, bytes]]:
    """``(row, JSONL line)`` for each row: ``{"custom_id", "method", "url", "body"}``."""
    base_url = run.client.settings.base_url if run.client is not None else ""
    for i in indices:
        path, body = wire_body(run.request(i), base_url)
        line = {"custom_id": run.rows.keys[i], "method": "POST", "url": "/v1" + path, "body": body}
        yield i, (json.dumps(line, ensure_ascii=False) + "\n").encode()


def split(lines: Iterator[tuple[int, bytes]], max_lines: int = MAX_LINES,
          max_bytes: int = MAX_BYTES) -> Iterator[tuple[list[int], bytes]]:
    """The lines in files of at most ``max_lines`` lines and ``max_bytes`` bytes."""
    rows: list[int] = []
    parts: list[bytes] = []
    size = 0
    for i, line in lines:
        if rows and (len(rows) >= max_lines or size + len(line) > max_bytes):
            yield rows, b"".join(parts)
            rows, parts, size = [], [], 0
        rows.append(i)
        parts.append(line)
        size += len(line)
    if rows:
        yield rows, b"".join(parts)


def write_requests(run: BatchRun, path: str) -> str:
    """Write every row's request line to ``path`` (the Batch API's and ``vllm run-batch``'s input); the path."""
    with open(path, "wb") as handle:
        for _i, line in request_lines(run, range(len(run.rows))):
            handle.write(line)
    return path


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        raise OpenAIError(f"the server's answer to {response.request.method} {response.url} is not JSON") from None


def cancel_batch(client: Any, batch_id: str) -> dict[str, Any]:
    """Ask the server to stop a batch (``POST /batches/{id}/cancel``); the Batch object it returns."""
    return _json(client.api_request("POST", f"/batches/{batch_id}/cancel"))


def start(client: Any, endpoint: str, data: bytes) -> dict[str, Any]:
    """Upload one JSONL file and create its batch; the Batch object."""
    upload = _json(client.api_request("POST", "/files", {"purpose": "batch"},
                                      files={"file": ("batch_input.jsonl", data, "application/jsonl")}))
    return _json(client.api_request("POST", "/batches", {"input_file_id": upload["id"], "endpoint": endpoint,
                                                         "completion_window": "24h"}))


def run_openai_batch(run: BatchRun, pending: Sequence[int], *, poll_interval: float = 5.0, **_: Any) -> None:
    """Send the ``pending`` rows of ``run`` as Batch API jobs (see the module docstring)."""
    if run.client is None:
        raise ConfigurationError("the Batch API needs a client")
    endpoint = "/v1" + wire_body(run.request(pending[0]))[0]
    try:
        for rows, data in split(request_lines(run, pending)):
            if not _one_file(run, endpoint, rows, data, poll_interval):
                run.interrupted = True  # Ctrl-C while polling: the remote batch goes on; the next run picks it up
                return
    except KeyboardInterrupt:  # while uploading or creating: nothing kept that could be lost
        run.interrupted = True


def _one_file(run: BatchRun, endpoint: str, rows: list[int], data: bytes, poll_interval: float) -> bool:
    """Send one JSONL file as a batch (or resume the batch kept for it) and merge its answers; False if
    Ctrl-C stopped the polling."""
    job_key = hashlib.sha256(endpoint.encode() + b"\n" + data).hexdigest()
    job = run.cache.job(job_key) if run.cache is not None else None
    batch = _json(run.client.api_request("GET", f"/batches/{job['id']}")) if job else None
    if batch is None or batch.get("status") in ("failed", "expired", "cancelled"):
        batch = start(run.client, endpoint, data)
        if run.cache is not None:
            run.cache.put_job(job_key, {"id": batch["id"]})
    run.batch_id = batch["id"]
    batch = _poll(run, batch, len(rows), poll_interval)
    if batch is None:
        return False
    _merge(run, rows, batch)
    if run.cache is not None:
        run.cache.put_job(job_key, None)
    return True


def _poll(run: BatchRun, batch: dict[str, Any], total: int, interval: float) -> dict[str, Any] | None:
    bar = progress_bar(total, 0, run.progress, f"{batch['id']} {batch.get('status')}")
    shown = 0
    try:
        while batch.get("status") not in TERMINAL:
            counts = batch.get("request_counts") or {}
            done = (counts.get("completed") or 0) + (counts.get("failed") or 0)
            if done > shown:
                bar.update(done - shown)
                shown = done
            if hasattr(bar, "set_description"):
                bar.set_description(f"{batch['id']} {batch.get('status')}", refresh=False)
            deadline = time.monotonic() + interval
            while time.monotonic() < deadline:
                time.sleep(min(0.1, max(0.0, deadline - time.monotonic())))
            batch = _json(run.client.api_request("GET", f"/batches/{batch['id']}"))
        bar.update(total - shown)
        return batch
    except KeyboardInterrupt:
        return None
    finally:
        bar.close()


def _lines(client: Any, file_id: str | None) -> Iterator[dict[str, Any]]:
    if not file_id:
        return
    response = client.api_request("GET", f"/files/{file_id}/content")
    for text in response.content.decode("utf-8", "replace").splitlines():
        if text.strip():
            try:
                yield json.loads(text)
            except ValueError:
                continue


def _merge(run: BatchRun, rows: Sequence[int], batch: Mapping[str, Any]) -> None:
    """Give each row its answer from the output and error files (matched by ``custom_id``)."""
    by_key = {run.rows.keys[i]: i for i in rows}
    kind = run.base.endpoint
    seen: set[int] = set()
    for line in [*_lines(run.client, batch.get("output_file_id")), *_lines(run.client, batch.get("error_file_id"))]:
        i = by_key.get(str(line.get("custom_id")))
        if i is None or i in seen:
            continue
        seen.add(i)
        record = _line_record(line, kind)
        if record["status"] == "ok":
            record["cost_usd"] = _batch_cost(run, record)
        if record["status"] == "ok" and run.base.schema is not None:
            from ..calls.schema import SchemaError, check_answer

            try:
                check_answer(record["answer"], run.base.schema)
            except SchemaError as exc:
                record.update(status="error", error=str(exc))
        run.finish(i, record)
        _log(run, i, record, line)
    why = _batch_problem(batch)
    for i in rows:
        if i not in seen:
            record = {"status": "error", "error": why}
            run.finish(i, record)
            _log(run, i, record, {})


def _batch_problem(batch: Mapping[str, Any]) -> str:
    errors = ((batch.get("errors") or {}).get("data") or [])
    detail = "; ".join(one_line(f"{e.get('code')}: {e.get('message')}" + (f" (line {e['line']})" if e.get("line")
                                else "")) for e in errors[:3])
    return f"batch {batch.get('id')} ended {batch.get('status')} without an answer for this row" + (
        f": {detail}" if detail else "")


def _batch_cost(run: BatchRun, record: Mapping[str, Any]) -> float | None:
    """A row's cost on the Batch API: half the price of the same call made directly (GUIDE 13)."""
    from ..session.cost import pricing

    usage = {k: record.get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}
    full = pricing.cost(run.base.model, usage, run.client.settings.base_url)
    return None if full is None else full / 2


def _line_record(line: Mapping[str, Any], kind: str) -> dict[str, Any]:
    response = line.get("response") or {}
    body = response.get("body")
    status = response.get("status_code")
    if status == 200 and isinstance(body, dict):
        answer = Completion(body, kind, response.get("request_id"))
        usage = answer.usage or {}
        reasons = answer.finish_reasons
        return {"answer": answer.text, "status": "ok", "error": None, "prompt_tokens": usage.get("prompt_tokens"),
                "completion_tokens": usage.get("completion_tokens"), "total_tokens": usage.get("total_tokens"),
                "latency": None, "finish_reason": reasons[0] if reasons else None,
                "request_id": response.get("request_id")}
    error = line.get("error") or (body.get("error") if isinstance(body, dict) else None) or {}
    message = error.get("message") if isinstance(error, dict) else str(error)
    return {"answer": "", "status": "error", "error": f"Error code: {status} - {message or 'no answer'}",
            "request_id": response.get("request_id")}


def _log(run: BatchRun, i: int, record: Mapping[str, Any], line: Mapping[str, Any]) -> None:
    base = run.base
    error = redact(record["error"], run.client._secrets) if record.get("error") else None
    run.log.append({"source": "batch", "execution_count": run.execution_count, "model": base.model,
                    "requested_model": base.model, "endpoint": base.endpoint, "host": run.host,
                    "prompt": run.request(i).prompt, "system": base.system, "completion": record.get("answer") or "",
                    "finish_reason": record.get("finish_reason"), "prompt_tokens": record.get("prompt_tokens"),
                    "completion_tokens": record.get("completion_tokens"), "total_tokens": record.get("total_tokens"),
                    "status": record["status"], "error": error, "request_id": record.get("request_id"),
                    "params": json.dumps({k: v for k, v in base.params.items()}, sort_keys=True, default=str),
                    "batch_id": run.batch_id, "row_key": run.rows.keys[i]})
