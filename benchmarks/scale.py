"""Maps per second on 1 and 2 Dask workers of this machine, for dominant-path generation and for ray tracing,
and the projected wall time of a RadioMapSeer-size dataset (701 maps x 80 BSs; DPM, IRT2 and IRT2cars) on K
workers.

Usage: python benchmarks/scale.py [--maps 16] [--traced-maps 2] [--traced-candidates 20] [--rays 2000000]
                                  [--json benchmarks/results/scale.json]

Both worker counts run on a local Dask cluster started before the clock (the cluster's start is not the
generation's cost) and reached through its scheduler address, as a remote cluster would be; the two outputs are
compared byte for byte. Goal (issue 17): 2 workers at least 1.8 x the maps/s of 1 worker for DPM generation,
with byte-identical output.

The projection is arithmetic on the measured costs, not a measurement: this host's seconds per map at its better
worker count (a DPM map with its 80 radio maps, plus 2 x 80 ray-traced radio maps at the measured seconds per
radio map), times 701 maps, over K hosts like this one (the maps are independent tasks; the hosts share only the
file system).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

from radioloc.cluster import worker_environment
from radioloc.datasets.builder import DatasetConfig, generate_dataset
from radioloc.datasets.protocol import ProtocolConfig
from radioloc.io import atomic_write_json
from radioloc.propagation.raytracing import RayTracingConfig

RADIOMAPSEER_MAPS = 701
RADIOMAPSEER_BSS = 80
RAY_TRACED_SIMS = ("IRT2", "IRT2cars")


def files_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name not in ("manifest.json", ".radioloc.lock")}


def warm_up_worker() -> None:
    from radioloc.datasets import builder

    builder._warm_up_kernels()


def timed_run(config: DatasetConfig, out: Path, workers: int, base: Path | None = None, cores_per_worker: int | None = None) -> float:
    """Seconds to generate ``config`` into ``out`` on a local cluster of ``workers`` (started before the clock;
    each worker's kernels get ``cores_per_worker`` threads, default: the cores shared among the workers, as
    radioloc's own local cluster does); with ``base``, ``out`` starts as a copy of it (the ray-traced
    simulations are then the only work)."""
    from distributed import Client, LocalCluster

    if base is not None:
        shutil.copytree(base, out)
    env = worker_environment(workers) if cores_per_worker is None else {k: str(cores_per_worker) for k in worker_environment(workers)}
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.ERROR, env=env) as cluster:
        with Client(cluster) as client:  # warm workers, as a running cluster's are: modules imported, kernels loaded
            client.run(warm_up_worker)
        started = time.perf_counter()
        generate_dataset(out, config, quiet=True, scheduler=cluster.scheduler_address)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=16, help="maps of the DPM measurement (80 BSs each)")
    parser.add_argument("--traced-maps", type=int, default=2, help="maps of the ray-tracing measurement (0: skip it)")
    parser.add_argument("--traced-candidates", type=int, default=20, help="BS positions per ray-traced map")
    parser.add_argument("--rays", type=int, default=2_000_000)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/scale.json"))
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="radioloc-scale-"))
    result: dict = {"benchmark": "scale", "kind": "Dask LocalCluster reached by its scheduler address, 1 thread per worker"}
    try:
        config = DatasetConfig(maps=args.maps, seed=17)
        # one core per worker: how the tasks scale over workers (the goal); then one worker given every core, as
        # a single process's numba kernels use them
        seconds = {w: timed_run(config, scratch / f"dpm{w}", w, cores_per_worker=1) for w in (1, 2)}
        all_cores = timed_run(config, scratch / "dpm1all", 1)
        identical = files_of(scratch / "dpm1") == files_of(scratch / "dpm2") == files_of(scratch / "dpm1all")
        rate = {w: args.maps / s for w, s in seconds.items()}
        result["dpm"] = {
            "maps": args.maps, "radio_maps_per_map": 80, "cores_per_worker": 1, "seconds": {str(w): round(s, 1) for w, s in seconds.items()},
            "maps_per_second": {str(w): round(r, 4) for w, r in rate.items()}, "speedup_2_workers": round(rate[2] / rate[1], 3),
            "one_worker_all_cores": {"cores": os.cpu_count(), "seconds": round(all_cores, 1), "maps_per_second": round(args.maps / all_cores, 4),
                                     "speedup_2_workers_over_it": round(rate[2] / (args.maps / all_cores), 3)},
            "byte_identical": identical, "goal_met": rate[2] / rate[1] >= 1.8 and identical,
        }  # fmt: skip
        print(f"DPM generation, {args.maps} maps x 80 BSs, one core per worker: 1 worker {rate[1]:.3f} maps/s, 2 workers {rate[2]:.3f} maps/s "
              f"(x{rate[2] / rate[1]:.2f}, goal >= 1.8); 1 worker on all {os.cpu_count()} cores {args.maps / all_cores:.3f} maps/s "
              f"(2 workers x{rate[2] * all_cores / args.maps:.2f} of it); byte-identical: {identical}")  # fmt: skip
        rate[1] = max(rate[1], args.maps / all_cores)  # the host's best single-worker throughput, for the projection
        traced_per_radio_map = None
        if args.traced_maps:
            protocol = ProtocolConfig(candidates_per_map=args.traced_candidates)
            base_config = DatasetConfig(maps=args.traced_maps, seed=18, protocol=protocol, raytracing=RayTracingConfig(samples_per_tx=args.rays))
            generate_dataset(scratch / "base", base_config, workers=1, quiet=True)
            traced = DatasetConfig(**{**base_config.__dict__, "simulations": ("DPM", "IRT2")})
            t_seconds = {w: timed_run(traced, scratch / f"irt{w}", w, base=scratch / "base") for w in (1, 2)}
            t_rate = {w: args.traced_maps / s for w, s in t_seconds.items()}
            traced_per_radio_map = t_seconds[1] / (args.traced_maps * args.traced_candidates)
            result["ray_tracing"] = {
                "maps": args.traced_maps, "radio_maps_per_map": args.traced_candidates, "rays_per_tx": args.rays, "simulation": "IRT2",
                "seconds": {str(w): round(s, 1) for w, s in t_seconds.items()}, "maps_per_second": {str(w): round(r, 4) for w, r in t_rate.items()},
                "seconds_per_radio_map_1_worker": round(traced_per_radio_map, 3), "speedup_2_workers": round(t_rate[2] / t_rate[1], 3),
                "byte_identical": files_of(scratch / "irt1") == files_of(scratch / "irt2"),
            }  # fmt: skip
            print(f"ray tracing (IRT2), {args.traced_maps} maps x {args.traced_candidates} BSs: 1 worker {t_rate[1]:.4f} maps/s "
                  f"({traced_per_radio_map:.2f} s per radio map), 2 workers {t_rate[2]:.4f} maps/s (x{t_rate[2] / t_rate[1]:.2f})")  # fmt: skip
        # projection: this host's best measured throughput per RadioMapSeer map, times the maps, over K such hosts
        # (maps are independent tasks that share only the file system)
        per_map = 1.0 / max(rate.values())
        if traced_per_radio_map is not None:
            per_traced_radio_map = min(result["ray_tracing"]["seconds"].values()) / (args.traced_maps * args.traced_candidates)
            per_map += per_traced_radio_map * RADIOMAPSEER_BSS * len(RAY_TRACED_SIMS)
        projection = {str(k): round(RADIOMAPSEER_MAPS * per_map / k / 3600, 2) for k in (1, 2, 8, 32, 128)}
        result["projection"] = {
            "what": f"{RADIOMAPSEER_MAPS} maps x {RADIOMAPSEER_BSS} BSs, DPM" + (" + IRT2 + IRT2cars" if traced_per_radio_map else "") + ", hours on K hosts like this one",
            "host_seconds_per_map": round(per_map, 2), "hours_on_k_hosts": projection,
            "note": "a projection from the measured per-map cost of this host (IRT2cars costed as IRT2) with perfect scaling across hosts, not a measurement",
        }  # fmt: skip
        print(f"projection (not a measurement), RadioMapSeer size: {per_map:.1f} s per map on this host; hours on K such hosts: {projection}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    atomic_write_json(args.json, result)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
