"""RadioUNet_C (Levie et al.): two chained UNets that turn a city map and a transmitter position into a
pathloss radio map.

Both UNets follow the published design: Conv -> ReLU per level with max-pooling on the way down,
ConvTranspose (stride 2) -> ReLU on the way up with the encoder skips concatenated, and the network input
concatenated again in the last two layers. The second UNet sees the first one's output plus the inputs; it is
trained after the first, which is then frozen. Here the second UNet's output is added to the first one's and
starts at zero, so the second phase can only start from the first phase's accuracy.

Presets:

- ``paper``: the published widths at full 256 x 256 resolution (first U 6, 40, 50, 60, 100, 100, 150, 300, 500;
  second U 20, 30, 40, 50, 60, 70, 90, 110, 150), output = gray level / 255 directly, about 13 M parameters.
  For GPU users.
- ``cpu`` (default) and ``cpu-small``: the same two-U structure at 64 x 64 internal resolution. The 256 x 256
  inputs are folded losslessly into channels (pixel unshuffle by 4) and the output unfolded back (pixel shuffle),
  so no detail is lost to resampling. The output is a non-negative excess loss over free space:
  ``PL = -FSPL(distance to the Tx) - excess``, which is zero in line of sight and grows in the shadows; the
  analytic free-space term carries the steep near-Tx gradient the low resolution could not. Extra coarse input
  channels give geometry a CPU-sized network cannot learn in an hour (:mod:`radioloc.propagation.visibility`):
  how much of the direct Tx-cell line runs through buildings (line of sight), and the dominant-path excess loss
  simulated on a coarse grid. ``cpu`` simulates it on 2 m cells (a building from 3/4 of a cell), on the grid and
  on the grid shifted by one pixel (their edge errors fall in different places): alone their mean is at 3.4 dB
  RMSE against the 1 m truth, and the network brings that to about 2.4 dB; about 10 ms per map on 2 cores.
  ``cpu-open`` adds the same simulation on "open" cells, blocked only when wholly building: 2 m cells blocked
  from 3/4 close the 1 m passages between buildings standing at an angle to the grid, and with them whole lit
  wedges behind (errors of 10-19 dB RMSE on a radio map); open cells keep them and wrongly open thin walls. The
  network learns which to trust where. 38 ms per estimated map against 23 ms for ``cpu`` (2 cores). The shipped
  model's preset since 2026-12-06 (`radiounet_cpu.md`).
  ``cpu-small`` keeps the older, cheaper line-of-sight and detour channels on 4 m cells (the first shipped
  model, with the coarse DPM on 4 m cells too, plateaued near 4.4 dB).

Every preset returns 256 x 256 maps: gray levels / 255 (RadioLocSeer convention, 0 inside buildings and
below the noise floor) from :meth:`RadioUNet.forward`, dB from :meth:`RadioUNet.predict_db`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radioloc.errors import RadiolocError
from radioloc.propagation.graylevel import DB_PER_GRAY, MAX_PATHLOSS_DB, NOISE_FLOOR_DB
from radioloc.propagation.visibility import cells_to_pixels, coarse_detour, coarse_dominant_path_excess, obstruction_features

_C = 299_792_458.0


@dataclass(frozen=True)
class UNetSpec:
    """One UNet: per encoder level its width, kernel size and whether it halves the resolution first."""

    widths: tuple[int, ...]
    kernels: tuple[int, ...]
    downs: tuple[bool, ...]


@dataclass(frozen=True)
class RadioUNetConfig:
    preset: str
    first: UNetSpec
    second: UNetSpec
    fold: int = 1  # pixel (un)shuffle factor: internal resolution = 256 / fold
    head: str = "gray"  # "gray": output is gray / 255; "excess": output is dB of loss above free space
    visibility: bool = False  # add the direct-line obstruction feature (radioloc.propagation.visibility)
    detour: bool = False  # add the coarse detour feature (radioloc.propagation.visibility.coarse_detour)
    coarse_dpm: bool = False  # add the coarse dominant-path excess loss (visibility.coarse_dominant_path_excess)
    coarse_dpm_cell: int = 0  # its cell size in pixels (0: the fold); finer cells are folded into channels
    coarse_dpm_blocked: float = 0.5  # a coarse cell is a building from this fraction of building pixels
    coarse_dpm_offsets: tuple[int, ...] = (0,)  # one coarse-DPM input per grid shifted by this many pixels
    # One more coarse-DPM input per offset on "open" cells, blocked only when wholly building: they keep the 1 m
    # passages (diagonal ones above all) that cells blocked from ``coarse_dpm_blocked`` close.
    coarse_dpm_open_offsets: tuple[int, ...] = ()
    use_cars: bool = False
    frequency_hz: float = 5.9e9

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> RadioUNetConfig:
        data = dict(data)
        data["first"] = UNetSpec(**{k: tuple(v) for k, v in data["first"].items()})
        data["second"] = UNetSpec(**{k: tuple(v) for k, v in data["second"].items()})
        for key in ("coarse_dpm_offsets", "coarse_dpm_open_offsets"):
            if key in data:
                data[key] = tuple(data[key])
        return RadioUNetConfig(**data)

    def coarse_dpm_grids(self) -> list[tuple[float, int]]:
        """(blocked fraction, offset) of every coarse-DPM input grid, in input-channel order."""
        if not self.coarse_dpm:
            return []
        return [(self.coarse_dpm_blocked, offset) for offset in self.coarse_dpm_offsets] + [(1.0, offset) for offset in self.coarse_dpm_open_offsets]


PRESETS: dict[str, RadioUNetConfig] = {
    "paper": RadioUNetConfig(
        preset="paper",
        first=UNetSpec(
            widths=(6, 40, 50, 60, 100, 100, 150, 300, 500),
            kernels=(3, 5, 5, 5, 5, 3, 5, 5, 5),
            downs=(False, False, True, True, False, True, True, True, True),
        ),
        second=UNetSpec(
            widths=(20, 30, 40, 50, 60, 70, 90, 110, 150),
            kernels=(3, 5, 5, 5, 5, 3, 5, 5, 5),
            downs=(False, False, True, True, False, True, True, True, True),
        ),
    ),
    "cpu": RadioUNetConfig(
        preset="cpu",
        first=UNetSpec(widths=(48, 64, 96, 128, 160, 192), kernels=(3, 3, 3, 3, 3, 3), downs=(False, True, True, True, True, True)),
        second=UNetSpec(widths=(32, 48, 64, 96, 128), kernels=(3, 3, 3, 3, 3), downs=(False, True, True, True, True)),
        fold=4,
        head="excess",
        visibility=True,
        coarse_dpm=True,
        coarse_dpm_cell=2,
        coarse_dpm_blocked=0.75,
        coarse_dpm_offsets=(0, 1),
    ),
    "cpu-small": RadioUNetConfig(
        preset="cpu-small",
        first=UNetSpec(widths=(24, 32, 48, 64, 96), kernels=(3, 3, 3, 3, 3), downs=(False, True, True, True, True)),
        second=UNetSpec(widths=(16, 24, 32, 48), kernels=(3, 3, 3, 3), downs=(False, True, True, True)),
        fold=4,
        head="excess",
        visibility=True,
        detour=True,
    ),
}


# ``cpu`` plus the open-cell coarse grids (1 m passages kept open), grown from a trained ``cpu`` model by
# ``radioloc train radiounet --init`` (:func:`grow_radiounet`).
PRESETS["cpu-open"] = replace(PRESETS["cpu"], preset="cpu-open", coarse_dpm_open_offsets=(0, 1))


def preset_config(name: str, use_cars: bool = False) -> RadioUNetConfig:
    if name not in PRESETS:
        raise RadiolocError(f"unknown RadioUNet preset {name!r} (choose from {', '.join(PRESETS)})")
    config = PRESETS[name]
    return RadioUNetConfig(**{**config.__dict__, "use_cars": use_cars})


class UNet(nn.Module):
    """A RadioUNet-style UNet (see the module docstring)."""

    def __init__(self, in_channels: int, out_channels: int, spec: UNetSpec):
        super().__init__()
        if not (len(spec.widths) == len(spec.kernels) == len(spec.downs)) or spec.downs[0]:
            raise ValueError("widths, kernels and downs must have equal length, and the first level cannot pool")
        self.downs = spec.downs
        self.encoder = nn.ModuleList()
        previous = in_channels
        for width, kernel in zip(spec.widths, spec.kernels):
            self.encoder.append(nn.Conv2d(previous, width, kernel, padding=kernel // 2))
            previous = width
        # Decoder level i turns level i+1 (plus its skip, except at the bottom) into widths[i] channels.
        self.decoder = nn.ModuleList()
        n = len(spec.widths)
        for i in reversed(range(1, n - 1)):
            source = spec.widths[i + 1] * (1 if i + 1 == n - 1 else 2)
            self.decoder.append(self._up(source, spec.widths[i], spec.downs[i + 1], spec.kernels[i]))
        top_source = spec.widths[1] * (1 if n == 2 else 2)
        self.up_top = self._up(top_source, spec.widths[0], spec.downs[1], spec.kernels[0])
        self.last_but_one = nn.Conv2d(2 * spec.widths[0] + in_channels, spec.widths[0], spec.kernels[0], padding=spec.kernels[0] // 2)
        self.last = nn.Conv2d(spec.widths[0] + in_channels, out_channels, spec.kernels[0], padding=spec.kernels[0] // 2)

    @staticmethod
    def _up(source: int, width: int, doubles: bool, kernel: int) -> nn.Module:
        if doubles:
            return nn.ConvTranspose2d(source, width, 4, stride=2, padding=1)
        return nn.Conv2d(source, width, kernel, padding=kernel // 2)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        skips = []
        x = inputs
        for conv, down in zip(self.encoder, self.downs):
            if down:
                x = F.max_pool2d(x, 2)
            x = F.relu(conv(x))
            skips.append(x)
        y = skips[-1]
        n = len(skips)
        for k, up in enumerate(self.decoder):
            i = n - 2 - k
            y = F.relu(up(y))
            y = torch.cat([y, skips[i]], dim=1)
        y = F.relu(self.up_top(y)) if n > 1 else y
        y = F.relu(self.last_but_one(torch.cat([y, skips[0], inputs], dim=1)))
        return self.last(torch.cat([y, inputs], dim=1))


class RadioUNet(nn.Module):
    """``model(buildings, tx)`` -> (first U, second U) radio maps as gray / 255, each (B, 1, 256, 256).

    ``buildings``: (B, 1, 256, 256) 0/1 (cars in a second channel when the config uses cars);
    ``tx``: (B, 2) transmitter (row, col) pixel positions.
    """

    def __init__(self, config: RadioUNetConfig):
        super().__init__()
        self.config = config
        maps = 2 if config.use_cars else 1
        # Inputs: building (and car) map, one-hot Tx, and (for the excess head) the normalized Tx distance.
        in_maps = maps + 1 + (1 if config.head == "excess" else 0)
        fold2 = config.fold**2
        extra = (2 if config.visibility else 0) + (1 if config.detour else 0) + (self.coarse_dpm_channels() if config.coarse_dpm else 0)
        self.first = UNet(in_maps * fold2 + extra, fold2, config.first)
        self.second = UNet((in_maps + 1) * fold2 + extra, fold2, config.second)
        self.reset_second_output()

    def coarse_dpm_channels(self) -> int:
        """Input channels of the coarse-DPM feature: unshifted cells folded into the internal cells (1 per
        cell, or (fold / cell)^2), shifted grids on the pixel grid (fold^2 each)."""
        fold, cell = self.config.fold, self.config.coarse_dpm_cell or self.config.fold
        if fold % cell:
            raise RadiolocError(f"coarse_dpm_cell {cell} must divide the fold {fold}")
        return sum((fold // cell) ** 2 if offset == 0 else fold**2 for _, offset in self.config.coarse_dpm_grids())

    def coarse_dpm_cells(self, buildings: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> list[np.ndarray]:
        """The coarse-DPM input on its own grids, one (B, 1, G, G) float32 array per grid offset, for building
        masks (B, H, W) and Tx pixels. The costly part of the features (about 5 ms a map and grid); exactly
        equivariant to rotations and transposes of the map, so a trainer may keep it and rotate it."""
        cell = self.config.coarse_dpm_cell or self.config.fold
        return [
            coarse_dominant_path_excess(buildings, rows, cols, cell, blocked_fraction=blocked, offset=offset)
            for blocked, offset in self.config.coarse_dpm_grids()
        ]

    def _fold_coarse_dpm(self, grids: list[np.ndarray], size: int) -> list[np.ndarray]:
        fold, cell = self.config.fold, self.config.coarse_dpm_cell or self.config.fold
        out = []
        for (_, offset), cells in zip(self.config.coarse_dpm_grids(), grids):
            cells = np.ascontiguousarray(cells, dtype=np.float32)
            if offset == 0:
                per_cell = fold // cell
                out.append(F.pixel_unshuffle(torch.from_numpy(cells), per_cell).numpy() if per_cell > 1 else cells)
            else:
                pixels = cells_to_pixels(cells, cell, offset, size)
                out.append(F.pixel_unshuffle(torch.from_numpy(pixels), fold).numpy())
        return out

    def reset_second_output(self) -> None:
        """The second U refines the first: its output is added to the first one's, so with a zeroed last
        layer the chain starts out exactly as good as the first U."""
        with torch.no_grad():
            self.second.last.weight.zero_()
            self.second.last.bias.zero_()

    def _features(self, obstacles: torch.Tensor, tx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        b, _, h, w = obstacles.shape
        rows = torch.arange(h, device=obstacles.device, dtype=torch.float32).view(1, h, 1)
        cols = torch.arange(w, device=obstacles.device, dtype=torch.float32).view(1, 1, w)
        tx = tx.to(torch.float32)
        distance = torch.sqrt((rows - tx[:, 0].view(b, 1, 1)) ** 2 + (cols - tx[:, 1].view(b, 1, 1)) ** 2).unsqueeze(1)
        one_hot = (distance < 0.5).to(obstacles.dtype)
        channels = [obstacles, one_hot]
        if self.config.head == "excess":
            channels.append(distance / h)
        return torch.cat(channels, dim=1), distance

    def _to_gray(self, raw: torch.Tensor, distance: torch.Tensor, buildings: torch.Tensor, clamp: bool) -> torch.Tensor:
        if self.config.head == "excess":
            fspl = 20.0 * torch.log10(4.0 * math.pi * self.config.frequency_hz / _C * torch.clamp(distance, min=1.0))
            pathloss = -fspl - 10.0 * F.softplus(raw.float())
            gray = (pathloss - NOISE_FLOOR_DB) / (MAX_PATHLOSS_DB - NOISE_FLOOR_DB)
        else:
            gray = raw.float()
        if clamp:
            gray = torch.clamp(gray, 0.0, 1.0)
        return gray * (1.0 - buildings)

    def geometry_features(self, buildings: np.ndarray, rows: np.ndarray, cols: np.ndarray, dpm_cells: list[np.ndarray] | None = None) -> np.ndarray | None:
        """The coarse geometry input channels (B, C, H / fold, W / fold) float32 for building masks (B, H, W)
        and Tx pixels, or None when the preset uses none. Pure NumPy/numba, so a caller may compute the next
        batch's while the network runs on this one (:func:`radioloc.models.estimate.predict_gray`).
        ``dpm_cells``: :meth:`coarse_dpm_cells` of these inputs when already known."""
        fold = self.config.fold
        coarse = []
        if self.config.visibility:
            coarse.append(obstruction_features(buildings, rows, cols, fold))
        if self.config.detour:
            coarse.append(coarse_detour(buildings, rows, cols, fold))
        if self.config.coarse_dpm:
            grids = dpm_cells if dpm_cells is not None else self.coarse_dpm_cells(buildings, rows, cols)
            coarse.extend(self._fold_coarse_dpm(grids, buildings.shape[-1]))
        return np.concatenate(coarse, axis=1) if coarse else None

    def forward(
        self,
        buildings: torch.Tensor,
        tx: torch.Tensor,
        cars: torch.Tensor | None = None,
        second: bool = True,
        clamp: bool = True,
        geometry: np.ndarray | None = None,
    ):
        """Radio maps as gray / 255. ``clamp=False`` keeps values below the noise floor negative (for the
        censored training loss, which needs a gradient there). ``geometry``: :meth:`geometry_features` of these
        inputs when already computed."""
        obstacles = buildings if cars is None or not self.config.use_cars else torch.cat([buildings, cars], dim=1)
        features, distance = self._features(obstacles, tx)
        fold = self.config.fold
        folded = F.pixel_unshuffle(features, fold) if fold > 1 else features
        if geometry is None and (self.config.visibility or self.config.detour or self.config.coarse_dpm):
            mask = (buildings[:, 0] > 0.5).to(torch.uint8).cpu().numpy()
            geometry = self.geometry_features(mask, tx[:, 0].cpu().numpy(), tx[:, 1].cpu().numpy())
        if geometry is not None:
            folded = torch.cat([folded, torch.from_numpy(geometry).to(folded.device, folded.dtype)], dim=1)
        # The UNets concatenate these inputs into their last layers: in the autocast dtype and channels_last
        # those concatenations are plain copies; in fp32 / NCHW each one costs a cast and a layout change
        # (half the network's time on the CPU). The convolutions would cast them to this dtype anyway.
        folded = folded.contiguous(memory_format=torch.channels_last)
        if torch.is_autocast_enabled(folded.device.type):
            folded = folded.to(torch.get_autocast_dtype(folded.device.type))
        first_raw = self.first(folded)
        first_map = F.pixel_shuffle(first_raw, fold) if fold > 1 else first_raw
        first_gray = self._to_gray(first_map, distance, buildings, clamp)
        if not second:
            return first_gray, None
        unfolded_first = F.pixel_unshuffle(first_map, fold) if fold > 1 else first_map
        second_raw = self.second(torch.cat([unfolded_first.to(folded.dtype), folded], dim=1))
        second_map = first_map + (F.pixel_shuffle(second_raw, fold) if fold > 1 else second_raw)
        return first_gray, self._to_gray(second_map, distance, buildings, clamp)

    @torch.no_grad()
    def predict_db(self, buildings: torch.Tensor, tx: torch.Tensor, cars: torch.Tensor | None = None) -> torch.Tensor:
        """Pathloss in dB (B, 256, 256), on the RadioLocSeer gray grid: values at or below the noise floor
        come out as the noise floor; buildings as NaN."""
        _, gray = self.forward(buildings, tx, cars)
        levels = torch.round(gray.squeeze(1) * 255.0)
        pathloss = NOISE_FLOOR_DB + levels * DB_PER_GRAY
        return torch.where(buildings.squeeze(1) > 0, torch.full_like(pathloss, float("nan")), pathloss)


def grow_radiounet(source: RadioUNet, config: RadioUNetConfig) -> RadioUNet:
    """A RadioUNet of ``config`` that computes exactly what ``source`` computes, when ``config`` is the source's
    or only adds coarse-DPM input grids (``cpu`` -> ``cpu-open``).

    The new grids' channels come last in every input they join (the first layers of both UNets and the last
    two layers, which read the network input again), so each such convolution keeps its weights for the old
    channels and reads the new ones through weights set to zero; training then moves them away from zero."""
    old, new = source.config, config
    same_rest = replace(old, preset=new.preset, coarse_dpm_open_offsets=new.coarse_dpm_open_offsets) == new
    if not same_rest or new.coarse_dpm_open_offsets[: len(old.coarse_dpm_open_offsets)] != old.coarse_dpm_open_offsets:
        raise RadiolocError(f"preset {new.preset!r} does not extend preset {old.preset!r} with coarse-DPM grids only")
    grown = RadioUNet(new)
    state = grown.state_dict()
    for name, value in source.state_dict().items():
        target = state[name]
        if target.shape != value.shape:  # a convolution that reads the network input: [old channels, new ones]
            widened = torch.zeros_like(target)
            widened[:, : value.shape[1]] = value
            value = widened
        state[name] = value
    grown.load_state_dict(state)
    return grown


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


SHIPPED_WEIGHTS = Path(__file__).parent / "weights" / "radiounet_cpu.pt"


def load_radiounet(path: str | Path | None = None, preset: str | None = None) -> RadioUNet:
    """A RadioUNet from a checkpoint (the shipped CPU model when ``path`` is None).

    ``preset``, when given, must match the checkpoint's preset."""
    from radioloc.models.checkpoint import load_model

    path = Path(path) if path is not None else SHIPPED_WEIGHTS
    return load_model(path, "radiounet", "RadioUNet", RadioUNetConfig.from_dict, RadioUNet, preset)
