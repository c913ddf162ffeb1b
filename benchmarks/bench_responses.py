"""Responses API streaming speed: this client vs the official SDK vs requests + sseclient-py vs a socket floor.

    python benchmarks/bench_responses.py [--rounds 15] [--sdk-every 3] [--shapes event] [--profile]

The same method as ``bench_stream.py`` (whose machinery it runs, with ``--endpoint responses``), on
the test server's ``POST /v1/responses`` (GUIDE §11): typed events, each an ``event: NAME`` line and a
``data: {"type": NAME, "sequence_number": …}`` line, 20,008 per answer (``response.created``,
``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``, 20,000
``response.output_text.delta``, ``response.output_text.done``, ``response.content_part.done``,
``response.output_item.done``, ``response.completed`` carrying the whole response), no ``[DONE]``: the
stream ends at the end of the body. Paths: ``client.responses(model, input, stream=True)``, the SDK's
``client.responses.create(..., stream=True)`` (its typed event objects), requests + sseclient-py, the
floor (socket reads, ``json.loads`` per event, the text of the delta events) and the server alone.
By default only the judged shape, one event per HTTP chunk (``--shapes event,coalesced`` for both).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_stream  # noqa: E402


def main() -> dict[str, Any]:
    return bench_stream.main(__doc__.splitlines()[0], endpoint="responses", shapes="event")


if __name__ == "__main__":
    main()
