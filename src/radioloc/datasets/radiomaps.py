"""Radio-map samples (one city map and one transmitter) for training and evaluating radio-map estimators.

Everything of one split is decoded once into uint8 arrays: 100 maps x 80 transmitters take 0.5 GB.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from radioloc.datasets import layout
from radioloc.errors import RadiolocError


@dataclass
class RadioMapSet:
    maps: list[int]  # map ids
    buildings: np.ndarray  # (n_maps, H, W) uint8 0/1
    cars: np.ndarray  # (n_maps, H, W) uint8 0/1
    tx: np.ndarray  # (n_maps, n_tx, 2) int row, col
    truth: np.ndarray  # (n_maps, n_tx, H, W) uint8 gray levels

    def __len__(self) -> int:
        return self.truth.shape[0] * self.truth.shape[1]

    def pair(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(map slot, tx) of flat sample indices."""
        return np.divmod(np.asarray(index), self.truth.shape[1])


def dataset_split(root: Path, split: str) -> list[int]:
    """Map ids of a split (``train``, ``val``, ``test``, or ``all``)."""
    manifest = layout.read_manifest(root)
    if manifest is None:
        raise RadiolocError(f"{root}: no manifest.json (radio-map training needs a radioloc dataset)")
    if split == "all":
        return list(manifest["maps"])
    if split not in manifest["split"]:
        raise RadiolocError(f"split must be one of {', '.join(manifest['split'])}, got {split!r}")
    return list(manifest["split"][split])


def load_radio_maps(root: str | Path, split: str, sim: str = "DPM", kind: str = "true", quiet: bool = True) -> RadioMapSet:
    """Decode every (map, candidate transmitter) radio map of a split."""
    root = Path(root)
    maps = dataset_split(root, split)
    if not maps:
        raise RadiolocError(f"{root}: the {split} split has no maps")
    folder = root / sim / kind
    if not folder.is_dir():
        raise RadiolocError(f"{folder}: missing folder (this dataset has no {sim} {kind} radio maps)")
    positions = layout.read_positions(root)
    if positions.candidates is None:
        raise RadiolocError(f"{root / 'TxRx.mat'}: no candidate BS positions (candRow/candCol)")
    n_tx = positions.candidates.shape[1]
    truth = np.empty((len(maps), n_tx, 256, 256), dtype=np.uint8)
    buildings = np.empty((len(maps), 256, 256), dtype=np.uint8)
    cars = np.zeros((len(maps), 256, 256), dtype=np.uint8)
    with Progress(disable=quiet) as progress:
        task = progress.add_task(f"loading {split} {sim}/{kind}", total=len(maps))
        for slot, map_id in enumerate(maps):
            buildings[slot] = layout.read_gray_png(layout.building_path(root, map_id)) != 0
            if layout.cars_path(root, map_id).exists():
                cars[slot] = layout.read_gray_png(layout.cars_path(root, map_id)) != 0
            for tx in range(n_tx):
                truth[slot, tx] = layout.read_radio_map_png(layout.radio_map_path(root, sim, kind, map_id, tx))
            progress.advance(task)
    return RadioMapSet(maps=maps, buildings=buildings, cars=cars, tx=positions.candidates[maps], truth=truth)


def pathloss_difference_db(estimate_gray: np.ndarray, truth_gray: np.ndarray, outdoor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Estimate minus truth in dB at outdoor pixels (both on the gray grid, so values at or below the noise
    floor count as the noise floor), and whether the truth there is above the noise floor."""
    from radioloc.propagation.graylevel import DB_PER_GRAY

    diff = (estimate_gray.astype(np.float32) - truth_gray.astype(np.float32))[outdoor] * DB_PER_GRAY
    return diff, truth_gray[outdoor] > 0


def error_summary(diff_db: np.ndarray, above_floor: np.ndarray) -> dict:
    """RMSE and MAE in dB over all given pixels and over those above the noise floor."""

    def stats(values: np.ndarray) -> dict:
        if values.size == 0:
            return {"rmse_db": float("nan"), "mae_db": float("nan"), "pixels": 0}
        return {"rmse_db": float(np.sqrt(np.mean(values.astype(np.float64) ** 2))), "mae_db": float(np.mean(np.abs(values))), "pixels": int(values.size)}

    return {"outdoor": stats(diff_db), "above_noise_floor": stats(diff_db[above_floor])}


@dataclass
class ErrorSums:
    """Running sums of dB differences (squares, absolute values, counts) over all pixels given and over those
    above the noise floor: statistics folded from parts (maps estimated on different workers)."""

    sums: np.ndarray = field(default_factory=lambda: np.zeros((2, 3)))  # (all, above floor) x (sum sq, sum abs, n)

    def add(self, diff_db: np.ndarray, above_floor: np.ndarray) -> None:
        for row, values in enumerate((diff_db, diff_db[above_floor])):
            values = values.astype(np.float64)
            self.sums[row] += (np.sum(values**2), np.sum(np.abs(values)), values.size)

    @staticmethod
    def combine(parts: list[ErrorSums]) -> ErrorSums:
        total = ErrorSums()
        for part in parts:  # in the order given: the same floating-point sums every time
            total.sums += part.sums
        return total

    def summary(self) -> dict:
        """What :func:`error_summary` reports, from the sums."""

        def stats(row: np.ndarray) -> dict:
            n = int(row[2])
            if n == 0:
                return {"rmse_db": float("nan"), "mae_db": float("nan"), "pixels": 0}
            return {"rmse_db": float(np.sqrt(row[0] / n)), "mae_db": float(row[1] / n), "pixels": n}

        return {"outdoor": stats(self.sums[0]), "above_noise_floor": stats(self.sums[1])}
