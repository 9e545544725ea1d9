"""The relay's batched work: channels found by tag through an index that gives what Apprise's
own search gives, the reads of a tick done once for all its rows, and every row recorded with its
own outcome when many are recorded together."""

from __future__ import annotations

import re
from collections import Counter

import apprise
import yaml
from sqlalchemy import event, update
from sqlalchemy.engine import Engine
from sqlmodel import select

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from models.outbox import OutboxMessage, OutboxStatus
from notifications.channels import usable_apprise
from notifications.relay import relay_now
from tests.network import free_port
from tests.notifications.conftest import catalog_for, write_channels


def _launch_to(engine, settings, sealer, intake_data, now, recipients: list[str]) -> None:
    """One referral per recipient; its first message goes to that recipient alone."""
    for recipient in recipients:
        with transaction(engine) as session:
            referral = launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog_for(settings),
                sealer=sealer,
                now=now,
            )
            session.flush()
            session.exec(  # type: ignore[call-overload]
                update(OutboxMessage)
                .where(OutboxMessage.referral_id == referral.id)
                .values(recipient=recipient)
            )


def _rows(engine) -> dict[str, OutboxMessage]:
    with transaction(engine) as session:
        return {r.recipient: r for r in session.exec(select(OutboxMessage)).all()}


def test_the_tag_index_finds_what_apprise_finds(relay_settings):
    path = relay_settings.resolved_apprise_config
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        yaml.safe_dump(
            {
                "version": 1,
                "urls": [
                    {"json://127.0.0.1:9001/a": [{"tag": "polres-ppa"}]},
                    {"json://127.0.0.1:9002/b": [{"tag": "polres-ppa, dinsos"}]},
                    {"json://127.0.0.1:9003/c": [{"tag": "dinsos"}]},
                    {"json://127.0.0.1:9004/d": [{"tag": "always"}]},
                    {"json://127.0.0.1:9005/e": [{"tag": "2:rs-bhayangkara"}]},
                ],
            }
        )
    )
    notifier = usable_apprise(relay_settings)
    asked = ["polres-ppa", "dinsos", "DINSOS", "rs-bhayangkara", "always", "nobody", "all"]
    asked += ["polres-ppa, dinsos", "2:rs-bhayangkara", "1:rs-bhayangkara"]
    for tag in asked:
        found = list(notifier.find(tag, match_always=False))
        assert notifier.channels_for(tag) == found, tag
    assert len(notifier.channels_for("polres-ppa")) == 2
    assert len(notifier.channels_for("rs-bhayangkara")) == 1

    # A channel added later is found too: the index is built again.
    notifier.add(apprise.Apprise.instantiate("json://127.0.0.1:9006/f", tag="dinsos"))
    assert notifier.channels_for("dinsos") == list(notifier.find("dinsos", match_always=False))
    assert len(notifier.channels_for("dinsos")) == 3


def test_a_tick_reads_the_referrals_and_steps_of_its_rows_once(
    engine, relay_settings, sealer, intake_data, now, receiver
):
    recipients = [f"tag-{n}" for n in range(6)]
    _launch_to(engine, relay_settings, sealer, intake_data, now, recipients)
    write_channels(relay_settings, {r: receiver.url(r) for r in recipients})

    reads: Counter[str] = Counter()

    def count(conn, cursor, statement, parameters, context, executemany) -> None:
        found = re.match(r"\s*SELECT\b.*?\bFROM\s+\"?(\w+)", statement, re.S | re.I)
        if found:
            reads[found.group(1).lower()] += 1

    event.listen(Engine, "before_cursor_execute", count)
    try:
        report = relay_now(relay_settings, now=now)
    finally:
        event.remove(Engine, "before_cursor_execute", count)

    assert (report.sent, report.sends, report.errors) == (6, 6, [])
    assert len(receiver.received) == 6
    # Six messages, each needing its referral and its step: one query each for the whole tick.
    assert reads["referral"] == 1, reads
    assert reads["step"] == 1, reads


def test_rows_recorded_together_keep_their_own_outcome(
    engine, relay_settings, sealer, intake_data, now, receiver
):
    recipients = [f"tag-{n}" for n in range(5)]
    _launch_to(engine, relay_settings, sealer, intake_data, now, recipients)
    nobody = f"json://127.0.0.1:{free_port()}/down"  # nothing listens there: refused
    channels = {r: receiver.url(r) for r in recipients}
    channels["tag-2"] = nobody
    write_channels(relay_settings, channels)

    report = relay_now(relay_settings, now=now)

    assert (report.sent, report.failed, report.sends) == (4, 1, 5)
    rows = _rows(engine)
    failed = rows.pop("tag-2")
    assert (failed.status, failed.attempts, failed.delivered_to) == (OutboxStatus.failed, 1, [])
    assert failed.lease_until is None and failed.next_attempt_at > now
    assert failed.last_error and failed.last_error.startswith("attempt 1: ")
    for row in rows.values():
        assert (row.status, row.attempts, row.sent_at, row.lease_until, row.last_error) == (
            OutboxStatus.sent,
            1,
            now,
            None,
            None,
        )
    # Each sent row names the one channel that has it, its recipient's own.
    assert all(len(row.delivered_to) == 1 for row in rows.values())
    assert len({row.delivered_to[0] for row in rows.values()}) == 4
    assert len(receiver.received) == 4
