"""The example notebooks and the Binder files.

Static checks of ``notebooks/*.ipynb``: structure (goal at the top, exercises at the end), stored
outputs of a clean run, no key / token / machine path / ephemeral port anywhere in the JSON, and
``nbval-ignore-output`` only where the model writes. The notebooks themselves run under nbval in a
separate command (see ``notebooks/conftest.py``)::

    python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/

The Binder test installs what ``binder/requirements.txt`` says into a fresh virtual environment,
from the repository root as repo2docker does, and imports the package there.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import venv
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
BINDER = ROOT / "binder"
IGNORE_TAG = "nbval-ignore-output"
IGNORE_COMMENT = "# NBVAL_IGNORE_OUTPUT"

EXPECTED = ["01_getting_started.ipynb", "02_parameters.ipynb", "03_session_log.ipynb",
            "04_classroom.ipynb", "05_other_servers.ipynb", "06_conversations.ipynb", "07_batch.ipynb",
            "08_probabilities.ipynb"]

# Things that must never be saved in a notebook (sources, outputs, metadata, widget state).
SECRETS = {
    "an OpenAI-style key": re.compile(r"\bsk-(?:proj-)?[A-Za-z0-9_-]{16,}"),
    "a local model server key": re.compile(r"\blocal-[A-Za-z0-9_-]{12,}"),
    "a bearer token": re.compile(r"\bBearer\s+[A-Za-z0-9._~+/=-]{8,}"),
}
MACHINE = {
    "an absolute path": re.compile(r"(?<![\w.:/~-])/(?:tmp|root|home|work|Users|var|private|opt|srv|mnt|usr)/"),
    "a Windows path": re.compile(r"\b[A-Za-z]:\\\\(?:Users|Windows|tmp)"),
    "a process id": re.compile(r"\bpid \d+"),
}
LOCAL_URL = re.compile(r"\b(?:127\.0\.0\.1|localhost|0\.0\.0\.0):(\d+)")
EPHEMERAL_PORTS = range(32768, 65536)  # what a free port looks like; fixed documentation ports stay allowed


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _ignored(cell: nbformat.NotebookNode) -> bool:
    return IGNORE_TAG in cell.metadata.get("tags", []) or any(
        line.strip() == IGNORE_COMMENT for line in cell.source.splitlines())


def _text(output: nbformat.NotebookNode) -> str:
    if output.output_type == "stream":
        return output.text
    return str(output.get("data", {}).get("text/plain", ""))


def _is_status(output: nbformat.NotebookNode) -> bool:
    """The status line or a note (which server answers): the extension's words, not the model's."""
    return re.search(r'class="jo-(status|note)"', str(output.get("data", {}).get("text/html", ""))) is not None


def test_the_five_notebooks_exist() -> None:
    assert [p.name for p in NOTEBOOKS] == EXPECTED


@pytest.mark.parametrize("path", [*NOTEBOOKS, *sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))],
                         ids=lambda p: p.stem)
def test_settings_come_from_the_public_function(path: Path) -> None:
    """Notebooks read settings with ``settings_report()`` (or ``%complete_config``), never through the
    magics object."""
    code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
    assert "find_magic" not in code and "__self__" not in code and "magics_manager" not in code
    assert "magics." not in code, "a cell reaches into the magics object"
    if "settings[" in code:
        assert "settings_report()" in code


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_goal_at_the_top_and_exercises_at_the_end(path: Path) -> None:
    nb = _load(path)
    nbformat.validate(nb)
    first, last = nb.cells[0], nb.cells[-1]
    assert first.cell_type == "markdown" and first.source.startswith("# ")
    assert "**Goal:**" in first.source
    assert last.cell_type == "markdown"
    assert re.search(r"^## (Exercises|Your turn)", last.source, re.MULTILINE)
    assert nb.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_outputs_are_stored_from_one_clean_run(path: Path) -> None:
    code = [c for c in _load(path).cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1)), "run top to bottom once, then save"
    for cell in code:
        assert not [o for o in cell.outputs if o.output_type == "error"], cell.source
        for output in cell.outputs:  # a UsageError prints on stderr without an error output
            assert "Traceback" not in _text(output) and not _text(output).startswith("UsageError"), cell.source
    assert any(c.outputs for c in code)


@pytest.mark.parametrize("path", [*NOTEBOOKS, *sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))],
                         ids=lambda p: p.stem)
def test_no_money_renders_as_mathematics(path: Path) -> None:
    """Issue 22: JupyterLab reads ``$…$`` in Markdown as TeX, so "$0.15 (input) and $0.60" became
    maths. A ``$`` before a digit is written ``\\$`` in Markdown cells, and in the Markdown the
    answers' stored outputs show (outside code, as :func:`escape_money` does)."""
    from jupyter_openai.markdown import escape_money

    for cell in _load(path).cells:
        if cell.cell_type == "markdown":
            assert escape_money(cell.source) == cell.source, f"an unescaped $ before a digit: {cell.source[:80]!r}"
        for output in cell.get("outputs", []):
            markdown = output.get("data", {}).get("text/markdown")
            if isinstance(markdown, str):
                assert escape_money(markdown) == markdown, f"an unescaped $ in an answer: {markdown[:80]!r}"


def _without_pictures(path: Path) -> str:
    """The notebook's JSON without base64 images (plots, attachments), where a pattern could match by chance."""
    nb = json.loads(path.read_text("utf-8"))
    for cell in nb["cells"]:
        cell.pop("attachments", None)
        for output in cell.get("outputs", []):
            for mime in [m for m in output.get("data", {}) if m.startswith("image/") and m != "image/svg+xml"]:
                output["data"][mime] = ""
    return json.dumps(nb, indent=1, ensure_ascii=False)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_no_key_token_or_machine_path(path: Path) -> None:
    raw = _without_pictures(path)
    for what, pattern in {**SECRETS, **MACHINE}.items():
        found = pattern.search(raw)
        assert found is None, f"{path.name} holds {what}: {raw[max(0, found.start() - 60):found.end() + 20]!r}"
    for match in LOCAL_URL.finditer(raw):
        assert int(match.group(1)) not in EPHEMERAL_PORTS, f"{path.name} holds a server's random port: {match.group(0)}"
    for name in ("OPENAI_API_KEY", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        value = os.environ.get(name, "").strip()
        if len(value) >= 8:
            assert value not in raw, f"{path.name} holds the value of ${name}"
    home = str(Path.home())
    assert home == "/" or f'"{home}/' not in raw and f" {home}/" not in raw


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_nbval_ignores_only_what_the_model_writes(path: Path) -> None:
    code = [c for c in _load(path).cells if c.cell_type == "code"]
    for cell in code:
        # A completion that displays model text must not be compared...
        shows_answer = re.match(r"\s*%%?complete\s", cell.source) and "-q" not in cell.source.split("\n")[0] and any(
            o.output_type == "display_data" and not _is_status(o) for o in cell.outputs)
        if shows_answer:
            assert _ignored(cell), f"model text compared by nbval:\n{cell.source}"
        # ...and a Python cell says so where the reader sees it: the comment comes first.
        if _ignored(cell) and not cell.source.lstrip().startswith("%"):
            assert cell.source.lstrip().startswith(IGNORE_COMMENT), cell.source
    with_output = [c for c in code if c.outputs]
    compared = [c for c in with_output if not _ignored(c)]
    assert 3 * len(compared) >= len(with_output), f"only {len(compared)} of {len(with_output)} outputs compared"


def test_sanitize_file_parses() -> None:
    from nbval.plugin import get_sanitize_patterns

    patterns = get_sanitize_patterns((ROOT / "tests" / "nbval_sanitize.cfg").read_text("utf-8"))
    assert len(patterns) >= 8
    for regex, _ in patterns:
        re.compile(regex)


# -- Binder ----------------------------------------------------------------------------------------
def _requirements() -> list[str]:
    lines = (BINDER / "requirements.txt").read_text("utf-8").splitlines()
    return [line.split("#", 1)[0].strip() for line in lines if line.split("#", 1)[0].strip()]


def test_binder_files() -> None:
    requirements = _requirements()
    assert ".[local]" in requirements, "repo2docker installs the package from the repository root"
    llama = [r for r in requirements if r.startswith("llama-cpp-python")]
    assert llama and "--config-settings=cmake.args=-DGGML_NATIVE=OFF" in llama[0], "portable llama.cpp build"
    names = {re.split(r"[<>=!~\[ ]", r, maxsplit=1)[0].lower() for r in requirements}
    assert {"pandas", "matplotlib"} <= names, "what the notebooks import"
    assert {"build-essential", "cmake"} <= set((BINDER / "apt.txt").read_text("utf-8").split())
    for script in ("postBuild", "start"):
        path = BINDER / script
        assert path.read_text("utf-8").startswith("#!/bin/bash\n") and os.access(path, os.X_OK), script
    assert 'exec "$@"' in (BINDER / "start").read_text("utf-8")
    readme = (ROOT / "README.md").read_text("utf-8")
    for target in re.findall(r"mybinder\.org/v2/gh/[^)\s]*urlpath=lab/tree/([^)\s&]+)", readme):
        assert (ROOT / target).is_file(), f"the Binder badge opens {target}, which does not exist"


def _pip(python: Path, *args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIP_REQUIRE_VIRTUALENV", "PYTHONPATH"))}
    return subprocess.run([str(python), "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def test_binder_requirements_install_in_a_fresh_venv(tmp_path: Path) -> None:
    """pip install -r binder/requirements.txt from the repository root, as repo2docker runs it; llama.cpp
    is only installed when pip's cache holds a built wheel (a fresh compile takes 4-8 minutes)."""
    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    python = tmp_path / "venv" / "bin" / "python"
    cached = _pip(python, "cache", "list", "llama_cpp_python", "--format=abspath", timeout=60).stdout.strip()
    requirements = (BINDER / "requirements.txt").read_text("utf-8")
    if not cached:  # no built wheel to reuse: install everything but the compiled extra
        requirements = re.sub(r"^\.\[local\]", ".", requirements, flags=re.MULTILINE)
        requirements = re.sub(r"^llama-cpp-python.*$", "", requirements, flags=re.MULTILINE)
    else:  # the cached version, so that a newer release on the index does not trigger a compile
        versions = re.findall(r"llama_cpp_python-([^-]+)-", cached)
        newest = max(versions, key=lambda version: [int(part) for part in re.findall(r"\d+", version)])
        requirements += f"\nllama-cpp-python=={newest}\n"
    (tmp_path / "requirements.txt").write_text(requirements, "utf-8")
    result = _pip(python, "install", "--disable-pip-version-check", "-q", "-r", str(tmp_path / "requirements.txt"))
    if result.returncode and re.search(
        r"NewConnectionError|Temporary failure in name resolution|Network is unreachable", result.stdout + result.stderr
    ):
        pytest.skip("no package index reachable")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    probe = (
        "import jupyter_openai, pandas, matplotlib, ipywidgets; "
        "from jupyter_openai.offline import server as local_server; "
        "print(jupyter_openai.__file__); print(local_server.is_available())"
    )
    run = subprocess.run([str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    location, available = run.stdout.split()
    assert Path(location).is_relative_to(tmp_path / "venv"), (
        "the package must be installed, not imported from the checkout"
    )
    assert available == ("True" if cached else "False")


def test_nbval_command_is_documented() -> None:
    """The conftest that nbval loads keeps notebooks on the offline model and documents the command."""
    conftest = (ROOT / "notebooks" / "conftest.py").read_text("utf-8")
    assert "--nbval-sanitize-with tests/nbval_sanitize.cfg" in conftest
    assert "OPENAI_" in conftest
