"""Can Sionna RT's PathSolver give the robustness truth per link, deterministically? (issue 33, design evidence)

For one fresh procedural map (its own seed, never evaluated on), every (BS candidate, UE) link with both antennas
1.5 m above ground, 25 m buildings, line of sight + specular reflection + first-order diffraction, depth 2: the
share of links with a path and above the noise floor, the RMSE between successive sample counts over the links
above the floor in both, the links that gain or lose their path, the wall time, and whether a deterministic run
repeats byte for byte. The dominant-path model's share on the same links is the reference.

    python benchmarks/pathsolver_sampling.py            # about 5 min on 2 cores; writes docs/benchmarks/pathsolver_sampling.json

Transmitters go 20 to a call: the deterministic candidate generator allocates depth x transmitters x samples x
receivers entries (about 77 bytes each), so 80 transmitters at 1e4 samples would not fit in 24 GB.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from radioloc.city import load_building_png  # noqa: E402
from radioloc.datasets import layout  # noqa: E402
from radioloc.datasets.builder import DatasetConfig, generate_dataset  # noqa: E402
from radioloc.io import atomic_write_json  # noqa: E402
from radioloc.propagation.graylevel import NOISE_FLOOR_DB, gray_to_db  # noqa: E402
from radioloc.propagation.raytracing import RayTracedScene, RayTracingConfig  # noqa: E402
from radioloc.sionna_runtime import sionna_rt  # noqa: E402

ANTENNA_HEIGHT_M = 1.5
SEED = 7707  # a map of its own: neither an evaluation nor a calibration seed (benchmarks/seeds.py)
BATCH = 20


def link_gains(scene: RayTracedScene, txs: np.ndarray, ues: np.ndarray, samples: int, deterministic: bool = True) -> np.ndarray:
    """(n_tx, n_ue) linear path gain, the sum of |a|^2 over the paths PathSolver finds."""
    rt = sionna_rt()
    import mitsuba as mi

    solver = rt.PathSolver(deterministic=deterministic)
    gains = []
    for start in range(0, len(txs), BATCH):
        for name in [*scene.scene.transmitters, *scene.scene.receivers]:
            scene.scene.remove(name)
        for k, (row, col) in enumerate(txs[start : start + BATCH]):
            scene.scene.add(rt.Transmitter(name=f"tx{k}", position=mi.Point3f(float(col) + 0.5, float(row) + 0.5, ANTENNA_HEIGHT_M)))
        for k, (row, col) in enumerate(ues):
            scene.scene.add(rt.Receiver(name=f"rx{k}", position=mi.Point3f(float(col) + 0.5, float(row) + 0.5, ANTENNA_HEIGHT_M)))
        paths = solver(scene.scene, max_depth=2, max_num_paths_per_src=100_000, samples_per_src=int(samples), synthetic_array=True, los=True,
                       specular_reflection=True, diffuse_reflection=False, refraction=False, diffraction=True, edge_diffraction=False,
                       diffraction_lit_region=True, seed=42)  # fmt: skip
        real, imag = (np.asarray(part, dtype=np.float64) for part in paths.a)  # (rx, 1, tx, 1, paths) with synthetic arrays
        valid = np.asarray(paths.valid)  # (rx, tx, paths)
        power = (real[:, 0, :, 0] ** 2 + imag[:, 0, :, 0] ** 2) * valid
        gains.append(power.sum(axis=2).T)
    return np.concatenate(gains)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", default="1000,2000,4000,8000,16000", help="samples per transmitter, comma separated, increasing")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks" / "pathsolver_sampling.json")
    args = parser.parse_args()
    counts = [int(float(v)) for v in args.samples.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder) / "ds"
        generate_dataset(root, DatasetConfig(maps=1, seed=SEED, simulations=("DPM",)), workers=1, quiet=True)
        buildings = load_building_png(layout.building_path(root, 0)) != 0
        positions = layout.read_positions(root)
        txs, ues = positions.candidates[0], positions.ue[0]
        dpm = np.stack(
            [gray_to_db(layout.read_radio_map_png(layout.radio_map_path(root, "DPM", "true", 0, tx)))[ues[:, 0], ues[:, 1]] for tx in range(len(txs))]
        )
    gray_floor = NOISE_FLOOR_DB  # gray 0 of the dominant-path map is "at or below the floor"
    scene = RayTracedScene(buildings, None, config=RayTracingConfig(tx_height_m=ANTENNA_HEIGHT_M), solver=object())
    link_gains(scene, txs[:2], ues, 100)  # compile Dr.Jit's kernels before timing
    rows, previous = [], None
    for samples in counts:
        started = time.perf_counter()
        gain = link_gains(scene, txs, ues, samples)
        seconds = time.perf_counter() - started
        with np.errstate(divide="ignore"):
            pathloss = 10 * np.log10(gain)
        row = {"samples_per_tx": samples, "seconds": round(seconds, 1), "links_with_path": float(np.mean(gain > 0)),
               "above_floor": float(np.mean(pathloss > NOISE_FLOOR_DB))}  # fmt: skip
        if previous is not None:
            both = (pathloss > NOISE_FLOOR_DB) & (previous > NOISE_FLOOR_DB)
            row |= {"rmse_to_previous_db": float(np.sqrt(np.mean((pathloss[both] - previous[both]) ** 2))),
                    "gained_path": int(((gain > 0) & ~np.isfinite(previous)).sum()), "lost_path": int(((gain == 0) & np.isfinite(previous)).sum())}  # fmt: skip
        print(row, flush=True)
        rows.append(row)
        previous = pathloss
    repeat = link_gains(scene, txs, ues, counts[0])
    first = link_gains(scene, txs, ues, counts[0])
    result = {
        "map_seed": SEED,
        "links": int(dpm.size),
        "dominant_path_above_floor": float(np.mean(dpm > gray_floor)),
        "runs": rows,
        "deterministic_repeat_identical": bool(np.array_equal(repeat, first)),
    }
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
