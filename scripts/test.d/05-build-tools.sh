# shellcheck shell=bash
# What the workspace's build needs beyond a Rust toolchain: the text-generation example links
# llama.cpp, which llama-cpp-sys-2 builds from its vendored source with CMake and a C++
# compiler, reading llama.h with bindgen (libclang). ccache, when present, keeps the compiled
# objects for the next build (llama.cpp's CMake uses it by itself): a second cold build of the
# workspace then compiles llama.cpp in seconds.
#
# Sourced by scripts/test.sh and by .ci/run (before clippy, which runs the build scripts too).
# As root with apt-get, a missing one is installed; otherwise the command that would is printed.
_build_tools_missing=()
command -v cmake >/dev/null 2>&1 || _build_tools_missing+=(cmake)
command -v c++ >/dev/null 2>&1 || _build_tools_missing+=(g++)
command -v ccache >/dev/null 2>&1 || _build_tools_missing+=(ccache)
if ! { ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; } \
  && ! ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1; then
  _build_tools_missing+=(libclang-dev)
fi
if [ "${#_build_tools_missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "05-build-tools.sh: installing ${_build_tools_missing[*]}" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${_build_tools_missing[@]}" >/dev/null
  else
    echo "05-build-tools.sh: missing ${_build_tools_missing[*]}: the build of llama.cpp needs them" >&2
    echo "  (sudo apt-get install ${_build_tools_missing[*]})" >&2
  fi
fi
unset _build_tools_missing
