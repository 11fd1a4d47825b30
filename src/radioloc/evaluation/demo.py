"""The demo, radioloc's main job: a fresh small dataset, RadioUNet estimates, LocUNet against the kNN baselines.

``run_demo`` uses the shipped RadioUNet and LocUNet; ``train=True`` runs the whole pipeline from scratch at small
scale (RadioUNet data and training, LocUNet data, estimates and training, evaluation) and times every stage.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from radioloc.datasets.builder import DatasetConfig, generate_dataset, read_map_record
from radioloc.datasets.plot import show_map
from radioloc.evaluation.experiment import evaluate_models
from radioloc.evaluation.radiomaps import draw_difference_histogram
from radioloc.io import atomic_write_json
from radioloc.localizers.registry import names
from radioloc.models.estimate import estimate_dataset


@dataclass(frozen=True)
class DemoConfig:
    maps: int = 12  # maps of the localization dataset (train/val/test 69/15/15 proportions)
    # Maps of seed 0 are the shipped models' training maps (data/dpm): the demo's test maps would be among them
    seed: int = 8128
    train: bool = False
    # --train only: RadioUNet data and schedule, LocUNet data and schedule (small scale, about 30 min in all)
    radiounet_maps: int = 40
    radiounet_epochs_first: int = 8
    radiounet_epochs_second: int = 1
    radiounet_samples_per_epoch: int = 2048
    train_maps: int = 30
    locunet_epochs: int = 8
    locunet_samples_per_epoch: int = 32768


class StageTimer:
    def __init__(self, console: Console):
        self.console = console
        self.seconds: dict[str, float] = {}
        self._started = time.perf_counter()

    def run(self, name: str, fn, *args, **kwargs):
        self.console.rule(f"[bold]{name}")
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        self.seconds[name] = time.perf_counter() - start
        self.console.print(f"{name}: {self.seconds[name]:.1f} s")
        return result

    def total(self) -> float:
        return time.perf_counter() - self._started


def _dataset_table(data: Path, manifest: dict, console: Console) -> None:
    table = Table(title=f"dataset {data}")
    for column in ("map", "split", "style", "building coverage", "parked cars"):
        table.add_column(column)
    split_of = {m: name for name, ids in manifest["split"].items() for m in ids}
    for map_id in manifest["maps"]:
        record = read_map_record(data, map_id)
        table.add_row(str(map_id), split_of[map_id], record["style"], f"{record['building_coverage']:.1%}", str(record["cars"]))
    console.print(table)


def run_demo(out: Path, config: DemoConfig, console: Console | None = None) -> dict:
    console = console or Console()
    timer = StageTimer(console)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "demo_config.json", asdict(config))  # marks the folder as a demo's, to resume (`radioloc demo --out`)
    figures = out / "figures"
    radiounet_model = None
    locunet_model = "locunet"
    models = names("nominal")  # the shipped nominal models and every localizer fitted on the demo's training maps
    models.insert(models.index("locunet") + 1, "locunet:paper")  # the paper's answer beside the learned prior's
    maps = config.train_maps if config.train else config.maps

    if config.train:
        from radioloc.localizers.locunet import fit_checkpoint
        from radioloc.training.locunet import LocUNetTrainConfig, load_training_splits, train_locunet
        from radioloc.training.radiounet import RadioUNetTrainConfig, train_radiounet

        radiomaps = out / "radiounet_data"
        timer.run("RadioUNet dataset", generate_dataset, radiomaps, DatasetConfig(maps=config.radiounet_maps, seed=config.seed + 1000, simulations=("DPM",)))
        radiounet_config = RadioUNetTrainConfig.for_preset(
            "cpu", epochs_first=config.radiounet_epochs_first, epochs_second=config.radiounet_epochs_second,
            samples_per_epoch=config.radiounet_samples_per_epoch, seed=config.seed,
        )  # fmt: skip
        summary = timer.run("RadioUNet training", train_radiounet, radiomaps, out / "radiounet_run", radiounet_config)
        radiounet_model = summary["checkpoint"]
        console.print(f"RadioUNet: best validation RMSE {summary['best_val_rmse_db']['2']:.2f} dB")

    data = out / "dataset"
    manifest = timer.run("localization dataset", generate_dataset, data, DatasetConfig(maps=maps, seed=config.seed, simulations=("DPM",)))
    _dataset_table(data, manifest, console)
    stats = timer.run("RadioUNet estimates", estimate_dataset, data, radiounet_model)
    pixels = stats["pixels"]
    console.print(
        f"RadioUNet estimate vs DPM truth: RMSE {pixels['outdoor']['rmse_db']:.2f} dB, MAE {pixels['outdoor']['mae_db']:.2f} dB "
        "over outdoor pixels (paper: 1.66 / 0.87 dB)"
    )

    if config.train:
        locunet_config = LocUNetTrainConfig.for_preset(
            "cpu", epochs=config.locunet_epochs, samples_per_epoch=config.locunet_samples_per_epoch, seed=config.seed
        )
        summary = timer.run("LocUNet training", train_locunet, data, out / "locunet_run", locunet_config)
        locunet_model = summary["checkpoint"]
        timer.run("LocUNet refinement and radii", fit_checkpoint, locunet_model, *load_training_splits([data], locunet_config, quiet=True))
        # the shipped calibration belongs to the shipped RadioUNet: calibrate on the demo's own estimates
        models = [name + ":fit" if name in ("bayes", "bayes-learned") else name for name in models if name != "locunet:paper"]
        console.print(f"LocUNet: best validation MAE {summary['best_val_mae_m']:.2f} m")

    report = timer.run(
        "localization (LocUNet, bayes, kNN)",
        evaluate_models,
        [locunet_model if name == "locunet" else name for name in models],
        data,
        "test",
        figures=figures,
        json_path=out / "report.json",
        console=console,
    )

    def draw() -> list[Path]:
        drawn = [
            draw_difference_histogram(stats["difference_sample_db"], pixels, figures / "estimate_error_DPM.png", "RadioUNet estimate - DPM truth (demo maps)")
        ]
        for map_id in manifest["split"]["test"]:
            drawn.append(show_map(data, map_id, figures / f"map_{map_id}.png"))
            drawn.append(show_map(data, map_id, figures / f"map_{map_id}_estimate.png", kind="estimate"))
        return drawn

    drawn = timer.run("figures", draw)
    summary = {
        "config": asdict(config),
        "seconds": {name: round(s, 1) for name, s in timer.seconds.items()},
        "total_seconds": round(timer.total(), 1),
        "radiounet_estimate": pixels,
        "localization": {
            name: {s: {k: r[k] for k in ("mae", "rmse", "median", "p90", "n", "ms_per_query")} for s, r in entry.items()}
            for name, entry in report["models"].items()
        },
        "figures": report.get("figures", []) + [str(p) for p in drawn],
    }
    atomic_write_json(out / "demo_summary.json", summary)
    table = Table(title="time per stage")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for name, seconds in timer.seconds.items():
        table.add_row(name, f"{seconds:.1f}")
    table.add_row("total", f"{timer.total():.1f}")
    console.print(table)
    console.print(f"figures: {figures} ({len(summary['figures'])} PNGs); report: {out / 'report.json'}; summary: {out / 'demo_summary.json'}")
    return summary
