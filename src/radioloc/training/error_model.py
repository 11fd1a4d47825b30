"""Train the radio-map error model (:mod:`radioloc.models.error_model`) on a dataset's training split.

A step is ``batch_size`` radio maps of one random training map under one random rotation/transposition (the
inputs and the error are equivariant to them): the Laplace negative log-likelihood of ``truth - seen`` over the
outdoor pixels of the UE box, AdamW with a one-cycle schedule. What is *seen* and what is *truth* follow the
scenario, as for ``bayes``: RadioUNet estimates (``--estimate``) against the truth of ``--measurement``. Every
``eval_every`` steps the validation NLL is measured on a fixed sample of validation radio maps, ``last.pt``
is written (a killed run resumes there) and ``best.pt`` keeps the best weights.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import Progress

from radioloc.datasets.localization import SceneBank, load_localization
from radioloc.datasets.protocol import ue_region
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_json, read_json_object
from radioloc.models.checkpoint import save_checkpoint
from radioloc.models.error_model import KIND, ErrorModel, ErrorModelConfig, error_inputs, laplace_nll, load_error_model
from radioloc.models.runtime import Runtime
from radioloc.training.radiounet import dihedral
from radioloc.training.resume import progress_columns, resume_training


@dataclass(frozen=True)
class ErrorModelTrainConfig:
    estimate: str = "estimate"
    sim: str = "DPM"
    measurement: str = "DPM"
    batch_size: int = 8
    lr: float = 2e-3
    steps: int = 3000  # about 12 minutes on the 2-core CPU (fp32)
    eval_every: int = 250
    val_maps: int = 64  # validation radio maps (map, BS) in the fixed sample
    seed: int = 0
    init: str | None = None  # start from this error model's weights (fine-tuning)


def _batch(seen: SceneBank, truth: SceneBank, region: np.ndarray, slot: int, ids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    inputs = torch.from_numpy(error_inputs(seen.buildings[slot], seen.radio_maps[slot, ids], seen.bs_positions[slot, ids]))
    residual = torch.from_numpy(truth.radio_maps[slot, ids].astype(np.float32) - seen.radio_maps[slot, ids].astype(np.float32))
    weight = torch.from_numpy(region[slot]).float().expand_as(residual)
    return inputs, residual, weight


@torch.no_grad()
def validate(model: ErrorModel, seen: SceneBank, truth: SceneBank, region: np.ndarray, sample: list[tuple[int, int]], runtime: Runtime) -> float:
    model.eval()
    total, weight_sum = 0.0, 0.0
    for slot, bs in sample:
        inputs, residual, weight = _batch(seen, truth, region, slot, np.array([bs]))
        geometry = model.geometry(seen.buildings[slot][None], seen.bs_positions[slot, [bs]])
        with runtime.autocast():
            log_scale = model(inputs.to(runtime.device).contiguous(memory_format=torch.channels_last), geometry).float().cpu()
        total += float(laplace_nll(log_scale, residual, weight)) * float(weight.sum())
        weight_sum += float(weight.sum())
    return total / max(weight_sum, 1.0)


def train_error_model(data_dir: str | Path, out_dir: str | Path, config: ErrorModelTrainConfig, runtime: Runtime | None = None, quiet: bool = False) -> dict:
    """Train (or resume) into ``out_dir``; returns the summary written to ``out_dir/summary.json``."""
    out_dir = Path(out_dir)
    runtime = runtime or Runtime.pick()
    config_path = out_dir / "train_config.json"
    recorded = {**asdict(config), "data": str(data_dir)}
    if config_path.exists() and read_json_object(config_path, "training configuration") != recorded:
        raise RadiolocError(f"{out_dir}: holds a run with a different training configuration; choose another --out")
    torch.manual_seed(config.seed)
    model_config = ErrorModelConfig()
    model = ErrorModel(model_config)
    if config.init is not None:  # checked before anything is written: a wrong --init leaves no run behind
        start = load_error_model(config.init)
        if start.config != model_config:
            raise RadiolocError(f"{config.init}: --init error model has another configuration ({start.config.to_dict()})")
        model.load_state_dict(start.state_dict())
    model = runtime.prepare(model)
    splits = {}
    for split in ("train", "val"):
        seen = load_localization(data_dir, split, config.estimate, config.sim, config.measurement, quiet=quiet).scenes
        truth = load_localization(data_dir, split, "true", config.measurement, config.measurement, quiet=quiet).scenes
        splits[split] = (seen, truth, ue_region(seen.buildings, "ue-box"))
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(config_path, recorded)

    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=config.steps, pct_start=0.1)
    seen, truth, region = splits["train"]
    n_maps, n_bs = seen.radio_maps.shape[:2]
    val_seen, val_truth, val_region = splits["val"]
    pick = np.random.default_rng(config.seed + 1)
    val_sample = [(int(pick.integers(len(val_seen.map_ids))), int(pick.integers(val_seen.n_bs))) for _ in range(config.val_maps)]

    state = {"step": 0, "best_val_nll": float("inf"), "history": [], "seconds": 0.0}
    rng = np.random.default_rng(config.seed)
    last_path, best_path = out_dir / "last.pt", out_dir / "best.pt"
    resumed = resume_training(last_path, KIND + "-training", model, optimizer, schedule, state, lambda s: s["step"])
    if resumed is not None:
        state, rng = resumed
    started = time.perf_counter() - state["seconds"]
    losses: list[float] = []
    with Progress(*progress_columns(), disable=quiet) as progress:
        task = progress.add_task("error model", total=config.steps, completed=state["step"], status="")
        while state["step"] < config.steps:
            model.train()
            slot = int(rng.integers(n_maps))
            ids = rng.choice(n_bs, size=min(config.batch_size, n_bs), replace=False)
            k, flip = int(rng.integers(4)), bool(rng.integers(2))
            inputs, residual, weight = _batch(seen, truth, region, slot, ids)
            bs = torch.from_numpy(seen.bs_positions[slot, ids].astype(np.float32))
            stacked, bs = dihedral(torch.cat([inputs, residual[:, None], weight[:, None]], dim=1), bs, k, flip)
            inputs, residual, weight = stacked[:, :-2].contiguous(), stacked[:, -2], stacked[:, -1]
            geometry = model.geometry((inputs[:, 0] > 0.5).numpy(), bs.numpy())  # of the rotated scene
            with runtime.autocast():
                log_scale = model(inputs.to(runtime.device).contiguous(memory_format=torch.channels_last), geometry).float()
            loss = laplace_nll(log_scale, residual.to(runtime.device), weight.to(runtime.device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(float(loss.detach()))
            state["step"] += 1
            progress.update(task, advance=1)
            if state["step"] % config.eval_every == 0 or state["step"] == config.steps:
                val_nll = validate(model, val_seen, val_truth, val_region, val_sample, runtime)
                state["seconds"] = time.perf_counter() - started
                state["history"].append(
                    {"step": state["step"], "train_nll": round(float(np.mean(losses)), 4), "val_nll": round(val_nll, 4), "seconds": round(state["seconds"], 1)}
                )
                losses = []
                weights = {name: v.detach().cpu() for name, v in model.state_dict().items()}
                if val_nll < state["best_val_nll"]:
                    state["best_val_nll"] = val_nll
                    save_checkpoint(
                        best_path,
                        KIND,
                        model_config.to_dict(),
                        weights,
                        val_nll=val_nll,
                        step=state["step"],
                        data=str(data_dir),
                        scenario={"estimate": config.estimate, "sim": config.sim, "measurement": config.measurement},
                    )
                next_seed = int(rng.integers(2**63))
                save_checkpoint(
                    last_path,
                    KIND + "-training",
                    model_config.to_dict(),
                    weights,
                    optimizer=optimizer.state_dict(),
                    scheduler=schedule.state_dict(),
                    state=json.dumps(state),
                    rng_seed=next_seed,
                )
                rng = np.random.default_rng(next_seed)  # the stream a resumed run continues with
                progress.update(task, status=f"val NLL {val_nll:.3f} (best {state['best_val_nll']:.3f})")
    summary = {
        "parameters": sum(p.numel() for p in model.parameters()),
        "runtime": runtime.describe(),
        "train_maps": len(seen.map_ids),
        "val_maps": len(val_seen.map_ids),
        "best_val_nll": state["best_val_nll"],
        "training_minutes": round(state["seconds"] / 60, 1),
        "history": state["history"],
        "checkpoint": str(best_path),
    }
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
