import subprocess
import sys

import numpy as np
from typer.testing import CliRunner

from radioloc.cli import app


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "radioloc.cli", *args], capture_output=True, text=True)


def test_show_writes_a_png(small_dataset, tmp_path):
    root, _ = small_dataset
    out = tmp_path / "map.png"
    result = CliRunner().invoke(app, ["dataset", "show", str(root), "--map", "1", "--set", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_errors_are_one_line_with_exit_code_2(small_dataset, tmp_path):
    root, _ = small_dataset
    result = run_cli("dataset", "show", str(root), "--map", "9")
    assert result.returncode == 2
    assert result.stderr.strip() == "error: --map must be between 0 and 2, got 9"
    result = run_cli("dataset", "generate", "--out", str(tmp_path / "x"), "--buildings", str(tmp_path / "none"))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "--buildings" in result.stderr and "does not exist" in result.stderr
    assert "Traceback" not in result.stderr


def test_city_generate_and_import(tmp_path):
    runner = CliRunner()
    result = runner.invoke(app, ["city", "generate", "--out", str(tmp_path / "maps"), "--count", "2", "--seed", "4"])
    assert result.exit_code == 0, result.output
    from radioloc.city import generate_city, load_building_png

    np.testing.assert_array_equal(load_building_png(tmp_path / "maps" / "1.png"), generate_city(5).buildings)
    geojson = tmp_path / "b.geojson"
    geojson.write_text(
        '{"type": "Feature", "properties": {"height": 12.5}, "geometry": {"type": "Polygon", '
        '"coordinates": [[[100.5, 199.5], [110.5, 199.5], [110.5, 189.5], [100.5, 189.5], [100.5, 199.5]]]}}'
    )
    result = runner.invoke(app, ["city", "import", str(geojson), "--out", str(tmp_path / "b.png"), "--origin", "0,200"])
    assert result.exit_code == 0, result.output
    mask = load_building_png(tmp_path / "b.png")
    rows, cols = np.nonzero(mask)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (1, 10, 101, 110)
    heights = np.load(tmp_path / "b.heights.npz")["heights"]
    assert heights[5, 105] == 12.5


def test_evaluate_toa_methods_with_ranges(small_dataset, tmp_path):
    root, _ = small_dataset
    out = tmp_path / "toa.json"
    args = [
        "evaluate",
        "--model",
        "toa-bisection:b=0.7,toa-sdp",
        "--data",
        str(root),
        "--estimate",
        "true",
        "--toa-sigma",
        "0",
        "--limit",
        "40",
        "--json",
        str(out),
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = __import__("json").loads(out.read_text())
    for label in ("toa-bisection:b=0.7", "toa-sdp"):
        five = report["models"][label]["5bs"]
        assert five["n"] == 40 and 0 <= five["failure_rate"] <= 1
        assert five["mae"] < 30  # noise-free dominant-path ranges on a small map
