# shellcheck shell=bash
# Sourced by scripts/test.sh. A cached virtualenv with the official Python worker SDK
# (runpod==1.12.0), used by crates/local/tests/it/python_sdk.rs to check that runpod-local speaks
# the protocol as the SDK does. Exports RUNPOD_TEST_PYTHON=<venv>/bin/python.
# Second run: the stamp file is there, nothing is installed, no network.
_rp_venv="$RUNPOD_RS_CACHE/venv-runpod-1.12.0"
_rp_stamp="$_rp_venv/.runpod-1.12.0-installed"
if [ ! -f "$_rp_stamp" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    echo "20-python.sh: python3 not found; the Python SDK compatibility test will be skipped (fails under CI)" >&2
  else
    rm -rf "$_rp_venv"
    if ! python3 -m venv "$_rp_venv" >/dev/null 2>&1 && [ -n "${CI:-}" ] && command -v apt-get >/dev/null 2>&1 \
      && [ "$(id -u)" = 0 ]; then
      # Debian's python3 lacks ensurepip until python3-venv is installed.
      rm -rf "$_rp_venv"
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && python3 -m venv "$_rp_venv"
    fi
    if [ -x "$_rp_venv/bin/pip" ] \
      && "$_rp_venv/bin/pip" install --quiet --disable-pip-version-check runpod==1.12.0; then
      touch "$_rp_stamp"
    else
      echo "20-python.sh: could not install runpod==1.12.0 into $_rp_venv" >&2
    fi
  fi
fi
if [ -f "$_rp_stamp" ]; then
  export RUNPOD_TEST_PYTHON="$_rp_venv/bin/python"
fi
unset _rp_venv _rp_stamp
