# syntax=docker/dockerfile:1
#
# One Dockerfile for every runpod-rs worker: the examples of this repository, the template in
# templates/worker/, and your own crate (templates/worker/Dockerfile is this file, byte for byte).
# Build arguments, platform settings and measured figures: templates/worker/README.md.
#
#   docker build -t my-worker .                                        # CPU image of the crate in .
#   docker build --build-arg CRATE=examples/embeddings -t rp-embeddings .   # an example of this repository
#   docker build --build-context model=DIR ...         # bake the model folder DIR into /model
#   docker build --build-arg MODEL_ID=owner/name ...   # or fetch it from the hub at build time
#   CUDA: --build-arg FEATURES=cuda --build-arg BUILD_IMAGE=nvidia/cuda:12.4.1-devel-ubuntu22.04 \
#         --build-arg RUNTIME_IMAGE=nvidia/cuda:12.4.1-runtime-ubuntu22.04
#
# Builds with Docker (BuildKit) and with podman/buildah: no heredocs, no COPY --link, no
# RUN --network (podman refuses them).

# The build and run images must be of one distribution (glibc): rust:*-bookworm with
# debian:bookworm-slim, nvidia/cuda:*-devel-ubuntuXX with nvidia/cuda:*-runtime-ubuntuXX.
ARG BUILD_IMAGE=rust:1.95-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---- build: the worker binary ---------------------------------------------------------------
FROM ${BUILD_IMAGE} AS build
# Installed only when the build image has no cargo (the nvidia/cuda devel images).
ARG RUST_VERSION=1.95.0
# The crate to build, relative to the build context; its one binary becomes the worker.
ARG CRATE=.
# Cargo features of that crate, e.g. `cuda` (candle's CUDA kernels, compiled with nvcc).
ARG FEATURES=""
# GPU architecture for candle's kernels when no GPU is visible at build time (80 = A100; the
# PTX also runs on newer GPUs: L4/4090 89, H100/H200 90).
ARG CUDA_COMPUTE_CAP=80
# Release profile of the image: no debug info (a smaller binary, a faster build; panics still
# name the function), symbols kept for backtraces.
ENV CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP} \
    RUSTUP_HOME=/usr/local/rustup \
    CARGO_HOME=/usr/local/cargo \
    PATH=/usr/local/cargo/bin:${PATH} \
    CARGO_PROFILE_RELEASE_DEBUG=false \
    CARGO_PROFILE_RELEASE_STRIP=debuginfo \
    CARGO_TARGET_DIR=/target
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# (DL3008: the build and run images are the pinned part; apt's versions follow their release.)
# hadolint ignore=DL3008
RUN if ! command -v cargo >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends ca-certificates curl gcc libc6-dev \
      && rm -rf /var/lib/apt/lists/* \
      && curl -sSf https://sh.rustup.rs \
         | sh -s -- -y --no-modify-path --profile minimal --default-toolchain "${RUST_VERSION}"; \
    fi
WORKDIR /src
COPY . .
# A crate on llama.cpp (llama-cpp-2, e.g. examples/text-generation) builds it with CMake and a
# C++ compiler and reads its header with libclang; other crates skip this.
# hadolint ignore=DL3008
RUN if grep -q '^llama-cpp-2' "${CRATE}/Cargo.toml" && ! command -v cmake >/dev/null; then \
      apt-get update \
      && apt-get install -y --no-install-recommends cmake g++ libclang-dev \
      && rm -rf /var/lib/apt/lists/*; \
    fi
# Dependencies are cached in the registry and target cache mounts (kept across builds), so a
# change in src/ recompiles only the crates that changed.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/target,sharing=locked \
    cargo install --locked --path "${CRATE}" --root /out --features "${FEATURES}" \
    && bins=(/out/bin/*) \
    && if [ "${#bins[@]}" -ne 1 ]; then echo "expected one binary in ${CRATE}, got: ${bins[*]}" >&2; exit 1; fi \
    && mv "${bins[0]}" /out/worker

# ---- model-fetch: weights from the hub at build time (MODEL_ID), else nothing ---------------
FROM ${BUILD_IMAGE} AS model-fetch
# A hub model id (owner/name) to bake in; empty bakes nothing.
ARG MODEL_ID=""
ARG HF_ENDPOINT=https://huggingface.co
# Files fetched besides these three when the model has them.
ARG MODEL_FILES="config.json tokenizer.json model.safetensors"
ARG MODEL_OPTIONAL_FILES="generation_config.json sentence_bert_config.json"
RUN mkdir -p /out \
    && if [ -n "${MODEL_ID}" ]; then \
      for f in ${MODEL_FILES}; do \
        curl -fsSL --retry 3 -o "/out/$f" "${HF_ENDPOINT}/${MODEL_ID}/resolve/main/$f" || exit 1; \
      done; \
      for f in ${MODEL_OPTIONAL_FILES}; do \
        curl -fsSL --retry 3 -o "/out/$f" "${HF_ENDPOINT}/${MODEL_ID}/resolve/main/$f" || rm -f "/out/$f"; \
      done; \
    fi

# ---- model: the weights to bake; `--build-context model=DIR` replaces this stage -----------
FROM scratch AS model
COPY --from=model-fetch /out/ /

# ---- runtime: the worker as PID 1, a non-root user, the model in /model ---------------------
FROM ${RUNTIME_IMAGE} AS runtime
# CA certificates: the worker reaches the platform's API over HTTPS with the system's roots.
# (`apt-get clean`: a base without the official images' docker-clean setting keeps ~80 MB of
# package caches otherwise. DL3008: the base image is the pinned part, as in the build stage.)
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 worker \
    && useradd --uid 10001 --gid worker --home-dir /home/worker --create-home worker
COPY --from=build /out/worker /usr/local/bin/worker
# Baked weights are root's and read-only to the worker.
COPY --from=model / /model/
ENV MODEL_DIR=/model \
    MODEL_CACHE=/home/worker/.cache/runpod-rs/models \
    RUST_LOG=info
USER 10001:10001
WORKDIR /home/worker
# Exec form: the worker is PID 1 and gets SIGTERM itself; it drains and exits 0.
ENTRYPOINT ["/usr/local/bin/worker"]
