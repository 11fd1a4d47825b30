"""Milliseconds per 256 x 256 DPM radio map on one core, amortized over the 80 transmitters of a city map.

Usage: python benchmarks/dpm_speed.py [--maps 5] [--json benchmarks/results/dpm_speed.json]
Goal (issue 2): at most 50 ms per map; never above 200 ms.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from radioloc.city import generate_city
from radioloc.datasets.protocol import ProtocolConfig, sample_candidates
from radioloc.propagation import DominantPathSimulator, db_to_gray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/dpm_speed.json"))
    args = parser.parse_args()

    DominantPathSimulator(np.zeros((8, 8), np.uint8)).simulate((0, 0))  # compile outside the timing
    rows = []
    for k in range(args.maps):
        city = generate_city(args.seed + k)
        rng = np.random.default_rng(k)
        txs = sample_candidates(city.buildings == 0, rng, ProtocolConfig(), f"map {k}")
        started = time.perf_counter()
        simulator = DominantPathSimulator(city.buildings)  # per-map work (corner detection) is included
        for tx in txs:
            db_to_gray(simulator.simulate(tuple(tx)).pathloss_db)
        ms = (time.perf_counter() - started) * 1000 / len(txs)
        rows.append({"map_seed": args.seed + k, "style": city.style, "coverage": round(city.coverage, 3), "ms_per_map": round(ms, 2)})
        print(f"map {k}: {city.style:8s} coverage {city.coverage:5.1%}  {ms:6.1f} ms per radio map")
    values = [r["ms_per_map"] for r in rows]
    result = {
        "benchmark": "dpm_speed",
        "ms_per_map_mean": round(float(np.mean(values)), 2),
        "ms_per_map_max": round(float(np.max(values)), 2),
        "goal_ms": 50,
        "limit_ms": 200,
        "maps": rows,
    }
    print(f"mean {result['ms_per_map_mean']} ms per 256 x 256 map (max {result['ms_per_map_max']}); goal <= 50 ms, limit 200 ms")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
