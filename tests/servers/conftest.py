"""Fixtures for the servers' own tests: each module gets a test server of its own (connections left
open in one module never reach another's tests), reset around every test, and a session that sends
the test key."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from tests.servers.fake import FakeOpenAIServer
from tests.support.keys import AUTH


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAIServer]:
    """A server of this module's own (it overrides the suite's shared one)."""
    with FakeOpenAIServer() as srv:
        yield srv


@pytest.fixture(autouse=True)
def _clean(server: FakeOpenAIServer) -> Iterator[None]:
    server.reset()
    yield
    server.reset()


@pytest.fixture
def http(server: FakeOpenAIServer) -> Iterator[requests.Session]:
    """A ``requests.Session`` that sends the test key."""
    with requests.Session() as session:
        session.headers.update(AUTH)
        yield session


@pytest.fixture
def post(server: FakeOpenAIServer, http: requests.Session) -> Callable[..., Any]:
    """``post(path, **body)`` -> requests.Response, with the test key."""
    return lambda path, **body: http.post(server.url + path, json=body)
