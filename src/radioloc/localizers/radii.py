"""Refit the uncertainty radii of a fitted localizer on the maps of many datasets, and store them in its file.

A localizer's radii are only as good as the maps they were calibrated on: fitted on the validation split of one
dataset, they held the truth 68 % of the time there and 59 % on a harder seed. Here they are fitted across many
maps of several seeds (the map the exchangeable unit, conditioned on what each query reveals:
:mod:`radioloc.localizers.uncertainty`), and the datasets they saw are recorded with them (``fitted_on``), so a
benchmark can check that it evaluates on seeds the calibration never saw. Everything else the localizer holds
(likelihood, network, fusion, refinement) stays as it is.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

from radioloc.datasets.localization import LocalizationData, concat_localization, dataset_provenance, load_localization
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer
from radioloc.localizers.registry import resolve_localizer

RADII_QUERIES = 4000  # calibration queries per number of BSs (1..5), spread over every map of the data
CARD_SEEDS = re.compile(r"^\*\*Fitting seeds:\*\* (?P<seeds>[0-9][0-9, -]*)", re.M)  # the line every model card opens with


def parse_seed_list(text: str) -> set[int]:
    """``0, 1000, 5101-5106`` -> {0, 1000, 5101, ..., 5106}."""
    seeds: set[int] = set()
    for part in (p.strip() for p in text.split(",") if p.strip()):
        low, _, high = part.partition("-")
        seeds.update(range(int(low), int(high or low) + 1))
    return seeds


def card_seeds(weights: Path) -> set[int] | None:
    """The seeds on the ``**Fitting seeds:**`` line of the model card beside shipped weights (None without one)."""
    card = weights.with_suffix(".md")
    match = CARD_SEEDS.search(card.read_text()) if card.is_file() else None
    return None if match is None else parse_seed_list(match.group("seeds"))


def _recorded_seeds(weights: Path, radii_seeds: set) -> set[int] | None:
    """The dataset seeds a checkpoint's network (``trained_on``) or a calibration's likelihood (``datasets``) was
    fitted on, as training recorded them; else those its model card lists, less ``radii_seeds`` (a card lists
    the seeds of everything fitted, the radii's pool too)."""
    if weights.suffix == ".pt":
        from radioloc.models.checkpoint import load_checkpoint

        recorded = load_checkpoint(weights, "locunet").get("trained_on")
        entries = json.loads(recorded) if isinstance(recorded, str) else None
    else:
        from radioloc.models.likelihood import LikelihoodCalibration

        entries = LikelihoodCalibration.load(weights).provenance.get("datasets")
    if isinstance(entries, list):
        return {entry["seed"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("seed"), int)}
    listed = card_seeds(weights)
    return None if listed is None else listed - radii_seeds


def model_seeds(localizer: Localizer) -> set[int] | None:
    """The seeds of the datasets whose maps fitted what ``localizer`` holds besides its radii (network, likelihood,
    refinement, fusion); None when no record says (a localizer without weights, or weights saved before records
    were kept and without a model card)."""
    from radioloc.models.likelihood import calibration_path

    described = localizer.describe()
    files = [Path(described[key]) for key in ("checkpoint", "calibration") if described.get(key)]
    if described.get("posterior"):  # a fused LocUNet: the bayes calibration of its posterior too
        files.append(calibration_path(described["posterior"]))
    radii_seeds = {entry.get("seed") for entry in (localizer.uncertainty.fitted_on if localizer.uncertainty is not None else [])}
    found = [_recorded_seeds(path, radii_seeds) for path in files if path.is_file()]
    if not found or any(seeds is None for seeds in found):
        return None
    return set().union(*found)


def check_unseen_maps(localizer: Localizer, data: LocalizationData, spec: str) -> bool:
    """Refuse calibration maps that fitted the localizer: the train split of a dataset of one of its
    :func:`model_seeds` (radii fitted there would hold the truth far less often on new maps). False when no record
    says which maps fitted it (nothing could be checked)."""
    seeds = model_seeds(localizer)
    if seeds is None:
        return False
    for part in dataset_provenance(data):
        splits = set(str(part.get("split") or "").split(","))
        if part.get("seed") in seeds and splits & {"train", "all"}:
            raise RadiolocError(
                f"--data {part['root']}: its train maps (dataset seed {part['seed']}) fitted --model {spec}; calibrate on maps it never saw "
                "(--split val,test, or a dataset of another seed)"
            )
    return True


def refit_radii(spec: str, folders: list[Path], out: Path, split: str = "train,val,test", estimate: str = "estimate", measurement: str = "DPM",
                per_count: int = RADII_QUERIES) -> dict:  # fmt: skip
    """Calibrate the radii of localizer ``spec`` on the ``split`` maps of ``folders`` and save it to ``out``."""
    resolved = resolve_localizer(spec)
    if resolved.needs_fit:
        raise RadiolocError(f"--model {spec}: fitted per dataset (its radii are calibrated when it is fitted), nothing to store")
    started = time.perf_counter()
    data = concat_localization([load_localization(root, split, estimate, measurement_sim=measurement, quiet=False) for root in folders])
    localizer = resolved.localizer
    checked = check_unseen_maps(localizer, data, spec)
    localizer.calibration_per_count = per_count
    radii = localizer.calibrate_radii(data)
    path = localizer.save(out)
    return {"model": spec, "out": str(path), "maps": radii.maps, "queries": radii.count.get("all", 0), "fitted_on": radii.fitted_on,
            "seconds": round(time.perf_counter() - started, 1), "radius_calibration": radii.to_dict(), "unseen_checked": checked}  # fmt: skip
