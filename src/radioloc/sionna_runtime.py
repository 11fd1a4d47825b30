"""Sionna RT on Dr.Jit's LLVM (CPU) backend: find libLLVM 19 and import Sionna once, or fail with one line that
says what to install. Shared by the stages that need Sionna (city imports of its bundled scenes, ray tracing)."""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

from radioloc.errors import RadiolocError

LLVM_HINT = "install Debian's libllvm19 (apt-get install libllvm19) or point DRJIT_LIBLLVM_PATH at a libLLVM 19 .so"


def find_libllvm() -> str | None:
    """The libLLVM Dr.Jit should use: ``DRJIT_LIBLLVM_PATH`` when set, else a system libLLVM 19."""
    if os.environ.get("DRJIT_LIBLLVM_PATH"):
        return os.environ["DRJIT_LIBLLVM_PATH"]
    for pattern in ("/usr/lib/*-linux-gnu/libLLVM-19.so*", "/usr/lib/llvm-19/lib/libLLVM*.so*", "/usr/lib/*-linux-gnu/libLLVM.so.19*"):
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def llvm_major_version(path: str) -> int | None:
    """The LLVM major version a library path names (libLLVM-19.so, libLLVM.so.19.1, llvm-19/lib/libLLVM.so), or None.

    Only the file's own names and an ``llvm-N`` directory count: a "19" elsewhere in the path (a pytest-19 temporary
    folder) says nothing about the library."""
    for candidate in (Path(path).resolve(), Path(path)):  # the real file's name first: llvm-19/lib/libLLVM.so.1 links to it
        match = re.search(r"libLLVM(?:-(\d+)|\.so\.(\d+))", candidate.name)
        if match:
            return int(match.group(1) or match.group(2))
        for parent in candidate.parents:
            match = re.fullmatch(r"llvm-(\d+)", parent.name)
            if match:
                return int(match.group(1))
    return None


_SIONNA = None


def sionna_rt():
    """Import Sionna RT on Dr.Jit's LLVM (CPU) backend, or fail with one line that says what to install."""
    global _SIONNA
    if _SIONNA is not None:
        return _SIONNA
    path = find_libllvm()
    if path is None:
        raise RadiolocError(f"Sionna RT needs libLLVM 19 and none was found: {LLVM_HINT}")
    if not Path(path).exists():
        raise RadiolocError(f"DRJIT_LIBLLVM_PATH={path}: file not found; {LLVM_HINT}")
    if llvm_major_version(path) != 19:
        raise RadiolocError(f"{path}: Sionna RT's CPU backend needs libLLVM 19 (older ones abort in its kernels); {LLVM_HINT}")
    os.environ["DRJIT_LIBLLVM_PATH"] = path
    try:
        import sionna.rt as rt
    except ImportError as exc:
        raise RadiolocError(f"Sionna RT is not installed: pip install sionna-rt==2.2.0 ({exc})") from None
    except Exception as exc:  # Dr.Jit raises RuntimeError when it cannot use the library
        raise RadiolocError(f"Sionna RT could not start on {path} ({str(exc).splitlines()[0]}); {LLVM_HINT}") from None
    _SIONNA = rt
    return rt
