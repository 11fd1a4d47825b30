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
app.add_typer(city_app, name="city")
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
    out: Optional[Path] = typer.Option(None, "--out", help="PNG to write (default DIR/figures/map_{M}.png)."),
) -> None:
    """Draw a map with its base stations, users and radio maps to a PNG."""
    from radioloc.datasets.plot import show_map

    target = out or directory / "figures" / f"map_{map_id}.png"
    console.print(f"wrote {show_map(directory, map_id, target, bs_set=bs_set, sim=sim)}")


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


@app.command("demo")
def demo(
    out: Path = typer.Option(Path("out/demo"), "--out", help="Output folder."),
    maps: int = typer.Option(6, "--maps", help="Maps in the small demo dataset."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """The main job: generate a small dataset (DPM and DPM with cars) and draw its maps."""
    from radioloc.datasets.builder import DatasetConfig, generate_dataset
    from radioloc.datasets.plot import show_map

    started = time.perf_counter()
    data = out / "dataset"
    manifest = generate_dataset(data, DatasetConfig(maps=maps, seed=seed, simulations=("DPM", "DPMcars")))
    table = Table(title=f"demo dataset: {data}")
    for column in ("map", "split", "style", "building coverage", "car pixels", "seconds"):
        table.add_column(column)
    split_of = {m: name for name, ids in manifest["split"].items() for m in ids}
    from radioloc.datasets.builder import read_map_record

    figures = []
    for map_id in manifest["maps"]:
        record = read_map_record(data, map_id)
        table.add_row(str(map_id), split_of[map_id], record["style"], f"{record['building_coverage']:.1%}", str(record["cars"]), f"{record['seconds']:.1f}")
        figures.append(show_map(data, map_id, out / "figures" / f"map_{map_id}.png"))
        figures.append(show_map(data, map_id, out / "figures" / f"map_{map_id}_cars.png", sim="DPMcars"))
    console.print(table)
    console.print(f"figures: {out / 'figures'} ({len(figures)} PNGs); total {time.perf_counter() - started:.1f} s")


def main() -> None:
    try:
        app()
    except RadiolocError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
