"""Error answers of ``fakeserver``: the OpenAI error object, the other styles servers use in the wild,
and the parameter checks that raise them (shared by chat/completions and the Responses API).

Shapes: GUIDE §3 (``{"error": {"message", "type", "param", "code"}}``) and §4 (vLLM, llama.cpp,
FastAPI/llama-cpp-python, HTML pages); the OpenAI message texts are the ones the real API sends.
"""

from __future__ import annotations

import json
from typing import Any

HTML_PAGE = (
    "<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx/1.25.3</center>\r\n"
    "</body>\r\n</html>\r\n"
)
# status -> (type, code, default message) for injected errors in the OpenAI style.
ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Bad request (injected fault)."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-te****."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported."),
    404: ("invalid_request_error", "model_not_found",
          "The model `fake-chat` does not exist or you do not have access to it."),
    409: ("invalid_request_error", None, "Conflict (injected fault)."),
    422: ("invalid_request_error", None, "Unprocessable entity (injected fault)."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 2s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
BODY_STYLES = ("openai", "int_code", "flat", "detail", "string", "html", "empty")


class ApiError(Exception):
    """An error answer: HTTP status plus the fields of the OpenAI error object.

    ``raw`` (a JSON-able value) replaces the whole body, for servers whose errors are not OpenAI's.
    """

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, type: str = "invalid_request_error", raw: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.type = status, message, param, code, type
        self.raw = raw

    def body(self) -> Any:
        if self.raw is not None:
            return self.raw
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def dumps(obj: Any) -> str:
    """Compact JSON with raw UTF-8 (like the real API: multi-byte text is not \\u-escaped)."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def error_payload(status: int, reason: str, message: str | None = None, style: str = "openai",
                  err_type: str | None = None, code: str | None = None) -> tuple[bytes, str | None]:
    """The body and Content-Type of an error in one of the styles servers use in the wild."""
    d_type, d_code, d_message = ERROR_DEFAULTS.get(status, ("server_error", None, f"Error {status}."))
    message, err_type = message or d_message, err_type or d_type
    code = code if code is not None else d_code
    if style == "openai":
        obj: Any = {"error": {"message": message, "type": err_type, "param": None, "code": code}}
    elif style == "int_code":  # vLLM: the code is the HTTP status as an integer
        obj = {"error": {"message": message, "type": "BadRequestError" if status < 500 else "InternalServerError",
                         "param": None, "code": status}}
    elif style == "flat":  # older vLLM / FastChat
        obj = {"object": "error", "message": message, "type": err_type, "param": None, "code": status}
    elif style == "detail":  # FastAPI (llama-cpp-python)
        obj = {"detail": message}
    elif style == "string":
        obj = message
    elif style == "html":
        return HTML_PAGE.format(status=status, reason=reason).encode(), "text/html"
    elif style == "empty":
        return b"", None
    else:
        raise ValueError(f"unknown body_style {style!r}")
    return dumps(obj).encode(), "application/json"


def mask_key(key: str) -> str:
    """Show at most the first 5 characters of a key, never the whole of a short one."""
    return key[: min(5, len(key) // 2)] + "****"


def model_not_found(model: str) -> ApiError:
    """OpenAI's 404 for a model it does not serve (param null, code model_not_found)."""
    return ApiError(404, f"The model `{model}` does not exist or you do not have access to it.", None,
                    "model_not_found")


# ---------------------------------------------------------------- parameter checks

def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def shown(value: Any) -> str:
    """A request value as OpenAI quotes it in messages: numbers as sent (0.2, 0.0, 5), strings in quotes."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def listed(values: tuple[str, ...]) -> str:
    """``'a', 'b', and 'c'`` (OpenAI's way of listing supported values)."""
    quoted = [f"'{v}'" for v in values]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def check_range(body: dict, name: str, lo: float | None, hi: float | None, integer: bool = False) -> None:
    v = body.get(name)
    if v is None:
        return
    kind = "integer" if integer else "decimal"
    if not is_number(v) or (integer and not isinstance(v, int)):
        raise ApiError(400, f"Invalid type for '{name}': expected {'an' if integer else 'a'} {kind}, "
                            f"but got {type(v).__name__} instead.", name, "invalid_type")
    if lo is not None and v < lo:
        raise ApiError(400, f"Invalid '{name}': {kind} below minimum value. Expected a value >= {lo}, "
                            f"but got {v} instead.", name, f"{kind}_below_min_value")
    if hi is not None and v > hi:
        raise ApiError(400, f"Invalid '{name}': {kind} above maximum value. Expected a value <= {hi}, "
                            f"but got {v} instead.", name, f"{kind}_above_max_value")


def check_type(body: dict, name: str, types: tuple[type, ...], label: str) -> None:
    v = body.get(name)
    if v is not None and (not isinstance(v, types) or (bool not in types and isinstance(v, bool))):
        raise ApiError(400, f"Invalid type for '{name}': expected {label}, but got {type(v).__name__} instead.",
                       name, "invalid_type")


def check_enum(body: dict, name: str, values: tuple[str, ...], param: str | None = None) -> None:
    """A schema-level enum (any model): ``Invalid value: 'x'. Supported values are: ...`` (code invalid_value)."""
    v = body.get(name)
    if v is not None and v not in values:
        raise ApiError(400, f"Invalid value: {shown(v)}. Supported values are: {listed(values)}.",
                       param or name, "invalid_value")


def missing(name: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{name}'.", name, "missing_required_parameter")


def unsupported_parameter(name: str, instead: str | None = None) -> ApiError:
    """GUIDE §10: what GPT-5 models answer to a parameter they do not take at all."""
    hint = f" Use '{instead}' instead." if instead else ""
    return ApiError(400, f"Unsupported parameter: '{name}' is not supported with this model.{hint}", name,
                    "unsupported_parameter")


def unsupported_value(name: str, value: Any, default: Any = None, supported: tuple[str, ...] = ()) -> ApiError:
    """GUIDE §10: a value the model does not take (``Only the default (1) value is supported.``)."""
    tail = (f"Only the default ({shown(default)}) value is supported." if not supported
            else f"Supported values are: {listed(supported)}.")
    return ApiError(400, f"Unsupported value: '{name}' does not support {shown(value)} with this model. {tail}",
                    name, "unsupported_value")
