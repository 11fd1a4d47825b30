"""The benchmarks' fresh data: every evaluation dataset is generated here, from the seeds of :mod:`seeds`, the first
time a benchmark needs it (resumable: a killed generation picks up where it stopped, and a finished dataset is
reused). Nothing here is ever fitted on: kNN's k and every radius calibration come from other seeds.

- nominal: ``MAPS_PER_SEED`` procedural maps per seed, DPM truth, the shipped RadioUNet's estimates;
- robust: the same with ``ROBUST_CANDIDATES`` BSs per map and the ray-traced IRT2cars truth;
- real: the tiles of the bundled real-city scenes, BSs and UEs sampled with the real-city seed.

Every map of an evaluation dataset is unseen, so the benchmarks evaluate all of its splits (``ALL_SPLITS``).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import seeds

DATA = Path(__file__).resolve().parent / "data"
ALL_SPLITS = "train,val,test"
RADIOLOC = [sys.executable, "-m", "radioloc.cli"]


def _run(*args: str) -> None:
    subprocess.run([*RADIOLOC, *args], check=True)


def _ready(root: Path) -> bool:
    """Generated and estimated: the estimate statistics are written last."""
    return (root / "DPM" / "estimate_stats.json").is_file()


def _generate(root: Path, *options: str) -> Path:
    if not _ready(root):
        _run("dataset", "generate", "--out", str(root), *options)
        _run("dataset", "estimate", str(root))
    return root


def nominal(seed: int, prefix: str = "nominal") -> Path:
    return _generate(DATA / f"{prefix}{seed}", "--maps", str(seeds.MAPS_PER_SEED), "--seed", str(seed))


def robust(seed: int, prefix: str = "robust") -> Path:
    options = ("--maps", str(seeds.MAPS_PER_SEED), "--seed", str(seed), "--candidates", str(seeds.ROBUST_CANDIDATES), "--sims", "DPM,IRT2cars")
    return _generate(DATA / f"{prefix}{seed}", *options)


def real_city(seed: int, prefix: str = "realcity", cities: tuple[str, ...] = seeds.REAL_CITIES) -> Path:
    """BSs and UEs sampled with ``seed`` on the tiles of ``cities``."""
    tiles = DATA / ("tiles" if cities == seeds.REAL_CITIES else f"tiles-{'-'.join(cities)}")
    for city in cities:
        if not any(tiles.glob(f"{city}_*.png")):
            _run("city", "tiles", city, "--out", str(tiles), "--force")  # several cities' tiles share the folder
    return _generate(DATA / f"{prefix}{seed}", "--buildings", str(tiles), "--seed", str(seed))


def transfer_check() -> Path:
    """The real-city data of the radii transfer diagnostic (``seeds.TRANSFER_CHECK_SEED``)."""
    return real_city(seeds.TRANSFER_CHECK_SEED, "transfer", seeds.TRANSFER_CHECK_CITIES)


SCENARIOS = {"nominal": (nominal, seeds.NOMINAL), "robust": (robust, seeds.ROBUST), "real": (real_city, seeds.REAL_CITY)}


def calibration_pool(scenario: str) -> dict[int, Path]:
    """Seed -> dataset folder of the calibration pool (nominal or robust), generated where missing: where kNN is
    tuned and the shipped radii were calibrated (``radioloc train radii``)."""
    make = robust if scenario == "robust" else nominal
    return {seed: make(seed, prefix="pool") for seed in seeds.CALIBRATION_POOL[scenario]}


def read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def datasets(scenario: str) -> dict[int, Path]:
    """Seed -> dataset folder of every evaluation seed of ``scenario``, generated where missing."""
    make, scenario_seeds = SCENARIOS[scenario]
    return {seed: make(seed) for seed in scenario_seeds}
