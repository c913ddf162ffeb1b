"""The project's OpenAI-compatible test server: deterministic answers, fault injection, both APIs.

``FakeOpenAIServer`` (in :mod:`.server`) runs in a thread of the test process; ``python -m
tests.servers.fake --port 0`` runs it as a process of its own (the benchmarks do).
"""

from .server import *  # noqa: F403
from .server import __all__  # noqa: F401
