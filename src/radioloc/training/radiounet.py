"""Train RadioUNet in two phases (first U, then the second U with the first frozen).

An epoch is a fixed number of random (map, transmitter) samples, each under a random rotation/transposition
of the scene (the dominant-path model is exactly equivariant to them). MSE on gray levels (censored at the
noise floor, see :func:`censored_mse`), Adam, step decay
(x0.1 at 2/3 of each phase), the best validation weights of each phase kept. ``last.pt`` is written after
every epoch, so a killed run resumes where it stopped; ``best.pt`` is the model to use.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from radioloc.datasets.radiomaps import RadioMapSet, load_radio_maps
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, read_json_object
from radioloc.models.checkpoint import load_checkpoint, save_checkpoint
from radioloc.models.radiounet import RadioUNet, count_parameters, grow_radiounet, load_radiounet, preset_config
from radioloc.models.runtime import Runtime
from radioloc.propagation.graylevel import DB_PER_GRAY
from radioloc.training import distributed
from radioloc.training.resume import check_schedule, load_part, progress_columns, read_training_checkpoint


@dataclass(frozen=True)
class RadioUNetTrainConfig:
    preset: str = "cpu"
    sim: str = "DPM"
    use_cars: bool = False
    batch_size: int = 16
    lr: float = 1e-3
    epochs_first: int = 40  # the shipped cpu model's schedule: about 35 minutes on the 2-core CPU
    epochs_second: int = 3
    samples_per_epoch: int = 4096
    val_samples: int = 480
    seed: int = 0
    init: str | None = None  # start from this RadioUNet checkpoint: the same preset, or one it grows into (cpu -> cpu-open)

    @staticmethod
    def for_preset(preset: str, **overrides) -> RadioUNetTrainConfig:
        if preset == "paper":  # the published recipe: Adam 1e-4, 50 epochs per U, batch 15
            base = dict(lr=1e-4, epochs_first=50, epochs_second=50, batch_size=15)
        else:
            base = {}
        return RadioUNetTrainConfig(preset=preset, **{**base, **overrides})


def dihedral(images: torch.Tensor, tx: torch.Tensor, k: int, transpose: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Rotate (k x 90 degrees, as torch.rot90) and optionally transpose images (..., H, W) and (row, col) points."""
    size = images.shape[-1]
    if transpose:
        images = images.transpose(-1, -2)
        tx = tx[:, [1, 0]]
    for _ in range(k):
        images = torch.rot90(images, 1, dims=(-2, -1))
        tx = torch.stack([size - 1 - tx[:, 1], tx[:, 0]], dim=1)
    return images, tx


def censored_mse(prediction: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    """MSE on gray / 255 where the truth is above the noise floor; where it is not (gray 0), only a
    prediction above the floor is penalized. The stored truth says "at most the floor" there, nothing more."""
    error = torch.where(truth > 0, prediction - truth, torch.relu(prediction))
    return torch.mean(error**2)


class CoarseDPMCache:
    """The coarse-DPM input cells (:meth:`RadioUNet.coarse_dpm_cells`) of every (map, transmitter) sample of a
    set, computed the first time a sample is drawn and kept as float16 (66 KB a sample on 2 m cells). They
    cost about 10 ms a sample, nearly half of a training step, and a run draws every sample a dozen times.
    The coarse simulation is exactly equivariant to the dihedral augmentations, so the cells of the stored
    orientation are rotated along with the maps (:func:`augmented_geometry`)."""

    def __init__(self, model: RadioUNet, data: RadioMapSet):
        self.model, self.data = model, data
        self.filled = np.zeros(len(data), dtype=bool)
        self.grids: list[np.ndarray] | None = None

    def cells(self, index: np.ndarray) -> list[torch.Tensor]:
        """One (B, 1, G, G) float32 tensor per grid for the samples ``index``."""
        index = np.asarray(index)
        missing = np.unique(index[~self.filled[index]])
        if len(missing):
            slots, txs = self.data.pair(missing)
            tx = self.data.tx[slots, txs]
            fresh = self.model.coarse_dpm_cells(self.data.buildings[slots], tx[:, 0], tx[:, 1])
            if self.grids is None:
                self.grids = [np.empty((len(self.data), *grid.shape[1:]), dtype=np.float16) for grid in fresh]
            for store, grid in zip(self.grids, fresh):
                store[missing] = grid
            self.filled[missing] = True
        return [torch.from_numpy(store[index].astype(np.float32)) for store in self.grids]


def augmented_geometry(
    model: RadioUNet, buildings: torch.Tensor, tx: torch.Tensor, cells: list[torch.Tensor] | None, k: int = 0, transpose: bool = False
) -> np.ndarray | None:
    """The model's geometry input for maps and Tx already rotated by (k, transpose), from coarse-DPM cells of
    the unrotated maps (or None to compute everything on the rotated maps)."""
    if not (model.config.visibility or model.config.detour or model.config.coarse_dpm):
        return None
    mask = np.ascontiguousarray((buildings[:, 0] > 0.5).to(torch.uint8).cpu().numpy())
    rows, cols = tx[:, 0].cpu().numpy(), tx[:, 1].cpu().numpy()
    if cells is None:
        return model.geometry_features(mask, rows, cols)
    dummy = torch.zeros(len(tx), 2)
    rotated = [dihedral(grid, dummy, k, transpose)[0].contiguous().numpy() for grid in cells]
    return model.geometry_features(mask, rows, cols, rotated)


def make_batch(data: RadioMapSet, index: np.ndarray, runtime: Runtime) -> tuple[torch.Tensor, ...]:
    slots, txs = data.pair(index)
    buildings = torch.from_numpy(data.buildings[slots]).float().unsqueeze(1)
    cars = torch.from_numpy(data.cars[slots]).float().unsqueeze(1)
    truth = torch.from_numpy(data.truth[slots, txs]).float().unsqueeze(1) / 255.0
    tx = torch.from_numpy(data.tx[slots, txs]).float()
    to = dict(device=runtime.device, memory_format=torch.channels_last)
    return buildings.to(**to), cars.to(**to), truth.to(**to), tx.to(runtime.device)


def rmse_db(pred_gray: torch.Tensor, truth_gray: torch.Tensor, outdoor: torch.Tensor) -> tuple[float, int]:
    """Sum of squared errors in dB over outdoor pixels, and their count (for pooling over batches)."""
    err = (pred_gray.float() - truth_gray.float()) * 255.0 * DB_PER_GRAY
    return float((err**2 * outdoor).sum()), int(outdoor.sum())


@torch.no_grad()
def validate(
    model: RadioUNet, data: RadioMapSet, index: np.ndarray, runtime: Runtime, second: bool, batch: int = 32, cache: CoarseDPMCache | None = None
) -> float:
    model.eval()
    sse, count = 0.0, 0
    for start in range(0, len(index), batch):
        chunk = index[start : start + batch]
        buildings, cars, truth, tx = make_batch(data, chunk, runtime)
        geometry = augmented_geometry(model, buildings, tx, cache.cells(chunk)) if cache is not None else None
        with runtime.autocast():
            first, second_map = model(buildings, tx, cars, second=second, geometry=geometry)
        s, c = rmse_db(second_map if second else first, truth, buildings == 0)
        sse += s
        count += c
    return float(np.sqrt(sse / max(count, 1)))


def train_radiounet(data_dir: str | Path, out_dir: str | Path, config: RadioUNetTrainConfig, runtime: Runtime | None = None, quiet: bool = False) -> dict:
    """Train (or resume) into ``out_dir``; returns the summary written to ``out_dir/summary.json``."""
    place = distributed.current()
    place.check_batch(config.batch_size)
    out_dir = Path(out_dir)
    runtime = runtime or Runtime.pick(distributed.device_for(None))
    quiet = quiet or not place.main
    config_path = out_dir / "train_config.json"
    if config_path.exists() and read_json_object(config_path, "training configuration") != asdict(config):
        raise RadiolocError(f"{out_dir}: holds a run with a different training configuration; choose another --out")

    torch.manual_seed(config.seed)
    model_config = preset_config(config.preset, use_cars=config.use_cars)
    model = RadioUNet(model_config)
    if config.init and not (out_dir / "last.pt").exists():
        start = load_radiounet(config.init)
        try:
            model = grow_radiounet(start, model_config)
        except RadiolocError as exc:
            raise RadiolocError(f"{config.init}: --init checkpoint does not fit preset {config.preset!r}: {exc}") from None
    model = runtime.prepare(model)
    train = load_radio_maps(data_dir, "train", config.sim, quiet=quiet)
    val = load_radio_maps(data_dir, "val", config.sim, quiet=quiet)
    if len(train) == 0 or len(val) == 0:
        raise RadiolocError(f"{data_dir}: RadioUNet training needs {config.sim} radio maps in both the train and the val split")
    # Written only once the data loaded: a run that fails at startup leaves nothing behind.
    if place.main:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(config_path, asdict(config))
    rng = np.random.default_rng(config.seed)
    val_index = np.random.default_rng(config.seed + 1).choice(len(val), size=min(config.val_samples, len(val)), replace=False)
    train_cache = CoarseDPMCache(model, train) if model_config.coarse_dpm else None
    val_cache = CoarseDPMCache(model, val) if model_config.coarse_dpm else None

    state = {"phase": 1, "epoch": 0, "best": {"1": float("inf"), "2": float("inf")}, "history": [], "seconds": 0.0}
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    optimizer = None
    if last_path.exists():
        payload, state, rng = read_training_checkpoint(last_path, "radiounet-training", model, state)
        if state["phase"] not in (1, 2, 3):  # 3: both phases done
            raise RadiolocError(f"{last_path}: corrupt training state (phase {state['phase']}); delete it to train from the start")
    phases = {1: config.epochs_first, 2: config.epochs_second}
    started = time.perf_counter() - state["seconds"]
    with Progress(*progress_columns(), disable=quiet) as progress:
        while state["phase"] <= 2:
            phase = state["phase"]
            params = model.first.parameters() if phase == 1 else model.second.parameters()
            for p in model.first.parameters():
                p.requires_grad_(phase == 1)
            for p in model.second.parameters():  # what DDP synchronizes: the trained U's parameters only
                p.requires_grad_(phase == 2)
            if phase == 2 and state["epoch"] == 0:
                model.reset_second_output()
            net = place.wrap(model)
            optimizer = torch.optim.Adam(params, lr=config.lr)
            scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=max(1, (2 * phases[phase]) // 3), gamma=0.1)
            if last_path.exists():
                payload = load_checkpoint(last_path, "radiounet-training")
                if payload.get("optimizer_phase") == phase and "optimizer" in payload:
                    load_part(last_path, optimizer.load_state_dict, payload.get("optimizer"))
                    load_part(last_path, scheduler.load_state_dict, payload.get("scheduler"))
                    check_schedule(scheduler, state["epoch"], last_path)
            task = progress.add_task(f"phase {phase} ({'first' if phase == 1 else 'second'} U)", total=phases[phase], completed=state["epoch"], status="")
            while state["epoch"] < phases[phase]:
                model.train()
                losses = []
                for _ in range(config.samples_per_epoch // config.batch_size):
                    index = rng.integers(0, len(train), size=config.batch_size)  # the global batch (every process draws it)
                    k, flip = int(rng.integers(4)), bool(rng.integers(2))
                    index = index[place.shard(np.arange(config.batch_size))]  # this process's share
                    buildings, cars, truth, tx = make_batch(train, index, runtime)
                    stacked, tx = dihedral(torch.cat([buildings, cars, truth], dim=1), tx, k, flip)
                    buildings, cars, truth = stacked[:, :1], stacked[:, 1:2], stacked[:, 2:3]
                    cells = train_cache.cells(index) if train_cache is not None else None
                    geometry = augmented_geometry(model, buildings, tx, cells, k, flip)
                    with runtime.autocast():
                        first, second = net(buildings, tx, cars, second=phase == 2, clamp=False, geometry=geometry)
                    loss = censored_mse((first if phase == 1 else second).float(), truth)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    losses.append(place.mean(float(loss.detach())))
                scheduler.step()
                # process 0 validates and writes; the others wait, so that all resume from (and load) the same files
                val_rmse = validate(model, val, val_index, runtime, second=phase == 2, cache=val_cache) if place.main else float("nan")
                state["epoch"] += 1
                state["seconds"] = time.perf_counter() - started
                train_rmse = float(np.sqrt(np.mean(losses))) * 255.0 * DB_PER_GRAY
                state["history"].append(
                    {
                        "phase": phase,
                        "epoch": state["epoch"],
                        "train_rmse_db_all_pixels": round(train_rmse, 3),
                        "val_rmse_db": round(val_rmse, 3),
                        "seconds": round(state["seconds"], 1),
                    }
                )
                next_seed = int(rng.integers(2**63))
                if place.main:
                    if val_rmse < state["best"][str(phase)]:
                        state["best"][str(phase)] = val_rmse
                        save_checkpoint(
                            best_path,
                            "radiounet",
                            model_config.to_dict(),
                            {k: v.cpu() for k, v in model.state_dict().items()},
                            val_rmse_db=val_rmse,
                            phase=phase,
                        )
                    save_checkpoint(
                        last_path,
                        "radiounet-training",
                        model_config.to_dict(),
                        {k: v.cpu() for k, v in model.state_dict().items()},
                        optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(),
                        optimizer_phase=phase,
                        state=json.dumps(state),
                        rng_seed=next_seed,
                    )
                place.barrier()
                rng = np.random.default_rng(next_seed)  # the same stream a resumed run continues with
                progress.update(task, advance=1, status=f"val RMSE {val_rmse:.2f} dB (best {state['best'][str(phase)]:.2f})")
            # The next phase starts from this phase's best weights.
            best = load_checkpoint(best_path, "radiounet")
            model.load_state_dict(best["state_dict"])
            state["phase"] += 1
            state["epoch"] = 0
    summary = {
        "preset": config.preset,
        "parameters": count_parameters(model),
        "runtime": runtime.describe(),
        "train_maps": len(train.maps),
        "val_maps": len(val.maps),
        "best_val_rmse_db": state["best"],
        "training_minutes": round(state["seconds"] / 60, 1),
        "processes": place.world_size,
        "history": state["history"],
        "checkpoint": str(best_path),
    }
    if place.main:
        atomic_write_json(out_dir / "summary.json", summary)
    return summary
