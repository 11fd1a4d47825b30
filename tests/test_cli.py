import subprocess
import sys

from radioloc.cli import app
from typer.testing import CliRunner


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
    assert result.stderr.count("\n") == 1 and "building folder not found" in result.stderr
    assert "Traceback" not in result.stderr
