"""Wall-clock time to generate the paper-size DPM dataset (99 maps x 80 BS positions) on this machine.

Usage: python benchmarks/dataset_generation.py [--maps 99] [--out DIR] [--json benchmarks/results/dataset_generation.json]
Goal (issue 2): at most 15 minutes on the 2-core machine. The folder is deleted afterwards unless --out is given.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from radioloc.datasets.builder import DatasetConfig, generate_dataset


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--maps", type=int, default=99)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/dataset_generation.json"))
    args = parser.parse_args()
    keep = args.out is not None
    out = args.out or Path(tempfile.mkdtemp(prefix="radioloc-bench-")) / "dataset"
    if out.exists() and any(out.iterdir()):
        parser.error(f"{out} is not empty")
    started = time.perf_counter()
    manifest = generate_dataset(out, DatasetConfig(maps=args.maps, seed=0))
    seconds = time.perf_counter() - started
    radio_maps = args.maps * manifest["config"]["protocol"]["candidates_per_map"]
    result = {
        "benchmark": "dataset_generation",
        "maps": args.maps,
        "radio_maps": radio_maps,
        "workers": manifest["workers"],
        "cores": os.cpu_count(),
        "seconds": round(seconds, 1),
        "radio_maps_per_second": round(radio_maps / seconds, 1),
        "disk_gb": round(folder_size(out) / 1e9, 2),
        "goal_seconds": 900,
    }
    print(
        f"{args.maps} maps x 80 BS ({radio_maps} DPM radio maps) in {seconds / 60:.1f} min "
        f"({result['radio_maps_per_second']} maps/s, {result['workers']} workers, {result['disk_gb']} GB); goal <= 15 min"
    )
    if not keep:
        shutil.rmtree(out.parent)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
