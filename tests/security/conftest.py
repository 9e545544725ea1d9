"""The web fixtures (a real app on a real case database, a test clock, tokens and links), on
SQLite only: these tests try classes of attack on the layers above the database, whose own
behaviour tests/core checks on SQLite and PostgreSQL alike."""

from pathlib import Path

import pytest

from models.settings import get_settings
from tests.web.conftest import client, clock, referral, web_settings, world  # noqa: F401


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The case database: a SQLite file of the test's own."""
    url = f"sqlite:///{tmp_path / 'case.db'}"
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", url)
    get_settings.cache_clear()
    return url
