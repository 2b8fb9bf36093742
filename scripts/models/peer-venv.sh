# shellcheck shell=bash
# Sourced by scripts/bench-models.sh and scripts/gpu-kit.sh (dry-run): a cached virtualenv with
# the Python peer of the model benchmarks. Two pin sets:
#   PEER_SET=newest (default)  what a user installs today, for the CPU benchmark: torch 2.15.0,
#                              transformers 5.25.0, sentence-transformers 6.3.0;
#   PEER_SET=gpu-machine       what the lent GPU machine has (torch 2.11.0, transformers 5.17.0,
#                              sentence-transformers 6.0.1), for the GPU kit's dry run.
# PyPI's torch for Linux x86-64 is its CUDA build (with the nvidia-* wheels, about 4 GB
# installed); it runs on the CPU as well. Exports PEER_PYTHON=<venv>/bin/python and PEER_PINS.
# A second run finds the stamp and installs nothing.
case "${PEER_SET:-newest}" in
  newest) _peer_torch=2.15.0 _peer_pins="torch==2.15.0 transformers==5.25.0 sentence-transformers==6.3.0" ;;
  gpu-machine) _peer_torch=2.11.0 _peer_pins="torch==2.11.0 transformers==5.17.0 sentence-transformers==6.0.1" ;;
  *) echo "peer-venv.sh: PEER_SET is newest or gpu-machine, not '$PEER_SET'" >&2; return 2 ;;
esac
_peer_venv="${RUNPOD_RS_CACHE:?set RUNPOD_RS_CACHE (scripts/bench-models.sh does)}/venv-peer-torch-$_peer_torch"
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
  export PEER_PYTHON="$_peer_venv/bin/python" PEER_PINS="$_peer_pins"
fi
unset _peer_torch _peer_pins _peer_venv _peer_stamp
