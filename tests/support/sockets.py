"""A listening socket that counts connection attempts: where a request sent by mistake would show."""

from __future__ import annotations

import socket


class Listener:
    """A listening socket that only counts connection attempts (it never answers): a proxy or a
    server that any request sent to it would show up at."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.sock.setblocking(False)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    def connections(self) -> int:
        """How many connections arrived since the last call (each is closed at once)."""
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1
