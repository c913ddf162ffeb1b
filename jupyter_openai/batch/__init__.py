"""One prompt template over many rows: :func:`run_batch`, its on-disk cache and its engines (a thread pool,
OpenAI's Batch API, Ray)."""

from ..lazy import exports

__all__ = ["run_batch", "cancel_batch", "BatchCache"]
__getattr__, __dir__ = exports(__name__, {
    ".run": ("run_batch",),
    ".openai_batch": ("cancel_batch",),
    ".cache": ("BatchCache",),
})
