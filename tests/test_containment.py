"""Paths read from files radioloc did not just write never reach outside their root: a crafted checksum list
cannot make ``dataset verify --repair`` remove a user's files (issue 32)."""

import json
import shutil

import numpy as np
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


def _snapshot(root):
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_outputs_never_replace_a_dataset_file_or_an_input(small_dataset, tmp_path):
    root = small_dataset[0]
    before = _snapshot(root)
    cases = [
        (["dataset", "show", str(root), "--map", "0", "--out", str(root / "buildings" / "0.png")], "lies inside"),
        (["evaluate", "--model", "knn", "--data", str(root), "--estimate", "true", "--limit", "5", "--json", str(root / "manifest.json")], "lies inside"),
        (["dataset", "generate", "--out", str(root / "DPM")], "lies inside"),
        (["city", "import", str(root / "buildings" / "1.png"), "--out", str(root / "buildings" / "1.png")], "is also this command's input"),
    ]
    for argv, message in cases:
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, (argv, result.output)
    assert _snapshot(root) == before


def test_existing_city_outputs_are_replaced_only_with_force(tmp_path):
    out = tmp_path / "maps"
    out.mkdir()
    (out / "0.png").write_bytes(b"the user's map")
    result = CliRunner().invoke(app, ["city", "generate", "--out", str(out), "--count", "2"])
    assert result.exit_code == 2 and "--out" in result.output and "already holds files" in result.output and "give --force" in result.output
    assert (out / "0.png").read_bytes() == b"the user's map" and not (out / "1.png").exists()
    assert CliRunner().invoke(app, ["city", "generate", "--out", str(out), "--count", "2", "--force"]).exit_code == 0
    assert (out / "0.png").read_bytes()[:4] == b"\x89PNG"


def test_a_json_output_that_is_a_link_or_a_device_is_refused(small_dataset, tmp_path):
    target = tmp_path / "target.json"
    target.write_text("{}")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    for out, message in ((link, "is a symbolic link"), ("/dev/null", "not a regular file")):
        argv = ["evaluate", "--model", "knn", "--data", str(small_dataset[0]), "--estimate", "true", "--limit", "5", "--json", str(out)]
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and message in result.output, result.output
    assert link.is_symlink() and target.read_text() == "{}"


def _feature_collection(rings):
    return {
        "type": "FeatureCollection",
        "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [ring]}} for ring in rings],
    }


def _square(x, y, side):
    return [[x, y], [x + side, y], [x + side, y + side], [x, y + side], [x, y]]


@pytest.mark.parametrize(
    "rings,message",
    [
        ([_square(11.57, 48.13, 0.0002), _square(11.571, 48.131, 0.0002)], "longitude/latitude, not metres"),
        ([_square(0, 0, 10), _square(2_000_000, 0, 10)], "more than radioloc rasterizes"),
        ([_square(0, 0, 10), _square(74_000, 0, 10)], "more than radioloc rasterizes"),  # 74 km: 82 GiB of raster
        ([_square(0, 0, 10), _square(1e300, 0, 1e290)], "more than radioloc rasterizes"),
    ],
)
def test_city_import_refuses_footprints_that_are_not_metres_of_one_city(tmp_path, rings, message):
    source = tmp_path / "city.geojson"
    source.write_text(json.dumps(_feature_collection(rings)))
    result = CliRunner().invoke(app, ["city", "import", str(source), "--out", str(tmp_path / "b.png")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "b.png").exists()
    if message == "more than radioloc rasterizes":
        result = CliRunner().invoke(app, ["city", "tiles", str(source), "--coordinates", "metres", "--out", str(tmp_path / "tiles")])
        assert result.exit_code == 2 and message in result.output, result.output


def test_a_one_bit_png_is_not_a_radio_map(small_dataset, tmp_path):
    from PIL import Image

    from radioloc.datasets.layout import read_gray_png, read_radio_map_png

    path = tmp_path / "0_0.png"
    Image.fromarray(np.zeros((256, 256), bool)).convert("1").save(path)
    assert read_gray_png(path).shape == (256, 256)  # a building mask may be 1-bit
    with pytest.raises(RadiolocError, match="expected an 8-bit gray PNG, got mode 1"):
        read_radio_map_png(path)


@pytest.mark.parametrize(
    "damage,message",
    [
        (
            lambda root: _edit_json(root / "manifest.json", lambda m: m | {"maps": "0,1,2"}),
            "manifest.json: corrupt manifest (maps: Input should be a valid list)",
        ),
        (lambda root: _edit_json(root / "manifest.json", lambda m: [m]), "manifest.json: corrupt manifest (a JSON object is expected)"),
        (lambda root: _edit_json(root / "maps" / "0.json", lambda r: [r]), "0.json: corrupt map record (the whole file"),
        (lambda root: _edit_json(root / "maps" / "0.json", lambda r: r | {"style": 5}), "0.json: corrupt map record (style:"),
        (lambda root: _edit_mat(root / "TxRx.mat", "antList", 500), "TxRx.mat: antList names candidate 500"),
    ],
)
def test_a_corrupt_state_file_is_one_line_naming_file_and_field(small_dataset, tmp_path, damage, message):
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    (copy / "checksums.json").unlink()  # the damage is in what the readers parse, not caught as a changed file
    damage(copy)
    # evaluate reads the manifest and the positions, a resumed generate the map records too
    for argv in (["evaluate", "--model", "knn", "--data", str(copy), "--estimate", "true", "--limit", "5"], ["dataset", "generate", "--out", str(copy)]):
        if ("map record" in message) != (argv[0] == "dataset"):  # generate rewrites TxRx.mat from the records
            continue
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output, result.output


def _edit_json(path, change):
    path.write_text(json.dumps(change(json.loads(path.read_text()))))


def _edit_mat(path, key, value):
    import scipy.io

    data = {k: v for k, v in scipy.io.loadmat(path).items() if not k.startswith("__")}
    data[key] = data[key].copy()
    data[key].flat[0] = value
    scipy.io.savemat(path, data)


def test_verify_only_reads(small_dataset, tmp_path):
    """Checking writes nothing (not even its lock), so a read-only dataset can be verified (root ignores file
    modes, hence the check on what is written)."""
    from radioloc.io import LOCK_FILE, folder_lock

    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    assert CliRunner().invoke(app, ["dataset", "generate", "--out", str(copy)]).exit_code == 0  # records checksums
    (copy / LOCK_FILE).unlink()
    before = _snapshot(copy)
    result = CliRunner().invoke(app, ["dataset", "verify", str(copy)])
    assert result.exit_code == 0 and "every file matches" in result.output.replace("\n", " "), result.output
    assert _snapshot(copy) == before and not (copy / LOCK_FILE).exists()
    with folder_lock(copy, "dataset"):  # a writer at work: the reader refuses rather than read half-written files
        result = CliRunner().invoke(app, ["dataset", "verify", str(copy)])
        assert result.exit_code == 2 and "another radioloc process" in result.output


@pytest.mark.parametrize("name,content", [("scale.json", "[1, 2]"), ("scale.json", "{not json"), ("results/fig1-nlos-bias.json", '"a string"')])
def test_a_corrupt_experiments_file_is_one_line(tmp_path, name, content):
    from radioloc.evaluation.experiments import SCALES
    from radioloc.io import atomic_write_json

    out = tmp_path / "exp"
    (out / "results").mkdir(parents=True)
    if name != "scale.json":  # the folder of a smoke run, so that it is resumed
        atomic_write_json(out / "scale.json", SCALES["smoke"].to_dict())
    (out / name).write_text(content)
    result = CliRunner().invoke(app, ["experiments", "run", "fig1-nlos-bias", "--scale", "smoke", "--out", str(out)])
    assert result.exit_code == 2 and name.split("/")[-1] in result.output and "Traceback" not in result.output, result.output


def test_a_truncated_toa_file_is_one_line(small_dataset, tmp_path):
    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    (copy / "checksums.json").unlink()
    test_map = json.loads((copy / "manifest.json").read_text())["split"]["test"][0]
    toa = copy / "DPM" / "toa" / f"{test_map}.npz"
    toa.write_bytes(toa.read_bytes()[:5000])
    result = CliRunner().invoke(app, ["evaluate", "--model", "toa-pocs", "--data", str(copy), "--estimate", "true", "--toa-sigma", "1", "--limit", "5"])
    assert result.exit_code == 2 and f"{toa.name}: unreadable ToA file" in result.output and "Traceback" not in result.output, result.output


def test_a_corrupt_deployment_or_run_file_is_one_line(small_dataset, deployment_home, tmp_path):
    from radioloc.deploy.deployment import DeploymentStore

    home = tmp_path / "home"
    shutil.copytree(deployment_home, home, symlinks=True)
    [deployment_id] = DeploymentStore(home).ids()
    (home / "deployments" / deployment_id / "deployment.json").write_text("[1]")
    result = CliRunner().invoke(app, ["locate", "--deployment", deployment_id, "--cells", "1", "--pathloss=-90"], env={"RADIOLOC_HOME": str(home)})
    assert result.exit_code == 2 and "deployment.json: corrupt deployment" in result.output, result.output
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_config.json").write_text("{not json")
    result = CliRunner().invoke(app, ["train", "locunet", "--data", str(small_dataset[0]), "--out", str(run), "--estimate", "true"])
    assert result.exit_code == 2 and "train_config.json: not valid JSON" in result.output and "Traceback" not in result.output, result.output


def _commands(command, path=()):
    import typer.core

    if isinstance(command, typer.core.TyperGroup):
        yield path, command  # a group may run as a command (``evaluate --model ...``)
        for name, sub in command.commands.items():
            yield from _commands(sub, path + (name,))
    else:
        yield path, command


def test_every_command_that_may_replace_an_output_takes_force():
    import typer.main

    checked = 0
    for path, command in _commands(typer.main.get_command(app)):
        replacing = [p.opts[0] for p in command.params if getattr(p.callback, "replaces_files", False)]
        if replacing:
            checked += 1
            assert "force" in {p.name for p in command.params}, (path, replacing)
    assert checked >= 8  # evaluate, evaluate radiounet, dataset show, city generate/import/tiles, train calibrate/radii, deploy show


def test_existing_outputs_are_replaced_only_with_force(small_dataset, tmp_path):
    root = small_dataset[0]
    previous = tmp_path / "previous.json"
    previous.write_text('{"the user": "results"}')
    figure = tmp_path / "map.png"
    figure.write_bytes(b"the user's figure")
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "error_cdf_test.png").write_bytes(b"the user's cdf")
    evaluate = ["evaluate", "--model", "knn", "--data", str(root), "--estimate", "true", "--limit", "5"]
    cases = [
        (evaluate + ["--json", str(previous)], "--json", "exists"),
        (evaluate + ["--figures", str(figures)], "--figures", "already holds files"),
        (["dataset", "show", str(root), "--map", "0", "--out", str(figure)], "--out", "exists"),
    ]
    for argv, flag, message in cases:
        result = CliRunner().invoke(app, argv)
        assert result.exit_code == 2 and f"{flag} " in result.output and message in result.output and "give --force" in result.output, (argv, result.output)
    assert (
        previous.read_text() == '{"the user": "results"}'
        and figure.read_bytes() == b"the user's figure"
        and (figures / "error_cdf_test.png").read_bytes() == b"the user's cdf"
    )
    for argv, _, _ in cases:
        result = CliRunner().invoke(app, argv + ["--force"])
        assert result.exit_code == 0, (argv, result.output)
    assert "knn" in previous.read_text()
    assert figure.read_bytes()[:4] == b"\x89PNG" and (figures / "error_cdf_test.png").read_bytes()[:4] == b"\x89PNG"
