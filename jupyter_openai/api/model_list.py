"""Model lists as servers send them: ids, the closest names to a wrong one, one model's entry.

Servers list models in more shapes than the reference's ``{"object": "list", "data": [...]}``:
llama.cpp's ``llama-server`` adds an Ollama-style ``models`` list and names a model by its file
path, llama-cpp-python's omits ``created``, and none of the local ones answers
``GET /models/{id}`` (GUIDE 4, 12). Entries that are not models (strings, numbers) are skipped; a
listing with no list of models at all is an unexpected shape (:func:`problem`). ``created`` may be
anything: :func:`created_day` shows it as a date when it is one. Pure functions; no I/O.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

CLOSEST = 5


def entries(listing: Any) -> list[dict[str, Any]]:
    """The model entries of a ``GET /models`` answer (objects with a string ``id``)."""
    data = listing.get("data") if isinstance(listing, Mapping) else listing
    if not isinstance(data, list):
        return []
    return [dict(entry) for entry in data if isinstance(entry, Mapping) and isinstance(entry.get("id"), str)
            and entry["id"]]


def problem(listing: Any) -> str | None:
    """What makes a ``GET /models`` answer unreadable, in a few words naming types (None: readable).
    An empty list is readable; a non-empty one must hold at least one model object with an id."""
    data = listing.get("data") if isinstance(listing, Mapping) else listing
    if not isinstance(data, list):
        where = "its data" if isinstance(listing, Mapping) else "it"
        return f"{where} is not a list of models"
    if data and not entries(data):
        return f"none of its {len(data)} entries is a model object with an id"
    return None


def created_day(value: Any) -> str | None:
    """A model's ``created`` (Unix seconds) as ``YYYY-MM-DD``; None when it is not a usable time
    (text, a bool, NaN, or out of the calendar's range: ``1e20``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m-%d")
    except (OverflowError, OSError, ValueError):
        return None


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
