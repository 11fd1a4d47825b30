"""Several uvicorn workers on one port, each with its own listening socket (``SO_REUSEPORT``).

uvicorn's ``--workers`` binds one socket in the parent and shares it: every worker accepts from the same queue,
and the kernel wakes the most recently waiting one first, so a burst of keep-alive connections (a load balancer's
pool, or 32 phones' clients) mostly lands on one worker while the others idle (uvicorn PR #2472, gunicorn PR
#2938). Here each worker binds its own socket into a ``SO_REUSEPORT`` group, and Linux spreads new connections
over the group by their address hash. The supervisor restarts a worker that dies and stops them all on SIGINT or
SIGTERM; a kill -9 of the process group stops everything at once (nothing is kept in the workers: state is in
the database and the deployment folders).

A hash spreads connections evenly only on average: 32 keep-alive clients land 18/14 or 22/10 on two workers
about as often as 16/16, and the clients of the fuller worker wait longer (p99 46-56 ms against 36-45 ms
balanced, measured with benchmarks/service_load.py). So each worker publishes how many connections it holds in
a shared array, and a worker holding two or more above the least loaded one answers one request now and then
with ``Connection: close`` (:class:`ConnectionBalance`): the client reconnects, and the hash places it again.
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time
from collections.abc import Sequence

from radioloc.errors import RadiolocError

RESTART_PAUSE_S = 1.0  # between restarts of a worker that keeps dying, so a broken start does not spin
REBALANCE_EVERY_S = 0.05  # at most one connection closed per worker in this time: moves settle before the next


class ConnectionBalance:
    """Plain ASGI middleware of worker ``index``: publishes the worker's open connections in ``counts`` (shared by
    the workers) and, when it holds two or more than the least loaded worker and more than its share, closes one
    keep-alive connection after its response (``Connection: close``) at most every :data:`REBALANCE_EVERY_S`."""

    def __init__(self, app, index: int, counts: Sequence[int], open_connections):
        self.app = app
        self.index = index
        self.counts = counts
        self.open_connections = open_connections  # () -> this worker's open connections
        self.last_close = 0.0

    def should_close(self) -> bool:
        mine = self.open_connections()
        self.counts[self.index] = mine
        loads = list(self.counts)
        share = -(-sum(loads) // len(loads))
        now = time.monotonic()
        if mine > share and mine - min(loads) >= 2 and now - self.last_close >= REBALANCE_EVERY_S:
            self.last_close = now
            return True
        return False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.should_close():
            return await self.app(scope, receive, send)

        async def send_closing(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        return await self.app(scope, receive, send_closing)


def listening_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def check_address(host: str, port: int, workers: int) -> None:
    """Fail before starting, with the options named, when the address cannot be listened on."""
    if not host.strip():
        raise RadiolocError("--host: empty (an empty host listens on every interface: give 127.0.0.1, or 0.0.0.0 to mean every interface)")
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise RadiolocError("--workers: more than one worker needs SO_REUSEPORT (Linux); run one worker per port behind a load balancer")
    try:
        listening_socket(host, port, workers > 1).close()
    except OSError as exc:
        raise RadiolocError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def _worker(host: str, port: int, log_level: str, index: int, counts) -> None:
    import uvicorn

    from radioloc.service.app import app_from_env

    server = None
    balanced = ConnectionBalance(app_from_env(), index, counts, lambda: len(server.server_state.connections))
    server = uvicorn.Server(uvicorn.Config(balanced, host=host, port=port, log_level=log_level))
    server.run(sockets=[listening_socket(host, port, reuse_port=True)])


def run_workers(host: str, port: int, workers: int, log_level: str = "warning") -> int | None:
    """Serve :func:`radioloc.service.app.app_from_env` with ``workers`` processes until SIGINT or SIGTERM (the caller checked the address with
    :func:`check_address`); the signal it stopped on."""
    spawn = multiprocessing.get_context("spawn")
    stopping: int | None = None
    counts = spawn.Array("i", workers, lock=False)  # open connections per worker (ConnectionBalance)

    def start(index: int):
        counts[index] = 0
        process = spawn.Process(target=_worker, args=(host, port, log_level, index, counts), daemon=True)
        process.start()
        return process

    def stop(signum, _frame):
        nonlocal stopping
        stopping = signum

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = []
    try:
        processes = [start(n) for n in range(workers)]
        while stopping is None:
            time.sleep(0.2)
            for n, process in enumerate(processes):
                if not process.is_alive() and stopping is None:
                    time.sleep(RESTART_PAUSE_S)
                    processes[n] = start(n)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
        for s, handler in previous.items():
            signal.signal(s, handler)
    return stopping
