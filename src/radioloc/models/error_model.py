"""A learned model of the radio-map error: per pixel and BS, how far the truth may lie from the map the localizer
sees (:class:`ErrorModel`).

The error of RadioUNet's estimates is not the same everywhere: it concentrates at shadow edges, near the BS where
pathloss is steep, and in deep shadow. The calibrated likelihood of ``bayes`` (:mod:`radioloc.models.likelihood`)
counts ``p(report | map gray)`` over all pixels alike. Measured on data/dpm (3,000 validation queries, 5 BSs):
counting it separately in 6 bins of one hand-picked feature lowers the posterior's MAE by 3 % (the estimate's
gradient) to 7 % (the distance to the BS). This network learns that feature instead.

- **Input** per BS, on the 1 m grid: the building mask, the radio map seen (gray / 255), its noise-floor mask,
  the distance to the BS (/ 128 m), and on 2 m cells the direct line's line-of-sight indicator and metres of
  building (:func:`radioloc.propagation.visibility.obstruction_features`).
- **RadioUNet's own coarse geometry** (``geometry_preset``, :meth:`radioloc.models.radiounet.RadioUNet.geometry_features`):
  line of sight on 4 m cells and the dominant-path excess loss simulated on 2 m cells on two shifted grids. Where
  those coarse cells misplace the 1 m building edges is where the estimate goes wrong.
- **Network**: a RadioUNet-style UNet (:class:`radioloc.models.radiounet.UNet`) on 64 x 64 cells, the 1 m inputs
  pixel-unshuffled by 4 (lossless) beside the coarse geometry, its output shuffled back to 1 m pixels.
- **Output**: ``log b(x)``, the log scale (gray levels, at least 0.05) of a Laplace distribution of
  ``truth - seen``. It is trained by that distribution's negative log-likelihood on the outdoor pixels of the UE box
  (:mod:`radioloc.training.error_model`).
- **Use**: only as a ranking of the pixels by reliability. :func:`reliability_bins` cuts ``log b`` at edges fixed
  on training queries, and the likelihood table is counted once per bin. So the network does not need to be
  calibrated itself: the counts are.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from radioloc.datasets.localization import SceneBank
from radioloc.errors import RadiolocError
from radioloc.models.checkpoint import load_model
from radioloc.models.radiounet import RadioUNet, UNet, UNetSpec, preset_config
from radioloc.models.runtime import Runtime
from radioloc.propagation.visibility import obstruction_features

KIND = "error-model"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
SHIPPED_ERROR_MODELS = {"error-model": WEIGHTS_DIR / "error_model_nominal.pt", "error-model-robust": WEIGHTS_DIR / "error_model_robust.pt"}
INPUT_CHANNELS = 6
DISTANCE_SCALE_M = 128.0
MIN_LOG_SCALE = float(np.log(0.05))  # gray levels
OBSTRUCTION_FOLD = 2  # the line-of-sight features on 2 m cells: 4x cheaper than 1 m, as informative here


@dataclass(frozen=True)
class ErrorModelConfig:
    preset: str = "cpu"
    fold: int = 4
    widths: tuple[int, ...] = (48, 64, 96, 128, 160)
    geometry_preset: str | None = "cpu"  # the RadioUNet preset whose coarse geometry channels are added (None: none)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> ErrorModelConfig:
        data = dict(data)
        data["widths"] = tuple(data["widths"])
        return ErrorModelConfig(**data)


_GEOMETRY: dict[str, RadioUNet] = {}  # an untrained RadioUNet per preset: only its geometry_features are used


def _geometry_source(preset: str) -> RadioUNet:
    if preset not in _GEOMETRY:
        _GEOMETRY[preset] = RadioUNet(preset_config(preset))
    return _GEOMETRY[preset]


class ErrorModel(nn.Module):
    def __init__(self, config: ErrorModelConfig | None = None):
        super().__init__()
        self.config = config or ErrorModelConfig()
        n = len(self.config.widths)
        spec = UNetSpec(widths=self.config.widths, kernels=(3,) * n, downs=(False,) + (True,) * (n - 1))
        f = self.config.fold
        geometry = 0
        if self.config.geometry_preset is not None:
            source = _geometry_source(self.config.geometry_preset)
            if source.config.fold != f:
                raise RadiolocError(
                    f"error model: RadioUNet preset {self.config.geometry_preset!r} works on {source.config.fold} m cells, the error model on {f} m"
                )
            geometry = 2 * source.config.visibility + source.config.detour + (source.coarse_dpm_channels() if source.config.coarse_dpm else 0)
        self.unet = UNet(INPUT_CHANNELS * f * f + geometry, f * f, spec)

    def geometry(self, buildings: np.ndarray, bs_positions: np.ndarray) -> torch.Tensor | None:
        """(B, G, H / fold, W / fold) coarse geometry for building masks (B, H, W) and BS pixels (B, 2), or None."""
        if self.config.geometry_preset is None:
            return None
        mask = np.ascontiguousarray(buildings != 0, dtype=np.uint8)
        rows, cols = (bs_positions[:, k].astype(np.float64) for k in (0, 1))
        return torch.from_numpy(_geometry_source(self.config.geometry_preset).geometry_features(mask, rows, cols))

    def forward(self, inputs: torch.Tensor, geometry: torch.Tensor | None = None) -> torch.Tensor:
        """(B, 6, H, W) inputs (:func:`error_inputs`) and their :meth:`geometry` -> (B, H, W) log Laplace scale
        in gray levels."""
        f = self.config.fold
        folded = F.pixel_unshuffle(inputs, f)
        if geometry is not None:
            folded = torch.cat([folded, geometry.to(folded.device, folded.dtype)], dim=1)
        raw = F.pixel_shuffle(self.unet(folded), f)[:, 0]
        # bounded below (smoothly): reports are whole gray levels, a finer scale means nothing, and an unbounded
        # one ran away to -inf on exact pixels and blew up the loss on the next pixel that was not exact
        return MIN_LOG_SCALE + F.softplus(raw - MIN_LOG_SCALE)


def laplace_nll(log_scale: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Mean Laplace negative log-likelihood (without log 2) of ``residual`` under scale ``exp(log_scale)``,
    weighted per pixel."""
    nll = log_scale + residual.abs() * torch.exp(-log_scale)
    return (nll * weight).sum() / weight.sum().clamp_min(1.0)


_ROWS, _COLS = np.mgrid[0:256, 0:256].astype(np.float32)


def error_inputs(buildings: np.ndarray, radio_maps: np.ndarray, bs_positions: np.ndarray) -> np.ndarray:
    """(B, 6, H, W) float32 network inputs for one city map (H, W; nonzero = building), the radio maps seen of B
    BSs (B, H, W) uint8 and their positions (B, 2) row, col."""
    n, h, w = radio_maps.shape
    if buildings.shape != (h, w) or bs_positions.shape != (n, 2):
        raise ValueError(f"error_inputs: buildings {buildings.shape}, radio maps {radio_maps.shape} and positions {bs_positions.shape} disagree")
    rows, cols = (_ROWS, _COLS) if (h, w) == _ROWS.shape else np.mgrid[0:h, 0:w].astype(np.float32)
    seen = radio_maps.astype(np.float32) / 255.0
    mask = (buildings != 0).astype(np.uint8)
    bs = bs_positions.astype(np.float32)
    distance = np.hypot(rows[None] - bs[:, 0, None, None], cols[None] - bs[:, 1, None, None]) / DISTANCE_SCALE_M
    blocked = obstruction_features(np.ascontiguousarray(np.broadcast_to(mask, (n, h, w))), bs[:, 0], bs[:, 1], OBSTRUCTION_FOLD)
    blocked = blocked.repeat(OBSTRUCTION_FOLD, axis=-2).repeat(OBSTRUCTION_FOLD, axis=-1)
    planes = [np.broadcast_to(mask.astype(np.float32), seen.shape), seen, (radio_maps == 0).astype(np.float32), distance, blocked[:, 0], blocked[:, 1]]
    return np.stack(planes, axis=1)


@torch.no_grad()
def predict_log_scale(model: ErrorModel, scenes: SceneBank, runtime: Runtime | None = None, batch: int = 16) -> np.ndarray:
    """(M, n_bs, H, W) float16 ``log b`` for every radio map of the scenes."""
    runtime = runtime or Runtime.pick()
    model = runtime.prepare(model).eval()
    m, n_bs, h, w = scenes.radio_maps.shape
    out = np.empty((m, n_bs, h, w), dtype=np.float16)
    for slot in range(m):
        for start in range(0, n_bs, batch):
            ids = np.arange(start, min(n_bs, start + batch))
            x = torch.from_numpy(error_inputs(scenes.buildings[slot], scenes.radio_maps[slot, ids], scenes.bs_positions[slot, ids]))
            geometry = model.geometry(np.broadcast_to(scenes.buildings[slot], (len(ids), h, w)), scenes.bs_positions[slot, ids])
            with runtime.autocast():
                y = model(x.to(runtime.device).contiguous(memory_format=torch.channels_last), geometry)
            out[slot, ids] = y.float().cpu().numpy()
    return out


def reliability_bins(log_scale: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """uint8 bin of every pixel: the number of ``edges`` (sorted) at or below its ``log b``."""
    return np.searchsorted(np.asarray(edges, dtype=np.float32), log_scale.astype(np.float32), side="right").astype(np.uint8)


def error_model_weights(spec: str | Path | None) -> Path:
    if spec is None:
        return SHIPPED_ERROR_MODELS["error-model"]
    return SHIPPED_ERROR_MODELS.get(str(spec), Path(spec))


def load_error_model(path: str | Path | None = None) -> ErrorModel:
    """A trained error model from a checkpoint (the shipped one when ``path`` is None)."""
    path = error_model_weights(path)
    if not path.is_file():
        raise RadiolocError(f"{path}: error-model checkpoint not found")
    return load_model(path, KIND, "error model", ErrorModelConfig.from_dict, ErrorModel)
