"""Refit the uncertainty radii of a fitted localizer on the maps of many datasets, and store them in its file.

A localizer's radii are only as good as the maps they were calibrated on: fitted on the validation split of one
dataset, they held the truth 68 % of the time there and 59 % on a harder seed. Here they are fitted across many
maps of several seeds (the map the exchangeable unit, conditioned on what each query reveals:
:mod:`radioloc.localizers.uncertainty`), and the datasets they saw are recorded with them (``fitted_on``), so a
benchmark can check that it evaluates on seeds the calibration never saw. Everything else the localizer holds
(likelihood, network, fusion, refinement) stays as it is.
"""

from __future__ import annotations

import time
from pathlib import Path

from radioloc.datasets.localization import concat_localization, load_localization
from radioloc.errors import RadiolocError
from radioloc.localizers.registry import resolve_localizer

RADII_QUERIES = 4000  # calibration queries per number of BSs (1..5), spread over every map of the data


def refit_radii(spec: str, folders: list[Path], out: Path, split: str = "train,val,test", estimate: str = "estimate", measurement: str = "DPM",
                per_count: int = RADII_QUERIES) -> dict:  # fmt: skip
    """Calibrate the radii of localizer ``spec`` on the ``split`` maps of ``folders`` and save it to ``out``."""
    resolved = resolve_localizer(spec)
    if resolved.needs_fit:
        raise RadiolocError(f"--model {spec}: fitted per dataset (its radii are calibrated when it is fitted), nothing to store")
    started = time.perf_counter()
    data = concat_localization([load_localization(root, split, estimate, measurement_sim=measurement, quiet=False) for root in folders])
    localizer = resolved.localizer
    localizer.calibration_per_count = per_count
    radii = localizer.calibrate_radii(data)
    path = localizer.save(out)
    return {"model": spec, "out": str(path), "maps": radii.maps, "queries": radii.count.get("all", 0), "fitted_on": radii.fitted_on,
            "seconds": round(time.perf_counter() - started, 1), "radius_calibration": radii.to_dict()}  # fmt: skip
