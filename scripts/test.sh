#!/usr/bin/env bash
# The test command of the README and of CI.
#
# Installs what the tests need (cached under .cache/, see scripts/test.d/), exports where it
# is, starts the services the tests talk to, runs every test of the workspace, and stops the
# services again. Extra arguments go to `cargo test` (`-p NAME` runs one package's tests).
#
# No process may outlive the run: every process it starts inherits RUNPOD_RS_TEST_RUN (a value
# unique to this run) in its environment, and at the end, once the services are stopped, any
# process still carrying it is listed, killed, and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
mkdir -p "$RUNPOD_RS_CACHE"
export RUNPOD_RS_TEST_RUN="$$-$(date +%s%N)"

# Prints "PID COMMAND" for each live process whose environment holds RUNPOD_RS_TEST_RUN=$1
# (pure bash: the check itself starts no process that could match).
_survivors() {
  local p pid kv
  for p in /proc/[0-9]*; do
    pid="${p#/proc/}"
    [ "$pid" = "$$" ] && continue
    [ -r "$p/environ" ] || continue
    while IFS= read -r -d '' kv; do
      if [ "$kv" = "RUNPOD_RS_TEST_RUN=$1" ]; then
        local arg cmd=""
        while IFS= read -r -d '' arg; do cmd+="$arg "; done 2>/dev/null <"$p/cmdline" || true
        echo "$pid ${cmd:-?}"
        break
      fi
    done 2>/dev/null <"$p/environ" || true
  done
}

# Fails (1) when processes of this run are still there 10 s after the end, after killing them.
_check_survivors() {
  local run="$RUNPOD_RS_TEST_RUN" left pid rest end=$((SECONDS + 10))
  unset RUNPOD_RS_TEST_RUN
  while true; do
    left="$(_survivors "$run")"
    [ -z "$left" ] && return 0
    [ "$SECONDS" -ge "$end" ] && break
    sleep 0.2
  done
  echo "test.sh: FAILED: processes started by this run are still running:" >&2
  echo "$left" >&2
  while read -r pid rest; do
    kill -KILL "$pid" 2>/dev/null || true
  done <<<"$left"
  return 1
}

# Each script in scripts/test.d/ may append a function name here to be called on exit.
CLEANUP=()
cleanup() {
  local rc=$?
  for f in "${CLEANUP[@]+"${CLEANUP[@]}"}"; do "$f" || true; done
  _check_survivors || rc=1
  exit "$rc"
}
trap cleanup EXIT

# No import cycle between the modules of a crate (scripts/check-module-cycles.py says how it
# looks and at which granularity).
if ! python3 scripts/check-module-cycles.py -q; then
  echo "test.sh: FAILED: import cycles between modules (run scripts/check-module-cycles.py)" >&2
  exit 1
fi

for setup in scripts/test.d/*.sh; do
  [ -e "$setup" ] || continue
  # shellcheck source=/dev/null
  source "$setup"
done

# `-p NAME` (or `--package`) narrows the run to those packages; otherwise the whole workspace.
scope=(--workspace)
for arg in "$@"; do
  case "$arg" in
    -p | -p* | --package | --package=*) scope=() ;;
  esac
done
cargo test "${scope[@]+"${scope[@]}"}" "$@"
