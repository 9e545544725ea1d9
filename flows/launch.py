"""Launching a batch of referrals (a mass rescue) as one flow run, never a process per referral."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.client.orchestration import get_client
from pydantic import ValidationError

from flows.referral import sync_referrals
from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.engine import launch
from models.errors import BadInput
from models.intake import Intake
from models.seal import Sealer
from models.settings import Settings, get_settings
from notifications.relay import relay_now


def read_batch(path: Path) -> list[Intake]:
    """The intakes of a JSON Lines file; errors name the line, never its content."""
    intakes = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            intakes.append(Intake.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            raise BadInput(f"{path.name} line {number}: not a valid intake") from None
    if not intakes:
        raise BadInput(f"{path.name}: no intakes in the file")
    return intakes


def launch_intakes(
    settings: Settings, intakes: list[Intake], batch: str, now: datetime | None = None
) -> list[tuple[int, str]]:
    """Launch every intake in one transaction; return (referral id, reference) pairs."""
    moment = now or datetime.now(UTC)
    catalog = load_catalog(settings)
    sealer = Sealer(settings.resolved_secret_key())
    with transaction(engine_for(settings.resolved_database_url)) as session:
        referrals = [
            launch(session, intake=i, catalog=catalog, sealer=sealer, now=moment, batch=batch)
            for i in intakes
        ]
        return [(r.id, r.reference) for r in referrals if r.id is not None]


@flow(name="launch-batch", flow_run_name="{batch}", persist_result=False)
def launch_batch(intake_file: str, batch: str) -> list[str]:
    """Launch a batch of intakes in one transaction, send the first messages, then show the runs."""
    settings = get_settings()
    launched = launch_intakes(settings, read_batch(Path(intake_file)), batch)
    ids = [i for i, _ in launched]
    # Messages first: the agencies must not wait for Prefect.
    report = relay_now(settings, referral_ids=ids)
    with get_client(sync_client=True) as client:
        sync_referrals(settings, ids, client)
    get_run_logger().info("launched %d referrals; %d messages sent", len(ids), report.sent)
    return [reference for _, reference in launched]
