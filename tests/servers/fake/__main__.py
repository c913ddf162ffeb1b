"""``python -m tests.servers.fake``: the test server as a process of its own (prints ``READY <url>``)."""

from .server import main

main()
