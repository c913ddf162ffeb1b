#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` from the source vendored in the llama-cpp-python sdist, once,
# and cache it (with the DeepSeek-R1 chat template the reasoning tests use) outside the git tree:
#   ${JUPYTER_OPENAI_CACHE:-$HOME/.cache/jupyter-openai}/llama-server-<version>/
#     llama-server   deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja   STAMP (written last)
# Usage: bash scripts/build_llama_server.sh [VERSION]   (default: the llama-cpp-python in .venv)
# Progress goes to stderr; stdout is only the binary's path. A complete cache makes this a no-op.
# Exit status 3: no compiler, and none can be installed here (not root, or no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
TEMPLATE=deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja

VERSION=${1:-$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)}
if [ -z "$VERSION" ]; then
  echo "== no llama-cpp-python in $PY and no version given: pass one, or PYTHON=/path/to/venv/python" >&2
  exit 1
fi
CACHE="${JUPYTER_OPENAI_CACHE:-$HOME/.cache/jupyter-openai}/llama-server-$VERSION"
cached() { [ -f "$CACHE/STAMP" ] && [ -x "$CACHE/llama-server" ] && [ -f "$CACHE/$TEMPLATE" ]; }

if cached; then
  echo "== llama-server $VERSION cached in $CACHE" >&2
  echo "$CACHE/llama-server"
  exit 0
fi

# One build at a time per cache folder; whoever waited finds the cache complete.
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
if command -v flock >/dev/null 2>&1; then
  flock 9
fi
if cached; then
  echo "== llama-server $VERSION cached in $CACHE (built meanwhile)" >&2
  echo "$CACHE/llama-server"
  exit 0
fi

# The compilers (Debian packages), like test.sh installs chromium.
missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v g++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing ${missing[*]} (Debian packages)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "== ${missing[*]} not found and cannot be installed here: cannot build llama-server" >&2
    exit 3
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jupyter-openai-llama-server.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# --no-binary for this package only: with :all: pip also builds its build backend's dependencies
# from source just to read the sdist's metadata (90 s instead of 10 s here).
echo "== downloading the llama-cpp-python $VERSION sdist (llama.cpp source, ~76 MB)" >&2
"$PY" -m pip download -q --no-binary llama-cpp-python --no-deps --dest "$WORK" "llama-cpp-python==$VERSION" >&2
tar xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
SRC=$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)
[ -f "$SRC/CMakeLists.txt" ] && [ -f "$SRC/models/templates/$TEMPLATE" ] || {
  echo "== the sdist has no vendored llama.cpp (or no $TEMPLATE) in $SRC" >&2; exit 1; }

# Portable (no -march=native), no libcurl/OpenSSL, no web UI (its build would fetch from a hub).
echo "== building llama-server $VERSION (about 5 min on 2 cores)" >&2
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF \
  -DLLAMA_BUILD_SERVER=ON -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_OPENSSL=OFF \
  -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DBUILD_SHARED_LIBS=OFF >"$WORK/cmake.log" 2>&1 \
  || { tail -n 40 "$WORK/cmake.log" >&2; exit 1; }
cmake --build "$WORK/build" --target llama-server -j"${LLAMA_SERVER_JOBS:-2}" >"$WORK/build.log" 2>&1 \
  || { tail -n 40 "$WORK/build.log" >&2; exit 1; }
"$WORK/build/bin/llama-server" --version >&2

# Install into the cache; the stamp comes last, so an interrupted run leaves the cache incomplete.
install -m 755 "$WORK/build/bin/llama-server" "$CACHE/llama-server"
install -m 644 "$SRC/models/templates/$TEMPLATE" "$CACHE/$TEMPLATE"
took=$(( $(date +%s) - start ))
printf 'llama-cpp-python %s\nbuilt %s in %s s\n' "$VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$took" >"$CACHE/STAMP"
echo "== llama-server $VERSION built in $took s, cached in $CACHE" >&2
echo "$CACHE/llama-server"
