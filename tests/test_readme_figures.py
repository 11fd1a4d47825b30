"""Every figure of the README's Results is rendered from the committed benchmark JSON: a README edited by hand, or
JSON regenerated without the README, fails here."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_tables():
    spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "benchmarks" / "readme_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_results_match_the_committed_json():
    tables = readme_tables()
    readme = tables.README.read_text()
    blocks = {match.group("name") for match in tables.BLOCK.finditer(readme)}
    assert blocks == set(tables.RENDERERS), f"README blocks {blocks}"
    assert tables.render(readme, json.loads(tables.RESULTS.read_text())) == readme


def test_a_changed_figure_is_caught():
    tables = readme_tables()
    results = json.loads(tables.RESULTS.read_text())
    readme = tables.README.read_text()
    speed = results["speed"]
    speed["bayes"]["single_query_ms"] += 1.0
    assert tables.render(readme, results) != readme
