"""Real messages through Apprise to a local SMTP mailbox and a local HTTP receiver."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from models.links import verify
from models.outbox import OutboxMessage, OutboxStatus
from models.step import Step
from notifications.mailbox import read_mailbox
from notifications.relay import relay_now
from tests.notifications.conftest import catalog_for, directory_with, mailto, write_channels


def _launch(engine, settings, sealer, intake_data, now):
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog_for(settings),
            sealer=sealer,
            now=now,
        )
    return referral


def _only_row(engine) -> OutboxMessage:
    with transaction(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
    assert len(rows) == 1
    return rows[0]


@pytest.mark.parametrize(
    ("locale", "zone", "abbreviation", "local_due", "words"),
    [
        (
            "id",
            "Asia/Jakarta",
            "WIB",
            "2026-12-08 09:00",
            ("Tugas baru", "Identifikasi korban"),
        ),
        (
            "en",
            "Asia/Makassar",
            "WITA",
            "2026-12-08 10:00",
            ("New step for your agency", "Victim identification"),
        ),
    ],
)
def test_mail_arrives_in_the_agencys_language_and_local_time(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    mailbox,
    tmp_path,
    locale,
    zone,
    abbreviation,
    local_due,
    words,
):
    settings = relay_settings.model_copy(
        update={
            "agencies_file": directory_with(
                tmp_path, {"polres-ppa": {"locale": locale, "timezone": zone}}
            )
        }
    )
    write_channels(settings, {"polres-ppa": mailto(mailbox, "polres-ppa")})
    referral = _launch(engine, settings, sealer, intake_data, now)

    report = relay_now(settings, referral_ids=[referral.id], now=now)

    assert report.sent == 1 and report.failed == 0
    [mail] = read_mailbox(settings)
    assert mail["To"] == "polres-ppa@rujukan.local"
    assert mail["Subject"].startswith(f"[{referral.reference}] {words[0]}")
    assert words[1] in mail["Subject"]
    text = mail.get_body(preferencelist=("plain",)).get_content()
    html = mail.get_body(preferencelist=("html",)).get_content()
    assert f"{local_due} {abbreviation}" in text and f"{local_due} {abbreviation}" in html
    assert referral.reference in text
    link = next(w for w in text.split() if w.startswith(f"{settings.base_url}/s/"))
    claim = verify(settings.resolved_secret_key(), link.rsplit("/", 1)[1], now)
    with transaction(engine) as session:
        step = session.exec(select(Step).where(Step.key == "identifikasi")).one()
    assert (claim.agency, claim.step_id) == ("polres-ppa", step.id)
    assert claim.expires == now + timedelta(days=settings.link_lifetime_days)
    row = _only_row(engine)
    assert (row.status, row.attempts, row.sent_at) == (OutboxStatus.sent, 1, now)


def test_webhook_receives_plain_text_with_reference_deadline_and_link(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
):
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    referral = _launch(engine, relay_settings, sealer, intake_data, now)

    assert relay_now(relay_settings, referral_ids=[referral.id], now=now).sent == 1

    [payload] = receiver.received
    assert payload["title"].startswith(f"[{referral.reference}] Tugas baru")
    assert "Batas waktu: 2026-12-08 09:00 WIB" in payload["message"]
    assert f"{relay_settings.base_url}/s/" in payload["message"]
    assert "<" not in payload["message"]  # the plain-text body, not HTML


def test_an_agency_with_two_channels_gets_both(
    engine, relay_settings, sealer, intake_data, now, receiver, mailbox
):
    write_channels(relay_settings, {"polres-ppa": [receiver.url(), mailto(mailbox, "polres-ppa")]})
    referral = _launch(engine, relay_settings, sealer, intake_data, now)
    assert relay_now(relay_settings, referral_ids=[referral.id], now=now).sent == 1
    assert len(receiver.received) == 1 and len(read_mailbox(relay_settings)) == 1


def test_other_referrals_wait_for_their_own_relay(
    engine, relay_settings, sealer, intake_data, now, receiver
):
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    first = _launch(engine, relay_settings, sealer, intake_data, now)
    second = _launch(engine, relay_settings, sealer, intake_data, now)
    assert relay_now(relay_settings, referral_ids=[second.id], now=now).sent == 1
    assert [p["title"][1:12] for p in receiver.received] == [second.reference]
    assert relay_now(relay_settings, now=now).sent == 1
    assert first.reference in receiver.received[1]["title"]


def test_two_relays_at_once_send_each_message_once(
    engine, relay_settings, sealer, intake_data, now, receiver
):
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    references = [
        _launch(engine, relay_settings, sealer, intake_data, now).reference for _ in range(12)
    ]
    reports = []
    start = threading.Barrier(2)

    def relay() -> None:
        start.wait()
        reports.append(relay_now(relay_settings, now=now))

    threads = [threading.Thread(target=relay) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in reports) == 12, [r.errors for r in reports]
    # One relay claimed them all (the other found them taken): one digest with each reference once.
    assert sum(r.sends for r in reports) == 1 and len(receiver.received) == 1
    body = receiver.received[0]["message"]
    assert all(body.count(reference) == 1 for reference in references)


def test_relay_now_is_quick(engine, relay_settings, sealer, intake_data, now, receiver):
    write_channels(relay_settings, {"polres-ppa": receiver.url()})
    referral = _launch(engine, relay_settings, sealer, intake_data, now)
    relay_now(relay_settings, now=now - timedelta(hours=1))  # warm the caches, as a server has
    started = datetime.now()
    assert relay_now(relay_settings, referral_ids=[referral.id], now=now).sent == 1
    assert (datetime.now() - started).total_seconds() < 1.0
