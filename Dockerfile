# syntax=docker/dockerfile:1
#
# One example worker in a CUDA image. Pick the example with EXAMPLE; bake model weights in with
# MODEL_ID (fetched from the Hugging Face hub at build time) or with a local folder passed as the
# named build context `model`; or bake none and mount a folder at run time (MODEL_DIR=/model).
#
#   docker build --build-arg EXAMPLE=embeddings --build-arg MODEL_ID=sentence-transformers/all-MiniLM-L6-v2 -t rp-embeddings .
#   docker build --build-arg EXAMPLE=text-generation --build-context model=./models/SmolLM2-135M -t rp-textgen .
#   docker run --gpus all -v $PWD/models/all-MiniLM-L6-v2:/model:ro rp-embeddings
#
# CPU-only image: --build-arg FEATURES= --build-arg RUNTIME_IMAGE=ubuntu:22.04
#
# The CUDA build links libcuda.so.1, which the NVIDIA container runtime mounts from the host
# (`--gpus all`; always so on Runpod GPU workers): without it the binary does not start. With a
# GPU visible but unusable it exits with "cannot open CUDA device 0"; DEVICE=cpu runs it on the
# CPU. candle's kernels ship as PTX that the host driver compiles at start, so the driver must
# support CUDA_VERSION (on Runpod, allow only hosts with that CUDA version or newer).
# `--features cuda` was compiled and linked outside Docker with CUDA 13.0 (nvcc 13.0.88,
# CUDA_COMPUTE_CAP=80); the 12.4.1 images here were not built (no Docker where this was written).

ARG CUDA_VERSION=12.4.1
ARG UBUNTU_VERSION=22.04
ARG BUILD_IMAGE=nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION}
ARG RUNTIME_IMAGE=nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION}

# ---- build: the CUDA toolkit (nvcc) plus Rust, building one example ------------------------
FROM ${BUILD_IMAGE} AS build
ARG RUST_VERSION=1.95.0
# Which example crate (and binary) to build: embeddings, text-generation, bulk-embeddings.
ARG EXAMPLE=embeddings
# Cargo features of the example; `cuda` compiles candle's CUDA kernels with nvcc.
ARG FEATURES=cuda
# GPU architecture for candle's kernels when no GPU is visible at build time (80 = A100; the
# PTX also runs on newer GPUs such as H100/H200 (90) and L4/4090 (89)).
ARG CUDA_COMPUTE_CAP=80
ENV CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP} \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:${PATH}
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl build-essential pkg-config \
 && rm -rf /var/lib/apt/lists/* \
 && curl -sSf https://sh.rustup.rs | sh -s -- -y --no-modify-path --profile minimal --default-toolchain ${RUST_VERSION}
WORKDIR /src
COPY . .
# Stripped (`install -s`): the CUDA embeddings worker goes from 225 MB to 60 MB (measured
# outside Docker); backtraces lose their file:line information.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p "${EXAMPLE}" --features "${FEATURES}" \
 && install -D -s -m 0755 "target/release/${EXAMPLE}" /out/worker

# ---- model-fetch: optional weights from the hub at build time ------------------------------
FROM ${BUILD_IMAGE} AS model-fetch
# A hub model id (owner/name) to bake in; empty bakes nothing.
ARG MODEL_ID=""
ARG HF_ENDPOINT=https://huggingface.co
# Files fetched when present besides config.json, tokenizer.json and model.safetensors.
ARG MODEL_OPTIONAL_FILES="generation_config.json sentence_bert_config.json"
RUN mkdir -p /out && if [ -n "${MODEL_ID}" ]; then \
      apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
      && for f in config.json tokenizer.json model.safetensors; do \
           curl -fsSL --retry 3 -o "/out/$f" "${HF_ENDPOINT}/${MODEL_ID}/resolve/main/$f" || exit 1; \
         done \
      && for f in ${MODEL_OPTIONAL_FILES}; do \
           curl -fsSL --retry 3 -o "/out/$f" "${HF_ENDPOINT}/${MODEL_ID}/resolve/main/$f" || rm -f "/out/$f"; \
         done; \
    fi

# ---- model: the weights to bake; `--build-context model=DIR` replaces this stage -----------
FROM scratch AS model
COPY --from=model-fetch /out/ /

# ---- runtime: CUDA runtime libraries, the worker binary, a non-root user -------------------
FROM ${RUNTIME_IMAGE} AS runtime
ARG EXAMPLE=embeddings
RUN groupadd --system --gid 10001 worker \
 && useradd --system --uid 10001 --gid worker --home-dir /home/worker --create-home worker \
 && mkdir -p /model \
 && chown worker:worker /model
COPY --from=build /out/worker /usr/local/bin/worker
COPY --from=model --chown=worker:worker / /model/
LABEL org.opencontainers.image.title="runpod-rs ${EXAMPLE} worker"
ENV MODEL_DIR=/model \
    MODEL_CACHE=/home/worker/.cache/runpod-rs/models \
    RUST_LOG=info
USER worker
WORKDIR /home/worker
CMD ["/usr/local/bin/worker"]
