#!/usr/bin/env bash
# The GGUF text-generation worker against llama.cpp on this machine's CPU, side by side:
# examples/text-generation/examples/llm_bench.rs (ours through runpod-local's OpenAI route)
# against llama-cpp-python in-process, the same SmolLM2-135M-Instruct Q4_1 file, the same
# threads (THREADS, default 2), interleaved rounds, min/median/max; greedy text compared on 20
# prompts; 8 streams at once against one at a time.
#
# Usage: scripts/bench-llm.sh [ROUNDS]    (default 5)
#
# The peer is llama-cpp-python 0.3.36 (the newest release), built from source once into
# $RUNPOD_RS_CACHE/venv-llama-cpp-bench-* (about 10 CPU-minutes) for the same instruction set as
# the worker's llama.cpp (the GGML_* options of .cargo/config.toml: AVX2, FMA, F16C, BMI2),
# not pip's default native build: on a CPU that advertises AMX but cannot run it (a VM here
# did), a native build dies with SIGILL on the first token. Export GGML_AVX512=ON (and the
# other GGML_* options) to build both sides for a wider set: the variables reach both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
mkdir -p "$RUNPOD_RS_CACHE/models"
# shellcheck source=scripts/test.d/45-smollm2.sh
source scripts/test.d/45-smollm2.sh
: "${RUNPOD_TEST_SMOLLM2_GGUF:?could not fetch SmolLM2-135M-Instruct (see above)}"

# The CMake options: the repository's (.cargo/config.toml), overridden by the environment's.
opts=(-DGGML_NATIVE=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF
  -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF)
while IFS='=' read -r key value; do
  key="${key// /}"
  value="$(echo "$value" | tr -d ' "')"
  [[ "$key" == GGML_* ]] && opts+=("-D$key=${!key:-$value}")
done < <(sed -n '/^\[env\]/,/^\[/p' .cargo/config.toml)
while IFS='=' read -r key value; do
  [[ " ${opts[*]} " == *" -D$key="* ]] || opts+=("-D$key=$value")
done < <(env | grep '^GGML_' || true)

version=0.3.36
venv="$RUNPOD_RS_CACHE/venv-llama-cpp-bench-$version-$(echo "${opts[*]}" | sha256sum | cut -c1-12)"
if [ ! -f "$venv/.installed" ]; then
  echo "bench-llm: building llama-cpp-python==$version (${opts[*]}) into $venv" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" CMAKE_ARGS="${opts[*]}" \
    "$venv/bin/pip" install --quiet --disable-pip-version-check --no-cache-dir "llama-cpp-python==$version"
  touch "$venv/.installed"
fi
export BENCH_LLAMA_CPP_PYTHON="$venv/bin/python"
export THREADS="${THREADS:-2}"

echo "bench-llm: $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores; AVX-512: \
$(grep -q avx512f /proc/cpuinfo && echo yes || echo no); commit $(git rev-parse --short HEAD)\
$(git diff --quiet HEAD || echo '+changes'); llama.cpp options: ${opts[*]}" >&2
cargo run --release -q -p text-generation --example llm_bench -- "$@"
