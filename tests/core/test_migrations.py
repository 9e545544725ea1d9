"""Migrations keep what was recorded: an override reason written before 0003 is sealed, not lost."""

from alembic import command
from alembic.config import Config
from sqlalchemy import text

from models.database import MIGRATIONS, engine_for, migrate
from models.seal import Sealer


def test_override_reasons_are_sealed_by_the_upgrade(database_url, settings):
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    config.attributes["engine"] = engine_for(database_url)
    command.upgrade(config, "0002")
    with engine_for(database_url).begin() as conn:
        conn.execute(text("INSERT INTO referral (id, reference, pathway_id, pathway_version, urgency, status, "
                          "coordinator, coordinator_agency, options, created_at) VALUES (1, 'RJK-AAAA-22', "
                          "'tppo-anak', 1, 'regular', 'active', 'c-1', 'uptd-ppa', '{}', '2026-12-01 00:00:00')"))
        conn.execute(text("INSERT INTO consent (referral_id, override, recorded_by, reason, recorded_at) "
                          "VALUES (1, true, 'c-1', 'child best interest', '2026-12-01 00:00:00')"))
    migrate(database_url)
    with engine_for(database_url).begin() as conn:
        sealed = conn.execute(text("SELECT reason_sealed FROM consent")).scalar_one()
        columns = [c for c in conn.execute(text("SELECT * FROM consent")).keys()]
    assert "child best interest" not in sealed and "reason" not in columns
    assert Sealer(settings.resolved_secret_key()).open(sealed) == {"reason": "child best interest"}
