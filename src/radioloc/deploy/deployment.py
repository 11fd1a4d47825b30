"""A deployment: an operator's area, its base stations and the radio maps its localizers see, without a dataset.

What it holds (one folder, see :class:`DeploymentStore`):

- ``deployment.json``: the typed :class:`DeploymentConfig`: id, name, the georeference
  (:class:`radioloc.deploy.georef.Georeference`), every BS (operator cell id, grid position, height, transmit
  power), which simulators made the localizers' maps and the simulated truth, which localizers serve it with their
  radius calibrations, and provenance;
- ``buildings.npy`` (H, W) uint8 0/1, ``maps.npy`` (n_bs, H, W) uint8 gray levels (what the localizers see),
  ``truth.npy`` (n_bs, H, W) gray levels of the simulated truth (what a phone there would report; the survey
  that fits the calibrations and ``/reports`` read it), ``obstacles.npy`` (H, W) where no phone can be
  (buildings and, in a ``DPMcars`` truth, cars). All are read memory-mapped: loading costs nothing;
- ``bayes.safetensors``: the ``bayes`` likelihood fitted on the deployment's survey.

**Windows.** Every localizer works on 256 x 256 m scenes (what LocUNet was trained on), and an area is larger. A
query is answered in the window centred on a coarse estimate: the ``bayes`` posterior over the whole area seen as
one 256 x 256 scene of coarser cells (:meth:`Deployment.overview`; a BS hundreds of metres away is heard along
its streets, so the centroid of the heard BSs, or the strongest one, misses the phone far more often), snapped to
a ``WINDOW_STEP`` grid so that nearby queries share windows, and moved inside the area. :meth:`Deployment.scenes`
cuts a :class:`SceneBank` with one slot per window whose BS ids are *local to the slot*: slot ``m`` holds the
maps of the BSs its queries report, ``radio_maps[m, j]`` the ``j``-th of them. A bank of many windows therefore
costs (windows x BSs per window) maps, never (windows x every BS of the area).
"""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from radioloc.city.grid import MAP_SIZE
from radioloc.datasets.layout import enclosing_artifact
from radioloc.datasets.localization import MAX_BS, LocalizationData, Queries, SceneBank
from radioloc.deploy.georef import Georeference
from radioloc.deploy.state import FORMAT, ID_REGEX, DeploymentFields
from radioloc.errors import RadiolocError
from radioloc.io import LOCK_FILE, NUMPY_READ_ERRORS, atomic_write_json, check_state, numpy_read_reason, read_json
from radioloc.propagation.graylevel import gray_to_db32

WINDOW = MAP_SIZE
WINDOW_STEP = 64
OVERVIEW_CELLS = 256  # cells per side of the coarse overview (4 m cells on a 1 km area)
ID_PATTERN = re.compile(ID_REGEX)
ARRAYS = ("buildings", "obstacles", "maps", "truth")
MASKS = ("buildings", "obstacles")
ANTENNA_HEIGHT_M = 1.5  # where the maps put every antenna (the dominant-path model is 2-D); a BS's height_m is recorded only
SURVEY_SILENT_ROUNDS = 20  # draws in a row without one phone that hears a BS: the truth hears nothing


class UnknownCells(RadiolocError):
    """No BS a query reports belongs to the deployment (the Geolocation API's 404 ``notFound``)."""


def default_home() -> Path:
    """Where deployments live unless told: ``$RADIOLOC_HOME``, else ``~/.local/share/radioloc``."""
    return Path(os.environ.get("RADIOLOC_HOME") or Path.home() / ".local" / "share" / "radioloc")


def resolve_home(home: Path | None) -> Path:
    """The home folder of deployments (``home``, else :func:`default_home`), refused when it cannot be one: a file
    or device, or a folder inside a dataset, deployment, experiments or demo folder, whose files only their own
    commands write (a home gets ``deployments/``, ``staging/`` and the service's ``radioloc.db``)."""
    source = "--home" if home is not None else ("RADIOLOC_HOME" if os.environ.get("RADIOLOC_HOME") else "the default home")
    home = Path(home) if home is not None else default_home()
    if home.exists() and not home.is_dir():
        raise RadiolocError(f"{source} {home}: not a folder; give the folder that holds (or will hold) the deployments")
    artifact = enclosing_artifact(home.resolve())
    if artifact is not None:
        raise RadiolocError(
            f"{source} {home}: {'is' if artifact == home.resolve() else 'lies in'} {artifact}, whose files only its own commands write; choose a folder outside it"
        )
    return home


def check_deployment_id(value: str, what: str = "deployment id") -> str:
    if not isinstance(value, str) or not ID_PATTERN.match(value):
        raise RadiolocError(f"{what} {value!r}: use 1 to 63 lower-case letters, digits and '-', starting with a letter or digit")
    return value


@dataclass(frozen=True)
class BaseStation:
    """One BS: the operator's cell id, its pixel on the grid (row, col metres), antenna height and transmit power."""

    cell_id: int
    row: int
    col: int
    height_m: float = ANTENNA_HEIGHT_M
    tx_power_dbm: float = 23.0  # the paper's Table II

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DeploymentConfig:
    id: str
    name: str
    georef: Georeference
    base_stations: list[BaseStation]
    maps: str  # the source of the radio maps the localizers see (DPM, RadioUNet, IRT2; radioloc.deploy.radiomaps)
    truth: str  # the simulator behind the simulated reports (DPMcars: the maps do not know where cars park)
    localizers: list[str]  # the first answers /v1/geolocate
    radius_calibrations: dict[str, dict] = field(default_factory=dict)  # localizer -> RadiusCalibration.to_dict()
    city: dict = field(default_factory=dict)  # source, size, building coverage
    survey: dict = field(default_factory=dict)  # the simulated survey's size and each localizer's error on it
    provenance: dict = field(default_factory=dict)
    # "true": the maps are a simulation; "estimate": RadioUNet estimates (a deployment of a dataset map)
    estimate: str = "true"
    # "survey": localizers calibrated on the deployment's simulated survey; "shipped": the shipped localizers and
    # calibrations exactly as `radioloc evaluate` runs them (a deployment of a dataset map)
    serving: str = "survey"
    format: str = FORMAT

    @property
    def shape(self) -> tuple[int, int]:
        return self.georef.rows, self.georef.cols

    def to_dict(self) -> dict:
        out = asdict(self)
        out["georef"] = self.georef.to_dict()
        return out

    @staticmethod
    def from_dict(data: object, where: str) -> DeploymentConfig:
        fields = check_state(DeploymentFields, data, where, "deployment")
        return DeploymentConfig(
            id=fields.id,
            name=fields.name,
            georef=Georeference.from_dict(fields.georef.model_dump()),
            base_stations=[BaseStation(**bs.model_dump()) for bs in fields.base_stations],
            maps=fields.maps,
            truth=fields.truth,
            localizers=list(fields.localizers),
            radius_calibrations=fields.radius_calibrations,
            city=fields.city.model_dump(),
            survey=fields.survey.model_dump(),
            provenance=fields.provenance,
            estimate=fields.estimate,
            serving=fields.serving,
        )


@dataclass
class WindowedQueries:
    """Queries cut into windows: ``data`` for the localizers (slot-local BS ids) and ``origins`` (windows, 2) of
    each slot's window on the area grid, to add back to the positions."""

    data: LocalizationData
    origins: np.ndarray
    used_bs: np.ndarray  # (n, k) deployment BS indices of each query's BSs (-1 = absent), strongest first

    def to_area(self, positions: np.ndarray) -> np.ndarray:
        return positions + self.origins[self.data.queries.map_slot]


class Deployment:
    """A loaded deployment (see the module docstring); arrays are memory-mapped."""

    def __init__(self, config: DeploymentConfig, root: Path | None, arrays: dict[str, np.ndarray]):
        self.config = config
        self.root = root
        self.buildings = arrays["buildings"]
        self.obstacles = arrays["obstacles"]
        self.maps = arrays["maps"]
        self.truth = arrays["truth"]
        self.cell_ids = np.array([bs.cell_id for bs in config.base_stations], dtype=np.int64)
        self.bs_positions = np.array([(bs.row, bs.col) for bs in config.base_stations], dtype=np.int64).reshape(-1, 2)
        self.tx_power_dbm = np.array([bs.tx_power_dbm for bs in config.base_stations], dtype=np.float64)
        self._index = {int(c): i for i, c in enumerate(self.cell_ids)}
        self._overview: tuple[SceneBank, int] | None = None
        self._overview_outdoor: np.ndarray | None = None
        rows, cols = config.shape
        if (
            self.buildings.shape != (rows, cols)
            or self.obstacles.shape != (rows, cols)
            or self.maps.shape != (len(self.cell_ids), rows, cols)
            or self.truth.shape != self.maps.shape
        ):
            raise RadiolocError(f"{root}: deployment arrays do not match its {len(self.cell_ids)} BSs on a {rows} x {cols} grid")
        if rows < WINDOW or cols < WINDOW:
            raise RadiolocError(f"{root}: a deployment needs at least {WINDOW} x {WINDOW} m, got {rows} x {cols}")

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def georef(self) -> Georeference:
        return self.config.georef

    # -- reports ------------------------------------------------------------------------------------------------
    def bs_index(self, cell_ids: np.ndarray) -> np.ndarray:
        """Deployment BS index of each cell id, -1 where the deployment has no such cell."""
        flat = np.asarray(cell_ids, dtype=np.int64).ravel()
        return np.array([self._index.get(int(c), -1) for c in flat], dtype=np.int64).reshape(np.shape(cell_ids))

    def reports_at(self, row: float, col: float) -> list[dict]:
        """What a phone at grid position (row, col) reports from the simulated truth: every BS it hears, strongest
        first, as ``{"cellId", "signalStrength" (dBm), "pathloss_db"}``."""
        i, j = int(round(float(row))), int(round(float(col)))
        rows, cols = self.config.shape
        if not (0 <= i < rows and 0 <= j < cols):
            raise RadiolocError(f"position ({row:.1f}, {col:.1f}) m is outside the deployment's {rows} x {cols} m area")
        if self.obstacles[i, j]:
            raise RadiolocError(f"position ({row:.1f}, {col:.1f}) m is inside a building or a car: no phone there")
        gray = np.asarray(self.truth[:, i, j])
        heard = np.flatnonzero(gray > 0)
        pathloss = gray_to_db32(gray[heard]).astype(np.float64)
        order = np.argsort(-pathloss, kind="stable")
        return [
            {"cellId": int(self.cell_ids[b]), "signalStrength": round(float(pathloss[o] + self.tx_power_dbm[b]), 2), "pathloss_db": float(pathloss[o])}
            for o, b in zip(order, heard[order])
        ]

    # -- windows ------------------------------------------------------------------------------------------------
    def strongest(self, cell_ids: np.ndarray, pathloss_db: np.ndarray, max_bs: int = MAX_BS) -> tuple[np.ndarray, np.ndarray]:
        """Per query, the deployment indices and pathloss of its ``max_bs`` strongest known BSs, in the order the
        report lists them (-1 / NaN pad at the end). Raises :class:`UnknownCells` naming the first query without any."""
        index = self.bs_index(cell_ids)
        pathloss = np.asarray(pathloss_db, dtype=np.float64)
        known = (index >= 0) & np.isfinite(pathloss)
        missing = ~known.any(axis=1)
        if missing.any():
            q = int(np.argmax(missing))
            raise UnknownCells(f"report {q}: none of its cells {[int(c) for c in np.asarray(cell_ids)[q] if c >= 0]} belongs to deployment {self.id!r}")
        key = np.where(known, pathloss, -np.inf)
        chosen = np.argsort(-key, axis=1, kind="stable")[:, :max_bs]
        keep = np.take_along_axis(known, chosen, axis=1)
        # back to the report's order (a localizer that reads BSs as channels answers as for the report itself)
        order = np.argsort(np.where(keep, chosen, chosen.shape[1] + index.shape[1] + chosen), axis=1, kind="stable")
        chosen, keep = np.take_along_axis(chosen, order, axis=1), np.take_along_axis(keep, order, axis=1)
        ids = np.where(keep, np.take_along_axis(index, chosen, axis=1), -1)
        values = np.where(keep, np.take_along_axis(pathloss, chosen, axis=1), np.nan)
        if ids.shape[1] < max_bs:
            pad = max_bs - ids.shape[1]
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            values = np.pad(values, ((0, 0), (0, pad)), constant_values=np.nan)
        return ids, values

    def window_origins(self, bs_index: np.ndarray, centres: np.ndarray | None = None, pathloss_db: np.ndarray | None = None) -> np.ndarray:
        """(n, 2) north-west corner of each query's window: centred on ``centres`` (a coarse estimate, area
        metres) or else on the query's strongest BS (by ``pathloss_db``; the first listed without it), snapped to
        ``WINDOW_STEP`` and moved inside the area."""
        if centres is None:
            first = np.zeros(len(bs_index), dtype=np.int64)
            if pathloss_db is not None:
                first = np.argmax(np.where(bs_index >= 0, np.nan_to_num(np.asarray(pathloss_db, dtype=np.float64), nan=-np.inf), -np.inf), axis=1)
            strongest = np.take_along_axis(bs_index, first[:, None], axis=1)[:, 0]
            centres = self.bs_positions[np.maximum(strongest, 0)].astype(np.float64)
        rows, cols = self.config.shape
        origin = np.rint((np.asarray(centres, dtype=np.float64) - (WINDOW - 1) / 2.0) / WINDOW_STEP) * WINDOW_STEP
        return np.clip(origin, 0, [rows - WINDOW, cols - WINDOW]).astype(np.int64)

    def overview(self) -> tuple[SceneBank, int]:
        """The whole area as one 256 x 256 scene of ``factor`` m cells (mean gray over each cell's outdoor pixels;
        a cell is a building when most of it is), every BS with its deployment index: where a coarse search
        chooses each query's window. Cached."""
        if self._overview is None:
            from radioloc.models.locunet import pool_to_cells

            rows, cols = self.config.shape
            factor = int(np.ceil(max(rows, cols) / OVERVIEW_CELLS))
            side = OVERVIEW_CELLS * factor
            buildings = np.ones((1, side, side), dtype=np.uint8)
            buildings[0, :rows, :cols] = self.obstacles
            pooled = np.zeros((1, len(self.cell_ids), OVERVIEW_CELLS, OVERVIEW_CELLS), dtype=np.uint8)
            for b in range(len(self.cell_ids)):
                gray = np.zeros((1, 1, side, side), dtype=np.uint8)
                gray[0, 0, :rows, :cols] = self.maps[b]
                pooled[0, b] = np.rint(pool_to_cells(gray, buildings, factor)[0][0, 0]).astype(np.uint8)
            fraction = pool_to_cells(np.zeros((1, 1, side, side), np.uint8), buildings, factor)[1]
            positions = (self.bs_positions // factor)[None]
            self._overview = (SceneBank([0], (fraction >= 0.5).astype(np.uint8), positions, pooled), factor)
        return self._overview

    def overview_outdoor(self) -> np.ndarray:
        """Flat indices of the overview's outdoor cells (ascending): where a phone can be (every cell when none is
        mostly outdoor: narrow streets in a dense city). Cached."""
        if self._overview_outdoor is None:
            buildings = self.overview()[0].buildings[0].ravel()
            outdoor = np.flatnonzero(buildings == 0)
            self._overview_outdoor = outdoor if len(outdoor) else np.arange(len(buildings))
        return self._overview_outdoor

    def scenes(self, bs_index: np.ndarray, pathloss_db: np.ndarray, origins: np.ndarray, positions: np.ndarray | None = None,
               source: dict | None = None) -> WindowedQueries:  # fmt: skip
        """The queries (deployment BS indices, strongest first; pathloss dB) cut into their windows (``origins``
        (n, 2), see :meth:`window_origins`), with true area positions when known (the survey)."""
        n, k = bs_index.shape
        windows, slot = np.unique(origins, axis=0, return_inverse=True)
        slot = slot.ravel()
        local = np.full_like(bs_index, -1)
        members: list[np.ndarray] = []
        for w in range(len(windows)):
            mine = slot == w
            used = np.unique(bs_index[mine][bs_index[mine] >= 0])
            members.append(used)
            lookup = np.searchsorted(used, np.where(bs_index[mine] >= 0, bs_index[mine], used[0]))
            local[mine] = np.where(bs_index[mine] >= 0, lookup, -1)
        width = max(len(m) for m in members)
        maps = np.zeros((len(windows), width, WINDOW, WINDOW), dtype=np.uint8)
        bs_positions = np.zeros((len(windows), width, 2), dtype=np.int64)
        buildings = np.empty((len(windows), WINDOW, WINDOW), dtype=np.uint8)
        for w, (r0, c0) in enumerate(windows):
            buildings[w] = self.buildings[r0 : r0 + WINDOW, c0 : c0 + WINDOW]
            maps[w, : len(members[w])] = self.maps[members[w], r0 : r0 + WINDOW, c0 : c0 + WINDOW]
            bs_positions[w, : len(members[w])] = self.bs_positions[members[w]] - (r0, c0)
        scenes = SceneBank(list(range(len(windows))), buildings, bs_positions, maps, slot_keys=tuple((self.id, int(r0), int(c0)) for r0, c0 in windows))
        truth = np.full((n, 2), np.nan) if positions is None else np.asarray(positions, dtype=np.float64) - windows[slot]
        queries = Queries(slot.astype(np.int64), local, np.asarray(pathloss_db, dtype=np.float32), truth)
        source = source or self.source()
        return WindowedQueries(LocalizationData(scenes, queries, source), windows.astype(np.float64), bs_index)

    def source(self, measurement: str | None = None) -> dict:
        """What localizers check their calibration against: the maps they see, and the truth reported (None: user
        reports, whose truth nobody knows)."""
        return {"deployment": self.id, "sim": self.config.maps, "estimate": self.config.estimate, "measurement_sim": measurement}

    # -- survey: simulated phones on the truth -----------------------------------------------------------------
    def survey(self, count: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``count`` phones at random outdoor pixels that hear at least one BS: (positions (n, 2), deployment BS
        indices (n, 5), pathloss (n, 5)), the strongest 5 BSs of each from the simulated truth, strongest first."""
        rng = np.random.default_rng(seed)
        free = np.flatnonzero(~np.asarray(self.obstacles, dtype=bool).ravel())
        picks = []
        chosen, silent_rounds = 0, 0
        while chosen < count:
            if len(free) == 0 or silent_rounds == SURVEY_SILENT_ROUNDS:  # a damaged truth or obstacle map: never loop forever
                raise RadiolocError(f"{self.root}: no outdoor pixel hears a BS in the simulated truth (the deployment is damaged: delete and create it again)")
            # random order kept: the first ``count`` heard must be a random sample, not the northern rows
            pixels = rng.choice(free, size=min(len(free), 2 * (count - chosen)), replace=False)
            order = np.argsort(pixels)  # the memory-mapped truth is read in file order, then put back
            gray = np.empty((len(pixels), len(self.cell_ids)), dtype=np.uint8)
            gray[order] = np.asarray(self.truth.reshape(len(self.cell_ids), -1)[:, pixels[order]]).T
            heard = (gray > 0).any(axis=1)
            silent_rounds = 0 if heard.any() else silent_rounds + 1
            picks.append((pixels[heard][: count - chosen], gray[heard][: count - chosen]))
            chosen += min(int(heard.sum()), count - chosen)
        pixels = np.concatenate([p for p, _ in picks])
        gray = np.concatenate([g for _, g in picks])
        pathloss = np.where(gray > 0, gray_to_db32(gray), np.nan)
        # listed strongest first, as a phone reports them: the first k are then its k strongest
        order = np.argsort(-np.nan_to_num(pathloss, nan=-np.inf), axis=1, kind="stable")
        cells = np.take_along_axis(np.broadcast_to(self.cell_ids, gray.shape), order, axis=1)
        ids, values = self.strongest(cells, np.take_along_axis(pathloss, order, axis=1))
        positions = np.column_stack(np.divmod(pixels, self.config.shape[1])).astype(np.float64)
        return positions, ids, values


def remove_folder(path: Path) -> None:
    """Remove a folder radioloc made, or only the link when ``path`` is a symbolic link (``shutil.rmtree`` refuses
    links, and with ``ignore_errors`` would leave one behind without a word)."""
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


class DeploymentStore:
    """Deployments under ``ROOT/deployments/<id>``; ``ROOT/staging/<id>`` holds builds in progress (never served)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def path(self, deployment_id: str) -> Path:
        return self.root / "deployments" / check_deployment_id(deployment_id)

    def staging(self, deployment_id: str) -> Path:
        return self.root / "staging" / check_deployment_id(deployment_id)

    def replaced(self, deployment_id: str) -> Path:
        """Where a published deployment waits while a rebuild takes its place (removed once the new one is in)."""
        return self.root / "deployments" / f".replaced-{check_deployment_id(deployment_id)}"

    def restore_replaced(self, deployment_id: str) -> None:
        """Undo a swap that a kill cut between its two renames: the old deployment goes back in place, whole (the
        rebuild, still complete in staging, is published again by the next ``deploy create --replace``)."""
        path, old = self.path(deployment_id), self.replaced(deployment_id)
        if old.is_dir() and not path.exists() and not path.is_symlink():
            old.rename(path)

    def ids(self) -> list[str]:
        folder = self.root / "deployments"
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".") and (p / "deployment.json").is_file()) if folder.is_dir() else []

    def pending(self) -> list[str]:
        folder = self.root / "staging"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def load(self, deployment_id: str) -> Deployment:
        path = self.path(deployment_id)
        self.restore_replaced(deployment_id)
        if not (path / "deployment.json").is_file():
            hint = " (its build has not finished: rerun `radioloc deploy create` to resume it)" if self.staging(deployment_id).is_dir() else ""
            raise RadiolocError(f"no deployment {deployment_id!r} in {self.root}{hint}")
        return load_deployment(path, deployment_id)

    def delete(self, deployment_id: str) -> None:
        path, staging = self.path(deployment_id), self.staging(deployment_id)
        if not path.exists() and not path.is_symlink() and not staging.exists():
            raise RadiolocError(f"no deployment {deployment_id!r} in {self.root}")
        for folder, marker in ((path, "deployment.json"), (staging, "spec.json")):
            ours = folder.is_dir() and ((folder / marker).is_file() or {entry.name for entry in folder.iterdir()} <= {LOCK_FILE})
            if folder.exists() and not folder.is_symlink() and not ours:
                # only what radioloc made is removed: a folder (or file) a user put there is left alone
                raise RadiolocError(f"{folder}: not a deployment (no {marker}); remove it yourself if it is to go")
        for folder in (path, staging):
            if folder.is_symlink():  # a linked deployment: remove the link, never what it points to
                folder.unlink()
            elif folder.exists():
                # rename first: a reader sees the whole deployment or none of it
                doomed = folder.with_name(f".deleting-{folder.name}")
                shutil.rmtree(doomed, ignore_errors=True)
                folder.rename(doomed)
                shutil.rmtree(doomed)
        remove_folder(self.replaced(deployment_id))  # an old copy a cut swap left behind must not come back


def load_deployment(path: str | Path, expected_id: str | None = None) -> Deployment:
    path = Path(path)
    where = path / "deployment.json"
    data = read_json(where, missing=f"{path}: not a deployment folder (no deployment.json)")
    config = DeploymentConfig.from_dict(data, str(where))
    if expected_id is not None and config.id != expected_id:
        raise RadiolocError(f"{where}: corrupt deployment (id: {config.id!r}, but it is the folder of {expected_id!r})")
    return Deployment(config, path, read_arrays(path))


def holds_a_mask(array: np.ndarray) -> bool:
    """Whether ``array`` is a 0/1 mask (bool or unsigned integers holding 0 and 1 only)."""
    return array.dtype.kind in "bu" and (array.size == 0 or int(array.max()) <= 1)


def read_arrays(folder: Path) -> dict[str, np.ndarray]:
    """A deployment's arrays, memory-mapped: uint8 each (gray levels, 0/1 masks), masks holding 0 and 1 only."""
    arrays = {}
    for name in ARRAYS:
        file = folder / f"{name}.npy"
        try:
            arrays[name] = np.load(file, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise RadiolocError(f"{file}: missing (the deployment is damaged: delete and create it again)") from None
        except NUMPY_READ_ERRORS as exc:
            raise RadiolocError(f"{file}: not a readable array ({numpy_read_reason(exc)})") from None
        if arrays[name].dtype != np.uint8:
            raise RadiolocError(f"{file}: {arrays[name].dtype} values, uint8 expected (the deployment is damaged: delete and create it again)")
        if name in MASKS and not holds_a_mask(arrays[name]):
            raise RadiolocError(f"{file}: values other than 0 and 1 in a mask (the deployment is damaged: delete and create it again)")
    return arrays


def save_config(path: Path, config: DeploymentConfig) -> None:
    atomic_write_json(path / "deployment.json", config.to_dict())
