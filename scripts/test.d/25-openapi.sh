# shellcheck shell=bash
# Sourced by scripts/test.sh. A cached virtualenv with the OpenAPI tools that check runpod-local's
# `/openapi.json` (crates/local/tests/it/openapi.rs): the official `openapi-spec-validator`, and
# `openapi-python-client`, which generates a Python client from the document that the test then
# calls the endpoint with. Exports RUNPOD_TEST_OPENAPI_PYTHON=<venv>/bin/python (its bin/ also
# holds the `openapi-python-client` command). A second run finds the stamp file and installs
# nothing (no network). A failed install only warns: the test then skips (fails under CI).

_oa_pkgs="openapi-spec-validator==0.9.0 openapi-python-client==0.29.1"
_oa_venv="$RUNPOD_RS_CACHE/venv-openapi-$(echo "$_oa_pkgs" | sha256sum | cut -c1-12)"
if [ ! -f "$_oa_venv/.installed" ] && command -v python3 >/dev/null 2>&1; then
  echo "25-openapi.sh: installing $_oa_pkgs into $_oa_venv" >&2
  rm -rf "$_oa_venv"
  # shellcheck disable=SC2086
  if python3 -m venv "$_oa_venv" >&2 \
    && "$_oa_venv/bin/pip" install --quiet --disable-pip-version-check $_oa_pkgs >&2; then
    touch "$_oa_venv/.installed"
  fi
fi
if [ -f "$_oa_venv/.installed" ]; then
  export RUNPOD_TEST_OPENAPI_PYTHON="$_oa_venv/bin/python"
else
  echo "25-openapi.sh: WARNING: could not install $_oa_pkgs; the OpenAPI test will skip (fail under CI)" >&2
fi
unset _oa_pkgs _oa_venv
