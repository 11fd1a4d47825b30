"""The real-time localization service (FastAPI): the Geolocation API, batch locate, admin routes, the web page.

Routes (``?key=KEY`` on every ``/v1`` route; ``/``, the health routes, ``/__version__`` and the docs need none):

- ``POST /v1/geolocate``: Google Geolocation API request and response (``accuracy``: the 95 % radius), plus a
  ``radioloc`` object (local metres, the 68 % radius, localizer, deployment, ms). A client key answers on its
  deployment; an admin key names one in ``radioloc.deployment``.
- ``POST /v1/deployments/{id}/locate``: up to 10,000 reports in the native form (cell ids, pathloss dB).
- ``GET /v1/deployments/{id}/reports?lat=&lng=``: what a phone there reports, from the simulated truth.
- ``GET /v1/deployments/{id}/view``, ``/city.png``: what the web page draws (client keys).
- Admin: ``GET/POST /v1/deployments``, ``GET/DELETE /v1/deployments/{id}``, ``GET /v1/jobs[/{id}]``,
  ``GET/POST /v1/keys``, ``DELETE /v1/keys/{id}``, ``PUT /v1/uploads/{name}``.
- ``/__heartbeat__`` (503 when the database or the deployment folder is down), ``/__lbheartbeat__``,
  ``/__version__``; ``/openapi.json`` and ``/docs``.

Every error is Google's envelope (:mod:`radioloc.service.errors`); bodies over ``max_body_bytes`` get 413 before
they are read.
"""

from __future__ import annotations

import asyncio
import base64
import gc
import io
import os
import re
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy import delete, select

from radioloc import __version__
from radioloc.datasets.localization import MAX_REPORTED_DB, MIN_REPORTED_DB
from radioloc.deploy.deployment import DeploymentStore, UnknownCells, check_deployment_id
from radioloc.errors import RadiolocError
from radioloc.io import atomic_write_bytes
from radioloc.service import errors as envelope_errors
from radioloc.service.db import ApiKeyRow, Database, DeploymentRow, JobRow, database_url, migrate
from radioloc.service.engine import LARGE_BATCH, Engine
from radioloc.service.environment import service_environment
from radioloc.service.errors import ApiError
from radioloc.service.jobs import JobRunner
from radioloc.service.schemas import (
    CellReport,
    DeploymentCreate,
    DeploymentInfo,
    DeploymentView,
    GeolocateRequest,
    GeolocateResponse,
    Heatmap,
    JobInfo,
    KeyCreate,
    KeyInfo,
    LatLng,
    LocateRequest,
    LocateResponse,
    LocateResult,
    RadiolocAnswer,
    ReportsResponse,
    RowId,
    StationInfo,
)

UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
MAX_UPLOAD_BYTES = 64 * 2**20


@dataclass
class Settings:
    home: Path
    db_url: str | None = None
    max_body_bytes: int = 4 * 2**20  # a 10,000-report batch is about 1 MB
    run_jobs: bool = True
    warm_up: bool = True  # answer one report per deployment and localizer before serving

    @staticmethod
    def from_env() -> Settings:
        from radioloc.deploy.deployment import resolve_home

        environment = service_environment()
        return Settings(home=resolve_home(None), db_url=environment.RADIOLOC_DB, run_jobs=environment.RADIOLOC_RUN_JOBS)


@dataclass
class Caller:
    key: ApiKeyRow


class State:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.store = DeploymentStore(settings.home)
        self.url = database_url(settings.db_url, settings.home)
        migrate(self.url)
        self.db = Database(self.url)
        self.engine = Engine(self.store)
        self.jobs = JobRunner(self.db, self.store)
        self.keys: dict[str, tuple[float, ApiKeyRow | None]] = {}
        sync_deployments(self.db, self.store)


def sync_deployments(db: Database, store: DeploymentStore) -> None:
    """Deployments built on the command line (or whose row was lost) get their row."""
    with db.session() as session, session.begin():
        known = set(session.scalars(select(DeploymentRow.id)))
        for deployment_id in store.ids():
            if deployment_id not in known:
                config = store.load(deployment_id).config
                session.add(DeploymentRow(id=deployment_id, name=config.name, state="ready", spec=config.provenance.get("spec", {"id": deployment_id})))


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state = app.state.radioloc
        if settings.warm_up:
            state.engine.warm_up(state.store.ids())
        # what is loaded now lives as long as the worker: out of the collector's sight, so that its full
        # collections (which would walk it) do not stall the requests in flight
        gc.collect()
        gc.freeze()
        if settings.run_jobs:
            state.jobs.start()
        yield
        app.state.radioloc.jobs.stop()

    app = FastAPI(title="radioloc", version=__version__, lifespan=lifespan,
                  description="Locate a phone from the signal strengths it reports, on a deployment's radio maps (LocUNet, a calibrated grid posterior).")  # fmt: skip
    app.state.radioloc = State(settings)
    envelope_errors.install(app)

    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    _routes(app)
    return app


class BodyLimit:
    """Bounds every request body (413 in the envelope); a body without a Content-Length is read, bounded, and
    replayed to the route. Plain ASGI rather than Starlette's ``@app.middleware``: that one runs each request
    through an extra task and memory streams, which costs the hot route a good share of its throughput."""

    def __init__(self, app, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = MAX_UPLOAD_BYTES if scope["path"].startswith("/v1/uploads/") else self.limit
        length = next((value for name, value in scope["headers"] if name == b"content-length"), None)
        if length is not None:
            try:
                too_big = int(length) > limit
            except ValueError:
                return await envelope_errors.envelope(400, "parseError", "content-length: not a number")(scope, receive, send)
            if too_big:
                return await envelope_errors.envelope(413, "requestTooLarge", f"body: larger than {limit} bytes")(scope, receive, send)
            return await self.app(scope, receive, send)
        if scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body.extend(message.get("body", b""))
            more = message.get("more_body", False)
            if len(body) > limit:
                return await envelope_errors.envelope(413, "requestTooLarge", f"body: larger than {limit} bytes")(scope, receive, send)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def state_of(request: Request) -> State:
    return request.app.state.radioloc


# -- keys ---------------------------------------------------------------------------------------------------------
KEY_CACHE_S = 2.0  # how long a worker trusts a key it looked up (a deleted key stops working within this)


async def caller(request: Request, key: str | None = Query(None, description="API key")) -> Caller:
    key = key or request.headers.get("x-api-key")
    if not key:
        raise ApiError(400, "keyInvalid", "key: an API key is required (?key=KEY)")
    state = state_of(request)
    now = time.monotonic()
    cached = state.keys.get(key)
    if cached is None or now - cached[0] > KEY_CACHE_S:
        # one indexed lookup per key and worker every few seconds, not a database session per request
        cached = (now, state.db.key(key))
        if len(state.keys) > 10_000:
            state.keys.clear()
        state.keys[key] = cached
    if cached[1] is None:
        raise ApiError(400, "keyInvalid", "key: missing or not a valid API key")
    return Caller(cached[1])


async def admin(who: Caller = Depends(caller)) -> Caller:
    if who.key.role != "admin":
        raise ApiError(403, "insufficientPermissions", "this route needs an admin key")
    return who


def _deployment_for(request: Request, who: Caller, deployment_id: str | None) -> str:
    """The deployment a request answers on: a client key's own (it may name only that one), or the named one."""
    if who.key.role == "client" and who.key.deployment_id:
        if deployment_id not in (None, who.key.deployment_id):
            raise ApiError(403, "insufficientPermissions", f"this key answers for deployment {who.key.deployment_id!r} only")
        deployment_id = who.key.deployment_id
    if deployment_id is None:
        raise ApiError(400, "parseError", "radioloc.deployment: name the deployment (this key is not bound to one)")
    try:
        check_deployment_id(deployment_id)
    except RadiolocError as exc:
        raise ApiError(400, "parseError", str(exc)) from None
    if not state_of(request).store.path(deployment_id).joinpath("deployment.json").is_file():
        raise ApiError(404, "notFound", f"no deployment {deployment_id!r} (or it is still being built)")
    return deployment_id


def _check_localizer(request: Request, deployment_id: str, localizer: str | None) -> None:
    if localizer is None:
        return
    served = state_of(request).engine.locator(deployment_id, None).deployment.config.localizers
    if localizer not in served:
        raise ApiError(400, "parseError", f"localizer: deployment {deployment_id!r} is served by {', '.join(served)}, not {localizer!r}")


def _answer(located, row: int, deployment_id: str, locator) -> tuple[LatLng, float, RadiolocAnswer]:
    deployment = locator.deployment
    rows, cols = deployment.config.shape
    r, c = (float(v) for v in located.positions[row])
    used = [int(deployment.cell_ids[b]) for b in located.bs_used[row] if b >= 0]
    answer = RadiolocAnswer(deployment=deployment_id, localizer=locator.name, x_m=round(c - (cols - 1) / 2, 2), y_m=round((rows - 1) / 2 - r, 2),
                            row_m=round(r, 2), col_m=round(c, 2), accuracy_68=round(float(located.radius_68[row]), 2),
                            accuracy_95=round(float(located.radius_95[row]), 2), cells_used=used, ms=round(located.ms_per_query, 3))  # fmt: skip
    return LatLng(lat=float(located.lat[row]), lng=float(located.lng[row])), answer.accuracy_95, answer


def _routes(app: FastAPI) -> None:
    static = resources.files("radioloc.service") / "static"

    @app.get("/", include_in_schema=False)
    def index() -> HTMLResponse:
        return HTMLResponse((static / "index.html").read_text())

    @app.get("/static/{name}", include_in_schema=False)
    def static_file(name: str) -> Response:
        kinds = {".js": "text/javascript", ".css": "text/css"}
        suffix = Path(name).suffix
        if not UPLOAD_NAME.match(name) or suffix not in kinds or not (static / name).is_file():
            raise ApiError(404, "notFound", f"no static file {name!r}")
        return Response((static / name).read_bytes(), media_type=kinds[suffix])

    @app.get("/__lbheartbeat__", tags=["operations"])
    def lbheartbeat() -> dict:
        return {"status": "ok"}

    @app.get("/__heartbeat__", tags=["operations"])
    def heartbeat(request: Request) -> JSONResponse:
        state = state_of(request)
        checks = {
            "database": "ok" if state.db.alive() else "down",
            "storage": "ok" if state.store.root.is_dir() and os.access(state.store.root, os.W_OK) else "down",
        }
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "down", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/__version__", tags=["operations"])
    def version() -> dict:
        return {"name": "radioloc", "version": __version__, "source": "https://github.com/radioloc/radioloc"}

    @app.post("/v1/geolocate", response_model=GeolocateResponse, tags=["locate"])
    async def geolocate(body: GeolocateRequest, request: Request, who: Caller = Depends(caller)) -> GeolocateResponse:
        """Google Geolocation API: the phone's cell towers in, its position and 95 % accuracy radius out."""
        extension = body.radioloc
        deployment_id = _deployment_for(request, who, extension.deployment if extension else None)
        localizer = extension.localizer if extension else None
        _check_localizer(request, deployment_id, localizer)
        if not body.cellTowers:
            raise ApiError(404, "notFound", "cellTowers: no cell reported, nothing to locate from")
        engine = state_of(request).engine
        locator = engine.locator(deployment_id, localizer)
        cells = [t.cellId for t in body.cellTowers]
        _check_unique_cells(cells, "cellTowers.cellId")
        index = locator.deployment.bs_index(np.array(cells))
        power = np.where(index >= 0, locator.deployment.tx_power_dbm[np.maximum(index, 0)], 0.0)
        pathloss = [float(t.signalStrength - p) for t, p in zip(body.cellTowers, power)]
        _check_pathloss([pathloss[i] for i in np.flatnonzero(index >= 0)], "cellTowers.signalStrength")
        locator, located = await engine.locate_one(deployment_id, localizer, cells, pathloss)
        if located is None:
            raise ApiError(404, "notFound", f"cellTowers: none of the reported cells belongs to deployment {deployment_id!r}")
        location, accuracy, answer = _answer(located, 0, deployment_id, locator)
        return GeolocateResponse(location=location, accuracy=accuracy, radioloc=answer)

    @app.post("/v1/deployments/{deployment_id}/locate", response_model=LocateResponse, tags=["locate"])
    async def locate_batch(deployment_id: str, body: LocateRequest, request: Request, who: Caller = Depends(caller)) -> LocateResponse:
        """Up to 10,000 reports (cell ids, pathloss dB) at once; a report with no known cell gets an error entry."""
        deployment_id = _deployment_for(request, who, deployment_id)
        _check_localizer(request, deployment_id, body.localizer)
        for n, report in enumerate(body.reports):
            if len(report.cells) != len(report.pathloss_db):
                raise ApiError(400, "parseError", f"reports.{n}: {len(report.cells)} cells but {len(report.pathloss_db)} pathloss values")
            _check_unique_cells(report.cells, f"reports.{n}.cells")
            _check_pathloss(report.pathloss_db, f"reports.{n}.pathloss_db")
        if body.heatmap and len(body.reports) != 1:
            raise ApiError(400, "parseError", "heatmap: ask for the heatmap of one report at a time")
        engine = state_of(request).engine
        started = time.perf_counter()
        loop = asyncio.get_running_loop()
        if body.heatmap:
            locator = engine.locator(deployment_id, body.localizer)
            try:
                located, heatmap, origin = await loop.run_in_executor(engine.executor, locator.heatmap, [body.reports[0].cells], [body.reports[0].pathloss_db])
            except UnknownCells as exc:
                raise ApiError(404, "notFound", f"reports.0: {exc}") from None
            known = np.array([True])
            picture = Heatmap(origin_row_m=int(origin[0]), origin_col_m=int(origin[1]), size=int(heatmap.shape[0]), png_base64=_heatmap_png(heatmap))
        else:
            locator, located, known = await loop.run_in_executor(engine.executor, engine.locate_batch, deployment_id, body.localizer,
                                                                 [r.cells for r in body.reports], [r.pathloss_db for r in body.reports],
                                                                 len(body.reports) >= LARGE_BATCH)  # fmt: skip
            picture = None
        results, row = [], 0
        for ok in known:
            if ok:
                location, _, answer = _answer(located, row, deployment_id, locator)
                results.append(
                    LocateResult(
                        lat=location.lat,
                        lng=location.lng,
                        row_m=answer.row_m,
                        col_m=answer.col_m,
                        accuracy_68=answer.accuracy_68,
                        accuracy_95=answer.accuracy_95,
                    )
                )
                row += 1
            else:
                results.append(LocateResult(error="notFound: no reported cell belongs to this deployment"))
        return LocateResponse(
            deployment=deployment_id, localizer=locator.name, results=results, ms=round(1000 * (time.perf_counter() - started), 3), heatmap=picture
        )

    @app.get("/v1/deployments/{deployment_id}/reports", response_model=ReportsResponse, tags=["deployments"])
    def reports(deployment_id: str, request: Request, lat: float = Query(..., ge=-90, le=90, allow_inf_nan=False), lng: float = Query(..., ge=-180, le=180, allow_inf_nan=False),
                who: Caller = Depends(caller)) -> ReportsResponse:  # fmt: skip
        """The cell towers a phone at (lat, lng) would report, from the deployment's simulated truth."""
        deployment_id = _deployment_for(request, who, deployment_id)
        deployment = state_of(request).engine.locator(deployment_id, None).deployment
        row, col = (float(v) for v in deployment.georef.to_grid(lat, lng))
        try:
            heard = deployment.reports_at(row, col)
        except RadiolocError as exc:
            raise ApiError(400, "parseError", f"lat, lng: {exc}") from None
        return ReportsResponse(
            deployment=deployment_id,
            row_m=round(row, 2),
            col_m=round(col, 2),
            cellTowers=[CellReport(cellId=h["cellId"], signalStrength=h["signalStrength"]) for h in heard],
        )

    @app.get("/v1/whoami", tags=["keys"])
    def whoami(who: Caller = Depends(caller)) -> dict:
        """The calling key's role and the deployment it is bound to (the web page starts here)."""
        return {"role": who.key.role, "deployment_id": who.key.deployment_id, "name": who.key.name}

    @app.get("/v1/deployments/{deployment_id}/view", response_model=DeploymentView, tags=["deployments"])
    def view(deployment_id: str, request: Request, who: Caller = Depends(caller)) -> DeploymentView:
        """What the web page draws: the area's corners and centre, its BSs."""
        deployment_id = _deployment_for(request, who, deployment_id)
        deployment = state_of(request).engine.locator(deployment_id, None).deployment
        return _view(deployment)

    @app.get("/v1/deployments/{deployment_id}/city.png", tags=["deployments"], response_class=Response)
    def city_png(deployment_id: str, request: Request, who: Caller = Depends(caller)) -> Response:
        """The building map (white streets, dark buildings), north up, one pixel per metre."""
        deployment_id = _deployment_for(request, who, deployment_id)
        deployment = state_of(request).engine.locator(deployment_id, None).deployment
        from PIL import Image

        image = np.where(np.asarray(deployment.buildings) > 0, 60, 245).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(image).save(buffer, format="PNG")
        return Response(buffer.getvalue(), media_type="image/png")

    # -- admin ----------------------------------------------------------------------------------------------
    @app.get("/v1/deployments", response_model=list[DeploymentInfo], tags=["admin"])
    def list_deployments(request: Request, _: Caller = Depends(admin)) -> list[DeploymentInfo]:
        state = state_of(request)
        with state.db.session() as session:
            rows = list(session.scalars(select(DeploymentRow).order_by(DeploymentRow.id)))
        return [_info(state, row) for row in rows]

    @app.get("/v1/deployments/{deployment_id}", response_model=DeploymentInfo, tags=["admin"])
    def get_deployment(deployment_id: str, request: Request, _: Caller = Depends(admin)) -> DeploymentInfo:
        state = state_of(request)
        return _info(state, _row_or_404(state, DeploymentRow, deployment_id, f"no deployment {deployment_id!r}"))

    @app.post("/v1/deployments", response_model=JobInfo, status_code=202, tags=["admin"])
    def create_deployment(body: DeploymentCreate, request: Request, _: Caller = Depends(admin)) -> JobInfo:
        """Queue a build (a background job: GET /v1/jobs/{id}); the deployment answers once it is whole."""
        state = state_of(request)
        spec = body.model_dump()
        for field in ("city", "base_stations"):
            spec[field] = _resolve_upload(state, spec[field], field)
        replace = spec.pop("replace")
        spec["localizers"] = list(spec["localizers"])
        with state.db.session() as session, session.begin():
            row = session.get(DeploymentRow, body.id)
            if row is not None and not replace:
                raise ApiError(409, "conflict", f"id: deployment {body.id!r} exists (send replace: true to rebuild it)")
            if session.scalar(select(JobRow).where(JobRow.deployment_id == body.id, JobRow.state.in_(("queued", "running")))) is not None:
                raise ApiError(409, "conflict", f"id: deployment {body.id!r} is being built")
            if row is None:
                session.add(DeploymentRow(id=body.id, name=body.name or body.id, state="building", spec={**spec, "replace": False}))
            else:
                row.spec = {**spec, "replace": True}
            job = JobRow(deployment_id=body.id, kind="replace" if row is not None else "create", state="queued", message="")
            session.add(job)
        return _job_info(state, job)

    @app.delete("/v1/deployments/{deployment_id}", status_code=204, tags=["admin"])
    def delete_deployment(deployment_id: str, request: Request, _: Caller = Depends(admin)) -> Response:
        state = state_of(request)
        with state.db.session() as session, session.begin():
            row = session.get(DeploymentRow, deployment_id)
            if row is None:
                raise ApiError(404, "notFound", f"no deployment {deployment_id!r}")
            if session.scalar(select(JobRow).where(JobRow.deployment_id == deployment_id, JobRow.state.in_(("queued", "running")))) is not None:
                raise ApiError(409, "conflict", f"deployment {deployment_id!r} is being built; delete it once its job ends")
            session.delete(row)
        state.engine.forget(deployment_id)
        try:
            state.store.delete(deployment_id)
        except RadiolocError:
            pass  # only its row existed (a build that never started)
        return Response(status_code=204)

    @app.get("/v1/jobs", response_model=list[JobInfo], tags=["admin"])
    def list_jobs(request: Request, _: Caller = Depends(admin)) -> list[JobInfo]:
        state = state_of(request)
        with state.db.session() as session:
            return [_job_info(state, j) for j in session.scalars(select(JobRow).order_by(JobRow.id))]

    @app.get("/v1/jobs/{job_id}", response_model=JobInfo, tags=["admin"])
    def get_job(job_id: RowId, request: Request, _: Caller = Depends(admin)) -> JobInfo:
        state = state_of(request)
        return _job_info(state, _row_or_404(state, JobRow, job_id, f"no job {job_id}"))

    @app.get("/v1/keys", response_model=list[KeyInfo], tags=["admin"])
    def list_keys(request: Request, _: Caller = Depends(admin)) -> list[KeyInfo]:
        with state_of(request).db.session() as session:
            return [
                KeyInfo(id=k.id, name=k.name, role=k.role, deployment_id=k.deployment_id) for k in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))
            ]

    @app.post("/v1/keys", response_model=KeyInfo, status_code=201, tags=["admin"])
    def create_key(body: KeyCreate, request: Request, _: Caller = Depends(admin)) -> KeyInfo:
        """A new key; the response is the only place its secret ever appears."""
        state = state_of(request)
        if body.deployment_id is not None:
            with state.db.session() as session:
                if session.get(DeploymentRow, body.deployment_id) is None:
                    raise ApiError(404, "notFound", f"deployment_id: no deployment {body.deployment_id!r}")
        row, key = state.db.create_key(body.name, body.role, body.deployment_id)
        return KeyInfo(id=row.id, name=row.name, role=row.role, deployment_id=row.deployment_id, key=key)

    @app.delete("/v1/keys/{key_id}", status_code=204, tags=["admin"])
    def delete_key(key_id: RowId, request: Request, who: Caller = Depends(admin)) -> Response:
        state = state_of(request)
        if key_id == who.key.id:
            raise ApiError(409, "conflict", "a key cannot delete itself")
        with state.db.session() as session, session.begin():
            if session.execute(delete(ApiKeyRow).where(ApiKeyRow.id == key_id)).rowcount == 0:
                raise ApiError(404, "notFound", f"no key {key_id}")
        state.keys.clear()  # this worker forgets it now; the others within KEY_CACHE_S
        return Response(status_code=204)

    @app.put("/v1/uploads/{name}", status_code=201, tags=["admin"])
    async def upload(name: str, request: Request, _: Caller = Depends(admin)) -> dict:
        """A city (PNG, GeoJSON, OSM) or BS list (CSV, JSON) for POST /v1/deployments (``upload:NAME``)."""
        state = state_of(request)
        target = _upload_path(state, name)
        body = await request.body()
        if not body:
            raise ApiError(400, "parseError", "body: empty upload")
        if target.is_file() and target.read_bytes() != body:  # a build may be reading it: uploads never change under it
            raise ApiError(409, "conflict", f"upload {name!r} exists with other content; upload under a new name")
        atomic_write_bytes(target, body)
        return {"name": name, "bytes": len(body)}


def _row_or_404(state: State, model, key, message: str):
    with state.db.session() as session:
        row = session.get(model, key)
    if row is None:
        raise ApiError(404, "notFound", message)
    return row


def _job_info(state: State, job: JobRow) -> JobInfo:
    from radioloc.deploy.build import read_progress

    progress = read_progress(state.store, job.deployment_id) if job.state == "running" else None
    return JobInfo(id=job.id, deployment_id=job.deployment_id, kind=job.kind, state=job.state, message=job.message, progress=progress)


def _check_unique_cells(cells: list[int], field: str) -> None:
    """A phone reports each cell once: a repeated cell is a malformed report, refused before it joins a batch."""
    seen: set[int] = set()
    for cell in cells:
        if cell in seen:
            raise ApiError(400, "parseError", f"{field}: cell {cell} is listed twice")
        seen.add(cell)


def _check_pathloss(values, field: str) -> None:
    for v in values:
        if not (MIN_REPORTED_DB <= v <= MAX_REPORTED_DB):
            raise ApiError(
                400,
                "parseError",
                f"{field}: pathloss {v:.1f} dB is outside {MIN_REPORTED_DB:g}..{MAX_REPORTED_DB:g} dB (signal strength minus the BS's transmit power)",
            )


def _upload_path(state: State, name: str, field: str = "name") -> Path:
    if not UPLOAD_NAME.match(name) or ".." in name:
        raise ApiError(400, "parseError", f"{field}: {name!r} is not a plain file name (letters, digits, '.', '_', '-')")
    folder = (state.store.root / "uploads").resolve()
    target = (folder / name).resolve()
    if target.parent != folder:
        raise ApiError(400, "parseError", f"{field}: {name!r} leaves the uploads folder")
    return target


def _resolve_upload(state: State, value: str, field: str) -> str:
    if value.startswith("upload:"):
        path = _upload_path(state, value.removeprefix("upload:"), field)
        if not path.is_file():
            raise ApiError(400, "parseError", f"{field}: no upload {value.removeprefix('upload:')!r} (PUT /v1/uploads/NAME first)")
        return str(path)
    if field == "city" and value.startswith("generated:") and value.removeprefix("generated:").isdigit():
        return value
    if field == "base_stations" and value.startswith("auto:") and value.removeprefix("auto:").isdigit():
        return value
    raise ApiError(400, "parseError", f"{field}: expected {'generated:SEED' if field == 'city' else 'auto:SPACING'} or upload:NAME, got {value!r}")


def _info(state: State, row: DeploymentRow) -> DeploymentInfo:
    info = DeploymentInfo(id=row.id, name=row.name, state=row.state)
    if state.store.path(row.id).joinpath("deployment.json").is_file():
        try:
            deployment = state.engine.locator(row.id, None).deployment
        except RadiolocError:
            return info
        config = deployment.config
        lat, lng = deployment.georef.to_latlng((config.shape[0] - 1) / 2, (config.shape[1] - 1) / 2)
        info = info.model_copy(update=dict(center=LatLng(lat=float(lat), lng=float(lng)), rows=config.shape[0], cols=config.shape[1], base_stations=len(config.base_stations),
                                           localizers=config.localizers, maps=config.maps, truth=config.truth, survey=config.survey))  # fmt: skip
    return info


def _view(deployment) -> DeploymentView:
    config = deployment.config
    rows, cols = config.shape
    corner_rows = np.array([-0.5, -0.5, rows - 0.5, rows - 0.5])
    corner_cols = np.array([-0.5, cols - 0.5, cols - 0.5, -0.5])
    lat, lng = deployment.georef.to_latlng(corner_rows, corner_cols)
    centre = deployment.georef.to_latlng((rows - 1) / 2, (cols - 1) / 2)
    bs_lat, bs_lng = deployment.georef.to_latlng(deployment.bs_positions[:, 0], deployment.bs_positions[:, 1])
    stations = [StationInfo(cellId=bs.cell_id, lat=float(a), lng=float(b), row_m=bs.row, col_m=bs.col, tx_power_dbm=bs.tx_power_dbm)
                for bs, a, b in zip(config.base_stations, np.atleast_1d(bs_lat), np.atleast_1d(bs_lng))]  # fmt: skip
    return DeploymentView(id=config.id, name=config.name, center=LatLng(lat=float(centre[0]), lng=float(centre[1])), rows=rows, cols=cols,
                          corners=[LatLng(lat=float(a), lng=float(b)) for a, b in zip(lat, lng)], localizers=config.localizers, stations=stations)  # fmt: skip


def _heatmap_png(heatmap: np.ndarray) -> str:
    """A heatmap as a PNG (transparent where it is zero), base64: the page lays it over the city."""
    from matplotlib import colormaps
    from PIL import Image

    values = np.clip(np.nan_to_num(np.asarray(heatmap, dtype=np.float64)), 0, None)
    peak = values.max()
    scaled = np.sqrt(values / peak) if peak > 0 else values
    rgba = (colormaps["inferno"](scaled) * 255).astype(np.uint8)
    rgba[..., 3] = (np.clip(scaled * 1.5, 0, 1) * 200).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgba, mode="RGBA").save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def app_from_env() -> FastAPI:
    """uvicorn's factory for ``radioloc serve --workers N``: each worker reads the settings from the environment."""
    return create_app(Settings.from_env())


__all__ = ["create_app", "app_from_env", "Settings"]
