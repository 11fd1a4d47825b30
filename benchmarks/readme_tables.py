"""The README's measured figures, rendered from the committed benchmark JSON (``docs/benchmarks/``).

Usage: python benchmarks/readme_tables.py [--check]

Each table stands in the README between ``<!-- BEGIN bench:NAME -->`` and ``<!-- END bench:NAME -->``; this
script rewrites those blocks from the JSON (``make bench`` runs it last), and ``--check`` exits 1 where a block
differs from what the JSON gives (``tests/test_readme_figures.py`` runs that check), so no README figure can
drift from the measurement behind it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
RESULTS = ROOT / "docs" / "benchmarks" / "probabilistic.json"
SCENARIO_TITLES = {"nominal": "nominal", "real": "real cities", "robust": "robustness"}
BLOCK = re.compile(r"(<!-- BEGIN bench:(?P<name>[a-z-]+) -->\n)(?P<body>.*?)(<!-- END bench:(?P=name) -->)", re.S)


def _interval(entry: dict) -> str:
    low, high = entry["ci95_over_maps"]
    return f"{entry['ratio']:.3f} ({low:.3f}-{high:.3f})"


def _seeds(scenario: dict) -> str:
    return ", ".join(scenario["seeds"])


def accuracy(results: dict) -> str:
    lines = [
        "| scenario (evaluation seeds) | BSs | localizer | `bayes-learned` | `bayes` | `:paper` | kNN | vs `bayes` (goal <= 0.95) | vs kNN (goal) | goals met |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, title in SCENARIO_TITLES.items():
        if name not in results:
            continue
        scenario = results[name]
        for setting, entry in scenario["settings"].items():
            mae = list(entry["mae_m"].values())
            labels = list(entry["mae_m"])
            ratios = list(entry["ratios"].values())
            goal_knn = next(t for t in entry["goals_met"] if "/ knn" in t).split("<= ")[1].split(" ")[0]
            met = sum(entry["goals_met"].values())
            cells = [f"**{mae[0]:.2f} m** (`{labels[0]}`)", *[f"{m:.2f} m" for m in mae[1:]]]
            lines.append(
                f"| {title} ({_seeds(scenario)}) | {setting[0]} | {' | '.join(cells)} | {_interval(ratios[0])} | {_interval(ratios[1])} (<= {goal_knn}) | {met} of {len(entry['goals_met'])} |"
            )
    return "\n".join(lines) + "\n"


def coverage(results: dict) -> str:
    lines = [
        "| scenario | BSs | localizer | 68 % / 95 %, all seeds | per seed (68 % / 95 %) | median radius 68 / 95 % |",
        "|---|---|---|---|---|---|",
    ]
    for name, title in SCENARIO_TITLES.items():
        if name not in results:
            continue
        for setting, entry in results[name]["settings"].items():
            for label, cover in entry["coverage"].items():
                seeds = "; ".join(f"{seed}: {c['coverage_68']:.3f} / {c['coverage_95']:.3f}" for seed, c in cover["by_seed"].items())
                lines.append(
                    f"| {title} | {setting[0]} | `{label}` | {cover['coverage_68']:.3f} / {cover['coverage_95']:.3f} | {seeds} | "
                    f"{cover['median_radius_68_m']:.1f} / {cover['median_radius_95_m']:.1f} m |"
                )
    return "\n".join(lines) + "\n"


def speed(results: dict) -> str:
    entry = results["speed"]
    lines = ["| localizer | one query | batches of 64 | goals (<= 5 ms, >= 1,000 queries/s) |", "|---|---|---|---|"]
    for name, row in entry.items():
        if isinstance(row, dict) and "single_query_ms" in row:
            lines.append(
                f"| `{name}` | {row['single_query_ms']:.2f} ms | {row['batched_queries_per_s']:,.0f} queries/s | {'met' if all(row['goals_met'].values()) else 'missed'} |"
            )
    before, after = entry["reference_fp32_matmul_gflops"], entry["reference_fp32_matmul_gflops_after"]
    lines.append(
        f"\nOn the same run, this machine multiplied fp32 matrices at {before:.0f} GFLOP/s before and {after:.0f} after ({entry['torch_threads']} threads): divide by it to compare machines."
    )
    return "\n".join(lines) + "\n"


RENDERERS = {"accuracy": accuracy, "coverage": coverage, "speed": speed}


def render(readme: str, results: dict) -> str:
    def block(match: re.Match) -> str:
        name = match.group("name")
        if name not in RENDERERS:
            raise SystemExit(f"{README}: unknown block bench:{name} (known: {', '.join(RENDERERS)})")
        return match.group(1) + RENDERERS[name](results) + match.group(4)

    return BLOCK.sub(block, readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a README block differs from the JSON, writing nothing")
    args = parser.parse_args()
    readme = README.read_text()
    rendered = render(readme, json.loads(RESULTS.read_text()))
    if args.check:
        if rendered != readme:
            print(f"{README}: figures differ from {RESULTS}; run python benchmarks/readme_tables.py", file=sys.stderr)
            sys.exit(1)
        return
    README.write_text(rendered)
    print(f"rendered {len(BLOCK.findall(readme))} blocks of {README} from {RESULTS}")


if __name__ == "__main__":
    main()
