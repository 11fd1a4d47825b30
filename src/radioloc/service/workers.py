"""Several uvicorn workers on one port, each with its own listening socket (``SO_REUSEPORT``).

uvicorn's ``--workers`` binds one socket in the parent and shares it: every worker accepts from the same queue,
and the kernel wakes the most recently waiting one first, so a burst of keep-alive connections (a load balancer's
pool, or 32 phones' clients) mostly lands on one worker while the others idle (uvicorn PR #2472, gunicorn PR
#2938). Here each worker binds its own socket into a ``SO_REUSEPORT`` group, and Linux spreads new connections
over the group by their address hash. The supervisor restarts a worker that dies and stops them all on SIGINT or
SIGTERM; a kill -9 of the process group stops everything at once (nothing is kept in the workers: state is in
the database and the deployment folders).
"""

from __future__ import annotations

import multiprocessing
import signal
import socket
import time

from radioloc.errors import RadiolocError

APP = "radioloc.service.app:app_from_env"
RESTART_PAUSE_S = 1.0  # between restarts of a worker that keeps dying, so a broken start does not spin


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
    if workers > 1 and not hasattr(socket, "SO_REUSEPORT"):
        raise RadiolocError("--workers: more than one worker needs SO_REUSEPORT (Linux); run one worker per port behind a load balancer")
    try:
        listening_socket(host, port, workers > 1).close()
    except OSError as exc:
        raise RadiolocError(f"--host/--port: cannot listen on {host}:{port} ({exc.strerror or exc})") from None


def _worker(host: str, port: int, log_level: str) -> None:
    import uvicorn

    config = uvicorn.Config(APP, factory=True, host=host, port=port, log_level=log_level)
    uvicorn.Server(config).run(sockets=[listening_socket(host, port, reuse_port=True)])


def run_workers(host: str, port: int, workers: int, log_level: str = "warning") -> None:
    """Serve ``APP`` with ``workers`` processes until SIGINT or SIGTERM (the caller checked the address with
    :func:`check_address`)."""
    spawn = multiprocessing.get_context("spawn")
    stopping = False

    def start():
        process = spawn.Process(target=_worker, args=(host, port, log_level), daemon=True)
        process.start()
        return process

    def stop(_signum, _frame):
        nonlocal stopping
        stopping = True

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    processes = []
    try:
        processes = [start() for _ in range(workers)]
        while not stopping:
            time.sleep(0.2)
            for n, process in enumerate(processes):
                if not process.is_alive() and not stopping:
                    time.sleep(RESTART_PAUSE_S)
                    processes[n] = start()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
        for s, handler in previous.items():
            signal.signal(s, handler)
