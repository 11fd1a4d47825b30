#!/usr/bin/env bash
# System libraries radioloc needs beyond PyPI: Sionna RT's CPU backend (Dr.Jit on LLVM) needs libLLVM 19,
# which Debian bookworm ships as libllvm19. Installs it when it is missing (as root, or with sudo).
set -euo pipefail
if ls /usr/lib/*-linux-gnu/libLLVM-19.so* >/dev/null 2>&1 || [ -n "${DRJIT_LIBLLVM_PATH:-}" ]; then
    exit 0
fi
if ! command -v apt-get >/dev/null; then
    echo "radioloc: ray tracing needs libLLVM 19; install it with your package manager (Debian: libllvm19) or set DRJIT_LIBLLVM_PATH" >&2
    exit 0
fi
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q libllvm19
