"""The service's ``RADIOLOC_*`` environment, read in one place and checked at start: a misconfiguration is one
line before anything listens, never a worker that dies or a 500 on every request later."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from radioloc.errors import RadiolocError, first_validation_error

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,128}$")


class ServiceEnvironment(BaseModel):
    """What ``radioloc serve`` and its workers read from the environment."""

    model_config = ConfigDict(extra="forbid")
    RADIOLOC_HOME: Path | None = None
    RADIOLOC_DB: str | None = None
    RADIOLOC_RUN_JOBS: bool = True
    RADIOLOC_WORKER_THREADS: int | None = Field(None, ge=1, le=1024)
    RADIOLOC_DEMO_KEY: str | None = None
    RADIOLOC_ADMIN_KEY: str | None = None

    @field_validator("RADIOLOC_RUN_JOBS", mode="before")
    @classmethod
    def _zero_or_one(cls, value: object) -> object:
        if value not in ("0", "1"):
            raise ValueError(f"must be 0 or 1, got {value!r}")
        return value == "1"

    @field_validator("RADIOLOC_WORKER_THREADS", mode="before")
    @classmethod
    def _whole_number(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip().isdigit():
            raise ValueError(f"must be a whole number of threads (1 or more), got {value!r}")
        return value

    @field_validator("RADIOLOC_DB")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value

    @field_validator("RADIOLOC_DEMO_KEY", "RADIOLOC_ADMIN_KEY")
    @classmethod
    def _key(cls, value: str | None) -> str | None:
        if value is not None and not KEY_PATTERN.match(value):
            raise ValueError("an API key is 16 to 128 letters, digits, '-' or '_'")
        return value


def check_database_url(url: str, option: str = "RADIOLOC_DB") -> None:
    """Refuse a URL the workers cannot share: an in-memory SQLite database exists once per connection, so
    migrations would land in one and every worker would find an empty other."""
    if not url.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:")):
        raise RadiolocError(f"{option} {url!r}: expected sqlite:///PATH or postgresql://USER@HOST/DB")
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:").removeprefix("///")
        if url in ("sqlite:", "sqlite://") or path in ("", ":memory:") or "mode=memory" in url:
            raise RadiolocError(f"{option} {url!r}: an in-memory SQLite database is not shared by the service's workers; give sqlite:///PATH")
        if path.split("?", 1)[0].endswith("/"):  # SQLite would create a file named like the folder
            raise RadiolocError(f"{option} {url!r}: names a folder; give the database file, e.g. sqlite:///{path.split('?', 1)[0]}radioloc.db")
        from radioloc.datasets.layout import enclosing_artifact

        artifact = enclosing_artifact(Path(path.split("?", 1)[0]).resolve().parent)  # the database and its -wal/-shm files
        if artifact is not None:
            raise RadiolocError(f"{option} {url!r}: lies in {artifact}, whose files only its own commands write; put the database elsewhere")


def service_environment(environ: dict[str, str] | None = None) -> ServiceEnvironment:
    """The ``RADIOLOC_*`` variables of ``environ`` (default ``os.environ``), empty ones as unset; one line naming the
    variable on a bad value or an unknown ``RADIOLOC_`` name (a typo would otherwise be ignored)."""
    environ = os.environ if environ is None else environ
    values = {name: value for name, value in environ.items() if name.startswith("RADIOLOC_") and value != ""}
    known = set(ServiceEnvironment.model_fields) | {"RADIOLOC_TEST_POSTGRES"}
    unknown = sorted(set(values) - known)
    if unknown:
        raise RadiolocError(f"{unknown[0]}: unknown variable (radioloc reads {', '.join(sorted(ServiceEnvironment.model_fields))})")
    values.pop("RADIOLOC_TEST_POSTGRES", None)
    try:
        return ServiceEnvironment.model_validate(values)
    except ValidationError as exc:
        name, message, _ = first_validation_error(exc)
        raise RadiolocError(f"{name or 'environment'}={values.get(name, '')!r}: {message}") from None
