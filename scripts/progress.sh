# Progress for the long steps of scripts/test.sh and scripts/build_llama_server.sh (sourced, not run).
#
#   run_logged LABEL LOG COMMAND [ARGS...]
# runs COMMAND with its output in LOG and, while it runs, prints to stderr every PROGRESS_EVERY seconds
# (default 20) a line with the time elapsed and the last line COMMAND wrote, e.g.
#   ... pip install: 2m40s (Building wheel for llama-cpp-python: [ 45%] Building CXX object ...)
# On failure it prints LOG's last 40 lines. Its status is COMMAND's. Ctrl-C stops COMMAND and its children.

elapsed() {  # seconds -> "2m40s"
  local s=$1
  if (( s >= 60 )); then printf '%dm%02ds' $(( s / 60 )) $(( s % 60 )); else printf '%ds' "$s"; fi
}

last_line() {  # the last non-blank line of a log (carriage returns count as line ends), shortened;
  # a compiler command line as ninja shows it ("[6/193] /usr/bin/g++ ... -o x.o -c x.cpp") as "[6/193] x.o"
  tail -c 4000 "$1" 2>/dev/null | tr '\r' '\n' | grep -v '^[[:space:]]*$' | tail -n 1 |
    sed -E 's|^[[:space:]]*(\[[0-9]+/[0-9]+\]) .* -o ([^ ]+).*|\1 \2|' | cut -c 1-110
}

run_logged() {
  local label=$1 log=$2
  shift 2
  local started=$SECONDS every=${PROGRESS_EVERY:-20} pid status=0
  # In a process group of its own (setsid), so that an interrupt can stop the compilers it runs too.
  if command -v setsid >/dev/null 2>&1; then
    setsid "$@" >"$log" 2>&1 </dev/null &
  else
    "$@" >"$log" 2>&1 </dev/null &
  fi
  pid=$!
  # shellcheck disable=SC2064  # expand pid now
  trap "kill -- -$pid 2>/dev/null || kill $pid 2>/dev/null; exit 130" INT TERM
  local next=$(( started + every ))
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if (( SECONDS >= next )) && kill -0 "$pid" 2>/dev/null; then
      echo "   ... $label: $(elapsed $(( SECONDS - started ))) ($(last_line "$log"))" >&2
      next=$(( next + every ))
    fi
  done
  wait "$pid" || status=$?
  trap - INT TERM
  if [ "$status" != 0 ]; then
    echo "== $label failed (exit status $status) after $(elapsed $(( SECONDS - started ))); the end of $log:" >&2
    tail -n 40 "$log" >&2
  fi
  return "$status"
}
