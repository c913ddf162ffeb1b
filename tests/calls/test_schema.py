"""Tests of structured output: schemas from dicts, JSON text, files and pydantic models; the request fields
of each endpoint; answers parsed and validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from jupyter_openai.batch.run import run_batch
from jupyter_openai.calls.request import build_request
from jupyter_openai.calls.run import run_call
from jupyter_openai.calls.schema import (
    SchemaError,
    Structured,
    check_answer,
    check_schema,
    columns,
    normalize,
    request_fields,
    structured,
)
from jupyter_openai.calls.strict import strict_problem, to_strict
from jupyter_openai.client import OpenAIClient
from jupyter_openai.errors import ConfigurationError
from jupyter_openai.session.log import SessionLog
from tests.servers.body import BodyServer
from tests.servers.fake import FakeOpenAIServer
from tests.support.checks import SUBSET, checker, load_components, responses_components

SCHEMA = {"title": "Review label", "type": "object", "properties": {"label": {"enum": ["good", "bad"]}},
          "required": ["label"], "additionalProperties": False}


def test_normalize_takes_dicts_json_text_files_and_pydantic(tmp_path: Path) -> None:
    assert normalize(SCHEMA) == ("Review_label", SCHEMA)
    assert normalize(json.dumps(SCHEMA))[1] == SCHEMA
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    assert normalize(str(tmp_path / "s.json"))[1] == SCHEMA and normalize(tmp_path / "s.json")[1] == SCHEMA
    pydantic = pytest.importorskip("pydantic")

    class Label(pydantic.BaseModel):
        label: str

    name, body = normalize(Label)
    assert name == "Label" and body["properties"]["label"]["type"] == "string"
    with pytest.raises(ConfigurationError, match="not JSON"):
        normalize("{nope")
    with pytest.raises(ConfigurationError, match="JSON Schema object"):
        normalize(42)
    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        check_schema({"type": "nothing-like-this"})


def test_request_fields_per_endpoint() -> None:
    chat = request_fields("chat", SCHEMA)
    assert chat == {"response_format": {"type": "json_schema", "json_schema": {"name": "Review_label",
                                                                              "schema": SCHEMA, "strict": True}}}
    loose = {"type": "object"}
    assert "strict" not in request_fields("chat", loose)["response_format"]["json_schema"]
    responses = request_fields("responses", loose, {"text": {"verbosity": "low"}})
    assert responses == {"text": {"verbosity": "low", "format": {"type": "json_schema", "name": "answer",
                                                                  "schema": loose}}}
    offline = request_fields("chat", SCHEMA, json_object=True)  # what llama-cpp-python's server takes
    assert offline == {"response_format": {"type": "json_object", "schema": SCHEMA}}
    with pytest.raises(ConfigurationError, match="chat and responses"):
        request_fields("completions", SCHEMA)


def test_answers_are_parsed_and_checked() -> None:
    assert check_answer('{"label": "good"}', SCHEMA) == {"label": "good"}
    with pytest.raises(SchemaError, match="not JSON"):
        check_answer('{"label": "go', SCHEMA)
    with pytest.raises(SchemaError, match="at label: 'meh' is not one of"):
        check_answer('{"label": "meh"}', SCHEMA)
    with pytest.raises(SchemaError, match="at the answer: 'label' is a required property"):
        check_answer("{}", SCHEMA)
    assert columns({"a": 1, "b": [2]}) == {"a": 1, "b": [2]} and columns([1, 2]) == {"value": [1, 2]}


# -- strict only inside OpenAI's strict subset (GUIDE 18), else converted as the SDK's parse() does --------
OPTIONAL = {"type": "object", "properties": {"label": {"type": "string"}, "score": {"type": "integer"}},
            "required": ["label"], "additionalProperties": False}
NESTED_OPEN = {"type": "object", "properties": {"who": {"type": "object", "properties": {"name": {"type": "string"}},
                                                        "required": ["name"]}},
               "required": ["who"], "additionalProperties": False}
ONE_OF = {"type": "object", "properties": {"v": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
          "required": ["v"], "additionalProperties": False}


@pytest.mark.parametrize(("schema", "problem"), [
    (SCHEMA, None),
    (OPTIONAL, "In context=(), 'required' is required to be supplied and to be an array including every key in "
               "properties. Missing 'score'."),
    (NESTED_OPEN, "In context=('properties', 'who'), 'additionalProperties' is required to be supplied and to be "
                  "false."),
    (ONE_OF, "In context=('properties', 'v'), 'oneOf' is not permitted."),
    ({"type": "array", "items": {"type": "string"}}, "schema must be a JSON Schema of 'type: \"object\"', got "
                                                     "'type: \"array\"'."),
    ({"anyOf": [SCHEMA]}, "schema must be a JSON Schema of 'type: \"object\"', got 'type: \"None\"'."),
])
def test_strict_problem_names_the_first_place_outside_the_subset(schema: dict, problem: str | None) -> None:
    assert strict_problem(schema) == problem


def test_a_schema_in_the_subset_is_sent_strict_and_as_written() -> None:
    assert structured(SCHEMA) == Structured("Review_label", SCHEMA, True, None)
    assert structured({"type": "object"}) == Structured("answer", {"type": "object"}, False, None)  # strict not asked


def test_an_optional_field_is_made_required_and_nullable_with_a_note() -> None:
    shaped = structured(OPTIONAL)
    assert shaped.strict and strict_problem(shaped.schema) is None
    assert shaped.schema["required"] == ["label", "score"]
    assert shaped.schema["properties"]["score"] == {"type": ["integer", "null"]}
    assert shaped.note == ("Note: schema 'answer' sent in OpenAI's strict form, as the SDK's parse() does: "
                           "optional score now required and nullable")
    assert OPTIONAL["required"] == ["label"]  # the user's schema is not changed
    assert check_answer('{"label": "x", "score": null}', shaped.schema) == {"label": "x", "score": None}


def test_a_nested_open_object_is_closed_with_a_note() -> None:
    shaped = structured(NESTED_OPEN)
    assert shaped.strict and shaped.schema["properties"]["who"]["additionalProperties"] is False
    assert shaped.note is not None and "every object closed" in shaped.note


def test_a_schema_that_cannot_be_made_strict_goes_without_strict_and_says_why() -> None:
    shaped = structured(ONE_OF)
    assert not shaped.strict and shaped.schema == ONE_OF
    assert "outside OpenAI's strict subset" in shaped.note and "'oneOf' is not permitted" in shaped.note
    assert "strict" not in request_fields("chat", shaped)["response_format"]["json_schema"]


def test_a_pydantic_model_is_converted_as_the_sdk_does() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Where(pydantic.BaseModel):
        city: str

    class Review(pydantic.BaseModel):
        model_config = pydantic.ConfigDict(extra="forbid")
        label: str
        note: str | None = None
        where: Where = pydantic.Field(description="the place")  # a $ref with a sibling keyword: inlined

    class Plain(pydantic.BaseModel):
        label: str

    shaped = structured(Review)
    assert shaped.strict and strict_problem(shaped.schema) is None
    assert shaped.schema["required"] == ["label", "note", "where"]
    assert "default" not in shaped.schema["properties"]["note"]  # default None dropped, as the SDK does
    assert shaped.schema["properties"]["where"]["additionalProperties"] is False
    assert shaped.note is not None and "optional note now required and nullable" in shaped.note
    sdk = pytest.importorskip("openai.lib._pydantic")
    assert shaped.schema == sdk.to_strict_json_schema(Review)  # nullable already: the SDK's own result
    plain = structured(Plain)  # closing a model's objects is what parse() always does: no note
    assert plain.strict and plain.note is None and plain.schema["additionalProperties"] is False


def test_to_strict_makes_each_kind_of_optional_property_nullable() -> None:
    schema = {"type": "object", "additionalProperties": False, "required": [], "$defs": {"D": {"type": "string"}},
              "properties": {"e": {"type": "string", "enum": ["a", "b"]}, "r": {"$ref": "#/$defs/D"},
                             "t": {"type": ["string", "integer"]}, "n": {"type": ["string", "null"]},
                             "a": {"anyOf": [{"type": "string"}, {"type": "integer"}]}, "any": {}}}
    converted, optional = to_strict(schema)
    props = converted["properties"]
    assert optional == ["e", "r", "t", "n", "a", "any"] and converted["required"] == optional
    assert props["e"] == {"anyOf": [{"type": "string", "enum": ["a", "b"]}, {"type": "null"}]}
    assert props["r"] == {"anyOf": [{"$ref": "#/$defs/D"}, {"type": "null"}]}
    assert props["t"] == {"type": ["string", "integer", "null"]} and props["n"] == {"type": ["string", "null"]}
    assert props["a"] == {"anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]}
    assert props["any"] == {}
    assert strict_problem(converted) is None and check_schema(converted) == converted


@pytest.mark.parametrize("endpoint", ["chat", "responses"])
@pytest.mark.parametrize(("schema", "answer"), [(OPTIONAL, {"label": "x", "score": None}),
                                                (NESTED_OPEN, {"who": {"name": "Ada"}}), (ONE_OF, {"v": 3})],
                         ids=["optional", "nested-open", "one-of"])
def test_the_test_server_takes_what_is_sent(server: FakeOpenAIServer, client: OpenAIClient, endpoint: str,
                                            schema: dict, answer: dict) -> None:
    """Before: strict with each of these schemas, which OpenAI (and the test server) answer with a 400. (With a
    json_schema format the test server answers a JSON prompt with itself.)"""
    request = build_request({"prompt": json.dumps(answer), "model": "fake-chat", "endpoint": endpoint,
                             "schema": schema, "stream": False})
    outcome = run_call(client, request, log=SessionLog())
    assert outcome.error is None and json.loads(outcome.text) == answer, outcome.error
    assert len(outcome.notes) == 1 and outcome.notes[0].startswith("Note: ")
    body = server.requests[-1].body
    fmt = body["response_format"]["json_schema"] if endpoint == "chat" else body["text"]["format"]
    assert fmt.get("strict", False) is (schema is not ONE_OF)
    check = checker(load_components(SUBSET)) if endpoint == "chat" else checker(responses_components())
    check("CreateChatCompletionRequest" if endpoint == "chat" else "CreateResponse", body)


# -- a schema is checked whole before anything is sent, and never fetched (GUIDE 18) ----------------------
def test_a_ref_to_nothing_fails_before_sending(server: FakeOpenAIServer, client: OpenAIClient) -> None:
    broken = {"type": "object", "properties": {"a": {"$ref": "#/$defs/Missing"}}, "$defs": {"There": {}}}
    with pytest.raises(ConfigurationError, match=r"^the schema's \$ref '#/\$defs/Missing' points to nothing"):
        build_request({"prompt": "x", "model": "fake-chat", "schema": broken})
    with pytest.raises(ConfigurationError, match="points to nothing"):
        run_batch([{"t": "a"}, {"t": "b"}], "{t}", model="fake-chat", schema=broken, client=client, cache=None,
                  progress=False, log=SessionLog())
    assert server.requests == []


def test_a_remote_ref_is_never_fetched(body_server: BodyServer) -> None:
    body_server.answer(json.dumps({"type": "string"}).encode(), "application/json")
    remote = {"type": "object", "properties": {"a": {"$ref": body_server.url + "/schema.json"}}}
    with pytest.raises(ConfigurationError, match=r"points outside the schema, which is never fetched"):
        build_request({"prompt": "x", "model": "fake-chat", "schema": remote})
    with pytest.raises(SchemaError, match="could not be checked"):
        check_answer('{"a": 1}', remote)
    assert body_server.hits == 0


@pytest.mark.parametrize(("schema", "match"), [
    ({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}, "$ref": "#/$defs/a"}, "loop"),
    ({"$id": "https://example.com/root", "properties": {"a": {"$ref": "other.json"}}}, "points outside"),
    ({"properties": {"a": {"$ref": "#nowhere"}}}, "points to nothing"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "("}}}, "not a valid JSON Schema"),
])
def test_every_check_failure_is_one_line_before_sending(schema: dict, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as info:
        build_request({"prompt": "x", "model": "fake-chat", "schema": schema})
    assert "\n" not in str(info.value)


def test_refs_that_resolve_inside_the_schema_are_fine() -> None:
    schema = {"$id": "https://example.com/root", "type": "object", "properties": {
        "a": {"$ref": "#/$defs/A"}, "b": {"$ref": "item.json"}, "c": {"$ref": "#anchored"}, "me": {"$ref": "#"}},
        "$defs": {"A": {"type": "string"}, "B": {"$id": "item.json", "type": "integer"},
                  "C": {"$anchor": "anchored", "type": "boolean"}}}
    assert check_schema(schema) == schema
    assert check_answer('{"a": "x", "b": 1, "c": true, "me": {"a": "y"}}', schema)["b"] == 1
    with pytest.raises(SchemaError, match="at b: 'one' is not of type 'integer'"):
        check_answer('{"b": "one"}', schema)


def test_an_answer_too_deep_to_check_is_one_line() -> None:
    with pytest.raises(SchemaError, match="nests too deeply"):
        check_answer("[" * 100_000 + "]" * 100_000, {"type": "array"})


def test_a_row_whose_answer_cannot_be_checked_is_that_rows_error(scripted: Any) -> None:
    """Before: the checker's RecursionError escaped the call and aborted the batch."""
    deep = "[" * 100_000 + "]" * 100_000

    def answer(method: str, path: str, body: Any) -> tuple[int, Any]:
        text = deep if body["messages"][-1]["content"] == "deep" else "[1]"
        return 200, {"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}

    _server, client = scripted(answer)
    out = run_batch([{"t": "deep"}, {"t": "fine"}], "{t}", model="m", schema={"type": "array"}, client=client,
                    cache=None, progress=False, log=SessionLog(), concurrency=1)
    assert [r["status"] for r in out] == ["error", "ok"]
    assert out[0]["error"] == "the answer could not be checked: it nests too deeply"
