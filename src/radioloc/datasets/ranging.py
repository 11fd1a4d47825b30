"""Time-of-arrival ranging (RadioToASeer): dominant-path lengths, noisy UE ranges and the NLOS bias of Fig. 1.

The dataset stores, per map and candidate BS, the delay of the dominant path at every pixel (``{SIM}/toa``, ns,
NaN where no path reaches). A UE that measures the ToA of BS i reports the range

    d_i = c * tau_i + sigma * n_i,   n_i ~ N(0, 1),

as in the paper's ToA comparison (Sec. V-F): the dominant-path length plus Gaussian noise standing for clock,
quantization and thermal errors. No NLOS bias is added: it is already in the path length, which exceeds the
straight-line distance wherever the dominant path bends. The paper assumes every BS's ToA is available, also below
the pathloss noise floor; a BS without any path to the UE (NaN delay) gives no range (NaN), so its localizers drop
it, as the authors' code does.

:func:`attach_ranges` adds the ranges to the queries of a :class:`LocalizationData` and the path-length maps of
the BSs to its scenes (what a localizer fusing RSS and ToA sees: the path lengths are a deterministic function of
the city map and the BS position, computed like the radio maps). :func:`nlos_bias` gives the bias statistics of
Fig. 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radioloc.city.grid import MAP_SIZE
from radioloc.datasets import layout
from radioloc.datasets.localization import LocalizationData, Queries, SceneBank
from radioloc.errors import RadiolocError
from radioloc.io import NUMPY_READ_ERRORS, numpy_read_reason
from radioloc.propagation.dpm import SPEED_OF_LIGHT

NS_TO_M = SPEED_OF_LIGHT * 1e-9


def read_path_lengths(root: Path, map_id: int, sim: str = "DPM", transmitters: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(n_tx, 256, 256) float32 dominant-path length in metres (NaN = no path) and the line-of-sight flags; a file
    of another shape (or another number of ``transmitters`` than the map has) is refused."""
    path = layout.toa_path(root, sim, map_id)
    if not path.is_file():
        if sim in layout.TOA_SIMULATIONS:
            raise RadiolocError(
                f"{path}: missing ToA file of map {map_id} (the dataset is incomplete: `radioloc dataset verify {root} --repair` says how to remake it)"
            )
        raise RadiolocError(f"{path}: no ToA file ({sim} makes none; ToA comes with {' and '.join(layout.TOA_SIMULATIONS)})")
    try:
        with np.load(path) as stored:
            toa_ns, los = stored["toa_ns"], stored["line_of_sight"]
    except NUMPY_READ_ERRORS as exc:
        raise RadiolocError(f"{path}: unreadable ToA file ({numpy_read_reason(exc)})") from None
    expected = (transmitters if transmitters is not None else toa_ns.shape[0], MAP_SIZE, MAP_SIZE)
    if toa_ns.shape != expected or los.shape != expected or toa_ns.dtype.kind != "f":
        raise RadiolocError(f"{path}: corrupt ToA file (toa_ns {toa_ns.dtype} {toa_ns.shape} and line_of_sight {los.shape}, float {expected} expected)")
    with np.errstate(invalid="ignore"):
        if np.isinf(toa_ns).any() or (toa_ns < 0).any():  # NaN is "no path"; a negative or infinite delay is no delay
            raise RadiolocError(f"{path}: corrupt ToA file (negative or infinite delays in toa_ns)")
    # every BS reaches at least its own pixel: a transmitter without any path is a damaged file, not a city
    if toa_ns.size and np.isnan(toa_ns.reshape(len(toa_ns), -1)).all(axis=1).any():
        raise RadiolocError(f"{path}: corrupt ToA file (a transmitter with no path to any pixel, not even its own)")
    return (toa_ns.astype(np.float64) * NS_TO_M).astype(np.float32), los.astype(bool)


def attach_ranges(data: LocalizationData, sigma_m: float, seed: int = 0, sim: str = "DPM") -> LocalizationData:
    """``data`` with ToA ranges for every query (noise ``sigma_m`` drawn from ``seed``) and the path-length maps."""
    if not np.isfinite(sigma_m) or sigma_m < 0:
        raise RadiolocError(f"ToA noise sigma must be >= 0 m, got {sigma_m}")
    root = Path(data.source.get("root", ""))
    scenes, q = data.scenes, data.queries
    lengths = np.empty(scenes.radio_maps.shape, dtype=np.float32)
    for slot, map_id in enumerate(scenes.map_ids):
        lengths[slot] = read_path_lengths(root, map_id, sim, transmitters=lengths.shape[1])[0]
    rows = np.clip(np.round(q.position[:, 0]).astype(np.int64), 0, lengths.shape[-2] - 1)
    cols = np.clip(np.round(q.position[:, 1]).astype(np.int64), 0, lengths.shape[-1] - 1)
    present = q.bs_ids >= 0
    true_length = np.where(present, lengths[q.map_slot[:, None], np.maximum(q.bs_ids, 0), rows[:, None], cols[:, None]], np.nan)
    noise = np.random.default_rng([seed, 7001]).normal(0.0, 1.0, true_length.shape)
    ranges = true_length.astype(np.float64) + sigma_m * noise
    queries = Queries(q.map_slot, q.bs_ids, q.pathloss_db, q.position, q.bs_set, q.ue, ranges)
    scenes = SceneBank(scenes.map_ids, scenes.buildings, scenes.bs_positions, scenes.radio_maps, lengths)
    return LocalizationData(scenes, queries, {**data.source, "toa_sigma_m": float(sigma_m), "toa_seed": int(seed)})


@dataclass
class NLOSBias:
    """NLOS bias (dominant-path length minus straight-line distance) of every (BS, UE) link of some maps."""

    bias_m: np.ndarray  # (links,) of the links that have a path
    line_of_sight: np.ndarray  # (links,) bool
    no_path: int  # links without any dominant path (not in bias_m)

    def summary(self) -> dict:
        nlos = self.bias_m[~self.line_of_sight]
        return {
            "links": int(self.bias_m.size + self.no_path),
            "links_without_path": int(self.no_path),
            "line_of_sight_share": float(self.line_of_sight.mean()) if self.bias_m.size else None,
            "nlos_bias_under_30m_share": float(np.mean(nlos < 30.0)) if nlos.size else None,
            "bias_cdf_0.5_m": float(np.quantile(self.bias_m, 0.5)) if self.bias_m.size else None,
            "bias_cdf_0.9_m": float(np.quantile(self.bias_m, 0.9)) if self.bias_m.size else None,
            "nlos_bias_cdf_0.5_m": float(np.quantile(nlos, 0.5)) if nlos.size else None,
            "nlos_bias_cdf_0.9_m": float(np.quantile(nlos, 0.9)) if nlos.size else None,
        }


def nlos_bias(root: str | Path, maps: list[int], sim: str = "DPM") -> NLOSBias:
    """The bias of the links between every candidate BS and every UE position of ``maps``, as RadioToASeer's links
    (the paper's Fig. 1 counts the links of its BS sets and UEs: every candidate BS serves in some set)."""
    root = Path(root)
    positions = layout.read_positions(root)
    if positions.candidates is None:
        raise RadiolocError(f"{root / 'TxRx.mat'}: no candidate BS positions (candRow/candCol)")
    biases, los_flags, no_path = [], [], 0
    for map_id in maps:
        lengths, los = read_path_lengths(root, map_id, sim)
        ue = positions.ue[map_id]
        tx = positions.candidates[map_id].astype(np.float64)
        length = lengths[:, ue[:, 0], ue[:, 1]].astype(np.float64)  # (n_tx, n_ue)
        straight = np.hypot(tx[:, None, 0] - ue[None, :, 0], tx[:, None, 1] - ue[None, :, 1])
        has_path = np.isfinite(length)
        no_path += int((~has_path).sum())
        # a path is never shorter than the straight line; float32 storage leaves ~1e-5 m of rounding
        biases.append(np.maximum(length - straight, 0.0)[has_path])
        los_flags.append(los[:, ue[:, 0], ue[:, 1]][has_path])
    return NLOSBias(np.concatenate(biases), np.concatenate(los_flags), no_path)
