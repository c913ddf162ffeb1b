"""The HTTP client: models, completions and chat over ``requests``, with retries and streaming.

Knows nothing of IPython. One :class:`OpenAIClient` keeps one connection pool. Behaviour
follows the official SDK where users rely on it: 2 retries on 408/409/429/5xx, connection
errors and timeouts, exponential backoff with jitter, ``retry-after-ms`` / ``Retry-After``
/ ``x-should-retry`` honoured; a stream is never retried once bytes were read.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

from .api import model_list, responses
from .api.completion import CHAT_KIND, COMPLETIONS_KIND, RESPONSES_KIND, Completion
from .api.field_rules import FieldRules, takes_max_completion_tokens
from .api.params import CHAT, COMPLETIONS, PARAMS, RESPONSES, check_params
from .config import Settings, is_openai_host
from .errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConfigurationError,
    NotFoundError,
    OpenAIError,
    RateLimitError,
    status_error,
)
from .transport import bodies
from .transport.cancel import CancelToken
from .transport.retries import (
    MAX_RETRY_AFTER,
    RETRYABLE_STATUSES,
    backoff_delay,
    retry_after,
    stale_connection,
    transport_reason,
)
from .transport.stream import Stream
from .version import __version__

USER_AGENT = f"jupyter-openai/{__version__} python-requests/{requests.__version__}"
ERROR_BODY_LIMIT = bodies.ERROR_BODY_LIMIT
NOT_A_STREAM = bodies.NOT_A_STREAM
_NOT_PARAMETERS = frozenset({"model", "prompt", "messages", "input", "instructions"})
MAX_ADAPTATIONS = 1  # issue 11: at most one extra request per call to get past a refused field

Sleep = Callable[[float], None]


class OpenAIClient:
    """A small client for OpenAI-compatible APIs.

    ``OpenAIClient()`` reads ``OPENAI_API_KEY``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID`` and
    ``OPENAI_BASE_URL``; keyword arguments (``api_key=``, ``base_url=``, ``read_timeout=`` …)
    or a :class:`~jupyter_openai.config.Settings` take precedence. A non-streamed answer in a shape no
    API sends comes back with ``status == "error"`` and its ``error`` (the readable parts kept); a
    model list or a streamed answer that cannot be read raises :class:`APIConnectionError`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: requests.Session | None = None,
        sleep: Sleep = time.sleep,
        **overrides: Any,
    ) -> None:
        self.settings = Settings.from_env(**overrides) if settings is None else settings.with_overrides(**overrides)
        self._session = session or requests.Session()
        self._sleep = sleep
        self._skip_stream_options = False
        self._rules = FieldRules()
        self._first_model: str | None = None
        #: ``count(endpoint, prompt or messages)``: prompt tokens for a stream that reports none (the offline server)
        self.prompt_counter: Callable[[str, Any], int | None] | None = None

    def __repr__(self) -> str:
        return f"OpenAIClient({self.settings!r})"

    # -- endpoints -----------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        """The models the server offers (the entries of ``GET /models`` that have an id). A listing of
        another shape (no list of models in it) raises :class:`APIConnectionError`."""
        return bodies.model_list(self._send("GET", "/models", None, stream=False), self._secrets)

    def first_model(self, *, ask: bool = True) -> str | None:
        """The server's first listed model (asked once per client; None when it lists none or fails;
        ``ask=False``: None unless it is already known)."""
        if self._first_model is None and ask:
            try:
                listed = [entry["id"] for entry in self.list_models()]
            except OpenAIError:
                listed = []
            self._first_model = listed[0] if listed else ""
        return self._first_model or None

    def retrieve_model(self, model: str) -> dict[str, Any]:
        """One model's description (``GET /models/{id}``). Servers without that route (llama.cpp's
        ``llama-server``, llama-cpp-python) answer 404: then the entry of ``GET /models`` with that id;
        when the list has none, the 404 says so and names the closest listed models (the route's own
        404, "File Not Found", would not be about the model)."""
        if not model:
            raise ConfigurationError("model id must not be empty")
        try:
            response = self._send("GET", f"/models/{requests.utils.quote(model, safe='')}", None, stream=False)
        except NotFoundError as missing:
            try:
                listed = self.list_models()
            except APIStatusError:
                raise missing from None
            for entry in listed:
                if isinstance(entry, dict) and entry.get("id") == model:
                    return entry
            if not listed or missing.code == "model_not_found":  # the server's 404 was about the model
                raise
            near = ", ".join(model_list.closest(model, [entry["id"] for entry in listed]))
            raise NotFoundError(404, f"The server lists no model {model!r}. Available models closest to "
                                     f"{model!r}: {near}", request_id=missing.request_id) from None
        return bodies.model_entry(response, self._secrets)

    def completion(self, model: str, prompt: str | Sequence[str], *, stream: bool = False,
                   extra_body: Mapping[str, Any] | None = None, cancel: CancelToken | None = None,
                   **params: Any) -> Completion | Stream:
        """``POST /completions``; a :class:`Stream` when ``stream=True``. ``cancel`` lets another
        thread stop the call (:mod:`jupyter_openai.transport.cancel`)."""
        if prompt is None or prompt == "" or prompt == []:
            raise ConfigurationError("prompt must not be empty")
        body = {"model": self._model(model), "prompt": prompt, **check_params(COMPLETIONS, params, stream=stream)}
        return self._create("/completions", COMPLETIONS_KIND, body, stream, extra_body, cancel)

    def chat(self, model: str, messages: Sequence[Mapping[str, Any]], *, stream: bool = False,
             extra_body: Mapping[str, Any] | None = None, cancel: CancelToken | None = None,
             **params: Any) -> Completion | Stream:
        """``POST /chat/completions``; a :class:`Stream` when ``stream=True``; ``cancel`` as for
        :meth:`completion`. To OpenAI, and for OpenAI's reasoning models anywhere, the length limit
        goes as ``max_completion_tokens``."""
        if not messages:
            raise ConfigurationError("messages must hold at least one message")
        for message in messages:
            if not isinstance(message, Mapping) or "role" not in message:
                raise ConfigurationError(f"each message needs a role, got {message!r}")
        body = {"model": self._model(model), "messages": list(messages), **check_params(CHAT, params, stream=stream)}
        if "max_tokens" in body and (is_openai_host(self.settings.base_url)  # GUIDE 10: GPT-5 models need it
                                     or takes_max_completion_tokens(body["model"])):
            body["max_completion_tokens"] = body.pop("max_tokens")
        return self._create("/chat/completions", CHAT_KIND, body, stream, extra_body, cancel)

    def responses(self, model: str, input: str | Sequence[Mapping[str, Any]], *, instructions: str | None = None,
                  stream: bool = False, extra_body: Mapping[str, Any] | None = None,
                  cancel: CancelToken | None = None, **params: Any) -> Completion | Stream:
        """``POST /responses`` (OpenAI's primary API, GUIDE 11): ``input`` a string or a list of
        message items, ``instructions`` the system message. ``max_tokens``, ``reasoning_effort``
        and ``verbosity`` are sent as this API names them (``max_output_tokens``,
        ``reasoning.effort``, ``text.verbosity``); ``store`` is false unless given (the API's default keeps
        every response, GUIDE 18). Answers read as chat's: ``text``, ``reasoning``, ``usage`` with
        ``prompt_tokens``/``completion_tokens``."""
        if input is None or input == "" or input == []:
            raise ConfigurationError("input must not be empty")
        body: dict[str, Any] = {"model": self._model(model), "input": input if isinstance(input, str) else list(input)}
        if instructions:
            body["instructions"] = instructions
        fields = responses.request_fields(check_params(RESPONSES, params, stream=stream))
        if "max_output_tokens" in fields:  # max_tokens, renamed: the Responses API's own lower bound applies
            PARAMS["max_output_tokens"].check(fields["max_output_tokens"], "max_tokens (max_output_tokens)")
        body.update(fields)
        return self._create("/responses", RESPONSES_KIND, body, stream, extra_body, cancel)

    # -- plumbing ------------------------------------------------------------------
    @staticmethod
    def _model(model: str) -> str:
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError("model must be a non-empty string")
        return model.strip()

    def _create(self, path: str, kind: str, body: dict[str, Any], stream: bool,
                extra_body: Mapping[str, Any] | None, cancel: CancelToken | None) -> Completion | Stream:
        """Send, after the fields this model refused before are changed; once more each time a 400
        names a field the call can do without (GPT-5 refuses max_tokens, then temperature). The answer
        carries what was sent and the notes."""
        if extra_body:
            body.update(extra_body)
        model = body["model"]
        notes = self._rules.apply(model, body)
        try:
            for retries_left in range(MAX_ADAPTATIONS, -1, -1):
                try:
                    result = self._open(path, kind, body, stream, cancel)
                    break
                except BadRequestError as exc:
                    note = self._rules.learn(model, exc, body) if retries_left else None
                    if note is None:
                        raise
                    notes.append(note)
        except NotFoundError as exc:
            raise self._model_not_found(exc, model) from None
        result.sent = {k: v for k, v in body.items() if k not in _NOT_PARAMETERS}
        result.notes = notes
        return result

    def _open(self, path: str, kind: str, body: dict[str, Any], stream: bool,
              cancel: CancelToken | None) -> Completion | Stream:
        started = time.monotonic()
        if not stream:
            response = self._send("POST", path, body, stream=False, cancel=cancel)
            return bodies.completion(response, kind, started, self._secrets)
        body["stream"] = True
        asked_usage = kind != RESPONSES_KIND and "stream_options" not in body and not self._skip_stream_options
        if asked_usage:
            body["stream_options"] = {"include_usage": True}
        try:
            response = self._send("POST", path, body, stream=True, cancel=cancel)
        except APIStatusError as exc:
            if not (asked_usage and exc.status in (400, 422) and self._mentions_stream_options(exc)):
                raise
            self._skip_stream_options = True
            body.pop("stream_options")
            response = self._send("POST", path, body, stream=True, cancel=cancel)
        chunks = bodies.stream_chunks(response, self._secrets, self._read_error, cancel)
        return Stream(response, kind, started=started, secrets=self._secrets, on_read_error=self._read_error,
                      cancel=cancel, chunks=chunks)

    def _model_not_found(self, error: NotFoundError, model: str) -> NotFoundError:
        """A 404 naming the model gets the closest models the server lists (one line)."""
        text = error.message if isinstance(error.message, str) else ""
        if error.code != "model_not_found" and "model" not in text.lower():
            return error
        try:
            available = [entry["id"] for entry in self.list_models()]
        except OpenAIError:
            return error
        if available and model not in available and not all(repr(name) in text for name in available):
            near = ", ".join(model_list.closest(model, available))
            error.message = f"{text} Available models closest to {model!r}: {near}"
            error.args = (str(error),)
        return error

    @staticmethod
    def _mentions_stream_options(exc: APIStatusError) -> bool:
        return exc.param == "stream_options" or "stream_options" in exc.message

    @property
    def _secrets(self) -> tuple[str, ...]:
        return (self.settings.api_key,) if self.settings.api_key else ()

    def api_request(self, method: str, path: str, body: dict[str, Any] | None = None, *,
                    files: Mapping[str, Any] | None = None) -> requests.Response:
        """Any other route of the API (``/files``, ``/batches``), with the same retries and errors; ``files``
        sends ``body`` as multipart form fields with these files (``requests``' ``files=``)."""
        return self._send(method, path, body, stream=False, files=files)

    def _send(self, method: str, path: str, body: dict[str, Any] | None, *, stream: bool,
              cancel: CancelToken | None = None, files: Mapping[str, Any] | None = None) -> requests.Response:
        """Send with retries; return a response with status < 400 or raise."""
        settings = self.settings
        settings.require_key()
        url = settings.base_url + path
        headers = settings.wire_headers(USER_AGENT)  # str values, the key masked in reprs
        data: Any = None
        if files is not None:
            data = body
        elif body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode()
        if stream:
            headers["Accept"] = "text/event-stream"
        timeout = (settings.connect_timeout, settings.read_timeout)
        attempt, stale_retried = 0, False
        while True:
            if cancel is not None:
                cancel.check()
            try:
                response = self._session.request(method, url, data=data, headers=headers, timeout=timeout,
                                                 stream=stream, proxies=settings.proxies(), files=files)
            except requests.exceptions.RequestException as exc:
                if not stale_retried and stale_connection(exc):
                    stale_retried = True  # a keep-alive race: the server never read this request
                    continue
                error = self._transport_error(exc, url)
                if attempt < settings.max_retries:
                    self._pause(backoff_delay(attempt), cancel)
                    attempt += 1
                    continue
                raise error from None
            if cancel is not None:
                cancel.attach(response)
                if cancel.cancelled:
                    response.close()
                    cancel.check()
            if response.status_code < 400:
                return response
            error = self._status_error(response, streamed=stream)
            delay = self._retry_delay(response, error, attempt)
            if delay is None:
                raise error
            self._pause(delay, cancel)
            attempt += 1

    def _pause(self, seconds: float, cancel: CancelToken | None) -> None:
        """Wait between attempts; a cancel ends the wait and the call."""
        if cancel is None:
            self._sleep(seconds)
        elif cancel.wait(seconds):
            cancel.check()

    def _status_error(self, response: requests.Response, *, streamed: bool) -> APIStatusError:
        try:
            body = response.raw.read(ERROR_BODY_LIMIT, decode_content=True) if streamed else response.content
        except Exception:  # noqa: BLE001 - a broken error body still gives a status error
            body = b""
        finally:
            response.close()
        error = status_error(
            response.status_code,
            body or b"",
            content_type=response.headers.get("content-type", ""),
            request_id=response.headers.get("x-request-id"),
            retry_after=retry_after(response.headers),
            secrets=self._secrets,
        )
        if error.status == 404 and not urlsplit(self.settings.base_url).path.rstrip("/").endswith("/v1"):
            error.message += " (the base URL does not end in /v1: is it the server's OpenAI-compatible API?)"
            error.args = (str(error),)
        return error

    def _retry_delay(self, response: requests.Response, error: APIStatusError, attempt: int) -> float | None:
        """How long to wait before retrying, or None to give up now."""
        should = response.headers.get("x-should-retry", "").lower()
        retryable = should == "true" or (
            should != "false" and (error.status in RETRYABLE_STATUSES or error.status >= 500)
        )
        wait = error.retry_after
        if wait is not None and wait > MAX_RETRY_AFTER and (retryable or isinstance(error, RateLimitError)):
            # Too long to wait inside a notebook cell: fail now, and say when to try again.
            if isinstance(error, RateLimitError):
                error.message += f" (the server asks to wait {wait:.0f} s before retrying)"
            else:
                error.message += f" (retry after {wait:.0f} s)"
            error.args = (str(error),)
            return None
        if not retryable or attempt >= self.settings.max_retries:
            return None
        return wait if wait is not None and wait >= 0 else backoff_delay(attempt)

    def _transport_error(self, exc: requests.exceptions.RequestException, url: str) -> APIConnectionError:
        host = requests.utils.urlparse(url).netloc
        if isinstance(exc, requests.exceptions.ConnectTimeout):
            return APITimeoutError(f"Timed out connecting to {host} after {self.settings.connect_timeout:g} s", url=url)
        if isinstance(exc, requests.exceptions.Timeout):
            return APITimeoutError(f"No answer from {host} within {self.settings.read_timeout:g} s", url=url)
        if isinstance(exc, requests.exceptions.ProxyError):
            return APIConnectionError(
                f"Could not connect to {host} through the proxy (see HTTPS_PROXY / HTTP_PROXY "
                f"/ NO_PROXY): {transport_reason(exc)}",
                url=url,
            )
        return APIConnectionError(f"Could not connect to {host}: {transport_reason(exc)}", url=url)

    def _read_error(self, exc: BaseException) -> APIConnectionError:
        reason = transport_reason(exc)
        if "timed out" in reason:
            return APITimeoutError(f"The stream stalled: no data for {self.settings.read_timeout:g} s")
        return APIConnectionError(f"The stream was cut off: {reason}")

    def ensure_pool(self, size: int) -> None:
        """Keep up to ``size`` connections per host (requests keeps 10), for ``size`` calls at once."""
        for prefix in ("http://", "https://"):
            adapter = self._session.get_adapter(prefix)
            if getattr(adapter, "_pool_maxsize", size) < size:
                self._session.mount(prefix, requests.adapters.HTTPAdapter(pool_connections=10, pool_maxsize=size))

    def watch_responses(self, observe: Callable[[int, Mapping[str, str]], None]) -> Callable[[], None]:
        """Call ``observe(status, headers)`` for every HTTP answer, retried ones included (a batch's rate
        adapter listens); returns the function that stops it."""
        def hook(response: requests.Response, *args: Any, **kwargs: Any) -> None:
            observe(response.status_code, response.headers)

        self._session.hooks["response"].append(hook)
        return lambda: hook in self._session.hooks["response"] and self._session.hooks["response"].remove(hook)

    def close(self) -> None:
        """Close the connection pool."""
        self._session.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
