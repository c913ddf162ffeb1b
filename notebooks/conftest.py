"""pytest setup for running the notebooks under nbval (not needed to use them).

    python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/

The stored outputs come from the bundled offline model, so the kernels must not see a developer's
OPENAI_* settings (they would call OpenAI, spend money and differ). Without the offline model
installed the notebooks are skipped. Matplotlib's font cache is built here, before any kernel
starts: a first plot on a fresh machine would otherwise print a notice into a compared cell.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

SANITIZE = Path(__file__).resolve().parent.parent / "tests" / "nbval_sanitize.cfg"


def pytest_configure(config: pytest.Config) -> None:
    if not (getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)):
        return
    for name in [n for n in os.environ if n.startswith("OPENAI_")]:
        del os.environ[name]  # the kernels nbval starts inherit this environment
    # Kernels are killed at the end, before their atexit handlers run: what they leave in the temp
    # folder (the offline server's log) goes to a folder of this run, removed in pytest_unconfigure.
    config._jupyter_openai_tmp = tempfile.mkdtemp(prefix="nbval-kernels-")  # type: ignore[attr-defined]
    os.environ["TMPDIR"] = config._jupyter_openai_tmp  # type: ignore[attr-defined]
    if getattr(config.option, "nbval_sanitize_with", None) is None:
        config.option.nbval_sanitize_with = str(SANITIZE)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.font_manager  # noqa: F401 - builds the font cache once
    except ImportError:
        pass


def pytest_unconfigure(config: pytest.Config) -> None:
    folder = getattr(config, "_jupyter_openai_tmp", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from jupyter_openai.offline import server as local

    if local.is_available():
        return
    skip = pytest.mark.skip(reason=f"the offline model is not installed: {local.INSTALL_HINT}")
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(skip)
