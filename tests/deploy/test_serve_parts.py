"""`rujukan serve --only`: what a host of a larger deployment is told before anything starts."""

from __future__ import annotations

import pytest

from models.settings import get_settings

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_unknown_parts_are_named_with_the_known_ones(cli):
    refused = cli("serve", "--only", "worker,frontend", ok=False)
    assert refused.returncode == 2
    assert "api, services, worker, inbox, relay (unknown: frontend)" in refused.stderr


def test_the_demo_is_all_in_one(cli):
    refused = cli("serve", "--demo", "--only", "inbox", ok=False)
    assert refused.returncode == 2 and "leave out --only" in refused.stderr


def test_parts_without_the_api_need_its_address(cli, monkeypatch):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    refused = cli("serve", "--only", "worker,relay", ok=False)
    assert refused.returncode == 2 and "PREFECT_API_URL is not set" in refused.stderr


def test_parts_never_migrate_a_database_init_has_not(cli, monkeypatch, tmp_path):
    monkeypatch.setenv("RUJUKAN_DATABASE_URL", f"sqlite:///{tmp_path / 'other.db'}")
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    refused = cli("serve", "--only", "inbox", ok=False)
    assert refused.returncode == 2 and "run `rujukan init` once" in refused.stderr
    get_settings.cache_clear()
