"""The setup scripts: long steps print progress (scripts/progress.sh), llama.cpp is compiled once."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="the scripts are bash scripts")


def run_logged(tmp_path: Path, command: str) -> subprocess.CompletedProcess[str]:
    """``run_logged demo LOG bash -c COMMAND`` with a progress line every second."""
    script = f'source "{SCRIPTS}/progress.sh"; PROGRESS_EVERY=1; run_logged demo "$1" bash -c "$2"'
    return subprocess.run(["bash", "-c", script, "-", str(tmp_path / "demo.log"), command], capture_output=True,
                          text=True, timeout=60)


def test_a_long_step_prints_progress_with_its_last_line(tmp_path: Path) -> None:
    done = run_logged(tmp_path, "echo starting; sleep 3.5; echo compiling x.o; sleep 2; echo done")
    assert done.returncode == 0 and done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) >= 2, done.stderr  # about one a second (5.5 s), not silence until the end
    assert all(re.fullmatch(r"   \.\.\. demo: \d+s \((starting|compiling x\.o)\)", line) for line in lines), lines
    assert (tmp_path / "demo.log").read_text() == "starting\ncompiling x.o\ndone\n"


def test_a_failing_step_keeps_its_status_and_shows_the_end_of_its_log(tmp_path: Path) -> None:
    done = run_logged(tmp_path, "echo one; echo the error; exit 4")
    assert done.returncode == 4
    assert "== demo failed (exit status 4)" in done.stderr and done.stderr.endswith("one\nthe error\n")


def test_a_compile_line_shows_as_its_step_and_object(tmp_path: Path) -> None:
    line = "  [6/193] /usr/bin/g++ -DX -O3 -o ggml/src/ggml.c.o -c /src/ggml.c"
    done = subprocess.run(["bash", "-c", f'source "{SCRIPTS}/progress.sh"; printf "%s\\n" "$1" > "$2"; last_line "$2"',
                           "-", line, str(tmp_path / "log")], capture_output=True, text=True, timeout=30)
    assert done.stdout == "[6/193] ggml/src/ggml.c.o\n"


def test_test_sh_shows_the_pip_install_and_builds_llama_server_on_the_wheel() -> None:
    test_sh = (SCRIPTS / "test.sh").read_text()
    assert "pip install -q" not in test_sh and 'run_logged "pip install"' in test_sh
    build = (SCRIPTS / "build_llama_server.sh").read_text()
    assert "scripts/llama_server" in build and "libllama-common" in build
    cmake = (SCRIPTS / "llama_server" / "CMakeLists.txt").read_text()
    assert "add_library(${target} SHARED IMPORTED GLOBAL)" in cmake  # the wheel's libraries, not compiled
    assert 'add_subdirectory("${LLAMA_SRC}/src"' not in cmake and "ggml/src" not in cmake
