#!/usr/bin/env bash
# The README's first command: build the echo worker, serve it locally with `--serve-api`
# (the local endpoint runs in-process, on a free port), send it a job with curl (or, without
# curl, with our own `runpod` client CLI), print the answer, and stop the worker with SIGTERM.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> building the echo worker (cargo build -p echo)"
cargo build -q -p echo
bin="${CARGO_TARGET_DIR:-target}/debug/echo"

log="$(mktemp)"
"$bin" --serve-api --port 0 2>"$log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT

url=""
for _ in $(seq 1 300); do
  url="$(sed -n 's/^serving the local endpoint at //p' "$log" | head -n1)"
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; echo "the worker exited" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { cat "$log" >&2; echo "the worker did not start" >&2; exit 1; }
echo "==> echo worker serving $url"

input='{"message": "hello from runpod-rs", "repeat": 3, "stream": true}'
body="{\"input\": $input}"
if command -v curl >/dev/null 2>&1; then
  echo "==> curl -s $url/runsync -H 'Content-Type: application/json' -d '$body'"
  answer="$(curl -sS --fail-with-body "$url/runsync" -H 'Content-Type: application/json' -d "$body")"
else
  # No curl (a fresh Debian has none): send it with our own client CLI (crates/client).
  # $url is BASE/v2/ENDPOINT_ID; the local endpoint accepts any API key.
  echo "==> curl not found; runpod --base-url ${url%/*} --endpoint ${url##*/} runsync --input '$input'"
  answer="$(RUNPOD_API_KEY="${RUNPOD_API_KEY:-local}" cargo run -q -p runpod-client --bin runpod -- \
    --base-url "${url%/*}" --endpoint "${url##*/}" runsync --input "$input" --timeout-ms 60000)"
fi
echo "$answer"
case "$answer" in
  *'"status":"COMPLETED"'*) ;;
  *) echo "the job did not complete" >&2; cat "$log" >&2; exit 1 ;;
esac

echo "==> stopping the worker (SIGTERM)"
kill -TERM "$pid"
wait "$pid"
echo "==> worker exited cleanly"
