"""Migrations keep what was recorded: an override reason written before 0003 is sealed, not lost."""

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from models.database import MIGRATIONS, engine_for, migrate
from models.seal import Sealer

# A referral as an earlier revision stored it (the columns of 0001).
REFERRAL_ROW = text(
    "INSERT INTO referral (id, reference, pathway_id, pathway_version, urgency, "
    "status, coordinator, coordinator_agency, options, created_at) VALUES (1, "
    "'RJK-AAAA-22', 'tppo-anak', 1, 'regular', 'active', 'c-1', 'uptd-ppa', '{}', "
    "'2026-12-01 00:00:00')"
)


def _upgrade_to(revision: str, database_url: str) -> None:
    """Migrate an empty database up to `revision` only, as an older Rujukan left it."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["engine"] = engine_for(database_url)
    command.upgrade(config, revision)


def test_override_reasons_are_sealed_by_the_upgrade(database_url, settings):
    _upgrade_to("0002", database_url)
    with engine_for(database_url).begin() as conn:
        conn.execute(REFERRAL_ROW)
        conn.execute(
            text(
                "INSERT INTO consent (referral_id, override, recorded_by, reason, recorded_at) "
                "VALUES (1, true, 'c-1', 'child best interest', '2026-12-01 00:00:00')"
            )
        )
    migrate(database_url)
    with engine_for(database_url).begin() as conn:
        sealed = conn.execute(text("SELECT reason_sealed FROM consent")).scalar_one()
        columns = [c for c in conn.execute(text("SELECT * FROM consent")).keys()]
    assert "child best interest" not in sealed and "reason" not in columns
    assert Sealer(settings.resolved_secret_key()).open(sealed) == {"reason": "child best interest"}


def test_the_migrations_build_exactly_the_tables_of_the_models(engine, database_url):
    """A column added to a model without its migration (or the reverse) fails here."""
    import importlib
    import pkgutil

    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import models

    for module in pkgutil.iter_modules(models.__path__):
        importlib.import_module(f"models.{module.name}")
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert differences == []


def test_upgrading_an_outbox_keeps_its_rows_and_remembers_no_channel_yet(database_url, settings):
    _upgrade_to("0003", database_url)
    with engine_for(database_url).begin() as conn:
        conn.execute(REFERRAL_ROW)
        conn.execute(
            text(
                "INSERT INTO outbox (id, dedup_key, event, recipient, referral_id, created_at, "
                "status, attempts, next_attempt_at) VALUES (1, 'k1', 'assigned', 'dinsos', 1, "
                "'2026-12-01 00:00:00', 'failed', 2, '2026-12-01 00:05:00')"
            )
        )
    migrate(database_url)
    with engine_for(database_url).begin() as conn:
        row = conn.execute(text("SELECT status, attempts, delivered_to FROM outbox")).one()
    assert (row.status, row.attempts) == ("failed", 2)
    assert row.delivered_to in ([], "[]")


def test_a_database_of_the_earlier_digest_still_matches_its_unchanged_pathways(
    database_url, settings
):
    """0005 recomputes stored fingerprints: an unchanged pathway file is not 'changed'."""
    import hashlib
    import json
    from datetime import UTC, datetime

    from models.catalog import load_catalog, register_pathways
    from models.database import transaction

    _upgrade_to("0004", database_url)
    catalog = load_catalog(settings)
    pathway = catalog.pathway("tppo-dewasa")
    earlier = pathway.model_dump(mode="json")
    earlier.pop("demo")  # the schema before it had the field
    canonical = json.dumps(earlier, sort_keys=True)
    with engine_for(database_url).begin() as conn:
        conn.execute(
            text(
                "INSERT INTO pathway_version (id, version, digest, definition, registered_at) "
                "VALUES (:id, :v, :d, :j, '2026-12-01 00:00:00')"
            ),
            {
                "id": pathway.id,
                "v": pathway.version,
                "j": json.dumps(earlier),
                "d": hashlib.sha256(canonical.encode()).hexdigest(),
            },
        )
    migrate(database_url)
    with transaction(engine_for(database_url)) as session:
        added = register_pathways(session, catalog, datetime.now(UTC))
    assert f"{pathway.id} v{pathway.version}" not in added  # matched, not refused, not re-added
    with engine_for(database_url).begin() as conn:
        stored = conn.execute(
            text("SELECT digest FROM pathway_version WHERE id = 'tppo-dewasa'")
        ).one()
    assert stored.digest == pathway.digest()
