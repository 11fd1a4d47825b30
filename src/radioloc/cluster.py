"""Independent tasks (one map, one BS) on Dask distributed, with the single machine as the embedded default.

- ``ClusterConfig(workers=N)``: a local cluster of ``N`` worker processes (one thread each; numba and torch get
  ``cores / N`` threads each), started for the job and closed after it. ``N = 1`` runs the tasks in this process,
  with no cluster at all.
- ``ClusterConfig(scheduler="tcp://HOST:PORT")``: an existing cluster (``dask scheduler`` and ``dask worker`` on
  hosts that share the file system the job writes to, with radioloc installed).

Tasks are submitted in order and their results handed back in task order, so whatever a job folds from them
(statistics, progress records) is the same for any number of workers. Each task writes its own files
atomically and a job counts a unit as done only by its record, so a task lost with its worker leaves nothing
half-written: the scheduler runs it again on another worker (Dask's ``allowed-failures``, 3 by default), and a
job killed outright resumes from the records on disk. Progress is the cluster's: a rich bar advanced as the
futures complete; the address of the Dask dashboard is printed when a cluster is used.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import uuid
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from radioloc.errors import RadiolocError

# tcp only: tls:// needs certificates radioloc does not take, inproc:// names a scheduler inside this very process
SCHEDULER_ADDRESS = re.compile(r"^tcp://(\[[0-9A-Fa-f:]+\]|[^\s/:\[\]]+):[0-9]{1,5}$")
CONNECT_TIMEOUT_S = 10


@dataclass(frozen=True)
class ClusterConfig:
    workers: int = 1  # local worker processes (ignored with ``scheduler``)
    scheduler: str | None = None  # address of an existing Dask scheduler

    def __post_init__(self):
        if not isinstance(self.workers, int) or self.workers < 1:
            raise RadiolocError(f"--workers must be at least 1, got {self.workers}")
        if self.scheduler is not None and not SCHEDULER_ADDRESS.match(self.scheduler):
            raise RadiolocError(f"--scheduler {self.scheduler!r}: expected a Dask scheduler address such as tcp://HOST:8786")

    @staticmethod
    def local(workers: int | None) -> ClusterConfig:
        """``workers`` local processes; None = one per core."""
        return ClusterConfig(workers=workers or os.cpu_count() or 1)

    def at_most(self, tasks: int) -> ClusterConfig:
        """The same cluster with no more local workers than there are tasks (an existing one is what it is)."""
        return ClusterConfig(workers=max(1, min(self.workers, tasks)), scheduler=self.scheduler)

    @property
    def distributed(self) -> bool:
        return self.scheduler is not None or self.workers > 1

    def describe(self) -> str:
        return f"Dask scheduler {self.scheduler}" if self.scheduler else f"{self.workers} local worker{'s' if self.workers > 1 else ''}"


def worker_environment(workers: int) -> dict[str, str]:
    """Thread counts of a local worker's numba, OpenMP and MKL kernels: the host's cores shared among its workers."""
    threads = str(max(1, (os.cpu_count() or 1) // workers))
    return {"NUMBA_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def dask_setup(worker: object) -> None:
    """Run by each local worker process as it starts (Dask's ``preload``). Ctrl-C in a terminal reaches the whole
    process group; the command that owns the workers handles it (one line, exit 130) and closes them, so a worker
    ignores it instead of printing a traceback of its own. A worker's own log is quiet below errors, as
    ``silence_logs`` makes the command's (a worker killed with its group would log its closed connection)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed").setLevel(logging.ERROR)


@contextmanager
def dask_client(config: ClusterConfig, console: Console | None = None, quiet: bool = False) -> Iterator[Any]:
    """A ``distributed.Client`` on the cluster ``config`` names (None when it names this process alone)."""
    if not config.distributed:
        yield None
        return
    from distributed import Client, LocalCluster

    cluster = None
    try:
        if config.scheduler is not None:
            client = Client(config.scheduler, timeout=f"{CONNECT_TIMEOUT_S}s")
        else:
            # one thread per worker process: the tasks hold the GIL in Python between their numba/torch kernels
            cluster = LocalCluster(
                n_workers=config.workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0",
                silence_logs=logging.ERROR, env=worker_environment(config.workers), preload=[__name__],
            )  # fmt: skip
            client = Client(cluster)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise RadiolocError(f"--scheduler {config.scheduler}: cannot reach the Dask scheduler ({str(exc).splitlines()[0][:120]})") from None
    # a lost scheduler is reported by run_tasks in one line; the client's own log of it would be a second one
    client_log = logging.getLogger("distributed.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        if not quiet:
            (console or Console(stderr=True)).print(f"Dask: {config.describe()}, dashboard {client.dashboard_link}")
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
        client_log.setLevel(level)


def run_tasks(
    function: Callable,
    tasks: Sequence[tuple],
    config: ClusterConfig,
    description: str,
    quiet: bool = False,
    on_result: Callable[[int, Any], None] | None = None,
    total: int | None = None,
    completed: int = 0,
    console: Console | None = None,
) -> list:
    """``[function(*task) for task in tasks]`` on the cluster, with a progress bar (``total`` units, ``completed``
    of them done before); ``on_result(index, result)`` is called as each task finishes, in completion order.
    A task's error is raised here (a :class:`RadiolocError` as its own one line); a task whose workers kept
    dying is a one-line error naming it."""
    results: list = [None] * len(tasks)
    columns = (TextColumn(f"[bold]{description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with dask_client(config.at_most(len(tasks)), console, quiet) as client, Progress(*columns, disable=quiet, console=console) as progress:
        bar = progress.add_task(description, total=total if total is not None else len(tasks), completed=completed)
        if client is None:
            for index, task in enumerate(tasks):
                results[index] = function(*task)
                if on_result is not None:
                    on_result(index, results[index])
                progress.advance(bar)
            return results
        from distributed import as_completed
        from distributed.scheduler import KilledWorker

        run = uuid.uuid4().hex[:12]  # keys unique on a scheduler that other jobs share
        futures = [client.submit(function, *task, pure=False, key=f"{description}-{run}-{index}") for index, task in enumerate(tasks)]
        position = {future.key: index for index, future in enumerate(futures)}
        try:
            for future in as_completed(futures):
                index = position[future.key]
                try:
                    results[index] = future.result()
                except KilledWorker:
                    raise RadiolocError(f"{description}: task {index} ({tasks[index][1:2]}) lost its worker too many times") from None
                except CancelledError:  # the client lost its scheduler: what finished is on disk
                    raise RadiolocError(
                        f"{description}: the Dask scheduler {config.scheduler or '(local)'} went away; run the command again to resume"
                    ) from None
                if on_result is not None:
                    on_result(index, results[index])
                progress.advance(bar)
        finally:
            client.cancel([f for f in futures if not f.done()])
    return results
