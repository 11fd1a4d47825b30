"""Fuzzing goal: schemathesis over the service's whole OpenAPI document, at least 1,000 generated requests, no
response of 500 or above, every 4xx in Google's error envelope.

Usage: python benchmarks/service_fuzz.py [--home DIR] [--examples 40] [--json benchmarks/results/service_fuzz.json]
The service runs in-process (ASGI) on a copy of --home's database settings: its deployments (the demo's, built
by `radioloc serve --demo --home DIR` or benchmarks/service_load.py) are linked into a scratch home, so fuzzed
DELETEs and uploads touch nothing of DIR.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from radioloc.deploy.deployment import DeploymentStore
from radioloc.io import atomic_write_json
from radioloc.service.app import Settings, create_app
from radioloc.service.fuzzing import fuzz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("out/service-bench"))
    parser.add_argument("--examples", type=int, default=40, help="generated cases per operation and mode (positive, negative)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/service_fuzz.json"))
    args = parser.parse_args()
    ids = DeploymentStore(args.home).ids()
    if not ids:
        raise SystemExit(f"{args.home}: no deployment (run `radioloc serve --demo --home {args.home}` once)")
    with tempfile.TemporaryDirectory() as scratch:
        home = Path(scratch)
        (home / "deployments").mkdir()
        for deployment_id in ids:
            (home / "deployments" / deployment_id).symlink_to((args.home / "deployments" / deployment_id).resolve())
        app = create_app(Settings(home=home, run_jobs=False))
        db = app.state.radioloc.db
        _, admin = db.create_key("fuzz admin", "admin")
        _, client = db.create_key("fuzz client", "client", ids[0])
        started = time.perf_counter()
        report = fuzz(app, [admin, client, None, "rl_not-a-key"], args.examples)
    result = {**report.to_dict(), "seconds": round(time.perf_counter() - started, 1), "deployments": ids,
              "goals": {"requests>=1000": report.requests >= 1000, "no_5xx": not any(k >= 500 for k in report.by_status), "every_4xx_enveloped": not report.failures}}  # fmt: skip
    print(
        f"{report.requests} requests over {len(report.by_operation)} operations in {result['seconds']} s; statuses {dict(sorted(report.by_status.items()))}; problems: {len(report.failures)}"
    )
    for failure in report.failures[:10]:
        print("  ", failure)
    atomic_write_json(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
