"""Generate a RadioLocSeer-layout dataset: city maps, cars, DPM radio maps, ToA, positions and manifest.

The unit of work is one map (its 80 transmitters): a task on Dask distributed (:mod:`radioloc.cluster`: a local
cluster of ``--workers`` processes, or an existing one with ``--scheduler``). Each map's files are written
atomically and its record ``maps/{map}.json`` last, so a killed run (or a lost worker, whose task the scheduler
reruns) resumes at the incomplete maps and never shows a half-written file. A map's files depend on the seed and
the map's index only, so any number of workers writes the same bytes.

Ray-traced simulations (``IRT2``, ``IRT2cars``) run after the maps exist, one task per map with all its missing
ray-traced simulations (each worker keeps its ray tracer and compiled kernels for the run); with one worker they
run in this process with a bar per radio map. A map's record lists the simulations it holds, so asking an
existing dataset for more simulations adds only the missing ones, and a killed run loses no finished radio map.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

import radioloc
from radioloc.city import CarConfig, CityConfig, generate_city, load_building_png, place_cars
from radioloc.cluster import ClusterConfig, run_tasks
from radioloc.datasets import layout
from radioloc.datasets.checksums import check_dataset, record_checksums
from radioloc.datasets.protocol import ProtocolConfig, sample_bs_sets, sample_candidates, sample_ues, split_maps
from radioloc.datasets.state import MapRecordFields
from radioloc.errors import RadiolocError
from radioloc.io import NUMPY_READ_ERRORS, atomic_write_json, atomic_write_npz, atomic_write_png, check_state, folder_lock, numpy_read_reason
from radioloc.propagation import DominantPathModel, DominantPathSimulator, db_to_gray
from radioloc.propagation.graylevel import conversion_record
from radioloc.propagation.raytracing import RayTracingConfig


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
    raytracing: RayTracingConfig = field(default_factory=RayTracingConfig)

    def to_dict(self) -> dict:
        """JSON-ready (tuples become lists), so a manifest read back compares equal."""
        return json.loads(json.dumps(asdict(self)))


def existing_config(root: str | Path) -> DatasetConfig | None:
    """The configuration of the dataset already in ``root`` (None when there is none), so a command that adds
    simulations to it needs no other settings."""
    root = Path(root)
    manifest = layout.read_manifest(root) if (root / "manifest.json").exists() else None
    if not manifest or "config" not in manifest:
        return None
    data = dict(manifest["config"])
    parts = {"city": CityConfig, "cars": CarConfig, "protocol": ProtocolConfig, "model": DominantPathModel, "raytracing": RayTracingConfig}
    try:
        for key, kind in parts.items():
            if key in data:
                data[key] = kind(**{k: tuple(v) if isinstance(v, list) else v for k, v in data[key].items()})
        data["simulations"] = tuple(data["simulations"])
        return DatasetConfig(**data)
    except (TypeError, KeyError, AttributeError) as exc:
        raise RadiolocError(f"{root / 'manifest.json'}: unreadable dataset configuration ({exc})") from None
    except RadiolocError as exc:  # the configuration's own checks speak of the options that set it
        raise RadiolocError(f"{root / 'manifest.json'}: corrupt dataset configuration ({exc})") from None


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
    where = f"map {map_id}"
    if building_file is not None:
        buildings = load_building_png(building_file)
        style = f"file:{building_file.name}"
        heights_file = building_file.with_suffix(".heights.npz")  # written beside real-city tiles
        if heights_file.exists():
            atomic_write_npz(layout.heights_path(root, map_id), heights=read_heights(heights_file, buildings.shape))
    else:
        city = generate_city(_map_seed(config.seed, map_id, 0), config.city)
        buildings, style = city.buildings, city.style
    cars = place_cars(buildings, _map_seed(config.seed, map_id, 1), config.cars)
    rng = np.random.default_rng(_map_seed(config.seed, map_id, 2))
    free = (buildings == 0) & (cars == 0)
    candidates = sample_candidates(free, rng, config.protocol, where)

    detectable = None
    dominant = [sim for sim in config.simulations if sim not in layout.RAY_TRACED]
    for sim in dominant:
        above = simulate_dominant_paths(root, map_id, sim, buildings, cars, candidates, config.model)
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
        "simulations": dominant,
    }  # nothing of the run (times, workers) in a map's files: any run writes the same bytes
    atomic_write_json(layout.map_record_path(root, map_id), record)
    return record


def simulate_dominant_paths(
    root: Path, map_id: int, sim: str, buildings: np.ndarray, cars: np.ndarray, candidates: np.ndarray, model: DominantPathModel
) -> np.ndarray:
    """Write one map's ``sim`` radio maps and ToA; returns where each transmitter is above the noise floor."""
    obstacles = buildings | cars if sim.endswith("cars") else buildings
    simulator = DominantPathSimulator(obstacles, model)
    toa = np.empty((len(candidates), *buildings.shape), dtype=np.float32)
    los = np.empty((len(candidates), *buildings.shape), dtype=bool)
    above = np.empty((len(candidates), *buildings.shape), dtype=bool)
    for tx, (row, col) in enumerate(candidates):
        radio_map = simulator.simulate((row, col))
        atomic_write_png(layout.radio_map_path(root, sim, "true", map_id, tx), db_to_gray(radio_map.pathloss_db))
        toa[tx] = radio_map.toa_ns
        los[tx] = radio_map.line_of_sight
        above[tx] = np.nan_to_num(radio_map.pathloss_db, nan=-np.inf) > model.noise_floor_db
    atomic_write_npz(layout.toa_path(root, sim, map_id), toa_ns=toa, line_of_sight=los)
    return above


def read_heights(path: Path, shape: tuple[int, int]) -> np.ndarray:
    """A building height map (metres, NaN = unknown) from an ``.npz`` with a ``heights`` array."""
    try:
        with np.load(path) as data:
            heights = np.asarray(data["heights"], dtype=np.float32)
    except NUMPY_READ_ERRORS as exc:
        raise RadiolocError(f"{path}: not a height map ({numpy_read_reason(exc)})") from None
    if heights.shape != shape:
        raise RadiolocError(f"{path}: height map must be {shape[0]} x {shape[1]}, got {heights.shape[0]} x {heights.shape[1]}")
    return heights


def _map_inputs(root: Path, map_id: int) -> tuple[dict, np.ndarray, np.ndarray, np.ndarray | None]:
    record = read_map_record(root, map_id)
    buildings = (layout.read_gray_png(layout.building_path(root, map_id)) > 0).astype(np.uint8)
    cars = (layout.read_gray_png(layout.cars_path(root, map_id)) > 0).astype(np.uint8)
    heights_file = layout.heights_path(root, map_id)
    heights = read_heights(heights_file, buildings.shape) if heights_file.exists() else None
    return record, buildings, cars, heights


def add_dominant_paths(root: Path, map_id: int, sims: list[str], model: DominantPathModel) -> None:
    """Add dominant-path simulations to a finished map (worker task)."""
    record, buildings, cars, _ = _map_inputs(root, map_id)
    candidates = np.asarray(record["candidates"], dtype=np.int64)
    for sim in sims:
        simulate_dominant_paths(root, map_id, sim, buildings, cars, candidates, model)
        record["simulations"] = [*record["simulations"], sim]
        atomic_write_json(layout.map_record_path(root, map_id), record)


def add_ray_traced(root: Path, map_id: int, sims: list[str], tracer, on_radio_map=None) -> None:
    """Add ray-traced simulations to a finished map; radio maps already on disk are kept, not redone."""
    record, buildings, cars, heights = _map_inputs(root, map_id)
    candidates = np.asarray(record["candidates"], dtype=np.int64)
    for sim in sims:
        todo = [tx for tx in range(len(candidates)) if not layout.radio_map_path(root, sim, "true", map_id, tx).exists()]
        if todo:
            scene = tracer.scene(buildings, cars if sim.endswith("cars") else None, heights)
            for start in range(0, len(todo), RAY_TRACING_BATCH):
                chunk = todo[start : start + RAY_TRACING_BATCH]
                pathloss = scene.pathloss(candidates[chunk])
                for tx, radio_map in zip(chunk, pathloss):
                    atomic_write_png(layout.radio_map_path(root, sim, "true", map_id, tx), db_to_gray(radio_map))
                if on_radio_map is not None:
                    on_radio_map(len(chunk))
        record["simulations"] = [*record["simulations"], sim]
        atomic_write_json(layout.map_record_path(root, map_id), record)


# Transmitters solved together in one ray-tracing call (one kernel launch; memory grows with it).
RAY_TRACING_BATCH = 8


def trace_map(root: Path, map_id: int, sims: list[str], raytracing: RayTracingConfig) -> None:
    """Worker task: a map's missing ray-traced simulations."""
    from radioloc.propagation.raytracing import cached_tracer

    add_ray_traced(root, map_id, sims, cached_tracer(raytracing))


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


def _check_resume(root: Path, config: DatasetConfig) -> dict | None:
    """The manifest of the dataset already in ``root`` (None if there is none), if ``config`` may continue it:
    every setting must match, except the simulations (missing ones are added)."""
    manifest = layout.read_manifest(root) if (root / "manifest.json").exists() else None
    if manifest is None:
        return None
    previous = manifest.get("config", {})
    current = config.to_dict()
    ray_traced_before = any(sim in layout.RAY_TRACED for sim in previous.get("simulations", []))
    for key, value in current.items():
        if key == "simulations" or (key == "raytracing" and not ray_traced_before):
            continue
        if previous.get(key) != value:
            raise RadiolocError(
                f"{root}: already holds a dataset generated with a different '{key}' ({previous.get(key)!r} there, {value!r} now); choose another --out folder"
            )
    return manifest


def _warm_up_kernels() -> None:
    """Compile (or load) the numba kernels once in the parent so forked workers start ready."""
    tiny = np.zeros((8, 8), dtype=np.uint8)
    tiny[3, 3] = 1
    DominantPathSimulator(tiny).simulate((0, 0))


def _previous_runs(manifest: dict | None) -> list[dict]:
    """The runs that made a dataset so far (a manifest from before run lists: its single total as one run)."""
    if manifest is None:
        return []
    if "runs" in manifest:
        return manifest["runs"]
    if manifest.get("generation_seconds") is not None:
        return [{"finished": None, "workers": manifest.get("workers"), "maps_made": None, "seconds": manifest["generation_seconds"]}]
    return []


def generate_dataset(root: str | Path, config: DatasetConfig, workers: int | None = None, quiet: bool = False, scheduler: str | None = None) -> dict:
    """Generate (or resume) a dataset in ``root`` with ``workers`` local processes (None: one per core) or on the
    Dask cluster at ``scheduler``; returns the manifest."""
    ClusterConfig(workers=workers or 1, scheduler=scheduler)  # a bad --scheduler fails before any work
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
    if any(sim in layout.RAY_TRACED for sim in config.simulations):
        from radioloc.sionna_runtime import sionna_rt

        sionna_rt()  # fail fast, before any work, when the ray tracer cannot run here
    with folder_lock(root, "dataset"):
        return _generate_locked(root, config, files, workers, scheduler, quiet)


def _generate_locked(root: Path, config: DatasetConfig, files: list, workers: int | None, scheduler: str | None, quiet: bool) -> dict:
    previous = _check_resume(root, config) if (root / "manifest.json").exists() else None
    if previous is not None:
        check_dataset(root)  # what a resumed run skips must be what was written
    # DPM is always there and first: the UEs are drawn where the nominal truth reaches them.
    wanted = ["DPM", *(previous["config"]["simulations"] if previous else []), *config.simulations]
    config = DatasetConfig(**{**config.__dict__, "simulations": tuple(dict.fromkeys(wanted))})
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
        "runs": _previous_runs(previous),
    }
    atomic_write_json(root / "manifest.json", manifest)

    pending = [m for m in range(len(files)) if not layout.map_record_path(root, m).exists()]
    requested = ClusterConfig.local(workers)
    cluster = ClusterConfig(workers=requested.workers, scheduler=scheduler).at_most(len(pending))
    started = time.perf_counter()
    if pending:
        _warm_up_kernels()
        tasks = [(root, m, config, files[m]) for m in pending]
        run_tasks(build_map, tasks, cluster, "maps", quiet, total=len(files), completed=len(files) - len(pending))
    legacy = previous["config"]["simulations"] if previous else list(config.simulations)
    _complete_simulations(root, config, len(files), ClusterConfig(workers=requested.workers, scheduler=scheduler), quiet, legacy)
    records = [read_map_record(root, m) for m in range(len(files))]
    layout.write_positions(root, _positions_from_records(records))
    seconds = round(time.perf_counter() - started, 1)
    run = {
        "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "workers": cluster.workers,
        "scheduler": scheduler,
        "maps_made": len(pending),
        "seconds": seconds,
    }
    runs = [*manifest["runs"], run]
    # generation_seconds: the whole dataset's, over every run that made part of it.
    manifest.update(complete=True, generation_seconds=round(sum(r["seconds"] for r in runs), 1), workers=cluster.workers, runs=runs)
    record_checksums(root)
    atomic_write_json(root / "manifest.json", manifest)
    return manifest


def _complete_simulations(root: Path, config: DatasetConfig, n_maps: int, cluster: ClusterConfig, quiet: bool, legacy: list[str]) -> None:
    """Add to every finished map the simulations of ``config`` it does not hold yet (``legacy``: what the
    maps of a dataset made before records listed their simulations hold)."""
    missing = {}
    for m in range(n_maps):
        record = read_map_record(root, m)
        if "simulations" not in record:  # written before records listed them: it holds the dataset's
            record["simulations"] = list(legacy)
            atomic_write_json(layout.map_record_path(root, m), record)
        held = record["simulations"]
        missing[m] = [s for s in config.simulations if s not in held]
    dominant = {m: [s for s in sims if s not in layout.RAY_TRACED] for m, sims in missing.items()}
    dominant = {m: sims for m, sims in dominant.items() if sims}
    if dominant:
        run_tasks(add_dominant_paths, [(root, m, sims, config.model) for m, sims in dominant.items()], cluster, "dominant-path simulations", quiet)
    traced = {m: [s for s in sims if s in layout.RAY_TRACED] for m, sims in missing.items()}
    traced = {m: sims for m, sims in traced.items() if sims}
    if not traced:
        return
    if cluster.at_most(len(traced)).distributed:
        run_tasks(trace_map, [(root, m, sims, config.raytracing) for m, sims in traced.items()], cluster, "ray-traced maps", quiet)
        return
    from radioloc.propagation.raytracing import RayTracer

    tracer = RayTracer(config.raytracing)
    total = sum(
        sum(not layout.radio_map_path(root, sim, "true", m, tx).exists() for tx in range(len(read_map_record(root, m)["candidates"])))
        for m, sims in traced.items()
        for sim in sims
    )
    columns = (TextColumn("[bold]ray-traced radio maps"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
    with Progress(*columns, disable=quiet) as progress:
        task = progress.add_task("ray tracing", total=total)
        for m, sims in traced.items():
            add_ray_traced(root, m, sims, tracer, on_radio_map=lambda n: progress.advance(task, n))


def read_map_record(root: Path, map_id: int) -> dict:
    path = layout.map_record_path(root, map_id)
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError:
        raise RadiolocError(f"{path}: missing map record") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RadiolocError(f"{path}: corrupt map record ({exc})") from None
    check_state(MapRecordFields, record, path, "map record")
    return record
