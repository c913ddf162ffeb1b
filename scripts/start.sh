#!/usr/bin/env bash
# Set up jupyter-openai with the bundled offline model and open the example notebooks in JupyterLab.
# Works with no API key and no internet once installed; with OPENAI_API_KEY set, the notebooks use OpenAI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# llama.cpp compiles once (4-8 min); these flags make a build that runs on any x86-64 CPU.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
echo "== installing jupyter-openai[local] and JupyterLab (the first time compiles llama.cpp: 4-8 min)"
.venv/bin/python -m pip install -q -e ".[local]" jupyterlab matplotlib pandas
exec .venv/bin/python -m jupyterlab --notebook-dir=notebooks "$@"
