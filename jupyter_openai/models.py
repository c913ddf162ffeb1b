"""Model lists as servers send them: ids, the closest names to a wrong one, one model's entry.

Servers list models in more shapes than the reference's ``{"object": "list", "data": [...]}``:
llama.cpp's ``llama-server`` adds an Ollama-style ``models`` list and names a model by its file
path, llama-cpp-python's omits ``created``, and none of the local ones answers
``GET /models/{id}`` (GUIDE 4, 12). Pure functions over the parsed JSON; no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any

CLOSEST = 5


def entries(listing: Any) -> list[dict[str, Any]]:
    """The model entries of a ``GET /models`` answer (objects with a string ``id``)."""
    data = listing.get("data") if isinstance(listing, Mapping) else listing
    if not isinstance(data, list):
        return []
    return [dict(entry) for entry in data if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
            and entry["id"]]


def ids(listing: Any) -> list[str]:
    """The model ids, in the server's order."""
    return [entry["id"] for entry in entries(listing)]


def closest(name: str, available: list[str], count: int = CLOSEST) -> list[str]:
    """Up to ``count`` of ``available`` closest to ``name`` (best first; the first ones listed when
    none is close)."""
    lowered = {model.lower(): model for model in available}
    near = difflib.get_close_matches(name.lower(), list(lowered), n=count, cutoff=0.3)
    picked = [lowered[model] for model in near]
    return (picked + [m for m in available if m not in picked])[:count]


def find(listing: Any, model: str) -> dict[str, Any] | None:
    """The entry for ``model`` in a listing, or None."""
    return next((entry for entry in entries(listing) if entry["id"] == model), None)
