#!/usr/bin/env bash
# System packages radioloc needs beyond PyPI, installed when missing (as root, or with sudo):
# - libllvm19: Sionna RT's CPU backend (Dr.Jit on LLVM) needs libLLVM 19 (Debian bookworm: libllvm19);
# - chromium: the web page's test drives Debian's headless Chromium (Playwright's own download does not work here).
# PostgreSQL for the service tests is installed and started by scripts/test-postgres.sh.
set -euo pipefail
missing=()
if ! ls /usr/lib/*-linux-gnu/libLLVM-19.so* >/dev/null 2>&1 && [ -z "${DRJIT_LIBLLVM_PATH:-}" ]; then
    missing+=(libllvm19)
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "radioloc: install ${missing[*]} with your package manager (ray tracing needs libLLVM 19, the web page test Chromium)" >&2
    exit 0
fi
SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${missing[@]}"
