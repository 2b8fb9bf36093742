#!/usr/bin/env bash
# Our example models against the Python stack on this machine's CPU, side by side:
#   embeddings       all-MiniLM-L6-v2 (real weights), `embed_bench` vs sentence-transformers
#                    `encode`, uniform short sentences and mixed lengths, batch 32 and 128;
#   text generation  random weights (fixed seed) in SmolLM2-135M's shape, `generate_bench` vs
#                    transformers `generate`, greedy, prefill and decode separately.
# Same threads on both sides (default 2; torch with OMP_WAIT_POLICY=PASSIVE), interleaved runs,
# min/median/max and the ratio ours/theirs; vectors and greedy tokens are compared too.
#
# Usage: scripts/bench-models.sh [compare.py options, e.g. --rounds 5 --threads 1 --embed-batches 32]
# Needs the network once: the Python peer at its newest releases (torch 2.15.0, transformers
# 5.25.0, sentence-transformers 6.3.0; about 4 GB) is installed into $RUNPOD_RS_CACHE by
# scripts/models/peer-venv.sh, and MiniLM by scripts/test.d/40-models.sh.
# Writes target/bench-models/report.json and report.md (the table) and prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
mkdir -p "$RUNPOD_RS_CACHE/models"

# shellcheck source=scripts/test.d/40-models.sh
source scripts/test.d/40-models.sh
# shellcheck source=scripts/models/peer-venv.sh
source scripts/models/peer-venv.sh
: "${RUNPOD_TEST_MINILM_DIR:?could not fetch all-MiniLM-L6-v2 (see above)}"
: "${PEER_PYTHON:?could not install the Python peer (see above)}"

echo "bench-models: building the bench binaries (release)" >&2
cargo build --release -q -p embeddings --example embed_bench -p text-generation --example generate_bench
smollm="$RUNPOD_RS_CACHE/models/random-smollm2-135m"
"$PEER_PYTHON" scripts/models/make_models.py smollm2 "$smollm"

out="${CARGO_TARGET_DIR:-target}/bench-models"
mkdir -p "$out"
commit="$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
git diff --quiet HEAD 2>/dev/null || commit="$commit+changes"
"$PEER_PYTHON" scripts/models/compare.py --ours "${CARGO_TARGET_DIR:-target}/release/examples" \
  --device cpu --threads 2 --rounds 3 --commit "$commit" \
  --embed-model "$RUNPOD_TEST_MINILM_DIR" --gen-model "SmolLM2-135M shape=$smollm" \
  --work "$out/work" --json "$out/report.json" --markdown "$out/report.md" "$@"
