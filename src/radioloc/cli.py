"""The ``radioloc`` command line: wiring only, the work lives in the stage packages."""

from __future__ import annotations

import math
import os
import re
import shlex
import sys
from pathlib import Path
from typing import Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from radioloc.clitools import (
    RadiolocGroup,
    device_option,
    force_option,
    nproc_option,
    output_dir_option,
    output_file_option,
    rate_option,
    scheduler_option,
    signal_received,
    simulation_option,
    stopping_on_signal,
)
from radioloc.errors import RadiolocError
from radioloc.limits import CELL_ID_MAX, MAX_MAPS, RSS_DBM_RANGE, SEED_MAX
from radioloc.localizers.registry import spec_help

app = typer.Typer(cls=RadiolocGroup, add_completion=False, no_args_is_help=True, help="RSS localization with radio maps (LocUNet).")
dataset_app = typer.Typer(cls=RadiolocGroup, no_args_is_help=True, help="Generate, inspect and load RadioLocSeer-layout datasets.")
city_app = typer.Typer(cls=RadiolocGroup, no_args_is_help=True, help="Building maps: procedural generation and import.")
app.add_typer(dataset_app, name="dataset")
train_app = typer.Typer(cls=RadiolocGroup, no_args_is_help=True, help="Train models.")
evaluate_app = typer.Typer(
    cls=RadiolocGroup, help="Evaluate localizers (radioloc evaluate --model ...) and radio-map estimators (radioloc evaluate radiounet)."
)
app.add_typer(city_app, name="city")
app.add_typer(train_app, name="train")
app.add_typer(evaluate_app, name="evaluate")
experiments_app = typer.Typer(cls=RadiolocGroup, no_args_is_help=True, help="The paper's whole evaluation as named, resumable experiments with a report.")
app.add_typer(experiments_app, name="experiments")
deploy_app = typer.Typer(cls=RadiolocGroup, no_args_is_help=True, help="Deployments: an operator's area, its BSs and radio maps, ready to answer reports.")
app.add_typer(deploy_app, name="deploy")
console = Console()


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"radioloc {version('radioloc')}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """RSS localization with radio maps (LocUNet)."""


def _parse_sims(sims: str, option: str = "--sims") -> tuple[str, ...]:
    names = tuple(s.strip() for s in sims.split(",") if s.strip())
    if not names:
        raise RadiolocError(f"{option}: give at least one simulation, e.g. DPM or DPM,DPMcars,IRT2,IRT2cars")
    from radioloc.datasets.layout import SIMULATIONS

    unknown = [name for name in names if name not in SIMULATIONS]
    if unknown:
        raise RadiolocError(f"{option}: unknown simulation {unknown[0]!r} (choose from {', '.join(SIMULATIONS)})")
    if len(set(names)) < len(names):
        raise RadiolocError(f"{option}: a simulation named twice in {sims!r}")
    return names


@dataset_app.command("generate")
def dataset_generate(
    out: Path = output_dir_option(
        ..., "--out", help="Dataset folder (created; an unfinished one is resumed, an existing one gets the missing --sims).", resumes="manifest.json"
    ),
    maps: Optional[int] = typer.Option(None, "--maps", min=1, max=MAX_MAPS, help="Number of procedural city maps (default 99, or the existing dataset's)."),
    seed: Optional[int] = typer.Option(None, "--seed", min=0, max=SEED_MAX, help="Seed of the whole dataset (default 0, or the existing dataset's)."),
    candidates: Optional[int] = typer.Option(
        None, "--candidates", min=5, max=1_000, help="Candidate BS positions per map (default 80, the paper's; 30 for the CPU-scale robustness dataset)."
    ),
    buildings: Optional[Path] = typer.Option(
        None, "--buildings", exists=True, file_okay=False, help="Folder of 256x256 building PNGs to use instead of procedural maps."
    ),
    sims: str = typer.Option("DPM", "--sims", help="Simulations, comma separated: DPM, DPMcars, IRT2, IRT2cars (ray traced, Sionna RT). DPM is always made."),
    rays: Optional[int] = typer.Option(None, "--rays", min=1000, max=10**9, help="Rays per transmitter for IRT2/IRT2cars (default 2,000,000)."),
    workers: Optional[int] = typer.Option(
        None, "--workers", min=1, max=256, help="Local Dask worker processes, one map per task (default: all cores; 1: no cluster)."
    ),
    scheduler: Optional[str] = scheduler_option(),
) -> None:
    """Generate a dataset: city maps, cars, radio maps, ToA, positions (resumable)."""
    from radioloc.datasets.builder import DatasetConfig, existing_config, generate_dataset
    from radioloc.datasets.protocol import ProtocolConfig
    from radioloc.propagation.raytracing import RayTracingConfig

    simulations = _parse_sims(sims)
    if rays is not None and not any(sim.startswith("IRT") for sim in simulations):
        raise RadiolocError(f"--rays: sets the ray tracing of IRT2/IRT2cars, and --sims {','.join(simulations)} traces no ray (add --sims DPM,IRT2cars)")
    base = existing_config(out) or DatasetConfig(buildings_dir=str(buildings) if buildings else None)
    protocol = base.protocol if candidates is None else ProtocolConfig(**{**base.protocol.__dict__, "candidates_per_map": candidates})
    raytracing = base.raytracing if rays is None else RayTracingConfig(**{**base.raytracing.__dict__, "samples_per_tx": rays})
    config = DatasetConfig(
        **{
            **base.__dict__,
            "maps": base.maps if maps is None else maps,
            "seed": base.seed if seed is None else seed,
            "simulations": simulations,
            "buildings_dir": str(buildings) if buildings else base.buildings_dir,
            "protocol": protocol,
            "raytracing": raytracing,
        }
    )
    manifest = generate_dataset(out, config, workers=workers, scheduler=scheduler)
    split = manifest["split"]
    console.print(
        f"[green]dataset ready[/green] in {out}: {len(manifest['maps'])} maps "
        f"({len(split['train'])} train / {len(split['val'])} val / {len(split['test'])} test), "
        f"simulations {', '.join(manifest['simulations'])}, {manifest['generation_seconds']} s"
    )


@dataset_app.command("coverage")
def dataset_coverage_command(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Dataset folder."),
    split: str = typer.Option("all", "--split", help="Maps whose query links are counted: train, val, test or all."),
    json_out: Optional[Path] = output_file_option(None, "--json", help="Write the statistics to this JSON file.", suffixes=(".json",)),
    force: bool = force_option(),
) -> None:
    """Per simulation (and estimate set), over the query links (UE, BS): share above the noise floor, share that
    no path reaches, and the difference to DPM over the links above the floor in both."""
    from radioloc.datasets.coverage import dataset_coverage
    from radioloc.io import atomic_write_json

    result = dataset_coverage(directory, split)
    table = Table(title=f"{directory}: {split} split, {result['maps']} maps, query links", caption="-: not recorded by this simulation")
    for column in ("sim", "links", "above floor", "no path", "RMSE vs DPM dB", "mean - DPM dB"):
        table.add_column(column, no_wrap=column == "sim")
    for name, row in result["sims"].items():
        shown = [f"{100 * row['above_floor']:.1f} %", "-" if row["no_path"] is None else f"{100 * row['no_path']:.1f} %"]
        differences = ["" if row[key] is None else f"{row[key]:.2f}" for key in ("rmse_to_DPM_db", "mean_difference_to_DPM_db")]
        table.add_row(name, f"{row['links']:,}", *shown, *differences)
    console.print(table)
    if json_out:
        atomic_write_json(json_out, result)


@dataset_app.command("show")
def dataset_show(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Dataset folder."),
    map_id: int = typer.Option(..., "--map", min=0, max=10**6, help="Map id."),
    bs_set: int = typer.Option(0, "--set", min=0, max=10_000, help="BS set whose radio maps are drawn."),
    sim: str = simulation_option("--sim", help="Simulation to draw."),
    kind: str = typer.Option("true", "--kind", help="true (simulated) or estimate (RadioUNet)."),
    out: Optional[Path] = output_file_option(None, "--out", help="PNG to write (default DIR/figures/map_{M}.png).", suffixes=(".png",)),
    force: bool = force_option(),
) -> None:
    """Draw a map with its base stations, users and radio maps to a PNG."""
    from radioloc.datasets.plot import show_map

    if kind not in ("true", "estimate"):
        raise RadiolocError(f"--kind must be 'true' or 'estimate', got {kind!r}")
    target = out or directory / "figures" / f"map_{map_id}{'' if kind == 'true' else '_estimate'}.png"
    if out is None and target.exists() and not force:  # the default path, checked as --out would be
        raise RadiolocError(f"{target}: exists; give --force to replace it (or --out elsewhere)")
    console.print(f"wrote {show_map(directory, map_id, target, bs_set=bs_set, sim=sim, kind=kind)}")


@dataset_app.command("verify")
def dataset_verify(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Dataset folder."),
    repair: bool = typer.Option(
        False, "--repair", help="Remove the damaged files and their maps' records, so that `dataset generate` (and `dataset estimate`) remake them."
    ),
) -> None:
    """Check every file of a dataset against the checksums written when it was made."""
    from radioloc.datasets.checksums import CHECKSUMS, damaged_files
    from radioloc.datasets.checksums import repair as repair_files
    from radioloc.io import folder_lock

    if not (directory / CHECKSUMS).exists():
        raise RadiolocError(
            f"{directory}: no {CHECKSUMS} (not a dataset, or made before radioloc recorded checksums; rerun `radioloc dataset generate --out {directory}` to record them)"
        )
    with folder_lock(directory, "dataset", shared=not repair):
        problems = damaged_files(directory)
        if not problems:
            console.print(f"[green]{directory}: every file matches its checksum[/green]")
            return
        for rel, what in list(problems.items())[:20]:
            console.print(f"{rel}: {what}")
        if len(problems) > 20:
            console.print(f"... and {len(problems) - 20} more")
        if not repair:
            raise RadiolocError(f"{directory}: {len(problems)} file(s) damaged; `radioloc dataset verify {directory} --repair` removes them for regeneration")
        maps = repair_files(directory, problems)
    console.print(
        f"removed {len(problems)} damaged file(s); maps to remake: {maps or 'none'}. Now run `radioloc dataset generate --out {directory}` (and `radioloc dataset estimate {directory}` if it had estimates).",
        soft_wrap=True,
    )


def _parse_folders(data: str) -> list[Path]:
    """``--data A,B``: dataset folders, at least one, each once."""
    parts = [part.strip() for part in data.split(",")]
    if not any(parts):
        raise RadiolocError("--data: name at least one dataset folder")
    if not all(parts):
        raise RadiolocError(f"--data: an empty folder name in {data!r}")
    folders = [Path(part) for part in parts]
    for folder in folders:
        if not folder.is_dir():
            raise RadiolocError(f"--data: {folder}: no such dataset folder")
    if len({folder.resolve() for folder in folders}) != len(folders):
        raise RadiolocError(f"--data: a dataset named twice in {data!r} (its queries would count twice)")
    return folders


def _parse_pair(text: str | None, option: str, form: str) -> tuple[float, float] | None:
    """Two comma-separated numbers (``form`` says what they are, for the error), or None when not given."""
    if text is None:
        return None
    try:
        a, b = (float(v) for v in text.split(","))
    except ValueError:
        raise RadiolocError(f"{option} must be {form}, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b)):
        raise RadiolocError(f"{option} must be {form} (finite numbers), got {text!r}")
    return a, b


def _parse_origin(origin: str | None) -> tuple[float, float] | None:
    return _parse_pair(origin, "--origin", "'X,Y' in metres (the tile's north-west corner)")


@city_app.command("generate")
def city_generate(
    out: Path = output_dir_option(..., "--out", help="Folder for the building PNGs ({index}.png)."),
    count: int = typer.Option(1, "--count", min=1, max=10_000, help="Number of maps."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the first map; map k uses seed + k."),
    force: bool = force_option(),
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
    source: Path = typer.Argument(..., exists=True, dir_okay=False, help="GeoJSON footprints (metric CRS) or a building PNG."),
    out: Path = output_file_option(..., "--out", help="Building PNG to write.", suffixes=(".png",)),
    origin: Optional[str] = typer.Option(None, "--origin", help="X,Y of the tile's north-west corner in metres (default: centred)."),
    force: bool = force_option(),
) -> None:
    """Rasterize building footprints onto a 256 x 256 m tile and write it as a 0/255 PNG."""
    from radioloc.city import load_building_png, load_geojson_footprints
    from radioloc.io import atomic_write_npz, atomic_write_png

    heights_file = out.with_suffix(".heights.npz")
    if heights_file.exists() and not force:
        raise RadiolocError(f"--out {out}: its heights {heights_file.name} exist; give --force to replace them")

    if source.suffix.lower() == ".png":
        if origin is not None:
            raise RadiolocError("--origin applies to GeoJSON footprints; a PNG is already a 256 x 256 m tile")
        buildings = load_building_png(source)
    else:
        city, heights = load_geojson_footprints(source, origin=_parse_origin(origin))
        buildings = city.buildings
        if np.isfinite(heights).any():
            atomic_write_npz(out.with_suffix(".heights.npz"), heights=heights)
    atomic_write_png(out, buildings * 255)
    console.print(f"wrote {out}: building coverage {buildings.mean():.1%}")


@city_app.command("tiles")
def city_tiles(
    source: str = typer.Argument(
        ...,
        help="A bundled Sionna RT scene (munich, etoile, florence, san_francisco), a Mitsuba scene XML, an OpenStreetMap .osm.pbf / .osm file, or GeoJSON footprints (.geojson / .json).",
    ),
    out: Path = output_dir_option(
        ...,
        "--out",
        help="Folder for the tiles: {name}_{k}.png, {name}_{k}.heights.npz, tiles.json (indexing every city cut into it), figures/{name}_overview.png.",
    ),
    force: bool = force_option(),
    min_coverage: float = typer.Option(0.1, "--min-coverage", min=0.0, max=1.0, help="Keep tiles with at least this building coverage."),
    max_coverage: float = typer.Option(0.6, "--max-coverage", min=0.0, max=1.0, help="... and at most this one."),
    coordinates: str = typer.Option("lonlat", "--coordinates", help="GeoJSON only: lonlat (RFC 7946, WGS 84) or metres (a projected CRS, x east, y north)."),
) -> None:
    """Cut real city geometry into 256 x 256 m building maps with their heights (usable with `dataset generate --buildings`)."""
    from radioloc.city.grid import MAP_SIZE
    from radioloc.city.real import cut_tiles, geojson_height_map, osm_height_map, scene_height_map, write_tiles
    from radioloc.datasets.plot import draw_city_tiles

    if min_coverage > max_coverage:
        raise RadiolocError(f"--min-coverage {min_coverage} is above --max-coverage {max_coverage}")
    is_osm = source.endswith((".osm.pbf", ".pbf", ".osm"))
    is_geojson = source.endswith((".geojson", ".json"))
    if is_osm:
        city = osm_height_map(source)
    elif is_geojson:
        city = geojson_height_map(source, coordinates)
    else:
        city = scene_height_map(source)
    height, width = city.buildings.shape
    if min(height, width) < MAP_SIZE:
        raise RadiolocError(f"{source}: the area spans {height} x {width} m, less than one {MAP_SIZE} x {MAP_SIZE} m tile")
    tiles = cut_tiles(city, min_coverage=min_coverage, max_coverage=max_coverage)
    if not tiles:
        raise RadiolocError(f"{source}: no 256 x 256 m tile with building coverage in [{min_coverage}, {max_coverage}]")
    name = Path(source).name.split(".")[0] if is_osm or is_geojson or source.endswith(".xml") else source
    write_tiles(out, name, city, tiles)
    overview = draw_city_tiles(city, tiles, out / "figures" / f"{name}_overview.png")
    console.print(f"wrote {len(tiles)} tiles of {city.source} to {out} (overview: {overview})")


@train_app.command("radiounet")
def train_radiounet_command(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="Dataset with the simulation to learn (its train/val splits are used)."),
    out: Path = output_dir_option(..., "--out", help="Run folder (best.pt, last.pt, summary.json); an unfinished run resumes.", resumes="train_config.json"),
    preset: str = typer.Option("cpu", "--preset", help="cpu, cpu-open, cpu-small or paper."),
    sim: str = simulation_option("--sim", help="Simulation to learn."),
    init: Optional[Path] = typer.Option(
        None, "--init", exists=True, dir_okay=False, help="Start from this RadioUNet checkpoint (the same preset, or cpu for cpu-open)."
    ),
    epochs_first: Optional[int] = typer.Option(None, "--epochs-first", min=1, max=100_000, help="Epochs of the first U (default: the preset's)."),
    epochs_second: Optional[int] = typer.Option(
        None, "--epochs-second", min=0, max=100_000, help="Epochs of the second U, 0 to skip it (default: the preset's)."
    ),
    samples_per_epoch: Optional[int] = typer.Option(None, "--samples-per-epoch", min=1, max=10**8, help="Radio maps drawn per epoch (default: the preset's)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, max=65_536, help="Radio maps per step (default: the preset's)."),
    lr: Optional[float] = rate_option("--lr", help="Adam learning rate (default: the preset's)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the initialization and sampling."),
    device: Optional[str] = device_option(),
    nproc: int = nproc_option(),
) -> None:
    """Train RadioUNet in two phases (first U, then the second U with the first frozen)."""
    from radioloc.models.radiounet import preset_config
    from radioloc.models.runtime import Runtime
    from radioloc.training import distributed
    from radioloc.training.radiounet import RadioUNetTrainConfig, train_radiounet

    preset_config(preset)  # fail fast on an unknown preset
    overrides = {
        k: v
        for k, v in dict(epochs_first=epochs_first, epochs_second=epochs_second, samples_per_epoch=samples_per_epoch, batch_size=batch_size, lr=lr).items()
        if v is not None
    }
    config = RadioUNetTrainConfig.for_preset(preset, sim=sim, seed=seed, init=str(init) if init else None, **overrides)
    if _relaunched(nproc, config.batch_size):
        return
    place = distributed.current()
    runtime = Runtime.pick(distributed.device_for(device))
    if place.main:
        console.print(f"training RadioUNet '{preset}' on {data} ({runtime.describe()}{f', {place.world_size} processes' if place.active else ''})")
    summary = train_radiounet(data, out, config, runtime)
    if place.main:
        console.print(
            f"best validation RMSE {summary['best_val_rmse_db']['2']:.2f} dB after {summary['training_minutes']} min; weights: {summary['checkpoint']}"
        )


def _relaunched(nproc: int, batch_size: int) -> bool:
    """``--nproc N`` outside torchrun: run this command again under torchrun with N processes (True when done)."""
    from radioloc.training import distributed

    if nproc <= 1 or "WORLD_SIZE" in os.environ:
        return False
    if batch_size % nproc:
        raise RadiolocError(f"--batch-size {batch_size} must be a multiple of --nproc {nproc} (the global batch is split among the processes)")
    status = distributed.relaunch_under_torchrun(nproc, distributed.strip_option(sys.argv[1:], "--nproc"))
    if status:
        raise typer.Exit(2 if status == 2 else 1)
    return True


@train_app.command("locunet")
def train_locunet_command(
    data: str = typer.Option(..., "--data", help="Dataset with radio maps (its train/val splits are used); comma-separated folders: their splits joined."),
    out: Path = output_dir_option(..., "--out", help="Run folder (best.pt, last.pt, summary.json); an unfinished run resumes.", resumes="train_config.json"),
    preset: str = typer.Option("cpu", "--preset", help="cpu, cpu-deep, cpu-fine or paper."),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the model sees: estimate (nominal: RadioUNet), true, or noisy:SIGMA_DB."),
    measurement: str = simulation_option("--measurement", help="Simulation whose truth the UEs report: DPM (nominal), DPMcars, IRT2, IRT2cars (robustness)."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=1, max=100_000, help="Training epochs (default: the preset's)."),
    samples_per_epoch: Optional[int] = typer.Option(
        None, "--samples-per-epoch", min=0, max=10**8, help="Random queries per epoch, 0 = the whole split (default: the preset's)."
    ),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", min=1, max=65_536, help="Queries per step (default: the preset's)."),
    lr: Optional[float] = rate_option("--lr", help="Adam learning rate (default: the preset's)."),
    activation: Optional[str] = typer.Option(
        None, "--activation", help="Before the centre of mass: leaky_relu, relu, softmax, sigmoid (default: the preset's)."
    ),
    loss: Optional[str] = typer.Option(None, "--loss", help="mae or mse (default: the preset's)."),
    city_map: bool = typer.Option(True, "--city-map/--no-city-map", help="Give the model the building map."),
    tx_maps: bool = typer.Option(True, "--tx-maps/--no-tx-maps", help="Give the model the BS positions."),
    init: Optional[str] = typer.Option(
        None,
        "--init",
        help="Start from this LocUNet checkpoint or shipped model (fine-tuning; same preset, or one it grows into; a com model starts a posterior head).",
    ),
    head: str = typer.Option(
        "com",
        "--head",
        help="com: the paper's centre of mass of the quasi-heatmap; posterior: the quasi-heatmap is a learned prior on the calibrated likelihood (needs --likelihood).",
    ),
    likelihood: Optional[str] = typer.Option(
        None, "--likelihood", help="Posterior head: the likelihood calibration (bayes, bayes-robust, or a file from `radioloc train bayes`)."
    ),
    likelihood_weights: bool = typer.Option(
        False,
        "--likelihood-weights",
        help="Posterior head: also learn a weight per BS and cell on that BS's log-likelihood (where its radio map is more or less reliable).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the initialization and sampling."),
    device: Optional[str] = device_option(),
    nproc: int = nproc_option(),
) -> None:
    """Train LocUNet on a dataset (nominal scenario by default: DPM truth reported, RadioUNet estimates seen), then
    fit it as a localizer (refinement and uncertainty radii on the validation split)."""
    from radioloc.datasets.localization import parse_estimate
    from radioloc.io import atomic_write_json
    from radioloc.localizers.locunet import fit_checkpoint
    from radioloc.models.runtime import Runtime
    from radioloc.training import distributed
    from radioloc.training.locunet import LocUNetTrainConfig, load_training_splits, train_locunet

    parse_estimate(estimate)
    folders = _parse_folders(data)
    config = LocUNetTrainConfig.for_preset(
        preset, estimate=estimate, measurement=measurement, seed=seed, epochs=epochs, samples_per_epoch=samples_per_epoch, batch_size=batch_size, lr=lr,
        activation=activation, loss=loss, city_map=city_map, tx_maps=tx_maps, init=init, head=head, likelihood=likelihood,
        likelihood_weights=likelihood_weights,
    )  # fmt: skip
    config.model_config()  # fail fast on an unknown preset or option
    if _relaunched(nproc, config.batch_size):
        return
    place = distributed.current()
    runtime = Runtime.pick(distributed.device_for(device))
    if place.main:
        console.print(f"training LocUNet '{preset}' on {data} ({estimate} radio maps, {measurement} measurements; {runtime.describe()}"
                      f"{f', {place.world_size} processes' if place.active else ''})")  # fmt: skip
    train, val = load_training_splits(folders, config, quiet=not place.main)
    summary = train_locunet((train, val), out, config, runtime)
    if not place.main:  # process 0 fits the trained weights as a localizer
        return
    console.print(f"best validation MAE {summary['best_val_mae_m']:.2f} m after {summary['training_minutes']} min; weights: {summary['checkpoint']}")
    fitted = fit_checkpoint(summary["checkpoint"], train, val, runtime=runtime)
    atomic_write_json(out / "localizer.json", fitted)
    refine = fitted["refinement"]
    console.print(
        f"refinement {refine['radius_m']:g} m, k = {refine['k']} and uncertainty radii calibrated on the validation split; saved in {fitted['checkpoint']}"
    )


@train_app.command("bayes")
def train_bayes_command(
    data: str = typer.Option(
        ...,
        "--data",
        help="Dataset with radio maps (its train split is counted, its val split tunes and calibrates); comma-separated folders: their splits joined.",
    ),
    out: Path = output_dir_option(..., "--out", help="Folder for calibration.safetensors, train_config.json and summary.json."),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the localizer sees: estimate (nominal: RadioUNet), true, or noisy:SIGMA_DB."),
    measurement: str = simulation_option("--measurement", help="Simulation whose truth the UEs report: DPM (nominal), DPMcars, IRT2, IRT2cars (robustness)."),
    prior: str = typer.Option(
        "ue-box", "--prior", help="Prior support: ue-box (outdoor pixels of the middle 164 x 164 m, where the protocol puts UEs), outdoor, map."
    ),
    error_model: Optional[Path] = typer.Option(
        None,
        "--error-model",
        help="A learned error model (`radioloc train error-model`; error-model, error-model-robust = the shipped ones): count the likelihood per bin of its reliability (bayes-learned).",
    ),
    bins: Optional[str] = typer.Option(
        None,
        "--bins",
        help="With --error-model: numbers of reliability bins to try (comma separated, each 2..64; edges at quantiles over the training queries), chosen on validation queries (default 4,6,8,12).",
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the validation queries used for tuning."),
    force: bool = force_option(),
) -> None:
    """Calibrate the Bayesian grid localizer: p(reported pathloss | radio-map value) on the training split, the
    likelihood tempering and the uncertainty radii on the validation split."""
    from radioloc.datasets.localization import parse_estimate
    from radioloc.localizers.bayes import BayesTrainConfig, LikelihoodConfig, train_bayes
    from radioloc.models.error_model import error_model_weights

    parse_estimate(estimate)
    folders = _parse_folders(data)
    error_file = None if error_model is None else str(error_model_weights(str(error_model)))
    if bins is not None and error_model is None:
        raise RadiolocError("--bins applies with --error-model only (reliability bins of the learned error model)")
    bins = bins or "4,6,8,12"
    try:
        choices = tuple(int(b) for b in bins.split(","))
    except ValueError:
        choices = ()
    if not choices or not all(2 <= b <= 64 for b in choices):
        raise RadiolocError(f"--bins must be comma-separated numbers of bins, each 2..64, got {bins!r}")
    config = BayesTrainConfig(
        estimate=estimate, measurement=measurement, likelihood=LikelihoodConfig(prior=prior), seed=seed, error_model=error_file, reliability_bins=choices
    )
    summary = train_bayes(folders, out, config)
    console.print(
        f"calibration {summary['calibration']}: {summary['pairs']:,} (map, report) pairs, {summary['reliability_bins']} reliability bin(s), "
        f"tempering {summary['temperature']:g}, {summary['seconds']} s"
    )


@train_app.command("error-model")
def train_error_model_command(
    data: Path = typer.Option(
        ..., "--data", exists=True, file_okay=False, help="Dataset with radio maps and the estimates the localizer sees (train and val splits)."
    ),
    out: Path = output_dir_option(..., "--out", help="Run folder (best.pt, last.pt, summary.json); an unfinished run resumes.", resumes="train_config.json"),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the localizer sees: estimate (nominal: RadioUNet), or noisy:SIGMA_DB."),
    measurement: str = simulation_option("--measurement", help="Simulation whose truth the UEs report: DPM (nominal), DPMcars, IRT2, IRT2cars (robustness)."),
    steps: int = typer.Option(3000, "--steps", min=1, max=10**8, help="Training steps (batches of --batch-size radio maps)."),
    batch_size: int = typer.Option(8, "--batch-size", min=1, max=65_536, help="Radio maps per step (all of one city map)."),
    lr: Optional[float] = rate_option("--lr", help="Peak AdamW learning rate of the one-cycle schedule (default 2e-3)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the initialization and sampling."),
    init: Optional[Path] = typer.Option(
        None, "--init", help="Start from this error model's weights (fine-tuning; error-model, error-model-robust = the shipped ones)."
    ),
) -> None:
    """Train the radio-map error model: per pixel, the scale of (truth - the radio map seen); bayes-learned
    counts its likelihood per bin of it."""
    from radioloc.datasets.localization import parse_estimate
    from radioloc.models.error_model import error_model_weights
    from radioloc.training.error_model import ErrorModelTrainConfig, train_error_model

    if parse_estimate(estimate)[0] == "true":
        raise RadiolocError("--estimate true: the true maps have no error to model")
    config = ErrorModelTrainConfig(estimate=estimate, measurement=measurement, steps=steps, batch_size=batch_size, lr=lr or 2e-3, seed=seed,
                                   init=None if init is None else str(error_model_weights(init)))  # fmt: skip
    summary = train_error_model(data, out, config)
    console.print(f"best validation NLL {summary['best_val_nll']:.3f} after {summary['training_minutes']} min; weights: {summary['checkpoint']}")


@train_app.command("calibrate")
def calibrate_command(
    model: str = typer.Option(..., "--model", help="LocUNet checkpoint or shipped model (locunet, locunet-robust)."),
    data: str = typer.Option(..., "--data", help="Dataset(s) whose val split chooses the refinement and calibrates the radii (comma-separated: joined)."),
    out: Path = output_file_option(
        ..., "--out", help="Checkpoint to write: the weights with the refinement and radius calibration.", suffixes=(".pt",), updates_input=True
    ),
    force: bool = force_option(),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the model sees: estimate, true, or noisy:SIGMA_DB."),
    measurement: str = simulation_option("--measurement", help="Simulation whose truth the UEs report."),
    split: str = typer.Option(
        "val", "--split", help="Split(s) of maps the model was not trained on (comma separated, e.g. train,val of a dataset of another seed)."
    ),
    spread: Optional[str] = typer.Option(
        None,
        "--spread",
        help="A bayes calibration (bayes, bayes-learned, bayes-robust or a .safetensors file): also calibrate the radii on its posterior's mass around each answer (used by default when present; :heatmap-radii keeps the quasi-heatmap's).",
    ),
    fuse: Optional[str] = typer.Option(
        None,
        "--fuse",
        help="A bayes calibration (e.g. bayes-learned): also fit the quasi-heatmap as the learned prior of its posterior (weight and floor, radii); the registry then answers with that posterior (:paper keeps the centre of mass).",
    ),
) -> None:
    """Fit a trained LocUNet as a localizer (refinement, uncertainty radii, learned-prior fusion) without training it again."""
    from radioloc.datasets.localization import concat_localization, load_localization, parse_estimate
    from radioloc.io import atomic_write_json
    from radioloc.localizers.heatmap_prior import fuse_checkpoint
    from radioloc.localizers.locunet import fit_checkpoint
    from radioloc.localizers.radii import check_unseen_maps
    from radioloc.localizers.registry import resolve_localizer
    from radioloc.models.likelihood import SHIPPED_CALIBRATIONS, calibration_path
    from radioloc.models.locunet import locunet_weights

    parse_estimate(estimate)
    for option, value in (("--spread", spread), ("--fuse", fuse)):
        if value is not None and not calibration_path(value).is_file():
            raise RadiolocError(f"{option} {value}: not a shipped bayes calibration ({', '.join(SHIPPED_CALIBRATIONS)}) or a calibration file")
    folders = _parse_folders(data)
    held_out = concat_localization([load_localization(root, split, estimate, measurement_sim=measurement, quiet=False) for root in folders])
    if not check_unseen_maps(resolve_localizer(str(locunet_weights(model))).localizer, held_out, model):
        console.print(f"note: {model} records no datasets it was trained on, so radioloc cannot check that --split {split} holds maps it never saw")
    fitted = fit_checkpoint(locunet_weights(model), held_out, held_out, out, spread=spread)
    if fuse is not None:
        fitted["fusion"] = fuse_checkpoint(out, fuse, held_out, held_out, out)
    atomic_write_json(out.with_suffix(".json"), fitted)
    refine = fitted["refinement"]
    console.print(f"wrote {fitted['checkpoint']}: refinement {refine['radius_m']:g} m, k = {refine['k']}, radii calibrated")
    if fuse is not None:
        console.print(f"learned prior on {fuse}: beta {fitted['fusion']['beta']:g}, floor {fitted['fusion']['floor']:g}")


@train_app.command("radii")
def train_radii_command(
    model: str = typer.Option(
        ...,
        "--model",
        help="A fitted localizer: a shipped name (locunet, locunet:paper, bayes, bayes-learned, their -robust ones), a LocUNet checkpoint or a bayes calibration.",
    ),
    data: str = typer.Option(..., "--data", help="Datasets whose maps calibrate the radii (comma separated: joined), of seeds no benchmark evaluates on."),
    out: Path = output_file_option(
        ...,
        "--out",
        help="File to write: the localizer's checkpoint or calibration with the new radii (a bayes-learned calibration must lie beside its error model).",
        suffixes=(".pt", ".safetensors"),
        updates_input=True,
    ),
    force: bool = force_option(),
    split: str = typer.Option("train,val,test", "--split", help="Split(s) of maps used (comma separated); the model must not have been trained on them."),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the localizer sees: estimate, true, or noisy:SIGMA_DB (its own scenario's)."),
    measurement: str = simulation_option("--measurement", help="Simulation whose truth the UEs report."),
    queries: int = typer.Option(4000, "--queries", min=200, max=100_000, help="Calibration queries per number of BSs (1..5), spread over every map."),
) -> None:
    """Refit a fitted localizer's uncertainty radii across the maps of many datasets (nothing else changes; the
    calibration records the datasets it saw)."""
    from radioloc.datasets.localization import parse_estimate
    from radioloc.localizers.radii import refit_radii

    parse_estimate(estimate)
    summary = refit_radii(model, _parse_folders(data), out, split, estimate, measurement, queries)
    if not summary["unseen_checked"]:
        console.print(f"note: {model} records no datasets it was fitted on, so radioloc cannot check that --split {split} holds maps it never saw")
    console.print(f"wrote {summary['out']}: radii of {model} on {summary['queries']:,} queries of {summary['maps']} maps, {summary['seconds']} s")


@evaluate_app.callback(invoke_without_command=True)
def evaluate_command(
    ctx: typer.Context,
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help=f"Comma-separated: {spec_help()}; the toa-* ones need --toa-sigma.",
    ),
    data: Optional[Path] = typer.Option(None, "--data", exists=True, file_okay=False, help="Dataset folder."),
    split: str = typer.Option("test", "--split", help="Split(s) whose queries are answered: train, val, test, comma separated."),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the localizers see: estimate, true, or noisy:SIGMA_DB."),
    measurement: str = typer.Option(
        "DPM",
        "--measurement",
        help="Simulation whose truth the UEs report: DPM (nominal), DPMcars, IRT2, IRT2cars (robustness); several, comma separated, give the Table V matrix.",
    ),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, max=10**9, help="Evaluate a random subset of this many queries (default: all)."),
    figures: Optional[Path] = output_dir_option(None, "--figures", help="Folder for the error CDF and example figures."),
    json_out: Optional[Path] = output_file_option(None, "--json", help="Write mae, rmse, n and the details to this JSON file.", suffixes=(".json",)),
    force: bool = force_option(),
    toa_sigma: Optional[float] = typer.Option(
        None,
        "--toa-sigma",
        min=0.0,
        max=10_000.0,
        help="The UEs also report a ToA range per BS: dominant-path length + N(0, SIGMA^2) m (for toa-* models and bayes:toa=SIGMA).",
    ),
) -> None:
    """Localization errors (MAE, RMSE, median, p90 in metres) with 5 BSs and with 3-BS subsets, by number of BSs
    above the noise floor; error CDF and Fig. 3-style figures."""
    if ctx.invoked_subcommand is not None:
        return
    if model is None and data is None:
        console.print(ctx.get_help())
        raise typer.Exit(0)
    if model is None or data is None:
        raise RadiolocError("radioloc evaluate needs both --model and --data")
    from radioloc.evaluation.experiment import evaluate_across_measurements, evaluate_models

    specs = [m.strip() for m in model.split(",") if m.strip()]
    measurements = _parse_sims(measurement, "--measurement")
    if len(measurements) == 1:
        evaluate_models(specs, data, split, estimate, limit, figures, json_out, console=console, measurement=measurements[0], toa_sigma=toa_sigma)
    else:
        evaluate_across_measurements(specs, data, list(measurements), split, estimate, limit, figures, json_out, console=console, toa_sigma=toa_sigma)
    if json_out:
        console.print(f"report: {json_out}")


_NUMBER = {int: re.compile(r"[+-]?[0-9]+"), float: re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?|[+-]?(nan|inf|infinity)", re.IGNORECASE)}


def _parse_list(text: str, kind, option: str, bounds: tuple[float, float] | None = None) -> list:
    items = [item.strip() for item in text.split(",")]
    if not all(_NUMBER[kind].fullmatch(item) for item in items if item) or (any(items) and not all(items)):
        # plain ASCII numbers only: Python would also take "2_0", other scripts' digits, and skip empty items
        raise RadiolocError(f"{option}: expected comma-separated {'integers' if kind is int else 'numbers'}, got {text!r}")
    values = [kind(item) for item in items if item]
    if kind is float and not all(math.isfinite(v) for v in values):  # nan / inf parse as floats; never a reading
        raise RadiolocError(f"{option}: every value must be a finite number, got {text!r}")
    if not values:
        raise RadiolocError(f"{option}: give at least one value")
    if bounds is not None and not all(bounds[0] <= v <= bounds[1] for v in values):
        raise RadiolocError(
            f"{option}: every value must lie in {bounds[0]:g}..{bounds[1]:g}, got {text!r}"
            if kind is float
            else f"{option}: every value must lie in {bounds[0]}..{bounds[1]}, got {text!r}"
        )
    return values


def _home_option():
    return typer.Option(None, "--home", file_okay=False, help="Folder of deployments (default: $RADIOLOC_HOME, else ~/.local/share/radioloc).")


@app.command("locate")
def locate_command(
    data: Optional[Path] = typer.Option(None, "--data", exists=True, file_okay=False, help="Dataset folder holding the city map and the BS radio maps."),
    map_id: Optional[int] = typer.Option(None, "--map", min=0, max=10**6, help="Map id (with --data)."),
    bs: Optional[str] = typer.Option(None, "--bs", help="Comma-separated candidate BS ids (1 to 5), with --data."),
    pathloss: Optional[str] = typer.Option(None, "--pathloss", help="Comma-separated reported pathloss in dB, one per BS (e.g. -92.5,-101)."),
    model: Optional[str] = typer.Option(
        None,
        "--model",
        help=f"A localizer: {spec_help(shipped_only=True)}; with --deployment one of its localizers.",
    ),
    estimator: Optional[str] = typer.Option(None, "--estimator", help="bayes only: mean (posterior mean, default) or median (spatial median)."),
    estimate: str = typer.Option("estimate", "--estimate", help="Radio maps the model sees: estimate, true, noisy:SIGMA_DB (with --data)."),
    deployment: Optional[str] = typer.Option(None, "--deployment", help="Answer on a deployment (radioloc deploy create) instead of a dataset map."),
    cells: Optional[str] = typer.Option(None, "--cells", help="Comma-separated operator cell ids, with --deployment (the 5 strongest known are used)."),
    rss: Optional[str] = typer.Option(None, "--rss", help="Comma-separated signal strengths in dBm, one per cell (or give --pathloss)."),
    home: Optional[Path] = _home_option(),
) -> None:
    """Locate one UE from the pathloss it reports for 1 to 5 BSs, with its 68 % and 95 % uncertainty radii."""
    if model is not None and not model.strip():
        raise RadiolocError("--model: empty; name a localizer (or leave the option out)")
    given = {"--data": data is not None, "--map": map_id is not None, "--bs": bs is not None, "--estimate": estimate != "estimate", "--estimator": estimator is not None,
             "--cells": cells is not None, "--rss": rss is not None, "--home": home is not None}  # fmt: skip
    other_mode = ("--data", "--map", "--bs", "--estimate", "--estimator") if deployment is not None else ("--cells", "--rss", "--home")
    stray = [option for option in other_mode if given[option]]
    if stray:
        raise RadiolocError(f"{stray[0]} applies {'with --data, not with --deployment' if deployment is not None else 'with --deployment only'}")
    if deployment is not None:
        _locate_on_deployment(deployment, cells, rss, pathloss, model, home)
        return
    from radioloc.datasets.localization import LocalizationData, Queries, load_localization
    from radioloc.localizers.registry import resolve_localizer

    for value, option in ((data, "--data"), (map_id, "--map"), (bs, "--bs"), (pathloss, "--pathloss")):
        if value is None:
            raise RadiolocError(f"{option} is required (or answer on a deployment: --deployment ID --cells ... --rss ...)")
    model = model or "locunet"
    ids = _parse_list(bs, int, "--bs")
    values = _parse_list(pathloss, float, "--pathloss")
    if len(ids) != len(values):
        raise RadiolocError(f"--bs lists {len(ids)} BSs but --pathloss {len(values)} values")
    if estimator is not None:
        if estimator not in ("mean", "median"):
            raise RadiolocError(f"--estimator must be mean or median, got {estimator!r}")
        if not (model.startswith("bayes") or model.endswith(".safetensors")):
            raise RadiolocError(f"--estimator applies to the bayes localizer only, not to --model {model!r}")
        if estimator == "median":
            model += ":median"
    resolved = resolve_localizer(model)
    if resolved.needs_fit:
        raise RadiolocError(f"--model {model!r} must be fitted on a training split first; locate takes a shipped or saved model")
    scene_data = load_localization(data, "custom", estimate, maps=[map_id])
    queries = Queries.from_reports([0], [ids], [values], scene_data.scenes, field_name="--bs/--pathloss")
    source = {**scene_data.source, "measurement_sim": None}  # user reports: the truth behind them is not known
    answer = resolved.localizer.locate(LocalizationData(scene_data.scenes, queries, source))
    _note_below_floor(values)
    row, col = answer.positions[0]
    console.print(
        f"map {map_id}: estimated position row {row:.1f} m, col {col:.1f} m; 68 % within {answer.radius_68[0]:.1f} m, "
        f"95 % within {answer.radius_95[0]:.1f} m ({resolved.label}, {resolved.localizer.ms_per_query:.1f} ms)",
        soft_wrap=True,  # one line, for scripts reading it
    )


def _note_below_floor(pathloss_db: list[float]) -> None:
    from radioloc.datasets.localization import below_floor_note

    note = below_floor_note(pathloss_db)
    if note:  # on stderr: the answer stays the one line on stdout that scripts read
        Console(stderr=True).print(note, soft_wrap=True, highlight=False)


def _locate_on_deployment(deployment_id: str, cells: str | None, rss: str | None, pathloss: str | None, model: str | None, home: Path | None) -> None:
    from radioloc.datasets.localization import MAX_REPORTED_DB, MIN_REPORTED_DB
    from radioloc.deploy.deployment import DeploymentStore, resolve_home
    from radioloc.deploy.serving import DeploymentLocator

    if cells is None:
        raise RadiolocError("--cells is required with --deployment")
    if (rss is None) == (pathloss is None):
        raise RadiolocError("give either --rss (dBm) or --pathloss (dB) with --deployment, one value per cell")
    ids = _parse_list(cells, int, "--cells", (0, CELL_ID_MAX))
    values = _parse_list(rss, float, "--rss", RSS_DBM_RANGE) if rss is not None else _parse_list(pathloss, float, "--pathloss")
    if len(ids) != len(values):
        raise RadiolocError(f"--cells lists {len(ids)} cells but {'--rss' if rss is not None else '--pathloss'} {len(values)} values")
    repeated = sorted({cell for cell in ids if ids.count(cell) > 1})
    if repeated:
        raise RadiolocError(f"--cells: cell {repeated[0]} listed twice (a phone reports each cell once)")
    target = DeploymentStore(resolve_home(home)).load(deployment_id)
    locator = DeploymentLocator(target, model)
    pathloss_db = np.array(values, dtype=np.float64)
    index = target.bs_index(np.array(ids))
    if rss is not None:
        power = np.where(index >= 0, target.tx_power_dbm[np.maximum(index, 0)], 0.0)
        pathloss_db = pathloss_db - power
        for cell, dbm, watts, known, loss in zip(ids, values, power, index >= 0, pathloss_db):
            if known and not MIN_REPORTED_DB <= loss <= MAX_REPORTED_DB:
                raise RadiolocError(f"--rss {dbm:g} dBm of cell {cell}: pathloss {loss:g} dB ({dbm:g} dBm minus the BS's {watts:g} dBm) is outside "
                                    f"{MIN_REPORTED_DB:g}..{MAX_REPORTED_DB:.1f} dB, what a phone can report")  # fmt: skip
    answer = locator.locate(np.array([ids]), pathloss_db[None])
    _note_below_floor([float(v) for v, i in zip(pathloss_db, index) if i >= 0])  # unknown cells are ignored
    row, col = answer.positions[0]
    console.print(
        f"deployment {deployment_id}: lat {answer.lat[0]:.6f}, lng {answer.lng[0]:.6f} (row {row:.1f} m, col {col:.1f} m); "
        f"68 % within {answer.radius_68[0]:.1f} m, 95 % within {answer.radius_95[0]:.1f} m ({locator.name}, {answer.ms_per_query:.1f} ms)",
        soft_wrap=True,
    )


@evaluate_app.command("radiounet")
def evaluate_radiounet_command(
    data: Path = typer.Option(..., "--data", exists=True, file_okay=False, help="Dataset with the simulated truth."),
    model: Optional[Path] = typer.Option(None, "--model", exists=True, dir_okay=False, help="RadioUNet checkpoint (default: the shipped CPU model)."),
    split: str = typer.Option("test", "--split", help="Split(s) of maps to compare: train, val, test, all, comma separated."),
    sim: str = simulation_option("--sim", help="Simulation whose truth the estimates are compared with."),
    figures: Path = output_dir_option(Path("out/figures"), "--figures", help="Folder for the figures."),
    json_out: Optional[Path] = output_file_option(None, "--json", help="Write the metrics to this JSON file.", suffixes=(".json",)),
    force: bool = force_option(),
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
    large = result["large_errors"]["over_10_db"]
    console.print(
        f"{100 * large['pixel_share']:.1f} % of the outdoor pixels are off by more than 10 dB and carry {100 * large['squared_error_share']:.0f} % of the squared error"
    )
    console.print(f"{result['ms_per_map']} ms per map (batched); figures in {figures}")
    if json_out:
        atomic_write_json(json_out, result)


@dataset_app.command("estimate")
def dataset_estimate(
    directory: Path = typer.Argument(..., exists=True, file_okay=False, help="Dataset folder."),
    model: Optional[Path] = typer.Option(None, "--model", exists=True, dir_okay=False, help="RadioUNet checkpoint (default: the shipped CPU model)."),
    sim: str = simulation_option("--sim", help="Simulation whose estimates are written to {SIM}/estimate."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, max=65_536, help="Radio maps estimated per batch."),
    workers: int = typer.Option(
        1, "--workers", min=1, max=256, help="Local Dask worker processes, one map per task (1: no cluster; torch then uses every core)."
    ),
    scheduler: Optional[str] = scheduler_option(),
) -> None:
    """Write RadioUNet estimates {SIM}/estimate/{map}_{tx}.png for every map and BS (resumable)."""
    from radioloc.evaluation.radiomaps import draw_difference_histogram
    from radioloc.models.estimate import estimate_dataset

    stats = estimate_dataset(directory, model, sim=sim, batch_size=batch_size, workers=workers, scheduler=scheduler)
    table = Table(title=f"RadioUNet estimate - {sim} truth on {directory}")
    for column in ("where", "RMSE (dB)", "MAE (dB)", "count"):
        table.add_column(column)
    for where in ("pixels", "at_ue_positions"):
        for name in ("outdoor", "above_noise_floor"):
            row = stats[where][name]
            table.add_row(f"{where.replace('_', ' ')}, {name.replace('_', ' ')}", f"{row['rmse_db']:.2f}", f"{row['mae_db']:.2f}", f"{row['pixels']:,}")
    console.print(table)
    figure = draw_difference_histogram(
        stats["difference_sample_db"],
        stats["pixels"],
        directory / "figures" / f"estimate_error_{sim}.png",
        f"RadioUNet estimate - {sim} truth ({directory.name})",
    )
    console.print(f"histogram (paper Fig. 2): {figure}; statistics: {directory / sim / 'estimate_stats.json'}")


@app.command("demo")
def demo(
    out: Path = output_dir_option(Path("out/demo"), "--out", help="Output folder.", resumes="demo_config.json"),
    maps: int = typer.Option(12, "--maps", min=3, max=MAX_MAPS, help="Maps in the demo's localization dataset (at least 3: one per split)."),
    seed: int = typer.Option(8128, "--seed", min=0, max=SEED_MAX, help="Seed of the demo's dataset (default 8128: maps no shipped model was fitted on)."),
    train: bool = typer.Option(False, "--train", help="Run the whole pipeline from scratch at small scale (about 30 min): train RadioUNet and LocUNet too."),
) -> None:
    """The main job: a fresh small dataset, RadioUNet estimates, LocUNet against kNN, figures and timings."""
    from radioloc.evaluation.demo import DemoConfig, run_demo

    run_demo(out, DemoConfig(maps=maps, seed=seed, train=train), console)


@experiments_app.command("list")
def experiments_list() -> None:
    """Every experiment, in the order `run` takes them, and the scales."""
    from radioloc.evaluation.experiments import EXPERIMENTS, SCALES

    table = Table(title="experiments")
    for column in ("name", "reproduces", "needs"):
        table.add_column(column, no_wrap=column == "name")
    for name, exp in EXPERIMENTS.items():
        table.add_row(name, exp.title, ", ".join(exp.needs))
    console.print(table)
    for name, scale in SCALES.items():
        console.print(f"--scale {name}: {scale.description}")


@experiments_app.command("run")
def experiments_run(
    names: Optional[list[str]] = typer.Argument(None, help="Experiments to run (default: all; what they need runs first)."),
    scale: str = typer.Option("smoke", "--scale", help="smoke (minutes), cpu (hours on 2 cores) or paper (GPU sizes)."),
    out: Path = output_dir_option(..., "--out", help="Output folder: data, cache, results, figures and report.md (a rerun resumes).", resumes="scale.json"),
    workers: Optional[int] = typer.Option(None, "--workers", min=1, max=256, help="Dataset generation processes (default: all cores)."),
) -> None:
    """Run (or resume) experiments at a scale and write OUT/report.md beside the paper's numbers."""
    from radioloc.evaluation.experiments import get_scale, run_experiments

    get_scale(scale)
    command = " ".join(shlex.quote(a) for a in ["radioloc", "experiments", "run", *(names or []), "--scale", scale, "--out", str(out)])
    run_experiments(list(names or []), scale, out, console, workers, command=command)


@deploy_app.command("create")
def deploy_create(
    deployment_id: str = typer.Argument(..., help="Id: lower-case letters, digits and '-'."),
    city: str = typer.Option("generated:0", "--city", help="generated:SEED, scene:NAME (Sionna RT), or a building PNG, GeoJSON or OSM (.osm, .osm.pbf) file."),
    size: int = typer.Option(1024, "--size", min=256, max=8192, help="Side in metres of a generated city."),
    origin: Optional[str] = typer.Option(None, "--origin", help="LAT,LNG of the area's centre (imported cities bring their own; default Munich)."),
    bs: str = typer.Option(
        "auto:150", "--bs", help="auto:SPACING (one BS per SPACING m cell) or a CSV/JSON list (cell_id, lat/lng or row/col, height_m, tx_power_dbm)."
    ),
    sim: str = typer.Option(
        "DPM", "--sim", help="Radio maps the localizers see: DPM, or RadioUNet / IRT2 (ray tracer) on the 256 m tile around each BS with DPM beyond."
    ),
    truth: str = typer.Option(
        "DPMcars",
        "--truth",
        help="Simulator of the reports simulated phones give (survey, /reports): DPM, DPMcars, IRT2 or IRT2cars (ray-traced near each BS).",
    ),
    localizers: str = typer.Option("bayes,locunet", "--localizers", help="Serving localizers, the first answers by default: bayes, locunet."),
    survey: int = typer.Option(6000, "--survey", min=600, max=10**7, help="Simulated phones that fit the calibrations (2/3 likelihood, 1/3 radii)."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX, help="Seed of the BS placement, cars and survey."),
    name: str = typer.Option("", "--name", help="Display name (default: the id)."),
    workers: int = typer.Option(1, "--workers", min=1, max=256, help="Local Dask worker processes simulating radio maps, one BS per task (1: no cluster)."),
    scheduler: Optional[str] = scheduler_option(),
    replace: bool = typer.Option(False, "--replace", help="Rebuild an existing deployment (it keeps serving until the new one is whole)."),
    home: Optional[Path] = _home_option(),
) -> None:
    """Build (or resume building) a deployment: city, BSs, radio maps, survey calibrations; published whole."""
    from radioloc.deploy.build import DeploymentSpec, build_deployment
    from radioloc.deploy.deployment import ANTENNA_HEIGHT_M, DeploymentStore, resolve_home

    spec = DeploymentSpec(id=deployment_id, name=name, city=city, size_m=size, origin=_parse_pair(origin, "--origin", "'LAT,LNG' in degrees"), base_stations=bs,
                          maps=sim, truth=truth, localizers=tuple(v.strip() for v in localizers.split(",") if v.strip()), survey=survey, seed=seed)  # fmt: skip
    store = DeploymentStore(resolve_home(home))
    built = build_deployment(store, spec, workers=workers, replace=replace, scheduler=scheduler)
    _print_deployment(built)
    heights = sorted({bs.height_m for bs in built.config.base_stations} - {ANTENNA_HEIGHT_M})
    if heights:  # recorded for the operator, not simulated: say so rather than let a rooftop cell look modelled
        console.print(f"note: BS heights {', '.join(f'{h:g}' for h in heights[:5])} m are recorded, but the radio maps do not depend on them "
                      f"(the dominant-path model is 2-D, with every antenna {ANTENNA_HEIGHT_M:g} m above ground)", soft_wrap=True)  # fmt: skip


def _print_deployment(deployment) -> None:
    config = deployment.config
    rows, cols = config.shape
    lat, lng = deployment.georef.to_latlng((rows - 1) / 2, (cols - 1) / 2)
    table = Table(title=f"deployment {config.id} ({config.name})")
    table.add_column("field")
    table.add_column("value")
    table.add_row("area", f"{rows} x {cols} m, centre {float(lat):.6f}, {float(lng):.6f}")
    table.add_row("city", f"{config.city.get('source')}, {100 * config.city.get('coverage', float('nan')):.1f} % buildings")
    table.add_row("base stations", f"{len(config.base_stations)} (cells {config.base_stations[0].cell_id}..{config.base_stations[-1].cell_id})")
    table.add_row("maps / truth", f"{config.maps} / {config.truth}")
    for name in config.localizers:
        mae = config.survey.get("localizers", {}).get(name, {}).get("held_out_mae_m", {})
        table.add_row(f"{name}: survey MAE by BSs", ", ".join(f"{k}: {v:.1f} m" for k, v in mae.items()))
    table.add_row("folder", str(deployment.root))
    console.print(table)


@deploy_app.command("list")
def deploy_list(home: Optional[Path] = _home_option()) -> None:
    """Every deployment in the home folder, and builds that have not finished."""
    from radioloc.deploy.deployment import DeploymentStore, resolve_home

    store = DeploymentStore(resolve_home(home))
    table = Table(title=f"deployments in {store.root}")
    for column in ("id", "name", "area (m)", "BSs", "localizers", "state"):
        table.add_column(column)
    for deployment_id in store.ids():
        try:
            config = store.load(deployment_id).config
        except RadiolocError as exc:  # one damaged deployment hides none of the others
            table.add_row(deployment_id, "", "", "", "", f"damaged: {exc}")
            continue
        table.add_row(config.id, config.name, "{} x {}".format(*config.shape), str(len(config.base_stations)), ", ".join(config.localizers), "ready")
    for deployment_id in store.pending():
        table.add_row(deployment_id, "", "", "", "", "build unfinished (rerun deploy create to resume)")
    console.print(table)


@deploy_app.command("show")
def deploy_show(
    deployment_id: str = typer.Argument(..., help="Deployment id."),
    figure: Optional[Path] = output_file_option(None, "--figure", help="Draw the city, its BSs and the coverage into this PNG.", suffixes=(".png",)),
    force: bool = force_option(),
    home: Optional[Path] = _home_option(),
) -> None:
    """A deployment's area, BSs, simulators and survey errors (and a figure)."""
    from radioloc.deploy.deployment import DeploymentStore, resolve_home

    deployment = DeploymentStore(resolve_home(home)).load(deployment_id)
    _print_deployment(deployment)
    if figure is not None:
        from radioloc.deploy.figures import draw_deployment

        console.print(f"figure: {draw_deployment(deployment, figure)}")


@deploy_app.command("delete")
def deploy_delete(deployment_id: str = typer.Argument(..., help="Deployment id."), home: Optional[Path] = _home_option()) -> None:
    """Delete a deployment (or an unfinished build of it)."""
    from radioloc.deploy.deployment import DeploymentStore, resolve_home

    DeploymentStore(resolve_home(home)).delete(deployment_id)
    console.print(f"deleted {deployment_id}")


@app.command("serve")
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (0.0.0.0 for every interface)."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    db: Optional[str] = typer.Option(None, "--db", help="Database URL: sqlite:///PATH (default HOME/radioloc.db) or postgresql://USER:PASSWORD@HOST/DB."),
    workers: int = typer.Option(1, "--workers", min=1, max=64, help="uvicorn worker processes (they share the database and the deployments)."),
    demo_mode: bool = typer.Option(False, "--demo", help="Create the demo deployment on first start and print a client and an admin key."),
    home: Optional[Path] = _home_option(),
) -> None:
    """The real-time localization service: Geolocation API, batch locate, admin routes and the web page at /."""
    import os

    import uvicorn

    from radioloc.deploy.deployment import DeploymentStore, resolve_home
    from radioloc.service.db import Database, database_url, migrate
    from radioloc.service.environment import service_environment
    from radioloc.service.workers import check_address, run_workers

    service_environment()  # every RADIOLOC_* variable checked before anything starts
    check_address(host, port, workers)
    home = resolve_home(home).resolve()
    url = database_url(db, home)
    migrate(url)  # once, before the workers start
    os.environ.update(RADIOLOC_HOME=str(home), RADIOLOC_DB=url)
    # the cores are shared among the workers: each one's kernels get its share for single queries (more
    # oversubscribes the cores), all of them for a large batch (radioloc.service.engine)
    os.environ.setdefault("RADIOLOC_WORKER_THREADS", str(max(1, (os.cpu_count() or 1) // workers)))
    if demo_mode:
        from radioloc.service.demo import ensure_demo

        client, admin = ensure_demo(DeploymentStore(home), Database(url), workers=max(os.cpu_count() or 1, 1))
        console.print(f"demo deployment ready; client key: {client}  admin key: {admin}", soft_wrap=True)
        console.print(f"web page: http://{host}:{port}/?key={client}", soft_wrap=True)
    with stopping_on_signal("the service stopped after answering the requests in flight; the database and deployments are as they were"):
        if workers == 1:
            uvicorn.run("radioloc.service.app:app_from_env", factory=True, host=host, port=port, log_level="warning")
        else:  # a socket per worker, so connections spread over them (radioloc.service.workers)
            received = run_workers(host, port, workers)
            if received is not None:
                signal_received(received)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
