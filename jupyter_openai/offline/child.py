"""The offline server's own process: boots ``llama_cpp.server`` with a model guard and a watchdog.

Run as a script by :class:`~jupyter_openai.offline.server.LocalServer` (``python child.py OPTIONS
-- SERVER ARGS``), never imported by the package, so it needs nothing of it (the registry is loaded
by its file path). It:

- reads the server's key from its standard input (a pipe, then replaced by /dev/null) into the
  server's own argument list, which ``/proc/<pid>/cmdline`` does not show;
- answers a request for a model it does not serve with a 404 in OpenAI's shape (``model_not_found``),
  as OpenAI does: llama-cpp-python would answer any name with its one model and echo the name back;
- ends the process once its parent is gone (``--parent PID``: a kernel's own server), or, for the
  server the kernels share (``--registry DIR``), once no kernel has held a lease for ``--idle`` s.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from pathlib import Path
from typing import Any

#: Requests whose body names a model: guarded.
GUARDED_PATHS = ("/v1/completions", "/v1/chat/completions", "/v1/embeddings", "/extras/tokenize")
#: Answers at once with the served model, for the server's key (``/v1/models`` waits while the model
#: generates for someone else: a kernel looking for the shared server must not take it for dead).
HEALTH_PATH = "/jupyter-openai/health"
Asgi = Callable[[dict[str, Any], Callable[[], Awaitable[dict[str, Any]]], Callable[[dict[str, Any]], Awaitable[None]]],
                Awaitable[None]]


def not_served(model: str, served: Collection[str], label: str) -> dict[str, Any]:
    """The 404 body for a model this server does not serve (one line, naming what it serves and the
    ways to reach other models)."""
    names = ", ".join(repr(name) for name in served)
    return {"error": {
        "message": f"The offline server serves only {names} ({label}), not {model!r}. For OpenAI, set "
                   "OPENAI_API_KEY in the environment or ipython_config.py; for another server, "
                   "%config CompleteMagics.base_url = 'http://host:port/v1'.",
        "type": "invalid_request_error", "param": "model", "code": "model_not_found"}}


async def _send_json(send: Any, status: int, content: Any) -> None:
    payload = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})


def guard(app: Asgi, served: Collection[str], label: str, key: str = "") -> Asgi:
    """``app`` behind a check of the ``model`` of every JSON request body on :data:`GUARDED_PATHS`,
    with :data:`HEALTH_PATH` answered for ``key``."""

    async def guarded(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") == "http" and scope.get("path") == HEALTH_PATH:
            given = dict(scope.get("headers") or ()).get(b"authorization", b"")
            if key and given == f"Bearer {key}".encode():
                await _send_json(send, 200, {"model": next(iter(served), None), "pid": os.getpid()})
            else:
                await _send_json(send, 401, {"error": {"message": "Invalid API key", "type": "invalid_request_error"}})
            return
        if scope.get("type") != "http" or scope.get("method") != "POST" or scope.get("path") not in GUARDED_PATHS:
            await app(scope, receive, send)
            return
        messages, body = [], b""
        while True:
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message.get("type") != "http.request" or not message.get("more_body"):
                break
        try:
            model = json.loads(body).get("model")
        except (ValueError, AttributeError, UnicodeDecodeError):
            model = None  # the server's own validation answers
        if isinstance(model, str) and model not in served:
            await _send_json(send, 404, not_served(model, served, label))
            return

        async def replay() -> dict[str, Any]:
            return messages.pop(0) if messages else await receive()

        await app(scope, replay, send)

    return guarded


def _registry() -> Any:
    """registry.py, loaded by its path (the package is not imported here)."""
    spec = importlib.util.spec_from_file_location("_jupyter_openai_local_registry",
                                                  Path(__file__).with_name("registry.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _watch_leases(folder: str, idle: float, log: str | None) -> None:
    _registry().watch(Path(folder), idle)
    if log:
        Path(log).unlink(missing_ok=True)
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """Read the key, start the watchdog, serve (``argv``: this script's options, ``--``, the server's)."""
    words = sys.argv[1:] if argv is None else argv
    split = words.index("--") if "--" in words else len(words)
    parser = argparse.ArgumentParser(prog="jupyter_openai.offline.child")
    parser.add_argument("--parent", type=int, help="end when this process is no longer the parent")
    parser.add_argument("--registry", help="the shared server's registry folder (leases)")
    parser.add_argument("--idle", type=float, default=300.0, help="seconds without a lease before ending")
    parser.add_argument("--log", help="the server's log, removed when the watchdog ends the server")
    parser.add_argument("--label", default="the bundled model", help="the model's name for people")
    options = parser.parse_args(words[:split])
    server_args = words[split + 1:]
    key = sys.stdin.readline().strip()
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    served = [server_args[server_args.index("--model_alias") + 1]] if "--model_alias" in server_args else []
    if options.registry:
        threading.Thread(target=_watch_leases, args=(options.registry, options.idle, options.log), daemon=True).start()
    elif options.parent:
        threading.Thread(target=_watch_parent, args=(options.parent,), daemon=True).start()

    import llama_cpp.server.__main__ as entry

    create_app = entry.create_app

    def guarded_app(*args: Any, **kwargs: Any) -> Any:
        return guard(create_app(*args, **kwargs), served, options.label, key)

    entry.create_app = guarded_app
    sys.argv = [sys.argv[0], *server_args, "--api_key", key]
    entry.main()


if __name__ == "__main__":
    if sys.path and Path(sys.path[0] or ".").resolve() == Path(__file__).resolve().parent:
        del sys.path[0]  # run as a script: the package's folder must not shadow top-level modules
    main()
