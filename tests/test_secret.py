"""Tests of ``jupyter_openai.secret``: the :class:`Secret` type is not a string and shows only its
mask (repr, str, format, JSON, pickling, copies, string operations), :func:`wire_value` is what the
HTTP layer sends, and :func:`redact` masks keys in any JSON value.

Pure unit tests: no sockets (the same on the wire in ``test_canary.py`` and ``test_config.py``).
"""

from __future__ import annotations

import copy
import json
import pickle

import pytest

from jupyter_openai import config, errors
from jupyter_openai.secret import REDACTED, Secret, mask_key, redact, reveal, wire_value
from tests.support.keys import CANARY_KEY


def shown(value: object) -> list[str]:
    """Every way a value commonly turns into text."""
    texts = [repr(value), str(value), f"{value}", "%s" % (value,), "%r" % (value,),  # noqa: UP031
             format(value, ">40"),
             repr([value]), repr({"k": value}), repr((value,)), json.dumps(value, default=str),
             json.dumps({"k": value}, default=repr)]
    return texts


def test_secret_shows_only_its_mask() -> None:
    secret = Secret(CANARY_KEY)
    for text in shown(secret):
        assert CANARY_KEY not in text and "C4N4RYC4N4RY" not in text
    assert repr(secret) == str(secret) == f"{secret}" == mask_key(CANARY_KEY) == "<set: sk-…N4RY>"
    assert secret.reveal() == CANARY_KEY and type(secret.reveal()) is str and reveal(secret) == CANARY_KEY


def test_secret_is_not_a_string() -> None:
    """The old type was a str subclass, so these returned the raw key."""
    secret = Secret(CANARY_KEY)
    assert not isinstance(secret, str)
    with pytest.raises(TypeError):
        json.dumps(secret)
    with pytest.raises(TypeError):
        json.dumps({"api_key": secret})
    with pytest.raises(TypeError):
        secret + ""  # type: ignore[operator]
    with pytest.raises(TypeError):
        "" + secret  # type: ignore[operator]
    with pytest.raises(TypeError):
        "".join([secret])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        iter(secret)  # type: ignore[call-overload]
    with pytest.raises(TypeError):
        secret[0]  # type: ignore[index]
    assert not hasattr(secret, "__dict__")
    with pytest.raises(AttributeError):
        secret.value = "x"  # type: ignore[attr-defined]


def test_secret_error_messages_never_show_it() -> None:
    secret = Secret(CANARY_KEY)
    for attempt in (lambda: json.dumps(secret), lambda: secret + "", lambda: "".join([secret]),
                    lambda: pickle.dumps(secret), lambda: Secret(CANARY_KEY.encode())):
        with pytest.raises(TypeError) as info:
            attempt()
        assert "C4N4RY" not in str(info.value)


def test_equality_hash_and_truth() -> None:
    assert Secret(CANARY_KEY) == Secret(CANARY_KEY) and hash(Secret(CANARY_KEY)) == hash(Secret(CANARY_KEY))
    assert Secret(CANARY_KEY) != Secret("sk-other-" + "x" * 20)
    assert Secret(CANARY_KEY) != CANARY_KEY  # not a string: never equal to one
    assert len({Secret("a-b-c"), Secret("a-b-c")}) == 1
    assert bool(Secret("x")) and not bool(Secret(""))
    assert Secret(Secret(CANARY_KEY)) == Secret(CANARY_KEY)


def test_pickling_is_refused_and_copies_are_the_same_object() -> None:
    secret = Secret(CANARY_KEY)
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        with pytest.raises(TypeError):
            pickle.dumps(secret, protocol)
    with pytest.raises(TypeError):
        pickle.dumps({"settings": [secret]})
    assert copy.copy(secret) is secret and copy.deepcopy(secret) is secret
    assert copy.deepcopy({"k": [secret]})["k"][0] is secret


def test_wire_value_is_sent_as_the_plain_text_but_shows_masked() -> None:
    wired = wire_value(Secret("Bearer " + CANARY_KEY))
    assert isinstance(wired, str) and wired == "Bearer " + CANARY_KEY
    assert wired.encode("latin-1") == ("Bearer " + CANARY_KEY).encode()  # what http.client sends
    assert CANARY_KEY not in repr(wired) and CANARY_KEY not in repr({"Authorization": wired})
    assert wire_value("plain") == "plain" and type(wire_value("plain")) is str
    with pytest.raises(TypeError):
        pickle.dumps(wired)


def test_old_names_still_importable() -> None:
    assert config.SecretStr is Secret and config.mask_key is mask_key and config.reveal is reveal
    assert errors.redact is redact
    assert reveal(None) is None and reveal("plain") == "plain"


# ---------------------------------------------------------------- redact: any JSON value

@pytest.mark.parametrize("value, expected", [
    (f"key {CANARY_KEY}", f"key {REDACTED}"),
    ([CANARY_KEY], [REDACTED]),
    ((CANARY_KEY, 1), (REDACTED, 1)),
    ({"param": [CANARY_KEY, {"deep": [CANARY_KEY]}]}, {"param": [REDACTED, {"deep": [REDACTED]}]}),
    ({CANARY_KEY: 1}, {REDACTED: 1}),
    (42, 42), (4.5, 4.5), (True, True), (None, None),
    ([1, "a", None, False], [1, "a", None, False]),
    (CANARY_KEY.encode(), REDACTED),
])
def test_redact_any_json_value(value: object, expected: object) -> None:
    result = redact(value)
    assert result == expected and type(result) is type(expected)


def test_redact_given_secrets_of_any_shape() -> None:
    token = "LocalToken" + "Q7x" * 10  # no sk- shape: only the given secret can catch it
    data = {"error": {"message": f"bad {token}", "param": [token], "code": {"k": token}}}
    for secrets in ((token,), (Secret(token),), [Secret(token), None, ""]):
        assert token not in json.dumps(redact(data, secrets))
    assert redact(Secret(CANARY_KEY)) == mask_key(CANARY_KEY)
    assert redact(f"{token} {token}", (token[:12], token)) == f"{REDACTED} {REDACTED}"  # longest first
