"""A batch while it runs: the rows, their template and requests, the results, the summary record.

Shared by :func:`~jupyter_openai.batch.run.run_batch` and its engines (:mod:`~jupyter_openai.batch.threads`,
:mod:`~jupyter_openai.batch.openai_batch`, :mod:`~jupyter_openai.batch.ray_engine`): :class:`Rows` reads the input (a
DataFrame or a list of dicts) one row at a time, :func:`template_columns` checks the template once
against the columns, :func:`render` fills it (a NaN/None cell: empty text), :func:`wire_body` is what a
request is sent as and :func:`where` where it goes (the cache key hashes both, the Batch API's JSONL holds
the body), :class:`BatchRun` keeps the results by row (one list per column, written to the cache as rows
finish; the run's own columns keep their names, input columns and schema fields named alike are renamed)
and builds the output. No IPython here.
"""

from __future__ import annotations

import re
import string
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ..api import responses
from ..api.field_rules import takes_max_completion_tokens
from ..api.params import CHAT, ENDPOINT_PATHS, RESPONSES
from ..calls.line import fill_fields
from ..calls.request import CallRequest
from ..config import is_openai_host
from ..errors import ConfigurationError, redact
from ..session.log import SessionLog
from .cache import request_key

ENGINES = ("local", "openai-batch", "ray", "jsonl")
#: The result columns every row gets, after the input's own columns (a schema adds its fields).
RESULT_COLUMNS = ("answer", "status", "error", "prompt_tokens", "completion_tokens", "total_tokens", "latency",
                  "cost", "finish_reason", "cached")
_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")
#: The prefixes that keep an input column and a schema field apart from the run's own columns.
INPUT_PREFIX, FIELD_PREFIX = "input_", "answer_"
DEFAULT_CACHE = "default"  #: ``cache=`` default: the file :func:`~jupyter_openai.batch.cache.default_path` names
NOT_RUN = "not run"  #: the status of a row an interrupt left unsent


def _not_a_column(name: str, columns: Iterable[str]) -> ConfigurationError:
    return ConfigurationError(f"the template names {{{name}}}, which is not a column "
                              f"(columns: {', '.join(map(str, columns)) or 'none'}; write {{{{ }}}} for braces)")


class _Blank:
    """What a NaN or None cell fills a field with: no text, whatever the format spec."""

    def __format__(self, spec: str) -> str:
        return ""

    def __str__(self) -> str:
        return ""

    __repr__ = __str__


BLANK = _Blank()


def is_blank(value: Any) -> bool:
    """True for a cell with no value: None, NaN (any float type), pandas' NA and NaT."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    try:
        return bool(value != value)  # only NaN differs from itself
    except Exception:  # noqa: BLE001 - arrays and odd objects: a value
        return False


class _Row(dict):
    """A row as the template sees it: a NaN/None cell is empty text, a field that is not a column a one-line error."""

    def __getitem__(self, key: str) -> Any:
        value = super().__getitem__(key)
        return BLANK if is_blank(value) else value

    def __missing__(self, key: str) -> Any:
        raise _not_a_column(key, self)


def render(template: str, row: Mapping[str, Any]) -> str:
    """``template`` with its ``{column}`` fields filled from ``row`` (``{{ }}``: literal braces; a NaN or
    None cell: empty text); a field that cannot be filled is one :class:`ConfigurationError` naming it."""
    return fill_fields(template, _Row(row), "cannot fill the template")


def template_columns(template: str, columns: Sequence[str]) -> list[str]:
    """The columns ``template`` names (format specs' own fields included), checked once for the whole
    batch: a field that is positional or names no column, or a template that does not parse, is one
    :class:`ConfigurationError` before any row is sent."""
    names: list[str] = []
    pending = [template]
    while pending:
        try:
            parsed = list(string.Formatter().parse(pending.pop()))
        except ValueError as exc:
            raise ConfigurationError(f"cannot fill the template: {exc} (write {{{{ }}}} for braces)") from None
        for _text, field, spec, _conversion in parsed:
            if field is None:
                continue
            root = re.match(r"[^.\[]*", field).group(0)  # type: ignore[union-attr]
            if not root or root.isdigit():
                raise ConfigurationError(f"the template's field {{{field}}} is positional: name a column, "
                                         f"as in {{{columns[0] if columns else 'text'}}}")
            if root not in columns:
                raise _not_a_column(root, columns)
            names.append(root)
            if spec and "{" in spec:
                pending.append(spec)
    return list(dict.fromkeys(names))


def free_name(name: str, prefix: str, taken: Iterable[str]) -> str:
    """``prefix + name``, with more ``_`` until no column in ``taken`` has it."""
    taken = set(taken)
    new = prefix + name
    while new in taken:
        new = "_" + new
    return new


def cost_of(record: Mapping[str, Any]) -> float | None:
    """The cost of one row in USD, as its call was priced (``cost.py``: the session's price table,
    else genai-prices for OpenAI); None when unknown."""
    value = record.get("cost_usd")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def where(base_url: str) -> tuple[str, str]:
    """Where a batch's requests go, as its cache keys name it: the host (``host:port``, any
    ``user:password@`` left out) and the base URL's path and query (``/p/alpha/v1``), so two gateway
    routes on one host never share answers."""
    parts = urlsplit(base_url)
    host = parts.netloc.rpartition("@")[2].lower()
    return host, parts.path.rstrip("/") + (f"?{parts.query}" if parts.query else "")


def wire_body(request: CallRequest, base_url: str = "") -> tuple[str, dict[str, Any]]:
    """The path and JSON body a request is sent as (what the cache key hashes and the JSONL holds)."""
    params = dict(request.params)
    if request.endpoint == CHAT:
        body = {"model": request.model, "messages": request.messages(), **params}
        if "max_tokens" in body and (is_openai_host(base_url) or takes_max_completion_tokens(request.model)):
            body["max_completion_tokens"] = body.pop("max_tokens")
    elif request.endpoint == RESPONSES:
        body = {"model": request.model, "input": request.prompt, **responses.request_fields(params)}
        if request.system:
            body["instructions"] = request.system
    else:
        body = {"model": request.model, "prompt": request.prompt, **params}
    return ENDPOINT_PATHS[request.endpoint], body


class Rows:
    """The input rows, read one at a time: a DataFrame (its index gives the row keys when unique) or
    a sequence of mappings (keys are positions)."""

    def __init__(self, rows: Any) -> None:
        self.frame = rows if _is_frame(rows) else None
        if self.frame is not None:
            self.columns = [str(c) for c in rows.columns]
            self._values = [rows[c].to_numpy(dtype=object) for c in rows.columns]
            index = rows.index
            self.keys = [str(k) for k in index] if index.is_unique else [str(i) for i in range(len(rows))]
        elif isinstance(rows, Sequence) and not isinstance(rows, (str, bytes)):
            if not all(isinstance(r, Mapping) for r in rows):
                raise ConfigurationError("rows must be a DataFrame or a list of dicts")
            self._list = rows
            self.columns = list(dict.fromkeys(str(k) for r in rows for k in r))
            self.keys = [str(i) for i in range(len(rows))]
        else:
            raise ConfigurationError(f"rows must be a DataFrame or a list of dicts, got {type(rows).__name__}")

    def __len__(self) -> int:
        return len(self.keys)

    def values(self, name: str) -> Sequence[Any]:
        """Column ``name``'s cell in every row (``""`` for a dict row without it)."""
        if self.frame is not None:
            return self._values[self.columns.index(name)]
        return [self.row(i).get(name, "") for i in range(len(self.keys))]

    def row(self, i: int) -> Mapping[str, Any]:
        if self.frame is not None:
            return {name: values[i] for name, values in zip(self.columns, self._values, strict=True)}
        return {str(k): v for k, v in self._list[i].items()}


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns") and hasattr(value, "index")


class Results:
    """The result columns, one list per column, filled by row index as rows finish. The run's own
    columns keep their names; a schema field named like one of them or like an input column is kept
    apart as ``answer_<field>`` (:attr:`renamed`)."""

    def __init__(self, size: int, input_columns: Sequence[str] = ()) -> None:
        self.size = size
        self.columns: dict[str, list[Any]] = {name: [None] * size for name in RESULT_COLUMNS}
        for i in range(size):
            self.columns["status"][i] = NOT_RUN
        self.extra: list[str] = []  #: schema fields' columns, in the order first seen
        self.renamed: dict[str, str] = {}  #: schema field -> its column, where the two differ
        self._inputs = set(input_columns)

    def column(self, field: str) -> str:
        """The column of the schema field ``field``."""
        if field in self.renamed:
            return self.renamed[field]
        if field in RESULT_COLUMNS or field in self._inputs:
            new = free_name(field, FIELD_PREFIX, [*RESULT_COLUMNS, *self._inputs, *self.extra])
            self.renamed[field] = new
            return new
        return field

    def set(self, i: int, record: Mapping[str, Any], fields: Mapping[str, Any] | None = None) -> None:
        for name in RESULT_COLUMNS:
            self.columns[name][i] = record.get(name)
        for field, value in (fields or {}).items():
            name = self.column(str(field))
            if name not in self.columns:
                self.columns[name] = [None] * self.size
                self.extra.append(name)
            self.columns[name][i] = value

    def count(self, status: str) -> int:
        return sum(1 for s in self.columns["status"] if s == status)


class BatchRun:
    """One batch while it runs: the template request, the rows' keys, the cache, the results and the log.
    Engines take rows from :meth:`pending` and hand each answer to :meth:`finish`."""

    def __init__(self, rows: Rows, template: str, base: CallRequest, client: Any, *, cache: Any,
                 log: SessionLog, concurrency: int, execution_count: int | None, progress: bool) -> None:
        self.rows, self.template, self.base, self.client = rows, template, base, client
        self.cache, self.log, self.concurrency, self.progress = cache, log, concurrency, progress
        self.execution_count = execution_count
        self.batch_id = f"batch_{uuid.uuid4().hex[:16]}"
        self.fields_used = template_columns(template, rows.columns)  # a bad template fails here, once
        self.inputs_renamed = {name: free_name(name, INPUT_PREFIX, [*rows.columns, *RESULT_COLUMNS])
                               for name in rows.columns if name in RESULT_COLUMNS}
        self.results = Results(len(rows), [*rows.columns, *self.inputs_renamed.values()])
        self.host, self.route = where(client.settings.base_url if client is not None else "")
        self.keys: list[str | None] = []  #: the request key (cache key) of each row; None: it could not be built
        self.interrupted = False
        self.started = time.monotonic()

    # -- requests ------------------------------------------------------------------
    def request(self, i: int) -> CallRequest:
        """Row ``i``'s request (raises :class:`ConfigurationError` when the row cannot fill the template)."""
        base = self.base
        prompt = render(self.template, self.rows.row(i))
        if not prompt.strip():
            raise ConfigurationError("the prompt is empty for this row")
        return CallRequest(prompt, base.model, base.endpoint, base.system, False, base.params, base.schema)

    def prepare(self) -> list[int]:
        """Compute every row's key, fill the rows the cache has; the indices still to send."""
        base_url = self.client.settings.base_url if self.client is not None else ""
        for i in range(len(self.rows)):
            try:
                path, body = wire_body(self.request(i), base_url)
                self.keys.append(request_key(self.host, self.route + path, body))
            except ConfigurationError as exc:
                self.keys.append(None)
                self.results.set(i, {"status": "error", "error": str(exc), "cached": False})
        found = self.cache.get_many(k for k in self.keys if k) if self.cache is not None else {}
        pending = []
        for i, key in enumerate(self.keys):
            if key is None:
                continue
            if key in found:
                self.results.set(i, {**found[key], "cached": True}, self.fields(found[key]))
            else:
                pending.append(i)
        return pending

    def fields(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The schema's fields of a finished row (none without a schema or an answer)."""
        if self.base.schema is None or record.get("status") != "ok":
            return {}
        import json

        from ..calls.schema import columns

        try:
            return columns(json.loads(record.get("answer") or ""))
        except ValueError:
            return {}

    def notes(self) -> list[str]:
        """One-line notes on the input, known before anything is sent: what building the request changed
        (a schema made strict), cells with no value that fill a template field, input columns named like the
        run's own columns."""
        lines = list(self.base.notes)
        for name in self.fields_used:
            blank = [key for key, value in zip(self.rows.keys, self.rows.values(name), strict=True) if is_blank(value)]
            if blank:
                shown = ", ".join(blank[:5]) + (", …" if len(blank) > 5 else "")
                lines.append(f"Note: {{{name}}} has no value (NaN/None) in {len(blank)} row(s) ({shown}): "
                             "filled with empty text")
        if self.inputs_renamed:
            lines.append(self._renamed_note("the input's column", self.inputs_renamed))
        return lines

    def output_notes(self) -> list[str]:
        """One-line notes on the result: schema fields named like the run's or the input's columns."""
        return [self._renamed_note("the schema's field", self.results.renamed)] if self.results.renamed else []

    @staticmethod
    def _renamed_note(what: str, renamed: Mapping[str, str]) -> str:
        pairs = "; ".join(f"{what} {old!r} is in {new!r}" for old, new in renamed.items())
        return f"Note: {pairs} ({', '.join(RESULT_COLUMNS[:3])} … are the run's own columns)"

    # -- answers -------------------------------------------------------------------
    def finish(self, i: int, record: dict[str, Any]) -> None:
        """Row ``i`` is done: keep its result (and, when ok, cache it)."""
        record = {**record, "cost": cost_of(record), "cached": False}
        if record.get("error") and self.client is not None:
            record["error"] = redact(record["error"], self.client._secrets)
        self.results.set(i, record, self.fields(record))
        key = self.keys[i]
        if record.get("status") == "ok" and self.cache is not None and key:
            self.cache.put(key, {k: v for k, v in record.items() if k not in ("cached", "cost")})

    def summary(self, via: str) -> dict[str, Any]:
        """The batch's summary log record (source ``batch-summary``)."""
        import json

        cols = self.results.columns
        counts = {s: self.results.count(s) for s in ("ok", "error", "interrupted", NOT_RUN)}
        cached = sum(1 for c in cols["cached"] if c)
        total = sum(t for t in cols["total_tokens"] if isinstance(t, int))
        line = (f"{len(self.rows)} rows: {counts['ok']} ok ({cached} from the cache), {counts['error']} errors"
                + (f", {counts['interrupted'] + counts[NOT_RUN]} not done" if self.interrupted or counts[NOT_RUN]
                   else "") + f", {total} tokens, {time.monotonic() - self.started:.1f} s")
        prompt_tokens = sum(t for t in cols["prompt_tokens"] if isinstance(t, int))
        completion_tokens = sum(t for t in cols["completion_tokens"] if isinstance(t, int))
        return {"source": "batch-summary", "execution_count": self.execution_count, "model": self.base.model,
                "requested_model": self.base.model, "endpoint": self.base.endpoint, "host": self.host,
                "prompt": self.template, "completion": line, "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens, "total_tokens": total,
                "latency": round(time.monotonic() - self.started, 4),
                "status": "interrupted" if self.interrupted else "ok" if not counts["error"] else "error",
                "params": json.dumps({"via": via, "rows": len(self.rows), "cached": cached, **counts}, sort_keys=True),
                "batch_id": self.batch_id}

    def output(self) -> Any:
        """The input rows with the result columns: a DataFrame for a DataFrame, else a list of dicts."""
        cols = self.results.columns
        names = [*RESULT_COLUMNS, *self.results.extra]
        if self.rows.frame is not None:
            import pandas as pd

            result = pd.DataFrame({name: pd.array(cols[name], dtype="Int64") if name in _COUNTS else
                                   pd.Series(cols[name], dtype=object) .values for name in names},
                                  index=self.rows.frame.index)
            frame = self.rows.frame.rename(columns={c: self.inputs_renamed[str(c)] for c in self.rows.frame.columns
                                                    if str(c) in self.inputs_renamed})
            return pd.concat([frame, result], axis=1)
        renamed = self.inputs_renamed
        return [{**{renamed.get(k, k): v for k, v in self.rows.row(i).items()},
                 **{name: cols[name][i] for name in names}} for i in range(len(self.rows))]


def progress_bar(total: int, initial: int, enabled: bool, desc: str) -> Any:
    """A ``tqdm.auto`` bar (a widget in Jupyter, text in a terminal), or a silent stand-in."""
    if enabled:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            pass
        else:
            return tqdm(total=total, initial=initial, desc=desc, unit="row", dynamic_ncols=True)
    return _NoBar()


class _NoBar:
    def update(self, n: int = 1) -> None: ...
    def set_postfix(self, *args: Any, **kwargs: Any) -> None: ...
    def close(self) -> None: ...


