"""`radioloc dataset coverage`: what share of the query links each simulation lets a phone hear, and whether no
path reaches them, counted independently here from the stored maps."""

import json

import numpy as np
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.datasets import layout
from radioloc.datasets.coverage import dataset_coverage, query_links
from radioloc.datasets.ranging import read_path_lengths


def test_query_links_are_every_ue_with_every_bs_of_the_map_once(small_dataset):
    positions = layout.read_positions(small_dataset[0])
    ue, bs = query_links(positions, 1)
    pairs = set(zip(ue.tolist(), bs.tolist()))
    assert len(pairs) == len(ue) == positions.ue.shape[1] * len(np.unique(positions.bs_sets[1]))
    queried = {(u, int(b)) for u in range(positions.ue.shape[1]) for b in positions.bs_sets[1].ravel()}
    assert pairs == queried


def test_coverage_counts_match_the_stored_maps(small_dataset):
    root = small_dataset[0]
    result = dataset_coverage(root, "test")
    positions = layout.read_positions(root)
    (map_id,) = json.loads((root / "manifest.json").read_text())["split"]["test"]
    ue, bs = query_links(positions, map_id)
    rows, cols = positions.ue[map_id][ue].T
    grays = {sim: np.array([layout.read_radio_map_png(layout.radio_map_path(root, sim, "true", map_id, int(b)))[r, c] for b, r, c in zip(bs, rows, cols)])
             for sim in ("DPM", "DPMcars")}  # fmt: skip
    cars = result["sims"]["DPMcars"]
    assert result["sims"]["DPM"]["above_floor"] == np.mean(grays["DPM"] > 0) and result["sims"]["DPM"]["rmse_to_DPM_db"] == 0.0
    assert cars["above_floor"] == np.mean(grays["DPMcars"] > 0) and cars["links"] == len(ue)
    both = (grays["DPM"] > 0) & (grays["DPMcars"] > 0)
    assert cars["links_above_floor_in_both"] == both.sum() and cars["mean_difference_to_DPM_db"] <= 0.0  # cars only block
    lengths, _ = read_path_lengths(root, map_id, "DPMcars", transmitters=positions.candidates.shape[1])
    assert cars["no_path"] == np.mean(np.isnan(lengths[bs, rows, cols]))


def test_coverage_command_writes_standard_json(small_dataset, tmp_path):
    out = tmp_path / "coverage.json"
    result = CliRunner().invoke(app, ["dataset", "coverage", str(small_dataset[0]), "--json", str(out)])
    assert result.exit_code == 0, result.output
    written = json.loads(out.read_text(), parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    assert set(written["sims"]) >= {"DPM", "DPMcars"} and written["maps"] == 3
    for row in written["sims"].values():
        assert 0 <= row["above_floor"] <= 1 and (row["no_path"] is None or 0 <= row["no_path"] <= 1)
