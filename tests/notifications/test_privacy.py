"""Canary personal data planted in the person's record never reaches a message, an outbox row or a
log.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlmodel import select

from models.actions import (
    Actor,
    accept_step,
    complete_step,
    decide_extension,
    decline_step,
    launch,
    load_step,
    request_extension,
    reroute_step,
)
from models.database import transaction
from models.intake import Intake
from models.outbox import MessageEvent, OutboxMessage
from models.sweep import sweep
from notifications.relay import relay_now
from notifications.render import render_outbox_message
from tests.notifications.conftest import catalog_for, write_channels

CANARIES = {
    "name": "Kanarikuning Zqxwvu",
    "phone": "+62 811 7777 4242",
    "address": "Jalan Kenari Zqxwvu Nomor 99",
    "home_district": "Kabupaten Zqxwvuland",
}


def test_canary_personal_data_never_leaves_the_sealed_record(
    engine,
    relay_settings,
    sealer,
    intake_data,
    now,
    receiver,
    caplog,
):
    caplog.set_level(logging.DEBUG)  # even if someone turns every logger up
    intake_data["person"].update(CANARIES)
    agencies = {a.slug for a in catalog_for(relay_settings).directory.agencies}
    write_channels(relay_settings, {slug: receiver.url(slug) for slug in agencies})
    catalog = catalog_for(relay_settings)
    police = Actor("agency", "ani", "polres-ppa")

    with transaction(engine) as session:
        ref = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        ).reference
    with transaction(engine) as session:
        accept_step(
            session=session,
            step=load_step(
                session=session, reference=ref, step_ref="identifikasi", agency="polres-ppa"
            ),
            actor=police,
            now=now,
        )
        complete_step(
            session=session,
            step=load_step(
                session=session, reference=ref, step_ref="identifikasi", agency="polres-ppa"
            ),
            outcome="served",
            actor=police,
            now=now,
            catalog=catalog,
        )
    later = now + timedelta(hours=1)
    with transaction(engine) as session:
        decline_step(
            session=session,
            step=load_step(session=session, reference=ref, step_ref="rumah-aman", agency="dinsos"),
            reason="no-capacity",
            actor=Actor("agency", "budi", "dinsos"),
            now=later,
        )
        request_extension(
            session=session,
            step=load_step(session=session, reference=ref, step_ref="kesehatan", agency="dinkes"),
            until=now + timedelta(days=3),
            reason="victim-unavailable",
            actor=Actor("agency", "citra", "dinkes"),
            now=later,
        )
    with transaction(engine) as session:
        decide_extension(
            session=session,
            step=load_step(session=session, reference=ref, step_ref="kesehatan"),
            approve=True,
            actor=Actor("coordinator", "coordinator-1"),
            now=later,
        )
    for hours in (67, 80, 120):  # reminder, overdue, escalation of the extended step
        with transaction(engine) as session:
            sweep(session, catalog=catalog, now=now + timedelta(hours=hours))

    with transaction(engine) as session:
        rows = session.exec(select(OutboxMessage)).all()
        rendered = [
            render_outbox_message(
                session, message=row, catalog=catalog, settings=relay_settings, now=now
            )
            for row in rows
        ]
    events = {row.event for row in rows}
    assert {
        MessageEvent.assigned,
        MessageEvent.declined,
        MessageEvent.extension_requested,
        MessageEvent.extension_approved,
        MessageEvent.reminder,
        MessageEvent.overdue,
        MessageEvent.escalated,
    } <= events

    report = relay_now(relay_settings, now=now + timedelta(hours=120))
    assert report.sent == len(rows) and report.failed == 0

    rendered_text = "\n".join(m.subject + m.text + m.markdown + m.html for m in rendered)
    rows_text = "\n".join(repr(row.model_dump()) for row in rows)
    received_text = repr(receiver.received) + repr(receiver.headers)
    log_text = caplog.text
    # several notices to one agency went out as one digest: each send arrived, every row is sent
    assert len(receiver.received) == report.sends < len(rows)
    assert any("pemberitahuan Rujukan" in str(r) for r in receiver.received)  # a digest among them
    for label, stores in [
        ("rendered", rendered_text),
        ("outbox", rows_text),
        ("received", received_text),
        ("logs", log_text),
    ]:
        for field_name, canary in CANARIES.items():
            assert canary not in stores, f"{field_name} leaked into {label}"
            assert "Zqxwvu" not in stores, f"{field_name} leaked into {label}"
    # dinkes hides its step titles: its health step is never named, to anyone
    for text in (rendered_text, received_text):
        assert "kesehatan" not in text.lower().replace("dinas kesehatan", "")
    assert "Body" not in log_text and "Payload" not in log_text  # Apprise's debug lines stay out


def test_a_hidden_step_title_stays_hidden_after_a_reroute(
    engine, relay_settings, sealer, now, intake_data
):
    """dinkes hides its step titles; its health step re-routed to the NGO keeps the title hidden."""
    catalog = catalog_for(relay_settings)
    data = intake_data
    police = Actor("agency", "ani", "polres-ppa")
    with transaction(engine) as session:
        ref = launch(
            session, intake=Intake.model_validate(data), catalog=catalog, sealer=sealer, now=now
        ).reference
        ident = load_step(session=session, reference=ref, step_ref="identifikasi")
        accept_step(session=session, step=ident, actor=police, now=now)
        complete_step(
            session=session, step=ident, outcome="served", actor=police, now=now, catalog=catalog
        )
        health = load_step(session=session, reference=ref, step_ref="kesehatan")
        decline_step(
            session=session,
            step=health,
            reason="no-capacity",
            actor=Actor("agency", "citra", "dinkes"),
            now=now,
        )
        reroute_step(
            session=session,
            step=health,
            to_agency="ngo",
            actor=Actor("coordinator", "coordinator-1"),
            now=now,
            catalog=catalog,
        )
        [to_ngo] = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.recipient == "ngo", OutboxMessage.event == MessageEvent.assigned
            )
        ).all()
        message = render_outbox_message(
            session, message=to_ngo, catalog=catalog, settings=relay_settings, now=now
        )
    title = catalog.pathway("tppo-dewasa").step("kesehatan").title
    for text in (message.subject, message.text, message.html):
        assert title.id not in text and title.en not in text
