#!/usr/bin/env bash
# Starts a new worker crate from templates/worker.
#
#   scripts/new-worker.sh DEST [NAME]
#
# Copies the template to DEST (a new or empty folder, anywhere), names the package NAME
# (default: DEST's folder name), copies the runtime's source (runpod-worker and the crates it
# uses) into DEST/runpod-rs/, since runpod-worker is not on crates.io yet, and seeds DEST's
# Cargo.lock with the dependency versions this checkout is tested with. DEST then builds on
# its own: `cargo run -- --test-input @test_input.json`, `docker build .`.
set -euo pipefail

if [ $# -lt 1 ] || [ $# -gt 2 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
  sed -n '2,10s/^# \{0,1\}//p' "$0" >&2
  exit 2
fi
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="$1"
name="${2:-$(basename "$(realpath -m "$dest")")}"
if ! [[ "$name" =~ ^[a-z][a-z0-9_-]*$ ]]; then
  echo "new-worker.sh: $name is not a package name (lower-case letters, digits, - and _)" >&2
  exit 2
fi
if [ -e "$dest" ] && [ -n "$(ls -A "$dest")" ]; then
  echo "new-worker.sh: $dest exists and is not empty" >&2
  exit 1
fi

mkdir -p "$dest"
# The template without what building it in place leaves behind.
tar -C "$repo/templates/worker" --exclude=./target --exclude=./Cargo.lock -cf - . | tar -C "$dest" -xf -
sed -i "0,/^name = \"worker\"/s//name = \"$name\"/" "$dest/Cargo.toml"

# The runtime's source: the workspace manifest (its crates inherit versions from it) and the
# crates runpod-worker builds with.
mkdir -p "$dest/runpod-rs/crates"
cp "$repo/Cargo.toml" "$dest/runpod-rs/Cargo.toml"
for crate in worker protocol net local s3; do
  cp -r "$repo/crates/$crate" "$dest/runpod-rs/crates/$crate"
done
sed -i 's|^runpod-worker = { path = .*|runpod-worker = { path = "runpod-rs/crates/worker" }|' "$dest/.cargo/config.toml"

# Same versions as this checkout's tests: cargo keeps the locked versions it needs, drops the rest.
cp "$repo/Cargo.lock" "$dest/Cargo.lock"
(cd "$dest" && cargo update --workspace --quiet)
echo "new-worker.sh: $name is in $dest; next: cd $dest && cargo run -- --test-input @test_input.json" >&2
