"""LocUNet goals: accuracy against kNN in the nominal scenario, and speed per query including input assembly.

Usage: python benchmarks/locunet.py [--model CKPT] [--data DIR] [--limit N] [--json benchmarks/results/locunet.json]
Without --data it generates the paper-size DPM dataset (99 maps x 80 BSs, seed 0, about 3 min) into
data/dpm and writes its RadioUNet estimates with the shipped model (about 3 min), unless they exist.
Goals (issue 4): nominal scenario, 5 BSs, test maps: LocUNet MAE <= 0.6 x kNN MAE on the same queries, and
LocUNet ahead of kNN with 3 BSs; <= 5 ms for one query; >= 1,000 queries/s batched (both with input assembly).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from radioloc.datasets.builder import DatasetConfig, generate_dataset
from radioloc.datasets.localization import load_localization
from radioloc.evaluation.experiment import evaluate_models
from radioloc.evaluation.localization import time_queries
from radioloc.io import atomic_write_json
from radioloc.localizers.registry import resolve_localizer
from radioloc.models.estimate import estimate_dataset


def ensure_dataset(root: Path) -> Path:
    if not (root / "maps").is_dir() or not (root / "DPM" / "estimate_stats.json").exists():
        generate_dataset(root, DatasetConfig(maps=99, seed=0, simulations=("DPM",)))
        estimate_dataset(root)
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model",
        default="locunet:paper",
        help="locunet:paper (the shipped network with the paper's answer; plain locunet is fused on data/dpm's val and test maps) or a checkpoint",
    )
    parser.add_argument("--data", type=Path, default=Path("data/dpm"))
    parser.add_argument("--limit", type=int, default=30000, help="random test queries for the accuracy comparison")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/locunet.json"))
    args = parser.parse_args()
    console = Console()
    root = ensure_dataset(args.data)
    test = load_localization(root, "test")
    specs = [args.model, args.model + ":network", "knn", "knn-cond", "adaptive-knn"]
    report = evaluate_models(specs, root, "test", limit=args.limit, test=test, console=console)
    model_name = report["model"]
    models = report["models"]
    network = models[model_name + ":network"]
    ratio5 = models[model_name]["5bs"]["mae"] / models["knn"]["5bs"]["mae"]
    ratio3 = models[model_name]["3bs"]["mae"] / models["knn"]["3bs"]["mae"]

    localizer = resolve_localizer(args.model).localizer
    single_ms = 1000 * time_queries(localizer, test, 1, 200)
    batched_qps = 1.0 / time_queries(localizer, test, 64, 60)
    result = {
        "data": str(root),
        "queries": report["queries"],
        "locunet_mae_5bs_m": models[model_name]["5bs"]["mae"],
        "knn_mae_5bs_m": models["knn"]["5bs"]["mae"],
        "mae_ratio_5bs": ratio5,
        "locunet_mae_3bs_m": models[model_name]["3bs"]["mae"],
        "knn_mae_3bs_m": models["knn"]["3bs"]["mae"],
        "mae_ratio_3bs": ratio3,
        "network_only_mae_5bs_m": network["5bs"]["mae"],
        "network_only_mae_3bs_m": network["3bs"]["mae"],
        "single_query_ms": single_ms,
        "batched_queries_per_s": batched_qps,
        "goals": {
            "mae_ratio_5bs<=0.6": ratio5 <= 0.6,
            "ahead_of_knn_3bs": ratio3 < 1.0,
            "single_query_ms<=5": single_ms <= 5.0,
            "batched_qps>=1000": batched_qps >= 1000,
        },
        "report": report,
    }
    console.print(
        f"LocUNet / kNN MAE: 5 BSs {models[model_name]['5bs']['mae']:.2f} / {models['knn']['5bs']['mae']:.2f} m = {ratio5:.2f} (goal <= 0.6); "
        f"3 BSs {models[model_name]['3bs']['mae']:.2f} / {models['knn']['3bs']['mae']:.2f} m = {ratio3:.2f} (goal < 1)"
    )
    console.print(f"LocUNet without its local refinement (the network alone): 5 BSs {network['5bs']['mae']:.2f} m, 3 BSs {network['3bs']['mae']:.2f} m")
    console.print(f"one query {single_ms:.2f} ms (goal <= 5); batched {batched_qps:.0f} queries/s (goal >= 1000), input assembly included")
    console.print(json.dumps(result["goals"]))
    atomic_write_json(args.json, result)
    console.print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
