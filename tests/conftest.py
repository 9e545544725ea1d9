"""Shared fixtures: a temporary home, the case database on SQLite or PostgreSQL, the catalog."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from models.catalog import Catalog, load_catalog, register_pathways
from models.database import engine_for, migrate, transaction
from models.seal import Sealer
from models.settings import PROJECT_ROOT, Settings, get_settings

PG_ADMIN = os.environ.get(
    "RUJUKAN_TEST_PG", "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
)
EXAMPLE_INTAKE = json.loads((PROJECT_ROOT / "examples" / "intake.json").read_text())


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """An empty RUJUKAN_HOME."""
    path = tmp_path / "var"
    path.mkdir()
    return path


@pytest.fixture
def settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings pointing at the temporary home (environment variables, as an operator sets them)."""
    monkeypatch.setenv("RUJUKAN_HOME", str(home))
    monkeypatch.setenv("RUJUKAN_SECRET_KEY", "test-secret-key")
    get_settings.cache_clear()
    yield get_settings()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def postgres_database() -> str:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable ({PG_ADMIN}): {exc.__class__.__name__}")
    name = f"rujukan_test_{uuid.uuid4().hex[:8]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine_for.cache_clear()
    # a fresh connection: a test may have restarted the server meanwhile
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=10) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> str:
    """The case database URL, once on a SQLite file and once on the local PostgreSQL."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'case.db'}"
    else:
        url = request.getfixturevalue("postgres_database")
        engine = engine_for(url)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def engine(database_url: str, settings: Settings):
    """A migrated case database."""
    migrate(database_url)
    return engine_for(database_url)


@pytest.fixture
def catalog(settings: Settings) -> Catalog:
    """The shipped directory and pathways."""
    return load_catalog(settings)


@pytest.fixture
def sealer() -> Sealer:
    """The sealer for the test key."""
    return Sealer("test-secret-key")


@pytest.fixture
def now() -> datetime:
    """A fixed Monday morning, 2026-12-07 09:00 WIB."""
    return datetime(2026, 12, 7, 2, 0, tzinfo=UTC)


@pytest.fixture
def intake_data() -> dict:
    """The example intake of the README, as a fresh dict."""
    return json.loads(json.dumps(EXAMPLE_INTAKE))


# --- one Prefect test server for the whole session (flows, security, ...) --------------------
@pytest.fixture(scope="session")
def prefect_api() -> str:
    """The URL of a session-scoped Prefect test server, also exported as PREFECT_API_URL."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY,
        PREFECT_SERVER_ANALYTICS_ENABLED,
        temporary_settings,
    )
    from prefect.testing.utilities import prefect_test_harness

    with (
        temporary_settings(updates={PREFECT_SERVER_ANALYTICS_ENABLED: False}),
        prefect_test_harness(server_startup_timeout=60),
    ):
        # The env var cannot switch the heartbeat off; only temporary_settings can.
        with temporary_settings(updates={PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            # Not exported to the environment here: flows.server.api_url reads PREFECT_API_URL
            # from it, and tests of other packages must not find this server (see with_prefect).
            yield PREFECT_API_URL.value()


@pytest.fixture
def prefect_client(prefect_api: str):
    """A synchronous client of the test server."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


@pytest.fixture
def case_db(settings: Settings, catalog) -> Settings:
    """A migrated SQLite case database under the temporary home, pathways registered."""
    migrate(settings.resolved_database_url)
    with transaction(engine_for(settings.resolved_database_url)) as session:
        register_pathways(session, catalog, datetime.now(UTC))
    return settings
