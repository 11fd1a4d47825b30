"""What every training loop shares: resuming from ``last.pt`` and the progress bar's columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from radioloc.models.checkpoint import load_checkpoint

def progress_columns() -> tuple:
    """Fresh columns (they keep per-bar state): description, bar, done / total, status, elapsed, remaining."""
    return (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn())


def resume_training(last_path: Path, kind: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler) -> tuple[dict, np.random.Generator] | None:
    """Load a ``kind`` training checkpoint into the model, optimizer and scheduler; its loop state (JSON) and the
    random stream it continues with, or None when there is none yet."""
    if not last_path.exists():
        return None
    payload = load_checkpoint(last_path, kind)
    model.load_state_dict(payload["state_dict"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    return json.loads(payload["state"]), np.random.default_rng(payload["rng_seed"])
