"""One Prefect test server for the whole flows suite; flow heartbeats off (1 s per sync run)."""

from __future__ import annotations

from datetime import UTC

import pytest

from models.catalog import register_pathways
from models.database import engine_for, migrate, transaction
from models.settings import Settings


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
    from datetime import datetime

    with transaction(engine_for(settings.resolved_database_url)) as session:
        register_pathways(session, catalog, datetime.now(UTC))
    return settings
