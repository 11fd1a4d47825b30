"""Bad input on every command: a one-line error naming the option or file, exit status 2, and nothing written where
nothing should be. A new command adds its rows to CASES; the tree-wide checks below cover it without a row."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.main import get_command
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.datasets.localization import Queries, load_localization
from radioloc.errors import RadiolocError
from radioloc.io import folder_lock
from radioloc.localizers.registry import resolve_localizer
from radioloc.models.radiounet import SHIPPED_WEIGHTS

# (name, argv with {DS} a small dataset, {FILE} an existing file, {DIR} an existing empty folder, {NEW} a path that
#  does not exist, {RAND} a file of random bytes), text the message must hold, path that must not exist afterwards
CASES = [
    ("experiments unknown name", ["experiments", "run", "nosuch", "--out", "{NEW}"], "unknown experiment 'nosuch'", "{NEW}"),
    ("experiments unknown scale", ["experiments", "run", "--scale", "huge", "--out", "{NEW}"], "--scale must be one of", "{NEW}"),
    ("experiments out is a file", ["experiments", "run", "--out", "{FILE}"], "is a file", None),
    ("experiments zero workers", ["experiments", "run", "--out", "{NEW}", "--workers", "0"], "--workers", "{NEW}"),
    ("estimate negative batch", ["dataset", "estimate", "{DS}", "--batch-size", "-1"], "--batch-size", None),
    ("estimate zero batch", ["dataset", "estimate", "{DS}", "--batch-size", "0"], "--batch-size", None),
    ("estimate random checkpoint", ["dataset", "estimate", "{DS}", "--model", "{RAND}"], "not a radioloc checkpoint", None),
    ("generate negative seed", ["dataset", "generate", "--out", "{NEW}", "--seed", "-1"], "--seed", "{NEW}"),
    ("generate negative candidates", ["dataset", "generate", "--out", "{NEW}", "--candidates", "-5"], "--candidates", "{NEW}"),
    ("generate zero candidates", ["dataset", "generate", "--out", "{NEW}", "--candidates", "0"], "--candidates", "{NEW}"),
    ("generate zero rays", ["dataset", "generate", "--out", "{NEW}", "--rays", "0"], "--rays", "{NEW}"),
    ("generate out under a file", ["dataset", "generate", "--out", "{FILE}/sub"], "--out", None),
    ("generate out is a file", ["dataset", "generate", "--out", "{FILE}"], "is a file", None),
    ("generate unwritable out", ["dataset", "generate", "--out", "/proc/radioloc-test"], "cannot write", None),
    ("generate missing buildings", ["dataset", "generate", "--out", "{NEW}", "--buildings", "{DIR}/none"], "--buildings", "{NEW}"),
    ("show missing dataset", ["dataset", "show", "{DIR}/nosuch", "--map", "0"], "nosuch", None),
    ("show out is a folder", ["dataset", "show", "{DS}", "--map", "0", "--out", "{DIR}"], "is a folder", None),
    ("verify without checksums", ["dataset", "verify", "{DIR}"], "checksums", None),
    ("evaluate toa without ranges", ["evaluate", "--model", "toa-pocs", "--data", "{DS}", "--estimate", "true", "--limit", "5"], "no ToA ranges", None),
    ("evaluate negative toa sigma", ["evaluate", "--model", "toa-pocs", "--data", "{DS}", "--toa-sigma", "-1"], "--toa-sigma", None),
    ("evaluate toa bad bound", ["evaluate", "--model", "toa-rsdp1:b=x", "--data", "{DS}", "--toa-sigma", "0"], "b=NUMBER", None),
    ("evaluate zero limit", ["evaluate", "--model", "knn", "--data", "{DS}", "--limit", "0"], "--limit", None),
    ("evaluate negative limit", ["evaluate", "--model", "knn", "--data", "{DS}", "--limit", "-5"], "--limit", None),
    ("evaluate json is a folder", ["evaluate", "--model", "knn", "--data", "{DS}", "--json", "{DIR}"], "--json", None),
    ("evaluate json under a file", ["evaluate", "--model", "knn", "--data", "{DS}", "--json", "{FILE}/r.json"], "--json", None),
    ("evaluate figures is a file", ["evaluate", "--model", "knn", "--data", "{DS}", "--figures", "{FILE}"], "--figures", None),
    ("evaluate unknown model", ["evaluate", "--model", "nosuch", "--data", "{DS}"], "nosuch", None),
    ("radiounet eval json is a folder", ["evaluate", "radiounet", "--data", "{DS}", "--json", "{DIR}"], "--json", None),
    ("train locunet zero epochs", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--epochs", "0"], "--epochs", "{NEW}"),
    ("train locunet zero batch", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--batch-size", "0"], "--batch-size", "{NEW}"),
    ("train locunet negative lr", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--lr", "-1"], "--lr", "{NEW}"),
    ("train locunet infinite lr", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--lr", "inf"], "not in (0, 1]", "{NEW}"),
    ("train locunet huge lr", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--lr", "1e308"], "not in (0, 1]", "{NEW}"),
    ("train locunet nan lr", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--lr", "nan"], "not in (0, 1]", "{NEW}"),
    ("train locunet seed 2**64", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--seed", str(2**64)], "--seed", "{NEW}"),
    ("generate ten million maps", ["dataset", "generate", "--out", "{NEW}", "--maps", "10000000"], "--maps", "{NEW}"),
    ("generate rays without ray tracing", ["dataset", "generate", "--out", "{NEW}", "--rays", "5000"], "--rays: sets the ray tracing", "{NEW}"),
    ("generate inproc scheduler", ["dataset", "generate", "--out", "{NEW}", "--scheduler", "inproc://x"], "not a Dask scheduler address", "{NEW}"),
    ("generate tls scheduler", ["dataset", "generate", "--out", "{NEW}", "--scheduler", "tls://h:8786"], "not a Dask scheduler address", "{NEW}"),
    ("city import nan origin", ["city", "import", "{FILE}", "--out", "{NEW}.png", "--origin", "nan,nan"], "--origin must be", "{NEW}.png"),
    ("train locunet missing data", ["train", "locunet", "--data", "{DIR}/nosuch", "--out", "{NEW}"], "nosuch", "{NEW}"),
    ("train locunet bad device", ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--device", "bogus"], "--device", "{NEW}"),
    (
        "train locunet fails at startup",
        ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--estimate", "true", "--head", "posterior"],
        "--likelihood",
        "{NEW}/train_config.json",
    ),
    (
        "train radii of a per-dataset model",
        ["train", "radii", "--model", "knn", "--data", "{DS}", "--out", "{NEW}.safetensors"],
        "fitted per dataset",
        "{NEW}.safetensors",
    ),
    ("train radii missing data", ["train", "radii", "--model", "bayes", "--data", "{DIR}/nosuch", "--out", "{NEW}.safetensors"], "nosuch", "{NEW}.safetensors"),
    (
        "train radii too few queries",
        ["train", "radii", "--model", "bayes", "--data", "{DS}", "--out", "{NEW}.safetensors", "--queries", "5"],
        "--queries",
        "{NEW}.safetensors",
    ),
    ("train radii unknown model", ["train", "radii", "--model", "nosuch", "--data", "{DS}", "--out", "{NEW}.safetensors"], "nosuch", "{NEW}.safetensors"),
    ("train radiounet negative epochs", ["train", "radiounet", "--data", "{DS}", "--out", "{NEW}", "--epochs-first", "-1"], "--epochs-first", "{NEW}"),
    ("train radiounet zero batch", ["train", "radiounet", "--data", "{DS}", "--out", "{NEW}", "--batch-size", "0"], "--batch-size", "{NEW}"),
    (
        "train radiounet init of another preset",
        ["train", "radiounet", "--data", "{DS}", "--out", "{NEW}", "--preset", "cpu-small", "--init", str(SHIPPED_WEIGHTS)],
        "--init checkpoint does not fit preset 'cpu-small'",
        "{NEW}",
    ),
    ("train radiounet init random file", ["train", "radiounet", "--data", "{DS}", "--out", "{NEW}", "--init", "{RAND}"], "not a radioloc checkpoint", "{NEW}"),
    ("train radiounet negative seed", ["train", "radiounet", "--data", "{DS}", "--out", "{NEW}", "--seed", "-1"], "--seed", "{NEW}"),
    ("train bayes out is a file", ["train", "bayes", "--data", "{DS}", "--out", "{FILE}"], "--out", None),
    ("calibrate out is a folder", ["train", "calibrate", "--model", "locunet", "--data", "{DS}", "--out", "{DIR}"], "--out", None),
    ("calibrate unknown fusion", ["train", "calibrate", "--model", "locunet", "--data", "{DS}", "--fuse", "nosuch", "--out", "{NEW}.pt"], "--fuse", "{NEW}.pt"),
    ("locate empty ids", ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "", "--pathloss=-90"], "--bs", None),
    (
        "locate negative id",
        ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "4,7,-1", "--pathloss=-88.5,-104,-50"],
        "unknown BS id -1",
        None,
    ),
    ("locate negative map", ["locate", "--data", "{DS}", "--map", "-1", "--estimate", "true", "--bs", "0", "--pathloss=-90"], "--map", None),
    (
        "locate pathloss above the gray range",
        ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "0", "--pathloss=-10"],
        "out of range [-250, -47.6",
        None,
    ),
    (
        "locate locunet at -30 dB",
        ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "0,1", "--pathloss=-90,-30", "--model", "locunet"],
        "pathloss -30 dB out of range",
        None,
    ),
    (
        "locate nan pathloss",
        ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "0,1", "--pathloss=-90,nan"],
        "--pathloss: every value must be a finite number",
        None,
    ),
    ("locate infinite pathloss", ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "0,1", "--pathloss=-90,-inf"], "finite number", None),
    (
        "locate random checkpoint",
        ["locate", "--data", "{DS}", "--map", "0", "--estimate", "true", "--bs", "0", "--pathloss=-90", "--model", "{RAND}"],
        "not a radioloc checkpoint",
        None,
    ),
    ("city generate out under a file", ["city", "generate", "--out", "{FILE}/maps"], "--out", None),
    ("city generate zero count", ["city", "generate", "--out", "{NEW}", "--count", "0"], "--count", "{NEW}"),
    ("city import out is a folder", ["city", "import", "{FILE}", "--out", "{DIR}"], "--out", None),
    ("city tiles coverage above 1", ["city", "tiles", "munich", "--out", "{NEW}", "--min-coverage", "2"], "--min-coverage", "{NEW}"),
    ("demo too few maps", ["demo", "--out", "{NEW}", "--maps", "2"], "--maps", "{NEW}"),
    ("demo out is a file", ["demo", "--out", "{FILE}"], "is a file", None),
    ("unknown option", ["locate", "--bogus"], "--bogus", None),
    ("missing argument", ["dataset", "estimate"], "directory", None),
    # the probe of issue 32: empty paths, folders that are not the command's own, options of another mode
    ("empty out folder", ["city", "generate", "--out", ""], "an empty path", None),
    ("empty dataset argument", ["dataset", "verify", ""], "an empty path", None),
    ("empty json path", ["evaluate", "--model", "knn", "--data", "{DS}", "--json", ""], "an empty path", None),
    ("data named twice", ["train", "bayes", "--data", "{DS},{DS}", "--out", "{NEW}"], "a dataset named twice", "{NEW}"),
    ("data trailing comma", ["train", "bayes", "--data", "{DS},", "--out", "{NEW}"], "an empty folder name", "{NEW}"),
    ("bins without error model", ["train", "bayes", "--data", "{DS}", "--out", "{NEW}", "--bins", "4"], "--bins applies with --error-model only", "{NEW}"),
    ("train bayes into a folder of files", ["train", "bayes", "--data", "{DS}", "--out", "{FULL}"], "already holds files; give --force", None),
    (
        "likelihood without posterior head",
        ["train", "locunet", "--data", "{DS}", "--out", "{NEW}", "--likelihood", "bayes"],
        "apply to --head posterior only",
        None,
    ),
    ("generate into a folder of files", ["dataset", "generate", "--out", "{FULL}"], "holds files but no manifest.json", None),
    ("experiments into a dataset", ["experiments", "run", "--out", "{DS}"], "holds files but no scale.json", None),
    ("demo into a dataset", ["demo", "--out", "{DS}"], "holds files but no demo_config.json", None),
    ("city generate into a dataset", ["city", "generate", "--out", "{DS}", "--force"], "is a dataset, deployment, experiments or demo folder", None),
    ("city tiles into a dataset", ["city", "tiles", "munich", "--out", "{DS}", "--force"], "is a dataset, deployment, experiments or demo folder", None),
    (
        "city tiles min above max",
        ["city", "tiles", "munich", "--out", "{NEW}", "--min-coverage", "0.9", "--max-coverage", "0.1"],
        "is above --max-coverage",
        "{NEW}",
    ),
    (
        "city import origin of a png",
        ["city", "import", "{DS}/buildings/0.png", "--out", "{NEW}.png", "--origin", "5,5"],
        "--origin applies to GeoJSON",
        "{NEW}.png",
    ),
    ("locate empty model", ["locate", "--data", "{DS}", "--map", "0", "--bs", "1", "--pathloss=-90", "--model", ""], "--model: empty", None),
    (
        "locate cells with data",
        ["locate", "--data", "{DS}", "--map", "0", "--bs", "1", "--pathloss=-90", "--cells", "1"],
        "--cells applies with --deployment only",
        None,
    ),
    (
        "locate estimator on a deployment",
        ["locate", "--deployment", "x", "--cells", "1", "--rss=-70", "--estimator", "median"],
        "--estimator applies with --data",
        None,
    ),
    (
        "toa sigma without a ToA model",
        ["evaluate", "--model", "knn,bayes", "--data", "{DS}", "--estimate", "true", "--toa-sigma", "5"],
        "--toa-sigma: no model of --model knn,bayes uses ToA ranges",
        None,
    ),
    (
        "output inside an experiments folder",
        ["evaluate", "--model", "knn", "--data", "{DS}", "--estimate", "true", "--json", "{EXP}/results/x.json", "--force"],
        "lies inside",
        "{EXP}/results/x.json",
    ),
    (
        "locate digits with an underscore",
        ["locate", "--data", "{DS}", "--map", "0", "--bs", "2_0", "--pathloss=-90"],
        "--bs: expected comma-separated integers",
        None,
    ),
    ("locate an empty item", ["locate", "--data", "{DS}", "--map", "0", "--bs", "1,,2", "--pathloss=-90,-91"], "--bs: expected comma-separated integers", None),
    (
        "locate other scripts' digits",
        ["locate", "--data", "{DS}", "--map", "0", "--bs", "\uff12\uff10", "--pathloss=-90"],
        "--bs: expected comma-separated integers",
        None,
    ),
    ("deploy home inside a dataset", ["deploy", "create", "x", "--home", "{DS}/homes"], "lies in", "{DS}/homes"),
    ("deploy home is a dataset", ["deploy", "list", "--home", "{DS}"], ": is ", None),
    ("deploy home is a file", ["deploy", "list", "--home", "{FILE}"], "is a file", None),
    ("serve database inside a dataset", ["serve", "--db", "sqlite:///{DS}/radioloc.db", "--home", "{NEW}"], "put the database elsewhere", "{DS}/radioloc.db"),
    ("serve database named as a folder", ["serve", "--db", "sqlite:///{DIR}/", "--home", "{NEW}"], "names a folder", "{NEW}"),
    ("serve home inside a dataset", ["serve", "--home", "{DS}/home"], "lies in", "{DS}/home"),
    ("file output written as a folder", ["train", "radii", "--model", "bayes", "--data", "{DS}", "--out", "{DIR}/radii/"], "names a folder", "{DIR}/radii"),
    ("figure in another format", ["deploy", "show", "x", "--figure", "{DIR}/x.jpg", "--home", "{NEW}"], "must end in .png", "{DIR}/x.jpg"),
    ("json under another suffix", ["evaluate", "--model", "knn", "--data", "{DS}", "--json", "{DIR}/r.txt"], "must end in .json", "{DIR}/r.txt"),
    ("radiounet eval empty sim", ["evaluate", "radiounet", "--data", "{DS}", "--sim", ""], "'' is not a simulation", None),
    ("unknown measurement", ["evaluate", "--model", "knn", "--data", "{DS}", "--measurement", "DPM,IRT3"], "unknown simulation 'IRT3'", None),
    ("split named twice", ["evaluate", "--model", "knn", "--data", "{DS}", "--split", "test,test"], "a split named twice", None),
    ("deploy localizer twice", ["deploy", "create", "x", "--localizers", "bayes,bayes", "--home", "{NEW}"], "each at most once", None),
]


@pytest.fixture
def places(small_dataset, tmp_path):
    root, _ = small_dataset
    (tmp_path / "file.txt").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "random.pt").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "exp" / "results").mkdir(parents=True)  # an experiments folder
    (tmp_path / "exp" / "scale.json").write_text("{}")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "summary.json").write_text('{"the user": "results"}')
    return {
        "{EXP}": str(tmp_path / "exp"),
        "{FULL}": str(tmp_path / "full"),
        "{DS}": str(root),
        "{FILE}": str(tmp_path / "file.txt"),
        "{DIR}": str(tmp_path / "empty"),
        "{NEW}": str(tmp_path / "new"),
        "{RAND}": str(tmp_path / "random.pt"),
    }


def fill(text: str, places: dict) -> str:
    for key, value in places.items():
        text = text.replace(key, value)
    return text


@pytest.mark.parametrize("name,argv,message,absent", CASES, ids=[case[0] for case in CASES])
def test_bad_input_is_a_one_line_error(places, name, argv, message, absent):
    result = CliRunner().invoke(app, [fill(arg, places) for arg in argv])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = result.output.strip().splitlines()  # progress lines on stdout may come first; the error is one line, last
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.output
    assert message in errors[0]
    if absent is not None:
        assert not os.path.exists(fill(absent, places)), f"{name}: wrote {fill(absent, places)}"


def test_errors_reach_the_installed_script_as_one_line_and_status_2(places):
    result = subprocess.run(
        [sys.executable, "-m", "radioloc.cli", "evaluate", "--model", "knn", "--data", places["{DS}"], "--limit", "0"], capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--limit" in result.stderr and result.stdout == ""


def _options(command, path=()):
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            yield from _options(sub, (*path, name))
    for param in command.params:
        yield " ".join(path), param


def test_every_option_says_what_it_is_and_how_it_is_bounded():
    for path, param in _options(get_command(app)):
        if param.param_type_name == "option" and param.name != "help":
            assert param.help, f"radioloc {path} {param.opts[0]}: no help text"
            if param.name in ("seed", "epochs", "epochs_first", "batch_size", "limit", "maps", "count", "candidates", "workers", "rays"):
                assert getattr(param, "min", None) is not None, f"radioloc {path} {param.opts[0]}: no declared range"


def test_required_options_are_marked_in_help():
    result = CliRunner().invoke(app, ["dataset", "generate", "--help"])
    assert result.exit_code == 0 and "required" in result.output


def test_version():
    from importlib.metadata import version

    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"radioloc {version('radioloc')}"


def test_a_locked_dataset_refuses_a_second_writer(small_dataset, tmp_path):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    before = sorted(p.name for p in (copy / "maps").iterdir())
    with folder_lock(copy, "dataset"):
        for argv in (["dataset", "generate", "--out", str(copy)], ["dataset", "estimate", str(copy)]):
            result = CliRunner().invoke(app, argv)
            assert result.exit_code == 2 and "another radioloc process" in result.output and str(copy) in result.output
    assert sorted(p.name for p in (copy / "maps").iterdir()) == before


@pytest.mark.parametrize("damaged,remade", [("DPM/true/1_2.png", "[1]"), ("buildings/2.png", "[2]"), ("TxRx.mat", "none")])
def test_a_damaged_file_is_found_repaired_and_remade_identically(small_dataset, tmp_path, damaged, remade):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(small_dataset[0], copy)
    runner = CliRunner()
    assert runner.invoke(app, ["dataset", "generate", "--out", str(copy)]).exit_code == 0  # records checksums
    target = copy / damaged
    original = target.read_bytes()
    target.write_bytes(original[:-10] + b"0123456789")
    result = runner.invoke(app, ["dataset", "generate", "--out", str(copy)])
    assert result.exit_code == 2 and damaged in result.output and "dataset ready" not in result.output
    result = runner.invoke(app, ["dataset", "verify", str(copy), "--repair"])
    assert result.exit_code == 0 and f"maps to remake: {remade}" in result.output
    result = runner.invoke(app, ["dataset", "generate", "--out", str(copy)])
    assert result.exit_code == 0, result.output
    assert target.read_bytes() == original  # the .mat too: its header holds no time of writing
    assert runner.invoke(app, ["dataset", "verify", str(copy)]).exit_code == 0
    runs = json.loads((copy / "manifest.json").read_text())["runs"]
    assert [run["maps_made"] for run in runs][-2:] == [0, 0 if remade == "none" else 1]  # every run is recorded


# Property: any list of ids and pathloss values is answered with a position on the map, or refused with a
# one-line RadiolocError; nothing else, never NaN.
values = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.floats(min_value=-160, max_value=-40))
ids = st.lists(st.integers(min_value=-3, max_value=20), min_size=0, max_size=7)


@pytest.fixture(scope="module")
def fitted_bayes(small_dataset, tmp_path_factory):
    """A Bayes localizer calibrated on the small dataset's true maps (the shipped ones refuse another scenario)."""
    from radioloc.localizers.bayes import BayesLocalizer

    root = small_dataset[0]
    localizer = BayesLocalizer().fit(load_localization(root, "train", "true"), load_localization(root, "val", "true"))
    path = localizer.save(tmp_path_factory.mktemp("bayes") / "calibration.safetensors")
    return localizer, path, load_localization(root, "custom", "true", maps=[0])


def test_train_radii_refits_the_radii_and_nothing_else(small_dataset, fitted_bayes, tmp_path):
    from radioloc.localizers.uncertainty import RadiusCalibration
    from radioloc.models.likelihood import LikelihoodCalibration

    out = tmp_path / "refit.safetensors"
    argv = ["train", "radii", "--model", str(fitted_bayes[1]), "--data", str(small_dataset[0]), "--estimate", "true", "--out", str(out), "--queries", "200"]
    refused = CliRunner().invoke(app, argv)  # the default --split holds the train maps its likelihood was counted on
    assert refused.exit_code == 2 and "its train maps (dataset seed 5) fitted --model" in refused.output and not out.exists(), refused.output
    result = CliRunner().invoke(app, [*argv, "--split", "val,test"])
    assert result.exit_code == 0, result.output
    before, after = LikelihoodCalibration.load(fitted_bayes[1]), LikelihoodCalibration.load(out)
    assert after.fingerprint() == before.fingerprint() and after.radius != before.radius  # the likelihood is untouched
    radii = RadiusCalibration.from_dict(after.radius)
    assert radii.uses_features and radii.maps == 2 and [entry["seed"] for entry in radii.fitted_on] == [5]


def test_shipped_models_refuse_radii_on_the_maps_that_trained_them(small_dataset):
    from radioloc.datasets.localization import load_localization
    from radioloc.localizers.radii import check_unseen_maps, model_seeds

    locunet, bayes = resolve_localizer("locunet:paper").localizer, resolve_localizer("bayes").localizer
    assert model_seeds(locunet) == {0, 9191} and model_seeds(bayes) == {0}  # the cards' seeds less the radii's own pool
    data = load_localization(small_dataset[0], "train,val", "true")  # seed 5: neither was fitted on it
    assert check_unseen_maps(locunet, data, "locunet:paper") and check_unseen_maps(bayes, data, "bayes")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bs=ids, pathloss=st.lists(values, min_size=0, max_size=7))
def test_query_validation_answers_or_refuses(fitted_bayes, bs, pathloss):
    localizer, _, scene = fitted_bayes
    try:
        queries = Queries.from_reports([0], [bs], [pathloss], scene.scenes)
    except RadiolocError as exc:
        assert "\n" not in str(exc)
        return
    estimate = localizer.locate(scene.with_queries(queries))
    assert np.isfinite(estimate.positions).all() and (estimate.positions >= 0).all() and (estimate.positions <= 255).all()
    assert np.isfinite(estimate.radius_95).all()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(bs=ids, pathloss=st.lists(st.floats(min_value=-200, max_value=50), min_size=0, max_size=7))
def test_locate_command_answers_or_refuses(small_dataset, fitted_bayes, bs, pathloss):
    argv = ["locate", "--data", str(small_dataset[0]), "--map", "0", "--estimate", "true", "--model", str(fitted_bayes[1]),
            "--bs", ",".join(map(str, bs)), f"--pathloss={','.join(map(str, pathloss))}"]  # fmt: skip
    result = CliRunner().invoke(app, argv)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.output.strip().splitlines() if not line.startswith("note: ")]  # a note on reports below the floor
    assert len(lines) == 1, result.output
    if result.exit_code == 0:
        assert "estimated position" in lines[0] and "nan" not in lines[0]
    else:
        assert result.exit_code == 2 and lines[0].startswith("error:"), result.output


def test_reports_below_the_noise_floor_are_read_as_the_floor_and_said_so():
    from radioloc.datasets.localization import below_floor_note, validate_queries
    from radioloc.propagation.graylevel import NOISE_FLOOR_DB

    note = below_floor_note([-140.0, -90.0, NOISE_FLOOR_DB])
    assert note is not None and "-140 dB" in note and "-90" not in note and "counts as the floor" in note
    assert below_floor_note([-90.0, NOISE_FLOOR_DB]) is None
    ids, pathloss = validate_queries(np.array([[0, 1]]), np.array([[-140.0, -90.0]]), 2, "q")
    assert ids.tolist() == [[0, 1]] and pathloss[0, 0] == np.float32(NOISE_FLOOR_DB) and pathloss[0, 1] == np.float32(-90.0)
