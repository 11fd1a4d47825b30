"""Run the paper's experiments at a scale, resumably, and write the report.

``DIR`` layout (``--out``)::

    DIR/scale.json                the scale (radioloc.evaluation.experiments.scales) every result here used
    DIR/data/eval/                the evaluation dataset (generated and estimated on first use, resumable)
    DIR/cache/{experiment}/*.json one file per finished unit of work (a table row)
    DIR/cache/train/{run}.json    a trained network's test metrics (shared by the tables that use the same run)
    DIR/runs/{run}/               training runs (resumable checkpoints)
    DIR/results/{experiment}.json an experiment's result, written when it finished
    DIR/figures/*.png             figures
    DIR/report.md                 every finished experiment beside the paper's numbers, with verdicts

A killed run continues where it stopped: a finished experiment is skipped, a half-finished one reuses its cached
units; the dataset builder and the trainer resume on their own.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.console import Console

from radioloc.datasets.builder import DatasetConfig, generate_dataset
from radioloc.datasets.localization import LocalizationData, load_localization
from radioloc.datasets.ranging import attach_ranges
from radioloc.errors import RadiolocError
from radioloc.evaluation.experiments.records import read_cached, read_result
from radioloc.evaluation.experiments.scales import Scale, get_scale
from radioloc.io import atomic_write_json, json_safe, read_json_object

NOMINAL = "DPM"
ROBUST = "IRT2cars"


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str  # what of the paper it reproduces
    run: Callable[[Context], dict]
    needs: tuple[str, ...] = ()  # experiments whose results it reads


EXPERIMENTS: dict[str, Experiment] = {}


def experiment(name: str, title: str, needs: tuple[str, ...] = ()):
    """Register an experiment function ``f(ctx) -> result dict``."""

    def wrap(function: Callable[[Context], dict]):
        EXPERIMENTS[name] = Experiment(name, title, function, needs)
        return function

    return wrap


class Context:
    """What an experiment works with: the scale, the output folder, the evaluation data, a result cache."""

    def __init__(self, out: Path, scale: Scale, console: Console, workers: int | None = None):
        self.out, self.scale, self.console, self.workers = out, scale, console, workers
        self.experiment = ""
        self.reads: list[Path] = []  # cached results and other experiments' results the current experiment read back
        self._loaded: dict[tuple, LocalizationData] = {}

    # -- data -------------------------------------------------------------------------------------------------
    @property
    def dataset(self) -> Path:
        return self.out / "data" / "eval"

    def ensure_dataset(self) -> Path:
        """Generate (or resume) the evaluation dataset and its RadioUNet estimates with the shipped model."""
        from radioloc.models.estimate import estimate_dataset

        root = self.dataset
        done = root / ".experiments-ready.json"
        if not done.exists():
            config = DatasetConfig(maps=self.scale.maps, seed=self.scale.seed, simulations=self.scale.simulations, protocol=self.scale.protocol)
            self.console.rule(f"evaluation dataset: {self.scale.maps} maps, seed {self.scale.seed}, {', '.join(self.scale.simulations)}")
            generate_dataset(root, config, workers=self.workers, quiet=False)
            estimate_dataset(root, quiet=False)
            atomic_write_json(done, {"scale": self.scale.name})
        return root

    def data(self, split: str, measurement: str = NOMINAL, queries: int | None = None, toa_sigma: float | None = None) -> LocalizationData:
        """A split with the RadioUNet estimates as radio maps and UEs reporting ``measurement``; the test split keeps
        the scale's fixed sample of queries (the same for every method); with ``toa_sigma`` ranges are attached
        (noise drawn from a seed fixed per sigma, so every method sees the same ranges)."""
        key = (split, measurement, queries, toa_sigma)
        if key not in self._loaded:
            if (split, measurement, queries, None) not in self._loaded:
                full = load_localization(self.ensure_dataset(), split, "estimate", measurement_sim=measurement)
                limit = self.scale.queries if queries is None else queries
                if limit and limit < len(full.queries):
                    full = full.subset(np.sort(np.random.default_rng(self.scale.seed).choice(len(full.queries), size=limit, replace=False)))
                self._loaded[(split, measurement, queries, None)] = full
            base = self._loaded[(split, measurement, queries, None)]
            self._loaded[key] = (
                base
                if toa_sigma is None
                else attach_ranges(base, toa_sigma, seed=int(round(toa_sigma * 1000)) + {"test": 0, "val": 1, "train": 2}.get(split, 3))
            )
        return self._loaded[key]

    # -- caching ----------------------------------------------------------------------------------------------
    def cached(self, key: str, compute: Callable[[], dict]) -> dict:
        """The cached result of one unit of work of the current experiment, computed and stored when missing."""
        path = self.out / "cache" / self.experiment / f"{key}.json"
        if path.exists():
            return self.read_cached(path, "cached result")
        value = json_safe(compute())
        atomic_write_json(path, value)
        return value

    def read_cached(self, path: Path, what: str) -> dict:
        """A cached result read back, its values checked (:mod:`records`); remembered, so that a failure of the
        experiment that read it can name it."""
        self.reads.append(path)
        return read_cached(path, what)

    def result(self, name: str) -> dict:
        path = self.out / "results" / f"{name}.json"
        if not path.exists():
            raise RadiolocError(f"{path}: experiment {name!r} has not run here yet")
        self.reads.append(path)
        return read_result(path, name, self.scale.name)

    def figure(self, name: str) -> Path:
        return self.out / "figures" / name


def _check_scale(out: Path, scale: Scale) -> None:
    path = out / "scale.json"
    if path.exists():
        try:
            previous = read_json_object(path, "scale record")
        except RadiolocError:  # without its scale record the folder cannot be resumed: no advice to delete it
            raise RadiolocError(f"{path}: corrupt scale record, so the results beside it cannot be matched to a scale; choose a new --out") from None
        if previous != json.loads(json.dumps(json_safe(scale.to_dict()))):
            raise RadiolocError(f"{out}: holds results of scale {previous.get('name')!r} with other settings; choose another --out")
    else:
        atomic_write_json(path, scale.to_dict())


def order(names: list[str]) -> list[str]:
    """``names`` (all when empty) with what each needs first, in registry order."""
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise RadiolocError(f"unknown experiment {unknown[0]!r} (see `radioloc experiments list`: {', '.join(EXPERIMENTS)})")
    wanted = set(names or EXPERIMENTS)
    grew = True
    while grew:
        grew = False
        for name in list(wanted):
            for need in EXPERIMENTS[name].needs:
                if need not in wanted:
                    wanted.add(need)
                    grew = True
    return [name for name in EXPERIMENTS if name in wanted]


def run_experiments(
    names: list[str], scale_name: str, out: str | Path, console: Console | None = None, workers: int | None = None, command: str | None = None
) -> dict:
    """Run (or resume) the experiments ``names`` (all when empty) at a scale into ``out``; returns the results."""
    from radioloc.evaluation.experiments.report import write_report

    console = console or Console()
    scale = get_scale(scale_name)
    selected = order(list(names))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _check_scale(out, scale)
    ctx = Context(out, scale, console, workers)
    started = time.perf_counter()
    ctx.ensure_dataset()  # before any experiment, so none of them is timed with the dataset generation
    data_seconds = time.perf_counter() - started
    if data_seconds > 1:
        console.print(f"evaluation dataset ready in {data_seconds:.0f} s: {ctx.dataset}")
    results = {}
    for name in selected:
        path = out / "results" / f"{name}.json"
        if path.exists():
            console.print(f"[green]{name}[/green]: done earlier ({path})")
            results[name] = read_result(path, name, scale.name)
            continue
        console.rule(f"{name}: {EXPERIMENTS[name].title}")
        ctx.experiment, ctx.reads = name, []
        started = time.perf_counter()
        try:
            result = EXPERIMENTS[name].run(ctx)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError, StopIteration) as exc:
            if not ctx.reads:
                raise
            # a cached or needed result is radioloc's own file, but may be damaged or hand-edited (a field missing,
            # of the wrong kind or too short; values out of range fail as they are read): name the last ones read
            last = [str(p.relative_to(out)) for p in ctx.reads[::-1][:3]]
            raise RadiolocError(f"{out}: {name} failed on what it read back ({type(exc).__name__}: {exc}); a file it read may be damaged: "
                                f"delete {' or '.join(last)} (the last read{'' if len(last) == 1 else ', newest first'}) to recompute it") from None  # fmt: skip
        result = {"experiment": name, "scale": scale.name, "seconds": round(time.perf_counter() - started, 1), **result}
        atomic_write_json(path, result)
        results[name] = json_safe(result)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    report = write_report(out, scale, command)
    console.print(f"wrote {report}")
    return results
