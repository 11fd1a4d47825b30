"""Accuracy, radii and speed of a deployment's localizers on simulated phones its calibrations never saw.

Usage: python benchmarks/deployment_accuracy.py [--home DIR] [--deployment demo] [--phones 5000] [--seed 11]
       [--sim DPM|RadioUNet|IRT2] [--truth DPM|DPMcars|IRT2|IRT2cars] [--city scene:florence]
       [--json benchmarks/results/deployment_accuracy.json]

The phones are a fresh survey of the deployment's simulated truth (another seed than the build's survey, whose
phones fitted bayes and the radii), the same phones for every localizer. Without the deployment in --home the
demo deployment (`radioloc serve --demo`'s) is built first (about 5 min on 2 cores). ``--sim`` / ``--truth``
other than the demo's (DPM maps, DPMcars truth) build the same city and BSs as ``demo-SIM-TRUTH`` (e.g.
``--sim RadioUNet``: RadioUNet's maps near each BS; ``--truth IRT2cars``: ray-traced reports near each BS);
``--city scene:NAME`` builds it on a bundled real city instead, whose survey calibrates the radii there.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from radioloc.datasets.localization import MAX_BS
from radioloc.deploy.build import build_deployment
from radioloc.deploy.deployment import DeploymentStore
from radioloc.deploy.serving import DeploymentLocator
from radioloc.io import atomic_write_json


def stats(errors: np.ndarray, r68: np.ndarray, r95: np.ndarray) -> dict:
    return {"phones": int(len(errors)), "mae_m": round(float(errors.mean()), 2), "median_m": round(float(np.median(errors)), 2),
            "p90_m": round(float(np.percentile(errors, 90)), 2), "coverage_68": round(float(np.mean(errors <= r68)), 3),
            "coverage_95": round(float(np.mean(errors <= r95)), 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=Path("out/service-bench"))
    parser.add_argument("--deployment", default="demo")
    parser.add_argument("--phones", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--sim", default=None, help="maps of a variant of the demo (default: the demo's, DPM)")
    parser.add_argument("--truth", default=None, help="truth of a variant of the demo (default: the demo's, DPMcars)")
    parser.add_argument("--city", default=None, help="city of a variant of the demo, e.g. scene:florence (a real street layout; default: the demo's)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/deployment_accuracy.json"))
    args = parser.parse_args()
    store = DeploymentStore(args.home)
    from radioloc.service.demo import DEMO

    spec = DEMO
    if (args.sim or DEMO.maps, args.truth or DEMO.truth, args.city or DEMO.city) != (DEMO.maps, DEMO.truth, DEMO.city):
        sim, truth, city = args.sim or DEMO.maps, args.truth or DEMO.truth, args.city or DEMO.city
        label = f"demo-{sim}-{truth}" + (f"-{city.split(':')[-1].replace('_', '-')}" if args.city else "")
        spec = dataclasses.replace(DEMO, id=label.lower(), name=f"{DEMO.name}, {sim} maps, {truth} truth, city {city}", maps=sim, truth=truth, city=city)
        args.deployment = spec.id
    if args.deployment not in store.ids():
        if args.deployment != spec.id:
            raise SystemExit(f"{args.home}: no deployment {args.deployment!r}")
        build_deployment(store, spec, workers=2)
    deployment = store.load(args.deployment)
    if args.seed == deployment.config.provenance.get("spec", {}).get("seed"):
        raise SystemExit(f"--seed {args.seed} is the build's survey seed: choose another, so the phones are unseen")
    positions, ids, values = deployment.survey(args.phones, args.seed)
    cells = np.where(ids >= 0, deployment.cell_ids[np.maximum(ids, 0)], -1)
    n_bs = (ids >= 0).sum(axis=1)
    result = {"deployment": deployment.id, "area_m": list(deployment.config.shape), "base_stations": len(deployment.cell_ids),
              "truth": deployment.config.truth, "maps": deployment.config.maps, "seed": args.seed, "localizers": {}}  # fmt: skip
    for name in deployment.config.localizers:
        locator = DeploymentLocator(deployment, name)
        locator.locate(cells[:8], values[:8])  # load and compile before timing
        started = time.perf_counter()
        answer = locator.locate(cells, values)
        batched = (time.perf_counter() - started) / len(cells)
        started = time.perf_counter()
        for i in range(50):
            locator.locate(cells[i : i + 1], values[i : i + 1])
        single = (time.perf_counter() - started) / 50
        errors = np.hypot(*(answer.positions - positions).T)
        row = {"all": stats(errors, answer.radius_68, answer.radius_95), "ms_per_query_batched": round(1000 * batched, 3),
               "queries_per_s_batched": round(1 / batched, 1), "ms_single_query": round(1000 * single, 2)}  # fmt: skip
        for k in range(1, MAX_BS + 1):
            mask = n_bs == k
            if mask.any():
                row[f"{k}_bs"] = stats(errors[mask], answer.radius_68[mask], answer.radius_95[mask])
        result["localizers"][name] = row
        a = row["all"]
        print(f"{name}: {a['phones']} phones, MAE {a['mae_m']} m, median {a['median_m']} m, p90 {a['p90_m']} m, coverage 68/95 "
              f"{a['coverage_68']}/{a['coverage_95']}; 5 BSs: MAE {row['5_bs']['mae_m']} m, coverage {row['5_bs']['coverage_68']}/{row['5_bs']['coverage_95']}; "
              f"{row['queries_per_s_batched']} queries/s batched, {row['ms_single_query']} ms single")  # fmt: skip
    atomic_write_json(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
