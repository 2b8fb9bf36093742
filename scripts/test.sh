#!/usr/bin/env bash
# The test command of the README and of CI.
#
# Installs what the tests need (cached under .cache/, see scripts/test.d/), exports where it
# is, starts the services the tests talk to, runs every test of the workspace, and stops the
# services again. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
mkdir -p "$RUNPOD_RS_CACHE"

# Each script in scripts/test.d/ may append a function name here to be called on exit.
CLEANUP=()
cleanup() { for f in "${CLEANUP[@]+"${CLEANUP[@]}"}"; do "$f" || true; done; }
trap cleanup EXIT

for setup in scripts/test.d/*.sh; do
  [ -e "$setup" ] || continue
  # shellcheck source=/dev/null
  source "$setup"
done

cargo test --workspace "$@"
