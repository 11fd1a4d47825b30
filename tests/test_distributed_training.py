"""Training under torchrun (radioloc.training.distributed): 2 processes (DDP over gloo on the CPU) follow the
1-process run with the same global batch and seed, write the run's files once, and resume after a kill.

Stated tolerance: per epoch, the mean training loss within a relative 1e-3 and the validation error within
0.01 m (LocUNet) or 0.01 dB (RadioUNet) of the 1-process run. Both run in fp32; what differs is only the order of
floating-point sums (each process convolves half the batch, gloo sums the two gradients)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TOLERANCE_LOSS = 1e-3
TOLERANCE_VAL = 0.01

LOCUNET_SCRIPT = """
import sys, torch
from radioloc.models.runtime import Runtime
from radioloc.training.locunet import LocUNetTrainConfig, train_locunet
config = LocUNetTrainConfig.for_preset("cpu", estimate="true", epochs=int(sys.argv[3]), samples_per_epoch=64, batch_size=16, val_queries=40, seed=3)
train_locunet(sys.argv[1], sys.argv[2], config, Runtime(torch.device("cpu"), None), quiet=True)
"""

RADIOUNET_SCRIPT = """
import sys, torch
from radioloc.models.runtime import Runtime
from radioloc.training.radiounet import RadioUNetTrainConfig, train_radiounet
config = RadioUNetTrainConfig(preset="cpu-small", epochs_first=2, epochs_second=1, samples_per_epoch=16, batch_size=8, val_samples=8, seed=2)
train_radiounet(sys.argv[1], sys.argv[2], config, Runtime(torch.device("cpu"), None), quiet=True)
"""


def run(script: str, *args: str, nproc: int = 1, wait: bool = True):
    """The script in a file, run by Python or by torchrun with ``nproc`` processes (its own process group)."""
    path = Path(args[1]).parent / f"script_{abs(hash(script))}.py"
    path.write_text(script)
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}"] if nproc > 1 else [sys.executable]
    process = subprocess.Popen([*launcher, str(path), *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    if not wait:
        return process
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output[-3000:]
    return output


def history(out: Path) -> list[dict]:
    return json.loads((out / "summary.json").read_text())["history"]


def assert_same_curve(a: list[dict], b: list[dict], val_key: str) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        loss_key = next(k for k in x if k.startswith("train_"))
        assert y[loss_key] == pytest.approx(x[loss_key], rel=TOLERANCE_LOSS)
        assert abs(y[val_key] - x[val_key]) <= TOLERANCE_VAL


def test_two_processes_follow_one_and_resume_after_a_kill(small_dataset, tmp_path):
    root = str(small_dataset[0])
    run(LOCUNET_SCRIPT, root, str(tmp_path / "one"), "3")
    run(LOCUNET_SCRIPT, root, str(tmp_path / "two"), "3", nproc=2)
    one, two = history(tmp_path / "one"), history(tmp_path / "two")
    assert_same_curve(one, two, "val_mae_m")
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["processes"] == 2
    # the same configuration file as a 1-process run
    assert (tmp_path / "one" / "train_config.json").read_text() == (tmp_path / "two" / "train_config.json").read_text()

    killed = tmp_path / "killed"
    process = run(LOCUNET_SCRIPT, root, str(killed), "3", nproc=2, wait=False)
    deadline = time.time() + 300
    while not (killed / "last.pt").exists():
        assert time.time() < deadline and process.poll() is None, process.stdout.read()[-3000:] if process.poll() is not None else "no epoch finished"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # torchrun and both trainers
    process.wait()
    assert not (killed / "summary.json").exists()
    run(LOCUNET_SCRIPT, root, str(killed), "3", nproc=2)
    assert_same_curve(two, history(killed), "val_mae_m")


def test_radiounet_on_two_processes_follows_one(small_dataset, tmp_path):
    root = str(small_dataset[0])
    run(RADIOUNET_SCRIPT, root, str(tmp_path / "one"))
    run(RADIOUNET_SCRIPT, root, str(tmp_path / "two"), nproc=2)
    assert_same_curve(history(tmp_path / "one"), history(tmp_path / "two"), "val_rmse_db")


def test_nproc_needs_a_batch_it_can_split(small_dataset, tmp_path):
    from typer.testing import CliRunner

    from radioloc.cli import app

    args = ["train", "locunet", "--data", str(small_dataset[0]), "--out", str(tmp_path / "r"), "--estimate", "true", "--batch-size", "15", "--nproc", "2"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "--batch-size 15 must be a multiple of --nproc 2" in result.output
    assert not (tmp_path / "r").exists()
