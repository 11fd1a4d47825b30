"""SIGINT / SIGTERM and full disks end a command with one line (exit 130 / 143 / 2), never a traceback, and keep
what was written (issue 32)."""

import signal
import subprocess
import sys
import time

import pytest

RADIOLOC = [sys.executable, "-m", "radioloc.cli"]


def _interrupt(argv, sig, after_s, tmp_path):
    process = subprocess.Popen([*RADIOLOC, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    time.sleep(after_s)
    process.send_signal(sig)
    out, err = process.communicate(timeout=120)
    return process.returncode, out + err


@pytest.mark.parametrize("sig,status,workers", [(signal.SIGINT, 130, "1"), (signal.SIGTERM, 143, "1"), (signal.SIGTERM, 143, "2")])
def test_a_signal_during_simulation_is_one_line(tmp_path, sig, status, workers):
    """``--workers 1`` runs the numba DPM kernels in this process: the signal lands in them; with 2, the command
    waits on its Dask workers (typer would turn the interrupt into a bare status 130)."""
    out = tmp_path / "ds"
    code, text = _interrupt(["dataset", "generate", "--out", str(out), "--maps", "40", "--workers", workers, "--seed", "5"], sig, 12.0, tmp_path)
    assert code == status, text
    assert "Traceback" not in text and "SystemError" not in text
    assert f"interrupted ({signal.Signals(sig).name})" in text
    # what was finished is kept: the same command resumes
    assert not list(out.rglob("*.tmp"))


def test_a_full_disk_names_the_file(tmp_path):
    """EFBIG under a file-size limit stands for a full disk (ENOSPC is not producible without root)."""
    script = (
        "import resource, sys; resource.setrlimit(resource.RLIMIT_FSIZE, (20000, 20000)); "
        "from radioloc.cli import main; sys.argv = ['radioloc'] + sys.argv[1:]; main()"
    )
    result = subprocess.run([sys.executable, "-c", script, "dataset", "generate", "--out", str(tmp_path / "ds"), "--maps", "1", "--workers", "1"],
                            capture_output=True, text=True, cwd=tmp_path, timeout=300)  # fmt: skip
    text = result.stdout + result.stderr
    assert result.returncode == 2, text
    assert "Traceback" not in text and "File too large" in text and str(tmp_path / "ds") in text
    assert "everything written before it is kept" in text


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_to_the_whole_process_group_is_one_line(tmp_path, sig, status):
    """Ctrl-C in a terminal (or a kill of the job) signals the whole process group: the command and its Dask
    workers alike. The command still ends with one line and its status, the workers print nothing, and none is
    left running."""
    import os

    out = tmp_path / "ds"
    argv = ["dataset", "generate", "--out", str(out), "--maps", "40", "--workers", "2", "--seed", "6"]
    process = subprocess.Popen([*RADIOLOC, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path, start_new_session=True)
    time.sleep(15.0)
    os.killpg(process.pid, sig)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == status, stdout + stderr
    assert "Traceback" not in stdout + stderr and "KeyboardInterrupt" not in stdout + stderr, stdout + stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: interrupted ({signal.Signals(sig).name})") and stderr.strip().endswith(errors[0]), stderr
    time.sleep(2.0)
    try:
        os.killpg(process.pid, 0)  # a process of the group still alive
        survivors = True
    except ProcessLookupError:
        survivors = False
    assert not survivors
