"""Worker processes that die with their parent: a ``kill -9`` of a radioloc command must not leave its pool
workers finishing a map and then waiting forever for a parent that is gone."""

from __future__ import annotations

import ctypes
import os
import signal

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def die_with_parent(parent_pid: int) -> None:
    """Pool initializer: ask the kernel for SIGKILL when the parent exits (Linux), and leave now if it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the check below still covers a parent gone at start
        pass
    if os.getppid() != parent_pid:
        os._exit(1)


def pool_options() -> dict:
    """``ProcessPoolExecutor`` keyword arguments for workers that die with this process."""
    return {"initializer": die_with_parent, "initargs": (os.getpid(),)}
