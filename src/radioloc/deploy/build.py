"""Building a deployment: city -> base stations -> radio maps -> survey calibrations -> publish.

A build is a resumable job in ``ROOT/staging/<id>`` (see :class:`radioloc.deploy.deployment.DeploymentStore`):

1. ``spec.json`` (the :class:`DeploymentSpec`; rerunning with another spec for the same id is refused) and
   ``city.npz`` (buildings and cars);
2. one ``bs/<index>.npz`` per BS with its maps and its truth (gray levels), each written atomically, so a killed
   build redoes at most the BSs in flight;
3. ``*.npy`` arrays, the survey and the calibrations (``bayes.safetensors``, the radius calibrations), then
   ``deployment.json``;
4. publish: the staging folder is renamed to ``ROOT/deployments/<id>`` (replacing a previous version the same
   way), so a deployment is served whole or not at all.

**City sources** (``--city``): ``generated:SEED`` (a procedural city of ``--size`` m), a building-mask PNG, a
GeoJSON file of footprints (longitude / latitude), an OpenStreetMap extract (``.osm`` / ``.osm.pbf``), or
``scene:NAME`` (a Sionna RT bundled scene). Imported cities bring their own origin; others take ``--origin``.

**Base stations** (``--bs``): a CSV or JSON list with ``cell_id`` and either ``lat``/``lng`` or ``row``/``col``,
optionally ``height_m`` and ``tx_power_dbm``; or ``auto:SPACING``: one BS per SPACING x SPACING m cell of a grid,
at a random street pixel of the cell's middle (seeded).

**Radio maps** (``--sim``, ``--truth``): DPM over the whole area; RadioUNet or the ray tracer (``IRT2``,
``IRT2cars``) on the 256 m tile around each BS, DPM beyond (:mod:`radioloc.deploy.radiomaps`).

**Calibrations.** The maps a localizer sees are never the truth phones report. The survey simulates ``survey``
phones on the truth: two thirds fit ``bayes``'s likelihood (and its tempering), the last third calibrates every
serving localizer's radii (split-conformal, as :mod:`radioloc.localizers.uncertainty`), so the radii are honest
for this area. An operator would run the same fit on drive-test reports.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from radioloc import __version__
from radioloc.city.cars import CarConfig, place_cars
from radioloc.city.generator import CityConfig, generate_city
from radioloc.city.grid import MAP_SIZE
from radioloc.cluster import ClusterConfig, run_tasks
from radioloc.deploy.deployment import (
    ANTENNA_HEIGHT_M,
    ARRAYS,
    WINDOW,
    BaseStation,
    Deployment,
    DeploymentConfig,
    DeploymentStore,
    check_deployment_id,
    holds_a_mask,
    load_deployment,
    read_arrays,
    remove_folder,
    save_config,
)
from radioloc.deploy.georef import Georeference
from radioloc.deploy.radiomaps import MAP_SOURCES, TRUTH_SOURCES, AreaRadioMaps
from radioloc.deploy.state import SERVING, ProgressFields, StationsFields, SurveyFields
from radioloc.errors import RadiolocError, first_validation_error
from radioloc.io import (
    LOCK_FILE,
    NUMPY_READ_ERRORS,
    atomic_write_json,
    atomic_write_npy,
    atomic_write_npz,
    folder_lock,
    numpy_read_reason,
    read_json_object,
    read_state,
)
from radioloc.limits import CELL_ID_MAX, SEED_MAX

CARS_PER_TILE = 100  # CarConfig's default density, per 256 x 256 m
DEFAULT_ORIGIN = (48.1372, 11.5756)  # Munich's Marienplatz: generated cities need somewhere to be


@dataclass(frozen=True)
class DeploymentSpec:
    """Everything a build depends on (saved as ``spec.json``; a resumed build must match it)."""

    id: str
    name: str = ""
    city: str = "generated:0"
    size_m: int = 1024  # generated cities
    origin: tuple[float, float] | None = None  # (lat, lng) of the grid centre; imported cities bring their own
    base_stations: str = "auto:150"
    maps: str = "DPM"
    truth: str = "DPMcars"
    localizers: tuple[str, ...] = SERVING
    survey: int = 6000
    seed: int = 0

    def __post_init__(self):
        check_deployment_id(self.id)
        if self.maps not in MAP_SOURCES:
            raise RadiolocError(f"--sim must be one of {', '.join(MAP_SOURCES)}, got {self.maps!r}")
        if self.truth not in TRUTH_SOURCES:
            raise RadiolocError(f"--truth must be one of {', '.join(TRUTH_SOURCES)}, got {self.truth!r}")
        unknown = [name for name in self.localizers if name not in SERVING]
        if not self.localizers or unknown:
            raise RadiolocError(f"--localizers: choose from {', '.join(SERVING)}, got {', '.join(self.localizers) or 'none'}")
        if len(set(self.localizers)) != len(self.localizers):
            raise RadiolocError(f"--localizers: each at most once, got {', '.join(self.localizers)}")
        if self.survey < 600:
            raise RadiolocError(f"--survey must be at least 600 simulated phones, got {self.survey}")
        if self.city.startswith("dataset:") and self.maps != "DPM":
            raise RadiolocError(f"--sim: a dataset map brings its own maps (its DPM simulation and their estimate), got {self.maps!r}")
        if self.city.startswith("dataset:") and self.truth != self.maps:
            raise RadiolocError(f"--truth: a dataset map's truth is its {self.maps} simulation (pass --truth {self.maps})")
        if not MAP_SIZE <= self.size_m <= 8192:
            raise RadiolocError(f"--size must be {MAP_SIZE}..8192 m, got {self.size_m}")

    def to_dict(self) -> dict:
        return {**asdict(self), "localizers": list(self.localizers), "origin": list(self.origin) if self.origin else None}


# -- the city ------------------------------------------------------------------------------------------------
@dataclass
class City:
    buildings: np.ndarray
    origin: tuple[float, float] | None  # lat, lng of the grid centre when the source is georeferenced
    source: str
    extra: dict = field(default_factory=dict)


def load_city(spec: DeploymentSpec) -> City:
    source = spec.city
    if source.startswith("generated:"):
        text = source.removeprefix("generated:")
        seed = int(text) if text.isdigit() else -1
        if not 0 <= seed <= SEED_MAX:
            raise RadiolocError(f"--city {source!r}: generated:SEED needs a whole-number seed in 0..{SEED_MAX}")
        city = generate_city(seed, CityConfig(size=spec.size_m))
        return City(city.buildings.astype(np.uint8), None, source, {"style": city.style})
    if source.startswith("scene:"):
        from radioloc.city.real import scene_height_map

        height_map = scene_height_map(source.removeprefix("scene:"))
        return City(height_map.buildings.astype(np.uint8), None, source)
    path = Path(source)
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".osm.pbf") else path.suffix.lower()
    if not path.is_file():
        raise RadiolocError(f"--city {source}: file not found (or use generated:SEED, scene:NAME)")
    if suffix == ".png":
        from PIL import Image

        from radioloc.city.imports import load_building_png

        with Image.open(path) as image:
            width, height = image.size
        if width != height:
            raise RadiolocError(f"--city {path}: the building map must be square, got {width} x {height}")
        return City(load_building_png(path, width), None, f"png:{path.name}")
    if suffix in (".geojson", ".json", ".osm", ".osm.pbf", ".pbf"):
        from radioloc.city.real import geojson_height_map, osm_buildings

        if suffix in (".geojson", ".json"):
            from radioloc.city.imports import read_geojson_footprints

            footprints = read_geojson_footprints(path)
            height_map = geojson_height_map(path)
        else:
            footprints = osm_buildings(path)
            from radioloc.city.real import osm_height_map

            height_map = osm_height_map(path)
        import shapely

        lng, lat = shapely.union_all([p for p, _ in footprints]).centroid.coords[0]
        # the height map's frame is metres east / north of that centroid; the grid centre is offset from it
        rows, cols = height_map.buildings.shape
        centre_x = height_map.x_left + cols / 2.0
        centre_y = height_map.y_top - rows / 2.0
        origin = _offset_latlng(lat, lng, centre_x, centre_y)
        return City(height_map.buildings.astype(np.uint8), origin, height_map.source)
    raise RadiolocError(f"--city {source}: expected generated:SEED, scene:NAME, or a .png, .geojson, .osm or .osm.pbf file")


def parse_dataset_city(city: str) -> tuple[Path, int, str] | None:
    """``dataset:DIR:MAP[:ESTIMATE]`` -> (DIR, MAP, ESTIMATE); None for other city sources."""
    if not city.startswith("dataset:"):
        return None
    parts = city.removeprefix("dataset:").rsplit(":", 2)
    if len(parts) == 3 and not parts[2].isdigit():
        folder, map_id, estimate = parts
    else:
        folder, map_id, estimate = city.removeprefix("dataset:").rsplit(":", 1) + ["estimate"]
    if not map_id.isdigit():
        raise RadiolocError(f"--city {city!r}: expected dataset:DIR:MAP[:ESTIMATE] with an integer map id")
    return Path(folder), int(map_id), estimate


def _from_dataset_map(staging: Path, spec: DeploymentSpec, folder: Path, map_id: int, estimate: str) -> None:
    """A deployment of one dataset map: its candidate BSs (cell id = candidate index), the maps localizers see
    (``estimate``: RadioUNet's, ``true``, ``noisy:SIGMA``) and the DPM truth; served by the shipped localizers
    with their shipped calibrations, exactly as ``radioloc evaluate`` runs them."""
    from radioloc.datasets.localization import load_localization

    seen = load_localization(folder, "custom", estimate, sim=spec.maps, maps=[map_id]).scenes
    truth = load_localization(folder, "custom", "true", sim=spec.maps, maps=[map_id]).scenes
    buildings = seen.buildings[0].astype(np.uint8)
    rows, cols = buildings.shape
    origin = spec.origin or DEFAULT_ORIGIN
    georef = Georeference(float(origin[0]), float(origin[1]), rows, cols)
    stations = [BaseStation(cell_id=i, row=int(r), col=int(c)) for i, (r, c) in enumerate(seen.bs_positions[0])]
    for name, array in (("buildings", buildings), ("obstacles", buildings), ("maps", seen.radio_maps[0]), ("truth", truth.radio_maps[0])):
        atomic_write_npy(staging / f"{name}.npy", np.ascontiguousarray(array, dtype=np.uint8))
    atomic_write_npz(staging / "city.npz", buildings=buildings, cars=np.zeros_like(buildings))
    atomic_write_json(staging / "stations.json", {"georef": georef.to_dict(), "base_stations": [bs.to_dict() for bs in stations], "estimate": estimate,
                                                  "city": {"source": f"dataset:{folder.name}:{map_id}", "rows": rows, "cols": cols, "coverage": float(buildings.mean())}})  # fmt: skip
    atomic_write_json(staging / "survey.json", {"radius_calibrations": {}, "serving": "the shipped localizers and calibrations (a dataset map)"})


def _offset_latlng(lat: float, lng: float, east_m: float, north_m: float) -> tuple[float, float]:
    """The point ``east_m``, ``north_m`` from (lat, lng) on the local tangent plane (pyproj)."""
    reference = Georeference(lat, lng, 1, 1)
    lat2, lng2 = reference.to_latlng(-north_m, east_m)
    return float(lat2), float(lng2)


# -- base stations ---------------------------------------------------------------------------------------------
def auto_base_stations(obstacles: np.ndarray, spacing: int, seed: int) -> list[BaseStation]:
    """One BS per ``spacing`` m grid cell, at a random free pixel of the cell's middle half (none where the
    middle is all buildings); cell ids 1, 2, ... in row-major order."""
    rng = np.random.default_rng(seed)
    rows, cols = obstacles.shape
    found = []
    for r0 in range(0, rows - spacing // 2, spacing):
        for c0 in range(0, cols - spacing // 2, spacing):
            r1, c1 = min(r0 + spacing, rows), min(c0 + spacing, cols)
            lo_r, hi_r = r0 + (r1 - r0) // 4, r1 - (r1 - r0) // 4
            lo_c, hi_c = c0 + (c1 - c0) // 4, c1 - (c1 - c0) // 4
            free = np.argwhere(obstacles[lo_r:hi_r, lo_c:hi_c] == 0)
            if len(free):
                i, j = free[rng.integers(len(free))]
                found.append((lo_r + int(i), lo_c + int(j)))
    return [BaseStation(cell_id=k + 1, row=r, col=c) for k, (r, c) in enumerate(found)]


def _whole_number(value: object) -> object:
    """An integer field: JSON integers and CSV digit strings; refuses booleans, fractions and other text (``true``
    must not become cell 1, nor ``4.7`` cell 4)."""
    if isinstance(value, bool) or isinstance(value, float):
        raise ValueError(f"must be a whole number, got {value!r}")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(f"must be a whole number, got {value!r}")
        return int(value.strip())
    return value


def _finite_number(value: object) -> object:
    """A real-valued field: a JSON number or a CSV number string, finite."""
    if isinstance(value, bool):
        raise ValueError(f"must be a number, got {value!r}")
    number = float(value.strip()) if isinstance(value, str) else value
    if isinstance(number, (int, float)) and not math.isfinite(number):
        raise ValueError(f"must be finite, got {value!r}")
    return number


WholeNumber = Annotated[int, BeforeValidator(_whole_number)]
FiniteNumber = Annotated[float, BeforeValidator(_finite_number)]


class BaseStationEntry(BaseModel):
    """One entry of an operator's BS list, in physical ranges. Optional fields left out (or empty in a CSV) take
    their defaults; a value given, 0 included, is kept."""

    model_config = ConfigDict(extra="forbid")  # a misspelt field would otherwise fall back to its default silently
    cell_id: WholeNumber = Field(ge=0, le=CELL_ID_MAX)
    lat: FiniteNumber | None = Field(None, ge=-90, le=90)
    lng: FiniteNumber | None = Field(None, ge=-180, le=180)
    row: FiniteNumber | None = None
    col: FiniteNumber | None = None
    height_m: FiniteNumber = Field(ANTENNA_HEIGHT_M, ge=0, le=500)
    tx_power_dbm: FiniteNumber = Field(23.0, ge=-50, le=80)

    @model_validator(mode="after")
    def _one_position(self) -> BaseStationEntry:
        geographic, grid = (self.lat, self.lng), (self.row, self.col)
        if None in geographic and None in grid:
            raise ValueError("a position is needed: lat and lng, or row and col")
        if any(v is not None for v in geographic) and any(v is not None for v in grid):  # which one would count?
            raise ValueError("give lat and lng, or row and col, not both")
        return self


def read_base_stations(path: Path, georef: Georeference) -> list[BaseStation]:
    """BSs from a CSV (header row) or JSON list of objects: ``cell_id``, ``lat``/``lng`` or ``row``/``col``,
    optional ``height_m``, ``tx_power_dbm`` (:class:`BaseStationEntry`)."""
    if not path.is_file():
        raise RadiolocError(f"--bs {path}: file not found (or use auto:SPACING)")
    try:
        if path.suffix.lower() == ".json":
            records = json.loads(path.read_text())
            if not isinstance(records, list):
                raise ValueError("expected a JSON list of objects")
        else:
            with path.open(newline="", encoding="utf-8-sig") as handle:  # a spreadsheet's byte-order mark is no header
                records = list(csv.DictReader(handle))
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise RadiolocError(f"--bs {path}: not a readable BS list ({exc})") from None
    stations = []
    for n, record in enumerate(records, start=1):
        where = f"--bs {path}, entry {n}"
        if not isinstance(record, dict):
            raise RadiolocError(f"{where}: not an object")
        if None in record:  # csv.DictReader's key for the values of a row longer than its header
            raise RadiolocError(f"{where}: more values than the header has columns ({', '.join(map(str, record[None]))} left over)")
        try:  # an empty CSV cell is a field left out
            entry = BaseStationEntry.model_validate({k: v for k, v in record.items() if k is not None and v not in (None, "")})
        except ValidationError as exc:
            field_name, message, kind = first_validation_error(exc)
            if kind == "extra_forbidden":
                raise RadiolocError(f"{where}: unknown field {field_name!r} (the fields are {', '.join(BaseStationEntry.model_fields)})") from None
            raise RadiolocError(f"{where}: " + (f"missing field {field_name!r} (cell_id, and lat/lng or row/col)" if kind == "missing" else
                                f"{field_name + ': ' if field_name else ''}{message}")) from None  # fmt: skip
        if entry.lat is not None and entry.lng is not None:
            row, col = georef.to_grid(entry.lat, entry.lng)
        else:
            row, col = entry.row, entry.col
        if not (np.isfinite(row) and np.isfinite(col)) or max(abs(row), abs(col)) > 1e7:
            raise RadiolocError(f"{where}: position ({row}, {col}) m is not on a city's grid")
        stations.append(BaseStation(entry.cell_id, int(round(float(row))), int(round(float(col))), entry.height_m, entry.tx_power_dbm))
    if not stations:
        raise RadiolocError(f"--bs {path}: no base stations listed")
    return stations


def check_base_stations(stations: list[BaseStation], obstacles: np.ndarray, where: str) -> None:
    rows, cols = obstacles.shape
    seen: set[int] = set()
    for bs in stations:
        if bs.cell_id in seen:
            raise RadiolocError(f"{where}: cell id {bs.cell_id} listed twice")
        seen.add(bs.cell_id)
        if not (0 <= bs.row < rows and 0 <= bs.col < cols):
            raise RadiolocError(f"{where}: cell {bs.cell_id} at ({bs.row}, {bs.col}) m is outside the {rows} x {cols} m area")
        if obstacles[bs.row, bs.col]:
            raise RadiolocError(f"{where}: cell {bs.cell_id} at ({bs.row}, {bs.col}) m is inside a building or a car")
    if not stations:
        raise RadiolocError(f"{where}: no base station in the area")


def _check_staged_position(path: Path, bs: BaseStation) -> None:
    """A BS's staged maps were simulated where ``stations.json`` places it (an edited placement is not silently
    served with the maps of the old position)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            position = stored["position"].tolist() if "position" in stored.files else None
    except NUMPY_READ_ERRORS as exc:
        raise RadiolocError(f"{path}: unreadable staging file ({numpy_read_reason(exc)}); delete it to redo its step") from None
    if position != [bs.row, bs.col]:
        raise RadiolocError(
            f"{path}: simulated at {position} but stations.json places cell {bs.cell_id} at [{bs.row}, {bs.col}]; delete it to simulate that BS again"
        )


def _read_staged_arrays(path: Path, keys: tuple[str, ...], masks: bool, shape: tuple[int, int] | None = None) -> dict[str, np.ndarray]:
    """2-D arrays of a build's staging ``.npz`` file (0/1 ``masks``, else uint8 gray levels) of ``shape``, or one
    line naming the file."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            arrays = {key: stored[key] for key in keys}
    except NUMPY_READ_ERRORS as exc:
        raise RadiolocError(f"{path}: unreadable staging file ({numpy_read_reason(exc)}); delete it to redo its step") from None
    for key, array in arrays.items():
        kind_ok = holds_a_mask(array) if masks else array.dtype == np.uint8
        if not kind_ok or array.ndim != 2 or (shape is not None and array.shape != shape):
            raise RadiolocError(f"{path}: corrupt staging file ({key}: {array.dtype} {array.shape}); delete it to redo its step")
    return arrays


# -- radio maps ---------------------------------------------------------------------------------------------
def _simulate_bs(args) -> tuple[int, float]:
    """Worker: one BS's maps (what the localizers see) and truth (:mod:`radioloc.deploy.radiomaps`), written to
    ``bs/<index>.npz``."""
    staging, index, row, col, maps_sim, truth_sim = args
    started = time.perf_counter()
    city = _read_staged_arrays(staging / "city.npz", ("buildings", "cars"), masks=True)
    area = AreaRadioMaps(city["buildings"], city["cars"])
    maps = area.gray(maps_sim, row, col)
    truth = maps if truth_sim == maps_sim else area.gray(truth_sim, row, col)
    atomic_write_npz(staging / "bs" / f"{index}.npz", maps=maps, truth=truth, position=np.array([row, col]))
    return index, time.perf_counter() - started


def build_deployment(store: DeploymentStore, spec: DeploymentSpec, workers: int = 1, replace: bool = False, quiet: bool = False,
                     scheduler: str | None = None) -> Deployment:  # fmt: skip
    """Build (or resume building) ``spec`` in the store and publish it (module docstring); the BSs' radio maps are
    tasks on ``workers`` local processes or on the Dask cluster at ``scheduler`` (:mod:`radioloc.cluster`)."""
    cluster = ClusterConfig(workers=workers, scheduler=scheduler)
    target = store.path(spec.id)
    store.restore_replaced(spec.id)
    if target.exists() and not replace:
        raise RadiolocError(f"deployment {spec.id!r} exists in {store.root} (delete it, or pass --replace to rebuild it)")
    if spec.maps.startswith("IRT") or spec.truth.startswith("IRT"):
        from radioloc.sionna_runtime import sionna_rt

        sionna_rt()  # fail fast, before any work, when the ray tracer cannot run here
    staging = store.staging(spec.id)
    staging.mkdir(parents=True, exist_ok=True)
    with folder_lock(staging, "deployment build"):  # a second build of the same id stops here, touching nothing
        try:
            return _build_locked(store, spec, staging, cluster, quiet)
        except RadiolocError as exc:
            refused = exc  # refused before any work (a bad city or BS list): no unfinished build to list
            if (staging / "stations.json").is_file() or (staging / "city.npz").is_file():
                raise
    shutil.rmtree(staging, ignore_errors=True)
    raise refused


def _build_locked(store: DeploymentStore, spec: DeploymentSpec, staging: Path, cluster: ClusterConfig, quiet: bool) -> Deployment:
    started = time.perf_counter()
    spec_file = staging / "spec.json"
    nothing_built = not (staging / "stations.json").is_file() and not (staging / "city.npz").is_file()
    if spec_file.is_file() and not nothing_built:  # a build that stopped before any work may be rerun with other settings
        previous = read_json_object(spec_file, "build specification")
        if previous != json.loads(json.dumps(spec.to_dict())):
            changed = sorted(k for k in previous if previous.get(k) != spec.to_dict().get(k))
            raise RadiolocError(
                f"deployment {spec.id!r}: an unfinished build with other settings ({', '.join(changed)}) is in {staging}; rerun it as it was, or `radioloc deploy delete {spec.id}`"
            )
    else:
        for leftover in staging.iterdir():  # files of a failed attempt with other settings must not be reused
            if leftover.name != LOCK_FILE and leftover.is_file():
                leftover.unlink()
        atomic_write_json(spec_file, spec.to_dict())

    # 1. the city and its BSs (a dataset map brings its maps too)
    dataset = parse_dataset_city(spec.city)
    if dataset is not None and not (staging / "survey.json").is_file():
        _from_dataset_map(staging, spec, *dataset)
    if not (staging / "city.npz").is_file():
        city = load_city(spec)
        rows, cols = city.buildings.shape
        if rows < WINDOW or cols < WINDOW:
            raise RadiolocError(f"--city {spec.city}: the area is {rows} x {cols} m; a deployment needs at least {WINDOW} x {WINDOW} m")
        cars = np.zeros_like(city.buildings)
        if spec.truth.endswith("cars"):
            cars = place_cars(city.buildings, spec.seed + 1, CarConfig(count=int(round(CARS_PER_TILE * rows * cols / MAP_SIZE**2))))
        origin = city.origin or spec.origin or DEFAULT_ORIGIN
        georef = Georeference(float(origin[0]), float(origin[1]), rows, cols)
        obstacles = city.buildings | cars
        if spec.base_stations.startswith("auto:"):
            try:
                spacing = int(spec.base_stations.removeprefix("auto:"))
            except ValueError:
                spacing = 0
            if not 32 <= spacing <= 1000:
                raise RadiolocError(f"--bs {spec.base_stations!r}: auto:SPACING needs a spacing of 32..1000 m")
            stations = auto_base_stations(obstacles, spacing, spec.seed)
        else:
            stations = read_base_stations(Path(spec.base_stations), georef)
        check_base_stations(stations, obstacles, f"--bs {spec.base_stations}")
        atomic_write_json(staging / "stations.json", {"georef": georef.to_dict(), "base_stations": [bs.to_dict() for bs in stations],
                                                      "city": {"source": city.source, "rows": rows, "cols": cols, "coverage": float(city.buildings.mean()), **city.extra}})  # fmt: skip
        atomic_write_npz(staging / "city.npz", buildings=city.buildings, cars=cars)
    placement = read_state(StationsFields, staging / "stations.json", "BS placement", "delete it (and city.npz) to place the BSs again")
    georef = Georeference.from_dict(placement.georef.model_dump())
    stations = [BaseStation(**bs.model_dump()) for bs in placement.base_stations]
    staged_city = _read_staged_arrays(staging / "city.npz", ("buildings", "cars"), masks=True, shape=(georef.rows, georef.cols))
    check_base_stations(stations, staged_city["buildings"] | staged_city["cars"], str(staging / "stations.json"))

    # 2. one BS at a time, resumable
    (staging / "bs").mkdir(exist_ok=True)
    arrays_done = all((staging / f"{name}.npy").is_file() for name in ARRAYS)
    todo = [] if arrays_done else [i for i in range(len(stations)) if not (staging / "bs" / f"{i}.npz").is_file()]
    jobs = [(staging, i, stations[i].row, stations[i].col, spec.maps, spec.truth) for i in todo]
    done = [len(stations) - len(todo)]
    _note_progress(staging, "radio maps", done[0], len(stations))

    def finished(_index: int, _result) -> None:
        done[0] += 1
        _note_progress(staging, "radio maps", done[0], len(stations))

    run_tasks(_simulate_bs, [(job,) for job in jobs], cluster, f"{spec.id}: radio maps ({spec.maps}, truth {spec.truth})", quiet, on_result=finished,
              total=len(stations), completed=done[0])  # fmt: skip

    # 3. arrays, survey, calibrations
    rows, cols = georef.rows, georef.cols
    if not all((staging / f"{name}.npy").is_file() for name in ARRAYS):
        city = _read_staged_arrays(staging / "city.npz", ("buildings", "cars"), masks=True, shape=(rows, cols))
        for i, bs in enumerate(stations):  # once per BS, before either stack is written
            _check_staged_position(staging / "bs" / f"{i}.npz", bs)
        for kind in ("maps", "truth"):
            stack = np.lib.format.open_memmap(staging / f".{kind}.npy.tmp", mode="w+", dtype=np.uint8, shape=(len(stations), rows, cols))
            for i in range(len(stations)):
                stack[i] = _read_staged_arrays(staging / "bs" / f"{i}.npz", (kind,), masks=False, shape=(rows, cols))[kind]
            stack.flush()
            del stack
            os.replace(staging / f".{kind}.npy.tmp", staging / f"{kind}.npy")
        atomic_write_npy(staging / "buildings.npy", city["buildings"].astype(np.uint8))
        atomic_write_npy(staging / "obstacles.npy", (city["buildings"] | city["cars"]).astype(np.uint8))
    config = DeploymentConfig(
        id=spec.id,
        name=spec.name or spec.id,
        georef=georef,
        base_stations=stations,
        maps=spec.maps,
        truth=spec.truth,
        localizers=list(spec.localizers),
        city=placement.city.model_dump(),
        provenance={"radioloc": __version__, "spec": spec.to_dict(), "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        estimate=placement.estimate or ("estimate" if spec.maps == "RadioUNet" else "true"),
        serving="shipped" if dataset is not None else "survey",
    )
    deployment = Deployment(config, staging, read_arrays(staging))
    if not (staging / "survey.json").is_file():
        from radioloc.deploy.serving import calibrate_deployment

        _note_progress(staging, "survey calibrations", 0, 1)
        survey = calibrate_deployment(deployment, staging, spec.survey, spec.seed, quiet)
        atomic_write_json(staging / "survey.json", survey)
    survey = read_state(SurveyFields, staging / "survey.json", "survey", "delete it to calibrate again").model_dump()
    config.radius_calibrations = survey.pop("radius_calibrations")
    config.survey = survey
    config.provenance["build_seconds"] = round(time.perf_counter() - started, 1)
    shutil.rmtree(staging / "bs", ignore_errors=True)
    save_config(staging, config)
    _check_servable(staging, spec)

    # 4. publish whole
    target = store.path(spec.id)
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() or target.is_symlink():
        old = store.replaced(spec.id)
        remove_folder(old)
        target.rename(old)
        staging.rename(target)
        remove_folder(old)  # a linked deployment: the link goes, never what it points to
    else:
        staging.rename(target)
    return store.load(spec.id)


def _check_servable(staging: Path, spec: DeploymentSpec) -> None:
    """The staged deployment read back as a reader will, with every serving localizer and its calibrations: a
    build resumed from damaged staging files stops here, before it replaces (or becomes) a published one."""
    from radioloc.deploy.serving import DeploymentLocator

    try:
        staged = load_deployment(staging, spec.id)
        for name in staged.config.localizers:
            DeploymentLocator(staged, name)
    except RadiolocError as exc:
        raise RadiolocError(
            f"deployment {spec.id!r}: the build in {staging} is damaged, nothing was published ({exc}); delete the file it names and rerun"
        ) from None


def _note_progress(staging: Path, stage: str, done: int, total: int) -> None:
    """``progress.json`` in the staging folder: what a job route shows while the build runs in another process."""
    atomic_write_json(staging / "progress.json", {"stage": stage, "done": done, "total": total})


def read_progress(store: DeploymentStore, deployment_id: str) -> dict | None:
    """The build's progress, or None when there is none to show (not started, or a damaged file: it is only advice,
    rewritten at the next step)."""
    try:
        return ProgressFields.model_validate_json((store.staging(deployment_id) / "progress.json").read_bytes()).model_dump()
    except (OSError, ValueError):  # pydantic's ValidationError is a ValueError
        return None
