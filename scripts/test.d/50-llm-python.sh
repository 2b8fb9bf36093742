# shellcheck shell=bash
# The Python peers of the text-generation worker's OpenAI tests, in a cached venv
# (venv-llm-clients-*): the official OpenAI client (`openai`), `transformers` and `gguf` (the
# reference for chat templates: `apply_chat_template`, also on a GGUF file). llama.cpp's own
# tokenizer, the other reference, is the one the worker links (no llama-cpp-python here: the
# benchmark's peer is built by scripts/bench-llm.sh).
#
# Sourced by scripts/test.sh. A second run finds the stamp files and installs nothing (no
# network). Exports for the tests:
#   RUNPOD_TEST_LLM_PYTHON        python with openai, transformers, gguf
# A failed install only warns here: the tests then say why they skip (or fail, under CI).

_llm_clients_pkgs="openai==3.57.0 transformers==5.24.0 gguf==0.19.0 jinja2==3.1.6"
_llm_clients_venv="$RUNPOD_RS_CACHE/venv-llm-clients-$(echo "$_llm_clients_pkgs" | sha256sum | cut -c1-12)"

# Creates venv $1 (stamp file $1/.installed) with pip packages $2..; extra env for pip may be set
# by the caller. Returns non-zero when it could not.
_llm_venv() {
  local venv="$1"
  shift
  [ -f "$venv/.installed" ] && return 0
  command -v python3 >/dev/null 2>&1 || return 1
  echo "50-llm-python.sh: installing $* into $venv" >&2
  local started=$SECONDS
  rm -rf "$venv"
  python3 -m venv "$venv" >&2 || return 1
  "$venv/bin/pip" install --quiet --disable-pip-version-check "$@" >&2 || return 1
  echo "50-llm-python.sh: installed $* in $((SECONDS - started)) s" >&2
  touch "$venv/.installed"
}

# shellcheck disable=SC2086
if _llm_venv "$_llm_clients_venv" $_llm_clients_pkgs; then
  export RUNPOD_TEST_LLM_PYTHON="$_llm_clients_venv/bin/python"
else
  echo "50-llm-python.sh: WARNING: could not install $_llm_clients_pkgs; the OpenAI client and chat template tests will skip (fail under CI)" >&2
fi

unset _llm_clients_pkgs _llm_clients_venv
