#!/usr/bin/env bash
# CPU vs GPU throughput of the example workers' models, on a machine with an NVIDIA GPU, the
# CUDA toolkit (nvcc) and Rust. Builds the embeddings and text-generation examples once in release
# mode with `--features cuda` (own target dir, target/cuda), runs each benchmark with DEVICE=cpu
# and then DEVICE=cuda (same binary, same code paths), and prints one JSON line per run:
#   embeddings:      sentences/s on all-MiniLM-L6-v2 (512 sentences, batch 32 and 128)
#   text-generation: tokens/s, greedy, 128 new tokens; a Llama-family model from LLAMA_DIR, or
#                    random weights in the shape of SmolLM2-135M when LLAMA_DIR is unset
#
# Usage: scripts/gpu-bench.sh            (results also appended to $OUT/gpu-bench.jsonl if OUT is set)
# Env:   MINILM_DIR   all-MiniLM-L6-v2 folder (default: $RUNPOD_TEST_MINILM_DIR, else fetched by
#                     scripts/test.d/40-models.sh into .cache/)
#        LLAMA_DIR    optional Llama-family model folder for the generation benchmark
#        CUDA_COMPUTE_CAP  taken from nvidia-smi when unset
#        CUDA_HOME    the toolkit when nvcc is not on PATH (a /usr/local/cuda* folder is tried);
#                     its lib64/ or lib/ is added to LD_LIBRARY_PATH for the CUDA libraries
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
mkdir -p "$RUNPOD_RS_CACHE"

need() { command -v "$1" >/dev/null || { echo "gpu-bench: $1 not found: $2" >&2; exit 2; }; }
need cargo "install Rust (rustup) first"
need nvidia-smi "no NVIDIA driver: this script is for a GPU machine"
if ! command -v nvcc >/dev/null; then
  for d in "${CUDA_HOME:-}" /usr/local/cuda /usr/local/cuda-*; do
    if [ -n "$d" ] && [ -x "$d/bin/nvcc" ]; then export PATH="$d/bin:$PATH" CUDA_HOME="$d"; break; fi
  done
fi
need nvcc "the CUDA toolkit is needed to build candle's kernels (set CUDA_HOME)"
# cudarc links libcuda, libcudart, libcublas and libcurand from CUDA_HOME (else from /usr and
# /usr/local/cuda, which may hold another CUDA version than this nvcc): point it at nvcc's toolkit,
# and make the same libraries findable at run time.
export CUDA_HOME="${CUDA_HOME:-$(dirname "$(dirname "$(command -v nvcc)")")}"
for d in "$CUDA_HOME/lib64" "$CUDA_HOME/lib"; do
  if [ -d "$d" ]; then export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi
done

if [ -z "${CUDA_COMPUTE_CAP:-}" ]; then
  CUDA_COMPUTE_CAP="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')"
  export CUDA_COMPUTE_CAP
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
echo "gpu-bench: nvcc $(nvcc --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), compute cap $CUDA_COMPUTE_CAP, $(nproc) CPUs" >&2

MINILM_DIR="${MINILM_DIR:-${RUNPOD_TEST_MINILM_DIR:-}}"
if [ -z "$MINILM_DIR" ]; then
  # shellcheck source=scripts/test.d/40-models.sh
  source scripts/test.d/40-models.sh
  MINILM_DIR="${RUNPOD_TEST_MINILM_DIR:?could not fetch all-MiniLM-L6-v2; set MINILM_DIR}"
fi

results=()
run() { # label, then the command; keeps the JSON line
  local line
  line="$("${@:2}" | tail -1)"
  echo "$line"
  results+=("$line")
}

echo "gpu-bench: building (--features cuda)" >&2
CARGO_TARGET_DIR=target/cuda cargo build --release -q -p embeddings -p text-generation --examples --features cuda
bin=target/cuda/release/examples

for device in cpu cuda; do
  for batch in 32 128; do
    run "$device" env DEVICE="$device" MODEL_DIR="$MINILM_DIR" "$bin/embed_bench" 512 "$batch"
  done
  if [ -n "${LLAMA_DIR:-}" ]; then
    run "$device" env DEVICE="$device" MODEL_DIR="$LLAMA_DIR" "$bin/generate_bench" 128
  else
    run "$device" env -u MODEL_DIR DEVICE="$device" "$bin/generate_bench" 128
  fi
done

if [ -n "${OUT:-}" ]; then
  printf '%s\n' "${results[@]}" >>"$OUT/gpu-bench.jsonl"
fi
