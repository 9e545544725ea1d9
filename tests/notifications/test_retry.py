"""Failures: retries with full-jitter backoff, dead messages, configuration errors; time is
passed, not slept.
"""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from models.outbox import OutboxMessage, OutboxStatus
from notifications.relay import relay_now
from tests.notifications.conftest import catalog_for, write_channels


def _launch(engine, settings, sealer, intake_data, now) -> None:
    with transaction(engine) as session:
        launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog_for(settings),
            sealer=sealer,
            now=now,
        )


def _row(engine) -> OutboxMessage:
    with transaction(engine) as session:
        return session.exec(select(OutboxMessage)).one()


def test_a_receiver_that_fails_then_recovers_gets_the_message_once(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
):
    receiver.statuses = [500, 500]
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    _launch(engine, relay_settings, sealer, intake_data, now)

    moment = now
    for expected_attempts in (1, 2):
        report = relay_now(relay_settings, now=moment)
        assert report.failed == 1 and report.sent == 0
        row = _row(engine)
        assert (row.status, row.attempts) == (OutboxStatus.failed, expected_attempts)
        assert "FAILURE via json" in row.last_error
        assert relay_now(relay_settings, now=moment).failed == 0  # not due again before its time
        moment = row.next_attempt_at

    assert relay_now(relay_settings, now=moment).sent == 1
    row = _row(engine)
    assert (row.status, row.attempts, row.last_error) == (OutboxStatus.sent, 3, None)
    assert len(receiver.refused) == 2 and len(receiver.received) == 1


def test_a_receiver_that_stays_down_makes_the_message_dead_after_n_attempts(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
):
    receiver.down = True
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    _launch(engine, relay_settings, sealer, intake_data, now)
    base, cap = relay_settings.relay_backoff_base_seconds, relay_settings.relay_backoff_cap_seconds

    moment, waits = now, []
    for attempt in range(1, relay_settings.relay_max_attempts):
        assert relay_now(relay_settings, now=moment).failed == 1
        row = _row(engine)
        wait = row.next_attempt_at - moment
        # full jitter: anywhere from 0 up to min(cap, base * 2^(n-1))
        assert timedelta(0) <= wait <= timedelta(seconds=min(cap, base * 2 ** (attempt - 1)))
        waits.append(wait)
        moment = row.next_attempt_at
    report = relay_now(relay_settings, now=moment)

    assert report.dead == 1
    row = _row(engine)
    assert (row.status, row.attempts) == (OutboxStatus.dead, relay_settings.relay_max_attempts)
    assert "gave up" in row.last_error
    assert len(receiver.refused) == relay_settings.relay_max_attempts and not receiver.received
    assert relay_now(relay_settings, now=moment + timedelta(days=1)).dead == 0  # dead stays dead


def test_backoff_grows_then_stops_at_the_cap():
    from notifications.relay import backoff

    for attempts, ceiling in [(1, 2), (2, 4), (3, 8), (10, 900), (40, 900)]:
        samples = [backoff(attempts, base=2, cap=900).total_seconds() for _ in range(200)]
        assert 0 <= min(samples) and max(samples) <= ceiling
        assert max(samples) > ceiling / 2  # jitter spreads over the whole range


def test_no_channel_for_the_tag_is_a_configuration_error_on_the_row(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
):
    write_channels(relay_settings, {"dinsos": receiver.url()})  # polres-ppa has none
    _launch(engine, relay_settings, sealer, intake_data, now)

    report = relay_now(relay_settings, now=now)

    assert report.failed == 1
    row = _row(engine)
    assert row.status == OutboxStatus.failed
    assert "no channel for 'polres-ppa'" in row.last_error and "channels check" in row.last_error
    assert "Identifikasi" not in row.last_error and "Batas" not in row.last_error  # no body


def test_a_refused_channel_is_never_used_by_the_relay(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
):
    settings = relay_settings.model_copy(update={"allowed_webhook_hosts": ""})
    write_channels(settings, {"polres-ppa": receiver.url()})  # loopback, not allowed
    _launch(engine, settings, sealer, intake_data, now)
    assert relay_now(settings, now=now).failed == 1
    assert not receiver.received and not receiver.refused


def test_a_missing_config_fails_softly(engine, relay_settings, sealer, intake_data, now):
    _launch(engine, relay_settings, sealer, intake_data, now)
    report = relay_now(relay_settings, now=now)
    assert report.failed == 1 and _row(engine).status == OutboxStatus.failed


def test_an_expired_lease_returns_the_row_to_the_queue(
    engine, relay_settings, sealer, intake_data, now, receiver
):
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    _launch(engine, relay_settings, sealer, intake_data, now)
    with transaction(engine) as session:  # a relay that claimed the row, then was killed
        row = session.exec(select(OutboxMessage)).one()
        row.status, row.attempts, row.lease_until = (
            OutboxStatus.sending,
            1,
            now + timedelta(minutes=5),
        )
        session.add(row)
    assert relay_now(relay_settings, now=now + timedelta(minutes=1)).sent == 0
    assert relay_now(relay_settings, now=now + timedelta(minutes=6)).sent == 1
    assert _row(engine).attempts == 2 and len(receiver.received) == 1


def test_when_one_of_two_channels_fails_the_retry_goes_only_to_that_one(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
    mailbox,
):
    from notifications.mailbox import read_mailbox
    from tests.notifications.conftest import mailto

    receiver.statuses = [500, 500]  # the webhook fails twice, then recovers; the mail works
    write_channels(relay_settings, {"polres-ppa": [mailto(mailbox, "polres-ppa"), receiver.url()]})
    _launch(engine, relay_settings, sealer, intake_data, now)

    moment = now
    for expected_attempts in (1, 2):
        assert relay_now(relay_settings, now=moment).failed == 1
        row = _row(engine)
        assert (row.status, row.attempts) == (OutboxStatus.failed, expected_attempts)
        assert "FAILURE via json" in row.last_error and "mailto" not in row.last_error
        assert len(row.delivered_to) == 1  # the mailbox's channel, by fingerprint only
        assert "127.0.0.1" not in str(row.delivered_to)
        moment = row.next_attempt_at

    assert relay_now(relay_settings, now=moment).sent == 1
    row = _row(engine)
    assert (row.status, row.attempts, len(row.delivered_to)) == (OutboxStatus.sent, 3, 2)
    assert len(read_mailbox(relay_settings)) == 1  # not once per attempt
    assert len(receiver.refused) == 2 and len(receiver.received) == 1
