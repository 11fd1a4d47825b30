"""Schemas of the deployment files radioloc reads back (``deployment.json``, and a build's ``stations.json`` and
``survey.json``): a file that parses as JSON but is not what radioloc wrote (a cell id given as ``true``, a BS off
the grid, a string where the calibrations belong) fails with one line naming the file and the field, never later
with a traceback or a wrong answer (:func:`radioloc.datasets.state.check_state`)."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from radioloc.deploy.radiomaps import MAP_SOURCES, TRUTH_SOURCES
from radioloc.limits import CELL_ID_MAX, MAX_CITY_EXTENT_M, MAX_LATITUDE

FORMAT = "radioloc-deployment/1"
ID_REGEX = r"^[a-z0-9][a-z0-9-]{0,62}$"
GRID_MAX = int(MAX_CITY_EXTENT_M)  # cells per side: 1 m cells over the largest area a city may span
SERVING = ("bayes", "locunet")  # the localizers a deployment can serve


class GeoreferenceFields(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)
    lat: float = Field(ge=-MAX_LATITUDE, le=MAX_LATITUDE, allow_inf_nan=False)
    lng: float = Field(ge=-180, le=180, allow_inf_nan=False)
    rows: int = Field(ge=1, le=GRID_MAX)
    cols: int = Field(ge=1, le=GRID_MAX)


class PlacedStationFields(BaseModel):
    """One placed BS: its pixel on the grid, and the ranges ``radioloc.deploy.build.BaseStationEntry`` admitted."""

    model_config = ConfigDict(extra="forbid", strict=True)
    cell_id: int = Field(ge=0, le=CELL_ID_MAX)
    row: int = Field(ge=0, le=GRID_MAX)
    col: int = Field(ge=0, le=GRID_MAX)
    height_m: float = Field(ge=0, le=500, allow_inf_nan=False)
    tx_power_dbm: float = Field(ge=-50, le=80, allow_inf_nan=False)


class CityFields(BaseModel):
    """What a deployment records of its city (``deploy show`` prints it)."""

    model_config = ConfigDict(extra="allow", strict=True)
    source: str
    rows: int = Field(ge=1, le=GRID_MAX)
    cols: int = Field(ge=1, le=GRID_MAX)
    coverage: float = Field(ge=0, le=1, allow_inf_nan=False)


class SurveyErrorFields(BaseModel):
    """One serving localizer's errors on the held-out part of the simulated survey."""

    model_config = ConfigDict(extra="allow", strict=True)
    held_out_mae_m: dict[str, float] = {}

    @model_validator(mode="after")
    def _finite(self):
        if not all(math.isfinite(v) and v >= 0 for v in self.held_out_mae_m.values()):
            raise ValueError("held_out_mae_m must hold finite non-negative errors")
        return self


class SurveyRecordFields(BaseModel):
    """What a deployment records of its survey (beyond the radius calibrations)."""

    model_config = ConfigDict(extra="allow", strict=True)
    localizers: dict[str, SurveyErrorFields] = {}


class _Placement(BaseModel):
    georef: GeoreferenceFields
    base_stations: list[PlacedStationFields] = Field(min_length=1)

    @model_validator(mode="after")
    def _on_the_grid(self):
        for n, bs in enumerate(self.base_stations):
            if bs.row >= self.georef.rows or bs.col >= self.georef.cols:
                raise ValueError(f"base_stations[{n}] at ({bs.row}, {bs.col}) lies outside the {self.georef.rows} x {self.georef.cols} grid")
        if len({bs.cell_id for bs in self.base_stations}) != len(self.base_stations):
            raise ValueError("two base stations share a cell id")
        return self


class StationsFields(_Placement):
    """A build's ``stations.json``: the georeference, the placed BSs and the city's description."""

    model_config = ConfigDict(extra="allow", strict=True)
    city: CityFields
    estimate: Literal["true", "estimate"] | None = None


class SurveyFields(SurveyRecordFields):
    """A build's ``survey.json``: each serving localizer's radius calibration (checked when loaded,
    ``RadiusCalibration.from_dict``) and the survey's errors."""

    radius_calibrations: dict[str, dict]


class DeploymentFields(_Placement):
    """``deployment.json``."""

    model_config = ConfigDict(extra="forbid", strict=True)
    format: Literal[FORMAT]
    id: str = Field(pattern=ID_REGEX)
    name: str
    maps: Literal[MAP_SOURCES]
    truth: Literal[TRUTH_SOURCES]
    localizers: list[Literal[SERVING]] = Field(min_length=1)
    radius_calibrations: dict[str, dict] = {}
    city: CityFields
    survey: SurveyRecordFields = SurveyRecordFields()
    provenance: dict = {}
    estimate: Literal["true", "estimate"] = "true"
    serving: Literal["survey", "shipped"] = "survey"

    @model_validator(mode="after")
    def _calibrated(self):
        missing = [name for name in self.localizers if name not in self.radius_calibrations]
        if self.serving == "survey" and missing:
            raise ValueError(f"radius_calibrations has none for {', '.join(missing)}, which it serves")
        return self


class ProgressFields(BaseModel):
    """``progress.json`` in a build's staging folder: the stage it is in and how far (shown by the job routes)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    stage: str
    done: int = Field(ge=0)
    total: int = Field(ge=0)
