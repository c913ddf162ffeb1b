"""Tests of structured output: schemas from dicts, JSON text, files and pydantic models; the request fields
of each endpoint; answers parsed and validated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jupyter_openai.calls.schema import SchemaError, check_answer, check_schema, columns, normalize, request_fields
from jupyter_openai.errors import ConfigurationError

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
