"""The evaluation seeds of the benchmarks (benchmarks/seeds.py) are never fitting data: no shipped model card lists
one among the seeds it was fitted on, and no shipped radius calibration records a dataset of one."""

import importlib.util
from pathlib import Path

import pytest

from radioloc.localizers.radii import card_seeds, parse_seed_list
from radioloc.localizers.registry import resolve_localizer
from radioloc.models.checkpoint import load_checkpoint

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "src" / "radioloc" / "models" / "weights"
SHIPPED_RADII = ("locunet", "locunet:paper", "bayes", "bayes-learned", "locunet-robust", "locunet-robust:paper", "bayes-robust", "bayes-learned-robust")


def benchmark_seeds():
    spec = importlib.util.spec_from_file_location("bench_seeds", ROOT / "benchmarks" / "seeds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_seeds():
    assert parse_seed_list("0, 1000, 5101-5103") == {0, 1000, 5101, 5102, 5103}
    assert parse_seed_list("7") == {7}


def test_calibration_pool_and_evaluation_seeds_are_disjoint():
    seeds = benchmark_seeds()
    assert seeds.EVALUATION_SEEDS and seeds.CALIBRATION_SEEDS
    assert not seeds.EVALUATION_SEEDS & seeds.CALIBRATION_SEEDS
    assert seeds.TRANSFER_CHECK_SEED not in seeds.EVALUATION_SEEDS | seeds.CALIBRATION_SEEDS


@pytest.mark.parametrize("card", sorted(WEIGHTS.glob("*.md")), ids=lambda p: p.name)
def test_model_cards_list_fitting_seeds_outside_the_evaluation_seeds(card):
    listed = card_seeds(card.with_suffix(".pt"))
    assert listed is not None, f"{card.name}: no '**Fitting seeds:** ...' line"
    assert listed and not listed & benchmark_seeds().EVALUATION_SEEDS


@pytest.mark.parametrize("name", SHIPPED_RADII)
def test_shipped_radii_record_datasets_outside_the_evaluation_seeds(name):
    radii = resolve_localizer(name).localizer.uncertainty
    seeds = {entry["seed"] for entry in radii.fitted_on}
    assert radii.maps >= 30 and len(seeds) >= 3, f"{name}: radii calibrated on {radii.maps} maps of seeds {seeds}"
    assert not seeds & benchmark_seeds().EVALUATION_SEEDS
    assert seeds <= benchmark_seeds().CALIBRATION_SEEDS


def test_every_shipped_checkpoint_radius_section_is_recorded():
    """The radii a LocUNet checkpoint holds (paper path and fusion) name the datasets they were fitted on."""
    for checkpoint in ("locunet_cpu.pt", "locunet_robust_cpu.pt"):
        stored = load_checkpoint(WEIGHTS / checkpoint, "locunet")
        for section in (stored["fusion"]["radius"], stored["uncertainty"]["posterior"]["refined"]):
            assert section.get("version") == 2 and section["fitted_on"], f"{checkpoint}: {section.get('fitted_on')}"
