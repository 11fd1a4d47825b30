"""Dask distributed (radioloc.cluster): dataset generation, estimation and deployment builds give the same bytes
on one worker, on a local cluster and on an existing scheduler; a killed run resumes to them; a task that loses
its worker runs again; bad cluster options are one-line errors."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import small_config
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.cluster import ClusterConfig, run_tasks
from radioloc.datasets.builder import generate_dataset
from radioloc.errors import RadiolocError

RUN_DEPENDENT = {"manifest.json", ".radioloc.lock"}  # the run's own record (times, workers) and the lock file


def data_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name not in RUN_DEPENDENT}


def assert_same_files(a: Path, b: Path) -> None:
    fa, fb = data_files(a), data_files(b)
    assert sorted(fa) == sorted(fb)
    different = [name for name in fa if fa[name] != fb[name]]
    assert different == []


@pytest.fixture(scope="module")
def one_worker(small_dataset, tmp_path_factory):
    """The session's small dataset (made on 2 local Dask workers) made again without a cluster."""
    root = tmp_path_factory.mktemp("one") / "ds"
    generate_dataset(root, small_config(), workers=1, quiet=True)
    return root


@pytest.fixture(scope="module")
def scheduler():
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


def test_generation_is_byte_identical_on_any_number_of_workers(small_dataset, one_worker, scheduler, tmp_path):
    assert_same_files(small_dataset[0], one_worker)  # 2 local workers against none
    generate_dataset(tmp_path / "ds", small_config(), quiet=True, scheduler=scheduler)
    assert_same_files(tmp_path / "ds", one_worker)  # an existing cluster
    runs = __import__("json").loads((tmp_path / "ds" / "manifest.json").read_text())["runs"]
    assert runs[-1]["scheduler"] == scheduler and runs[-1]["maps_made"] == 3


KILLED_RUN = """
import sys
from conftest import small_config
from radioloc.datasets.builder import generate_dataset
generate_dataset(sys.argv[1], small_config(maps=5), workers=2, quiet=True)
"""


def test_a_killed_dask_run_leaves_no_worker_and_resumes_to_the_same_bytes(tmp_path):
    import psutil

    root = tmp_path / "ds"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (root / "maps" / "0.json").exists() and not (root / "maps" / "1.json").exists():
        assert time.time() < deadline and parent.poll() is None, "the run made no map"
        time.sleep(0.05)
    workers = psutil.Process(parent.pid).children(recursive=True)
    assert workers, "no worker processes"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    gone, alive = psutil.wait_procs(workers, timeout=30)
    for process in alive:
        process.kill()
    assert alive == [], "worker processes outlived the killed run"
    done = len(list((root / "maps").glob("*.json")))
    assert 1 <= done < 5
    generate_dataset(root, small_config(maps=5), workers=2, quiet=True)
    generate_dataset(tmp_path / "reference", small_config(maps=5), workers=1, quiet=True)
    assert_same_files(root, tmp_path / "reference")
    runs = __import__("json").loads((root / "manifest.json").read_text())["runs"]
    assert runs[-1]["maps_made"] == 5 - done


def test_a_task_whose_worker_dies_runs_again(tmp_path):
    marker = tmp_path / "attempts"

    def dies_the_first_time(x: int) -> int:
        with open(marker, "a") as handle:
            handle.write(f"{x}\n")
        if x == 2 and open(marker).read().count("2\n") == 1:
            os.kill(os.getpid(), signal.SIGKILL)  # the worker process dies mid-task
        return x * x

    results = run_tasks(dies_the_first_time, [(i,) for i in range(4)], ClusterConfig(workers=2), "squares", quiet=True)
    assert results == [0, 1, 4, 9]
    assert marker.read_text().count("2\n") == 2


def test_task_errors_and_results_keep_their_order(tmp_path):
    def fails_on_three(x: int) -> int:
        if x == 3:
            raise RadiolocError(f"map {x}: no room for the base stations")
        return -x

    seen = []
    assert run_tasks(fails_on_three, [(i,) for i in range(3)], ClusterConfig(workers=2), "t", quiet=True, on_result=lambda i, r: seen.append(i)) == [0, -1, -2]
    assert sorted(seen) == [0, 1, 2]
    with pytest.raises(RadiolocError, match="map 3: no room"):
        run_tasks(fails_on_three, [(i,) for i in range(5)], ClusterConfig(workers=2), "t", quiet=True)


def test_estimates_are_the_same_on_one_and_two_workers(small_dataset, tmp_path):
    from radioloc.models.estimate import estimate_dataset

    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        shutil.copytree(small_dataset[0], root)
        shutil.rmtree(root / "DPM" / "estimate", ignore_errors=True)
    stats_a = estimate_dataset(a, quiet=True, workers=1)
    stats_b = estimate_dataset(b, quiet=True, workers=2)
    assert stats_a["pixels"] == stats_b["pixels"] and stats_a["at_ue_positions"] == stats_b["at_ue_positions"]
    np.testing.assert_array_equal(stats_a["difference_sample_db"], stats_b["difference_sample_db"])
    estimates = sorted(p.name for p in (a / "DPM" / "estimate").glob("*.png"))
    assert len(estimates) == 3 * 12
    assert all((a / "DPM" / "estimate" / n).read_bytes() == (b / "DPM" / "estimate" / n).read_bytes() for n in estimates)


def test_a_deployment_built_on_two_workers_has_the_same_arrays(deployment_home, tmp_path):
    from deploy_spec import SMALL_DEPLOYMENT

    from radioloc.deploy.build import build_deployment
    from radioloc.deploy.deployment import DeploymentStore

    build_deployment(DeploymentStore(tmp_path), SMALL_DEPLOYMENT, workers=2, quiet=True)
    for name in ("maps", "truth", "buildings", "obstacles"):
        built = (tmp_path / "deployments" / SMALL_DEPLOYMENT.id / f"{name}.npy").read_bytes()
        assert built == (deployment_home / "deployments" / SMALL_DEPLOYMENT.id / f"{name}.npy").read_bytes(), name


@pytest.mark.parametrize(
    "argv,message",
    [
        (["dataset", "generate", "--out", "{tmp}/x", "--scheduler", "localhost:8786"], "--scheduler"),
        (["dataset", "estimate", "{tmp}", "--scheduler", "tcp://a b"], "--scheduler"),
        (["dataset", "generate", "--out", "{tmp}/y", "--maps", "1", "--scheduler", "tcp://127.0.0.1:9"], "cannot reach the Dask scheduler"),
    ],
)
def test_bad_cluster_options_are_one_line_errors(tmp_path, argv, message):
    result = CliRunner().invoke(app, [a.replace("{tmp}", str(tmp_path)) for a in argv])
    assert result.exit_code == 2 and message in result.output, result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "y" / "maps").exists()  # nothing made


def test_a_lost_scheduler_is_a_one_line_error():
    import logging
    import threading

    from distributed import LocalCluster

    def slow(x: int) -> int:
        time.sleep(1.0)
        return x

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None, silence_logs=logging.CRITICAL)
    threading.Timer(2.5, cluster.close).start()  # the scheduler goes away while tasks run
    with pytest.raises(RadiolocError, match="the Dask scheduler .* went away; run the command again to resume"):
        run_tasks(slow, [(i,) for i in range(20)], ClusterConfig(scheduler=cluster.scheduler_address), "slow", quiet=True)
