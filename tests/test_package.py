"""The package's structure: no import circles, the core free of IPython, modules of a readable size."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jupyter_openai"
#: Modules that must import without IPython or ipywidgets (GUIDE 1).
CORE = ("config", "errors", "params", "request", "outcome", "sse", "connection", "results", "client", "cancel",
        "call", "log", "magicline", "responses", "stream", "adapt", "models", "secrets", "answers", "retries",
        "chunked", "schema", "batch", "batch_cache", "batch_local", "batch_api", "batch_run", "batch_ray", "local",
        "logprobs", "cost", "replay", "compare", "conversation")
MAX_LINES = 420


def _imports(module: str) -> set[str]:
    """The package modules ``module`` imports (at any depth of its code)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("jupyter_openai."):
            found.add(node.module.split(".")[1])
    return {name for name in found if (PACKAGE / f"{name}.py").exists()} - {module}


def _modules() -> list[str]:
    return sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {m: _imports(m) for m in _modules()}
    reach: dict[str, set[str]] = {}

    def reachable(start: str) -> set[str]:
        if start not in reach:
            seen, stack = set(), list(graph.get(start, ()))
            while stack:
                name = stack.pop()
                if name not in seen:
                    seen.add(name)
                    stack.extend(graph.get(name, ()))
            reach[start] = seen
        return reach[start]

    circles = sorted(m for m in graph if m in reachable(m))
    assert not circles, f"modules on an import circle: {circles}"


@pytest.mark.parametrize("module", CORE)
def test_the_core_imports_no_ipython(module: str) -> None:
    text = (PACKAGE / f"{module}.py").read_text("utf-8")
    tree = ast.parse(text)
    names = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    names |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not names & {"IPython", "ipywidgets", "traitlets"}, module
    assert _imports(module) <= set(CORE), f"{module} imports a front-end module: {_imports(module) - set(CORE)}"


@pytest.mark.parametrize("module", _modules())
def test_modules_have_a_docstring_and_a_readable_size(module: str) -> None:
    text = (PACKAGE / f"{module}.py").read_text("utf-8")
    assert ast.get_docstring(ast.parse(text)), f"{module} has no module docstring"
    assert text.count("\n") <= MAX_LINES, f"{module} has {text.count(chr(10))} lines"


def test_the_front_ends_build_no_request_and_word_no_outcome() -> None:
    """magics.py and widgets.py delegate: no CallRequest(...) of their own, no outcome strings."""
    for module in ("magics", "widgets"):
        text = (PACKAGE / f"{module}.py").read_text("utf-8")
        assert "CallRequest(" not in text and "choose_endpoint(model, endpoint" not in text, module
        for phrase in ("partial text kept", "without [DONE]", "choices, the server returned"):
            assert phrase not in text, f"{module} words an outcome note itself: {phrase!r}"
