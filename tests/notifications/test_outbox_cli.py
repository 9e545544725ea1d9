"""`rujukan outbox`: dead messages are listed and can be retried."""

from __future__ import annotations

import json

from sqlmodel import select
from typer.testing import CliRunner

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from models.outbox import OutboxMessage, OutboxStatus
from models.settings import get_settings
from notifications.mailbox import read_mailbox
from tests.notifications.conftest import catalog_for, mailto, write_channels


def test_a_dead_message_is_listed_and_retried(
    engine, settings, sealer, intake_data, now, mailbox, monkeypatch
):
    from cli.main import app

    # The test mailbox listens on 127.0.0.1, which channels may reach only when allowed.
    monkeypatch.setenv("RUJUKAN_ALLOWED_WEBHOOK_HOSTS", "127.0.0.1")
    get_settings.cache_clear()

    with transaction(engine) as session:
        launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog_for(settings),
            sealer=sealer,
            now=now,
        )
        row = session.exec(select(OutboxMessage)).one()
        row.status, row.attempts, row.last_error = (
            OutboxStatus.dead,
            8,
            "attempt 8: FAILURE; gave up",
        )
        session.add(row)
    runner = CliRunner()

    listed = runner.invoke(app, ["outbox", "--status", "dead", "--json"])
    assert listed.exit_code == 0, listed.output
    [entry] = json.loads(listed.output)
    assert (entry["id"], entry["status"], entry["recipient"]) == (row.id, "dead", "polres-ppa")
    assert runner.invoke(app, ["outbox", "list", "--status", "nonsense"]).exit_code != 0

    write_channels(settings, {"polres-ppa": mailto(mailbox, "polres-ppa")})
    retried = runner.invoke(app, ["outbox", "retry", "--all-dead", "--json"])

    assert retried.exit_code == 0, retried.output
    assert json.loads(retried.output) == {
        "queued": 1,
        "sent": 1,
        "failed": 0,
        "dead": 0,
        "skipped": 0,
        "sends": 1,
        "waiting": 0,
    }
    assert len(read_mailbox(settings)) == 1
    with transaction(engine) as session:
        assert session.get(OutboxMessage, row.id).status == OutboxStatus.sent
    assert json.loads(runner.invoke(app, ["outbox", "--json"]).output) == []
