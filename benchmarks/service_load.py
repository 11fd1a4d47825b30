"""Service goals under load: /v1/geolocate latency and throughput with concurrent clients, batch locate throughput,
and a kill -9 of the server under load followed by a restart (nothing that got a 2xx is lost).

Usage: python benchmarks/service_load.py [--home DIR] [--workers N] [--clients 32] [--seconds 20]
       [--db URL] [--json benchmarks/results/service_load.json]

It starts `radioloc serve --demo` (building the demo deployment on first use) in its own process group, and loads
/v1/geolocate with wrk (`apt-get install wrk`) in its own process: one thread, one keep-alive connection per client,
every request a phone's reports drawn from the demo deployment's simulated truth (4,000 phones). Goals (issue 16): 32 clients, p99 <= 50 ms and >= 500
requests/s on /v1/geolocate; batch locate >= 1,000 queries/s; after kill -9 and restart every deployment and key
is there, and every key whose creation got a 201 works.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from radioloc.deploy.deployment import DeploymentStore
from radioloc.io import atomic_write_json

DEMO_KEY, ADMIN_KEY = "rl_bench-client-key-0123456789abcdef", "rl_bench-admin-key-0123456789abcdef"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(home: Path, port: int, workers: int, db: str | None) -> subprocess.Popen:
    env = {**os.environ, "RADIOLOC_DEMO_KEY": DEMO_KEY, "RADIOLOC_ADMIN_KEY": ADMIN_KEY}
    command = [sys.executable, "-m", "radioloc.cli", "serve", "--demo", "--home", str(home), "--port", str(port), "--workers", str(workers)]
    if db:
        command += ["--db", db]
    server = subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 3600  # the first start builds the demo deployment
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/__heartbeat__", timeout=1).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("server did not start")


def kill(server: subprocess.Popen) -> None:
    os.killpg(server.pid, signal.SIGKILL)
    server.wait()


def phone_reports(home: Path, count: int) -> list[list[dict]]:
    deployment = DeploymentStore(home).load("demo")
    _, ids, values = deployment.survey(count, seed=2026)
    return [[{"cellId": int(deployment.cell_ids[b]), "signalStrength": round(float(v) + float(deployment.tx_power_dbm[b]), 2)} for b, v in zip(row, vals) if b >= 0]
            for row, vals in zip(ids, values)]  # fmt: skip


WRK_SCRIPT = """
-- cycles through the phones' request bodies; prints the summary as one JSON line
local bodies = dofile(os.getenv("RADIOLOC_BODIES"))
local requests, n = {}, 0
function init(args)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", os.getenv("RADIOLOC_PATH"), {["Content-Type"] = "application/json"}, body)
  end
  n = math.random(#requests)
end
function request()
  n = n % #requests + 1
  return requests[n]
end
function done(summary, latency, _)
  io.write(string.format('{"requests": %d, "us": %d, "non_2xx": %d, "socket_errors": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d}\\n',
    summary.requests, summary.duration, summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max))
end
"""


def geolocate_load(url: str, reports: list, clients: int, seconds: float, folder: Path) -> dict:
    """wrk (C, one thread, ``clients`` keep-alive connections) against /v1/geolocate: the load generator costs the
    2 cores next to nothing, so the figures are the server's."""
    if shutil.which("wrk") is None:
        raise SystemExit("benchmarks/service_load.py: the load generator wrk is missing (apt-get install wrk)")
    folder.mkdir(parents=True, exist_ok=True)
    bodies = folder / "bodies.lua"
    bodies.write_text("return {\n" + ",\n".join("[[" + json.dumps({"cellTowers": r}) + "]]" for r in reports) + "\n}\n")
    script = folder / "geolocate.lua"
    script.write_text(WRK_SCRIPT)
    env = {**os.environ, "RADIOLOC_BODIES": str(bodies.resolve()), "RADIOLOC_PATH": f"/v1/geolocate?key={DEMO_KEY}"}
    for body in reports[:20]:  # warm-up: the first requests load the deployment and compile kernels in each worker
        httpx.post(f"{url}/v1/geolocate?key={DEMO_KEY}", json={"cellTowers": body}, timeout=60)
    command = ["wrk", "-t1", f"-c{clients}", f"-d{int(seconds)}s", "--timeout", "10s", "-s", str(script), url]
    completed = subprocess.run(command, env=env, capture_output=True, text=True)
    if completed.returncode != 0:
        raise SystemExit(f"wrk failed: {completed.stderr.strip() or completed.stdout.strip()}")
    summary = json.loads(completed.stdout.strip().splitlines()[-1])
    elapsed = summary["us"] / 1e6
    return {"clients": clients, "generator": "wrk -t1", "seconds": round(elapsed, 2), "requests": summary["requests"],
            "requests_per_s": round(summary["requests"] / elapsed, 1), "p50_ms": summary["p50_us"] / 1000, "p95_ms": summary["p95_us"] / 1000,
            "p99_ms": summary["p99_us"] / 1000, "max_ms": summary["max_us"] / 1000, "non_2xx": summary["non_2xx"], "socket_errors": summary["socket_errors"]}  # fmt: skip


def batch_throughput(url: str, home: Path, count: int) -> dict:
    deployment = DeploymentStore(home).load("demo")
    _, ids, values = deployment.survey(count, seed=7)
    reports = [
        {"cells": [int(deployment.cell_ids[b]) for b in row if b >= 0], "pathloss_db": [float(v) for v in vals if np.isfinite(v)]}
        for row, vals in zip(ids, values)
    ]
    httpx.post(f"{url}/v1/deployments/demo/locate?key={DEMO_KEY}", json={"reports": reports[:100]}, timeout=600)  # warm-up
    out = {}
    for localizer in deployment.config.localizers:
        started = time.perf_counter()
        response = httpx.post(f"{url}/v1/deployments/demo/locate?key={DEMO_KEY}", json={"reports": reports, "localizer": localizer}, timeout=600)
        elapsed = time.perf_counter() - started
        response.raise_for_status()
        out[localizer] = {"queries": count, "seconds": round(elapsed, 2), "queries_per_s": round(count / elapsed, 1)}
    return out


async def writes_under_load(url: str, reports: list, seconds: float) -> tuple[list[tuple[str, str]], list]:
    """Create keys (and geolocate meanwhile) until killed: the (name, key) of every 201, and the client tasks."""
    created = []

    async def writer():
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            n = 0
            while True:
                try:
                    response = await http.post(f"/v1/keys?key={ADMIN_KEY}", json={"name": f"restart-{n}", "role": "client", "deployment_id": "demo"})
                except httpx.HTTPError:
                    return
                if response.status_code == 201:
                    created.append((f"restart-{n}", response.json()["key"]))
                n += 1

    async def reader():
        async with httpx.AsyncClient(base_url=url, timeout=5) as http:
            i = 0
            while True:
                try:
                    await http.post(f"/v1/geolocate?key={DEMO_KEY}", json={"cellTowers": reports[i % len(reports)]})
                except httpx.HTTPError:
                    return
                i += 1

    tasks = [asyncio.create_task(writer()) for _ in range(4)] + [asyncio.create_task(reader()) for _ in range(8)]
    await asyncio.sleep(seconds)
    return created, tasks


def restart_check(home: Path, port: int, workers: int, db: str | None, reports: list) -> dict:
    server = start_server(home, port, workers, db)
    url = f"http://127.0.0.1:{port}"

    async def run():
        created, tasks = await writes_under_load(url, reports, 5.0)
        kill(server)  # kill -9 the whole process group under load
        await asyncio.gather(*tasks, return_exceptions=True)
        return created

    created = asyncio.run(run())
    restarted = start_server(home, port, workers, db)
    try:
        keys = httpx.get(f"{url}/v1/keys?key={ADMIN_KEY}", timeout=30).json()
        names = {k["name"] for k in keys}
        lost = [name for name, _ in created if name not in names]
        working = sum(httpx.get(f"{url}/v1/whoami?key={key}", timeout=30).status_code == 200 for _, key in created[-50:])
        deployments = [d["id"] for d in httpx.get(f"{url}/v1/deployments?key={ADMIN_KEY}", timeout=30).json()]
        answer = httpx.post(f"{url}/v1/geolocate?key={DEMO_KEY}", json={"cellTowers": reports[0]}, timeout=60).status_code
    finally:
        kill(restarted)
    return {"keys_created_with_201": len(created), "lost": len(lost), "checked_keys_working": working, "checked": min(50, len(created)),
            "deployments_after_restart": deployments, "geolocate_after_restart": answer}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("out/service-bench"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--db", default=None, help="database URL (default: SQLite in --home)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/service_load.json"))
    args = parser.parse_args()
    port = free_port()
    server = start_server(args.home, port, args.workers, args.db)
    url = f"http://127.0.0.1:{port}"
    try:
        reports = phone_reports(args.home, 4000)
        load = geolocate_load(url, reports, args.clients, args.seconds, args.home / "wrk")
        print(
            f"geolocate, {args.clients} clients, {args.workers} workers: {load['requests_per_s']} requests/s, p50 {load['p50_ms']} ms, p99 {load['p99_ms']} ms, {load['non_2xx']} not 2xx, {load['socket_errors']} socket errors"
        )
        batch = batch_throughput(url, args.home, args.batch)
        for name, row in batch.items():
            print(f"batch locate ({name}): {row['queries_per_s']} queries/s ({row['queries']} in {row['seconds']} s)")
    finally:
        kill(server)
    restart = restart_check(args.home, port, args.workers, args.db, reports)
    print(
        f"kill -9 under load: {restart['keys_created_with_201']} keys created with 201, {restart['lost']} lost; deployments after restart {restart['deployments_after_restart']}"
    )
    result = {"geolocate": load, "batch": batch, "restart": restart, "workers": args.workers, "db": args.db or "sqlite",
              "goals": {"p99_ms<=50": load["p99_ms"] <= 50, "all_2xx": load["non_2xx"] == 0 and load["socket_errors"] == 0, "requests_per_s>=500": load["requests_per_s"] >= 500,
                        "batch_queries_per_s>=1000": all(r["queries_per_s"] >= 1000 for r in batch.values()),
                        "nothing_lost": restart["lost"] == 0 and restart["checked_keys_working"] == restart["checked"]}}  # fmt: skip
    atomic_write_json(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
