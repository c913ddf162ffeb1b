"""Bytes on the wire: server-sent events, chunked bodies, connection care, retries, cancelling, the
streamed answer, reading 200 bodies, and record/replay of whole exchanges."""

from ..lazy import exports

__all__ = ["SSEDecoder", "ServerSentEvent", "ChunkedReader", "CancelToken", "Stream", "Recorder", "Replayer",
           "ReplayMiss"]
__getattr__, __dir__ = exports(__name__, {
    ".sse": ("SSEDecoder", "ServerSentEvent"),
    ".chunked": ("ChunkedReader",),
    ".cancel": ("CancelToken",),
    ".stream": ("Stream",),
    ".replay": ("Recorder", "Replayer", "ReplayMiss"),
})
