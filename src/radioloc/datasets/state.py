"""Schemas of the dataset files radioloc reads back (manifest, map records, estimates records): a file that parses as JSON but is not
what radioloc wrote (a string where a list belongs, a list for a record) fails here with one line naming the file
and the field, never later with a traceback."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from radioloc.limits import MAX_MAPS, SEED_MAX

MapId = Field(ge=0, le=10**6)


class DatasetConfigFields(BaseModel):
    """The settings a manifest records (``config``) that resuming or extending the dataset reuses."""

    model_config = ConfigDict(extra="allow", strict=True)
    maps: int = Field(ge=1, le=MAX_MAPS)
    seed: int = Field(ge=0, le=SEED_MAX)
    simulations: list[str]


class ManifestFields(BaseModel):
    """The fields of ``manifest.json`` the readers use; the rest is kept as written."""

    model_config = ConfigDict(extra="allow", strict=True)
    config: DatasetConfigFields | None = None
    maps: list[int]
    split: dict[str, list[int]]
    simulations: list[str]
    complete: bool = False

    @model_validator(mode="after")
    def _disjoint_splits(self) -> ManifestFields:
        seen: dict[int, str] = {}
        for name, maps in self.split.items():
            for m in maps:
                if m in seen:  # a test map in the training split would make every figure on that split a lie
                    raise ValueError(f"map {m} is in both the {seen[m]} and the {name} split")
                seen[m] = name
        unknown = set(seen) - set(self.maps)
        if unknown:
            raise ValueError(f"the splits name maps {sorted(unknown)[:3]} that the dataset does not have")
        return self


class MapRecordFields(BaseModel):
    """The fields of ``maps/{map}.json`` the readers use."""

    model_config = ConfigDict(extra="allow", strict=True)
    map: int = MapId
    style: str = "imported"
    candidates: list[list[int]] = []
    simulations: list[str] = []


class EstimatesRecordFields(BaseModel):
    """``{SIM}/estimate/model.json``: the RadioUNet that wrote a set of estimates (its SHA-256 decides whether a
    rerun resumes the set or replaces it)."""

    model_config = ConfigDict(extra="allow", strict=True)
    model: str
    model_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
