#!/usr/bin/env bash
# Installs what building Vectron needs beyond a Rust toolchain, gcc and git:
# libclang, which RocksDB's bindings generator (bindgen) loads at build time.
# Idempotent: does nothing when everything is already present.
set -euo pipefail

have_libclang() {
  local candidate
  for candidate in "${LIBCLANG_PATH:-/nonexistent}"/libclang*.so* \
                   /usr/lib/llvm-*/lib/libclang*.so* \
                   /usr/lib/*-linux-gnu/libclang*.so*; do
    # libclang-cpp is a different library; bindgen needs libclang itself.
    case "$candidate" in *libclang-cpp*) continue ;; esac
    [ -e "$candidate" ] && return 0
  done
  return 1
}

if have_libclang; then
  exit 0
fi

echo "setup: libclang not found; installing libclang-dev (needed to build RocksDB's bindings)" >&2
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup: no apt-get here; install libclang (clang's shared library) and set LIBCLANG_PATH" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "setup: need root (or sudo) to run: apt-get install -y libclang-dev" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends libclang-dev >/dev/null
have_libclang || { echo "setup: libclang-dev installed but libclang still not found" >&2; exit 1; }
echo "setup: libclang installed" >&2
