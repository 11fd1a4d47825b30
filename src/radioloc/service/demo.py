"""``radioloc serve --demo``: a demo deployment (a generated 1 x 1 km city, DPM maps, the shipped localizers) built
on first start, and a client and an admin key (``RADIOLOC_DEMO_KEY`` / ``RADIOLOC_ADMIN_KEY`` when set)."""

from __future__ import annotations

import os

from radioloc.deploy.build import DeploymentSpec, build_deployment
from radioloc.deploy.deployment import DeploymentStore
from radioloc.service.app import sync_deployments
from radioloc.service.db import Database

DEMO = DeploymentSpec(id="demo", name="Demo city (generated, 1 x 1 km)", city="generated:7", size_m=1024, base_stations="auto:150", survey=6000, seed=0)


def ensure_demo(store: DeploymentStore, db: Database, workers: int, quiet: bool = False) -> tuple[str, str]:
    """Build the demo deployment unless it exists (resuming a killed build), register it, and return
    (client key, admin key): the environment's, else new ones (each start prints working keys)."""
    if DEMO.id not in store.ids():
        build_deployment(store, DEMO, workers=workers, quiet=quiet)
    sync_deployments(db, store)
    _, client = db.create_key("demo client", "client", DEMO.id, os.environ.get("RADIOLOC_DEMO_KEY") or None)
    _, admin = db.create_key("demo admin", "admin", None, os.environ.get("RADIOLOC_ADMIN_KEY") or None)
    return client, admin
