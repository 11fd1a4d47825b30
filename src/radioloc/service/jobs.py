"""Deployment builds as background jobs: queued in the database, claimed by one worker, run as a child
``radioloc deploy create`` (resumable: a job whose process died is queued again and resumes from its staging
folder), the deployment marked ready only once it is published whole."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import select, update

from radioloc.deploy.deployment import DeploymentStore
from radioloc.io import LOCK_FILE
from radioloc.service.db import Database, DeploymentRow, JobRow

POLL_S = 1.0


def build_command(spec: dict, home: Path) -> list[str]:
    command = [sys.executable, "-m", "radioloc.cli", "deploy", "create", spec["id"], "--home", str(home), "--city", spec["city"],
               "--size", str(spec["size_m"]), "--bs", spec["base_stations"], "--sim", spec.get("maps", "DPM"), "--truth", spec["truth"], "--localizers", ",".join(spec["localizers"]),
               "--survey", str(spec["survey"]), "--seed", str(spec["seed"]), "--name", spec.get("name") or spec["id"]]  # fmt: skip
    if spec.get("origin"):
        command += ["--origin", f"{spec['origin'][0]},{spec['origin'][1]}"]
    if spec.get("replace"):
        command.append("--replace")
    return command


def _lock_free(folder: Path) -> bool:
    """Whether nobody holds the build lock of a staging folder (a builder that died released it)."""
    import fcntl
    import os

    if not (folder / LOCK_FILE).exists():
        return True
    fd = os.open(folder / LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


class JobRunner:
    def __init__(self, db: Database, store: DeploymentStore):
        self.db = db
        self.store = store
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.requeue_orphans()
        self._thread = threading.Thread(target=self._loop, name="radioloc-jobs", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def requeue_orphans(self) -> None:
        """Jobs marked running whose builder is gone (a killed server) go back to the queue."""
        with self.db.session() as session, session.begin():
            for job in session.scalars(select(JobRow).where(JobRow.state == "running")):
                if _lock_free(self.store.staging(job.deployment_id)):
                    job.state, job.message = "queued", "resumed after its builder stopped"

    def _claim(self) -> JobRow | None:
        with self.db.session() as session, session.begin():
            job = session.scalar(select(JobRow).where(JobRow.state == "queued").order_by(JobRow.id).limit(1))
            if job is None:
                return None
            claimed = session.execute(update(JobRow).where(JobRow.id == job.id, JobRow.state == "queued").values(state="running", message="building"))
            return job if claimed.rowcount == 1 else None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._claim()
            except Exception:  # the database is down: the heartbeat reports it; try again
                job = None
            if job is None:
                self._stop.wait(POLL_S)
                continue
            self.run(job)

    def run(self, job: JobRow) -> None:
        with self.db.session() as session:
            row = session.get(DeploymentRow, job.deployment_id)
            spec = dict(row.spec) if row else None
        if spec is None:
            self._finish(job.id, job.deployment_id, "failed", "the deployment was deleted")
            return
        log = self.store.root / "jobs" / f"{job.id}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("ab") as out:
            result = subprocess.run(build_command(spec, self.store.root), stdout=out, stderr=subprocess.STDOUT)
        if result.returncode == 0:
            self._finish(job.id, job.deployment_id, "done", "published")
        else:
            lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
            self._finish(job.id, job.deployment_id, "failed", (lines[-1] if lines else f"exit status {result.returncode}")[:1900])

    def _finish(self, job_id: int, deployment_id: str, state: str, message: str) -> None:
        with self.db.session() as session, session.begin():
            job = session.get(JobRow, job_id)
            if job is not None:
                job.state, job.message = state, message
            row = session.get(DeploymentRow, deployment_id)
            if row is not None:
                row.state = "ready" if state == "done" else ("ready" if self.store.path(deployment_id).is_dir() else "failed")
