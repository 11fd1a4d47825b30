"""Localization data: the scenes a localizer sees and the queries it answers.

A *scene* is one city map with its candidate base stations and the radio map of each, as the localizer knows
it (estimated, true or noisy). A *query* is one UE report: which BSs (candidate ids) and the pathloss (dB)
measured for each. Both come from one dataset split, so every localizer (learned or classical) is fitted and
evaluated on the same arrays:

- nominal scenario (``estimate="estimate"``): the UE reports the DPM truth at its pixel, the localizer sees
  the RadioUNet estimates ``DPM/estimate``;
- ``estimate="true"``: perfect radio maps;
- ``estimate="noisy:SIGMA"``: the truth plus i.i.d. Gaussian error of SIGMA dB per pixel (the map-mismatch
  model of the MLSP 2023 localization competition), drawn once per radio map from the dataset seed.

Pathloss follows :mod:`radioloc.propagation.graylevel` (negative dB); a BS is *detectable* when its
pathloss at the UE is above the noise floor. A BS that is not detectable is reported at the noise floor
(as RadioLocSeer's gray level 0); a BS absent from a query has id -1 and NaN pathloss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from rich.progress import Progress

from radioloc.datasets import layout
from radioloc.datasets.protocol import split_maps
from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import DB_PER_GRAY, MAX_PATHLOSS_DB, NOISE_FLOOR_DB, gray_to_db32

MAX_BS = 5
# Reported pathloss outside this range cannot come from a phone (gain convention: -95 dB, not 95 dB), or lies above
# the strongest level a radio map holds (the gray range's top, a phone at the BS itself, within half a gray step
# that rounds to it), so no map can explain it.
MIN_REPORTED_DB = -250.0
MAX_REPORTED_DB = MAX_PATHLOSS_DB + DB_PER_GRAY / 2
# Reports below the noise floor are kept and read as the floor: a radio map holds the floor (gray 0) wherever the
# pathloss is that low, so such a BS is explained by exactly those pixels.
FLOOR_NOTE = f"pathloss below the radio maps' noise floor ({NOISE_FLOOR_DB:.1f} dB) counts as the floor"


def below_floor_note(pathloss_db: list[float]) -> str | None:
    """A note for a user whose reports lie below the noise floor (how they are read), else None."""
    low = [f"{v:g}" for v in pathloss_db if v < NOISE_FLOOR_DB]
    return f"note: {', '.join(low)} dB: {FLOOR_NOTE}" if low else None


@dataclass
class SceneBank:
    """City maps and the radio maps a localizer sees, one slot per map."""

    map_ids: list[int]
    buildings: np.ndarray  # (M, 256, 256) uint8 0/1
    bs_positions: np.ndarray  # (M, n_bs, 2) int row, col of every candidate BS
    radio_maps: np.ndarray  # (M, n_bs, 256, 256) uint8 gray levels (0 = not detectable or building)
    # (M, n_bs, 256, 256) float32 dominant-path length in metres (NaN = no path), when ranging is attached
    # (:mod:`radioloc.datasets.ranging`): the ToA map a localizer that fuses ranges sees
    path_length_m: np.ndarray | None = None
    # a stable identity of each slot's city (e.g. a deployment's window corner), when the same city recurs in many
    # scene banks: per-scene work (the prior's pixels) is then cached across them
    slot_keys: tuple | None = None

    @property
    def n_bs(self) -> int:
        return self.bs_positions.shape[1]


@dataclass
class Queries:
    """UE reports. ``bs_ids`` -1 and ``pathloss_db`` NaN mark BSs absent from a query."""

    map_slot: np.ndarray  # (n,) int slot into the SceneBank
    bs_ids: np.ndarray  # (n, k<=5) int candidate ids, -1 = absent
    pathloss_db: np.ndarray  # (n, k) float32, the noise floor when not detectable, NaN when absent
    position: np.ndarray  # (n, 2) float true row, col in metres (NaN when unknown)
    bs_set: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (n,) dataset set index
    ue: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # (n,) dataset UE index
    ranges_m: np.ndarray | None = None  # (n, k) float64 ToA ranges in metres (NaN = none), when ranging is attached

    def __len__(self) -> int:
        return len(self.map_slot)

    @staticmethod
    def from_reports(map_slot, bs_ids, pathloss_db, scenes: SceneBank, field_name: str = "query") -> Queries:
        """Queries from user reports, checked (one-line errors) and padded to 5 BSs; positions unknown (NaN)."""
        slots = np.atleast_1d(np.asarray(map_slot, dtype=np.int64))
        given = np.atleast_2d(np.asarray(bs_ids))
        if given.size and np.issubdtype(given.dtype, np.integer) and (given < 0).any():
            q, j = np.argwhere(given < 0)[0]
            raise RadiolocError(f"{field_name} {q}: unknown BS id {int(given[q, j])} (ids are 0..{scenes.n_bs - 1})")
        ids, pathloss = validate_queries(np.atleast_2d(bs_ids), np.atleast_2d(pathloss_db), scenes.n_bs, field_name)
        if len(slots) != len(ids):
            raise RadiolocError(f"{field_name}: {len(slots)} map slots for {len(ids)} queries")
        if ((slots < 0) | (slots >= len(scenes.map_ids))).any():
            raise RadiolocError(f"{field_name}: map slot out of range 0..{len(scenes.map_ids) - 1}")
        pad = MAX_BS - ids.shape[1]
        if pad > 0:
            ids = np.pad(ids, ((0, 0), (0, pad)), constant_values=-1)
            pathloss = np.pad(pathloss, ((0, 0), (0, pad)), constant_values=np.nan)
        return Queries(slots, ids, pathloss, np.full((len(ids), 2), np.nan))

    def subset(self, index: np.ndarray) -> Queries:
        index = np.asarray(index)
        return Queries(
            self.map_slot[index],
            self.bs_ids[index],
            self.pathloss_db[index],
            self.position[index],
            self.bs_set[index] if len(self.bs_set) else self.bs_set,
            self.ue[index] if len(self.ue) else self.ue,
            None if self.ranges_m is None else self.ranges_m[index],
        )

    @staticmethod
    def concat(parts: list[Queries], slot_offsets: list[int] | None = None) -> Queries:
        """The queries of ``parts`` one after the other, map slots shifted by ``slot_offsets``."""
        offsets = slot_offsets or [0] * len(parts)
        ranges = [p.ranges_m for p in parts]
        return Queries(
            np.concatenate([p.map_slot + offset for p, offset in zip(parts, offsets)]),
            np.concatenate([p.bs_ids for p in parts]),
            np.concatenate([p.pathloss_db for p in parts]),
            np.concatenate([p.position for p in parts]),
            np.concatenate([p.bs_set for p in parts]),
            np.concatenate([p.ue for p in parts]),
            None if any(r is None for r in ranges) else np.concatenate(ranges),
        )

    def first_bs(self, count: int) -> Queries:
        """The same queries with only their first ``count`` BSs (the paper's 3-BS subsets); the rest absent."""
        if not 1 <= count <= self.bs_ids.shape[1]:
            raise RadiolocError(f"count must be 1..{self.bs_ids.shape[1]}, got {count}")
        ids = self.bs_ids.copy()
        pathloss = self.pathloss_db.copy()
        ids[:, count:] = -1
        pathloss[:, count:] = np.nan
        ranges = None
        if self.ranges_m is not None:
            ranges = self.ranges_m.copy()
            ranges[:, count:] = np.nan
        return Queries(self.map_slot, ids, pathloss, self.position, self.bs_set, self.ue, ranges)

    def detectable(self) -> np.ndarray:
        """(n, k) bool: present and above the noise floor."""
        return (self.bs_ids >= 0) & (np.nan_to_num(self.pathloss_db, nan=-np.inf) > NOISE_FLOOR_DB + 1e-3)

    def n_detectable(self) -> np.ndarray:
        return self.detectable().sum(axis=1)


@dataclass
class LocalizationData:
    scenes: SceneBank
    queries: Queries
    source: dict  # what was loaded: root, split, sims, estimate kind

    def subset(self, index: np.ndarray) -> LocalizationData:
        return LocalizationData(self.scenes, self.queries.subset(index), self.source)

    def with_queries(self, queries: Queries) -> LocalizationData:
        return LocalizationData(self.scenes, queries, self.source)

    def first_bs(self, count: int) -> LocalizationData:
        """The same data with each query keeping its first ``count`` BSs (itself when it has no more)."""
        return self if count >= self.queries.bs_ids.shape[1] else self.with_queries(self.queries.first_bs(count))


def validate_queries(bs_ids: np.ndarray, pathloss_db: np.ndarray, n_bs: int, field_name: str = "query") -> tuple[np.ndarray, np.ndarray]:
    """Check user-supplied reports; returns (ids int64, pathloss float32 clipped to the noise floor).

    One-line errors for: no BS or more than 5, unknown BS ids, NaN or out-of-range pathloss."""
    ids = np.asarray(bs_ids)
    pathloss = np.asarray(pathloss_db, dtype=np.float64)
    if ids.ndim != 2 or pathloss.shape != ids.shape:
        raise RadiolocError(f"{field_name}: bs ids and pathloss must be (n, k) arrays of the same shape, got {ids.shape} and {pathloss.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise RadiolocError(f"{field_name}: bs ids must be integers")
    present = ids >= 0
    counts = present.sum(axis=1)
    if ids.shape[1] > MAX_BS or (counts > MAX_BS).any():
        raise RadiolocError(f"{field_name}: at most {MAX_BS} BSs per query, got {int(max(ids.shape[1], counts.max()))}")
    if (counts < 1).any():
        raise RadiolocError(f"{field_name} {int(np.argmax(counts < 1))}: no BS (at least 1 is needed)")
    bad_id = present & (ids >= n_bs) | (ids < -1)
    if bad_id.any():
        q, j = np.argwhere(bad_id)[0]
        raise RadiolocError(f"{field_name} {q}: unknown BS id {int(ids[q, j])} (this scene has ids 0..{n_bs - 1})")
    ordered = np.sort(np.where(present, ids, -1 - np.arange(ids.shape[1])[None, :]), axis=1)
    repeated = (ordered[:, 1:] == ordered[:, :-1]).any(axis=1)
    if repeated.any():
        raise RadiolocError(f"{field_name} {int(np.argmax(repeated))}: BS id listed twice")
    reported = pathloss[present]
    if np.isnan(reported).any():
        q = int(np.argwhere(present & np.isnan(pathloss))[0, 0])
        raise RadiolocError(f"{field_name} {q}: pathloss is NaN")
    outside = present & ((pathloss < MIN_REPORTED_DB) | (pathloss > MAX_REPORTED_DB))
    if outside.any():
        q, j = np.argwhere(outside)[0]
        raise RadiolocError(
            f"{field_name} {q}: pathloss {pathloss[q, j]:g} dB out of range [{MIN_REPORTED_DB:g}, {MAX_REPORTED_DB:g}] (pathloss is negative dB, e.g. -95)"
        )
    clipped = np.where(present, np.maximum(np.nan_to_num(pathloss, nan=NOISE_FLOOR_DB), NOISE_FLOOR_DB), np.nan)
    return ids.astype(np.int64), clipped.astype(np.float32)


MAX_NOISE_SIGMA_DB = 100.0  # map noise beyond the whole gray range (about 100 dB) only saturates it


def parse_estimate(estimate: str) -> tuple[str, float]:
    """``estimate``, ``true`` or ``noisy:SIGMA`` -> (kind, sigma_db)."""
    if estimate in ("estimate", "true"):
        return estimate, 0.0
    if estimate.startswith("noisy:"):
        try:
            sigma = float(estimate.split(":", 1)[1])
        except ValueError:
            sigma = -1.0
        if not np.isfinite(sigma) or not 0 < sigma <= MAX_NOISE_SIGMA_DB:
            raise RadiolocError(f"--estimate noisy:SIGMA needs SIGMA in (0, {MAX_NOISE_SIGMA_DB:g}] dB, got {estimate!r}")
        return "noisy", sigma
    raise RadiolocError(f"--estimate must be 'estimate', 'true' or 'noisy:SIGMA_DB', got {estimate!r}")


def _splits(root: Path, n_maps: int) -> dict[str, list[int]]:
    manifest = layout.read_manifest(root)
    if manifest is not None:
        return {name: list(ids) for name, ids in manifest["split"].items()}
    return split_maps(n_maps)


def load_localization(
    root: str | Path,
    split: str,
    estimate: str = "estimate",
    sim: str = "DPM",
    measurement_sim: str | None = None,
    noise_seed: int = 0,
    quiet: bool = True,
    maps: list[int] | None = None,
) -> LocalizationData:
    """Every (map, BS set, UE) query of a split, with the radio maps the localizer sees.

    ``sim`` names the simulation of the radio maps (``DPM``), ``measurement_sim`` the one whose truth the UE
    reports (default: the same). ``maps`` (map ids) replaces the split's maps."""
    root = Path(root)
    if not root.is_dir():
        raise RadiolocError(f"{root}: dataset folder not found")
    kind, sigma = parse_estimate(estimate)
    measurement_sim = measurement_sim or sim
    positions = layout.read_positions(root)
    if positions.candidates is None:
        raise RadiolocError(f"{root / 'TxRx.mat'}: no candidate BS positions (candRow/candCol)")
    n_maps = positions.ue.shape[0]
    if maps is None:  # one split, or several joined with commas ("val,test")
        splits = _splits(root, n_maps)
        names = [name.strip() for name in split.split(",")]
        for name in names:
            if name not in splits:
                raise RadiolocError(f"split must be one of {', '.join(splits)} (or several, comma separated), got {split!r}")
        if len(set(names)) < len(names):
            raise RadiolocError(f"split {split!r}: a split named twice")
        maps = [m for name in names for m in splits[name]]
    elif any(not 0 <= m < n_maps for m in maps):
        raise RadiolocError(f"{root}: map ids must be 0..{n_maps - 1}, got {maps}")
    if not maps:
        raise RadiolocError(f"{root}: the {split} split has no maps")
    folder_kind = "estimate" if kind == "estimate" else "true"
    for folder in (root / sim / folder_kind, root / measurement_sim / "true"):
        if not folder.is_dir():
            hint = " (run `radioloc dataset estimate DIR` first)" if folder_kind == "estimate" and folder.name == "estimate" else ""
            raise RadiolocError(f"{folder}: missing folder, this dataset has no such radio maps{hint}")
    n_bs = positions.candidates.shape[1]
    n_sets, k = positions.bs_sets.shape[1:]
    n_ue = positions.ue.shape[1]
    radio_maps = np.empty((len(maps), n_bs, 256, 256), dtype=np.uint8)
    buildings = np.empty((len(maps), 256, 256), dtype=np.uint8)
    measured = np.empty((len(maps), n_bs, n_ue), dtype=np.uint8)
    with Progress(disable=quiet) as progress:
        task = progress.add_task(f"loading {split} ({sim}/{estimate})", total=len(maps))
        for slot, map_id in enumerate(maps):
            buildings[slot] = layout.read_gray_png(layout.building_path(root, map_id)) != 0
            rows, cols = positions.ue[map_id, :, 0], positions.ue[map_id, :, 1]
            rng = np.random.default_rng([noise_seed, map_id])
            for tx in range(n_bs):
                truth = layout.read_radio_map_png(layout.radio_map_path(root, measurement_sim, "true", map_id, tx))
                measured[slot, tx] = truth[rows, cols]
                if kind == "estimate" or sim != measurement_sim:
                    seen = layout.read_radio_map_png(layout.radio_map_path(root, sim, folder_kind, map_id, tx))
                else:
                    seen = truth
                if kind == "noisy":
                    noisy = seen.astype(np.float32) + rng.normal(0.0, sigma / DB_PER_GRAY, seen.shape).astype(np.float32)
                    seen = np.where(buildings[slot] != 0, 0, np.clip(np.round(noisy), 0, 255)).astype(np.uint8)
                radio_maps[slot, tx] = seen
            progress.advance(task)
    scenes = SceneBank(map_ids=list(maps), buildings=buildings, bs_positions=positions.candidates[maps], radio_maps=radio_maps)
    slot, bs_set, ue = (a.ravel() for a in np.meshgrid(np.arange(len(maps)), np.arange(n_sets), np.arange(n_ue), indexing="ij"))
    bs_ids = positions.bs_sets[np.asarray(maps)[slot], bs_set]  # (n, k)
    gray = measured[slot[:, None], bs_ids, ue[:, None]]
    pathloss = gray_to_db32(gray)
    position = positions.ue[np.asarray(maps)[slot], ue].astype(np.float64)
    queries = Queries(slot.astype(np.int64), bs_ids.astype(np.int64), pathloss, position, bs_set.astype(np.int64), ue.astype(np.int64))
    source = {"root": str(root), "split": split, "sim": sim, "measurement_sim": measurement_sim, "estimate": estimate, "bs_per_set": int(k)}
    return LocalizationData(scenes, queries, source)


def dataset_provenance(data: LocalizationData) -> list[dict]:
    """The datasets ``data`` was loaded from (each part of a joined one): folder, generation seed and maps, as a
    fitted artifact records them (so a benchmark can check it never saw an evaluation seed)."""
    sources = data.source.get("parts") or [data.source]
    provenance = []
    for source in sources:
        root = source.get("root")
        manifest = layout.read_manifest(Path(root)) if root and Path(root).is_dir() else None
        seed = (manifest or {}).get("config", {}).get("seed")
        provenance.append({"root": root, "split": source.get("split"), "seed": seed, "maps": len((manifest or {}).get("maps", []))})
    return provenance


def concat_localization(parts: list[LocalizationData]) -> LocalizationData:
    """One LocalizationData from several (e.g. the train splits of datasets generated with different seeds):
    scenes stacked, each part's map slots shifted past the previous parts'. The parts must have the same number
    of candidate BSs; ``source["parts"]`` lists what each one was."""
    if not parts:
        raise RadiolocError("concat_localization: no data to join")
    if len(parts) == 1:
        return parts[0]
    n_bs = {part.scenes.n_bs for part in parts}
    if len(n_bs) > 1:
        roots = ", ".join(f"{part.source.get('root', '?')}: {part.scenes.n_bs}" for part in parts)
        raise RadiolocError(f"datasets to join have different numbers of candidate BSs ({roots})")
    offsets = np.cumsum([0] + [len(part.scenes.map_ids) for part in parts[:-1]])
    scenes = SceneBank(
        map_ids=[m for part in parts for m in part.scenes.map_ids],
        buildings=np.concatenate([part.scenes.buildings for part in parts]),
        bs_positions=np.concatenate([part.scenes.bs_positions for part in parts]),
        radio_maps=np.concatenate([part.scenes.radio_maps for part in parts]),
        path_length_m=None if any(p.scenes.path_length_m is None for p in parts) else np.concatenate([p.scenes.path_length_m for p in parts]),
    )
    joined = Queries.concat([part.queries for part in parts], [int(o) for o in offsets])
    source = {**{key: value for key, value in parts[0].source.items() if key != "root"}, "parts": [part.source for part in parts]}
    return LocalizationData(scenes, joined, source)
