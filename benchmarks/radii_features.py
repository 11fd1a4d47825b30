"""Which query features the radii condition on: leave-one-seed-out on the calibration pool (never on an
evaluation seed). The design choice behind ``radioloc.localizers.uncertainty.query_features`` and its evidence
(``docs/design/evaluation-protocol.md``).

Usage: python benchmarks/radii_features.py [--model locunet] [--queries 1500] [--json docs/benchmarks/radii_features.json]

For each seed of the pool, the radii are fitted (:class:`RadiusCalibration`) on the other seeds' queries with a
set of regressors, and their coverage measured on this seed's 5-BS and 3-BS queries; the spread of the per-map
68 % coverage says how well the radii follow the map.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import protocol
from rich.console import Console

from radioloc.datasets.builder import read_map_record
from radioloc.datasets.localization import load_localization
from radioloc.io import atomic_write_json
from radioloc.localizers.base import localization_errors
from radioloc.localizers.registry import resolve_localizer
from radioloc.localizers.uncertainty import LEVELS, RadiusCalibration, calibration_queries, query_features

CANDIDATES = {  # columns of query_features kept (detectable share, fit residual, local building share)
    "one scale per number of BSs": None,
    "+ fit residual, detectable share": [0, 1],
    "+ local building share (shipped)": [0, 1, 2],
}


def collect(model: str, per_count: int, roots: dict[int, Path] | None = None) -> dict:
    """Per calibration query of the datasets ``roots`` (seed -> folder; default the nominal pool): its seed, map,
    map style, number of BSs, raw spreads, error and query features."""
    localizer = resolve_localizer(model).localizer
    rows: dict = {}
    for seed, root in (roots or protocol.calibration_pool("nominal")).items():
        data = calibration_queries(load_localization(root, protocol.ALL_SPLITS), per_count=per_count, seed=seed)
        positions, raw = localizer.raw_estimates(data)
        q = data.queries
        styles = np.array([read_map_record(root, m).get("style", "imported") for m in data.scenes.map_ids])
        part = {"seed": np.full(len(q), seed), "map": seed * 1000 + q.map_slot, "style": styles[q.map_slot], "n_bs": (q.bs_ids >= 0).sum(axis=1), "raw": raw,
                "error": localization_errors(positions, q.position), "features": query_features(data, positions)}  # fmt: skip
        for key, value in part.items():
            rows.setdefault(key, []).append(value)
    return {key: np.concatenate(value) for key, value in rows.items()}


def leave_one_seed_out(rows: dict, columns: list[int] | None) -> dict:
    result = {}
    per_map = []
    for seed in np.unique(rows["seed"]):
        test, train = rows["seed"] == seed, rows["seed"] != seed
        features = None
        if columns is not None:  # the columns left out stay 0: their weights fit to 0
            features = np.zeros_like(rows["features"])
            features[:, columns] = rows["features"][:, columns]
        calibration = RadiusCalibration.fit(
            rows["raw"][train], rows["error"][train], rows["n_bs"][train], None if features is None else features[train], rows["map"][train]
        )
        radii = calibration.apply(rows["raw"][test], rows["n_bs"][test], None if features is None else features[test])
        covered = rows["error"][test, None] <= radii[:, [LEVELS.index(0.68), LEVELS.index(0.95)]]
        result[str(seed)] = {f"{k}bs": [float(c) for c in covered[rows["n_bs"][test] == k].mean(axis=0)] for k in (5, 3)}
        maps = rows["map"][test]
        per_map += [float(covered[maps == m, 0].mean()) for m in np.unique(maps)]
    return {"by_seed_68_95": result, "per_map_68_sd": float(np.std(per_map))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="locunet")
    parser.add_argument("--queries", type=int, default=1500, help="queries per number of BSs (1..5) and seed")
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "radii_features.json")
    args = parser.parse_args()
    console = Console(width=160)
    rows = collect(args.model, args.queries)
    result = {"model": args.model, "pool": list(protocol.calibration_pool("nominal")), "candidates": {}}
    for name, columns in CANDIDATES.items():
        entry = leave_one_seed_out(rows, columns)
        result["candidates"][name] = entry
        seeds = " ".join(f"{s}: {v['5bs'][0]:.3f}/{v['5bs'][1]:.3f}" for s, v in entry["by_seed_68_95"].items())
        console.print(f"{name}: 5 BSs {seeds}; per-map 68 % sd {entry['per_map_68_sd']:.3f}")
    atomic_write_json(args.json, result)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
