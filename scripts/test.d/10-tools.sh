# shellcheck shell=bash
# Sourced by scripts/test.sh. Command-line tools the README commands use, which
# crates/readme-commands/tests/readme_commands.rs runs as written: curl (a fresh Debian has
# none). Under CI, as root with apt-get, a missing one is installed; elsewhere the test skips
# the commands that need it and says so.
if ! command -v curl >/dev/null 2>&1; then
  if [ -n "${CI:-}" ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "10-tools.sh: installing curl" >&2
    apt-get update -qq && apt-get install -y -qq curl >/dev/null
  else
    echo "10-tools.sh: no curl; the README commands that use it will be skipped (fail under CI)" >&2
  fi
fi
