"""Tests of ``jupyter_openai.errors``: the exception tree, status mapping, error-body parsing in every
shape servers use (GUIDE section 4), one-line messages and redaction of keys.

Pure unit tests: no sockets. The same shapes go over real HTTP in ``test_client.py``.
"""

from __future__ import annotations

import json

import pytest

from jupyter_openai import errors
from jupyter_openai.errors import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    OpenAIError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    parse_error_body,
    redact,
    status_error,
)

KEY = "sk-proj-" + "Zq9" * 12


# ---------------------------------------------------------------- the tree

@pytest.mark.parametrize("child, parent", [
    (ConfigurationError, OpenAIError),
    (ConfigurationError, ValueError),
    (APIConnectionError, OpenAIError),
    (APITimeoutError, APIConnectionError),
    (APIStatusError, OpenAIError),
    (BadRequestError, APIStatusError),
    (AuthenticationError, APIStatusError),
    (PermissionDeniedError, APIStatusError),
    (NotFoundError, APIStatusError),
    (ConflictError, APIStatusError),
    (RateLimitError, APIStatusError),
    (InternalServerError, APIStatusError),
    (StreamError, OpenAIError),
    (OpenAIError, Exception),
])
def test_tree_parent(child: type, parent: type) -> None:
    assert issubclass(child, parent)


@pytest.mark.parametrize("a, b", [
    (APIStatusError, APIConnectionError),
    (StreamError, APIStatusError),
    (StreamError, APIConnectionError),
    (ConfigurationError, APIStatusError),
    (APITimeoutError, APIStatusError),
    (RateLimitError, InternalServerError),
])
def test_tree_branches_are_separate(a: type, b: type) -> None:
    assert not issubclass(a, b) and not issubclass(b, a)


def test_tree_is_documented_and_exported() -> None:
    for name in errors.__all__:
        assert hasattr(errors, name)
        obj = getattr(errors, name)
        if isinstance(obj, type):
            assert name in errors.__doc__ or name == "OpenAIError" or obj.__doc__
    for cls in (ConfigurationError, APIConnectionError, APITimeoutError, APIStatusError, BadRequestError,
                AuthenticationError, PermissionDeniedError, NotFoundError, ConflictError, RateLimitError,
                InternalServerError, StreamError):
        assert cls.__name__ in errors.__doc__


# ---------------------------------------------------------------- status -> class

@pytest.mark.parametrize("status, cls", [
    (400, BadRequestError), (422, BadRequestError), (401, AuthenticationError), (403, PermissionDeniedError),
    (404, NotFoundError), (409, ConflictError), (429, RateLimitError), (500, InternalServerError),
    (502, InternalServerError), (503, InternalServerError), (504, InternalServerError), (599, InternalServerError),
])
def test_status_error_class(status: int, cls: type) -> None:
    err = status_error(status, b'{"error": {"message": "m"}}')
    assert type(err) is cls
    assert err.status == status
    assert str(err).startswith(f"{status} ")


@pytest.mark.parametrize("status", [405, 408, 410, 418, 451])
def test_other_4xx_is_plain_status_error(status: int) -> None:
    err = status_error(status, b"nope")
    assert type(err) is APIStatusError
    assert str(err) == f"{status} HTTP error: nope"


def test_status_error_fields_and_str() -> None:
    body = json.dumps({"error": {"message": "Invalid 'n': integer above maximum value.", "type":
                                 "invalid_request_error", "param": "n", "code": "integer_above_max_value"}})
    err = status_error(400, body, request_id="req_42", retry_after=3.0)
    assert (err.status, err.type, err.param, err.code, err.request_id, err.retry_after) == (
        400, "invalid_request_error", "n", "integer_above_max_value", "req_42", 3.0)
    assert err.message == "Invalid 'n': integer above maximum value."
    assert str(err) == ("400 Bad request: Invalid 'n': integer above maximum value. "
                        "(param=n, code=integer_above_max_value) [request id req_42]")
    assert err.args == (str(err),)


def test_status_error_str_without_extras() -> None:
    assert str(status_error(401, '{"error": {"message": "bad key", "param": null, "code": ""}}')) == \
        "401 Authentication failed: bad key"


# ---------------------------------------------------------------- body shapes

SHAPES = {
    "openai": (
        '{"error": {"message": "Rate limit reached", "type": "requests", "param": null, '
        '"code": "rate_limit_exceeded"}}',
        "application/json",
        {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded", "param": None},
    ),
    "int_code (vLLM)": (
        '{"error": {"message": "bad n", "type": "BadRequestError", "param": null, "code": 400}}',
        "application/json",
        {"message": "bad n", "type": "BadRequestError", "code": 400, "param": None},
    ),
    "flat (older vLLM)": (
        '{"object": "error", "message": "The model `x` does not exist.", "type": '
        '"NotFoundError", "param": null, "code": 404}',
        "application/json",
        {"message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404, "param": None},
    ),
    "detail (FastAPI)": (
        '{"detail": "Invalid API key"}',
        "application/json",
        {"message": "Invalid API key", "type": None, "code": None, "param": None},
    ),
    "string in error": (
        '{"error": "model overloaded"}',
        "application/json",
        {"message": "model overloaded", "type": None, "code": None, "param": None},
    ),
    "json string": (
        '"just a string"',
        "application/json",
        {"message": "just a string", "type": None, "code": None, "param": None},
    ),
    "plain text": (
        "upstream connect error or disconnect/reset before headers",
        "text/plain",
        {
            "message": "upstream connect error or disconnect/reset before headers",
            "type": None,
            "code": None,
            "param": None,
        },
    ),
    "empty": ("", "", {"message": "(empty body)", "type": None, "code": None, "param": None}),
    "whitespace": ("  \r\n ", "", {"message": "(empty body)", "type": None, "code": None, "param": None}),
    "html with title": (
        "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>",
        "text/html",
        {"message": "HTML page: 502 Bad Gateway", "type": None, "code": None, "param": None},
    ),
}


@pytest.mark.parametrize("body, content_type, expected", SHAPES.values(), ids=SHAPES.keys())
def test_parse_error_body_shapes(body: str, content_type: str, expected: dict) -> None:
    assert parse_error_body(body, content_type) == expected
    assert parse_error_body(body.encode(), content_type) == expected


def test_parse_error_body_accepts_parsed_objects() -> None:
    assert parse_error_body({"error": {"message": "x", "code": 7}})["code"] == 7
    assert (
        parse_error_body({"detail": [{"loc": ["body", "n"], "msg": "bad"}]})["message"]
        == '[{"loc": ["body", "n"], "msg": "bad"}]'
    )


def test_parse_error_body_detail_list_and_odd_json() -> None:
    assert "field required" in parse_error_body('{"detail": [{"msg": "field required"}]}')["message"]
    assert parse_error_body("[1, 2]")["message"] == "[1, 2]"
    assert parse_error_body("42")["message"] == "42"
    assert parse_error_body('{"error": {"code": 5}}')["message"] == '{"error": {"code": 5}}'


def test_parse_error_body_html_without_title_strips_tags_scripts_and_entities() -> None:
    page = (
        "<html><head><style>body{color:red}</style><script>var secret = 1;</script></head>"
        "<body><h1>Service&nbsp;Unavailable</h1><p>Try &amp; wait</p></body></html>"
    )
    message = parse_error_body(page, "text/html")["message"]
    assert message.startswith("HTML page: ")
    assert "Service Unavailable Try & wait" in message
    assert "<" not in message and "color" not in message and "secret" not in message


def test_parse_error_body_html_detected_without_content_type() -> None:
    assert parse_error_body("<!DOCTYPE html><title>Oops</title>")["message"] == "HTML page: Oops"


def test_html_page_is_cut_short() -> None:
    page = "<html><body>" + "<p>lorem ipsum dolor sit amet</p>\n" * 5000 + "</body></html>"
    message = parse_error_body(page.encode(), "text/html")["message"]
    assert len(message) <= len("HTML page: ") + errors.SNIPPET_CHARS
    assert "\n" not in message and message.endswith("…")


def test_long_json_message_is_one_line_and_bounded() -> None:
    body = json.dumps({"error": {"message": "line one\nline two\r\n\tline three " + "x" * 5000}})
    message = parse_error_body(body)["message"]
    assert message.startswith("line one line two line three ")
    assert len(message) <= 500 and "\n" not in message


def test_invalid_utf8_body_does_not_raise() -> None:
    assert "\ufffd" in parse_error_body(b"bad \xff\xfe bytes", "text/plain")["message"]


def test_status_error_str_is_one_line() -> None:
    err = status_error(400, '{"error": {"message": "a\\nb\\r\\nc"}}')
    assert str(err) == "400 Bad request: a b c"


# ---------------------------------------------------------------- other errors


def test_stream_error_str_and_fields() -> None:
    err = StreamError("the server sent an error mid-stream: boom", request_id="req_7")
    assert str(err) == "Stream error: the server sent an error mid-stream: boom [request id req_7]"
    assert err.request_id == "req_7"
    assert str(StreamError("x")) == "Stream error: x"


def test_connection_error_fields() -> None:
    err = APITimeoutError("Timed out connecting to h after 1 s", url="http://h/v1/models")
    assert isinstance(err, APIConnectionError)
    assert (str(err), err.message, err.url) == (
        "Timed out connecting to h after 1 s",
        "Timed out connecting to h after 1 s",
        "http://h/v1/models",
    )


# ---------------------------------------------------------------- redaction


@pytest.mark.parametrize(
    "text, expected",
    [
        (f"key {KEY} used", "key sk-*** used"),
        ("Bearer sk-abcdefgh12345678", "Bearer sk-***"),
        ("rk-live_abcdefgh and pk-ABCDEFGH.ij", "rk-*** and pk-***"),
        ("short sk-abc stays", "short sk-abc stays"),
        ("task-abcdefghij is a word", "task-abcdefghij is a word"),
        ("masked sk-te****.", "masked sk-te****."),
    ],
)
def test_redact_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_redact_given_secret_without_key_shape() -> None:
    secret = "my-local-token-123"
    assert redact(f"token {secret}!", (secret,)) == "token sk-***!"
    assert redact("nothing here", ("", secret)) == "nothing here"


def test_status_error_redacts_every_field() -> None:
    secret = "weird-secret-value"
    body = json.dumps(
        {"error": {"message": f"bad {KEY} {secret}", "type": f"t {secret}", "param": KEY, "code": f"c-{secret}"}}
    )
    err = status_error(401, body, request_id=f"req {secret}", secrets=(secret,))
    text = " ".join(map(str, (str(err), repr(err), err.args, err.type, err.param, err.code, err.request_id)))
    assert KEY not in text and secret not in text
    assert "sk-***" in err.message


# ---------------------------------------------------------------- fields of any JSON type (issue 12)

ODD_FIELDS = [
    {"param": [KEY]}, {"param": {"name": KEY}}, {"code": [KEY, 7]}, {"code": {"detail": [KEY]}},
    {"type": [KEY]}, {"message": [KEY]}, {"message": {"text": KEY}}, {"detail": [KEY]},
]


@pytest.mark.parametrize("fields", ODD_FIELDS, ids=lambda f: "-".join(f"{k}:{type(v).__name__}" for k, v in f.items()))
@pytest.mark.parametrize("nest", [True, False], ids=["error-object", "flat"])
def test_fields_of_any_json_type_are_redacted(fields: dict, nest: bool) -> None:
    token = "LocalToken" + "Q7x" * 10
    echoed = json.loads(json.dumps(fields).replace(KEY, f"{KEY} {token}"))
    body = json.dumps({"error": {"message": "bad", **echoed}} if nest else {"message": "bad", **echoed})
    err = status_error(400, body, secrets=(token,))
    info = parse_error_body(body, secrets=(token,))
    texts = [str(err), repr(err), repr(err.args), repr(vars(err)), json.dumps(vars(err), default=str), repr(info)]
    for text in texts:
        assert KEY not in text and token not in text and KEY[8:20] not in text
    if "param" in fields:
        assert "sk-***" in str(err)  # still shown, masked


def test_numbers_stay_numbers_and_lists_stay_lists() -> None:
    err = status_error(500, json.dumps({"error": {"message": "m", "code": 500, "param": ["a", KEY]}}))
    assert err.code == 500 and err.param == ["a", "sk-***"]
    assert str(err) == '500 Server error: m (param=["a", "sk-***"], code=500)'


def test_a_key_cut_by_truncation_leaves_no_fragment() -> None:
    token = "LocalToken" + "Q7x" * 10
    for cut in range(150, 200, 7):  # the key straddles the 200-character cut of a text snippet
        body = "x" * cut + token + " tail"
        err = status_error(502, body, content_type="text/plain", secrets=(token,))
        assert token[:8] not in str(err) and token[-8:] not in str(err)


def test_errors_built_directly_are_redacted_too() -> None:
    err = APIStatusError(400, f"m {KEY}", param=[KEY], code={"c": KEY}, request_id=f"req {KEY}")
    stream = StreamError(f"chunk {KEY}", request_id=f"req {KEY}")
    conn = APIConnectionError(f"refused {KEY}", url=f"http://h/v1?key={KEY}")
    for exc in (err, stream, conn):
        assert KEY not in str(exc) and KEY not in repr(exc.args) and KEY not in repr(vars(exc))
