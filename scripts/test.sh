#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh Debian machine, then run it all.
# Used verbatim by the README and by .ci/run. Re-running is cheap: each step skips what is there.
# Long steps print a progress line at least every 20 s (scripts/progress.sh), each stage its duration.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/progress.sh
LOGS=${TMPDIR:-/tmp}/jupyter-openai-setup-logs
mkdir -p "$LOGS"
start=$SECONDS
stage=$start
took() {  # print how long the stage that just ended took
  echo "== $1 took $(( SECONDS - stage )) s"
  stage=$SECONDS
}

# A real browser for the widget test (Debian's chromium; Playwright uses it, downloads none).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (Debian package)"
    run_logged "apt-get update" "$LOGS/apt-update.log" apt-get update -qq
    run_logged "chromium install" "$LOGS/apt-chromium.log" \
      env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    took "chromium install"
  else
    echo "== chromium not found and cannot be installed here: the browser test will be skipped"
  fi
fi

# The package with its test extra, in a virtual environment of its own.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "== creating .venv"
  "$PY" -m venv .venv
fi
# The offline model's llama.cpp compiles once (about 11 min on 2 cores), portable flags; pip caches
# the wheel after that. pip -v shows the compiler's progress, in the log and the progress lines.
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
echo "== installing jupyter-openai[test,local] (log: $LOGS/pip-install.log)"
run_logged "pip install" "$LOGS/pip-install.log" \
  .venv/bin/python -m pip install -v --progress-bar off -e ".[test,local]"
took "pip install (llama-cpp-python compiles on a machine with no cached wheel)"

# llama.cpp's own llama-server, a second real server for the tests: its own sources from the
# llama-cpp-python sdist, linked against the libraries the installed wheel holds (about 3 min), then
# cached outside the tree.
# Exit status 3: no compiler and none can be installed here; then its tests skip (any other failure stops).
llama_status=0
JUPYTER_OPENAI_LLAMA_SERVER=$(PYTHON=.venv/bin/python bash scripts/build_llama_server.sh) || llama_status=$?
if [ "$llama_status" = 0 ]; then
  export JUPYTER_OPENAI_LLAMA_SERVER
  took "llama-server build/cache ($JUPYTER_OPENAI_LLAMA_SERVER)"
elif [ "$llama_status" = 3 ]; then
  took "llama-server check: it cannot be built here, its tests will be skipped"
else
  exit "$llama_status"
fi

echo "== lint (ruff)"
.venv/bin/python -m ruff check jupyter_openai tests benchmarks
took "lint"
echo "== running the tests"
.venv/bin/python -m pytest tests
took "tests"
echo "== running the example notebooks (nbval, offline model)"
.venv/bin/python -m pytest --nbval --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg notebooks/
took "notebooks"
echo "== setup and tests took $(( SECONDS - start )) s"
