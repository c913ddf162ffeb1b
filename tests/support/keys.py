"""Fake keys the tests plant: none is real, and none may show up anywhere it was not sent."""

from __future__ import annotations

import json
from typing import Any

from tests.servers.fake import TEST_KEY

#: A fake key planted by the leak tests; it must never show up anywhere.
CANARY_KEY = "sk-canary-" + "C4N4RY" * 6


def fragments(key: str) -> list[str]:
    """The key and long pieces of it (a mask may show the last four characters, no more)."""
    body = key[3:] if key.startswith("sk-") else key
    return [key, body, body[:12], body[-12:], body[len(body) // 3: len(body) // 3 + 12]]


def json_texts(*values: Any) -> list[str]:
    """``json.dumps`` of each value: a TypeError (not serializable) is fine, the fallbacks must be masked."""
    texts = []
    for value in values:
        try:
            texts.append(json.dumps(value))
        except TypeError:
            pass
        texts += [json.dumps(value, default=str), json.dumps(value, default=repr)]
    return texts


#: The header that sends the test server's key (``tests.servers.fake.TEST_KEY``).
AUTH = {"Authorization": "Bearer " + TEST_KEY}
