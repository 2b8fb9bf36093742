#!/usr/bin/env bash
# The GPU kit: builds here, measures on a GPU machine that needs no network and no Rust, only
# Python 3.12 with torch (CUDA 13 wheels), transformers and sentence-transformers. One way to
# measure the GPU path (docs/development.md, "The GPU kit"):
#
#   scripts/gpu-kit.sh pack [--cpu]   here: build the bench binaries, the embeddings worker
#                                     (`--features cuda`, CUDA 13.0 from PyPI wheels) and
#                                     runpod-local, strip them and pack them with MiniLM's config
#                                     and tokenizer into .gpu-kit/ (ignored by git).
#                                     --cpu packs a build without CUDA, for the dry run.
#   scripts/gpu-kit.sh run            there: unpack, point the loader at the torch environment's
#                                     CUDA libraries, make random weights from a fixed seed
#                                     (MiniLM, SmolLM2-135M and TinyLlama-1.1B shapes), run our
#                                     models against sentence-transformers / transformers and one
#                                     job end to end, and write gpu-kit-report.{json,md} + log.txt
#                                     to $OUT.
#   scripts/gpu-kit.sh dry-run        here: `pack --cpu`, then `run` with DEVICE=cpu on a small
#                                     workload, with the cached Python peer (peer-venv.sh), so a
#                                     script bug costs no GPU minute. Writes to target/gpu-kit-dry-run.
#
# On the GPU machine: a copy of this checkout with .gpu-kit/ in it (`run` uses scripts/ and
# .gpu-kit/ only), then `bash scripts/gpu-kit.sh run` from its root.
#
# Environment (pack): CUDA_COMPUTE_CAP (default 90: H100/H200), GPU_KIT_DIR (default .gpu-kit),
#   CARGO_BUILD_JOBS, NICE (default 19: the first CUDA build took 14 min on 2 busy cores).
# Environment (run): DEVICE (cuda), PYTHON (python3), OUT (target/gpu-kit-out), GPU_KIT_WORK
#   (/tmp/gpu-kit), GPU_KIT_DEADLINE (seconds for the model comparison, default 300),
#   GPU_KIT_LLAMA1B (1 on cuda, 0 on cpu).
set -euo pipefail
cd "$(dirname "$0")/.."
export RUNPOD_RS_CACHE="${RUNPOD_RS_CACHE:-$PWD/.cache}"
KIT="${GPU_KIT_DIR:-$PWD/.gpu-kit}"
# nvidia-nvvm (cicc, nvcc's front end) is pinned to nvcc's release: the metapackage leaves it
# open, and 13.5's cicc writes PTX 9.5, which 13.0's ptxas refuses ("Unsupported .version 9.5").
CUDA_WHEELS="cuda-toolkit[nvcc,crt,cudart,cublas,curand,nvrtc,cccl]==13.0.2 nvidia-nvvm==13.0.88"
BINS=(embeddings embed_bench generate_bench runpod-local)
MINILM_FILES=(config.json tokenizer.json tokenizer_config.json special_tokens_map.json vocab.txt
  sentence_bert_config.json modules.json config_sentence_transformers.json 1_Pooling/config.json)

say() { echo "gpu-kit: $*" >&2; }

# A venv with the CUDA 13.0 toolkit from PyPI; prints its CUDA_HOME (site-packages/nvidia/cu13).
cuda_toolkit() {
  local venv="$RUNPOD_RS_CACHE/cuda-13.0.2" stamp
  stamp="$venv/.installed-$(echo "$CUDA_WHEELS" | tr -c 'a-zA-Z0-9.\n' '_')"
  if [ ! -f "$stamp" ]; then
    say "installing $CUDA_WHEELS into $venv"
    { [ -x "$venv/bin/pip" ] || python3 -m venv "$venv"; } >&2
    # shellcheck disable=SC2086 # two requirements, split on purpose
    "$venv/bin/pip" install -q --disable-pip-version-check --progress-bar off $CUDA_WHEELS >&2
    touch "$stamp"
  fi
  local home
  home="$(echo "$venv"/lib/python3*/site-packages/nvidia/cu13)"
  [ -x "$home/bin/nvcc" ] || { say "no nvcc in $home"; return 1; }
  echo "$home"
}

# The libraries cudarc links against (`-lcuda -lcublas ...`), findable by the linker: the wheels
# ship only versioned names (libcublas.so.13), and no libcuda at all (the driver brings it on the
# GPU machine), so a stub libcuda.so is made from the driver functions cudarc declares. Prints
# the folder.
link_dir() {
  local home="$1" dir="$RUNPOD_RS_CACHE/cuda-13.0.2/link" lib real
  mkdir -p "$dir"
  for lib in cudart cublas cublasLt curand nvrtc; do
    real="$(ls "$home/lib/lib$lib.so."* | grep -v builtins | grep -v alt | head -1)"
    ln -sf "$real" "$dir/lib$lib.so"
  done
  if [ ! -f "$dir/libcuda.so" ]; then
    local cudarc
    cargo fetch -q >&2
    cudarc="$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-"$(sed -n '/^name = "cudarc"$/{n;s/version = "\(.*\)"/\1/p}' Cargo.lock)" | head -1)"
    grep -oh 'pub unsafe fn cu[A-Za-z0-9_]*' "$cudarc/src/driver/sys/mod.rs" | sed 's/pub unsafe fn //' | sort -u |
      sed 's/.*/void &(void) {}/' >"$dir/libcuda-stub.c"
    cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/libcuda-stub.c"
  fi
  echo "$dir"
}

pack() {
  local flavor=cuda
  [ "${1:-}" = "--cpu" ] && flavor=cpu
  local started=$SECONDS target features=()
  mkdir -p "$KIT"
  # shellcheck source=scripts/test.d/40-models.sh
  source scripts/test.d/40-models.sh
  : "${RUNPOD_TEST_MINILM_DIR:?could not fetch all-MiniLM-L6-v2}"
  if [ "$flavor" = cuda ]; then
    local home cap="${CUDA_COMPUTE_CAP:-90}"
    home="$(cuda_toolkit)"
    say "CUDA $("$home/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\), V\([0-9.]*\).*/\1 (nvcc \2)/p'), compute capability $cap"
    export CUDA_HOME="$home" CUDA_COMPUTE_CAP="$cap" PATH="$home/bin:$PATH"
    export LIBRARY_PATH="$(link_dir "$home")${LIBRARY_PATH:+:$LIBRARY_PATH}"
    target="${CARGO_TARGET_DIR:-target}/cuda"
    features=(--features "embeddings/cuda,text-generation/cuda")
  else
    target="${CARGO_TARGET_DIR:-target}"
  fi
  say "building ($flavor) into $target$([ "$flavor" = cuda ] && echo '; the first CUDA build takes tens of minutes')"
  CARGO_TARGET_DIR="$target" nice -n "${NICE:-19}" cargo build --release -q \
    -p embeddings --bin embeddings --example embed_bench -p text-generation --example generate_bench "${features[@]}"
  nice -n "${NICE:-19}" cargo build --release -q -p runpod-local

  local stage="$KIT/stage-$flavor"
  rm -rf "$stage" && mkdir -p "$stage"
  strip -o "$stage/embeddings" "$target/release/embeddings"
  strip -o "$stage/embed_bench" "$target/release/examples/embed_bench"
  strip -o "$stage/generate_bench" "$target/release/examples/generate_bench"
  strip -o "$stage/runpod-local" "${CARGO_TARGET_DIR:-target}/release/runpod-local"
  local sums archive="$KIT/bins-$flavor.tar.xz"
  sums="$(cd "$stage" && sha256sum "${BINS[@]}")"
  if [ -f "$archive" ] && [ "$sums" = "$(cat "$KIT/bins-$flavor.sha256" 2>/dev/null)" ]; then
    say "$archive is up to date"
  else
    say "compressing ($(du -sh "$stage" | cut -f1) of binaries)"
    tar -C "$stage" -cf - "${BINS[@]}" | xz -T2 -9 >"$archive.tmp"
    mv "$archive.tmp" "$archive"
    echo "$sums" >"$KIT/bins-$flavor.sha256"
  fi
  for f in "${MINILM_FILES[@]}"; do
    mkdir -p "$(dirname "$KIT/minilm/$f")"
    cp "$RUNPOD_TEST_MINILM_DIR/$f" "$KIT/minilm/$f"
  done
  {
    echo "flavor: $flavor"
    echo "commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo '+changes')"
    echo "built: $(date -u +%Y-%m-%dT%H:%MZ)"
    [ "$flavor" = cuda ] && echo "cuda: $CUDA_WHEELS, CUDA_COMPUTE_CAP=$CUDA_COMPUTE_CAP"
    echo "needed libraries (embed_bench): $(readelf -d "$stage/embed_bench" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
    (cd "$stage" && ls -l "${BINS[@]}" | awk '{print "  " $9 ": " $5 " bytes stripped"}')
  } >"$KIT/MANIFEST-$flavor.txt"
  rm -rf "$stage"
  say "packed $archive: $(du -h "$archive" | cut -f1) ($(du -sh "$KIT" | cut -f1) in $KIT) in $((SECONDS - started)) s"
  cat "$KIT/MANIFEST-$flavor.txt" >&2
}

run() {
  local started=$SECONDS
  local py="${PYTHON:-python3}" device="${DEVICE:-cuda}"
  local flavor=cuda
  [ "$device" = cpu ] && flavor=cpu
  local out="${OUT:-$PWD/target/gpu-kit-out}" work="${GPU_KIT_WORK:-/tmp/gpu-kit}"
  mkdir -p "$out" "$work"
  exec > >(tee -a "$out/log.txt") 2>&1
  say "run: device $device, kit $KIT, work $work, out $out"
  [ -f "$KIT/bins-$flavor.tar.xz" ] || { say "no $KIT/bins-$flavor.tar.xz: run 'scripts/gpu-kit.sh pack' first (and copy .gpu-kit/ here)"; exit 2; }
  cat "$KIT/MANIFEST-$flavor.txt" || true
  local bin="$work/bin"
  rm -rf "$bin" && mkdir -p "$bin"
  "$py" - "$KIT/bins-$flavor.tar.xz" "$bin" <<'PY'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    try:
        t.extractall(sys.argv[2], filter="data")
    except TypeError:  # Python before 3.12
        t.extractall(sys.argv[2])
PY
  chmod +x "$bin"/*
  if [ "$flavor" = cuda ]; then
    # The CUDA libraries (cudart, cublas, curand, nvrtc) of the torch environment.
    local libs
    libs="$("$py" -c 'import glob, os, site
dirs = site.getsitepackages() + [site.getusersitepackages()]
print(":".join(sorted({p for d in dirs for p in glob.glob(os.path.join(d, "nvidia", "*", "lib")) if os.path.isdir(p)})))')"
    export LD_LIBRARY_PATH="$libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    say "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"
    nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader || true
  fi
  "$py" -c 'import torch, transformers, sentence_transformers as st; print("peer: torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available(), "| transformers", transformers.__version__, "| sentence-transformers", st.__version__)'
  say "unpacked in $((SECONDS - started)) s"

  # Random weights from a fixed seed, made here (nothing can be downloaded on the GPU machine).
  local mdev=cpu llama="${GPU_KIT_LLAMA1B:-1}"
  [ "$flavor" = cuda ] && mdev=cuda
  [ "$flavor" = cpu ] && llama="${GPU_KIT_LLAMA1B:-0}"
  "$py" scripts/models/make_models.py minilm "$work/minilm" --like "$KIT/minilm" --device "$mdev"
  "$py" scripts/models/make_models.py smollm2 "$work/smollm2" --device "$mdev"
  local gen=(--gen-model "SmolLM2-135M shape=$work/smollm2")
  if [ "$llama" = 1 ]; then
    # f16 on disk: half the size, and both sides run it in f16 on the GPU anyway.
    "$py" scripts/models/make_models.py llama1b "$work/llama1b" --device "$mdev" --dtype f16
    gen+=(--gen-model "TinyLlama-1.1B shape=$work/llama1b")
  fi
  say "weights made at $((SECONDS - started)) s"

  local settings
  if [ "$flavor" = cuda ]; then
    settings=(--threads 0 --rounds 2 --repeat 3 --embed-sentences 2048 --embed-batches 32,128,512
      --embed-dtypes f32,f16 --gen-dtype f16 --gen-prompt-tokens 128 --gen-new-tokens 128
      --deadline "${GPU_KIT_DEADLINE:-300}")
  else
    settings=(--threads 2 --rounds 1 --repeat 1 --embed-sentences 64 --embed-batches 16,32
      --embed-dtypes f32 --gen-dtype f32 --gen-prompt-tokens 8 --gen-new-tokens 8
      --deadline "${GPU_KIT_DEADLINE:-300}")
  fi
  local commit
  commit="$(sed -n 's/^commit: //p' "$KIT/MANIFEST-$flavor.txt")"
  local rc=0
  "$py" scripts/models/compare.py --ours "$bin" --device "$device" "${settings[@]}" --commit "${commit:-?}" \
    --embed-model "$work/minilm" "${gen[@]}" --work "$work/compare" \
    --json "$work/compare.json" --markdown "$work/compare.md" || rc=1
  say "comparison done at $((SECONDS - started)) s"
  "$py" scripts/models/e2e.py --bin "$bin" --model "$work/minilm" --device "$device" --json "$work/e2e.json" || rc=1
  say "end-to-end job done at $((SECONDS - started)) s"

  "$py" - "$work" "$out" "$((SECONDS - started))" <<'PY'
import json, os, sys
work, out, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3])
def load(name):
    try:
        with open(os.path.join(work, name)) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        return {"error": f"{name}: {e}"}
report = {"comparison": load("compare.json"), "e2e": load("e2e.json"), "run_seconds": seconds}
with open(os.path.join(out, "gpu-kit-report.json"), "w") as f:
    json.dump(report, f, indent=1)
try:
    table = open(os.path.join(work, "compare.md")).read()
except OSError:
    table = "(no comparison table: see log.txt)\n"
e = report["e2e"]
table += (f"\nEnd to end (runpod-local + embeddings worker, /runsync, device {e.get('device')}): "
          f"status {e.get('status')}, min cosine vs sentence-transformers {e.get('min_cosine_vs_sentence_transformers')}, "
          f"{'ok' if e.get('ok') else 'FAILED ' + str(e.get('error', ''))}\n")
with open(os.path.join(out, "gpu-kit-report.md"), "w") as f:
    f.write(table)
print(table)
PY
  say "run finished in $((SECONDS - started)) s (exit $rc)"
  return $rc
}

dry_run() {
  # The versions the GPU machine has, so the dry run runs what `run` will run there.
  # shellcheck source=scripts/models/peer-venv.sh
  PEER_SET=gpu-machine source scripts/models/peer-venv.sh
  : "${PEER_PYTHON:?could not install the Python peer (see above)}"
  pack --cpu
  DEVICE=cpu PYTHON="$PEER_PYTHON" OUT="${OUT:-$PWD/target/gpu-kit-dry-run}" \
    GPU_KIT_WORK="${GPU_KIT_WORK:-$PWD/target/gpu-kit-dry-run/work}" run
}

case "${1:-}" in
  pack) shift; pack "$@" ;;
  run) run ;;
  dry-run) dry_run ;;
  *) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
