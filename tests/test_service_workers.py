"""``radioloc serve --workers N``: each worker listens on its own SO_REUSEPORT socket (so connections spread over
them), a killed worker is replaced, SIGTERM stops them all, and a taken port is a one-line error."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _listening_inodes(port: int) -> set[str]:
    """Inodes of the TCP sockets listening on ``port`` (state 0A in /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":
            inodes.add(fields[9])
    return inodes


def _holders(inodes: set[str]) -> set[int]:
    """PIDs of the processes that hold any of these sockets."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (entry / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            pids.add(int(entry.name))
    return pids


def _wait(condition, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("timed out")


def _serve(home: Path, port: int, workers: int) -> subprocess.Popen:
    env = {**os.environ, "RADIOLOC_RUN_JOBS": "0"}
    command = [sys.executable, "-m", "radioloc.cli", "serve", "--home", str(home), "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_each_worker_listens_on_its_own_socket_and_is_replaced_when_killed(tmp_path):
    port = _free_port()
    server = _serve(tmp_path, port, 2)
    try:
        sockets = _wait(lambda: (s := _listening_inodes(port)) and len(s) == 2 and s)
        workers = _holders(sockets)
        assert len(workers) == 2 and server.pid not in workers  # two sockets, one per worker, none in the supervisor
        assert httpx.get(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=30).status_code == 200
        victim = min(workers)
        os.kill(victim, signal.SIGKILL)
        replaced = _wait(lambda: len(h := _holders(_listening_inodes(port))) == 2 and victim not in h and h)
        assert len(_listening_inodes(port)) == 2 and replaced != workers
        assert httpx.get(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=30).status_code == 200
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
        assert server.returncode == 143 and stderr.strip().startswith("error: interrupted (SIGTERM): the service stopped"), stderr
        assert _listening_inodes(port) == set()
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_taken_port_is_a_one_line_error(tmp_path, workers):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = _serve(tmp_path, taken.getsockname()[1], workers)
        _, stderr = server.communicate(timeout=120)
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert server.returncode == 2 and len(lines) == 1 and "--host/--port" in lines[0] and "in use" in lines[0], stderr


def test_connection_balance_closes_one_connection_of_a_fuller_worker_at_a_time(monkeypatch):
    import asyncio

    from radioloc.service import workers

    clock = [100.0]
    monkeypatch.setattr(workers.time, "monotonic", lambda: clock[0])
    held = [18]

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    counts = [0, 14]
    balance = workers.ConnectionBalance(app, 0, counts, lambda: held[0])

    def response_headers():
        sent = []

        async def send(message):
            sent.append(message)

        asyncio.run(balance({"type": "http"}, None, send))
        return dict(sent[0]["headers"])

    assert response_headers().get(b"connection") == b"close" and counts[0] == 18  # 18 against 14: one goes
    assert b"connection" not in response_headers()  # at most one per REBALANCE_EVERY_S
    clock[0] += 2 * workers.REBALANCE_EVERY_S
    held[0] = 17
    counts[1] = 15
    assert response_headers().get(b"connection") == b"close"  # 17 / 15: still two above the least loaded
    clock[0] += 2 * workers.REBALANCE_EVERY_S
    for mine, other in ((16, 16), (17, 16), (15, 17)):  # balanced, one over, or under: kept
        held[0], counts[1] = mine, other
        assert b"connection" not in response_headers()
        clock[0] += 2 * workers.REBALANCE_EVERY_S
    lifespan = []
    asyncio.run(workers.ConnectionBalance(lambda s, r, se: _record(lifespan, s), 0, counts, lambda: 99)({"type": "lifespan"}, None, None))
    assert lifespan == ["lifespan"]  # other scopes pass through untouched


async def _record(log, scope):
    log.append(scope["type"])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_single_worker_service_stops_on_a_signal_with_one_line(tmp_path, sig):
    port = _free_port()
    server = _serve(tmp_path, port, 1)
    try:
        _wait(lambda: httpx.get(f"http://127.0.0.1:{port}/__lbheartbeat__", timeout=5).status_code == 200 if _listening_inodes(port) else False)
        server.send_signal(sig)
        _, stderr = server.communicate(timeout=60)
        lines = stderr.strip().splitlines()
        assert server.returncode == 128 + sig and lines == [
            f"error: interrupted ({signal.Signals(sig).name}): the service stopped " + lines[0].split("stopped ", 1)[1]
        ], stderr
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
