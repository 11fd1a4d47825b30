"""Every RADIOLOC_* misconfiguration of the service is one line at start (exit 2), never a worker that dies or a 500
on every request later (issue 32)."""

import pytest
from typer.testing import CliRunner

from radioloc.cli import app
from radioloc.errors import RadiolocError
from radioloc.service.environment import service_environment


def test_a_valid_environment_is_read_typed(tmp_path):
    env = service_environment({"RADIOLOC_HOME": str(tmp_path), "RADIOLOC_WORKER_THREADS": "2", "RADIOLOC_RUN_JOBS": "0", "RADIOLOC_DB": "", "PATH": "/bin"})
    assert (env.RADIOLOC_HOME, env.RADIOLOC_WORKER_THREADS, env.RADIOLOC_RUN_JOBS, env.RADIOLOC_DB) == (tmp_path, 2, False, None)
    assert service_environment({}).RADIOLOC_RUN_JOBS is True


@pytest.mark.parametrize(
    "name,value,message",
    [
        ("RADIOLOC_WORKER_THREADS", "abc", "must be a whole number of threads"),
        ("RADIOLOC_WORKER_THREADS", "0", "greater than or equal to 1"),
        ("RADIOLOC_WORKER_THREADS", "-4", "must be a whole number of threads"),
        ("RADIOLOC_WORKER_THREADS", "99999", "less than or equal to 1024"),
        ("RADIOLOC_RUN_JOBS", "yes", "must be 0 or 1"),
        ("RADIOLOC_DB", "sqlite://", "in-memory SQLite database is not shared"),
        ("RADIOLOC_DB", "sqlite:///:memory:", "in-memory SQLite database is not shared"),
        ("RADIOLOC_DB", "sqlite:///file:x?mode=memory&cache=shared", "in-memory SQLite database is not shared"),
        ("RADIOLOC_DB", "mysql://x", "expected sqlite:///PATH or postgresql://"),
        ("RADIOLOC_DEMO_KEY", "short", "an API key is 16 to 128"),
        ("RADIOLOC_HOMEDIR", "/tmp", "unknown variable"),
    ],
)
def test_serve_refuses_a_bad_variable_at_start(tmp_path, name, value, message):
    with pytest.raises(RadiolocError, match=name):
        service_environment({name: value})
    result = CliRunner().invoke(app, ["serve", "--home", str(tmp_path / "home"), "--port", "1"], env={name: value})
    assert result.exit_code == 2 and message in result.output and name in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "home").exists()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_serve_refuses_an_in_memory_database_option(tmp_path, url):
    result = CliRunner().invoke(app, ["serve", "--home", str(tmp_path), "--db", url, "--port", "1"])
    assert result.exit_code == 2 and "--db" in result.output and "in-memory" in result.output


def test_serve_refuses_an_empty_host(tmp_path):
    result = CliRunner().invoke(app, ["serve", "--home", str(tmp_path), "--host", ""])
    assert result.exit_code == 2 and "--host: empty" in result.output
