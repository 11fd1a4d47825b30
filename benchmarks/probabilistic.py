"""Localization accuracy and calibrated radii on fresh maps: LocUNet against the Bayesian grid posterior and kNN,
every method on the same queries of datasets the benchmark generates itself from the evaluation seeds
(:mod:`seeds`, :mod:`protocol`), which no model, calibration or design choice has seen.

Usage: python benchmarks/probabilistic.py [--parts nominal,real,robust,speed] [--queries 4000] [--out docs/benchmarks]

- nominal: procedural maps, UEs report the dominant-path truth, localizers see the shipped RadioUNet's estimates;
  ``locunet``, ``bayes-learned``, ``bayes``, ``locunet:paper`` and kNN.
- real: the same localizers on the real-city tiles (no model was fitted on a real city).
- robust: UEs report the ray-traced truth with cars (IRT2cars); the robustness models.

kNN's k is tuned on the calibration pool (:data:`seeds.CALIBRATION_POOL`, the maps every radius calibration
was fitted on), with the k grid extended until its optimum is inside it, searching the same region as the
posterior (the outdoor pixels of the UE box). Each ratio is a ratio of MAEs on the same queries, with a 95 %
interval from a paired bootstrap over the maps, pooled and per seed; coverage of the 68 % / 95 % radii is given
per seed, per number of BSs above the noise floor and per map style. Goals (issue 31) are checked on the upper
end of each interval and on every seed separately.

Speed: one query and batches of 64 for ``bayes`` and ``locunet`` (input assembly included), beside an fp32
matrix-multiply rate measured in the same run, so figures of two machines can be compared.

Writes ``{out}/probabilistic.json`` and figures under ``{out}/figures/``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import protocol  # noqa: E402
import seeds  # noqa: E402
import torch  # noqa: E402
from rich.console import Console  # noqa: E402

from radioloc.datasets.builder import read_map_record  # noqa: E402
from radioloc.datasets.localization import LocalizationData, concat_localization, load_localization  # noqa: E402
from radioloc.evaluation.bootstrap import per_map_sums, ratio_of_sums_interval  # noqa: E402
from radioloc.evaluation.experiment import evaluate_models  # noqa: E402
from radioloc.evaluation.figures import save_figure  # noqa: E402
from radioloc.evaluation.localization import time_queries  # noqa: E402
from radioloc.io import atomic_write_json  # noqa: E402
from radioloc.localizers.registry import resolve_localizer  # noqa: E402
from radioloc.localizers.uncertainty import LEVELS  # noqa: E402

SCENARIOS = {
    # name: (localizers, the one compared, its posterior reference, what the UEs report)
    "nominal": (["locunet", "bayes-learned", "bayes", "locunet:paper", "knn"], "locunet", "bayes", "DPM"),
    "real": (["locunet", "bayes-learned", "bayes", "locunet:paper", "knn"], "locunet", "bayes", "DPM"),
    "robust": (["locunet-robust", "bayes-learned-robust", "bayes-robust", "locunet-robust:paper", "knn"], "locunet-robust", "bayes-robust", "IRT2cars"),
}
GOALS = {  # upper ends of the ratio intervals
    "nominal": {"5bs": {"knn": 0.50, "bayes": 0.95}, "3bs": {"knn": 0.55, "bayes": 0.95}},
    "real": {"5bs": {"knn": 0.50, "bayes": 0.95}, "3bs": {"knn": 0.55, "bayes": 0.95}},
    "robust": {"5bs": {"knn": 0.45, "bayes": 0.95}, "3bs": {"knn": 0.50, "bayes": 0.95}},
}
COVERAGE_BANDS = {"68": (0.65, 0.71), "95": (0.93, 0.97)}
CALIBRATED = ("locunet", "bayes", "locunet-robust", "bayes-robust", "knn")  # the coverage goal's localizers
SPEED = ("bayes", "locunet")
ROOT = Path(__file__).resolve().parent.parent
SEARCH_REGION = "outdoor pixels of the middle 164 x 164 m (the protocol's UE box), for every localizer"


def sampled(root: Path, measurement: str, count: int, seed: int) -> LocalizationData:
    """``count`` random queries of every map of a dataset (all its maps are unseen)."""
    data = load_localization(root, protocol.ALL_SPLITS, measurement_sim=measurement)
    pick = np.sort(np.random.default_rng(seed).choice(len(data.queries), size=min(count, len(data.queries)), replace=False))
    return data.subset(pick)


def ratio_entry(numerator: np.ndarray, denominator: np.ndarray, slots: np.ndarray) -> dict:
    low, high = ratio_of_sums_interval(per_map_sums(numerator, slots), per_map_sums(denominator, slots))
    return {"ratio": float(numerator.sum() / denominator.sum()), "ci95_over_maps": [low, high]}


def coverage_entry(covered68: np.ndarray, covered95: np.ndarray) -> dict:
    return {"coverage_68": float(covered68.mean()), "coverage_95": float(covered95.mean()), "n": int(covered68.size)}


def in_band(entry: dict) -> bool:
    return all(lo <= entry[f"coverage_{level}"] <= hi for level, (lo, hi) in COVERAGE_BANDS.items())


def scenario(console: Console, name: str, queries: int, figures: Path) -> dict:
    specs, compared, reference, measurement = SCENARIOS[name]
    roots = protocol.datasets(name)
    console.rule(f"{name}: seeds {', '.join(map(str, roots))}, UEs report {measurement}")
    parts = [sampled(root, measurement, queries, seed) for seed, root in roots.items()]
    test = concat_localization(parts)
    seed_of_slot = np.concatenate([[seed] * len(part.scenes.map_ids) for seed, part in zip(roots, parts)])
    records = [r for (seed, root), part in zip(roots.items(), parts) for r in (read_map_record(root, m) for m in part.scenes.map_ids)]
    pool = protocol.calibration_pool("robust" if name == "robust" else "nominal")
    train = concat_localization([load_localization(root, protocol.ALL_SPLITS, measurement_sim=measurement) for root in pool.values()])
    per_query: dict = {}
    report = evaluate_models(specs, name, "all", test=test, train=train, measurement=measurement, console=console, figures=figures / name, per_query=per_query)
    slots = per_query["slot"]
    seed_of = seed_of_slot[slots]
    style_of = np.array([r.get("style", "imported") for r in records])[slots]
    result: dict = {"seeds": {str(s): str(r) for s, r in roots.items()}, "calibration_pool_seeds": list(pool), "queries": len(test.queries),
                    "maps": len(test.scenes.map_ids), "measurement": measurement, "search_region": SEARCH_REGION, "settings": {}}  # fmt: skip
    result["fitted"] = {label: report["models"][label]["5bs"]["fitted"] for label in report["models"]}
    for setting in ("5bs", "3bs"):
        runs = {label: per_query[label][setting] for label in report["models"]}
        mae = {label: float(r.errors.mean()) for label, r in runs.items()}
        entry: dict = {"mae_m": mae, "mae_m_by_seed": {str(s): {label: float(r.errors[seed_of == s].mean()) for label, r in runs.items()} for s in roots}}
        ratios, goals = {}, {}
        for other, key in ((reference, "bayes"), ("knn", "knn")):
            pooled = ratio_entry(runs[compared].errors, runs[other].errors, slots)
            by_seed = {str(s): ratio_entry(runs[compared].errors[seed_of == s], runs[other].errors[seed_of == s], slots[seed_of == s]) for s in roots}
            ratios[f"{compared} / {other}"] = {**pooled, "by_seed": by_seed}
            goal = GOALS[name][setting][key]
            goals[f"{compared} / {other} <= {goal} (upper end of the interval)"] = pooled["ci95_over_maps"][1] <= goal
        coverage = {}
        for label, r in runs.items():
            covered68, covered95 = r.errors <= r.estimate.radius_68, r.errors <= r.estimate.radius_95
            cover = coverage_entry(covered68, covered95)
            cover["median_radius_68_m"] = float(np.median(r.estimate.radius_68))
            cover["median_radius_95_m"] = float(np.median(r.estimate.radius_95))
            cover["by_seed"] = {str(s): coverage_entry(covered68[seed_of == s], covered95[seed_of == s]) for s in roots}
            cover["by_detectable_bs"] = {
                str(c): coverage_entry(covered68[r.n_detectable == c], covered95[r.n_detectable == c]) for c in range(6) if (r.n_detectable == c).sum() >= 50
            }
            cover["by_style"] = {s: coverage_entry(covered68[style_of == s], covered95[style_of == s]) for s in np.unique(style_of)}
            cover["levels"] = {f"{level:g}": float(np.mean(r.errors <= r.estimate.radii[:, i])) for i, level in enumerate(LEVELS)}
            coverage[label] = cover
            if label in CALIBRATED:
                goals[f"{label} coverage within 68 % {COVERAGE_BANDS['68']} and 95 % {COVERAGE_BANDS['95']} on every seed"] = all(
                    in_band(c) for c in cover["by_seed"].values()
                )
        entry |= {"ratios": ratios, "coverage": coverage, "goals_met": goals}
        result["settings"][setting] = entry
        for text, met in goals.items():
            console.print(f"{name} {setting}: {text}: {'[green]met[/green]' if met else '[red]missed[/red]'}")
    result["figures"] = [*report.get("figures", []), str(draw_reliability_by_seed(result, name, figures / f"reliability_by_seed_{name}.png"))]
    return result


def draw_reliability_by_seed(result: dict, name: str, out: Path) -> Path:
    """Measured against nominal coverage, one line per localizer and seed (5 BSs and 3 BSs side by side)."""
    fig, axes = plt.subplots(1, 2, figsize=(10.5, 5.0))
    for ax, setting in zip(axes, ("5bs", "3bs")):
        ax.plot([0.4, 1.0], [0.4, 1.0], color="0.6", lw=1, ls="--")
        for (label, cover), color in zip(result["settings"][setting]["coverage"].items(), plt.cm.tab10.colors):
            ax.plot([float(k) for k in cover["levels"]], list(cover["levels"].values()), marker="o", ms=3, color=color, label=f"{label} (all seeds)")
            for by_seed in cover["by_seed"].values():
                ax.plot([0.68, 0.95], [by_seed["coverage_68"], by_seed["coverage_95"]], ls="none", marker="x", ms=6, color=color)
        for level, (lo, hi) in COVERAGE_BANDS.items():
            ax.axhspan(lo, hi, xmin=(int(level) / 100 - 0.42) / 0.6, xmax=(int(level) / 100 - 0.38) / 0.6, color="0.85", zorder=0)
        ax.set_xlim(0.4, 1.0)
        ax.set_ylim(0.4, 1.0)
        ax.set_xlabel("nominal coverage of the reported radius")
        ax.set_ylabel("measured coverage (x: each evaluation seed)")
        ax.set_title(f"{name}, {setting[0]} BSs", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left")
    return save_figure(fig, out)


def reference_fp32_gflops() -> float:
    """A fixed fp32 matrix product on the same threads: what this machine does per second, to compare runs."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    torch.mm(a, b)
    started, repeats = time.perf_counter(), 20
    for _ in range(repeats):
        torch.mm(a, b)
    return 2 * 1024**3 * repeats / (time.perf_counter() - started) / 1e9


def speed(console: Console) -> dict:
    data = sampled(next(iter(protocol.datasets("nominal").values())), "DPM", 4000, 0)
    result: dict = {"reference_fp32_matmul_gflops": reference_fp32_gflops(), "torch_threads": torch.get_num_threads()}
    for name in SPEED:
        localizer = resolve_localizer(name).localizer
        single_ms = 1000 * time_queries(localizer, data, 1, 200)
        batched_qps = 1.0 / time_queries(localizer, data, 64, 40)
        result[name] = {
            "single_query_ms": single_ms,
            "batched_queries_per_s": batched_qps,
            "goals_met": {"single <= 5 ms": single_ms <= 5.0, "batched >= 1000/s": batched_qps >= 1000},
        }
        console.print(f"{name}: one query {single_ms:.2f} ms (goal <= 5), batched {batched_qps:.0f} queries/s (goal >= 1000)")
    result["reference_fp32_matmul_gflops_after"] = reference_fp32_gflops()
    console.print(f"fp32 reference: {result['reference_fp32_matmul_gflops']:.0f} / {result['reference_fp32_matmul_gflops_after']:.0f} GFLOP/s before / after")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--parts", default="nominal,real,robust,speed", help="comma separated: nominal, real, robust, speed (run speed with nothing else running)"
    )
    parser.add_argument("--queries", type=int, default=4000, help="random queries per evaluation seed, the same for every method")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    names = [n.strip() for n in args.parts.split(",") if n.strip()]
    unknown = [n for n in names if n not in (*SCENARIOS, "speed")]
    if unknown or not names or args.queries < 100:
        parser.error(f"--parts takes {', '.join(SCENARIOS)}, speed; --queries at least 100 (got {unknown or names or args.queries})")
    console = Console(width=160)
    started = time.perf_counter()
    result = {"evaluation_seeds": {"nominal": list(seeds.NOMINAL), "robust": list(seeds.ROBUST), "real": list(seeds.REAL_CITY)}}
    for name in names:
        result[name] = speed(console) if name == "speed" else scenario(console, name, args.queries, args.out / "figures")
        result.setdefault("minutes", {})[name] = round((time.perf_counter() - started) / 60, 1)
        started = time.perf_counter()
    path = args.out / "probabilistic.json"
    previous = protocol.read_json(path)
    result["minutes"] = {**previous.get("minutes", {}), **result["minutes"]}
    # a run of some parts keeps the others' figures; paths are written from the repository's root
    atomic_write_json(path, json.loads(json.dumps({**previous, **result}).replace(f"{ROOT}/", "")))
    console.print(f"wrote {path}")


if __name__ == "__main__":
    main()
