"""Generate a RadioLocSeer-layout dataset: city maps, cars, DPM radio maps, ToA, positions and manifest.

The unit of work is one map (its 80 transmitters). Maps run in parallel worker processes; each map's files
are written atomically and its record ``maps/{map}.json`` last, so a killed run resumes at the first
incomplete map and never shows a half-written file.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import radioloc
from radioloc.city import CarConfig, CityConfig, generate_city, load_building_png, place_cars
from radioloc.datasets import layout
from radioloc.datasets.protocol import ProtocolConfig, sample_bs_sets, sample_candidates, sample_ues, split_maps
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, atomic_write_npz, atomic_write_png
from radioloc.propagation import DominantPathModel, DominantPathSimulator, db_to_gray
from radioloc.propagation.graylevel import conversion_record


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a generated dataset (saved in its manifest)."""

    maps: int = 99
    seed: int = 0
    simulations: tuple[str, ...] = ("DPM",)
    buildings_dir: str | None = None
    city: CityConfig = field(default_factory=CityConfig)
    cars: CarConfig = field(default_factory=CarConfig)
    protocol: ProtocolConfig = field(default_factory=ProtocolConfig)
    model: DominantPathModel = field(default_factory=DominantPathModel)

    def to_dict(self) -> dict:
        """JSON-ready (tuples become lists), so a manifest read back compares equal."""
        return json.loads(json.dumps(asdict(self)))


def building_files(directory: Path) -> list[Path]:
    """The PNGs of a ``--buildings`` folder, numeric names in numeric order."""
    if not directory.is_dir():
        raise RadiolocError(f"{directory}: building folder not found")
    files = sorted(directory.glob("*.png"), key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.stem))
    if not files:
        raise RadiolocError(f"{directory}: no .png building maps in this folder")
    return files


def _map_seed(seed: int, map_id: int, stream: int) -> int:
    return int(np.random.SeedSequence([seed, map_id, stream]).generate_state(1)[0])


def build_map(root: Path, map_id: int, config: DatasetConfig, building_file: Path | None) -> dict:
    """Generate and store one map; returns its record (also written to ``maps/{map}.json``)."""
    started = time.perf_counter()
    where = f"map {map_id}"
    if building_file is not None:
        buildings = load_building_png(building_file)
        style = f"file:{building_file.name}"
    else:
        city = generate_city(_map_seed(config.seed, map_id, 0), config.city)
        buildings, style = city.buildings, city.style
    cars = place_cars(buildings, _map_seed(config.seed, map_id, 1), config.cars)
    rng = np.random.default_rng(_map_seed(config.seed, map_id, 2))
    free = (buildings == 0) & (cars == 0)
    candidates = sample_candidates(free, rng, config.protocol, where)

    detectable = None
    for sim in config.simulations:
        obstacles = buildings | cars if sim.endswith("cars") else buildings
        simulator = DominantPathSimulator(obstacles, config.model)
        toa = np.empty((len(candidates), *buildings.shape), dtype=np.float32)
        los = np.empty((len(candidates), *buildings.shape), dtype=bool)
        above = np.empty((len(candidates), *buildings.shape), dtype=bool)
        for tx, (row, col) in enumerate(candidates):
            radio_map = simulator.simulate((row, col))
            atomic_write_png(layout.radio_map_path(root, sim, "true", map_id, tx), db_to_gray(radio_map.pathloss_db))
            toa[tx] = radio_map.toa_ns
            los[tx] = radio_map.line_of_sight
            above[tx] = np.nan_to_num(radio_map.pathloss_db, nan=-np.inf) > config.model.noise_floor_db
        atomic_write_npz(layout.toa_path(root, sim, map_id), toa_ns=toa, line_of_sight=los)
        if detectable is None:
            detectable = above  # UEs are drawn with the first simulation (DPM): the nominal truth

    sets = sample_bs_sets(candidates, rng, config.protocol, where)
    ues = sample_ues(free, detectable, sets, rng, config.protocol, where)
    atomic_write_png(layout.building_path(root, map_id), buildings * 255)
    atomic_write_png(layout.cars_path(root, map_id), cars * 255)
    record = {
        "map": map_id,
        "style": style,
        "building_coverage": float(buildings.mean()),
        "cars": int(cars.sum()),
        "candidates": candidates.tolist(),
        "bs_sets": sets.tolist(),
        "ues": ues.tolist(),
        "seconds": round(time.perf_counter() - started, 3),
    }
    atomic_write_json(layout.map_record_path(root, map_id), record)
    return record


def _positions_from_records(records: list[dict]) -> dict[str, np.ndarray]:
    """The RadioLocSeer ``TxRx.mat`` arrays (1-based) from the per-map records, in map order."""
    cand = np.array([r["candidates"] for r in records], dtype=np.int64)  # (n_maps, n_cand, 2)
    sets = np.array([r["bs_sets"] for r in records], dtype=np.int64)  # (n_maps, n_sets, k)
    ues = np.array([r["ues"] for r in records], dtype=np.int64)  # (n_maps, n_ue, 2)
    bs = np.take_along_axis(cand[:, None, :, :], sets[..., None], axis=2)  # (n_maps, n_sets, k, 2)
    return {
        "rxx": ues[..., 0] + 1,
        "rxy": ues[..., 1] + 1,
        "antList": np.transpose(sets, (1, 0, 2)) + 1,
        "antX": np.transpose(bs[..., 0], (1, 2, 0)) + 1,
        "antY": np.transpose(bs[..., 1], (1, 2, 0)) + 1,
        "candRow": cand[..., 0] + 1,
        "candCol": cand[..., 1] + 1,
        "mapIds": np.array([r["map"] for r in records], dtype=np.int64),
    }


def _check_resume(root: Path, config: DatasetConfig) -> None:
    manifest = layout.read_manifest(root) if (root / "manifest.json").exists() else None
    if manifest is None:
        return
    previous = manifest.get("config", {})
    current = config.to_dict()
    for key, value in current.items():
        if previous.get(key) != value:
            raise RadiolocError(
                f"{root}: already holds a dataset generated with a different '{key}' "
                f"({previous.get(key)!r} there, {value!r} now); choose another --out folder"
            )


def _warm_up_kernels() -> None:
    """Compile (or load) the numba kernels once in the parent so forked workers start ready."""
    tiny = np.zeros((8, 8), dtype=np.uint8)
    tiny[3, 3] = 1
    DominantPathSimulator(tiny).simulate((0, 0))


def generate_dataset(root: str | Path, config: DatasetConfig, workers: int | None = None, quiet: bool = False) -> dict:
    """Generate (or resume) a dataset in ``root``; returns the manifest."""
    root = Path(root)
    files: list[Path | None]
    if config.buildings_dir is not None:
        found = building_files(Path(config.buildings_dir))
        for path in found:
            load_building_png(path)  # fail fast, before any work, on a bad building map
        config = DatasetConfig(**{**config.__dict__, "maps": len(found)})
        files = list(found)
    else:
        if config.maps < 1:
            raise RadiolocError(f"--maps must be at least 1, got {config.maps}")
        files = [None] * config.maps
    unknown = [s for s in config.simulations if s not in layout.SIMULATIONS]
    if unknown:
        raise RadiolocError(f"--sims: unknown simulation {', '.join(unknown)} (choose from {', '.join(layout.SIMULATIONS)})")
    root.mkdir(parents=True, exist_ok=True)
    _check_resume(root, config)
    for stale in root.rglob(".*.tmp"):  # left by a run killed in the middle of a write
        stale.unlink()
    manifest = {
        "radioloc_version": radioloc.__version__,
        "format": "RadioLocSeer layout (see radioloc.datasets.layout)",
        "complete": False,
        "config": config.to_dict(),
        "gray_level": conversion_record(),
        "simulations": list(config.simulations),
        "maps": list(range(len(files))),
        "split": split_maps(len(files)),
        "building_files": [p.name for p in files] if config.buildings_dir else None,
    }
    atomic_write_json(root / "manifest.json", manifest)

    pending = [m for m in range(len(files)) if not layout.map_record_path(root, m).exists()]
    workers = max(1, min(workers or os.cpu_count() or 1, len(pending) or 1))
    started = time.perf_counter()
    if pending:
        _warm_up_kernels()
        columns = (TextColumn("[bold]maps"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
        with Progress(*columns, disable=quiet) as progress:
            task = progress.add_task("maps", total=len(files), completed=len(files) - len(pending))
            if workers == 1:
                for m in pending:
                    build_map(root, m, config, files[m])
                    progress.advance(task)
            else:
                context = multiprocessing.get_context("fork")
                with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
                    futures = {pool.submit(build_map, root, m, config, files[m]) for m in pending}
                    while futures:
                        done, futures = wait(futures, return_when=FIRST_EXCEPTION)
                        for future in done:
                            future.result()  # re-raises a worker's error; finished maps stay on disk
                            progress.advance(task)
    records = [read_map_record(root, m) for m in range(len(files))]
    layout.write_positions(root, _positions_from_records(records))
    manifest.update(complete=True, generation_seconds=round(time.perf_counter() - started, 1), workers=workers)
    atomic_write_json(root / "manifest.json", manifest)
    return manifest


def read_map_record(root: Path, map_id: int) -> dict:
    path = layout.map_record_path(root, map_id)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RadiolocError(f"{path}: missing map record") from None
    except json.JSONDecodeError as exc:
        raise RadiolocError(f"{path}: corrupt map record ({exc})") from None
