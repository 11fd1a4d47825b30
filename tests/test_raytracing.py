"""Sionna RT backend on small scenes: free space on an empty map, a wall's shadow, geometry and errors.

CI installs Debian's libllvm19, so these run there (``.ci/run``)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from radioloc.errors import RadiolocError
from radioloc.propagation.dpm import free_space_loss_db
from radioloc.propagation.raytracing import RayTracer, RayTracingConfig

CONFIG = RayTracingConfig(samples_per_tx=1_000_000, max_depth=2)


@pytest.fixture(scope="module")
def tracer():
    return RayTracer(CONFIG)


def _distance_3d(tx, size=256):
    rows, cols = np.mgrid[0:size, 0:size]
    flat = np.hypot(rows - tx[0], cols - tx[1])
    return np.hypot(flat, CONFIG.tx_height_m - CONFIG.rx_height_m)


def test_empty_map_is_free_space_plus_a_ground_reflection(tracer):
    tx = (128, 100)
    pathloss = tracer.scene(np.zeros((256, 256), np.uint8)).pathloss(np.array([tx]))[0]
    assert pathloss.shape == (256, 256) and not np.isnan(pathloss).any()
    # averaged over the cells of a ring: the direct path, plus at most as much again from the ground
    distance = _distance_3d(tx)
    ring = (distance > 15) & (distance < 60)
    excess = pathloss[ring] + free_space_loss_db(distance[ring])
    assert -1.0 < np.median(excess) < 3.5
    # the strongest cell is the Tx's own, and the map is brighter near the Tx than far from it
    assert np.unravel_index(np.nanargmax(pathloss), pathloss.shape) in {(r, c) for r in (128, 129) for c in (100, 101)}
    assert np.median(pathloss[distance < 30]) > np.median(pathloss[(distance > 90) & (distance < 120)]) + 8


def test_a_wall_casts_a_shadow_and_buildings_carry_no_value(tracer):
    buildings = np.zeros((256, 256), np.uint8)
    buildings[120:136, 20:236] = 1  # a 16 m thick, 216 m long block across the map
    pathloss = tracer.scene(buildings).pathloss(np.array([(60, 128)]))[0]
    assert np.isnan(pathloss[buildings == 1]).all() and not np.isnan(pathloss[buildings == 0]).any()
    in_front = pathloss[90:110, 108:148]
    behind = pathloss[170:190, 108:148]
    received = lambda a: np.median(np.where(np.isfinite(a), a, -200.0))  # noqa: E731 (no ray = very weak)
    assert received(in_front) > received(behind) + 20


def test_cars_are_obstacles_and_transmitters_must_be_outside(tracer):
    buildings = np.zeros((256, 256), np.uint8)
    cars = np.zeros((256, 256), np.uint8)
    cars[50:52, 60:65] = 1
    scene = tracer.scene(buildings, cars)
    with pytest.raises(RadiolocError, match="inside an obstacle"):
        scene.pathloss(np.array([(50, 61)]))
    with pytest.raises(RadiolocError, match="outside the 256 x 256 map"):
        scene.pathloss(np.array([(256, 3)]))
    pathloss = scene.pathloss(np.array([(100, 100), (30, 200)]))
    assert pathloss.shape == (2, 256, 256) and np.isnan(pathloss[:, cars == 1]).all()


def test_bad_cell_size_is_one_line(tracer):
    with pytest.raises(RadiolocError, match="cell_size_m must be 1, 2 or 4"):
        RayTracer(RayTracingConfig(cell_size_m=3)).scene(np.zeros((256, 256)))


@pytest.mark.parametrize(
    "library, message",
    [("/nonexistent/libLLVM-19.so", "file not found"), ("{tmp}/llvm19-like-folder/libLLVM-15.so", "needs libLLVM 19")],
)
def test_missing_or_wrong_libllvm_says_what_to_install(tmp_path, library, message):
    # A "19" elsewhere in the path (CI's /tmp/pytest-of-root/pytest-19/...) must not pass for libLLVM 19.
    library = library.format(tmp=tmp_path)
    if library.startswith(str(tmp_path)):
        Path(library).parent.mkdir()
        Path(library).write_bytes(b"")
    environment = {**os.environ, "DRJIT_LIBLLVM_PATH": library}
    out = tmp_path / "data"
    result = subprocess.run(
        [sys.executable, "-m", "radioloc.cli", "dataset", "generate", "--out", str(out), "--maps", "1", "--sims", "IRT2"],
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.strip().splitlines() + result.stdout.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0] and "apt-get install libllvm19" in lines[0]
    assert not out.exists()  # failed before any work


@pytest.mark.parametrize(
    "name, version",
    [("libLLVM-19.so", 19), ("libLLVM.so.19.1", 19), ("libLLVM-15.so", 15), ("libLLVM-14.0.6.so.1", 14), ("libfoo.so", None)],
)
def test_llvm_version_is_read_from_the_library_name_not_its_folders(tmp_path, name, version):
    from radioloc.sionna_runtime import llvm_major_version

    folder = tmp_path / "pytest-19"
    folder.mkdir()
    (folder / name).write_bytes(b"")
    assert llvm_major_version(str(folder / name)) == version
    (folder / "link.so").symlink_to(folder / name)  # a link is judged by the file it points at
    assert llvm_major_version(str(folder / "link.so")) == version
    llvm_tree = tmp_path / "llvm-19" / "lib"
    llvm_tree.mkdir(parents=True)
    (llvm_tree / "libLLVM.so").write_bytes(b"")
    assert llvm_major_version(str(llvm_tree / "libLLVM.so")) == 19


def test_ray_traced_simulations_are_added_to_a_dataset_with_heights(tmp_path):
    from radioloc.datasets import layout
    from radioloc.datasets.builder import DatasetConfig, generate_dataset
    from radioloc.datasets.protocol import ProtocolConfig
    from radioloc.io import atomic_write_npz, atomic_write_png

    tiles = tmp_path / "tiles"
    buildings = np.zeros((256, 256), np.uint8)
    buildings[100:140, 60:200] = 1
    atomic_write_png(tiles / "0.png", buildings * 255)
    atomic_write_npz(tiles / "0.heights.npz", heights=np.where(buildings == 1, 12.0, np.nan).astype(np.float32))
    protocol = ProtocolConfig(candidates_per_map=6, sets_per_map=2, ues_per_map=5)
    root = tmp_path / "ds"
    config = DatasetConfig(buildings_dir=str(tiles), protocol=protocol, simulations=("IRT2", "IRT2cars"), raytracing=RayTracingConfig(samples_per_tx=200_000))
    manifest = generate_dataset(root, config, workers=1, quiet=True)
    assert manifest["simulations"] == ["DPM", "IRT2", "IRT2cars"]
    assert json.loads(layout.map_record_path(root, 0).read_text())["simulations"] == ["DPM", "IRT2", "IRT2cars"]
    with np.load(layout.heights_path(root, 0)) as data:
        assert np.nanmax(data["heights"]) == 12.0
    for sim in ("IRT2", "IRT2cars"):
        gray = layout.read_gray_png(layout.radio_map_path(root, sim, "true", 0, 5))
        assert gray.shape == (256, 256) and gray.max() > 100 and (gray[buildings == 1] == 0).all()
    cars = layout.read_gray_png(layout.cars_path(root, 0)) > 0
    assert (layout.read_gray_png(layout.radio_map_path(root, "IRT2cars", "true", 0, 0))[cars] == 0).all()
