"""schemathesis over the service's whole OpenAPI document: no 5xx, every 4xx in Google's envelope
(``benchmarks/service_fuzz.py`` runs the same harness with thousands of requests)."""

from __future__ import annotations

import pytest
from deploy_spec import SMALL_DEPLOYMENT

from radioloc.service.app import Settings, create_app
from radioloc.service.fuzzing import envelope_problem, fuzz


def test_envelope_check_itself():
    good = {"error": {"code": 404, "message": "m", "errors": [{"domain": "global", "reason": "notFound", "message": "m"}]}}
    assert envelope_problem(404, good) is None
    assert "envelope fields wrong" in envelope_problem(400, good)
    assert "not the error envelope" in envelope_problem(400, {"detail": "x"})


@pytest.mark.parametrize("examples", [6])
def test_fuzzing_finds_no_server_error(deployment_home, tmp_path, examples):
    home = tmp_path / "home"
    (home / "deployments").mkdir(parents=True)
    (home / "deployments" / SMALL_DEPLOYMENT.id).symlink_to(deployment_home / "deployments" / SMALL_DEPLOYMENT.id)
    app = create_app(Settings(home=home, run_jobs=False))
    db = app.state.radioloc.db
    _, admin = db.create_key("admin", "admin")
    _, client = db.create_key("client", "client", SMALL_DEPLOYMENT.id)
    report = fuzz(app, [admin, client, None, "rl_not-a-key"], examples)
    assert report.failures == [], report.failures
    assert report.requests >= 150 and len(report.by_operation) >= 18
    assert report.by_status[200] > 10 and sum(v for k, v in report.by_status.items() if 400 <= k < 500) > 50
    assert (deployment_home / "deployments" / SMALL_DEPLOYMENT.id / "deployment.json").is_file()  # a fuzzed DELETE removes the link only
