"""Training on several processes: ``torchrun --nproc-per-node N -m radioloc train ...`` (or ``--nproc N``, which
starts torchrun itself), with DistributedDataParallel over gloo on CPUs and NCCL on GPUs.

The global batch is the configured ``batch_size``: every process draws the same global batch from the same
random stream (the seed, as in a one-process run), keeps its own contiguous share of it and averages its loss
over that share; DDP averages the gradients over the processes, so a step sees the gradient of the whole batch,
as in a one-process run. The configuration file is the one-process run's (the number of processes is not part
of it). Process 0 alone validates and writes ``train_config.json``, ``last.pt``, ``best.pt`` and the summary;
every process resumes from ``last.pt``.
"""

from __future__ import annotations

import atexit
import os
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from radioloc.errors import RadiolocError


@dataclass(frozen=True)
class Distributed:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    def shard(self, index: np.ndarray) -> np.ndarray:
        """This process's contiguous share of a global batch (the sizes must divide)."""
        if not self.active:
            return index
        share = len(index) // self.world_size
        return index[self.rank * share : (self.rank + 1) * share]

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world_size:
            raise RadiolocError(
                f"--batch-size {batch_size} must be a multiple of the {self.world_size} training processes (the global batch is split among them)"
            )

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The module to run forward and backward through: DDP around ``model`` when there are several processes."""
        if not self.active:
            return model
        device_ids = [model_device(model).index] if model_device(model).type == "cuda" else None
        return DistributedDataParallel(model, device_ids=device_ids)

    def mean(self, value: float) -> float:
        """The mean of a number over the processes (a logged loss)."""
        if not self.active:
            return value
        tensor = torch.tensor([value], dtype=torch.float64)
        dist.all_reduce(tensor)
        return float(tensor.item()) / self.world_size

    def barrier(self) -> None:
        if self.active:
            dist.barrier()


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


_CURRENT: Distributed | None = None


def current() -> Distributed:
    """This process's place in the training job, joining the process group on first use when torchrun started
    it (``WORLD_SIZE`` > 1 in the environment); a single process otherwise."""
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        _CURRENT = Distributed()
        return _CURRENT
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo")
    atexit.register(dist.destroy_process_group)
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
    if not cuda:  # the processes of one host share its cores
        threads = max(1, (os.cpu_count() or 1) // local_world)
        torch.set_num_threads(threads)
        import numba

        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    _CURRENT = Distributed(dist.get_rank(), dist.get_world_size(), local_rank, local_world)
    return _CURRENT


def device_for(requested: str | None) -> str | None:
    """Under torchrun on GPUs, each process trains on its own device (``cuda:LOCAL_RANK``)."""
    place = current()
    if place.active and torch.cuda.is_available() and (requested is None or requested == "cuda"):
        return f"cuda:{place.local_rank}"
    return requested


def relaunch_under_torchrun(nproc: int, argv: list[str]) -> int:
    """``--nproc N``: run the same command under torchrun with N processes on this host (without ``--nproc``);
    returns torchrun's exit status."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", "-m", "radioloc", *argv]
    return subprocess.call(command)


def strip_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option VALUE`` / ``option=VALUE``."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == option:
            skip = True
        elif not arg.startswith(option + "="):
            out.append(arg)
    return out
