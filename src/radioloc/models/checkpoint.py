"""Model checkpoints: plain tensors and JSON-like metadata, loaded with ``torch.load(weights_only=True)`` so a
checkpoint file can never run code."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_bytes

FORMAT = "radioloc-checkpoint-1"


def save_checkpoint(path: str | Path, kind: str, config: dict, state_dict: dict, **extra: Any) -> None:
    payload = {"format": FORMAT, "kind": kind, "config": config, "state_dict": state_dict, **extra}
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: str | Path, kind: str) -> dict:
    """Read a checkpoint and check that it holds a ``kind`` model (one-line errors otherwise)."""
    path = Path(path)
    if not path.is_file():
        raise RadiolocError(f"{path}: checkpoint file not found")
    with path.open("rb") as file:
        head = file.read(4)
    if head != b"PK\x03\x04":  # torch.save writes a zip archive; anything else gets no further than this
        what = "an empty file" if not head else "not a PyTorch zip archive"
        raise RadiolocError(f"{path}: not a radioloc checkpoint ({what})")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated or foreign files; its texts run for lines
        reason = (
            "truncated or damaged archive"
            if "zip" in str(exc).lower() or isinstance(exc, EOFError)
            else f"holds objects other than tensors and plain values ({type(exc).__name__})"
        )
        raise RadiolocError(f"{path}: not a readable radioloc checkpoint ({reason})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise RadiolocError(f"{path}: not a radioloc checkpoint (no '{FORMAT}' header)")
    if payload.get("kind") != kind:
        raise RadiolocError(f"{path}: holds a {payload.get('kind')} model, expected a {kind} model")
    for key in ("config", "state_dict"):
        if key not in payload:
            raise RadiolocError(f"{path}: checkpoint without '{key}'")
    return payload


def load_model(
    path: Path, kind: str, label: str, config_from_dict: Callable[[dict], Any], build: Callable[[Any], torch.nn.Module], preset: str | None = None
) -> torch.nn.Module:
    """A model in eval mode from a ``kind`` checkpoint: config rebuilt with ``config_from_dict``, module with
    ``build``; ``preset``, when given, must match the checkpoint's. One-line errors for every mismatch."""
    payload = load_checkpoint(path, kind)
    try:
        config = config_from_dict(payload["config"])
    except (TypeError, KeyError, ValueError, RadiolocError) as exc:  # RadiolocError: the configuration's own checks
        raise RadiolocError(f"{path}: malformed {label} configuration ({exc})") from None
    if preset is not None and config.preset != preset:
        raise RadiolocError(f"{path}: checkpoint of preset {config.preset!r}, expected {preset!r}")
    try:
        model = build(config)
    except (TypeError, ValueError, RuntimeError, RadiolocError) as exc:  # a configuration no network can be built from
        raise RadiolocError(f"{path}: malformed {label} configuration ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})") from None
    if not isinstance(payload["state_dict"], dict):
        raise RadiolocError(f"{path}: malformed {label} weights (not a table of tensors)")
    bad = [
        name
        for name, tensor in payload["state_dict"].items()
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and not torch.isfinite(tensor).all()
    ]
    if bad:
        raise RadiolocError(f"{path}: weights that are not finite numbers ({bad[0]})")
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise RadiolocError(f"{path}: weights do not fit the {config.preset!r} preset ({str(exc).splitlines()[0]})") from None
    return model.eval()
