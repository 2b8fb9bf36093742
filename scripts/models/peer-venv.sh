# shellcheck shell=bash
# Sourced by scripts/bench-models.sh and scripts/gpu-kit.sh (dry-run): a cached virtualenv with
# the Python peer of the model benchmarks, pinned to what the lent GPU machine has:
# torch 2.11.0, transformers 5.17.0, sentence-transformers 6.0.1. PyPI's torch for Linux x86-64
# is its CUDA build (with the nvidia-* wheels, about 4 GB installed); it runs on the CPU as well.
# Exports PEER_PYTHON=<venv>/bin/python. A second run finds the stamp and installs nothing.
_peer_pins="torch==2.11.0 transformers==5.17.0 sentence-transformers==6.0.1"
_peer_venv="${RUNPOD_RS_CACHE:?set RUNPOD_RS_CACHE (scripts/bench-models.sh does)}/venv-peer-torch-2.11.0"
_peer_stamp="$_peer_venv/.installed-$(echo "$_peer_pins" | tr ' =' '_-')"
if [ ! -f "$_peer_stamp" ]; then
  echo "peer-venv.sh: installing $_peer_pins into $_peer_venv (a few GB, minutes)" >&2
  if { [ -x "$_peer_venv/bin/pip" ] || python3 -m venv "$_peer_venv"; } \
    && "$_peer_venv/bin/pip" install --quiet --disable-pip-version-check --progress-bar off $_peer_pins; then
    touch "$_peer_stamp"
  else
    echo "peer-venv.sh: could not install the Python peer into $_peer_venv" >&2
  fi
fi
if [ -f "$_peer_stamp" ]; then
  export PEER_PYTHON="$_peer_venv/bin/python"
fi
unset _peer_pins _peer_venv _peer_stamp
