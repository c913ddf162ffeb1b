"""The Batch API and the rate limits for ``fakeserver`` (GUIDE §13; schemas ``OpenAIFile``, ``Batch``,
``CreateBatchRequest``, ``BatchRequestCounts`` in reference/openai-openapi-responses-batch.json).

Routes: ``POST /v1/files`` (multipart, ``purpose`` and ``file``), ``GET /v1/files/{id}``,
``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``,
``POST /v1/batches/{id}/cancel``. A batch moves one status per ``GET`` (validating → in_progress →
finalizing → completed; cancel: cancelling → cancelled). Its lines are answered when it completes, by
the server's own chat/completions/responses logic, in reverse order (clients must merge by
``custom_id``); a line the API would refuse (an invalid body, a model the server lacks) or whose
``custom_id`` is in :attr:`BatchStore.fail` goes to the error file. A JSONL line that is not JSON, lacks
``custom_id`` or names another ``url`` than the batch's endpoint fails the whole batch at validation.

:class:`RateLimit`: a fixed window of ``requests`` per ``window`` seconds for the API routes; each
answer carries ``x-ratelimit-limit-requests`` / ``-remaining-requests`` / ``-reset-requests``, and a
request over the limit gets a 429 with ``retry-after-ms``.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time
from typing import Any

from . import payloads, responses
from .errors import ApiError, missing

ENDPOINTS = {"/v1/chat/completions": "chat", "/v1/completions": "completions", "/v1/responses": "responses"}
STEPS = ("validating", "in_progress", "finalizing", "completed")
MAX_LINES = 50_000
MAX_BYTES = 200 * 1024 * 1024


class RateLimit:
    """At most ``requests`` per fixed ``window`` of seconds; :attr:`rejected` counts the 429s."""

    def __init__(self, requests: int, window: float = 1.0, clock: Any = time.monotonic) -> None:
        self.requests, self.window, self.clock = requests, window, clock
        self._start, self._used, self.rejected, self.admitted = clock(), 0, 0, 0
        self.peak = 0  #: the most requests admitted in one window
        self._lock = threading.Lock()

    def take(self) -> tuple[bool, dict[str, str]]:
        """(admitted, headers) for one request."""
        with self._lock:
            now = self.clock()
            if now - self._start >= self.window:
                self._start, self._used = now - (now - self._start) % self.window, 0
            reset = max(0.0, self.window - (now - self._start))
            ok = self._used < self.requests
            if ok:
                self._used += 1
                self.admitted += 1
                self.peak = max(self.peak, self._used)
            else:
                self.rejected += 1
            headers = {"x-ratelimit-limit-requests": str(self.requests),
                       "x-ratelimit-remaining-requests": str(self.requests - self._used),
                       "x-ratelimit-reset-requests": f"{reset * 1000:.0f}ms"}
            if not ok:
                headers["retry-after-ms"] = f"{reset * 1000:.0f}"
            return ok, headers


def _multipart(raw: bytes, content_type: str) -> dict[str, tuple[str | None, bytes]]:
    if "multipart/form-data" not in content_type:
        raise ApiError(400, "POST /v1/files takes multipart/form-data (purpose, file)")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + raw)
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name:
            fields[name] = (part.get_filename(), part.get_payload(decode=True) or b"")
    return fields


class BatchStore:
    """Files and batches of one server; ``fail``: custom_ids answered with a 500 in the error file."""

    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.contents: dict[str, bytes] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.fail: set[str] = set()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def reset(self) -> None:
        with self._lock:
            self.files.clear()
            self.contents.clear()
            self.batches.clear()
            self.fail.clear()

    def _file(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = f"file-fake{next(self._ids)}"
        entry = {"id": file_id, "object": "file", "bytes": len(data), "created_at": int(time.time()),
                 "filename": filename, "purpose": purpose, "status": "processed"}
        self.files[file_id], self.contents[file_id] = entry, data
        return entry

    def handle(self, handler: Any, path: str, raw: bytes, body: Any) -> tuple[int, Any] | None:
        """``(status, JSON or bytes)`` for a Batch API route, None for any other path."""
        command, parts = handler.command, path.rstrip("/").split("/")[2:]  # after /v1
        if not parts or parts[0] not in ("files", "batches"):
            return None
        with self._lock:
            if parts == ["files"] and command == "POST":
                fields = _multipart(raw, handler.headers.get("Content-Type", ""))
                if "file" not in fields:
                    raise missing("file")
                purpose = fields.get("purpose", (None, b""))[1].decode()
                if purpose != "batch":
                    raise ApiError(400, f"Invalid purpose {purpose!r}: this server takes 'batch'", "purpose")
                return 200, self._file(fields["file"][1], fields["file"][0] or "upload.jsonl", purpose)
            if parts[0] == "files" and len(parts) in (2, 3) and command == "GET":
                if parts[1] not in self.files:
                    raise ApiError(404, f"No such File object: {parts[1]}", "id", "not_found")
                if len(parts) == 3 and parts[2] == "content":
                    return 200, self.contents[parts[1]]
                return 200, self.files[parts[1]]
            if parts == ["batches"] and command == "POST":
                return 200, self._create(body)
            if parts[0] == "batches" and len(parts) >= 2:
                batch = self.batches.get(parts[1])
                if batch is None:
                    raise ApiError(404, f"No batch found with id '{parts[1]}'.", "batch_id", "not_found")
                if len(parts) == 3 and parts[2] == "cancel" and command == "POST":
                    if batch["status"] in ("validating", "in_progress", "finalizing"):
                        self._move(batch, "cancelling")
                    return 200, batch
                if len(parts) == 2 and command == "GET":
                    self._advance(handler, batch)
                    return 200, batch
        raise ApiError(404, f"Invalid URL ({command} {path})", None, "unknown_url")

    def _create(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError(400, payloads.NOT_JSON)
        for name in ("input_file_id", "endpoint", "completion_window"):
            if not body.get(name):
                raise missing(name)
        if body["endpoint"] not in ENDPOINTS:
            raise ApiError(400, f"Invalid endpoint {body['endpoint']!r}", "endpoint", "invalid_value")
        if body["completion_window"] != "24h":
            raise ApiError(400, "completion_window must be '24h'", "completion_window", "invalid_value")
        if body["input_file_id"] not in self.files:
            raise ApiError(400, f"No such File object: {body['input_file_id']}", "input_file_id")
        now = int(time.time())
        batch = {"id": f"batch_fake{next(self._ids)}", "object": "batch", "endpoint": body["endpoint"],
                 "errors": None, "input_file_id": body["input_file_id"], "completion_window": "24h",
                 "status": "validating", "output_file_id": None, "error_file_id": None, "created_at": now,
                 "in_progress_at": None, "expires_at": now + 86400, "finalizing_at": None, "completed_at": None,
                 "failed_at": None, "expired_at": None, "cancelling_at": None, "cancelled_at": None,
                 "request_counts": {"total": 0, "completed": 0, "failed": 0},
                 "metadata": body.get("metadata")}
        self.batches[batch["id"]] = batch
        return batch

    @staticmethod
    def _move(batch: dict[str, Any], status: str) -> None:
        batch["status"] = status
        batch[f"{status}_at"] = int(time.time())

    def _advance(self, handler: Any, batch: dict[str, Any]) -> None:
        status = batch["status"]
        if status == "cancelling":
            self._move(batch, "cancelled")
        elif status == "validating":
            lines, problem = self._lines(batch)
            if problem:
                batch["errors"] = {"object": "list", "data": [problem]}
                self._move(batch, "failed")
                return
            batch["request_counts"]["total"] = len(lines)
            self._move(batch, "in_progress")
        elif status == "in_progress":
            self._move(batch, "finalizing")
        elif status == "finalizing":
            self._finish(handler, batch)
            self._move(batch, "completed")

    def _lines(self, batch: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        data = self.contents[batch["input_file_id"]]
        if len(data) > MAX_BYTES:
            return [], {"code": "file_too_large", "message": "The input file is larger than 200 MB.", "line": None}
        lines: list[dict[str, Any]] = []
        for number, text in enumerate(data.decode("utf-8", "replace").splitlines(), 1):
            if not text.strip():
                continue
            try:
                line = json.loads(text)
            except ValueError:
                return [], {"code": "invalid_json_line", "message": "This line is not parseable as valid JSON.",
                            "line": number}
            if not isinstance(line, dict) or not line.get("custom_id"):
                return [], {"code": "missing_required_parameter", "message": "custom_id is required.",
                            "line": number}
            if line.get("url") != batch["endpoint"]:
                return [], {"code": "mismatched_endpoint", "message": f"The url must be {batch['endpoint']}.",
                            "line": number}
            lines.append(line)
        if len(lines) > MAX_LINES:
            return [], {"code": "too_many_requests", "message": "A batch holds at most 50,000 requests.",
                        "line": None}
        return lines, None

    def _finish(self, handler: Any, batch: dict[str, Any]) -> None:
        lines, _ = self._lines(batch)
        kind = ENDPOINTS[batch["endpoint"]]
        out, err = [], []
        for n, line in enumerate(reversed(lines), 1):
            request_id = f"req_batch{batch['id'][10:]}_{n}"
            status, answer = self._answer(handler, kind, line)
            entry = {"id": f"batch_req_{n}", "custom_id": line["custom_id"],
                     "response": {"status_code": status, "request_id": request_id, "body": answer}, "error": None}
            (out if status == 200 else err).append(json.dumps(entry))
        counts = batch["request_counts"]
        counts.update(completed=len(out), failed=len(err))
        if out:
            batch["output_file_id"] = self._file(("\n".join(out) + "\n").encode(), "batch_output.jsonl",
                                                 "batch_output")["id"]
        if err:
            batch["error_file_id"] = self._file(("\n".join(err) + "\n").encode(), "batch_errors.jsonl",
                                                "batch_output")["id"]

    def _answer(self, handler: Any, kind: str, line: dict[str, Any]) -> tuple[int, Any]:
        if line["custom_id"] in self.fail:
            return 500, ApiError(500, "The server had an error processing this request.", type="server_error").body()
        body = line.get("body")
        try:
            if kind == "responses":
                responses.validate(body)
            else:
                payloads.validate(kind, body)
            handler._known_model(body["model"])
        except ApiError as exc:
            return exc.status, exc.body()
        if kind == "responses":
            return 200, responses.response_object(responses.plan(body, {}, False), f"resp_fakebatch_{id(line)}")
        plan = payloads.plan(kind, body, {}, False)
        return 200, payloads.response_body(plan, f"chatcmpl-fakebatch{id(line)}")
