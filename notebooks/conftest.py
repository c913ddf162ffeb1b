"""pytest setup for running the notebooks under nbval (not needed to use them).

    python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/

The stored outputs come from the bundled offline model, so the kernels must not see a developer's
OPENAI_* settings (they would call OpenAI, spend money and differ). Without the offline model
installed the notebooks are skipped. Matplotlib's font cache is built here, before any kernel
starts: a first plot on a fresh machine would otherwise print a notice into a compared cell.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SANITIZE = Path(__file__).resolve().parent.parent / "tests" / "nbval_sanitize.cfg"


def pytest_configure(config: pytest.Config) -> None:
    if not (getattr(config.option, "nbval", False) or getattr(config.option, "nbval_lax", False)):
        return
    for name in [n for n in os.environ if n.startswith("OPENAI_")]:
        del os.environ[name]  # the kernels nbval starts inherit this environment
    if getattr(config.option, "nbval_sanitize_with", None) is None:
        config.option.nbval_sanitize_with = str(SANITIZE)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.font_manager  # noqa: F401 - builds the font cache once
    except ImportError:
        pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from jupyter_openai import local

    if local.is_available():
        return
    skip = pytest.mark.skip(reason=f"the offline model is not installed: {local.INSTALL_HINT}")
    for item in items:
        if item.path.suffix == ".ipynb":
            item.add_marker(skip)
