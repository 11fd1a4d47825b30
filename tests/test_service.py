"""The localization service, on SQLite and on PostgreSQL: the Geolocation API, batch locate, keys and roles,
the error envelope, uploads, build jobs, and accuracy through the API against the locator itself."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest
from deploy_spec import SMALL_DEPLOYMENT
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from radioloc.deploy.deployment import DeploymentStore
from radioloc.deploy.serving import DeploymentLocator
from radioloc.service.app import Settings, create_app
from radioloc.service.db import hash_key

POSTGRES = os.environ.get("RADIOLOC_TEST_POSTGRES")
DEPLOYMENT = SMALL_DEPLOYMENT.id


def _postgres_url() -> str:
    """A fresh schema-less database per test module: drop every table of the test database first."""
    engine = create_engine(POSTGRES.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS api_keys, jobs, deployments, alembic_version CASCADE"))
    engine.dispose()
    return POSTGRES


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def service(request, deployment_home, tmp_path_factory):
    if request.param == "postgresql":
        if not POSTGRES:
            pytest.fail("RADIOLOC_TEST_POSTGRES is not set: `make test` starts PostgreSQL with scripts/test-postgres.sh")
        url = _postgres_url()
    else:
        url = None
    home = tmp_path_factory.mktemp("service")
    (home / "deployments").mkdir()
    (home / "deployments" / DEPLOYMENT).symlink_to(deployment_home / "deployments" / DEPLOYMENT)
    app = create_app(Settings(home=home, db_url=url, run_jobs=False))
    db = app.state.radioloc.db
    _, admin = db.create_key("admin", "admin")
    _, client = db.create_key("client", "client", DEPLOYMENT)
    _, roaming = db.create_key("roaming client", "client", None)
    with TestClient(app) as client_app:
        yield {"client": client_app, "app": app, "admin": admin, "key": client, "roaming": roaming, "home": home, "db": request.param}


def _phones(deployment_home, n=200, seed=77):
    deployment = DeploymentStore(deployment_home).load(DEPLOYMENT)
    positions, ids, values = deployment.survey(n, seed)
    cells = [[int(deployment.cell_ids[b]) for b in row if b >= 0] for row in ids]
    pathloss = [[float(v) for v in row if np.isfinite(v)] for row in values]
    return deployment, positions, cells, pathloss


def test_operations_routes_need_no_key(service):
    c = service["client"]
    assert c.get("/__lbheartbeat__").status_code == 200
    beat = c.get("/__heartbeat__")
    assert beat.status_code == 200 and beat.json()["checks"] == {"database": "ok", "storage": "ok"}
    assert c.get("/__version__").json()["name"] == "radioloc"
    assert c.get("/openapi.json").json()["paths"]["/v1/geolocate"]
    assert c.get("/docs").status_code == 200 and c.get("/").status_code == 200
    assert "app.js" in c.get("/").text and c.get("/static/app.js").status_code == 200


def test_geolocate_answers_with_the_95_percent_radius(service, deployment_home):
    c, key = service["client"], service["key"]
    deployment = DeploymentStore(deployment_home).load(DEPLOYMENT)
    free = np.argwhere(np.asarray(deployment.obstacles) == 0)
    row, col = (int(v) for v in free[np.argmin(np.hypot(free[:, 0] - 256, free[:, 1] - 300))])
    lat, lng = deployment.georef.to_latlng(row, col)
    heard = c.get(f"/v1/deployments/{DEPLOYMENT}/reports", params={"lat": float(lat), "lng": float(lng), "key": key})
    assert heard.status_code == 200
    towers = heard.json()["cellTowers"]
    assert towers == [{"cellId": r["cellId"], "signalStrength": r["signalStrength"]} for r in deployment.reports_at(row, col)]
    answer = c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{**t, "mobileCountryCode": 262, "age": 0} for t in towers], "considerIp": False})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"location", "accuracy", "radioloc"}
    extension = body["radioloc"]
    assert body["accuracy"] == extension["accuracy_95"] >= extension["accuracy_68"] > 0
    assert extension["deployment"] == DEPLOYMENT and extension["localizer"] == "bayes"
    back = deployment.georef.to_grid(body["location"]["lat"], body["location"]["lng"])
    assert np.allclose([float(back[0]), float(back[1])], [extension["row_m"], extension["col_m"]], atol=0.01)
    assert extension["x_m"] == pytest.approx(extension["col_m"] - 255.5, abs=0.01) and extension["y_m"] == pytest.approx(255.5 - extension["row_m"], abs=0.01)
    # the other localizer, by the extension field
    other = c.post(f"/v1/geolocate?key={key}", json={"cellTowers": towers, "radioloc": {"localizer": "locunet"}})
    assert other.status_code == 200 and other.json()["radioloc"]["localizer"] == "locunet"


def test_accuracy_through_the_api_equals_the_locator(service, deployment_home):
    """Batch locate and concurrent single geolocate calls (micro-batched) give the locator's own answers."""
    c, key = service["client"], service["key"]
    deployment, positions, cells, pathloss = _phones(deployment_home)
    width = max(len(x) for x in cells)
    ids = np.array([x + [-1] * (width - len(x)) for x in cells])
    values = np.array([x + [np.nan] * (width - len(x)) for x in pathloss])
    direct = DeploymentLocator(deployment).locate(ids, values)
    batch = c.post(f"/v1/deployments/{DEPLOYMENT}/locate?key={key}", json={"reports": [{"cells": a, "pathloss_db": b} for a, b in zip(cells, pathloss)]})
    assert batch.status_code == 200, batch.text
    got = np.array([[r["row_m"], r["col_m"]] for r in batch.json()["results"]])
    assert np.abs(got - direct.positions).max() <= 0.01
    api_mae = np.hypot(*(got - positions).T).mean()
    assert abs(api_mae - np.hypot(*(direct.positions - positions).T).mean()) <= 0.01

    app = service["app"]

    async def concurrent():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            towers = [[{"cellId": i, "signalStrength": p + 23.0} for i, p in zip(a, b)] for a, b in zip(cells[:40], pathloss[:40])]
            responses = await asyncio.gather(*[client.post(f"/v1/geolocate?key={key}", json={"cellTowers": t}) for t in towers])
        return [r.json()["radioloc"] for r in responses]

    single = asyncio.run(concurrent())
    assert np.abs(np.array([[s["row_m"], s["col_m"]] for s in single]) - direct.positions[:40]).max() <= 0.01


def test_batch_reports_without_a_known_cell_get_an_error_entry(service):
    c, key = service["client"], service["key"]
    response = c.post(
        f"/v1/deployments/{DEPLOYMENT}/locate?key={key}",
        json={"reports": [{"cells": [999999], "pathloss_db": [-90.0]}, {"cells": [1, 2], "pathloss_db": [-90.0, -100.0]}]},
    )
    assert response.status_code == 200
    first, second = response.json()["results"]
    assert first["error"].startswith("notFound") and first["lat"] is None
    assert second["error"] is None and second["accuracy_95"] > 0
    for localizer in ("bayes", "locunet"):  # the posterior on 1 m pixels, the quasi-heatmap on 4 m cells
        body = {"reports": [{"cells": [1, 2], "pathloss_db": [-90.0, -100.0]}], "heatmap": True, "localizer": localizer}
        heat = c.post(f"/v1/deployments/{DEPLOYMENT}/locate?key={key}", json=body)
        assert heat.status_code == 200 and heat.json()["heatmap"]["size"] == 256 and len(heat.json()["heatmap"]["png_base64"]) > 100, heat.text


def _envelope(response, status: int, reason: str, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["errors"][0]["reason"] == reason and error["errors"][0]["domain"] == "global"
    for word in words:
        assert word in error["message"], error["message"]


def test_errors_come_in_googles_envelope(service):
    c, key, admin = service["client"], service["key"], service["admin"]
    _envelope(c.post("/v1/geolocate", json={}), 400, "keyInvalid", "required")
    _envelope(c.post("/v1/geolocate?key=rl_nope", json={}), 400, "keyInvalid")
    _envelope(c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": "x", "signalStrength": -60}]}), 400, "parseError", "cellTowers.0.cellId")
    _envelope(c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 1}]}), 400, "parseError", "cellTowers.0.signalStrength")
    _envelope(c.post(f"/v1/geolocate?key={key}", content=b"{oops", headers={"content-type": "application/json"}), 400, "parseError", "JSON")
    _envelope(c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 1, "signalStrength": 50}]}), 400, "parseError", "signalStrength")
    _envelope(c.post(f"/v1/geolocate?key={key}", json={"cellTowers": []}), 404, "notFound", "no cell")
    _envelope(
        c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 424242, "signalStrength": -70}]}), 404, "notFound", "none of the reported cells"
    )
    _envelope(
        c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 1, "signalStrength": -70}], "radioloc": {"deployment": "other"}}),
        403,
        "insufficientPermissions",
    )
    _envelope(
        c.post(f"/v1/geolocate?key={service['roaming']}", json={"cellTowers": [{"cellId": 1, "signalStrength": -70}]}), 400, "parseError", "radioloc.deployment"
    )
    _envelope(
        c.post(f"/v1/geolocate?key={admin}", json={"cellTowers": [{"cellId": 1, "signalStrength": -70}], "radioloc": {"deployment": "missing"}}),
        404,
        "notFound",
        "missing",
    )
    _envelope(
        c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 1, "signalStrength": -70}], "radioloc": {"localizer": "knn"}}),
        400,
        "parseError",
        "localizer",
    )
    _envelope(
        c.post(f"/v1/geolocate?key={key}", content=b"[" + b"0," * 3_000_000 + b"0]", headers={"content-type": "application/json"}), 413, "requestTooLarge"
    )
    # a chunked body declares no length: it is read up to the limit, then refused; one under the limit reaches the route
    _envelope(
        c.post(f"/v1/geolocate?key={key}", content=iter([b"[" + b"0," * 1_000_000] * 3 + [b"0]"]), headers={"content-type": "application/json"}),
        413,
        "requestTooLarge",
    )
    chunked = c.post(f"/v1/geolocate?key={key}", content=iter([b'{"cellTowers": ', b"[]}"]), headers={"content-type": "application/json"})
    _envelope(chunked, 404, "notFound", "no cell")
    _envelope(
        c.post(f"/v1/deployments/{DEPLOYMENT}/locate?key={key}", json={"reports": [{"cells": [1], "pathloss_db": [-90.0, -80.0]}]}),
        400,
        "parseError",
        "reports.0",
    )
    _envelope(
        c.post(f"/v1/geolocate?key={key}", json={"cellTowers": [{"cellId": 1, "signalStrength": -70}, {"cellId": 1, "signalStrength": -80}]}),
        400,
        "parseError",
        "cellTowers.cellId: cell 1 is listed twice",
    )
    _envelope(c.post(f"/v1/deployments/{DEPLOYMENT}/locate?key={key}", json={"reports": [{"cells": [1, 2], "pathloss_db": [-90.0, -80.0]}, {"cells": [2, 2], "pathloss_db": [-90.0, -80.0]}]}),
              400, "parseError", "reports.1.cells: cell 2 is listed twice")  # fmt: skip
    _envelope(
        c.post(f"/v1/deployments/{DEPLOYMENT}/locate?key={key}", json={"reports": [{"cells": [1], "pathloss_db": [-90.0]}] * 10_001}),
        400,
        "parseError",
        "reports",
    )
    _envelope(c.get(f"/v1/deployments/{DEPLOYMENT}/reports", params={"lat": 10.0, "lng": 10.0, "key": key}), 400, "parseError", "outside")
    _envelope(c.get("/v1/nothing-here"), 404, "notFound")
    _envelope(c.delete("/__version__"), 405, "methodNotAllowed")


def test_roles_and_routes_without_keys(service):
    c, key, admin = service["client"], service["key"], service["admin"]
    schema = c.get("/openapi.json").json()
    open_routes = {"/__heartbeat__", "/__lbheartbeat__", "/__version__"}
    for path, methods in schema["paths"].items():
        for method in methods:
            url = path.replace("{deployment_id}", DEPLOYMENT).replace("{job_id}", "1").replace("{key_id}", "1").replace("{name}", "x.csv")
            response = c.request(method.upper(), url, params={"lat": 48.0, "lng": 11.0})
            if path in open_routes:
                assert response.status_code == 200, path
            else:
                assert response.status_code in (400, 413), (method, path, response.status_code)
                assert response.json()["error"]["errors"][0]["reason"] in ("keyInvalid", "parseError"), (method, path)
    for method, path in (("GET", "/v1/deployments"), ("GET", f"/v1/deployments/{DEPLOYMENT}"), ("DELETE", f"/v1/deployments/{DEPLOYMENT}"),
                         ("GET", "/v1/jobs"), ("GET", "/v1/keys"), ("PUT", "/v1/uploads/x.csv"), ("POST", "/v1/deployments"), ("POST", "/v1/keys")):  # fmt: skip
        _envelope(c.request(method, path, params={"key": key}, json={}), 403, "insufficientPermissions", "admin key")
    listed = c.get("/v1/deployments", params={"key": admin}).json()
    assert [d["id"] for d in listed] == [DEPLOYMENT] and listed[0]["state"] == "ready" and listed[0]["center"]["lat"] == pytest.approx(48.1372, abs=1e-4)
    assert c.get(f"/v1/deployments/{DEPLOYMENT}", params={"key": admin}).json()["base_stations"] == 9


def test_keys_are_stored_hashed_and_shown_once(service):
    c, admin = service["client"], service["admin"]
    made = c.post("/v1/keys", params={"key": admin}, json={"name": "ops", "role": "client", "deployment_id": DEPLOYMENT})
    assert made.status_code == 201
    secret = made.json()["key"]
    assert secret.startswith("rl_") and len(secret) > 40
    engine = service["app"].state.radioloc.db.engine
    with engine.connect() as connection:
        stored = [tuple(row) for row in connection.execute(text("SELECT name, key_hash FROM api_keys"))]
    assert all(secret not in value for row in stored for value in row) and ("ops", hash_key(secret)) in stored
    assert all(k["key"] is None for k in c.get("/v1/keys", params={"key": admin}).json())
    assert c.get("/v1/whoami", params={"key": secret}).json() == {"role": "client", "deployment_id": DEPLOYMENT, "name": "ops"}
    _envelope(c.post("/v1/keys", params={"key": admin}, json={"name": "x", "role": "client", "deployment_id": "nope"}), 404, "notFound")
    scoped_admin = c.post("/v1/keys", params={"key": admin}, json={"name": "x", "role": "admin", "deployment_id": DEPLOYMENT})
    _envelope(scoped_admin, 400, "parseError", "scopes client keys")  # an admin key would ignore the scope
    for path in ("/v1/jobs/99999999999999999999999", "/v1/keys/99999999999999999999999"):  # beyond a 64-bit row id
        method = "GET" if "jobs" in path else "DELETE"
        _envelope(c.request(method, path, params={"key": admin}), 400, "parseError")
    huge_cell = {"reports": [{"cells": [2**63], "pathloss_db": [-90.0]}]}
    _envelope(c.post(f"/v1/deployments/{DEPLOYMENT}/locate", params={"key": admin}, json=huge_cell), 400, "parseError")
    assert c.delete(f"/v1/keys/{made.json()['id']}", params={"key": admin}).status_code == 204
    _envelope(c.get("/v1/whoami", params={"key": secret}), 400, "keyInvalid")


def test_uploads_stay_in_the_uploads_folder(service):
    c, admin, home = service["client"], service["admin"], service["home"]
    for name in ("..", ".hidden", "a b", "x%2F..%2F..%2Fescape"):
        response = c.put(f"/v1/uploads/{name}", params={"key": admin}, content=b"cell_id,row,col\n1,5,5\n")
        assert response.status_code in (400, 404, 405), (name, response.status_code)
        assert "error" in response.json()
    assert not any(p.name == "escape" for p in Path(home).parent.rglob("escape"))
    ok = c.put("/v1/uploads/stations.csv", params={"key": admin}, content=b"cell_id,row,col\n1,5,5\n")
    assert ok.status_code == 201 and (home / "uploads" / "stations.csv").read_bytes() == b"cell_id,row,col\n1,5,5\n"
    again = c.put("/v1/uploads/stations.csv", params={"key": admin}, content=b"cell_id,row,col\n1,5,5\n")
    assert again.status_code == 201  # the same content again: nothing changes
    _envelope(c.put("/v1/uploads/stations.csv", params={"key": admin}, content=b"cell_id,row,col\n2,9,9\n"), 409, "conflict", "new name")
    assert (home / "uploads" / "stations.csv").read_bytes() == b"cell_id,row,col\n1,5,5\n"
    _envelope(c.put("/v1/uploads/big.png", params={"key": admin}, content=b"x" * (64 * 2**20 + 1)), 413, "requestTooLarge")
    _envelope(c.post("/v1/deployments", params={"key": admin}, json={"id": "x1", "city": "/etc/passwd"}), 400, "parseError", "city")
    _envelope(c.post("/v1/deployments", params={"key": admin}, json={"id": "x1", "base_stations": "upload:../../x"}), 400, "parseError", "base_stations")
    _envelope(c.post("/v1/deployments", params={"key": admin}, json={"id": "x1", "maps": "IRT2cars"}), 400, "parseError", "maps")
    _envelope(c.post("/v1/deployments", params={"key": admin}, json={"id": DEPLOYMENT}), 409, "conflict", "exists")


def test_a_deployment_built_through_the_api(service):
    """POST queues a job; the runner builds it in a child process (on RadioUNet maps); it answers once published;
    DELETE removes it."""
    c, admin, app = service["client"], service["admin"], service["app"]
    state = app.state.radioloc
    name = f"api-{service['db']}-{uuid.uuid4().hex[:6]}"
    job = c.post("/v1/deployments", params={"key": admin}, json={"id": name, "city": "generated:2", "size_m": 256, "base_stations": "auto:100", "survey": 600, "localizers": ["bayes"],
                                                           "maps": "RadioUNet"})  # fmt: skip
    assert job.status_code == 202 and job.json()["state"] == "queued"
    assert c.get(f"/v1/deployments/{name}", params={"key": admin}).json()["state"] == "building"
    _envelope(
        c.post("/v1/geolocate", params={"key": admin}, json={"cellTowers": [{"cellId": 1, "signalStrength": -60}], "radioloc": {"deployment": name}}),
        404,
        "notFound",
        "being built",
    )
    claimed = state.jobs._claim()
    assert claimed is not None and claimed.id == job.json()["id"]
    state.jobs.run(claimed)
    done = c.get(f"/v1/jobs/{claimed.id}", params={"key": admin}).json()
    assert done["state"] == "done", done
    info = c.get(f"/v1/deployments/{name}", params={"key": admin}).json()
    assert info["state"] == "ready" and info["localizers"] == ["bayes"] and info["rows"] == 256 and info["maps"] == "RadioUNet"
    answer = c.post("/v1/geolocate", params={"key": admin}, json={"cellTowers": [{"cellId": 1, "signalStrength": -70.0}], "radioloc": {"deployment": name}})
    assert answer.status_code == 200, answer.text
    assert c.delete(f"/v1/deployments/{name}", params={"key": admin}).status_code == 204
    _envelope(c.get(f"/v1/deployments/{name}", params={"key": admin}), 404, "notFound")
    assert not (service["home"] / "deployments" / name).exists()
