"""One call, from what the user asked to what happened: the request, a schema for the answer, running
it, the outcome's wording, the magic line's grammar and comparison grids."""

from ..lazy import exports

__all__ = ["CallRequest", "build_request", "CallOutcome", "Origin", "run_call", "summarize", "SchemaError",
           "Combination"]
__getattr__, __dir__ = exports(__name__, {
    ".request": ("CallRequest", "build_request"),
    ".run": ("CallOutcome", "Origin", "run_call"),
    ".summary": ("summarize",),
    ".schema": ("SchemaError",),
    ".compare": ("Combination",),
})
