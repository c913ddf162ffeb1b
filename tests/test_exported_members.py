"""The public API is declared once: ``jupyter_openai.__all__`` (and each subpackage's) is complete and
every name in it imports; every name the README and the notebooks use imports, and the notebooks take
their names from the package root or a subpackage, never from a module deep inside."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path

import pytest

import jupyter_openai

ROOT = Path(__file__).resolve().parent.parent
SUBPACKAGES = sorted(p.parent.name for p in (ROOT / "jupyter_openai").glob("*/__init__.py"))
#: Defined in the root's own code rather than re-exported from a module.
EAGER = {"__version__", "load_ipython_extension", "unload_ipython_extension"}
IMPORT = re.compile(r"^\s*from (jupyter_openai(?:\.\w+)*) import ([\w, ]+?)\s*(?:#.*)?$", re.M)
DOTTED = re.compile(r"\bjupyter_openai(?:\.\w+)+")


def _notebook_sources() -> dict[str, str]:
    found = {}
    for path in sorted((ROOT / "notebooks").rglob("*.ipynb")):
        cells = json.loads(path.read_text("utf-8"))["cells"]
        found[str(path.relative_to(ROOT))] = "\n".join(
            "".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return found


def _documents() -> dict[str, str]:
    return {"README.md": (ROOT / "README.md").read_text("utf-8"), **_notebook_sources()}


def _resolve(dotted: str) -> object:
    """A dotted name: the longest importable module prefix, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            value = getattr(value, name)
        return value
    raise ImportError(dotted)


@pytest.mark.parametrize("package", ["jupyter_openai", *(f"jupyter_openai.{p}" for p in SUBPACKAGES)])
def test_all_is_complete_and_every_name_imports(package: str) -> None:
    module = importlib.import_module(package)
    exported = set(module.__all__)
    assert len(module.__all__) == len(exported), "a name is listed twice"
    lazy = set(dir(module)) - EAGER if package == "jupyter_openai" else set(dir(module))
    assert lazy == exported - EAGER, f"offered but not in __all__: {lazy - exported}; listed, not offered: " \
                                     f"{exported - EAGER - lazy}"
    for name in module.__all__:
        assert getattr(module, name) is not None, name
    with pytest.raises(AttributeError):
        module.no_such_name  # noqa: B018


def test_the_root_exports_the_main_names_of_each_subpackage() -> None:
    """What a user reaches for first is one import away."""
    for name in ("OpenAIClient", "session_log", "run_batch", "CompletionForm", "settings_report", "LocalServer",
                 "Pricing", "nucleus", "OpenAIError", "ConfigurationError"):
        assert name in jupyter_openai.__all__, name


def test_importing_the_package_loads_nothing_heavy() -> None:
    """The root and the subpackages' ``__init__`` only name things: no module of theirs is imported."""
    import subprocess
    import sys

    code = ("import json, sys, jupyter_openai, jupyter_openai.api, jupyter_openai.calls, jupyter_openai.magics; "
            "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
            "{'requests', 'IPython', 'ipywidgets', 'pandas', 'traitlets', 'jupyter_openai'})))")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    allowed = {"jupyter_openai", "jupyter_openai.lazy", "jupyter_openai.version",
               "jupyter_openai.api", "jupyter_openai.calls", "jupyter_openai.magics"}
    assert set(json.loads(run.stdout)) == allowed


@pytest.mark.parametrize("document", sorted(_documents()))
def test_every_documented_name_imports(document: str) -> None:
    text = _documents()[document]
    imported = [(module, [n.strip().split(" as ")[0] for n in names.split(",") if n.strip()])
                for module, names in IMPORT.findall(text)]
    dotted = set(DOTTED.findall(text))
    assert imported or dotted or document == "README.md", f"{document} names nothing of jupyter_openai"
    for module, names in imported:
        for name in names:
            _resolve(f"{module}.{name}")
    for name in dotted:
        _resolve(name.rstrip("."))


@pytest.mark.parametrize("notebook", sorted(_notebook_sources()))
def test_notebooks_import_from_the_root_or_a_subpackage(notebook: str) -> None:
    for module, _ in IMPORT.findall(_notebook_sources()[notebook]):
        assert module.count(".") <= 1 and module.split(".")[-1] in {"jupyter_openai", *SUBPACKAGES}, \
            f"{notebook} imports from {module}: use the package root or a subpackage"
