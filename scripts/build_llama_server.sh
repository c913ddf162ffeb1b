#!/usr/bin/env bash
# Build llama.cpp's own `llama-server` once and cache it (with the DeepSeek-R1 chat template the
# reasoning tests use) outside the git tree:
#   ${JUPYTER_OPENAI_CACHE:-$HOME/.cache/jupyter-openai}/llama-server-<version>/
#     llama-server   lib/ (llama.cpp's shared libraries)   deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja
#     STAMP (written last)
# llama.cpp is not compiled again: the installed llama-cpp-python wheel holds it as shared libraries
# built from the same source (llama_cpp/lib/libllama.so, libggml*.so, libmtmd.so, and
# site-packages/lib/libllama-common.so), so only the server's own sources are compiled
# (scripts/llama_server/CMakeLists.txt), from the llama.cpp vendored in the llama-cpp-python sdist,
# and linked against copies of those libraries in the cache's lib/ (common/ is compiled too when the
# wheel has no libllama-common). Without a wheel of this version (or with LLAMA_SERVER_FULL_BUILD=1)
# all of llama.cpp is compiled, as before.
# Usage: bash scripts/build_llama_server.sh [VERSION]   (default: the llama-cpp-python in .venv)
# Progress goes to stderr (a line at least every 20 s); stdout is only the binary's path.
# A complete cache makes this a no-op.
# Exit status 3: no compiler, and none can be installed here (not root, or no apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/progress.sh
start=$SECONDS
PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
TEMPLATE=deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja
HERE=$PWD

INSTALLED=$("$PY" -c 'import importlib.metadata as m; print(m.version("llama-cpp-python"))' 2>/dev/null || true)
VERSION=${1:-$INSTALLED}
if [ -z "$VERSION" ]; then
  echo "== no llama-cpp-python in $PY and no version given: pass one, or PYTHON=/path/to/venv/python" >&2
  exit 1
fi
CACHE="${JUPYTER_OPENAI_CACHE:-$HOME/.cache/jupyter-openai}/llama-server-$VERSION"
# Complete (the stamp is written last) and runnable (its libraries are where it looks for them).
cached() {
  [ -f "$CACHE/STAMP" ] && [ -x "$CACHE/llama-server" ] && [ -f "$CACHE/$TEMPLATE" ] &&
    "$CACHE/llama-server" --version >/dev/null 2>&1
}

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
rm -f "$CACHE/STAMP"  # incomplete or not runnable: built again

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

# The installed wheel's shared libraries, if it is this version and has them all.
LIBS=
if [ "$INSTALLED" = "$VERSION" ] && [ "${LLAMA_SERVER_FULL_BUILD:-0}" != 1 ]; then
  LIBS=$("$PY" -c 'import importlib.util as u, os; s = u.find_spec("llama_cpp")
print(os.path.join(os.path.dirname(s.origin), "lib"))' 2>/dev/null || true)
  for lib in libllama libggml libggml-base libmtmd; do
    compgen -G "$LIBS/$lib.so.[0-9]*" >/dev/null || { LIBS=; break; }
  done
fi
# Its libllama-common too (llama-cpp-python installs it into site-packages/lib): then common/ is not
# compiled either. Built with OpenSSL, it needs OpenSSL's headers to compile against (else common/ is).
COMMON=
if [ -n "$LIBS" ]; then
  COMMON=$("$PY" -c 'import importlib.metadata as m
print(next((str(f.locate()) for f in m.files("llama-cpp-python") or ()
            if f.name.startswith("libllama-common.so.") and f.name.count(".") == 2), ""))' 2>/dev/null || true)
  if [ -n "$COMMON" ] && [ -f "$COMMON" ]; then
    COMMON_OPENSSL=OFF
    needed=$(objdump -p "$COMMON" 2>/dev/null || true)
    if grep -q 'NEEDED.*libssl' <<<"$needed"; then
      COMMON_OPENSSL=ON
      [ -f /usr/include/openssl/ssl.h ] || COMMON=
    fi
  else
    COMMON=
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jupyter-openai-llama-server.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# --no-binary for this package only: with :all: pip also builds its build backend's dependencies
# from source just to read the sdist's metadata (90 s instead of 10 s here).
echo "== downloading the llama-cpp-python $VERSION sdist (llama.cpp source, ~76 MB)" >&2
run_logged "sdist download" "$WORK/download.log" \
  "$PY" -m pip download --progress-bar off --no-binary llama-cpp-python --no-deps --dest "$WORK" \
  "llama-cpp-python==$VERSION"
tar xzf "$WORK"/llama_cpp_python-*.tar.gz -C "$WORK"
SRC=$(echo "$WORK"/llama_cpp_python-*/vendor/llama.cpp)
[ -f "$SRC/CMakeLists.txt" ] && [ -f "$SRC/models/templates/$TEMPLATE" ] || {
  echo "== the sdist has no vendored llama.cpp (or no $TEMPLATE) in $SRC" >&2; exit 1; }

# Portable (no -march=native), no libcurl/OpenSSL, no web UI (its build would fetch from a hub).
FLAGS=(-DCMAKE_BUILD_TYPE=Release -DLLAMA_OPENSSL=OFF -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF)
if [ -n "$LIBS" ]; then
  # The libraries under their sonames (the names the binary asks for), beside the binary it builds.
  mkdir -p "$WORK/lib"
  for f in "$LIBS"/lib*.so.* $COMMON; do
    soname=$(objdump -p "$f" 2>/dev/null | awk '$1 == "SONAME" {print $2}')
    if [ -n "$soname" ] && [ ! -e "$WORK/lib/$soname" ]; then cp -L "$(dirname "$f")/$soname" "$WORK/lib/$soname"; fi
  done
  # -O1: the model runs in the prebuilt libraries; the server's own code (HTTP, JSON, templates) needs
  # no more, and compiles in much less time than with -O3.
  OPT=${LLAMA_SERVER_OPT:--O1}
  FLAGS+=(-DLLAMA_SRC="$SRC" -DLLAMA_LIBS="$WORK/lib" -DCMAKE_C_FLAGS_RELEASE="$OPT -DNDEBUG"
          -DCMAKE_CXX_FLAGS_RELEASE="$OPT -DNDEBUG")
  if [ -n "$COMMON" ]; then
    how="linked against llama-cpp-python's libraries, libllama-common included"
    FLAGS+=(-DLLAMA_COMMON_LIB="$WORK/lib/$(objdump -p "$COMMON" | awk '$1 == "SONAME" {print $2}')"
            -DLLAMA_COMMON_OPENSSL="$COMMON_OPENSSL")
    echo "== building llama-server $VERSION: its own sources only, $how (about 1 min on 2 cores)" >&2
  else
    how="linked against llama-cpp-python's libraries, common/ compiled"
    echo "== building llama-server $VERSION: its own sources and common/, $how (about 3 min on 2 cores)" >&2
  fi
  run_logged "cmake configure" "$WORK/cmake.log" cmake -S "$HERE/scripts/llama_server" -B "$WORK/build" "${FLAGS[@]}"
  mkdir -p "$WORK/build/bin" && cp -R "$WORK/lib" "$WORK/build/bin/"
else
  how="all of llama.cpp compiled (no llama-cpp-python $VERSION wheel with shared libraries installed)"
  echo "== building llama-server $VERSION: $how (about 6 min on 2 cores)" >&2
  run_logged "cmake configure" "$WORK/cmake.log" \
    cmake -S "$SRC" -B "$WORK/build" "${FLAGS[@]}" -DGGML_NATIVE=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DBUILD_SHARED_LIBS=OFF
fi
run_logged "llama-server build" "$WORK/build.log" \
  cmake --build "$WORK/build" --target llama-server -j"${LLAMA_SERVER_JOBS:-2}"
"$WORK/build/bin/llama-server" --version >&2

# Install into the cache; the stamp comes last, so an interrupted run leaves the cache incomplete.
if [ -n "$LIBS" ]; then
  rm -rf "$CACHE/lib"
  cp -R "$WORK/lib" "$CACHE/lib"
fi
install -m 755 "$WORK/build/bin/llama-server" "$CACHE/llama-server"
install -m 644 "$SRC/models/templates/$TEMPLATE" "$CACHE/$TEMPLATE"
"$CACHE/llama-server" --version >/dev/null 2>&1 || { echo "== the cached llama-server does not run" >&2; exit 1; }
took=$(( SECONDS - start ))
printf 'llama-cpp-python %s\nbuilt %s in %s s, %s\n' "$VERSION" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$took" "$how" \
  >"$CACHE/STAMP"
echo "== llama-server $VERSION built in $took s ($how), cached in $CACHE" >&2
echo "$CACHE/llama-server"
