"""The ``radioloc`` command line: wiring only, the work lives in the stage packages."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from radioloc.errors import RadiolocError

app = typer.Typer(add_completion=False, no_args_is_help=True, help="RSS localization with radio maps (LocUNet).")
dataset_app = typer.Typer(no_args_is_help=True, help="Generate, inspect and load RadioLocSeer-layout datasets.")
city_app = typer.Typer(no_args_is_help=True, help="Building maps: procedural generation and import.")
app.add_typer(dataset_app, name="dataset")
train_app = typer.Typer(no_args_is_help=True, help="Train models.")
evaluate_app = typer.Typer(no_args_is_help=True, help="Evaluate models.")
app.add_typer(city_app, name="city")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
console = Console()


def _parse_sims(sims: str) -> tuple[str, ...]:
    names = tuple(s.strip() for s in sims.split(",") if s.strip())
    if not names:
        raise RadiolocError("--sims: give at least one simulation, e.g. DPM or DPM,DPMcars")
    return names


@dataset_app.command("generate")
def dataset_generate(
    out: Path = typer.Option(..., "--out", help="Dataset folder (created; an unfinished one is resumed)."),
    maps: int = typer.Option(99, "--maps", help="Number of procedural city maps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the whole dataset."),
    buildings: Optional[Path] = typer.Option(None, "--buildings", help="Folder of 256x256 building PNGs to use instead of procedural maps."),
    sims: str = typer.Option("DPM", "--sims", help="Simulations, comma separated: DPM, DPMcars."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Worker processes (default: all cores)."),
) -> None:
    """Generate a dataset: city maps, cars, radio maps, ToA, positions (resumable)."""
    from radioloc.datasets.builder import DatasetConfig, generate_dataset

    config = DatasetConfig(maps=maps, seed=seed, simulations=_parse_sims(sims), buildings_dir=str(buildings) if buildings else None)
    manifest = generate_dataset(out, config, workers=workers)
    split = manifest["split"]
    console.print(
        f"[green]dataset ready[/green] in {out}: {len(manifest['maps'])} maps "
        f"({len(split['train'])} train / {len(split['val'])} val / {len(split['test'])} test), "
        f"simulations {', '.join(manifest['simulations'])}, {manifest['generation_seconds']} s"
    )


@dataset_app.command("show")
def dataset_show(
    directory: Path = typer.Argument(..., help="Dataset folder."),
    map_id: int = typer.Option(..., "--map", help="Map id."),
    bs_set: int = typer.Option(0, "--set", help="BS set whose radio maps are drawn."),
    sim: str = typer.Option("DPM", "--sim", help="Simulation to draw."),
    kind: str = typer.Option("true", "--kind", help="true (simulated) or estimate (RadioUNet)."),
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default DIR/figures/map_{M}.png)."),
) -> None:
    """Draw a map with its base stations, users and radio maps to a PNG."""
    from radioloc.datasets.plot import show_map

    if kind not in ("true", "estimate"):
        raise RadiolocError(f"--kind must be 'true' or 'estimate', got {kind!r}")
    target = out or directory / "figures" / f"map_{map_id}{'' if kind == 'true' else '_estimate'}.png"
    console.print(f"wrote {show_map(directory, map_id, target, bs_set=bs_set, sim=sim, kind=kind)}")


def _parse_origin(origin: str | None) -> tuple[float, float] | None:
    if origin is None:
        return None
    try:
        x, y = (float(v) for v in origin.split(","))
    except ValueError:
        raise RadiolocError(f"--origin must be 'X,Y' in metres (the tile's north-west corner), got {origin!r}") from None
    return x, y


@city_app.command("generate")
def city_generate(
    out: Path = typer.Option(..., "--out", help="Folder for the building PNGs ({index}.png)."),
    count: int = typer.Option(1, "--count", help="Number of maps."),
    seed: int = typer.Option(0, "--seed", help="Seed of the first map; map k uses seed + k."),
) -> None:
    """Write procedural building maps as 0/255 PNGs (usable with `dataset generate --buildings`)."""
    from radioloc.city import generate_city
    from radioloc.io import atomic_write_png

    for k in range(count):
        city = generate_city(seed + k)
        atomic_write_png(out / f"{k}.png", city.buildings * 255)
        console.print(f"{out / f'{k}.png'}: {city.style}, building coverage {city.coverage:.1%}")


@city_app.command("import")
def city_import(
    source: Path = typer.Argument(..., help="GeoJSON footprints (metric CRS) or a building PNG."),
    out: Path = typer.Option(..., "--out", help="Building PNG to write."),
    origin: Optional[str] = typer.Option(None, "--origin", help="X,Y of the tile's north-west corner in metres (default: centred)."),
) -> None:
    """Rasterize building footprints onto a 256 x 256 m tile and write it as a 0/255 PNG."""
    from radioloc.city import load_building_png, load_geojson_footprints
    from radioloc.io import atomic_write_npz, atomic_write_png

    if source.suffix.lower() == ".png":
        buildings = load_building_png(source)
    else:
        city, heights = load_geojson_footprints(source, origin=_parse_origin(origin))
        buildings = city.buildings
        if np.isfinite(heights).any():
            atomic_write_npz(out.with_suffix(".heights.npz"), heights=heights)
    atomic_write_png(out, buildings * 255)
    console.print(f"wrote {out}: building coverage {buildings.mean():.1%}")


@train_app.command("radiounet")
def train_radiounet_command(
    data: Path = typer.Option(..., "--data", help="Dataset with the simulation to learn (its train/val splits are used)."),
    out: Path = typer.Option(..., "--out", help="Run folder (best.pt, last.pt, summary.json); an unfinished run resumes."),
    preset: str = typer.Option("cpu", "--preset", help="cpu, cpu-small or paper."),
    sim: str = typer.Option("DPM", "--sim", help="Simulation to learn."),
    epochs_first: Optional[int] = typer.Option(None, "--epochs-first", help="Epochs of the first U."),
    epochs_second: Optional[int] = typer.Option(None, "--epochs-second", help="Epochs of the second U."),
    samples_per_epoch: Optional[int] = typer.Option(None, "--samples-per-epoch"),
    batch_size: Optional[int] = typer.Option(None, "--batch-size"),
    lr: Optional[float] = typer.Option(None, "--lr"),
    seed: int = typer.Option(0, "--seed"),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
) -> None:
    """Train RadioUNet in two phases (first U, then the second U with the first frozen)."""
    from radioloc.models.radiounet import preset_config
    from radioloc.training.radiounet import RadioUNetTrainConfig, train_radiounet
    from radioloc.models.runtime import Runtime

    preset_config(preset)  # fail fast on an unknown preset
    overrides = {k: v for k, v in dict(epochs_first=epochs_first, epochs_second=epochs_second, samples_per_epoch=samples_per_epoch, batch_size=batch_size, lr=lr).items() if v is not None}
    config = RadioUNetTrainConfig.for_preset(preset, sim=sim, seed=seed, **overrides)
    runtime = Runtime.pick(device)
    console.print(f"training RadioUNet '{preset}' on {data} ({runtime.describe()})")
    summary = train_radiounet(data, out, config, runtime)
    console.print(f"best validation RMSE {summary['best_val_rmse_db']['2']:.2f} dB after {summary['training_minutes']} min; weights: {summary['checkpoint']}")


@evaluate_app.command("radiounet")
def evaluate_radiounet_command(
    data: Path = typer.Option(..., "--data", help="Dataset with the simulated truth."),
    model: Optional[Path] = typer.Option(None, "--model", help="RadioUNet checkpoint (default: the shipped CPU model)."),
    split: str = typer.Option("test", "--split"),
    sim: str = typer.Option("DPM", "--sim"),
    figures: Path = typer.Option(Path("out/figures"), "--figures", help="Folder for the figures."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the metrics to this JSON file."),
) -> None:
    """RMSE and MAE in dB of a RadioUNet against the simulated truth, with example and histogram figures."""
    from radioloc.evaluation.radiomaps import evaluate_radiounet
    from radioloc.io import atomic_write_json
    from radioloc.models.radiounet import load_radiounet

    result = evaluate_radiounet(load_radiounet(model), data, split, sim, figures=figures)
    table = Table(title=f"RadioUNet '{result['preset']}' vs {sim} truth, {split} split ({result['radio_maps']} radio maps)")
    for column in ("pixels", "RMSE (dB)", "MAE (dB)", "count"):
        table.add_column(column)
    for name in ("outdoor", "above_noise_floor"):
        row = result[name]
        table.add_row(name.replace("_", " "), f"{row['rmse_db']:.2f}", f"{row['mae_db']:.2f}", f"{row['pixels']:,}")
    console.print(table)
    console.print(f"{result['ms_per_map']} ms per map (batched); figures in {figures}")
    if json_out:
        atomic_write_json(json_out, result)


@dataset_app.command("estimate")
def dataset_estimate(
    directory: Path = typer.Argument(..., help="Dataset folder."),
    model: Optional[Path] = typer.Option(None, "--model", help="RadioUNet checkpoint (default: the shipped CPU model)."),
    sim: str = typer.Option("DPM", "--sim", help="Simulation whose estimates are written to {SIM}/estimate."),
    batch_size: int = typer.Option(16, "--batch-size"),
) -> None:
    """Write RadioUNet estimates {SIM}/estimate/{map}_{tx}.png for every map and BS (resumable)."""
    from radioloc.evaluation.radiomaps import draw_difference_histogram
    from radioloc.models.estimate import estimate_dataset

    stats = estimate_dataset(directory, model, sim=sim, batch_size=batch_size)
    table = Table(title=f"RadioUNet estimate - {sim} truth on {directory}")
    for column in ("where", "RMSE (dB)", "MAE (dB)", "count"):
        table.add_column(column)
    for where in ("pixels", "at_ue_positions"):
        for name in ("outdoor", "above_noise_floor"):
            row = stats[where][name]
            table.add_row(f"{where.replace('_', ' ')}, {name.replace('_', ' ')}", f"{row['rmse_db']:.2f}", f"{row['mae_db']:.2f}", f"{row['pixels']:,}")
    console.print(table)
    figure = draw_difference_histogram(stats["difference_sample_db"], stats["pixels"], directory / "figures" / f"estimate_error_{sim}.png", f"RadioUNet estimate - {sim} truth ({directory.name})")
    console.print(f"histogram (paper Fig. 2): {figure}; statistics: {directory / sim / 'estimate_stats.json'}")


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output folder."),
    maps: int = typer.Option(6, "--maps", help="Maps in the small demo dataset."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The main job: generate a small dataset (DPM and DPM with cars), estimate its radio maps with the shipped
    RadioUNet, and draw maps, estimates and the estimation error."""
    from radioloc.datasets.builder import DatasetConfig, generate_dataset, read_map_record
    from radioloc.datasets.plot import show_map
    from radioloc.evaluation.radiomaps import draw_difference_histogram
    from radioloc.models.estimate import estimate_dataset

    timings = {}
    started = time.perf_counter()
    data = out / "dataset"
    manifest = generate_dataset(data, DatasetConfig(maps=maps, seed=seed, simulations=("DPM", "DPMcars")))
    timings["dataset"] = time.perf_counter() - started
    table = Table(title=f"demo dataset: {data}")
    for column in ("map", "split", "style", "building coverage", "car pixels", "seconds"):
        table.add_column(column)
    split_of = {m: name for name, ids in manifest["split"].items() for m in ids}
    for map_id in manifest["maps"]:
        record = read_map_record(data, map_id)
        table.add_row(str(map_id), split_of[map_id], record["style"], f"{record['building_coverage']:.1%}", str(record["cars"]), f"{record['seconds']:.1f}")
    console.print(table)

    step = time.perf_counter()
    stats = estimate_dataset(data)
    timings["RadioUNet estimates"] = time.perf_counter() - step
    pixels = stats["pixels"]
    console.print(
        f"RadioUNet estimate vs DPM truth: RMSE {pixels['outdoor']['rmse_db']:.2f} dB, MAE {pixels['outdoor']['mae_db']:.2f} dB "
        f"over outdoor pixels (paper: 1.66 / 0.87 dB)"
    )
    step = time.perf_counter()
    figures = [draw_difference_histogram(stats["difference_sample_db"], pixels, out / "figures" / "estimate_error_DPM.png", "RadioUNet estimate - DPM truth (demo maps)")]
    for map_id in manifest["maps"]:
        figures.append(show_map(data, map_id, out / "figures" / f"map_{map_id}.png"))
        figures.append(show_map(data, map_id, out / "figures" / f"map_{map_id}_cars.png", sim="DPMcars"))
        figures.append(show_map(data, map_id, out / "figures" / f"map_{map_id}_estimate.png", kind="estimate"))
    timings["figures"] = time.perf_counter() - step
    console.print(f"figures: {out / 'figures'} ({len(figures)} PNGs)")
    console.print("time: " + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in timings.items()) + f"; total {time.perf_counter() - started:.1f} s")


def main() -> None:
    try:
        app()
    except RadiolocError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
