"""Loaded deployments and micro-batching: concurrent single queries become one batch per deployment and localizer.

Each worker process answers on one executor thread (the localizers' numba and torch kernels already use the
cores). Requests for the same (deployment, localizer) queue up while a batch runs and go together as the next
batch, so a lone request waits for nothing and a burst is answered at batch throughput.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numba as nb
import numpy as np

from radioloc.datasets.localization import MAX_BS
from radioloc.deploy.deployment import Deployment, DeploymentStore
from radioloc.deploy.serving import DeploymentLocator, Located
from radioloc.errors import RadiolocError
from radioloc.service.environment import service_environment

MAX_MICRO_BATCH = 1024
LARGE_BATCH = 256  # reports in one batch request from which its kernels use every core


def _use_threads(count: int) -> None:
    """Kernel threads of the calling thread: numba's (per thread) and torch's."""
    import torch

    nb.set_num_threads(count)
    if torch.get_num_threads() != count:
        torch.set_num_threads(count)


@dataclass
class _Queue:
    pending: list = field(default_factory=list)  # (cells (k,), pathloss (k,), future)
    running: bool = False


class Engine:
    def __init__(self, store: DeploymentStore):
        self.store = store
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="radioloc-locate")
        # kernel threads: the worker's share of the cores for micro-batches, all of them for large batches
        self.all_threads = nb.config.NUMBA_NUM_THREADS
        self.threads = min(self.all_threads, service_environment().RADIOLOC_WORKER_THREADS or self.all_threads)
        # one loaded deployment per id (its cached overview shared by its localizers), and its locators by name
        self._deployments: dict[str, tuple[tuple, Deployment, dict[str, DeploymentLocator]]] = {}
        self._lock = threading.Lock()
        self._queues: dict[tuple[str, str | None], _Queue] = {}

    def _stamp(self, deployment_id: str) -> tuple:
        info = os.stat(self.store.path(deployment_id) / "deployment.json")
        return info.st_ino, info.st_mtime_ns

    def locator(self, deployment_id: str, localizer: str | None) -> DeploymentLocator:
        """The deployment's locator (``None``: its default localizer), reloaded when the deployment was replaced."""
        try:
            stamp = self._stamp(deployment_id)
        except FileNotFoundError:
            raise RadiolocError(f"no deployment {deployment_id!r}") from None
        with self._lock:
            cached = self._deployments.get(deployment_id)
            if cached is None or cached[0] != stamp:
                cached = (stamp, self.store.load(deployment_id), {})
                self._deployments[deployment_id] = cached
            _, deployment, locators = cached
            name = localizer or deployment.config.localizers[0]
            if name not in locators:
                locators[name] = DeploymentLocator(deployment, name)
            return locators[name]

    def warm_up(self, deployment_ids: list[str]) -> None:
        """Load every deployment's locators and answer one report with each, so the first real request does not
        pay for loading arrays and compiled kernels (a worker starts answering warm)."""
        for deployment_id in deployment_ids:
            try:
                locator = self.locator(deployment_id, None)
                for name in locator.deployment.config.localizers:
                    self.executor.submit(self._warm_one, deployment_id, name).result()
            except (RadiolocError, OSError):
                continue  # a damaged deployment answers its own error on request

    def _warm_one(self, deployment_id: str, name: str) -> None:
        locator = self.locator(deployment_id, name)
        first = int(locator.deployment.cell_ids[0])
        locator.locate(np.array([[first]]), np.array([[-100.0]]))

    def forget(self, deployment_id: str) -> None:
        with self._lock:
            self._deployments.pop(deployment_id, None)

    # -- batches ------------------------------------------------------------------------------------------------
    def locate_batch(self, deployment_id: str, localizer: str | None, cells: list[list[int]], pathloss: list[list[float]],
                     all_cores: bool = False) -> tuple[DeploymentLocator, Located | None, np.ndarray]:  # fmt: skip
        """Answer many reports at once (runs on the caller's thread): (locator, answers of the reports with a
        known cell or None, bool mask of those reports). ``all_cores``: the kernels take every core (a large batch
        request); else the worker's share, so that workers answering single queries do not oversubscribe them."""
        _use_threads(self.all_threads if all_cores else self.threads)
        locator = self.locator(deployment_id, localizer)
        width = max(len(c) for c in cells)
        ids = np.full((len(cells), width), -1, dtype=np.int64)
        values = np.full((len(cells), width), np.nan)
        for n, (c, p) in enumerate(zip(cells, pathloss)):
            ids[n, : len(c)] = c
            values[n, : len(p)] = p
        known = ((locator.deployment.bs_index(ids) >= 0) & np.isfinite(values)).any(axis=1)
        if not known.any():
            return locator, None, known
        return locator, locator.locate(ids[known], values[known]), known

    async def locate_one(self, deployment_id: str, localizer: str | None, cells: list[int], pathloss: list[float]):
        """One report, micro-batched with the others that arrive meanwhile: (locator, Located row 0)."""
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        key = (deployment_id, localizer)
        queue = self._queues.setdefault(key, _Queue())
        queue.pending.append((cells, pathloss, future))
        if not queue.running:
            queue.running = True
            loop.create_task(self._drain(key, queue))
        return await future

    async def _drain(self, key, queue: _Queue) -> None:
        loop = asyncio.get_running_loop()
        try:
            while queue.pending:
                batch, queue.pending = queue.pending[:MAX_MICRO_BATCH], queue.pending[MAX_MICRO_BATCH:]
                try:
                    locator, located, known = await loop.run_in_executor(
                        self.executor, self.locate_batch, key[0], key[1], [b[0] for b in batch], [b[1] for b in batch]
                    )
                except Exception as exc:  # a bad deployment: every waiting request gets the error
                    for _, _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                    continue
                row = 0
                for (_, _, future), ok in zip(batch, known):
                    if future.done():
                        continue
                    if ok:
                        future.set_result((locator, _row(located, row)))
                        row += 1
                    else:
                        future.set_result((locator, None))
        finally:
            queue.running = False


def _row(located: Located, i: int) -> Located:
    return Located(located.positions[i : i + 1], located.radii[i : i + 1], located.lat[i : i + 1], located.lng[i : i + 1],
                   located.bs_used[i : i + 1], located.localizer, located.ms_per_query)  # fmt: skip


__all__ = ["Engine", "MAX_BS"]
