"""One experiment runner for every localizer: load a split, fit what needs fitting on the training split, evaluate
with 5 BSs and with the first 3 BSs of every set, and write the JSON report and the figures."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from radioloc.datasets.localization import LocalizationData, load_localization
from radioloc.datasets.ranging import attach_ranges
from radioloc.errors import RadiolocError
from radioloc.evaluation.localization import (
    ExampleAnswer,
    SettingResult,
    by_detectable,
    draw_error_cdf,
    draw_example,
    draw_reliability,
    error_stats,
    run_setting,
)
from radioloc.io import atomic_write_json
from radioloc.localizers.registry import resolve_localizer

SETTINGS = (("5bs", 5), ("3bs", 3))


def evaluate_models(
    specs: list[str],
    data_dir: str | Path,
    split: str = "test",
    estimate: str = "estimate",
    limit: int | None = None,
    figures: Path | None = None,
    json_path: Path | None = None,
    examples: int = 3,
    seed: int = 0,
    train: LocalizationData | None = None,
    test: LocalizationData | None = None,
    console: Console | None = None,
    measurement: str = "DPM",
    toa_sigma: float | None = None,
    per_query: dict | None = None,
) -> dict:
    """Every model on the same test queries (5 BSs and the first 3 of every set); what needs fitting is fitted on
    the dataset's training split. The report's top level holds the first model's 5-BS figures. ``per_query``, where
    given, receives the queries' map ids (``"map"``), their scene slots (``"slot"``, one per map also when the
    test data joins datasets) and each model's :class:`SettingResult` per setting (``[label][setting]``: errors,
    radii, BSs above the floor, in query order), for paired statistics."""
    console = console or Console()
    if not specs:
        raise RadiolocError("--model: name at least one model")
    models = [resolve_localizer(spec) for spec in specs]
    labels = [m.label for m in models]
    for label in labels:
        if labels.count(label) > 1:
            raise RadiolocError(f"--model: two models would both be reported as {label!r}; give each checkpoint its own file name")
    if toa_sigma is not None and not any(m.localizer.uses_ranges for m in models):
        raise RadiolocError(f"--toa-sigma: no model of --model {','.join(specs)} uses ToA ranges (toa-*, bayes:toa=SIGMA or a LocUNet trained with them)")
    test = test or load_localization(data_dir, split, estimate, measurement_sim=measurement)
    if limit is not None and limit < len(test.queries):
        pick = np.sort(np.random.default_rng(seed).choice(len(test.queries), size=limit, replace=False))
        test = test.subset(pick)
    if len(test.queries) == 0:
        raise RadiolocError(f"{data_dir}: no {split} queries to evaluate")
    if any(m.needs_fit for m in models) and train is None:
        train = load_localization(data_dir, "train", estimate, measurement_sim=measurement)
    if toa_sigma is not None:  # ranges with their own noise draws per split
        test = attach_ranges(test, toa_sigma, seed=seed)
        train = attach_ranges(train, toa_sigma, seed=seed + 1) if train is not None else None
    report: dict = {"data": test.source, "split": split, "queries": len(test.queries), "models": {}}
    if per_query is not None:
        per_query["map"] = np.asarray(test.scenes.map_ids)[test.queries.map_slot]
        per_query["slot"] = test.queries.map_slot.copy()
    results: list[SettingResult] = []
    for resolved in models:
        entry = {}
        for setting, count in SETTINGS:
            started = time.perf_counter()
            if resolved.needs_fit:  # the paper fits k separately for 5 and for 3 BSs
                fit_data = train.first_bs(count)
                resolved.localizer.fit(fit_data)
            result = run_setting(resolved.localizer, test, setting, count)
            result.name = resolved.label
            entry[setting] = {**result.to_dict(), "seconds": round(time.perf_counter() - started, 2)}
            results.append(result)
            if per_query is not None:
                per_query.setdefault(resolved.label, {})[setting] = result
        report["models"][resolved.label] = entry
    first = report["models"][models[0].label]["5bs"]
    report = {
        "mae": first["mae"], "rmse": first["rmse"], "n": first["n"], "coverage_68": first["coverage_68"], "coverage_95": first["coverage_95"],
        "model": models[0].label, **report,
    }  # fmt: skip
    print_comparison(report, console)
    if figures is not None:
        written = [
            str(draw_error_cdf(results, figures / f"error_cdf_{split}.png", f"localization error, {split} split ({estimate} radio maps)")),
            str(draw_reliability(results, figures / f"reliability_{split}.png", f"uncertainty radii, {split} split ({estimate} radio maps)")),
        ]
        five = [r for r in results if r.setting == "5bs"]
        for i, query in enumerate(_example_queries(test, examples, seed)):
            one = test.subset(np.array([query]))
            answers = []
            for resolved, result in zip(models, five):
                heat = resolved.localizer.locate(one, heatmaps=True).heatmaps
                kind = None if heat is None else resolved.localizer.heatmap_kind
                answers.append(ExampleAnswer(resolved.label, result.estimate.positions[query], float(result.estimate.radius_68[query]),
                                             float(result.estimate.radius_95[query]), None if heat is None else heat[0], kind))  # fmt: skip
            written.append(str(draw_example(test, query, answers, figures / f"example_{i}.png")))
        report["figures"] = written
    if json_path is not None:
        atomic_write_json(json_path, report)
    return report


def evaluate_across_measurements(
    specs: list[str],
    data_dir: str | Path,
    measurements: list[str],
    split: str = "test",
    estimate: str = "estimate",
    limit: int | None = None,
    figures: Path | None = None,
    json_path: Path | None = None,
    console: Console | None = None,
    toa_sigma: float | None = None,
) -> dict:
    """The out-of-distribution matrix of the paper's Table V: every model on queries whose UEs report the truth of
    each simulation in ``measurements`` (say DPM, DPMcars, IRT2, IRT2cars), the radio maps seen staying the same.
    Baselines are fitted on training queries of the same measurement, as they would be in the field."""
    console = console or Console()
    reports = {}
    for sim in measurements:
        console.rule(f"UEs report {sim}")
        reports[sim] = evaluate_models(
            specs, data_dir, split, estimate, limit, figures / sim if figures else None, None, console=console, measurement=sim, toa_sigma=toa_sigma
        )
    matrix = {
        label: {sim: {s: reports[sim]["models"][label][s]["mae"] for s, _ in SETTINGS} for sim in measurements} for label in reports[measurements[0]]["models"]
    }
    table = Table(title=f"MAE (m) by the truth the UEs report ({split} split, {estimate} radio maps): 5 BSs / 3 BSs")
    table.add_column("model", no_wrap=True)
    for sim in measurements:
        table.add_column(sim, justify="right")
    for label, row in matrix.items():
        table.add_row(label, *[f"{row[sim]['5bs']:.2f} / {row[sim]['3bs']:.2f}" for sim in measurements])
    console.print(table)
    first = reports[measurements[0]]
    report = {"mae": first["mae"], "rmse": first["rmse"], "n": first["n"], "model": first["model"], "measurement": measurements[0],
              "matrix_mae_m": matrix, "measurements": reports}  # fmt: skip
    if json_path is not None:
        atomic_write_json(json_path, report)
    return report


def _example_queries(test: LocalizationData, count: int, seed: int) -> list[int]:
    """Spread over maps: one query from each of the first maps, chosen at random."""
    rng = np.random.default_rng(seed + 7)
    picks = []
    for slot in np.unique(test.queries.map_slot)[:count]:
        candidates = np.flatnonzero(test.queries.map_slot == slot)
        picks.append(int(rng.choice(candidates)))
    return picks


def print_comparison(report: dict, console: Console) -> None:
    table = Table(title=f"localization, {report['split']} split, {report['queries']} queries ({report['data']['estimate']} radio maps)")
    for column in ("model", "BSs", "MAE (m)", "RMSE (m)", "median (m)", "p90 (m)", "cover 68/95 %", "ms/query", "fitted"):
        # on a narrow terminal the fitted parameters wrap, the model names stay whole
        table.add_column(column, justify="right" if column not in ("model", "fitted") else "left", no_wrap=column == "model")
    for label, entry in report["models"].items():
        for setting, r in entry.items():
            fitted = {
                k: v for k, v in r["fitted"].items() if k in ("k", "k_by_detectable_bs", "delta_db", "mean_k", "region", "preset", "temperature", "estimator")
            }
            fitted_text = ", ".join(f"{k}={_short(v)}" for k, v in fitted.items())
            cover = f"{r['coverage_68']:.2f} / {r['coverage_95']:.2f}"
            table.add_row(
                label,
                setting[0],
                f"{r['mae']:.2f}",
                f"{r['rmse']:.2f}",
                f"{r['median']:.2f}",
                f"{r['p90']:.2f}",
                cover,
                f"{r['ms_per_query']:.2f}",
                fitted_text,
            )
    console.print(table)
    counts = Table(title="MAE (m) by number of BSs above the noise floor at the UE, 5 BSs (share of queries)")
    counts.add_column("model", no_wrap=True)
    for c in range(6):
        counts.add_column(str(c), justify="right")
    for label, entry in report["models"].items():
        row = entry["5bs"]["by_detectable_bs"]
        counts.add_row(label, *[f"{row[str(c)]['mae']:.1f} ({100 * row[str(c)]['share']:.0f}%)" if row[str(c)]["n"] else "-" for c in range(6)])
    console.print(counts)


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{v}" for k, v in value.items()) + "}"
    return str(value)


__all__ = ["evaluate_models", "evaluate_across_measurements", "error_stats", "by_detectable"]
