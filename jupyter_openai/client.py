"""The HTTP client: models, completions and chat over ``requests``, with retries and streaming.

Knows nothing of IPython. One :class:`OpenAIClient` keeps one connection pool. Behaviour
follows the official SDK where users rely on it: 2 retries on 408/409/429/5xx, connection
errors and timeouts, exponential backoff with jitter, ``retry-after-ms`` / ``Retry-After``
/ ``x-should-retry`` honoured; a stream is never retried once bytes were read.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import requests

from . import __version__, models, responses
from .adapt import FieldRules, takes_max_completion_tokens
from .cancel import CancelToken
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
    parse_error_body,
    redact,
    status_error,
)
from .params import CHAT, COMPLETIONS, PARAMS, RESPONSES, check_params
from .results import CHAT_KIND, COMPLETIONS_KIND, RESPONSES_KIND, Completion
from .stream import Stream

USER_AGENT = f"jupyter-openai/{__version__} python-requests/{requests.__version__}"
RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_RETRY_AFTER = 60.0
INITIAL_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 8.0
ERROR_BODY_LIMIT = 64 * 1024
_NOT_PARAMETERS = frozenset({"model", "prompt", "messages", "input", "instructions"})
MAX_ADAPTATIONS = 6  # a call drops or renames at most this many refused fields (each costs one request, once)
NOT_A_STREAM = frozenset({"text/html", "application/json"})  # 200 answers to stream=True that carry no events

Sleep = Callable[[float], None]


def _retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asks us to wait, from ``retry-after-ms`` or ``Retry-After``."""
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        parsed = email.utils.parsedate_tz(value)
        if parsed is None:
            return None
        return email.utils.mktime_tz(parsed) - time.time()


def _stale_connection(exc: BaseException) -> bool:
    """True when a pooled connection was closed by the server before it answered: llama.cpp's
    ``llama-server`` closes its socket after every streamed answer though it says keep-alive, so the
    next request on that socket meets ``RemoteDisconnected`` without the server having read it."""
    seen, current = set(), exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, http.client.RemoteDisconnected):
            return True
        nested = current.args[1] if len(current.args) > 1 and isinstance(current.args[1], BaseException) else None
        current = (current.args[0] if current.args and isinstance(current.args[0], BaseException) else nested) \
            or current.__cause__ or current.__context__
    return False


def backoff_delay(attempt: int, rng: Callable[[], float] = random.random) -> float:
    """Delay before retry number ``attempt`` (0-based): min(0.5·2^n, 8) s times 0.75–1.0."""
    return min(INITIAL_RETRY_DELAY * 2**attempt, MAX_RETRY_DELAY) * (1 - 0.25 * rng())


def _reason(exc: BaseException) -> str:
    """The innermost readable cause of a requests/urllib3 exception, in a few words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    text = str(exc)
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if current.args and isinstance(current.args[0], BaseException):
            current = current.args[0]
            continue
        current = current.__cause__ or current.__context__
    if "Read timed out" in text:
        return "read timed out"
    if "timed out" in text:
        return "timed out"
    if "Connection broken" in text or "IncompleteRead" in text or "InvalidChunkLength" in text:
        return "connection dropped before the answer was complete"
    return text.split(": ")[-1][:200]


class OpenAIClient:
    """A small client for OpenAI-compatible APIs.

    ``OpenAIClient()`` reads ``OPENAI_API_KEY``, ``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID`` and
    ``OPENAI_BASE_URL``; keyword arguments (``api_key=``, ``base_url=``, ``read_timeout=`` …)
    or a :class:`~jupyter_openai.config.Settings` take precedence.
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

    def __repr__(self) -> str:
        return f"OpenAIClient({self.settings!r})"

    # -- endpoints -----------------------------------------------------------------
    def list_models(self) -> list[dict[str, Any]]:
        """The models the server offers (the entries of ``GET /models`` that have an id)."""
        return models.entries(self._request_json("GET", "/models"))

    def first_model(self) -> str | None:
        """The server's first listed model (asked once per client; None when it lists none or fails)."""
        if self._first_model is None:
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
            return self._request_json("GET", f"/models/{requests.utils.quote(model, safe='')}")
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
            near = ", ".join(models.closest(model, [entry["id"] for entry in listed]))
            raise NotFoundError(404, f"The server lists no model {model!r}. Available models closest to "
                                     f"{model!r}: {near}", request_id=missing.request_id) from None

    def completion(self, model: str, prompt: str | Sequence[str], *, stream: bool = False,
                   extra_body: Mapping[str, Any] | None = None, cancel: CancelToken | None = None,
                   **params: Any) -> Completion | Stream:
        """``POST /completions``; a :class:`Stream` when ``stream=True``. ``cancel`` lets another
        thread stop the call (:mod:`jupyter_openai.cancel`)."""
        if prompt is None or prompt == "" or prompt == []:
            raise ConfigurationError("prompt must not be empty")
        body = {"model": self._model(model), "prompt": prompt, **check_params(COMPLETIONS, params)}
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
        body = {"model": self._model(model), "messages": list(messages), **check_params(CHAT, params)}
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
        ``reasoning.effort``, ``text.verbosity``). Answers read as chat's: ``text``, ``reasoning``,
        ``usage`` with ``prompt_tokens``/``completion_tokens``."""
        if input is None or input == "" or input == []:
            raise ConfigurationError("input must not be empty")
        body: dict[str, Any] = {"model": self._model(model), "input": input if isinstance(input, str) else list(input)}
        if instructions:
            body["instructions"] = instructions
        fields = responses.request_fields(check_params(RESPONSES, params))
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
            request_id = response.headers.get("x-request-id")
            request_id = redact(request_id, self._secrets) if request_id else None
            return Completion(self._json(response), kind, request_id, time.monotonic() - started)
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
        content_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type in NOT_A_STREAM:
            raise self._not_a_stream(response, content_type)
        return Stream(response, kind, started=started, secrets=self._secrets, on_read_error=self._read_error,
                      cancel=cancel)

    def _model_not_found(self, error: NotFoundError, model: str) -> NotFoundError:
        """A 404 naming the model gets the closest models the server lists (one line)."""
        text = error.message if isinstance(error.message, str) else ""
        if error.code != "model_not_found" and "model" not in text.lower():
            return error
        try:
            available = [entry["id"] for entry in self.list_models()]
        except OpenAIError:
            return error
        if available and model not in available:
            near = ", ".join(models.closest(model, available))
            error.message = f"{text} Available models closest to {model!r}: {near}"
            error.args = (str(error),)
        return error

    def _not_a_stream(self, response: requests.Response, content_type: str) -> APIConnectionError:
        """A 200 answer to a streamed call that is a web page or plain JSON (a captive portal, a proxy)."""
        try:
            body = response.raw.read(ERROR_BODY_LIMIT, decode_content=True) or b""
        except Exception:  # noqa: BLE001 - the message matters more than the body
            body = b""
        finally:
            response.close()
        snippet = redact(parse_error_body(body, content_type)["message"], self._secrets)
        return APIConnectionError(f"Expected an event stream but the server sent {content_type}: {snippet}",
                                  url=response.url)

    @staticmethod
    def _mentions_stream_options(exc: APIStatusError) -> bool:
        return exc.param == "stream_options" or "stream_options" in exc.message

    @property
    def _secrets(self) -> tuple[str, ...]:
        return (self.settings.api_key,) if self.settings.api_key else ()

    def _request_json(self, method: str, path: str) -> Any:
        return self._json(self._send(method, path, None, stream=False))

    def _json(self, response: requests.Response) -> Any:
        try:
            return json.loads(response.content)
        except ValueError:
            snippet = redact(response.content[:120].decode("utf-8", "replace"), self._secrets)
            raise APIConnectionError(f"the server's answer is not JSON: {snippet!r}", url=response.url) from None

    def _send(self, method: str, path: str, body: dict[str, Any] | None, *, stream: bool,
              cancel: CancelToken | None = None) -> requests.Response:
        """Send with retries; return a response with status < 400 or raise."""
        settings = self.settings
        settings.require_key()
        url = settings.base_url + path
        headers = settings.wire_headers(USER_AGENT)  # str values, the key masked in reprs
        data = None
        if body is not None:
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
                                                 stream=stream, proxies=settings.proxies())
            except requests.exceptions.RequestException as exc:
                if not stale_retried and _stale_connection(exc):
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
        return status_error(
            response.status_code,
            body or b"",
            content_type=response.headers.get("content-type", ""),
            request_id=response.headers.get("x-request-id"),
            retry_after=_retry_after(response.headers),
            secrets=self._secrets,
        )

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
                f"/ NO_PROXY): {_reason(exc)}",
                url=url,
            )
        return APIConnectionError(f"Could not connect to {host}: {_reason(exc)}", url=url)

    def _read_error(self, exc: BaseException) -> APIConnectionError:
        reason = _reason(exc)
        if "timed out" in reason:
            return APITimeoutError(f"The stream stalled: no data for {self.settings.read_timeout:g} s")
        return APIConnectionError(f"The stream was cut off: {reason}")

    def close(self) -> None:
        """Close the connection pool."""
        self._session.close()

    def __enter__(self) -> OpenAIClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
