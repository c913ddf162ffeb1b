"""Servers the tests talk HTTP to on 127.0.0.1: the OpenAI-compatible test server and two tiny ones."""
