"""Request and response bodies (pydantic): the Geolocation API's, radioloc's batch form and the admin routes'."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from radioloc.datasets.localization import FLOOR_NOTE, MAX_REPORTED_DB, MIN_REPORTED_DB
from radioloc.limits import CELL_ID_MAX, MAX_LATITUDE, RSS_DBM_RANGE

MAX_BATCH = 10_000
MAX_CELLS = 64  # per report; the 5 strongest known are used
DBM = dict(ge=RSS_DBM_RANGE[0], le=RSS_DBM_RANGE[1], allow_inf_nan=False)
CellId = Annotated[int, Field(ge=0, le=CELL_ID_MAX, description="Operator cell id (a 36-bit NR cell identity at most)")]
RowId = Annotated[int, Field(ge=1, le=2**63 - 1)]
Latitude = Annotated[float, Field(ge=-MAX_LATITUDE, le=MAX_LATITUDE, allow_inf_nan=False)]
Longitude = Annotated[float, Field(ge=-180, le=180, allow_inf_nan=False)]  # a database row id (jobs, keys): SQLite and PostgreSQL bigint


class CellTower(BaseModel):
    """One cell a phone hears (Geolocation API fields; radioloc uses ``cellId`` and ``signalStrength``)."""

    model_config = ConfigDict(extra="ignore")
    cellId: CellId
    signalStrength: float = Field(description="Received power in dBm; pathloss = signalStrength - the BS's transmit power", **DBM)
    locationAreaCode: int | None = None
    mobileCountryCode: int | None = None
    mobileNetworkCode: int | None = None
    age: int | None = None
    timingAdvance: int | None = None


class RadiolocRequestExtension(BaseModel):
    model_config = ConfigDict(extra="forbid")
    deployment: str | None = Field(None, max_length=63, description="The deployment to answer on (default: the key's)")
    localizer: str | None = Field(None, max_length=32, description="One of the deployment's localizers (default: its first)")


class GeolocateRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    cellTowers: list[CellTower] = Field(default_factory=list, max_length=MAX_CELLS)
    considerIp: bool | None = None
    radioloc: RadiolocRequestExtension | None = None


class LatLng(BaseModel):
    lat: float
    lng: float


class RadiolocAnswer(BaseModel):
    deployment: str
    localizer: str
    x_m: float = Field(description="Metres east of the deployment's centre")
    y_m: float = Field(description="Metres north of the deployment's centre")
    row_m: float
    col_m: float
    accuracy_68: float = Field(description="Radius (m) holding the phone with probability 0.68")
    accuracy_95: float
    cells_used: list[int]
    ms: float


class GeolocateResponse(BaseModel):
    location: LatLng
    accuracy: float = Field(description="Radius (m) holding the phone with probability 0.95 (as Ichnaea and the W3C API)")
    radioloc: RadiolocAnswer


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cells: list[CellId] = Field(min_length=1, max_length=MAX_CELLS)
    pathloss_db: list[float] = Field(
        min_length=1, max_length=MAX_CELLS, description=f"Pathloss in dB per cell ({MIN_REPORTED_DB:g}..{MAX_REPORTED_DB:g}; {FLOOR_NOTE})"
    )


class LocateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reports: list[Report] = Field(min_length=1, max_length=MAX_BATCH)
    localizer: str | None = Field(None, max_length=32)
    heatmap: bool = Field(False, description="Also return the posterior or quasi-heatmap of a single report (the web page)")


class LocateResult(BaseModel):
    lat: float | None = None
    lng: float | None = None
    row_m: float | None = None
    col_m: float | None = None
    accuracy_68: float | None = None
    accuracy_95: float | None = None
    error: str | None = Field(None, description="Why this report has no answer (no known cell)")


class Heatmap(BaseModel):
    origin_row_m: int
    origin_col_m: int
    size: int
    png_base64: str


class LocateResponse(BaseModel):
    deployment: str
    localizer: str
    results: list[LocateResult]
    ms: float
    heatmap: Heatmap | None = None


class CellReport(BaseModel):
    cellId: int
    signalStrength: float


class ReportsResponse(BaseModel):
    deployment: str
    row_m: float
    col_m: float
    cellTowers: list[CellReport]


class DeploymentCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    name: str = Field("", max_length=200)
    city: str = Field("generated:0", max_length=300, description="generated:SEED, or upload:NAME (a file sent to PUT /v1/uploads/NAME)")
    size_m: int = Field(1024, ge=256, le=8192)
    origin: tuple[Latitude, Longitude] | None = Field(None, description="[lat, lng] of the area's centre (imported cities bring their own)")
    base_stations: str = Field("auto:150", max_length=300, description="auto:SPACING, or upload:NAME (CSV or JSON)")
    maps: Literal["DPM", "RadioUNet", "IRT2"] = Field(
        "DPM",
        description="the radio maps the localizers see: DPM over the area; RadioUNet or the ray tracer (IRT2) on the 256 m tile around each BS, DPM beyond",
    )
    truth: Literal["DPM", "DPMcars", "IRT2", "IRT2cars"] = Field(
        "DPMcars", description="the simulator of the reports simulated phones give (survey, /reports); IRT2*: ray-traced near each BS, DPM beyond"
    )
    localizers: list[Literal["bayes", "locunet"]] = Field(default_factory=lambda: ["bayes", "locunet"], min_length=1, max_length=2)
    survey: int = Field(6000, ge=600, le=100_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)
    replace: bool = False


class DeploymentInfo(BaseModel):
    id: str
    name: str
    state: str
    center: LatLng | None = None
    rows: int | None = None
    cols: int | None = None
    base_stations: int | None = None
    localizers: list[str] = []
    maps: str | None = None
    truth: str | None = None
    survey: dict | None = None


class StationInfo(BaseModel):
    cellId: int
    lat: float
    lng: float
    row_m: int
    col_m: int
    tx_power_dbm: float


class DeploymentView(BaseModel):
    id: str
    name: str
    center: LatLng
    rows: int
    cols: int
    corners: list[LatLng] = Field(description="North-west, north-east, south-east, south-west")
    localizers: list[str]
    stations: list[StationInfo]


class JobInfo(BaseModel):
    id: int
    deployment_id: str
    kind: str
    state: str
    message: str
    progress: dict | None = Field(None, description="While running: the build's stage, done and total")


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: Literal["admin", "client"]
    deployment_id: str | None = Field(
        None, pattern=r"^[a-z0-9][a-z0-9-]{0,62}$", description="Client keys only: the one deployment the key may locate on (none: every deployment)"
    )

    @model_validator(mode="after")
    def _scoped_clients_only(self) -> KeyCreate:
        if self.role == "admin" and self.deployment_id is not None:  # an admin manages every deployment and key
            raise ValueError("deployment_id scopes client keys; an admin key cannot be limited to one deployment")
        return self


class KeyInfo(BaseModel):
    id: int
    name: str
    role: str
    deployment_id: str | None
    key: str | None = Field(None, description="The key itself: shown once, when created")
