"""What every training loop shares: resuming from ``last.pt`` and the progress bar's columns."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from radioloc.errors import RadiolocError
from radioloc.models.checkpoint import load_checkpoint


def progress_columns() -> tuple:
    """Fresh columns (they keep per-bar state): description, bar, done / total, status, elapsed, remaining."""
    return (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )


def resume_training(last_path: Path, kind: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler, fresh: dict,
                    steps_done: Callable[[dict], int]) -> tuple[dict, np.random.Generator] | None:  # fmt: skip
    """Load a ``kind`` training checkpoint into the model, optimizer and scheduler; its loop state (JSON, checked
    against the ``fresh`` state of the loop and against the scheduler, which must have taken ``steps_done(state)``
    steps) and the random stream it continues with, or None when there is none yet."""
    if not last_path.exists():
        return None
    payload = load_checkpoint(last_path, kind)
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    state = check_training_state(payload["state"], fresh, last_path)
    check_schedule(scheduler, steps_done(state), last_path)
    return state, np.random.default_rng(payload["rng_seed"])


def check_schedule(scheduler, steps: int, path: Path) -> None:
    """A resumed learning-rate schedule must be where the loop is (``steps`` taken), or the run would end early or
    step past the schedule's end."""
    if scheduler.last_epoch != steps:
        raise RadiolocError(
            f"{path}: corrupt training state (its schedule took {scheduler.last_epoch} steps, its loop {steps}); delete it to train from the start"
        )


def _like(value: object, fresh: object) -> bool:
    if isinstance(fresh, int):  # counters
        return type(value) is int and value >= 0
    if isinstance(fresh, float):  # durations and best scores (inf until the first validation)
        return type(value) in (int, float) and not math.isnan(value)
    if isinstance(fresh, dict):
        return isinstance(value, dict) and set(value) == set(fresh) and all(_like(value[k], fresh[k]) for k in fresh)
    return isinstance(value, type(fresh))


def check_training_state(encoded: object, fresh: dict, path: Path) -> dict:
    """A checkpoint's loop state (JSON text), of the same shape as the loop's ``fresh`` state: the same keys, a
    count where it has a count, a number where it has a number, or one line naming the file."""
    try:
        state = json.loads(encoded)
    except (TypeError, ValueError):
        state = None
    if not _like(state, fresh):
        keys = ", ".join(f"{k}: {type(v).__name__}" for k, v in fresh.items())
        raise RadiolocError(f"{path}: corrupt training state (expected {{{keys}}}); delete it to train from the start")
    return state
