"""The service's database: deployments (their state; the arrays live on disk beside it), build jobs and API keys.

SQLAlchemy 2 on SQLite by default (``sqlite:///HOME/radioloc.db``, WAL so readers never wait for a writer) or
PostgreSQL (``postgresql+psycopg://...``). The schema is Alembic's (``radioloc/service/migrations``): every start
upgrades to ``head`` first, so several workers (and versions) share one database safely.

API keys are random 32-byte tokens shown once; the database keeps their SHA-256 only (a key has 256 bits of
entropy, so a plain hash cannot be brute-forced, and a lookup is one indexed equality).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, create_engine, event, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from radioloc.errors import RadiolocError
from radioloc.service.environment import check_database_url

ROLES = ("admin", "client")
KEY_PREFIX = "rl_"


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class DeploymentRow(Base):
    __tablename__ = "deployments"

    id: Mapped[str] = mapped_column(String(63), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))  # building, ready, failed
    spec: Mapped[dict] = mapped_column(JSON)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class JobRow(Base):
    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment_id: Mapped[str] = mapped_column(String(63), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # create, replace
    state: Mapped[str] = mapped_column(String(16))  # queued, running, done, failed
    message: Mapped[str] = mapped_column(String(2000), default="")
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    role: Mapped[str] = mapped_column(String(16))
    # a client key answers for one deployment (None: the request names it); admin keys reach every route
    deployment_id: Mapped[str | None] = mapped_column(String(63), ForeignKey("deployments.id", ondelete="SET NULL"), nullable=True)
    created: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def database_url(url: str | None, home: Path) -> str:
    if url is not None:
        check_database_url(url, "--db")
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
        return url
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'radioloc.db'}"


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record):
            cursor = connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=FULL")  # a committed write survives a kill -9 and a power cut
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)


def migrate(url: str) -> None:
    """Upgrade the database to the newest schema (Alembic ``upgrade head``)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    try:
        command.upgrade(config, "head")
    except Exception as exc:  # an unreachable server, a wrong password, a database of another program
        raise RadiolocError(f"--db: cannot prepare the database ({str(exc).splitlines()[0]})") from None


class Database:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def session(self) -> Session:
        return self.sessions()

    def alive(self) -> bool:
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
            return True
        except Exception:
            return False

    # -- keys ---------------------------------------------------------------------------------------------------
    def create_key(self, name: str, role: str, deployment_id: str | None = None, key: str | None = None) -> tuple[ApiKeyRow, str]:
        if role not in ROLES:
            raise RadiolocError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
        key = key or new_key()
        with self.session() as session, session.begin():
            existing = session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key)))
            if existing is not None:
                return existing, key
            row = ApiKeyRow(name=name, key_hash=hash_key(key), role=role, deployment_id=deployment_id)
            session.add(row)
        return row, key

    def key(self, key: str | None) -> ApiKeyRow | None:
        if not key:
            return None
        with self.session() as session:
            return session.scalar(select(ApiKeyRow).where(ApiKeyRow.key_hash == hash_key(key)))
