"""How much of a dataset's truth a phone could report: per simulation, over the query links.

A query link is a (UE position, BS) pair that some query of the map reports (every UE with every BS of every BS
set). For each simulation of the dataset (and its RadioUNet estimates) this counts, over those links:

- ``above_floor``: the share whose pathloss lies above the noise floor (gray level > 0): the BSs a phone hears;
- ``no_path``: the share that no propagation path reaches, where the simulation records it (the dominant-path
  model: its ToA file's NaN; a ray-traced truth: its own record), else None: gray 0 then means "below the floor
  or no path", two things this statistic must not confuse;
- ``rmse_to_DPM_db`` and ``mean_difference_to_DPM_db`` (this minus DPM): over the links above the floor in both.

``radioloc dataset coverage DIR`` prints them; ``--json`` writes ``{"sims": {SIM: {...}}, ...}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from radioloc.datasets import layout
from radioloc.datasets.radiomaps import dataset_split
from radioloc.datasets.ranging import read_path_lengths
from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import DB_PER_GRAY


def query_links(positions: layout.Positions, map_id: int) -> tuple[np.ndarray, np.ndarray]:
    """(UE index, BS id) of every link the queries of map ``map_id`` report, each once."""
    bs = np.unique(positions.bs_sets[map_id])
    ue = np.arange(positions.ue.shape[1])
    return np.repeat(ue, len(bs)), np.tile(bs, len(ue))


def _link_grays(root: Path, sim: str, kind: str, map_id: int, ue_pixels: np.ndarray, ue: np.ndarray, bs: np.ndarray) -> np.ndarray:
    """Gray level of each link (UE ``ue``, BS ``bs``) in the ``kind`` radio maps of ``sim``."""
    grays = np.empty(len(ue), dtype=np.uint8)
    for tx in np.unique(bs):
        chosen = bs == tx
        image = layout.read_radio_map_png(layout.radio_map_path(root, sim, kind, map_id, int(tx)))
        rows, cols = ue_pixels[ue[chosen]].T
        grays[chosen] = image[rows, cols]
    return grays


def _link_no_path(root: Path, sim: str, map_id: int, ue_pixels: np.ndarray, ue: np.ndarray, bs: np.ndarray, n_tx: int) -> np.ndarray | None:
    """Whether no path reaches each link, where ``sim`` records it (None otherwise)."""
    if sim not in layout.TOA_SIMULATIONS or not layout.toa_path(root, sim, map_id).is_file():
        return None
    lengths, _ = read_path_lengths(root, map_id, sim, transmitters=n_tx)
    rows, cols = ue_pixels[ue].T
    return np.isnan(lengths[bs, rows, cols])


def dataset_coverage(root: str | Path, split: str = "all") -> dict:
    """The coverage statistics of every simulation (and estimate set) of the dataset in ``root`` over the query
    links of the ``split`` maps (see the module docstring)."""
    root = Path(root)
    manifest = layout.read_manifest(root)
    if manifest is None:
        raise RadiolocError(f"{root}: no manifest.json (not a radioloc dataset)")
    maps = dataset_split(root, split)
    positions = layout.read_positions(root)
    if positions.candidates is None:
        raise RadiolocError(f"{root / 'TxRx.mat'}: no candidate BS positions (candRow/candCol)")
    n_tx = positions.candidates.shape[1]
    sources = [(sim, "true") for sim in manifest["simulations"]] + [(sim, "estimate") for sim in manifest["simulations"] if (root / sim / "estimate").is_dir()]
    grays: dict[str, list[np.ndarray]] = {}
    no_path: dict[str, list[np.ndarray | None]] = {}  # None for a map whose simulation does not record it
    for map_id in maps:
        ue, bs = query_links(positions, map_id)
        ue_pixels = positions.ue[map_id]
        for sim, kind in sources:
            name = sim if kind == "true" else f"{sim}/estimate"
            grays.setdefault(name, []).append(_link_grays(root, sim, kind, map_id, ue_pixels, ue, bs))
            no_path.setdefault(name, []).append(_link_no_path(root, sim, map_id, ue_pixels, ue, bs, n_tx) if kind == "true" else None)
    reference = np.concatenate(grays["DPM"]).astype(np.int32)
    result = {}
    for name, parts in grays.items():
        values = np.concatenate(parts).astype(np.int32)
        both = (values > 0) & (reference > 0)
        difference_db = (values[both] - reference[both]) * DB_PER_GRAY
        result[name] = {
            "links": int(values.size),
            "above_floor": float(np.mean(values > 0)),
            "no_path": None if any(part is None for part in no_path[name]) else float(np.mean(np.concatenate(no_path[name]))),
            "rmse_to_DPM_db": float(np.sqrt(np.mean(difference_db**2))) if both.any() else None,
            "mean_difference_to_DPM_db": float(np.mean(difference_db)) if both.any() else None,
            "links_above_floor_in_both": int(both.sum()),
        }
    return {"dataset": str(root), "split": split, "maps": len(maps), "sims": result}
