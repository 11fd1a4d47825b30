"""`radioloc experiments`: the smoke scale end to end through the command line, resuming, the report, bad input."""

import json
import math

import pytest
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.evaluation.experiments import EXPERIMENTS, SCALES
from radioloc.evaluation.experiments.runner import order

runner = CliRunner()


def strict_json(path):
    def refuse(constant):
        raise ValueError(f"{path}: non-standard JSON constant {constant}")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("experiments") / "smoke"
    result = runner.invoke(app, ["experiments", "run", "--scale", "smoke", "--out", str(out), "--workers", "2"])
    assert result.exit_code == 0, result.output
    return out


def test_list_names_every_experiment_and_scale():
    result = runner.invoke(app, ["experiments", "list"])
    assert result.exit_code == 0
    for name in EXPERIMENTS:
        assert name in result.output
    for scale in SCALES:
        assert f"--scale {scale}" in result.output


def test_needed_experiments_run_first():
    assert order(["fusion-rss-toa"]) == ["fig1-nlos-bias", "table8-toa", "fusion-rss-toa"]


def test_smoke_scale_writes_every_result_figure_and_the_report(smoke):
    for name in EXPERIMENTS:
        result = strict_json(smoke / "results" / f"{name}.json")
        assert result["scale"] == "smoke" and result["experiment"] == name
        for figure in result.get("figures", []):
            assert (smoke / "figures" / figure.split("/")[-1]).stat().st_size > 1000
    report = (smoke / "report.md").read_text()
    assert "command: `" in report and "--scale smoke" in report
    for exp in EXPERIMENTS.values():
        assert exp.title in report
    assert "_not run" not in report
    assert "(37.75)" in report  # the paper's POCS number beside ours


def test_table8_rows_cover_every_method_sigma_bound_and_bs_count(smoke):
    table8 = strict_json(smoke / "results" / "table8-toa.json")
    fig1 = strict_json(smoke / "results" / "fig1-nlos-bias.json")
    bounds = {20.0, 0.7, round(fig1["bias_cdf_0.5_m"], 2), round(fig1["bias_cdf_0.9_m"], 2)}
    assert set(table8["bias_bounds_m"]) == bounds
    keys = {(r["method"], r["b"], r["sigma_m"], r["bs"]) for r in table8["rows"]}
    assert len(keys) == len(table8["rows"]) == (3 + 3 * len(bounds)) * 3 * 2
    for row in table8["rows"]:
        assert row["n"] == table8["queries"] and 0 <= row["failure_rate"] <= 1
        assert row["failures"] == round(row["failure_rate"] * row["n"])
        assert math.isfinite(row["mae_all_m"]) and row["ms_per_query"] > 0
        if row["failures"] < row["n"]:
            assert row["mae_successful_m"] is not None
    # every method answers the same queries: with noise-free ranges the SDP is good, POCS poor (the paper's finding)
    at = {(r["method"], r["b"], r["sigma_m"], r["bs"]): r["mae_all_m"] for r in table8["rows"]}
    assert at[("sdp", None, 0.0, 5)] < at[("pocs", None, 0.0, 5)]
    assert isinstance(table8["verdicts"]["mae_successful_m"]["every_sdp_beats_pocs"]["holds"], bool)


def test_fusion_and_fig2_carry_their_goal_and_the_paper_numbers(smoke):
    fusion = strict_json(smoke / "results" / "fusion-rss-toa.json")
    assert isinstance(fusion["goal"]["met"], bool) and fusion["goal"]["ratio"] > 0
    for row in fusion["rows"]:
        assert row["fused_mae_m"] < row["locunet_rss_mae_m"]  # a range per BS adds information to RSS
    fig2 = strict_json(smoke / "results" / "fig2-estimate-error.json")
    assert fig2["robust"]["all_links"]["rmse_db"] > fig2["nominal"]["all_links"]["rmse_db"]
    assert fig2["nominal"]["paper"] == {"rmse_db": 1.66, "mae_db": 0.87}


def test_a_rerun_resumes_without_redoing_anything(smoke):
    before = {p: p.stat().st_mtime_ns for p in (smoke / "results").iterdir()}
    cache = sorted(p.name for p in (smoke / "cache").rglob("*.json"))
    result = runner.invoke(app, ["experiments", "run", "--scale", "smoke", "--out", str(smoke)])
    assert result.exit_code == 0, result.output
    assert "done earlier" in result.output
    assert {p: p.stat().st_mtime_ns for p in (smoke / "results").iterdir()} == before
    assert sorted(p.name for p in (smoke / "cache").rglob("*.json")) == cache


def test_a_killed_experiment_reuses_its_cached_rows(smoke, tmp_path):
    # a result lost (killed before it was written) is recomputed from the cached rows, to the same numbers
    path = smoke / "results" / "table8-toa.json"
    kept = strict_json(path)
    path.unlink()
    result = runner.invoke(app, ["experiments", "run", "table8-toa", "--scale", "smoke", "--out", str(smoke)])
    assert result.exit_code == 0, result.output
    again = strict_json(path)
    assert again["rows"] == kept["rows"] and again["rss"] == kept["rss"]


def test_a_folder_of_another_scale_is_refused(smoke):
    result = runner.invoke(app, ["experiments", "run", "--scale", "cpu", "--out", str(smoke)])
    assert result.exit_code == 2
    assert "holds results of scale 'smoke'" in result.output


def _report_refusal(smoke, tmp_path, name: str, damage) -> tuple:
    """A copy of the smoke results with ``name``'s file damaged (``damage``: fields to set, or a function of the
    result giving them); the error writing the report raised, and the damaged file."""
    import shutil

    from radioloc.errors import RadiolocError
    from radioloc.evaluation.experiments.report import write_report

    out = tmp_path / "copy"
    shutil.copytree(smoke / "results", out / "results")
    path = out / "results" / f"{name}.json"
    result = strict_json(path)
    path.write_text(json.dumps({**result, **(damage(result) if callable(damage) else damage)}))
    with pytest.raises(RadiolocError) as caught:
        write_report(out, SCALES["smoke"], "radioloc experiments run")
    assert "\n" not in str(caught.value) and not (out / "report.md").exists()
    return str(caught.value), path


@pytest.mark.parametrize("name,damage", [("table8-toa", {"rows": "none"}), ("table8-toa", {"verdicts": []}), ("fig1-nlos-bias", {"seconds": "slow"}),
                                         ("table8-toa", lambda result: {"rows": result["rows"][:3]})])  # fmt: skip
def test_a_damaged_result_file_is_named_when_the_report_is_written(smoke, tmp_path, name, damage):
    message, path = _report_refusal(smoke, tmp_path, name, damage)
    assert message.startswith(f"{path}: corrupt experiment result (") or message.startswith(f"{path.parent}: corrupt"), message


def test_a_damaged_cached_result_is_named(smoke):
    result_path = smoke / "results" / "table8-toa.json"
    cached = sorted((smoke / "cache" / "table8-toa").glob("*.json"))
    assert cached, "table8-toa caches its rows"
    kept = {path: path.read_bytes() for path in [result_path, *cached]}
    try:
        result_path.unlink()
        for path in cached:
            path.write_text('{"unexpected": 1}')
        result = runner.invoke(app, ["experiments", "run", "table8-toa", "--scale", "smoke", "--out", str(smoke)])
        assert result.exit_code == 2 and "a file it read may be damaged" in result.output and "cache/table8-toa/" in result.output, result.output
        assert "Traceback" not in result.output
    finally:
        for path, content in kept.items():
            path.write_bytes(content)


@pytest.mark.parametrize("name,damage,message", [
    ("table8-toa", {"scale": "cpu"}, "a result of experiment 'table8-toa' at scale 'cpu', not of 'table8-toa' at this folder's scale 'smoke'"),
    ("fig1-nlos-bias", {"experiment": "table8-toa"}, "a result of experiment 'table8-toa'"),
    ("fig1-nlos-bias", {"line_of_sight_share": 7.0}, "line_of_sight_share = 7 is outside [0, 1]"),
    ("fig1-nlos-bias", {"seconds": -50.0}, "seconds = -50 is negative"),
    ("fig1-nlos-bias", {"bias_cdf_0.5_m": 1e308}, "bias_cdf_0.5_m = 1e+308 is above 1e+06"),
    ("table8-toa", {"rows": []}, "rows is empty"),
])  # fmt: skip
def test_a_result_no_experiment_writes_is_refused_naming_the_file_and_field(smoke, tmp_path, name, damage, message):
    refused, path = _report_refusal(smoke, tmp_path, name, damage)
    assert refused.startswith(f"{path}: ") and message in refused, refused


def test_an_experiment_reading_a_damaged_needed_result_names_that_file(smoke, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(smoke, copy)
    (copy / "results" / "table8-toa.json").unlink()
    fig1 = copy / "results" / "fig1-nlos-bias.json"
    fig1.write_text(json.dumps({**strict_json(fig1), "bias_cdf_0.9_m": -5.0}))  # table8's bias bound b
    ran = runner.invoke(app, ["experiments", "run", "table8-toa", "--scale", "smoke", "--out", str(copy)])
    assert ran.exit_code == 2 and f"{fig1}: bias_cdf_0.9_m = -5 is negative" in " ".join(ran.output.split()), ran.output
