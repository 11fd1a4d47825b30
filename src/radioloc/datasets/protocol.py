"""The RadioLocSeer sampling protocol (LocUNet paper, Sec. III-B1): BS candidates, BS sets, UEs and the split."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from radioloc.city.grid import MAP_SIZE
from radioloc.errors import RadiolocError


@dataclass(frozen=True)
class ProtocolConfig:
    """Per-map sampling parameters; defaults are the paper's."""

    candidates_per_map: int = 80
    candidate_box: int = 150  # BS candidates lie in the middle candidate_box x candidate_box pixels
    sets_per_map: int = 50
    bs_per_set: int = 5
    min_bs_distance_m: float = 20.0
    ues_per_map: int = 200
    ue_box: int = 164

    def to_dict(self) -> dict:
        return asdict(self)


def middle_box(box_size: int, size: int = MAP_SIZE) -> tuple[int, int]:
    """First and last pixel index (inclusive) of the middle ``box_size`` pixels of a ``size`` grid."""
    start = (size - box_size) // 2
    return start, start + box_size - 1


UE_REGIONS = ("ue-box", "outdoor", "map")


def check_region(region: str, what: str) -> str:
    """``region`` when it is one of :data:`UE_REGIONS`; else a one-line error naming ``what`` asked for it."""
    if region not in UE_REGIONS:
        raise RadiolocError(f"{what} must be one of {', '.join(UE_REGIONS)}, got {region!r}")
    return region


def ue_region(buildings: np.ndarray, region: str = "ue-box", box_size: int | None = None) -> np.ndarray:
    """Bool mask (..., H, W) of where a UE may be: ``ue-box`` the outdoor pixels of the middle ``box_size`` (the
    protocol's 164) pixels, ``outdoor`` every outdoor pixel, ``map`` every pixel."""
    if check_region(region, "UE region (prior)") == "map":
        return np.ones(buildings.shape, dtype=bool)
    mask = buildings == 0
    if region == "ue-box":
        lo, hi = middle_box(box_size or ProtocolConfig().ue_box, buildings.shape[-1])
        box = np.zeros(buildings.shape[-2:], dtype=bool)
        box[lo : hi + 1, lo : hi + 1] = True
        mask = mask & box
    return mask


def _free_pixels_in_box(free: np.ndarray, box_size: int) -> np.ndarray:
    lo, hi = middle_box(box_size, free.shape[0])
    inside = np.zeros_like(free)
    inside[lo : hi + 1, lo : hi + 1] = True
    return np.argwhere(free & inside)


def largest_open_area(free: np.ndarray) -> np.ndarray:
    """The largest 4-connected open region: base stations in closed courtyards would reach nobody."""
    labels, count = ndimage.label(free)
    if count == 0:
        return free
    sizes = np.bincount(labels.ravel())[1:]
    return labels == (1 + int(np.argmax(sizes)))


def sample_candidates(free: np.ndarray, rng: np.random.Generator, config: ProtocolConfig, where: str) -> np.ndarray:
    """``candidates_per_map`` distinct open pixels (row, col) of the main open area, inside the candidate box."""
    pixels = _free_pixels_in_box(largest_open_area(free), config.candidate_box)
    if len(pixels) < config.candidates_per_map:
        raise RadiolocError(
            f"{where}: only {len(pixels)} open pixels in the middle {config.candidate_box} x {config.candidate_box} box, "
            f"need {config.candidates_per_map} base-station candidates"
        )
    return pixels[rng.choice(len(pixels), size=config.candidates_per_map, replace=False)]


def sample_bs_sets(candidates: np.ndarray, rng: np.random.Generator, config: ProtocolConfig, where: str) -> np.ndarray:
    """``sets_per_map`` sets of ``bs_per_set`` candidate indices, pairwise at least ``min_bs_distance_m`` apart."""
    k = config.bs_per_set
    diff = candidates[:, None, :].astype(float) - candidates[None, :, :]
    far = np.hypot(diff[..., 0], diff[..., 1]) >= config.min_bs_distance_m
    sets = np.empty((config.sets_per_map, k), dtype=np.int64)
    for s in range(config.sets_per_map):
        for _attempt in range(200):
            # Random greedy: visit candidates in random order, keep each that is far from all kept ones.
            chosen: list[int] = []
            for index in rng.permutation(len(candidates)):
                if all(far[index, j] for j in chosen):
                    chosen.append(int(index))
                    if len(chosen) == k:
                        break
            if len(chosen) == k:
                sets[s] = chosen
                break
        else:
            raise RadiolocError(
                f"{where}: cannot pick {k} base stations at least {config.min_bs_distance_m:g} m apart "
                f"among the {len(candidates)} candidates (too little open space in the middle box)"
            )
    return sets


def sample_ues(free: np.ndarray, detectable: np.ndarray, sets: np.ndarray, rng: np.random.Generator, config: ProtocolConfig, where: str) -> np.ndarray:
    """``ues_per_map`` open pixels in the UE box, each above the noise floor for at least one BS of every set.

    ``detectable`` is a (n_candidates, H, W) bool array: pixel above the noise floor for that candidate.
    """
    pixels = _free_pixels_in_box(free, config.ue_box)
    covered = np.ones(len(pixels), dtype=bool)
    det_at = detectable[:, pixels[:, 0], pixels[:, 1]]  # (n_candidates, n_pixels)
    for bs_set in sets:
        covered &= det_at[bs_set].any(axis=0)
    eligible = pixels[covered]
    if len(eligible) < config.ues_per_map:
        raise RadiolocError(
            f"{where}: only {len(eligible)} open pixels in the middle {config.ue_box} x {config.ue_box} box are covered by "
            f"every base-station set, need {config.ues_per_map} users"
        )
    return eligible[rng.choice(len(eligible), size=config.ues_per_map, replace=False)]


def split_maps(n_maps: int, seed: int = 42) -> dict[str, list[int]]:
    """Map indices per split: RadioLocSeer's 69/15/15 of 99 maps, the same proportions otherwise.

    For 99 maps this is exactly the published split (``arange(99)`` shuffled by NumPy's legacy generator
    seeded with 42; first 69 train, next 15 val, last 15 test).
    """
    order = np.arange(n_maps)
    np.random.RandomState(seed).shuffle(order)
    n_val = int(round(n_maps * 15 / 99))
    n_test = int(round(n_maps * 15 / 99))
    if n_maps >= 3:
        n_val, n_test = max(n_val, 1), max(n_test, 1)
    n_train = n_maps - n_val - n_test
    return {
        "train": sorted(order[:n_train].tolist()),
        "val": sorted(order[n_train : n_train + n_val].tolist()),
        "test": sorted(order[n_train + n_val :].tolist()),
    }
