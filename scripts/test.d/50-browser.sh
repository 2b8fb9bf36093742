# shellcheck shell=bash
# Headless Chromium and its WebDriver server for the console's browser test
# (examples/echo/tests/console.rs).
#
# Sourced by scripts/test.sh. Installs Debian's `chromium` and `chromium-driver` with apt-get
# when they are missing (as root; the .deb files are kept under $RUNPOD_RS_CACHE/apt, so a
# reinstall downloads nothing), and exports for the test:
#   RUNPOD_TEST_CHROMIUM       the browser
#   RUNPOD_TEST_CHROMEDRIVER   its WebDriver server
# A failed install only warns here: the test then says SKIPPED (or fails, under CI).

_browser_install() {
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1 && return 0
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    echo "50-browser.sh: chromium/chromedriver missing and apt-get cannot run here (not root or not Debian)" >&2
    return 1
  fi
  local archives="$RUNPOD_RS_CACHE/apt/archives"
  mkdir -p "$archives/partial"
  # Another apt-get (another test run) may hold the lock: wait for it rather than fail.
  local install=(apt-get install -y -qq --no-install-recommends -o DPkg::Lock::Timeout=600 -o "Dir::Cache::Archives=$archives" chromium chromium-driver)
  echo "50-browser.sh: installing chromium and chromium-driver (apt-get, .deb files cached in $archives)" >&2
  # The package lists may be stale or absent (a fresh container): update once when needed.
  DEBIAN_FRONTEND=noninteractive "${install[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive "${install[@]}" >&2; } || return 1
  command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

if _browser_install; then
  RUNPOD_TEST_CHROMIUM="$(command -v chromium)"
  RUNPOD_TEST_CHROMEDRIVER="$(command -v chromedriver)"
  export RUNPOD_TEST_CHROMIUM RUNPOD_TEST_CHROMEDRIVER
else
  echo "50-browser.sh: WARNING: no chromium/chromedriver; the console's browser test will be SKIPPED (fails under CI)" >&2
fi
