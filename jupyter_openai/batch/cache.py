"""The on-disk cache of finished batch rows, so a batch run again sends only what is missing.

One SQLite file (stdlib ``sqlite3``, WAL, created 0600). A row is keyed by :func:`request_key`: the
sha256 of the canonical JSON of where the request goes (host, and the whole path: the base URL's own
path and query, then the endpoint's, so two routes of one gateway never share a row) and its body. Headers and the
API key are never part of a key or a value. Each finished row is committed as it arrives, so an
interrupt or a crash loses at most the rows in flight. The cache also keeps the Batch API jobs a
batch started (:meth:`BatchCache.job`), so a run after a crash resumes the same remote batch.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Iterable, Mapping
from typing import Any

ENV_CACHE = "JUPYTER_OPENAI_BATCH_CACHE"
FILE_MODE = 0o600


def default_path() -> str:
    """``$JUPYTER_OPENAI_BATCH_CACHE``, else ``$XDG_CACHE_HOME/jupyter_openai/batch.sqlite`` (``~/.cache``)."""
    if os.environ.get(ENV_CACHE):
        return os.path.expanduser(os.environ[ENV_CACHE])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "jupyter_openai", "batch.sqlite")


def canonical(value: Any) -> str:
    """The JSON text two equal requests share: sorted keys, no spaces, UTF-8 kept."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def request_key(host: str, path: str, body: Mapping[str, Any]) -> str:
    """The cache key of a request: sha256 of its host, path and body (never headers or the key)."""
    return hashlib.sha256(canonical({"host": host, "path": path, "body": body}).encode()).hexdigest()


class BatchCache:
    """Finished rows by request key, in one SQLite file. Thread-safe (one lock, one connection)."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = os.fspath(path) if path is not None else default_path()
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        if not os.path.exists(self.path):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, FILE_MODE))
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS rows (key TEXT PRIMARY KEY, result TEXT NOT NULL)")
        self._db.execute("CREATE TABLE IF NOT EXISTS jobs (key TEXT PRIMARY KEY, job TEXT NOT NULL)")

    def __repr__(self) -> str:
        return f"<BatchCache {self.path}: {len(self)} row(s)>"

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM rows").fetchone()[0]

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached results of those keys that have one."""
        found: dict[str, dict[str, Any]] = {}
        keys = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(keys), 500):
                chunk = keys[start:start + 500]
                marks = ",".join("?" * len(chunk))
                for key, text in self._db.execute(f"SELECT key, result FROM rows WHERE key IN ({marks})", chunk):
                    found[key] = json.loads(text)
        return found

    def get(self, key: str) -> dict[str, Any] | None:
        return self.get_many([key]).get(key)

    def put(self, key: str, result: Mapping[str, Any]) -> None:
        """Keep a finished row (committed at once)."""
        text = canonical(result)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO rows (key, result) VALUES (?, ?)", (key, text))

    def job(self, key: str) -> dict[str, Any] | None:
        """The Batch API job kept for ``key`` (the hash of its input file), if any."""
        with self._lock:
            row = self._db.execute("SELECT job FROM jobs WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_job(self, key: str, job: Mapping[str, Any] | None) -> None:
        """Keep (or, with None, forget) the Batch API job of ``key``."""
        with self._lock:
            if job is None:
                self._db.execute("DELETE FROM jobs WHERE key = ?", (key,))
            else:
                self._db.execute("INSERT OR REPLACE INTO jobs (key, job) VALUES (?, ?)", (key, canonical(job)))

    def clear(self) -> None:
        """Forget every row and job."""
        with self._lock:
            self._db.execute("DELETE FROM rows")
            self._db.execute("DELETE FROM jobs")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> BatchCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
