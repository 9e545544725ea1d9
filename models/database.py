"""Database setup: engines for SQLite (WAL, BEGIN IMMEDIATE) and PostgreSQL, sessions,
migrations."""

from __future__ import annotations

import gc
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import closing, contextmanager
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

from sqlalchemy import DateTime, String, TypeDecorator, event
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session, create_engine

from models.faults import crash_point
from models.settings import PRIVATE_FILE_MODE, make_private_dir, sqlite_file

MIGRATIONS = Path(__file__).resolve().parent / "migrations"


class UTCDateTime(TypeDecorator):
    """A timestamp stored in UTC; SQLite drops the offset, so UTC is re-attached on load."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware UTC time")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, _dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class EnumText(TypeDecorator):
    """A StrEnum stored as its plain value, so new members need no schema change."""

    impl = String
    cache_ok = True

    def __init__(self, enum_class: type[StrEnum], length: int = 24) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value, _dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value, _dialect):
        return None if value is None else self.enum_class(value)


def make_engine(url: str) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE transactions."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if (database := sqlite_file(url)) is not None:
            make_private_dir(database.parent)
            # SQLite gives its -wal, -shm and -journal files the database file's mode: a file
            # made 0600 here keeps all of them from other users, whatever the umask.
            flags = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC
            try:
                os.close(os.open(database, flags, PRIVATE_FILE_MODE))
            except OSError:
                pass  # SQLite reports an unusable path itself, at the first connection
        engine = create_engine(url, hide_parameters=True, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:
            # Let SQLAlchemy emit BEGIN itself, so every transaction can take the write lock first.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn) -> None:
            # A deferred read-then-write transaction fails at once with "database is locked".
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, hide_parameters=True, pool_pre_ping=True)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One shared engine per database URL in this process."""
    return make_engine(url)


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A session whose work commits on success and rolls back on any error."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            crash_point("before-commit")
            session.commit()
            crash_point("after-commit")
        except BaseException:
            session.rollback()
            raise


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused for a bulk write.

    A batch launch builds a few hundred thousand short-lived dicts and tuples, none in a cycle;
    each allocation count past the collector's threshold starts a pass, and the oldest
    generation's passes walk every object the process holds: a sixth to a quarter of a
    1,000-referral launch in the benchmark's process. Reference counting still frees each object
    when its last use ends; the collector resumes (if it ran before) when the block ends, even
    on an error.
    """
    if not gc.isenabled():  # paused already, by the caller or another thread
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def migrate(url: str) -> None:
    """Bring the case database at `url` to the newest schema (Alembic upgrade head)."""
    # Alembic loads here only: every other command starts faster without it.
    from alembic import command  # noqa: PLC0415
    from alembic.config import Config  # noqa: PLC0415

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["engine"] = engine_for(url)
    command.upgrade(config, "head")


def backup_database(url: str, target: Path) -> str:
    """Write a consistent copy of the case database at `url` to `target` while it runs.

    SQLite: the online backup API, into a SQLite file (restore: put the file in place of the
    database with every process stopped). PostgreSQL: `pg_dump --format=custom` (restore:
    `pg_restore --clean --if-exists --no-owner -d URL FILE`). Returns the format written.
    The copy holds sealed personal data: it is created owner-only (0600).
    """
    parsed = make_url(url)
    make_private_dir(target.parent)
    if parsed.get_backend_name() == "sqlite":
        source_file = sqlite_file(url)
        if source_file is None or not source_file.exists():
            raise FileNotFoundError(f"no SQLite case database at {url}")
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE))
        with closing(sqlite3.connect(source_file)) as source:
            with closing(sqlite3.connect(target)) as copy:
                source.backup(copy)
        return "sqlite"
    if parsed.get_backend_name() == "postgresql":
        env = dict(os.environ)
        if parsed.password is not None:  # by environment: a command line is visible in `ps`
            env["PGPASSWORD"] = parsed.password
        plain = parsed.set(drivername="postgresql", password=None)
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE))
        subprocess.run(
            ["pg_dump", "--format=custom", "--no-owner", "--file", str(target),
             plain.render_as_string(hide_password=False)],
            env=env, check=True, capture_output=True, timeout=3600,
        )  # fmt: skip
        return "pg_dump-custom"
    raise ValueError(f"no backup method for {parsed.get_backend_name()} databases")


def schema_is_current(url: str) -> bool:
    """True if the case database at `url` has every migration applied (nothing to upgrade)."""
    from alembic.runtime.migration import MigrationContext  # noqa: PLC0415 - as in migrate
    from alembic.script import ScriptDirectory  # noqa: PLC0415

    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    with engine_for(url).connect() as connection:
        return set(MigrationContext.configure(connection).get_current_heads()) == heads
