"""Answering reports on a deployment: the serving localizers, their survey calibration, and ``locate``.

- ``bayes``: the grid posterior with the likelihood fitted on the deployment's survey (``bayes.safetensors``),
  its prior every outdoor pixel of the window (a phone may be anywhere in the area, not only in the middle of a
  RadioLocSeer tile);
- ``locunet``: the shipped nominal LocUNet on the deployment's maps, with the paper's answer (``locunet:paper``:
  centre of mass and local refinement). The registry's ``locunet`` multiplies its quasi-heatmap into the
  ``bayes-learned`` posterior, whose error model a deployment does not run over its maps yet.

Both answer with radii calibrated on the held-out third of the survey, per number of BSs, for this area.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from radioloc.datasets.localization import MAX_BS
from radioloc.deploy.deployment import WINDOW, Deployment
from radioloc.errors import RadiolocError
from radioloc.localizers.base import Localizer, localization_errors
from radioloc.localizers.uncertainty import FEATURES, LEVELS, CalibratedRadii, RadiusCalibration, query_features

MAX_WINDOWS_PER_CHUNK = 48  # bounds the memory of one batch: windows x BSs per window x 64 KiB of maps
FIT_SHARE = 2 / 3
SERVING_PRIOR = "outdoor"
REGISTRY_NAMES = {"locunet": "locunet:paper"}  # what a serving name is in the registry (see the module docstring)


def _localizer(name: str, folder: Path) -> Localizer:
    if name == "bayes":
        from radioloc.localizers.bayes import BayesLocalizer

        return BayesLocalizer.load(folder / "bayes.safetensors", prior=SERVING_PRIOR) if (folder / "bayes.safetensors").is_file() else None
    if name == "locunet":
        from radioloc.localizers.locunet import LocUNetLocalizer

        return LocUNetLocalizer.load("locunet")
    raise RadiolocError(f"localizer {name!r} cannot serve a deployment (choose bayes or locunet)")


def serving_localizer(deployment: Deployment, name: str | None = None) -> Localizer:
    """A localizer of the deployment (default: its first), with the deployment's radius calibration."""
    name = name or deployment.config.localizers[0]
    if name not in deployment.config.localizers:
        raise RadiolocError(f"deployment {deployment.id!r} is served by {', '.join(deployment.config.localizers)}, not {name!r}")
    localizer = _localizer(name, deployment.root)
    if localizer is None:
        raise RadiolocError(f"{deployment.root}: the bayes calibration is missing (the deployment is damaged: create it again)")
    localizer.uncertainty = RadiusCalibration.from_dict(deployment.config.radius_calibrations[name], f"deployment {deployment.id} ({name})")
    return localizer


@dataclass
class Located(CalibratedRadii):
    """Answers in the deployment's grid (row, col metres) and on the Earth, with calibrated radii (LEVELS)."""

    positions: np.ndarray
    radii: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    bs_used: np.ndarray  # (n, 5) deployment BS indices each answer used (-1 = none)
    localizer: str
    ms_per_query: float


def coarse_likelihood(folder: Path):
    """The deployment's fitted likelihood (``bayes.safetensors``), for the coarse search that places the windows."""
    from radioloc.models.likelihood import LikelihoodCalibration

    if not (folder / "bayes.safetensors").is_file():
        raise RadiolocError(f"{folder}: the bayes calibration is missing (the deployment is damaged: create it again)")
    return LikelihoodCalibration.load(folder / "bayes.safetensors")


def window_origins(deployment: Deployment, likelihood, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Each query's window, centred on the most likely outdoor cell of the deployment's overview (the mode, not
    the mean: with a few BSs the coarse posterior has several modes, and its mean can lie between them)."""
    from radioloc.datasets.fit_cost import nearest_pixels
    from radioloc.models.likelihood import likelihood_tables

    scenes, factor = deployment.overview()
    tables = likelihood_tables(likelihood.log_likelihood, 1.0, values)
    best, _ = nearest_pixels(scenes.radio_maps, np.zeros(len(ids), dtype=np.int64), ids, tables, 1, deployment.overview_outdoor())
    cells = np.column_stack(np.divmod(best[:, 0], scenes.radio_maps.shape[-1])).astype(np.float64)
    return deployment.window_origins(ids, cells * factor + (factor - 1) / 2.0)


def window_chunks(origins: np.ndarray) -> list[np.ndarray]:
    """Query indices grouped so that each group spans at most ``MAX_WINDOWS_PER_CHUNK`` windows."""
    _, window = np.unique(origins, axis=0, return_inverse=True)
    window = window.ravel()
    order = np.argsort(window, kind="stable")
    bounds = np.searchsorted(window[order], np.arange(0, window.max() + 1 + MAX_WINDOWS_PER_CHUNK, MAX_WINDOWS_PER_CHUNK))
    return [order[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


class DeploymentLocator:
    """A deployment with one of its serving localizers: ``locate(cell_ids, pathloss_db)``."""

    def __init__(self, deployment: Deployment, name: str | None = None):
        self.deployment = deployment
        self.name = name or deployment.config.localizers[0]
        if deployment.config.serving == "shipped":  # one 256 m tile: no coarse search, the shipped localizer as is
            if self.name not in deployment.config.localizers:
                raise RadiolocError(f"deployment {deployment.id!r} is served by {', '.join(deployment.config.localizers)}, not {self.name!r}")
            from radioloc.localizers.registry import resolve_localizer

            self.localizer = resolve_localizer(REGISTRY_NAMES.get(self.name, self.name)).localizer
            self.coarse = None
        else:
            self.localizer = serving_localizer(deployment, self.name)
            self.coarse = coarse_likelihood(deployment.root)

    def _origins(self, ids: np.ndarray, values: np.ndarray) -> np.ndarray:
        if self.coarse is None:
            return self.deployment.window_origins(ids, pathloss_db=values)
        return window_origins(self.deployment, self.coarse, ids, values)

    def heatmap(self, cell_ids, pathloss_db) -> tuple[Located, np.ndarray, np.ndarray]:
        """One report's answer with the heatmap behind it (bayes: the posterior; LocUNet: its quasi-heatmap) and
        the heatmap window's north-west corner on the area grid, for pictures."""
        located, heatmaps, origins = self._answer(np.atleast_2d(cell_ids)[:1], np.atleast_2d(pathloss_db)[:1], heatmaps=True)
        return located, heatmaps[0], origins[0]

    def locate(self, cell_ids, pathloss_db) -> Located:
        """Answer reports given as (n, k) cell ids (-1 = none) and pathloss in dB (NaN = none); each uses its
        ``MAX_BS`` strongest known cells. :class:`radioloc.deploy.deployment.UnknownCells` when a report knows none."""
        return self._answer(cell_ids, pathloss_db, heatmaps=False)[0]

    def _answer(self, cell_ids, pathloss_db, heatmaps: bool) -> tuple[Located, np.ndarray | None, np.ndarray]:
        """(answers, the heatmaps when asked (n, 256, 256), each report's window corner (n, 2))."""
        started = time.perf_counter()
        deployment = self.deployment
        ids, values = deployment.strongest(np.atleast_2d(cell_ids), np.atleast_2d(pathloss_db), MAX_BS)
        origins = self._origins(ids, values)
        n = len(ids)
        positions = np.empty((n, 2))
        radii = np.empty((n, len(LEVELS)))
        maps = np.empty((n, WINDOW, WINDOW)) if heatmaps else None
        for part in window_chunks(origins):
            windowed = deployment.scenes(ids[part], values[part], origins[part])
            estimate = self.localizer.locate(windowed.data, heatmaps=heatmaps)
            positions[part] = windowed.to_area(estimate.positions)
            radii[part] = estimate.radii
            if heatmaps:  # on the window's 1 m pixels (LocUNet's quasi-heatmap has 4 m cells)
                factor = WINDOW // estimate.heatmaps.shape[-1]
                maps[part] = np.repeat(np.repeat(estimate.heatmaps, factor, axis=1), factor, axis=2)
        lat, lng = deployment.georef.to_latlng(positions[:, 0], positions[:, 1])
        located = Located(positions, radii, np.atleast_1d(lat), np.atleast_1d(lng), ids, self.name, 1000.0 * (time.perf_counter() - started) / max(n, 1))
        return located, maps, origins


def calibrate_deployment(deployment: Deployment, folder: Path, count: int, seed: int, quiet: bool = True) -> dict:
    """Fit ``bayes`` on two thirds of a simulated survey and every serving localizer's radii on the rest (each
    phone with the up to 5 strongest BSs it hears, windowed as ``locate`` would)."""
    from radioloc.localizers.bayes import BayesLocalizer
    from radioloc.models.likelihood import LikelihoodConfig

    positions, ids, values = deployment.survey(count, seed)
    n_fit = int(count * FIT_SHARE)
    scenario = deployment.source(deployment.config.truth)
    result: dict = {"phones": count, "fit": n_fit, "calibration": count - n_fit, "seed": seed, "radius_calibrations": {}, "localizers": {}}
    # bayes is fitted for every deployment: the coarse search that places the windows uses it. The fit only counts
    # (map, report) pairs, so windows on the strongest BS do; phones they miss are dropped
    fit = deployment.scenes(ids[:n_fit], values[:n_fit], deployment.window_origins(ids[:n_fit], pathloss_db=values[:n_fit]), positions[:n_fit], scenario)
    inside = ((fit.data.queries.position >= 0) & (fit.data.queries.position <= WINDOW - 1)).all(axis=1)
    result["fit_outside_window"] = round(float(1.0 - inside.mean()), 4)
    bayes = BayesLocalizer(LikelihoodConfig(prior="outdoor"))
    bayes.calibration_per_count = 200  # its radii are refitted below on windowed held-out reports
    bayes.fit(fit.data.subset(np.flatnonzero(inside)))
    bayes.save(folder / "bayes.safetensors")
    result["bayes_temperature"] = bayes.calibration.temperature
    held_ids, held_values, held_positions = ids[n_fit:], values[n_fit:], positions[n_fit:]
    coarse = coarse_likelihood(folder)
    # radii are calibrated on the held-out phones as they are, each with the BSs it hears: phones that hear few BSs
    # are not 5-BS phones with BSs removed (they stand in shadows and at the edges, and err far more)
    n_bs = (held_ids >= 0).sum(axis=1)
    origins = window_origins(deployment, coarse, held_ids, held_values)
    outside = []
    for name in deployment.config.localizers:
        localizer = _localizer(name, folder)
        raw = np.empty((len(held_ids), 2))
        estimate = np.empty((len(held_ids), 2))
        features = np.empty((len(held_ids), len(FEATURES)))
        for part in window_chunks(origins):
            windowed = deployment.scenes(held_ids[part], held_values[part], origins[part], held_positions[part], scenario)
            in_window, raw[part] = localizer.raw_estimates(windowed.data)
            features[part] = query_features(windowed.data, in_window)
            estimate[part] = windowed.to_area(in_window)
            if name == deployment.config.localizers[0]:
                outside.append(((windowed.data.queries.position < 0) | (windowed.data.queries.position > WINDOW - 1)).any(axis=1))
        errors = localization_errors(estimate, held_positions)
        calibration = RadiusCalibration.fit(raw, errors, n_bs, features)
        result["radius_calibrations"][name] = calibration.to_dict()
        five = n_bs == MAX_BS
        result["localizers"][name] = {
            "held_out_mae_m": {str(k): round(float(errors[n_bs == k].mean()), 3) for k in range(1, MAX_BS + 1) if (n_bs == k).any()},
            "held_out_phones_by_bs": {str(k): int((n_bs == k).sum()) for k in range(1, MAX_BS + 1)},
            "held_out_median_m_5bs": round(float(np.median(errors[five])), 3) if five.any() else None,
        }
    result["held_out_outside_window"] = round(float(np.concatenate(outside).mean()), 4)
    return result
