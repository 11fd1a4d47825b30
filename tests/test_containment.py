"""Paths read from files radioloc did not just write never reach outside their root: a crafted checksum list
cannot make ``dataset verify --repair`` remove a user's files (issue 32)."""

import json
import shutil

import pytest
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.errors import RadiolocError
from radioloc.io import contained


@pytest.mark.parametrize("rel", ["../victim.txt", "maps/../../victim.txt", "/ABS/victim.txt", "link/victim.txt", "", "a\x00b"])
def test_contained_refuses_every_way_out(tmp_path, rel):
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(RadiolocError) as caught:
        contained(root, rel.replace("/ABS", str(outside)), "state.json")
    assert str(caught.value).startswith("state.json: entry ") and "\n" not in str(caught.value)


def test_contained_keeps_paths_inside(tmp_path):
    (tmp_path / "DPM").mkdir()
    assert contained(tmp_path, "DPM/true/1_2.png", "x") == tmp_path / "DPM/true/1_2.png"


@pytest.mark.parametrize(
    "entry,message",
    [
        ({"../victim.txt": "0" * 64}, "leaves"),
        ({"ABS": "0" * 64}, "leaves"),
        ({"link/victim.txt": "0" * 64}, "outside"),
        ([["../victim.txt", "0" * 64]], "corrupt checksum list (files"),
        ({"TxRx.mat": 5}, "corrupt checksum list (files.TxRx.mat"),
        ({"TxRx.mat": "not-a-digest"}, "not a SHA-256 hex digest"),
    ],
)
def test_a_crafted_checksum_list_cannot_remove_files_outside_the_dataset(small_dataset, tmp_path, entry, message):
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    victim = tmp_path / "victim.txt"
    victim.write_text("the user's file")
    (copy / "link").symlink_to(tmp_path)
    if isinstance(entry, dict) and "ABS" in entry:
        entry = {str(victim): entry["ABS"]}
    (copy / "checksums.json").write_text(json.dumps({"algorithm": "sha256", "files": entry}))
    result = CliRunner().invoke(app, ["dataset", "verify", str(copy), "--repair"])
    assert result.exit_code == 2, result.output
    assert message in result.output and "checksums.json" in result.output and "Traceback" not in result.output
    assert victim.read_text() == "the user's file"
