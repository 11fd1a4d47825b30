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
    payload, state, rng = read_training_checkpoint(last_path, kind, model, fresh)
    load_part(last_path, optimizer.load_state_dict, payload.get("optimizer"))
    load_part(last_path, scheduler.load_state_dict, payload.get("scheduler"))
    check_schedule(scheduler, steps_done(state), last_path)
    return state, rng


def read_training_checkpoint(last_path: Path, kind: str, model: torch.nn.Module, fresh: dict) -> tuple[dict, dict, np.random.Generator]:
    """A ``kind`` training checkpoint with its weights loaded into ``model``: the payload, the loop state (checked
    against ``fresh``) and the random stream it continues with; one line naming the file when any part is damaged."""
    payload = load_checkpoint(last_path, kind)
    load_part(last_path, model.load_state_dict, payload.get("state_dict"))
    state = check_training_state(payload.get("state"), fresh, last_path)
    seed = payload.get("rng_seed")
    if type(seed) is not int or not 0 <= seed < 2**63:
        raise RadiolocError(f"{last_path}: corrupt training checkpoint (rng_seed {seed!r} is not a seed); delete it to train from the start")
    return payload, state, np.random.default_rng(seed)


def load_part(last_path: Path, load: Callable[[dict], object], value: object) -> None:
    """``load(value)`` (a model's, optimizer's or scheduler's ``load_state_dict``), or one line naming the file
    when the part is missing or does not fit (tensors of another shape)."""
    try:
        if not isinstance(value, dict):
            raise ValueError("a part is missing")
        load(value)
    except (KeyError, RuntimeError, ValueError, TypeError, IndexError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise RadiolocError(f"{last_path}: corrupt training checkpoint ({reason}); delete it to train from the start") from None


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
