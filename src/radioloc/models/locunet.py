"""LocUNet (Yapar, Levie, Kutyniok, Caire): a UNet whose quasi-heatmap is reduced to a position by a
centre-of-mass layer.

The network (:class:`LocUNet`) follows the paper's Table I: Conv -> LeakyReLU(0.2) -> AvgPool down; bilinear x2
upsampling -> Conv -> LeakyReLU up, each decoder layer reading the previous decoder output concatenated with the
mirrored encoder output; the network input is concatenated again in the last two layers. Table I lists, per
layer, the filter of the convolution *leaving* that layer; read that way every even filter sits on an
upsampling step and the 4 x 4 deepest layer works out. With 16 input channels this reading has 29.5 M parameters
(the notes quote "about 22.3 M"; no reading of the table we tried gives that number exactly, see the model
card and the issue note).

The last layer's activation (LeakyReLU by default, so the quasi-heatmap may be negative; ReLU, softmax or
sigmoid for the ablation of Table IX) feeds :func:`center_of_mass`: ``mu = sum(coord * H) / (sum(H) + 1e-7)``.

Presets:

- ``paper``: Table I exactly, 256 x 256 input in the paper's encoding (for each BS its radio map then a constant
  image of the measured pathloss, all gray / 255; then the 5 one-hot Tx images; then the building map).
- ``cpu`` (default) and ``cpu-fine``: the same kind of UNet, narrower and shallower, at 32 x 32 internal
  resolution: inputs are pooled to 4 m cells (64 x 64, ``cpu``) or 2 m cells (128 x 128, ``cpu-fine``) and
  folded losslessly (pixel unshuffle) to 32 x 32; the heatmap is unfolded back to the input cells, so positions
  come out in metres on the 256 m map with sub-cell precision. They use the residual encoding (notes, section 3): per BS ``(map - p_j) / 10 dB``
  clipped to +-4, the kNN cost map (cell means), the RMS residual of each cell's best-fitting 1 m pixel (what
  kNN ranks by; cell means blur it at shadow edges), the building mask and the Tx positions.

After the network, the localizer (:mod:`radioloc.localizers.locunet`) may move the centre of mass to the
best-fitting 1 m pixels near it (radius and k in the config, chosen on validation; 0 = off, as for ``paper``).

A BS that is not detectable is reported at the noise floor (the paper's gray level 0); a BS absent from a
query (fewer than 5) contributes all-zero channels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numba as nb
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from radioloc.datasets.fit_cost import min_cost_per_cell, relative_cost_maps, squared_residual_tables
from radioloc.datasets.localization import MAX_BS, LocalizationData, SceneBank
from radioloc.datasets.protocol import UE_REGIONS, ProtocolConfig, middle_box, ue_region
from radioloc.errors import RadiolocError
from radioloc.models.checkpoint import load_model
from radioloc.models.likelihood import likelihood_tables
from radioloc.propagation.graylevel import DB_PER_GRAY, NOISE_FLOOR_DB

KIND = "locunet"
WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_WEIGHTS = WEIGHTS_DIR / "locunet_cpu.pt"
# The shipped models by the name the command line knows them by (each has a model card beside it)
SHIPPED_MODELS = {
    "locunet": SHIPPED_WEIGHTS,  # nominal scenario: UEs report the dominant-path truth
    "locunet-robust": WEIGHTS_DIR / "locunet_robust_cpu.pt",  # robustness scenario: ray-traced truth with cars
}
ACTIVATIONS = ("leaky_relu", "relu", "softmax", "sigmoid")
LOSSES = ("mae", "mse")
ENCODINGS = ("paper", "residual")
# com: the paper's spatial regression. The others are the keypoint baselines of Sec. V-G (Fig. 4): ``heatmap``
# regresses a Gaussian target heatmap (answers with its centre of mass; the argmax is read off the same heatmap),
# ``direct`` regresses the coordinates with a fully connected layer on the deepest features, ``classify`` treats
# every cell as a class (cross-entropy, answers with the most likely cell).
HEADS = ("com", "posterior", "heatmap", "direct", "classify")
POSTERIOR_OUTSIDE = -1.0e4  # log-likelihood given to pixels outside the prior's support (exp underflows to 0)
PRIOR_RANGE = 8.0  # the learned log-prior is bounded to +-8 nats (a factor of 3,000): an unbounded one collapsed training
WEIGHT_RANGE = 1.5  # learned likelihood weights: exp(+-1.5), a BS's evidence counted 0.22x to 4.5x
RESIDUAL_SCALE_DB = 10.0
RESIDUAL_CLIP = 4.0
TOA_SCALE_M = 10.0

# Table I, one row per encoder layer 1..14: (channels, filter of the convolution producing it, avg-pool after it)
PAPER_ENCODER = (
    (20, 3, False), (50, 5, True), (60, 5, True), (70, 5, False), (90, 5, True), (100, 5, False), (120, 5, True),
    (120, 3, False), (135, 5, False), (150, 5, True), (225, 5, False), (300, 5, True), (400, 5, False), (500, 5, True),
)  # fmt: skip
# Filters of the decoder convolutions producing the mirrors of layers 13, 12, ..., 1 (Table I layers 14..26)
PAPER_DECODER_KERNELS = (4, 5, 4, 5, 4, 5, 3, 6, 5, 6, 5, 6, 6)


@dataclass(frozen=True)
class LocUNetConfig:
    preset: str
    encoder: tuple[tuple[int, int, bool], ...]
    decoder_kernels: tuple[int, ...]
    final_width: int = 20
    final_kernel: int = 5
    encoding: str = "paper"  # paper | residual
    input_size: int = 256  # cells per side of the (pooled) input and of the heatmap
    fold: int = 1  # pixel (un)shuffle factor: internal resolution = input_size / fold
    city_map: bool = True
    tx_maps: bool = True
    activation: str = "leaky_relu"
    loss: str = "mae"
    max_bs: int = MAX_BS
    best_fit: bool = False  # residual encoding: add the RMS residual of the best-fitting 1 m pixel of each cell
    # Local fingerprint refinement of the centre of mass (radioloc.localizers.locunet; 0 = off). Not part of the
    # network: chosen on the validation split after training and stored with the weights.
    refine_radius_m: float = 0.0
    refine_k: int = 0
    # ``com``: the paper's centre of mass of the quasi-heatmap. ``posterior``: the quasi-heatmap is a learned
    # log-prior, added to the calibrated log-likelihood of every 1 m pixel
    # (:mod:`radioloc.models.likelihood`, tempered by ``temperature``, over the ``prior`` region); the position is
    # that posterior's mean. Its last convolution starts at zero: untrained, it answers exactly as ``bayes``.
    head: str = "com"
    # posterior head: the network also weighs each BS's log-likelihood per cell (exp of a bounded output, 1 at
    # zero), where the radio map of that BS is more or less reliable than the calibration's average
    likelihood_weights: bool = False
    temperature: float = 1.0
    prior: str = "ue-box"
    heatmap_sigma_m: float = 4.0  # head ``heatmap``: standard deviation of the Gaussian target
    # RSS + ToA fusion: one more channel per BS, the reported range minus the BS's dominant-path length in each
    # cell (``TOA_SCALE_M`` units, clipped to +-RESIDUAL_CLIP); the queries must carry ranges
    toa_channels: bool = False

    def __post_init__(self):
        if self.activation not in ACTIVATIONS:
            raise RadiolocError(f"activation must be one of {', '.join(ACTIVATIONS)}, got {self.activation!r}")
        if self.loss not in LOSSES:
            raise RadiolocError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        if self.prior not in UE_REGIONS:
            raise RadiolocError(f"prior must be one of {', '.join(UE_REGIONS)}, got {self.prior!r}")
        if self.head not in HEADS:
            raise RadiolocError(f"head must be one of {', '.join(HEADS)}, got {self.head!r}")
        if self.likelihood_weights and self.head != "posterior":
            raise RadiolocError("likelihood weights need the posterior head")
        if not (np.isfinite(self.heatmap_sigma_m) and self.heatmap_sigma_m > 0):
            raise RadiolocError(f"heatmap_sigma_m must be positive, got {self.heatmap_sigma_m}")
        if not (np.isfinite(self.temperature) and self.temperature > 0):
            raise RadiolocError(f"temperature must be positive, got {self.temperature}")
        if self.encoding not in ENCODINGS:
            raise RadiolocError(f"encoding must be one of {', '.join(ENCODINGS)}, got {self.encoding!r}")
        if len(self.decoder_kernels) != len(self.encoder) - 1:
            raise RadiolocError("decoder_kernels needs one filter per encoder layer but the deepest")
        if self.refine_radius_m < 0 or self.refine_k < 0:
            raise RadiolocError(f"refine_radius_m and refine_k must be >= 0, got {self.refine_radius_m} and {self.refine_k}")
        if 256 % self.input_size or self.input_size % self.fold:
            raise RadiolocError(f"input_size {self.input_size} must divide 256 and be divisible by fold {self.fold}")

    @property
    def cell_m(self) -> float:
        return 256 / self.input_size

    @property
    def in_channels(self) -> int:
        """Channels of the (unfolded) input image."""
        if self.encoding == "paper":
            channels = 2 * self.max_bs
        else:
            channels = self.max_bs + 1 + (1 if self.best_fit else 0)  # residual per BS, cost map, best fit
        channels += self.max_bs if (self.tx_maps and self.encoding == "paper") else (1 if self.tx_maps else 0)
        return channels + (1 if self.city_map else 0) + (self.max_bs if self.toa_channels else 0)

    @property
    def posterior_window(self) -> tuple[int, int]:
        """First and past-the-last pixel (rows and columns alike) of the square the posterior head works on: the
        prior's bounding box (the middle ``ue-box``) grown to whole cells, centred so that rotations and
        transpositions of the map keep it; the whole map for the other priors."""
        if self.prior != "ue-box":
            return 0, 256
        cell = 256 // self.input_size
        first, _ = middle_box(ProtocolConfig().ue_box, 256)
        lo = first // cell * cell
        return lo, 256 - lo

    @property
    def out_channels(self) -> int:
        """Output maps: the quasi-heatmap (or learned log-prior), and one likelihood weight per BS when asked."""
        return 1 + (self.max_bs if self.likelihood_weights else 0)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["encoder"] = [list(layer) for layer in self.encoder]
        data["decoder_kernels"] = list(self.decoder_kernels)
        return data

    @staticmethod
    def from_dict(data: dict) -> LocUNetConfig:
        data = dict(data)
        data["encoder"] = tuple((int(c), int(k), bool(p)) for c, k, p in data["encoder"])
        data["decoder_kernels"] = tuple(int(k) for k in data["decoder_kernels"])
        return LocUNetConfig(**data)


_CPU = LocUNetConfig(
    preset="cpu",
    encoder=((32, 3, False), (48, 3, True), (64, 3, False), (96, 3, True), (128, 3, True)),
    decoder_kernels=(3, 3, 3, 3),
    final_width=32,
    final_kernel=3,
    encoding="residual",
    input_size=64,
    fold=2,
    best_fit=True,
)

PRESETS: dict[str, LocUNetConfig] = {
    "paper": LocUNetConfig(preset="paper", encoder=PAPER_ENCODER, decoder_kernels=PAPER_DECODER_KERNELS),
    "cpu": _CPU,
    # ``cpu`` with two more pooled levels below it (2 x 2, then 1 x 1 cells: the whole map), 4x the parameters at
    # 0.8x the training speed: for the robustness scenario, where the answer depends on which BSs are heard across
    # the map. A ``cpu`` checkpoint grows into it exactly (:func:`grow_locunet`).
    "cpu-deep": replace(_CPU, preset="cpu-deep", encoder=_CPU.encoder + ((192, 3, True), (256, 3, True)), decoder_kernels=(3,) * 6),
    "cpu-fine": replace(_CPU, preset="cpu-fine", input_size=128, fold=4),  # 2 m cells
}


def preset_config(name: str, **overrides) -> LocUNetConfig:
    if name not in PRESETS:
        raise RadiolocError(f"unknown LocUNet preset {name!r} (choose from {', '.join(PRESETS)})")
    return replace(PRESETS[name], **{k: v for k, v in overrides.items() if v is not None})


def _conv(in_channels: int, out_channels: int, kernel: int) -> nn.Conv2d:
    # 'same' padding also for the table's even filters (asymmetric by one pixel)
    return nn.Conv2d(in_channels, out_channels, kernel, padding="same")


class LocUNet(nn.Module):
    """Input image (B, in_channels, S, S) -> position (B, 2) in metres, S = ``config.input_size``."""

    def __init__(self, config: LocUNetConfig):
        super().__init__()
        self.config = config
        fold2 = config.fold * config.fold
        in_channels = config.in_channels * fold2
        self.encoder = nn.ModuleList()
        channels = in_channels
        for width, kernel, _ in config.encoder:
            self.encoder.append(_conv(channels, width, kernel))
            channels = width
        widths = [width for width, _, _ in config.encoder]
        self.decoder = nn.ModuleList()
        for i in range(len(widths) - 2, -1, -1):  # mirror of encoder layer i (0-based), deepest first
            source = widths[i + 1] if i == len(widths) - 2 else widths[i + 1] * 2
            self.decoder.append(_conv(source, widths[i], config.decoder_kernels[len(widths) - 2 - i]))
        self.penultimate = _conv(widths[0] * 2 + in_channels, config.final_width, config.final_kernel)
        self.last = _conv(config.final_width + in_channels, fold2 * config.out_channels, config.final_kernel)
        size = config.input_size
        coords = (torch.arange(size, dtype=torch.float32) + 0.5) * config.cell_m - 0.5  # cell centres in metres
        self.register_buffer("rows", coords.view(1, size, 1), persistent=False)
        self.register_buffer("cols", coords.view(1, 1, size), persistent=False)
        if config.head == "direct":
            deepest = size // config.fold // 2 ** sum(pool for _, _, pool in config.encoder)
            self.direct = nn.Sequential(nn.Flatten(), nn.Linear(widths[-1] * deepest * deepest, 256), nn.LeakyReLU(0.2), nn.Linear(256, 2))
        if config.head == "posterior":
            # the learned log-prior starts at 0 everywhere: an untrained posterior head answers as ``bayes`` does
            nn.init.zeros_(self.last.weight)
            nn.init.zeros_(self.last.bias)
            # A centre-of-mass network's features have any scale (its answer is invariant to it; the shipped one's
            # reach 1e4): normalized, a small step of the last layer is a small change of the log-prior.
            self.head_norm = nn.GroupNorm(1, config.final_width)
            self.register_buffer("log_likelihood", torch.zeros(256, 256))  # the calibrated table, saved with the weights
            lo, hi = config.posterior_window
            pixels = torch.arange(lo, hi, dtype=torch.float32)
            self.register_buffer("pixel_rows", pixels.view(1, -1, 1), persistent=False)
            self.register_buffer("pixel_cols", pixels.view(1, 1, -1), persistent=False)

    def _encode(self, inputs: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        fold = self.config.fold
        x0 = F.pixel_unshuffle(inputs, fold) if fold > 1 else inputs
        skips = []
        x = x0
        for conv, (_, _, pool) in zip(self.encoder, self.config.encoder):
            x = F.leaky_relu_(conv(x), 0.2)
            if pool:
                x = F.avg_pool2d(x, 2)
            skips.append(x)
        return x0, skips

    def heatmap(self, inputs: torch.Tensor) -> torch.Tensor:
        """The quasi-heatmap (B, S, S) after the last activation, in float32."""
        return self._activate(self.outputs(inputs)[:, 0])

    def outputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """(B, out_channels, S, S) float32 before the last activation."""
        fold = self.config.fold
        x0, skips = self._encode(inputs)
        x = skips[-1]
        pools = [pool for _, _, pool in self.config.encoder]
        n = len(skips)
        for step, conv in enumerate(self.decoder):
            i = n - 2 - step  # producing the mirror of encoder layer i
            if step > 0:
                x = torch.cat([x, skips[i + 1]], dim=1)
            if pools[i + 1]:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = F.leaky_relu_(conv(x), 0.2)
        x0 = x0.to(x.dtype)  # under autocast: concatenate in bf16, not promoted to fp32
        x = F.leaky_relu_(self.penultimate(torch.cat([x, skips[0], x0], dim=1)), 0.2)
        if self.config.head == "posterior":
            x = self.head_norm(x)
        raw = self.last(torch.cat([x, x0], dim=1))
        return (F.pixel_shuffle(raw, fold) if fold > 1 else raw).float()

    def _activate(self, raw: torch.Tensor) -> torch.Tensor:
        activation = self.config.activation
        if activation == "leaky_relu":
            return F.leaky_relu(raw, 0.2)
        if activation == "relu":
            return F.relu(raw)
        if activation == "sigmoid":
            return torch.sigmoid(raw)
        b, h, w = raw.shape
        return torch.softmax(raw.reshape(b, -1), dim=1).reshape(b, h, w)

    def posterior(self, inputs: torch.Tensor, log_likelihood: torch.Tensor) -> torch.Tensor:
        """(B, h, h) posterior over the 1 m pixels of ``config.posterior_window`` (the prior's square, h = hi -
        lo): softmax of the calibrated log-likelihood plus the learned log-prior (the quasi-heatmap on the model's
        cells, bounded to +-PRIOR_RANGE). ``log_likelihood`` is (B, h, h) on the same window, or (B, k, h, h) per
        BS for a model with likelihood weights, which multiply each BS's term cell by cell."""
        factor = 256 // self.config.input_size
        lo, hi = self.config.posterior_window
        raw = self.outputs(inputs)[:, :, lo // factor : hi // factor, lo // factor : hi // factor]
        if factor > 1:
            raw = raw.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)
        prior = PRIOR_RANGE * torch.tanh(self._activate(raw[:, 0]) / PRIOR_RANGE)
        if self.config.likelihood_weights:
            if log_likelihood.dim() != 4:
                raise RadiolocError("a LocUNet with likelihood weights needs the log-likelihood of each BS (B, k, 256, 256)")
            k = log_likelihood.shape[1]
            weights = torch.exp(WEIGHT_RANGE * torch.tanh(raw[:, 1 : 1 + k] / WEIGHT_RANGE))
            log_likelihood = (log_likelihood.float() * weights).sum(dim=1)
        logits = (log_likelihood.float() + prior).flatten(1)
        return torch.softmax(logits, dim=1).view_as(log_likelihood)

    def argmax_position(self, heatmap: torch.Tensor) -> torch.Tensor:
        """(B, 2) centre in metres of each heatmap's largest cell (the mode)."""
        size = heatmap.shape[-1]
        index = heatmap.flatten(1).argmax(dim=1)
        return torch.stack([self.rows.view(-1)[index // size], self.cols.view(-1)[index % size]], dim=1)

    def forward(self, inputs: torch.Tensor, log_likelihood: torch.Tensor | None = None, output: str = "position") -> torch.Tensor:
        """Positions (B, 2) in metres; ``output="heatmap"``: the quasi-heatmap (what the keypoint heads train on,
        through this method so that DistributedDataParallel sees the pass)."""
        if output == "heatmap":
            return self.heatmap(inputs)
        head = self.config.head
        if head == "direct":
            return self.direct(self._encode(inputs)[1][-1]).float() + 127.5
        if head == "heatmap":  # the target is non-negative: the mean of the positive part
            return center_of_mass(F.relu(self.heatmap(inputs)), self.rows, self.cols)
        if head == "classify":
            return self.argmax_position(self.heatmap(inputs))
        if head == "posterior":
            if log_likelihood is None:
                raise RadiolocError("the posterior head needs the log-likelihood maps of the queries")
            weights = self.posterior(inputs, log_likelihood)
            return center_of_mass(weights, self.pixel_rows, self.pixel_cols)
        return center_of_mass(self.heatmap(inputs), self.rows, self.cols)


def grow_locunet(source: LocUNet, config: LocUNetConfig) -> LocUNet:
    """A LocUNet of ``config`` that computes exactly what ``source`` computes, when ``config`` only adds encoder
    levels below the source's deepest one (``cpu`` -> ``cpu-deep``).

    The shared layers keep their weights; the decoder convolution that used to read only the source's deepest
    features now also reads the new levels' output through weights set to zero, so the grown network starts from
    the source's answers and the new levels join in as those weights move away from zero."""
    small, n_small, n_big = source.config, len(source.config.encoder), len(config.encoder)
    own = ("preset", "encoder", "decoder_kernels", "refine_radius_m", "refine_k")
    same_rest = all(getattr(config, f.name) == getattr(small, f.name) for f in fields(config) if f.name not in own)
    if n_big <= n_small or config.encoder[:n_small] != small.encoder or config.decoder_kernels[n_big - n_small :] != small.decoder_kernels or not same_rest:
        raise RadiolocError(f"preset {config.preset!r} does not extend preset {small.preset!r} with deeper levels only")
    grown = LocUNet(config)
    state = grown.state_dict()
    extra = n_big - n_small
    for name, value in source.state_dict().items():
        if not name.startswith("decoder."):  # encoder levels, penultimate and last layers: the same names
            state[name] = value
            continue
        _, index, rest = name.split(".", 2)  # decoder.{step}.{weight|bias}; steps count from the deepest level
        target = f"decoder.{int(index) + extra}.{rest}"
        if int(index) == 0 and rest == "weight":
            joined = torch.zeros_like(state[target])  # input channels: [new levels' output, old deepest features]
            joined[:, value.shape[1] :] = value
            value = joined
        state[target] = value
    grown.load_state_dict(state)
    return grown


def add_toa_channels(source: LocUNet) -> LocUNet:
    """``source`` with ToA input channels whose weights start at zero: it answers exactly as ``source`` until
    training moves them (fine-tuning a trained RSS model into an RSS + ToA one). The new channels come last in
    the input, so after the pixel unshuffle they are the last columns of every layer that reads the input."""
    if source.config.toa_channels:
        raise RadiolocError("the model already has ToA channels")
    widened = LocUNet(replace(source.config, toa_channels=True, refine_radius_m=0.0, refine_k=0))
    state = widened.state_dict()
    for name, value in source.state_dict().items():
        if state[name].shape != value.shape:  # a layer reading the (unshuffled) input: new input columns at the end
            padded = torch.zeros_like(state[name])
            padded[:, : value.shape[1]] = value
            value = padded
        state[name] = value
    widened.load_state_dict(state)
    return widened


def center_of_mass(heatmap: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """(B, H, W) quasi-heatmap -> (B, 2) ``sum(coord * H) / (sum(H) + 1e-7)``; negative values allowed."""
    total = heatmap.sum(dim=(1, 2)) + 1e-7
    row = (heatmap * rows).sum(dim=(1, 2)) / total
    col = (heatmap * cols).sum(dim=(1, 2)) / total
    return torch.stack([row, col], dim=1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@nb.njit(parallel=True, cache=True, nogil=True)
def _outdoor_sums(gray, outdoor, factor, out):
    """out (M, n_bs, S, S): per cell, the sum of the gray levels of its outdoor pixels."""
    n_bs = gray.shape[1]
    for index in nb.prange(gray.shape[0] * n_bs):
        m, b = index // n_bs, index % n_bs
        for ci in range(out.shape[2]):
            for cj in range(out.shape[3]):
                total = 0
                for r in range(ci * factor, (ci + 1) * factor):
                    for c in range(cj * factor, (cj + 1) * factor):
                        if outdoor[m, r, c]:
                            total += gray[m, b, r, c]
                out[m, b, ci, cj] = total


def pool_to_cells(gray: np.ndarray, buildings: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Average radio maps (M, n_bs, 256, 256) gray levels over ``factor`` x ``factor`` cells, outdoor pixels only
    (a cell inside buildings stays 0), and the building fraction per cell (M, S, S). Gray levels are linear in
    dB, so this is the mean pathloss in dB."""
    if factor == 1:
        return gray.astype(np.float32), buildings.astype(np.float32)
    m, n_bs, h, w = gray.shape
    outdoor = (buildings == 0).astype(np.float32)
    weight = outdoor.reshape(m, h // factor, factor, w // factor, factor).sum(axis=(2, 4))
    if gray.dtype == np.uint8:  # gray levels: integer sums, exact either way, without a float copy of every map
        summed = np.empty((m, n_bs, h // factor, w // factor), dtype=np.float32)
        _outdoor_sums(gray, buildings == 0, factor, summed)
    else:
        summed = (gray * outdoor[:, None]).reshape(m, n_bs, h // factor, factor, w // factor, factor).sum(axis=(3, 5))
    pooled = np.where(weight[:, None] > 0, summed / np.maximum(weight[:, None], 1.0), 0.0).astype(np.float32)
    return pooled, (1.0 - weight / (factor * factor)).astype(np.float32)


class InputEncoder:
    """Assembles LocUNet input images for queries, from radio maps cached once per scene at the model's cell
    size (the part of the work that does not depend on the query)."""

    def __init__(self, config: LocUNetConfig, scenes: SceneBank, device: torch.device | str = "cpu", log_likelihood: np.ndarray | None = None):
        self.config = config
        self.scenes = scenes
        self.log_likelihood = None if log_likelihood is None else np.asarray(log_likelihood, dtype=np.float32)
        if config.head == "posterior" and self.log_likelihood is None:
            raise RadiolocError("the posterior head needs a likelihood calibration table")
        self.support = ue_region(scenes.buildings, config.prior) if config.head == "posterior" else None
        factor = 256 // config.input_size
        maps, buildings = pool_to_cells(scenes.radio_maps, scenes.buildings, factor)
        self.device = torch.device(device)
        self.maps = torch.from_numpy(maps).to(self.device)  # (M, n_bs, S, S) gray levels (float)
        self.buildings = torch.from_numpy(buildings).to(self.device)  # (M, S, S) building fraction
        self.lengths = None
        if config.toa_channels:
            if scenes.path_length_m is None:
                raise RadiolocError(
                    "a LocUNet with ToA channels needs scenes with path-length maps (give --toa-sigma SIGMA; in Python, radioloc.datasets.ranging.attach_ranges)"
                )
            # no path to a pixel: as if it were far (the residual clips there)
            far = np.nan_to_num(scenes.path_length_m, nan=1e4)
            self.lengths = torch.from_numpy(pool_to_cells(far, scenes.buildings, factor)[0]).to(self.device)
        self.bs_cells = torch.from_numpy(np.clip(np.floor(scenes.bs_positions / factor).astype(np.int64), 0, config.input_size - 1)).to(
            self.device
        )  # (M, n_bs, 2)

    def encode(self, map_slot: np.ndarray | torch.Tensor, bs_ids: np.ndarray | torch.Tensor, pathloss_db: np.ndarray | torch.Tensor,
               ranges_m: np.ndarray | None = None) -> torch.Tensor:  # fmt: skip
        """(B, in_channels, S, S) float32 for queries given as arrays (ids -1 / NaN = absent BS; ranges in metres,
        NaN = none, for a model with ToA channels)."""
        cfg = self.config
        slot = torch.as_tensor(np.asarray(map_slot), device=self.device).long()
        ids = torch.as_tensor(np.asarray(bs_ids), device=self.device).long()
        levels = (torch.as_tensor(np.asarray(pathloss_db, dtype=np.float32), device=self.device) - NOISE_FLOOR_DB) / DB_PER_GRAY
        b, k = ids.shape
        if k > cfg.max_bs:
            raise RadiolocError(f"at most {cfg.max_bs} BSs per query, got {k}")
        present = ids >= 0
        safe_ids = torch.where(present, ids, torch.zeros_like(ids))
        levels = torch.where(present, torch.nan_to_num(levels, nan=0.0), torch.zeros_like(levels))
        maps = self.maps[slot[:, None], safe_ids]  # (B, k, S, S)
        weight = present.to(maps.dtype)[:, :, None, None]
        size = cfg.input_size
        channels = []
        if cfg.encoding == "paper":
            pair = torch.stack([maps / 255.0, (levels / 255.0)[:, :, None, None].expand(b, k, size, size)], dim=2) * weight[:, :, None]
            channels.append(pair.reshape(b, 2 * k, size, size))
            if k < cfg.max_bs:
                channels.append(maps.new_zeros(b, 2 * (cfg.max_bs - k), size, size))
        else:
            residual = torch.clamp((maps - levels[:, :, None, None]) * (DB_PER_GRAY / RESIDUAL_SCALE_DB), -RESIDUAL_CLIP, RESIDUAL_CLIP) * weight
            channels.append(residual)
            if k < cfg.max_bs:
                channels.append(maps.new_zeros(b, cfg.max_bs - k, size, size))
            n_present = weight.sum(dim=1, keepdim=True).clamp(min=1.0)
            channels.append(((residual**2).sum(dim=1, keepdim=True) / n_present).clamp(max=RESIDUAL_CLIP**2) / RESIDUAL_CLIP)
            if cfg.best_fit:
                channels.append(self._best_fit(slot, ids, levels, present))
        if cfg.tx_maps:
            cells = self.bs_cells[slot[:, None], safe_ids]  # (B, k, 2)
            tx = maps.new_zeros(b, cfg.max_bs if cfg.encoding == "paper" else 1, size * size)
            flat = cells[..., 0] * size + cells[..., 1]
            channel = torch.arange(k, device=self.device).expand(b, k) if cfg.encoding == "paper" else torch.zeros_like(flat)
            tx[torch.arange(b, device=self.device)[:, None].expand(b, k)[present], channel[present], flat[present]] = 1.0
            channels.append(tx.view(b, -1, size, size))
        if cfg.city_map:
            channels.append(self.buildings[slot][:, None])
        if cfg.toa_channels:
            if ranges_m is None:
                raise RadiolocError(
                    "this LocUNet fuses ToA: the queries must carry ranges (give --toa-sigma SIGMA; in Python, radioloc.datasets.ranging.attach_ranges)"
                )
            ranges = torch.as_tensor(np.asarray(ranges_m, dtype=np.float32), device=self.device)
            known = present & torch.isfinite(ranges)
            lengths = self.lengths[slot[:, None], safe_ids]
            toa = torch.clamp((torch.nan_to_num(ranges, nan=0.0)[:, :, None, None] - lengths) / TOA_SCALE_M, -RESIDUAL_CLIP, RESIDUAL_CLIP)
            channels.append(toa * known.to(toa.dtype)[:, :, None, None])
            if k < cfg.max_bs:
                channels.append(maps.new_zeros(b, cfg.max_bs - k, size, size))
        return torch.cat(channels, dim=1)

    def batches(self, data: LocalizationData, dtype: torch.dtype | None, batch: int = 64):
        """Yield ``(start, stop, inputs, log_likelihood)`` per batch of ``data``'s queries: the input images in
        ``dtype`` (None: float32), channels_last, and for the posterior head the log-likelihood maps (else None)."""
        q = data.queries
        for start in range(0, len(q), batch):
            stop = min(start + batch, len(q))
            part = (q.map_slot[start:stop], q.bs_ids[start:stop], q.pathloss_db[start:stop])
            ranges = None if q.ranges_m is None else q.ranges_m[start:stop]
            inputs = self.encode(*part, ranges).to(dtype or torch.float32).contiguous(memory_format=torch.channels_last)
            yield start, stop, inputs, self.log_likelihood_maps(*part) if self.config.head == "posterior" else None

    def _best_fit(self, slot: torch.Tensor, ids: torch.Tensor, levels: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
        """(B, 1, S, S): per cell, the RMS residual (10 dB units, clipped at 4) of its best-fitting 1 m pixel,
        what kNN ranks pixels by; cell means blur it at shadow edges."""
        size = self.config.input_size
        ids_np = torch.where(present, ids, torch.full_like(ids, -1)).cpu().numpy()
        tables = squared_residual_tables(np.where(ids_np >= 0, levels.cpu().numpy(), np.nan))
        best = min_cost_per_cell(self.scenes.radio_maps, slot.cpu().numpy(), ids_np, tables, 256 // size)
        out = np.sqrt(best / np.maximum((ids_np >= 0).sum(axis=1), 1).astype(np.float32)[:, None, None])
        scaled = np.minimum(out * np.float32(DB_PER_GRAY / RESIDUAL_SCALE_DB), np.float32(RESIDUAL_CLIP)).astype(np.float32)
        return torch.from_numpy(scaled).to(self.device)[:, None]

    def log_likelihood_maps(self, map_slot: np.ndarray, bs_ids: np.ndarray, pathloss_db: np.ndarray) -> torch.Tensor:
        """Tempered log-likelihood of every 1 m pixel of the posterior window for the queries (posterior head),
        ``POSTERIOR_OUTSIDE`` outside the prior's region: (B, h, h), or (B, k, h, h) one BS at a time for a model
        with likelihood weights (an absent BS: zeros inside the region)."""
        slot = np.asarray(map_slot, dtype=np.int64)
        ids = np.asarray(bs_ids, dtype=np.int64)
        tables = likelihood_tables(self.log_likelihood, self.config.temperature, np.where(ids >= 0, pathloss_db, np.nan))
        lo, hi = self.config.posterior_window

        def relative(ids_used: np.ndarray) -> np.ndarray:
            costs = relative_cost_maps(self.scenes.radio_maps, slot, ids_used, tables, self.support)[:, lo:hi, lo:hi]
            return np.maximum(np.negative(costs), np.float32(POSTERIOR_OUTSIDE))

        if not self.config.likelihood_weights:
            return torch.from_numpy(relative(ids)).to(self.device)
        columns = np.arange(ids.shape[1])
        per_bs = np.stack([relative(np.where(columns == j, ids, -1)) for j in columns], axis=1)
        return torch.from_numpy(per_bs).to(self.device)


def locunet_weights(spec: str | Path | None) -> Path:
    """The checkpoint file for a shipped model's name (``locunet``, ``locunet-robust``; None = ``locunet``) or a
    path."""
    if spec is None:
        return SHIPPED_WEIGHTS
    return SHIPPED_MODELS.get(str(spec), Path(spec))


def load_locunet(path: str | Path | None = None, preset: str | None = None) -> LocUNet:
    """A trained LocUNet from a checkpoint or a shipped model's name (the shipped nominal CPU model when ``path``
    is None); ``preset``, when given, must match the checkpoint's."""
    path = locunet_weights(path)
    return load_model(path, KIND, "LocUNet", LocUNetConfig.from_dict, LocUNet, preset)


__all__ = [
    "LocUNet", "LocUNetConfig", "InputEncoder", "add_toa_channels", "PRESETS", "SHIPPED_MODELS", "center_of_mass", "grow_locunet", "load_locunet", "locunet_weights",
    "preset_config",
]  # fmt: skip
