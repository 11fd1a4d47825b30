"""How radii fitted on procedural maps transfer to real street layouts: a diagnostic on data no radius was fitted
on and no figure is reported from (``seeds.TRANSFER_CHECK_SEED`` on the tiles of ``seeds.TRANSFER_CHECK_CITIES``),
beside the nominal calibration pool.

Usage: python benchmarks/radii_transfer.py [--models locunet,bayes] [--queries 1500] [--json docs/benchmarks/radii_transfer.json]

Per model: the coverage of the shipped radii per pool seed and per city; then radii refitted leave-one-group-out
(a pool seed, or a city) on the procedural pool alone, and on the pool with the other city's tiles weighted 1, 5 or
10 times a procedural map; and the coverage by bins of the fit residual (the feature that should tell an easy map
from a hard one), procedural against real.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import protocol
import seeds
from radii_features import collect
from rich.console import Console

from radioloc.io import atomic_write_json
from radioloc.localizers.registry import resolve_localizer
from radioloc.localizers.uncertainty import LEVELS, RadiusCalibration

COVERED = [LEVELS.index(0.68), LEVELS.index(0.95)]
REAL_WEIGHTS = (0, 1, 5, 10)  # a real tile counts as this many procedural maps in the fit
RESIDUAL_BINS = (0.0, 0.3, 0.6, 1.0, 2.0, np.inf)  # log1p of the RMS misfit (dB) at the answer


def coverage(calibration: RadiusCalibration, rows: dict, mask: np.ndarray) -> list[float]:
    radii = calibration.apply(rows["raw"][mask], rows["n_bs"][mask], rows["features"][mask])
    return [round(float(c), 3) for c in (rows["error"][mask, None] <= radii[:, COVERED]).mean(axis=0)]


def fit(rows: dict, mask: np.ndarray, real_weight: int) -> RadiusCalibration:
    """Radii on ``mask``'s queries, each real tile repeated ``real_weight`` times as a map of its own (maps weigh the
    same in the fit: repeating one weighs it more); 0 leaves the real tiles out."""
    index = np.flatnonzero(mask & (~rows["real"] if real_weight == 0 else True))
    real = index[rows["real"][index]]
    copies = [index] + [real] * (real_weight - 1)
    units = np.concatenate([rows["map"][part] + 10**7 * k for k, part in enumerate(copies)])
    chosen = np.concatenate(copies)
    return RadiusCalibration.fit(rows["raw"][chosen], rows["error"][chosen], rows["n_bs"][chosen], rows["features"][chosen], units)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="locunet,bayes")
    parser.add_argument("--queries", type=int, default=1500, help="queries per number of BSs (1..5) and dataset")
    parser.add_argument("--json", type=Path, default=Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "radii_transfer.json")
    args = parser.parse_args()
    console = Console(width=160)
    result = {"pool": list(seeds.CALIBRATION_POOL["nominal"]), "transfer_seed": seeds.TRANSFER_CHECK_SEED, "cities": list(seeds.TRANSFER_CHECK_CITIES),
              "levels": [0.68, 0.95], "models": {}}  # fmt: skip
    for model in args.models.split(","):
        nominal, real = collect(model, args.queries), collect(model, args.queries, {seeds.TRANSFER_CHECK_SEED: protocol.transfer_check()})
        rows = {key: np.concatenate([nominal[key], real[key]]) for key in nominal}
        rows["real"] = np.arange(len(rows["error"])) >= len(nominal["error"])
        city = np.char.rpartition(np.char.replace(rows["style"].astype(str), "file:", ""), "_")[:, 0]
        rows["group"] = np.where(rows["real"], city, rows["seed"].astype(str))
        groups = list(dict.fromkeys(rows["group"]))
        entry: dict = {"shipped": {g: coverage(resolve_localizer(model).localizer.uncertainty, rows, rows["group"] == g) for g in groups}, "refit": {}}
        for weight in REAL_WEIGHTS:
            label = "procedural pool only" if weight == 0 else f"pool + the other city's tiles x{weight}"
            entry["refit"][label] = {g: coverage(fit(rows, rows["group"] != g, weight), rows, rows["group"] == g) for g in groups}
        procedural = fit(rows, ~rows["real"], 0)
        entry["by_fit_residual"] = {}
        for low, high in zip(RESIDUAL_BINS[:-1], RESIDUAL_BINS[1:]):
            in_bin = (rows["features"][:, 1] >= low) & (rows["features"][:, 1] < high)
            entry["by_fit_residual"][f"{low:g}-{high:g}"] = {name: coverage(procedural, rows, in_bin & population) + [int((in_bin & population).sum())]
                                                           for name, population in (("procedural", ~rows["real"]), ("real", rows["real"]))}  # fmt: skip
        entry["mean_error_m"] = {"procedural": float(rows["error"][~rows["real"]].mean()), "real": float(rows["error"][rows["real"]].mean())}
        result["models"][model] = entry
        for label, by_group in {"shipped": entry["shipped"], **entry["refit"]}.items():
            console.print(f"{model}, {label}: " + ", ".join(f"{g} {c[0]:.3f}/{c[1]:.3f}" for g, c in by_group.items()), soft_wrap=True)
    atomic_write_json(args.json, result)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
