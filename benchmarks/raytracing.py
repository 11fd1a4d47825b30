"""Ray tracing (Sionna RT): seconds per radio map, coverage and Monte-Carlo noise, per ray count and cell size.

Usage: python benchmarks/raytracing.py [--maps 3] [--tx 8] [--json benchmarks/results/raytracing.json]

Fresh procedural maps (seed 4242), transmitters drawn as dataset candidates are. For every setting: seconds per
ray-traced map including the scene build (once per map, shared by its transmitters) and the PNG write; the share
of outdoor cells that any ray reached, and above the noise floor; the Monte-Carlo noise, from two runs with
different seeds (RMS dB difference / sqrt 2 over pixels above the floor in both). Goal (issue 5): at most 5 s
per ray-traced map.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from radioloc.city import CarConfig, CityConfig, generate_city, place_cars
from radioloc.datasets.protocol import ProtocolConfig, sample_candidates
from radioloc.io import atomic_write_png
from radioloc.propagation import db_to_gray
from radioloc.propagation.graylevel import NOISE_FLOOR_DB
from radioloc.propagation.raytracing import RayTracer, RayTracingConfig

SETTINGS = [  # (name, RayTracingConfig changes, cars in the scene)
    ("default: 2e6 rays, 2 m cells", {}, False),
    ("1e6 rays, 2 m cells", {"samples_per_tx": 1_000_000}, False),
    ("4e6 rays, 2 m cells", {"samples_per_tx": 4_000_000}, False),
    ("4e6 rays, 1 m cells", {"samples_per_tx": 4_000_000, "cell_size_m": 1}, False),
    ("default, with cars (IRT2cars)", {}, True),
]


def scenes(n_maps: int, n_tx: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    out = []
    protocol = replace(ProtocolConfig(), candidates_per_map=n_tx)
    for k in range(n_maps):
        city = generate_city(4242 + k, CityConfig())
        cars = place_cars(city.buildings, 4242 + k, CarConfig())
        txs = sample_candidates((city.buildings == 0) & (cars == 0), np.random.default_rng(k), protocol, f"map {k}")
        out.append((city.buildings, cars, txs))
    return out


def run(tracer: RayTracer, maps, with_cars: bool, seed: int, folder: Path) -> tuple[list[np.ndarray], float]:
    started, maps_done, results = time.perf_counter(), 0, []
    for m, (buildings, cars, txs) in enumerate(maps):
        scene = tracer.scene(buildings, cars if with_cars else None)
        for start in range(0, len(txs), 8):
            pathloss = scene.pathloss(txs[start : start + 8], seed=seed)
            for k, radio_map in enumerate(pathloss):
                atomic_write_png(folder / f"{m}_{start + k}.png", db_to_gray(radio_map))
            results.extend(pathloss)
            maps_done += len(pathloss)
    return results, (time.perf_counter() - started) / maps_done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=3)
    parser.add_argument("--tx", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/raytracing.json"))
    args = parser.parse_args()
    maps = scenes(args.maps, args.tx)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        RayTracer(RayTracingConfig()).scene(maps[0][0]).pathloss(maps[0][2][:1])  # compile the kernels once
        for name, change, with_cars in SETTINGS:
            config = RayTracingConfig(**change)
            tracer = RayTracer(config)
            first, seconds = run(tracer, maps, with_cars, seed=1, folder=Path(folder))
            second, _ = run(tracer, maps, with_cars, seed=2, folder=Path(folder))
            a, b = np.stack(first), np.stack(second)
            outdoor = ~np.isnan(a)
            covered = np.isfinite(a) & outdoor
            above = (a > NOISE_FLOOR_DB) & (b > NOISE_FLOOR_DB)
            noise = float(np.sqrt(np.mean((a[above] - b[above]) ** 2) / 2))
            row = {
                "setting": name,
                "samples_per_tx": config.samples_per_tx,
                "cell_size_m": config.cell_size_m,
                "cars": with_cars,
                "seconds_per_map": round(seconds, 3),
                "outdoor_covered": round(float(covered.sum() / outdoor.sum()), 3),
                "outdoor_above_noise_floor": round(float(((a > NOISE_FLOOR_DB) & outdoor).sum() / outdoor.sum()), 3),
                "monte_carlo_noise_db": round(noise, 2),
            }
            rows.append(row)
            print(
                f"{name:34s} {row['seconds_per_map']:6.2f} s/map  covered {row['outdoor_covered']:.1%}  "
                f"above floor {row['outdoor_above_noise_floor']:.1%}  noise {row['monte_carlo_noise_db']:.2f} dB"
            )
    result = {
        "benchmark": "raytracing",
        "maps": args.maps,
        "tx_per_map": args.tx,
        "config": RayTracingConfig().to_dict(),
        "settings": rows,
        "goal_seconds_per_map": 5.0,
        "goal_met": rows[0]["seconds_per_map"] <= 5.0,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
