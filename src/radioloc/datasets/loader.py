"""One PyTorch loader for radioloc datasets and the real RadioLocSeer layout.

A sample is one (map, BS set, UE) triple, as in LocUNet. Radio maps and measurements are gray levels / 255
(the paper's input scaling; :mod:`radioloc.propagation.graylevel` converts to dB); positions follow
:mod:`radioloc.city.grid` (zero-based row, col).

``measurement`` names the simulation whose *truth* the UE reports (``DPM``: the nominal scenario);
``radio_maps`` names what the localizer sees, ``{SIM}/true`` or ``{SIM}/estimate``.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from radioloc.datasets import layout
from radioloc.datasets.protocol import split_maps
from radioloc.errors import RadiolocError


class _ImageCache:
    """A small LRU cache of decoded PNGs (a map's radio maps are reused by its 50 x 200 samples)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._items: OrderedDict[Path, np.ndarray] = OrderedDict()

    def get(self, path: Path, radio_map: bool = True) -> np.ndarray:
        if path in self._items:
            self._items.move_to_end(path)
            return self._items[path]
        image = layout.read_radio_map_png(path) if radio_map else layout.read_gray_png(path)
        self._items[path] = image
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return image


class RadioLocDataset(Dataset):
    """Samples of one split: ``radio_maps`` (k, 256, 256), ``measurements`` (k,), ``bs_positions`` (k, 2),
    ``buildings`` (256, 256), ``position`` (2,) and the ids ``map``, ``bs_set``, ``ue``."""

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        measurement: str = "DPM",
        radio_maps: str = "DPM/true",
        cache_images: int = 512,
    ):
        self.root = Path(root)
        if not self.root.is_dir():
            raise RadiolocError(f"{self.root}: dataset folder not found")
        manifest = layout.read_manifest(self.root)
        self.positions = layout.read_positions(self.root)
        n_maps = self.positions.ue.shape[0]
        splits = manifest["split"] if manifest else split_maps(n_maps)
        if split not in splits:
            raise RadiolocError(f"split must be one of {', '.join(splits)}, got {split!r}")
        self.maps = list(splits[split])
        sim_kind = radio_maps.split("/")
        if len(sim_kind) != 2 or sim_kind[1] not in ("true", "estimate"):
            raise RadiolocError(f"radio_maps must look like 'DPM/true' or 'DPM/estimate', got {radio_maps!r}")
        self.map_sim, self.map_kind = sim_kind
        self.measurement = measurement
        for folder in (self.root / measurement / "true", self.root / self.map_sim / self.map_kind, self.root / "buildings"):
            if not folder.is_dir():
                raise RadiolocError(f"{folder}: missing folder (this dataset has no such simulation)")
        self.n_sets = self.positions.bs_sets.shape[1]
        self.n_ues = self.positions.ue.shape[1]
        self._cache = _ImageCache(cache_images)

    def __len__(self) -> int:
        return len(self.maps) * self.n_sets * self.n_ues

    def index_of(self, idx: int) -> tuple[int, int, int]:
        """(map id, BS-set index, UE index) of sample ``idx``."""
        if not 0 <= idx < len(self):
            raise IndexError(idx)
        m, s, u = np.unravel_index(idx, (len(self.maps), self.n_sets, self.n_ues))
        return self.maps[int(m)], int(s), int(u)

    def __getitem__(self, idx: int) -> dict[str, torch.Tensor | int]:
        map_id, s, u = self.index_of(idx)
        txs = self.positions.bs_sets[map_id, s]
        row, col = self.positions.ue[map_id, u]
        maps = np.stack([self._cache.get(layout.radio_map_path(self.root, self.map_sim, self.map_kind, map_id, int(t))) for t in txs])
        measured = np.array([self._cache.get(layout.radio_map_path(self.root, self.measurement, "true", map_id, int(t)))[row, col] for t in txs])
        buildings = self._cache.get(layout.building_path(self.root, map_id), radio_map=False)
        return {
            "radio_maps": torch.from_numpy(maps.astype(np.float32) / 255.0),
            "measurements": torch.from_numpy(measured.astype(np.float32) / 255.0),
            "bs_positions": torch.from_numpy(self.positions.bs[map_id, s].astype(np.float32)),
            "buildings": torch.from_numpy((buildings != 0).astype(np.float32)),
            "position": torch.tensor([row, col], dtype=torch.float32),
            "map": map_id,
            "bs_set": s,
            "ue": u,
        }
