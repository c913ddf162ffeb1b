"""Helpers the tests import (servers live in ``tests.servers``; fixtures in ``tests/conftest.py``)."""
