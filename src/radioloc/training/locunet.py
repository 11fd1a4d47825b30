"""Train LocUNet's weights (the localizer around them, with its refinement and radii, is
:mod:`radioloc.localizers.locunet`).

An epoch is ``samples_per_epoch`` random training queries (0 = the whole split, the paper's epoch). Each
batch is assembled on the fly from radio maps cached at the model's cell size, under a random rotation or
transposition of the scene (the problem is equivariant to them). With probability ``subset_probability`` a
query keeps only a random 1-4 of its BSs, so one model answers queries with 1 to 5 BSs.

The ``paper`` preset defaults to the published recipe (Adam lr 1e-5, x0.1 after 30 epochs, 50 epochs, batch 15,
MAE loss); the CPU presets use Adam with a one-cycle schedule (peak 1e-3) and gradient clipping at norm 1,
which converges on this 2-core machine (notes, section 3). ``last.pt`` is written at every validation, so a
killed run resumes where it stopped; ``best.pt`` holds the best validation weights, which
``radioloc train locunet`` then hands to the localizer's ``fit`` (refinement and radii, saved into ``best.pt``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from rich.progress import Progress

from radioloc.datasets.localization import LocalizationData, concat_localization, dataset_provenance, load_localization
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, read_json_object
from radioloc.models.checkpoint import save_checkpoint
from radioloc.models.likelihood import LikelihoodCalibration, calibration_path
from radioloc.models.locunet import KIND, InputEncoder, LocUNet, add_toa_channels, count_parameters, grow_locunet, load_locunet, preset_config
from radioloc.models.runtime import Runtime
from radioloc.training import distributed
from radioloc.training.resume import progress_columns, resume_training


@dataclass(frozen=True)
class LocUNetTrainConfig:
    preset: str = "cpu"
    estimate: str = "estimate"  # estimate | true | noisy:SIGMA
    sim: str = "DPM"
    measurement: str = "DPM"  # the simulation whose truth the UE reports (IRT2cars: the robustness scenario)
    batch_size: int = 32
    lr: float = 1e-3
    schedule: str = "onecycle"  # onecycle | step
    step_epochs: int = 30  # step schedule: x0.1 after this many epochs
    epochs: int = 16
    samples_per_epoch: int = 40960  # 0 = the whole training split
    val_queries: int = 3000
    grad_clip: float = 1.0
    subset_probability: float = 0.3
    augment: bool = True
    activation: str = "leaky_relu"
    loss: str = "mae"
    city_map: bool = True
    tx_maps: bool = True
    toa_channels: bool = False  # RSS + ToA fusion: range residual channels (the data must carry ranges)
    init: str | None = None  # start from this LocUNet checkpoint's weights (fine-tuning): same model config, or a smaller one that grows into it
    head: str = (
        "com"  # com (the paper's centre of mass), posterior (a learned prior on the calibrated likelihood), or a keypoint baseline: heatmap, direct, classify
    )
    heatmap_sigma_m: float = 4.0  # head heatmap: the Gaussian target's standard deviation
    likelihood: str | None = None  # posterior head: a likelihood calibration file or a shipped one (bayes, bayes-robust)
    likelihood_weights: bool = False  # posterior head: also learn a weight per BS and cell on its log-likelihood
    seed: int = 0

    def __post_init__(self):
        if self.head != "posterior" and (self.likelihood is not None or self.likelihood_weights):
            raise RadiolocError(f"--likelihood and --likelihood-weights apply to --head posterior only, not to --head {self.head}")

    @staticmethod
    def for_preset(preset: str, **overrides) -> LocUNetTrainConfig:
        if preset == "paper":  # the published recipe
            base = dict(lr=1e-5, schedule="step", step_epochs=30, epochs=50, batch_size=15, samples_per_epoch=0, grad_clip=0.0)
        else:
            base = {}
        return LocUNetTrainConfig(preset=preset, **{**base, **{k: v for k, v in overrides.items() if v is not None}})

    def model_config(self):
        return preset_config(self.preset, activation=self.activation, loss=self.loss, city_map=self.city_map, tx_maps=self.tx_maps, head=self.head,
                             heatmap_sigma_m=self.heatmap_sigma_m, toa_channels=self.toa_channels, likelihood_weights=self.likelihood_weights)  # fmt: skip


def dihedral_batch(inputs: torch.Tensor, position: torch.Tensor, k: int, transpose: bool, *images: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Rotate by k x 90 degrees (as torch.rot90) and optionally transpose input images (B, C, S, S), the
    positions (B, 2) in metres on the 256 m map (cell centres map onto cell centres: row -> 255 - row) and any
    further images (B, H, W) of the same map at another resolution; returns them in that order."""
    images = list(images)
    if transpose:
        inputs = inputs.transpose(-1, -2)
        position = position[:, [1, 0]]
        images = [image.transpose(-1, -2) for image in images]
    for _ in range(k):
        inputs = torch.rot90(inputs, 1, dims=(-2, -1))
        position = torch.stack([255.0 - position[:, 1], position[:, 0]], dim=1)
        images = [torch.rot90(image, 1, dims=(-2, -1)) for image in images]
    return (inputs, position, *images)


def random_subsets(bs_ids: np.ndarray, pathloss: np.ndarray, probability: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Drop BSs at random: with ``probability`` a query keeps a random 1..k-1 of its k BSs."""
    ids, values = bs_ids.copy(), pathloss.copy()
    n, k = ids.shape
    if probability <= 0 or k < 2:
        return ids, values
    chosen = rng.random(n) < probability
    keep = rng.integers(1, k, size=n)
    rank = np.argsort(np.argsort(rng.random((n, k)), axis=1), axis=1)  # a random order of each query's BSs
    drop = chosen[:, None] & (rank >= keep[:, None])
    ids[drop] = -1
    values[drop] = np.nan
    return ids, values


def localization_loss(estimate: torch.Tensor, truth: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean Euclidean distance (MAE, metres) or mean squared distance (MSE, m^2)."""
    squared = ((estimate - truth) ** 2).sum(dim=1)
    return squared.mean() if kind == "mse" else torch.sqrt(squared + 1e-9).mean()


def gaussian_targets(position: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor, sigma_m: float) -> torch.Tensor:
    """(B, S, S) Gaussian heatmaps of peak 1 centred on each position (metres), on the model's cell centres."""
    d2 = (rows.view(1, -1, 1) - position[:, 0, None, None]) ** 2 + (cols.view(1, 1, -1) - position[:, 1, None, None]) ** 2
    return torch.exp(-d2 / (2.0 * sigma_m**2))


def training_loss(model: LocUNet, inputs: torch.Tensor, extra: list, position: torch.Tensor, config: LocUNetTrainConfig, runtime: Runtime,
                  net: torch.nn.Module | None = None) -> torch.Tensor:  # fmt: skip
    """The loss each head trains with: the localization loss on the answer (com, posterior, direct), the squared
    error to a Gaussian target heatmap (heatmap), the cross-entropy of the truth's cell (classify). ``net``: the
    module to run (``model`` inside DistributedDataParallel)."""
    head = model.config.head
    net = net or model
    with runtime.autocast():
        output = net(inputs, output="heatmap") if head in ("heatmap", "classify") else net(inputs, *extra)
    output = output.float()
    if head == "heatmap":
        return ((output - gaussian_targets(position, model.rows, model.cols, model.config.heatmap_sigma_m)) ** 2).mean()
    if head == "classify":
        size, cell = output.shape[-1], model.config.cell_m
        index = torch.clamp((position / cell).long(), 0, size - 1)
        return F.cross_entropy(output.flatten(1), index[:, 0] * size + index[:, 1])
    return localization_loss(output, position, config.loss)


@torch.no_grad()
def network_positions(model: LocUNet, encoder: InputEncoder, data: LocalizationData, runtime: Runtime, batch: int = 64) -> np.ndarray:
    """(n, 2) centres of mass in metres, clipped to the map: the validation answers during training (the local
    refinement and the radii belong to the localizer, :mod:`radioloc.localizers.locunet`)."""
    model.eval()
    out = np.empty((len(data.queries), 2), dtype=np.float64)
    for start, stop, inputs, log_likelihood in encoder.batches(data, runtime.dtype, batch):
        with runtime.autocast():
            out[start:stop] = model(inputs, log_likelihood).float().cpu().numpy()
    return np.clip(out, 0.0, data.scenes.buildings.shape[-1] - 1.0)


def _mae(estimate: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean(np.hypot(estimate[:, 0] - truth[:, 0], estimate[:, 1] - truth[:, 1])))


def _stored_config(path: Path) -> dict:
    """A run's saved training configuration, with the fields added since it was written at their defaults (a run
    started before an option existed resumes)."""
    defaults = {f.name: f.default for f in fields(LocUNetTrainConfig)}
    return {**defaults, **read_json_object(path, "training configuration")}


def load_training_splits(roots: list[Path], config: LocUNetTrainConfig, quiet: bool = False) -> tuple[LocalizationData, LocalizationData]:
    """The train splits of ``roots`` joined, and their val splits, as the model sees them."""
    for root in roots:
        if not Path(root).is_dir():
            raise RadiolocError(f"{root}: dataset folder not found")
    return tuple(
        concat_localization([load_localization(root, split, config.estimate, config.sim, config.measurement, quiet=quiet) for root in roots])
        for split in ("train", "val")
    )


def train_locunet(
    data: str | Path | list[str | Path] | tuple[LocalizationData, LocalizationData],
    out_dir: str | Path,
    config: LocUNetTrainConfig,
    runtime: Runtime | None = None,
    quiet: bool = False,
) -> dict:
    """Train (or resume) into ``out_dir`` from a dataset folder, a list of them (their train splits joined, and
    their val splits), or already loaded (train, val) data; returns the summary written to
    ``out_dir/summary.json``."""
    place = distributed.current()
    place.check_batch(config.batch_size)
    roots = [] if isinstance(data, tuple) else [Path(data)] if isinstance(data, (str, Path)) else [Path(root) for root in data]
    for root in roots:  # every folder before anything is written or loaded (minutes for big ones)
        if not root.is_dir():
            raise RadiolocError(f"{root}: dataset folder not found")
    out_dir = Path(out_dir)
    runtime = runtime or Runtime.pick(distributed.device_for(None))
    quiet = quiet or not place.main
    config_path = out_dir / "train_config.json"
    if config_path.exists() and _stored_config(config_path) != asdict(config):
        raise RadiolocError(f"{out_dir}: holds a run with a different training configuration; choose another --out")
    train, val = data if isinstance(data, tuple) else load_training_splits(roots, config, quiet)
    trained_on = dataset_provenance(train) + dataset_provenance(val)  # recorded in the checkpoint: calibrations refuse these maps
    if len(train.queries) == 0 or len(val.queries) == 0:
        raise RadiolocError("LocUNet training needs queries in both the train and the val split")

    torch.manual_seed(config.seed)
    model_config = config.model_config()
    table = None
    if config.head == "posterior":
        if config.likelihood is None:
            raise RadiolocError("--head posterior needs --likelihood (a calibration file from `radioloc train bayes`, or bayes / bayes-robust)")
        calibration = LikelihoodCalibration.load(calibration_path(config.likelihood))
        calibration.check_scenario(train, str(calibration_path(config.likelihood)))
        model_config = replace(model_config, temperature=calibration.temperature, prior=calibration.config.prior)
        table = calibration.log_likelihood
    model = runtime.prepare(LocUNet(model_config))
    if table is not None:
        model.log_likelihood.copy_(torch.from_numpy(table))
    train_encoder = InputEncoder(model_config, train.scenes, runtime.device, table)
    val_encoder = InputEncoder(model_config, val.scenes, runtime.device, table)
    val_index = np.sort(np.random.default_rng(config.seed + 1).choice(len(val.queries), size=min(config.val_queries, len(val.queries)), replace=False))
    val_data = val.subset(val_index)
    # Written only now that the data and the model are known to be good: a run that fails at startup leaves
    # nothing that would refuse the corrected command.
    if place.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(config_path, asdict(config))

    per_epoch = config.samples_per_epoch or len(train.queries)
    steps_per_epoch = max(1, per_epoch // config.batch_size)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    if config.schedule == "onecycle":
        scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=steps_per_epoch * config.epochs, pct_start=0.1)
    elif config.schedule == "step":
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=steps_per_epoch * config.step_epochs, gamma=0.1)
    else:
        raise RadiolocError(f"schedule must be 'onecycle' or 'step', got {config.schedule!r}")

    # fp16 autocast (CUDA without bf16) needs loss scaling; bf16 and fp32 do not
    scaler = torch.amp.GradScaler(runtime.device.type, enabled=runtime.dtype == torch.float16)
    state = {"epoch": 0, "best_val_mae_m": float("inf"), "history": [], "seconds": 0.0}
    rng = np.random.default_rng(config.seed)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    if config.init and not last_path.exists():
        start = load_locunet(config.init)
        head_fields = dict(
            head=model_config.head, temperature=model_config.temperature, prior=model_config.prior, likelihood_weights=model_config.likelihood_weights
        )
        if replace(start.config, refine_radius_m=0.0, refine_k=0) == model_config:
            model.load_state_dict(start.state_dict())
        elif not start.config.toa_channels and replace(start.config, refine_radius_m=0.0, refine_k=0, toa_channels=True) == model_config:
            model.load_state_dict(add_toa_channels(start).state_dict())  # an RSS model learns to read ranges too
        elif replace(start.config, refine_radius_m=0.0, refine_k=0, **head_fields) == model_config and start.config.head == "com":
            # the posterior head on a trained centre-of-mass network: its layers but the last, which starts at zero
            kept = {k: v for k, v in start.state_dict().items() if not k.startswith("last.")}
            model.load_state_dict({**model.state_dict(), **kept})
        else:
            try:  # a smaller preset grows into this one (cpu -> cpu-deep), starting from its answers
                model.load_state_dict(grow_locunet(start, model_config).state_dict())
            except RadiolocError:
                raise RadiolocError(
                    f"{config.init}: --init checkpoint has another model configuration than preset {config.preset!r} (and does not grow into it)"
                ) from None
    resumed = resume_training(last_path, KIND + "-training", model, optimizer, scheduler, state, lambda s: s["epoch"] * steps_per_epoch)
    if resumed is not None:
        state, rng = resumed
    started = time.perf_counter() - state["seconds"]
    q = train.queries
    net = place.wrap(model)
    with Progress(*progress_columns(), disable=quiet) as progress:
        task = progress.add_task(f"LocUNet {config.preset}", total=config.epochs * steps_per_epoch, completed=state["epoch"] * steps_per_epoch, status="")
        while state["epoch"] < config.epochs:
            model.train()
            losses = []
            for _ in range(steps_per_epoch):
                index = rng.integers(0, len(q), size=config.batch_size)  # the global batch: every process draws it
                ids, pathloss = random_subsets(q.bs_ids[index], q.pathloss_db[index], config.subset_probability, rng)
                turns, transpose = (int(rng.integers(4)), bool(rng.integers(2))) if config.augment else (0, False)
                mine = place.shard(np.arange(config.batch_size))  # and keeps its share
                index, ids, pathloss = index[mine], ids[mine], pathloss[mine]
                ranges = None if q.ranges_m is None else np.where(ids >= 0, q.ranges_m[index], np.nan)
                inputs = train_encoder.encode(q.map_slot[index], ids, pathloss, ranges)
                extra = [train_encoder.log_likelihood_maps(q.map_slot[index], ids, pathloss)] if config.head == "posterior" else []
                position = torch.from_numpy(q.position[index]).float().to(runtime.device)
                if config.augment:
                    inputs, position, *extra = dihedral_batch(inputs, position, turns, transpose, *extra)
                inputs = inputs.contiguous(memory_format=torch.channels_last)
                loss = training_loss(model, inputs, extra, position, config, runtime, net)
                optimizer.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                if config.grad_clip > 0:
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
                scaler.step(optimizer)
                scaler.update()
                scheduler.step()
                losses.append(place.mean(float(loss.detach())))  # the whole batch's loss
                progress.advance(task)
            # process 0 validates and writes; the others wait for it, so that all resume from the same last.pt
            val_mae = _mae(network_positions(model, val_encoder, val_data, runtime), val_data.queries.position) if place.main else float("nan")
            state["epoch"] += 1
            state["seconds"] = time.perf_counter() - started
            state["history"].append(
                {"epoch": state["epoch"], "train_loss": round(float(np.mean(losses)), 6), "val_mae_m": round(val_mae, 3), "seconds": round(state["seconds"], 1)}
            )
            next_seed = int(rng.integers(2**63))
            if place.main:
                if val_mae < state["best_val_mae_m"]:
                    state["best_val_mae_m"] = val_mae
                    save_checkpoint(best_path, KIND, model_config.to_dict(), {k: v.cpu() for k, v in model.state_dict().items()}, val_mae_m=val_mae, epoch=state["epoch"],
                                    trained_on=json.dumps(trained_on))  # fmt: skip
                save_checkpoint(
                    last_path,
                    KIND + "-training",
                    model_config.to_dict(),
                    {k: v.cpu() for k, v in model.state_dict().items()},
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict(),
                    state=json.dumps(state),
                    rng_seed=next_seed,
                )
            place.barrier()
            rng = np.random.default_rng(next_seed)  # the stream a resumed run continues with
            progress.update(task, status=f"epoch {state['epoch']}/{config.epochs} val MAE {val_mae:.2f} m (best {state['best_val_mae_m']:.2f})")
    summary = {
        "preset": config.preset,
        "parameters": count_parameters(model),
        "runtime": runtime.describe(),
        "data": train.source,
        "train_queries": len(train.queries),
        "val_queries_used": len(val_data.queries),
        "best_val_mae_m": state["best_val_mae_m"],
        "training_minutes": round(state["seconds"] / 60, 1),
        "processes": place.world_size,
        "history": state["history"],
        "checkpoint": str(best_path),
    }
    if place.main:
        atomic_write_json(out_dir / "summary.json", summary)
    return summary
