#!/usr/bin/env bash
# Set up jupyter-openai with the bundled offline model and open the example notebooks in JupyterLab.
# Works with no API key and no internet once installed; with OPENAI_API_KEY set, the notebooks use OpenAI.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
# llama.cpp compiles once (4-8 min); these flags make a build that runs on any x86-64 CPU.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
if ! .venv/bin/python -c "import llama_cpp" 2>/dev/null; then
  echo "== compiling llama.cpp for the offline model (once; 4-8 min on two cores; needs a C/C++ compiler and cmake)"
fi
echo "== installing jupyter-openai[local] and JupyterLab"
.venv/bin/python -m pip install -q -e ".[local]" jupyterlab matplotlib pandas &
pip_pid=$!
started=$(date +%s)
while kill -0 "$pip_pid" 2>/dev/null; do  # a line every 30 s, so a long first build is not a silent one
  for _ in $(seq 30); do kill -0 "$pip_pid" 2>/dev/null || break; sleep 1; done
  kill -0 "$pip_pid" 2>/dev/null && echo "   … still installing ($(( $(date +%s) - started )) s so far)"
done
wait "$pip_pid"
echo "== installed in $(( $(date +%s) - started )) s"
exec .venv/bin/python -m jupyterlab --notebook-dir=notebooks "$@"
