"""Write RadioUNet estimates for every map and transmitter of a dataset: ``{SIM}/estimate/{map}_{tx}.png``.

Batched, resumable (estimates already written by the same model are kept) and atomic per file; another model's
estimates are replaced as a whole set (written beside them, swapped in at the end). Returns the
estimate-minus-truth statistics (the paper's Fig. 2) over outdoor pixels and at the UE positions.
"""

from __future__ import annotations

import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from radioloc.cluster import ClusterConfig, run_tasks
from radioloc.datasets import layout
from radioloc.datasets.checksums import check_dataset, forget, record_checksums, sha256
from radioloc.datasets.radiomaps import ErrorSums, pathloss_difference_db
from radioloc.datasets.state import EstimatesRecordFields
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, atomic_write_png, folder_lock, read_state
from radioloc.models.radiounet import SHIPPED_WEIGHTS, RadioUNet, load_radiounet
from radioloc.models.runtime import Runtime


@torch.no_grad()
def predict_gray(model: RadioUNet, buildings: np.ndarray, cars: np.ndarray | None, tx: np.ndarray, runtime: Runtime, batch_size: int = 16) -> np.ndarray:
    """uint8 gray estimates (n, 256, 256) for one map and n transmitters. The next batch's geometry features
    (NumPy/numba, GIL released) are computed in a thread while the network runs on the current batch."""
    out = np.empty((len(tx), *buildings.shape), dtype=np.uint8)
    starts = list(range(0, len(tx), batch_size))
    mask = np.ascontiguousarray(buildings != 0, dtype=np.uint8)

    def geometry(start: int):
        chunk = tx[start : start + batch_size]
        return model.geometry_features(np.broadcast_to(mask, (len(chunk), *mask.shape)), chunk[:, 0], chunk[:, 1])

    with ThreadPoolExecutor(max_workers=1) as prefetch:
        pending = prefetch.submit(geometry, starts[0]) if starts else None
        for i, start in enumerate(starts):
            features = pending.result()
            if i + 1 < len(starts):
                pending = prefetch.submit(geometry, starts[i + 1])
            n = len(tx[start : start + batch_size])
            b = torch.from_numpy(buildings).float().expand(n, 1, *buildings.shape).contiguous(memory_format=torch.channels_last)
            c = None if cars is None else torch.from_numpy(cars).float().expand(n, 1, *buildings.shape).contiguous(memory_format=torch.channels_last)
            t = torch.from_numpy(tx[start : start + n]).float()
            with runtime.autocast():
                _, gray = model(b.to(runtime.device), t.to(runtime.device), None if c is None else c.to(runtime.device), geometry=features)
            out[start : start + n] = torch.round(gray.float().squeeze(1) * 255).clamp(0, 255).to(torch.uint8).cpu().numpy()
    return out


def estimate_dataset(root: str | Path, model_path: str | Path | None = None, sim: str = "DPM", batch_size: int = 16, quiet: bool = False,
                     workers: int = 1, scheduler: str | None = None) -> dict:  # fmt: skip
    """Estimate every map of ``root`` (one task per map: ``workers`` local processes or the Dask cluster at
    ``scheduler``, :mod:`radioloc.cluster`); returns the estimate-minus-truth statistics."""
    root = Path(root)
    cluster = ClusterConfig(workers=workers, scheduler=scheduler)
    manifest = layout.read_manifest(root)
    if manifest is None:
        raise RadiolocError(f"{root}: no manifest.json (not a radioloc dataset)")
    if not (root / sim / "true").is_dir():
        raise RadiolocError(f"{root / sim / 'true'}: missing folder (the dataset has no {sim} simulation to estimate)")
    positions = layout.read_positions(root)
    if positions.candidates is None:
        raise RadiolocError(f"{root / 'TxRx.mat'}: no candidate BS positions (candRow/candCol)")
    if batch_size < 1:
        raise RadiolocError(f"--batch-size must be at least 1, got {batch_size}")
    with folder_lock(root, "dataset"):
        check_dataset(root)  # estimates are compared with (and skipped next to) files that must be what was written
        stats = _estimate_locked(root, manifest, positions, model_path, sim, batch_size, quiet, cluster)
        record_checksums(root)
    return stats


_MODELS: dict[str, tuple[RadioUNet, Runtime]] = {}  # per worker process: each checkpoint loaded once


def cached_radiounet(path: Path = SHIPPED_WEIGHTS) -> tuple[RadioUNet, Runtime]:
    """The RadioUNet of checkpoint ``path`` and its runtime, loaded once per process (worker tasks reuse it)."""
    if str(path) not in _MODELS:
        runtime = Runtime.pick()
        _MODELS[str(path)] = (runtime.prepare(load_radiounet(path)), runtime)
    return _MODELS[str(path)]


def estimate_map(root: Path, map_id: int, sim: str, model_path: Path, batch_size: int, candidates: np.ndarray, ues: np.ndarray,
                 folder: str = "estimate") -> dict:  # fmt: skip
    """Worker task: one map's missing estimates written (into ``sim/folder``), and its estimate-minus-truth sums
    (outdoor pixels and UE positions, each over all and above the floor) with a sample of the differences for the
    histogram."""
    model, runtime = cached_radiounet(model_path)
    buildings = layout.read_gray_png(layout.building_path(root, map_id)) != 0
    cars = layout.read_gray_png(layout.cars_path(root, map_id)) != 0 if model.config.use_cars else None
    paths = [layout.radio_map_path(root, sim, folder, map_id, tx) for tx in range(len(candidates))]
    estimates = np.empty((len(candidates), *buildings.shape), dtype=np.uint8)
    todo = [tx for tx in range(len(candidates)) if not paths[tx].exists()]
    for tx in set(range(len(candidates))) - set(todo):
        estimates[tx] = layout.read_radio_map_png(paths[tx])
    if todo:
        levels = predict_gray(model, buildings.astype(np.uint8), None if cars is None else cars.astype(np.uint8), candidates[todo], runtime, batch_size)
        for k, t in enumerate(todo):
            estimates[t] = levels[k]
            atomic_write_png(paths[t], levels[k])
    outdoor = ~buildings
    at_ue = np.zeros_like(outdoor)
    at_ue[ues[:, 0], ues[:, 1]] = True
    sums = {"pixels": ErrorSums(), "at_ue_positions": ErrorSums()}
    differences = []
    for tx in range(len(candidates)):
        truth = layout.read_radio_map_png(layout.radio_map_path(root, sim, "true", map_id, tx))
        d, a = pathloss_difference_db(estimates[tx], truth, outdoor)
        sums["pixels"].add(d, a)
        differences.append(d)
        d, a = pathloss_difference_db(estimates[tx], truth, at_ue)
        sums["at_ue_positions"].add(d, a)
    differences = np.concatenate(differences)
    sample = np.random.default_rng(map_id).choice(differences, size=min(differences.size, HISTOGRAM_SAMPLE_PER_MAP), replace=False)
    return {"sums": sums, "sample": sample.astype(np.float32)}


HISTOGRAM_SAMPLE_PER_MAP = 20_000
STAGING, OLD = ".estimate.new", ".estimate.old"  # a replacement's new set, and the old set while it is swapped out


def _estimates_model(marker: Path, fallback: str | None) -> str | None:
    """The SHA-256 of the model that wrote a set of estimates (its ``model.json``), ``fallback`` without one."""
    if not marker.is_file():
        return fallback
    return read_state(EstimatesRecordFields, marker, "estimates record", "delete the file to recompute the estimates").model_sha256


def finish_replacement(sim_folder: Path) -> None:
    """Complete a swap that a kill interrupted: the new set (complete: only then is the old one moved aside) takes
    the place of the old one, which is removed last."""
    current, staging, old = sim_folder / "estimate", sim_folder / STAGING, sim_folder / OLD
    if old.is_dir() and not current.exists() and staging.is_dir():
        os.replace(staging, current)
    if old.is_dir() and current.is_dir():
        shutil.rmtree(old)


def _estimate_locked(
    root: Path, manifest: dict, positions, model_path: str | Path | None, sim: str, batch_size: int, quiet: bool, cluster: ClusterConfig
) -> dict:
    model_path = Path(model_path) if model_path is not None else SHIPPED_WEIGHTS
    load_radiounet(model_path)  # a bad checkpoint fails here, with one line, before any worker starts
    # Estimates on disk are reused (a killed run resumes) only if this very model wrote them.
    model_sha = sha256(model_path)
    finish_replacement(root / sim)
    current, staging = root / sim / "estimate", root / sim / STAGING
    previous = _estimates_model(current / "model.json", manifest.get("estimates", {}).get(sim, {}).get("model_sha256"))
    if _estimates_model(staging / "model.json", None) not in (None, model_sha) or previous in (None, model_sha):
        shutil.rmtree(staging, ignore_errors=True)  # a replacement by another model, or none needed: not resumed
    # Another model's estimates are replaced, never deleted first: the new set is written beside them (resumable)
    # and swapped in whole at the end, so a killed run leaves the old set and its checksums as they were.
    target = STAGING if previous not in (None, model_sha) else "estimate"
    atomic_write_json(root / sim / target / "model.json", {"model": str(model_path), "model_sha256": model_sha})
    maps = list(manifest["maps"])
    tasks = [(root, m, sim, model_path, batch_size, positions.candidates[m], positions.ue[m], target) for m in maps]
    parts = run_tasks(estimate_map, tasks, cluster, f"estimating {sim}", quiet)
    if target == STAGING:
        forget(root, f"{sim}/estimate")  # the sums of the old set go with it; the caller records the new ones
        os.replace(current, root / sim / OLD)
        finish_replacement(root / sim)
    # folded in map order: the same statistics for any number of workers
    stats = {
        "simulation": sim,
        "model": str(model_path),
        "model_sha256": model_sha,
        **{where: ErrorSums.combine([part["sums"][where] for part in parts]).summary() for where in ("pixels", "at_ue_positions")},
    }
    atomic_write_json(root / sim / "estimate_stats.json", stats)
    manifest.setdefault("estimates", {})[sim] = {k: stats[k] for k in ("model", "model_sha256", "pixels")}
    atomic_write_json(root / "manifest.json", manifest)
    return {**stats, "difference_sample_db": np.concatenate([part["sample"] for part in parts])}
