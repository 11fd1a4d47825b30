"""The on-disk layout shared by radioloc datasets and the real RadioLocSeer data set.

::

    DIR/
      manifest.json                  radioloc only: version, every parameter and seed, split, gray conversion
      buildings/{map}.png            0/255 building mask
      cars/{map}.png                 0/255 car mask
      heights/{map}.npz              radioloc only, when known (real cities): heights (256, 256) float32 metres,
                                     NaN = unknown; the ray tracer uses them instead of the default 25 m
      {SIM}/true/{map}_{tx}.png      simulated pathloss, gray levels (radioloc.propagation.graylevel)
      {SIM}/estimate/{map}_{tx}.png  radio-map estimates (RadioUNet), same convention
      {SIM}/toa/{map}.npz            radioloc only: toa_ns (n_tx, 256, 256) float32 (NaN = no path) and
                                     line_of_sight (n_tx, 256, 256) bool, of the dominant paths
      TxRx.mat                       positions (MATLAB v5, the RadioLocSeer keys, 1-based row/col):
                                     rxx, rxy (n_maps x n_ue), antList (n_sets x n_maps x k, tx ids 1..80),
                                     antX, antY (n_sets x k x n_maps); radioloc adds candRow, candCol
                                     (n_maps x 80) and mapIds
      maps/{map}.json                radioloc only: per-map record, written last (marks the map complete)

SIM is ``DPM`` or ``DPMcars`` (dominant path without / with cars), ``IRT2`` or ``IRT2cars`` (Sionna RT ray
tracing, :mod:`radioloc.propagation.raytracing`, without / with cars; no ``toa`` folder).
The real data set ships its positions as ``my_fileCorr.npy`` (a pickled dict with the same keys); it is read
only when no ``TxRx.mat`` exists.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image, UnidentifiedImageError

from radioloc.city.grid import MAP_SIZE
from radioloc.datasets.state import ManifestFields
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_bytes, check_state

SIMULATIONS = ("DPM", "DPMcars", "IRT2", "IRT2cars")
TOA_SIMULATIONS = ("DPM", "DPMcars")  # the dominant-path model gives each pixel its path length; the ray tracer writes none
RAY_TRACED = ("IRT2", "IRT2cars")
POSITION_KEYS = ("rxx", "rxy", "antList", "antX", "antY")


def building_path(root: Path, map_id: int) -> Path:
    return root / "buildings" / f"{map_id}.png"


def heights_path(root: Path, map_id: int) -> Path:
    return root / "heights" / f"{map_id}.npz"


def cars_path(root: Path, map_id: int) -> Path:
    return root / "cars" / f"{map_id}.png"


def radio_map_path(root: Path, sim: str, kind: str, map_id: int, tx: int) -> Path:
    return root / sim / kind / f"{map_id}_{tx}.png"


def toa_path(root: Path, sim: str, map_id: int) -> Path:
    return root / sim / "toa" / f"{map_id}.npz"


def map_record_path(root: Path, map_id: int) -> Path:
    return root / "maps" / f"{map_id}.json"


def read_gray_png(path: Path, modes: tuple[str, ...] = ("L", "1", "P")) -> np.ndarray:
    """A 256 x 256 uint8 gray image, with a one-line error naming the file when it is missing or corrupt, or not
    in one of the PIL ``modes`` (building and car masks may be 1-bit or palette images)."""
    try:
        with Image.open(path) as image:
            image.load()
            if image.size != (MAP_SIZE, MAP_SIZE):
                raise RadiolocError(f"{path}: expected {MAP_SIZE} x {MAP_SIZE} pixels, got {image.size[0]} x {image.size[1]}")
            if image.mode not in modes:
                raise RadiolocError(f"{path}: expected an 8-bit gray PNG, got mode {image.mode}")
            return np.asarray(image.convert("L"))
    except FileNotFoundError:
        raise RadiolocError(f"{path}: missing file") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise RadiolocError(f"{path}: corrupt or unreadable PNG ({exc})") from None


def read_radio_map_png(path: Path) -> np.ndarray:
    """A radio map: 256 gray levels of pathloss, so only an 8-bit gray PNG (a 1-bit image holds no levels)."""
    return read_gray_png(path, modes=("L",))


MAT_HEADER_TEXT_BYTES = 116  # MAT-file level 5: descriptive text, then subsystem offset, version, endianness
MAT_HEADER_TEXT = "MATLAB 5.0 MAT-file, written by radioloc"


def write_positions(root: Path, positions: dict[str, np.ndarray]) -> None:
    import io

    buffer = io.BytesIO()
    scipy.io.savemat(buffer, positions, do_compression=True)
    data = buffer.getvalue()
    # the MAT header's 116 text bytes carry the time of writing: a fixed text makes the file depend on the data only
    header = MAT_HEADER_TEXT.ljust(MAT_HEADER_TEXT_BYTES).encode("ascii")
    atomic_write_bytes(root / "TxRx.mat", header + data[MAT_HEADER_TEXT_BYTES:])


@dataclass
class Positions:
    """Zero-based positions of one data set (see :mod:`radioloc.city.grid` for the convention)."""

    ue: np.ndarray  # (n_maps, n_ue, 2) row, col
    bs_sets: np.ndarray  # (n_maps, n_sets, k) candidate (tx) ids, 0-based
    bs: np.ndarray  # (n_maps, n_sets, k, 2) row, col of each set's BSs
    candidates: np.ndarray | None  # (n_maps, n_candidates, 2) or None (the real data set does not list them)


def _pixel_numbers(data: dict, key: str, source: Path) -> np.ndarray:
    """A positions field as int64: whole numbers only (a NaN or 3.5 is no pixel or BS number)."""
    try:
        values = np.asarray(data[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise RadiolocError(f"{source}: {key} holds values that are not numbers") from None
    if not np.isfinite(values).all() or (values != np.round(values)).any() or (np.abs(values) > 2**31).any():
        raise RadiolocError(f"{source}: {key} holds values that are not whole pixel or BS numbers")
    return values.astype(np.int64)


def read_positions(root: Path) -> Positions:
    """Read ``TxRx.mat`` (radioloc or RadioLocSeer) or, failing that, RadioLocSeer's ``my_fileCorr.npy``."""
    mat_path = root / "TxRx.mat"
    npy_path = root / "my_fileCorr.npy"
    if mat_path.exists():
        try:
            data = scipy.io.loadmat(mat_path)
        except Exception as exc:  # scipy raises several types on damaged files
            raise RadiolocError(f"{mat_path}: corrupt positions file ({exc})") from None
        source = mat_path
    elif npy_path.exists():
        try:
            # The published file is a pickled dict; it is only loaded from a data set the user chose to read.
            data = np.load(npy_path, allow_pickle=True).item()
        except Exception as exc:
            raise RadiolocError(f"{npy_path}: corrupt positions file ({exc})") from None
        source = npy_path
    else:
        raise RadiolocError(f"{root}: no positions file (TxRx.mat or my_fileCorr.npy)")
    missing = [key for key in POSITION_KEYS if key not in data]
    if missing:
        raise RadiolocError(f"{source}: missing field(s) {', '.join(missing)}")
    rxx, rxy = _pixel_numbers(data, "rxx", source), _pixel_numbers(data, "rxy", source)
    ant_list = _pixel_numbers(data, "antList", source)  # (n_sets, n_maps, k)
    ant_x = _pixel_numbers(data, "antX", source)  # (n_sets, k, n_maps)
    ant_y = _pixel_numbers(data, "antY", source)
    if rxx.shape != rxy.shape or ant_list.ndim != 3 or ant_x.shape != ant_y.shape or ant_x.ndim != 3:
        raise RadiolocError(f"{source}: inconsistent shapes rxx {rxx.shape}, rxy {rxy.shape}, antList {ant_list.shape}, antX {ant_x.shape}")
    ue = np.stack([rxx, rxy], axis=-1) - 1
    bs_sets = np.transpose(ant_list, (1, 0, 2)) - 1
    bs = np.stack([np.transpose(ant_x, (2, 0, 1)), np.transpose(ant_y, (2, 0, 1))], axis=-1) - 1
    candidates = None
    if "candRow" in data and "candCol" in data:
        candidates = np.stack([_pixel_numbers(data, "candRow", source), _pixel_numbers(data, "candCol", source)], axis=-1) - 1
        if bs_sets.size and (bs_sets.min() < 0 or bs_sets.max() >= candidates.shape[-2]):
            raise RadiolocError(f"{source}: antList names candidate {int(bs_sets.max()) + 1 if bs_sets.max() >= candidates.shape[-2] else int(bs_sets.min()) + 1}, "
                                f"outside the 1..{candidates.shape[-2]} candidates of candRow/candCol")  # fmt: skip
        if candidates.size and (candidates.min() < 0 or candidates.max() >= MAP_SIZE):
            raise RadiolocError(f"{source}: candRow/candCol outside the 1..{MAP_SIZE} pixel range")
    for name, array in (("rxx/rxy", ue), ("antX/antY", bs)):
        if array.size and (array.min() < 0 or array.max() >= MAP_SIZE):
            raise RadiolocError(f"{source}: {name} outside the 1..{MAP_SIZE} pixel range")
    return Positions(ue=ue, bs_sets=bs_sets, bs=bs, candidates=candidates)


def read_manifest(root: Path) -> dict | None:
    """The radioloc manifest, or None for a data set without one (the real RadioLocSeer layout)."""
    path = root / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RadiolocError(f"{path}: corrupt manifest ({exc})") from None
    if not isinstance(manifest, dict):
        raise RadiolocError(f"{path}: corrupt manifest (a JSON object is expected)")
    for key in ("maps", "split", "simulations"):
        if key not in manifest:
            raise RadiolocError(f"{path}: missing field '{key}'")
    check_state(ManifestFields, manifest, path, "manifest")
    return manifest


# Folders of the jobs that hold datasets and results of their own (an experiments run, a demo), by the entries that
# mark them: no other command writes into them. Training run folders are not among them: a fitted checkpoint goes
# beside best.pt.
JOB_FOLDER_MARKERS = (("scale.json", "results"), ("demo_config.json", "dataset"))


def enclosing_artifact(path: Path) -> Path | None:
    """The dataset (``manifest.json`` beside ``TxRx.mat`` or ``buildings/``), deployment (``deployment.json``),
    experiments or demo folder (:data:`JOB_FOLDER_MARKERS`) that ``path`` lies in or is, the nearest one; None
    outside every such folder."""
    for folder in (path, *path.parents):
        if (folder / "deployment.json").is_file() or any(all((folder / name).exists() for name in marker) for marker in JOB_FOLDER_MARKERS):
            return folder
        if (folder / "manifest.json").is_file() and ((folder / "TxRx.mat").is_file() or (folder / "buildings").is_dir()):
            return folder
    return None
