"""Public reports in the engine: filing, the triage clock on the shared sweep, the triage actions.

Every test runs on SQLite and on the local PostgreSQL (the `engine` fixture).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from models.actions import Actor, launch
from models.audit import AuditEntry, verify_chain
from models.database import transaction
from models.errors import BadInput, IllegalTransition, NotFound
from models.intake import Intake
from models.outbox import OutboxMessage
from models.public_report import (
    ReportChannel,
    ReportStatus,
    acknowledge_report,
    answer_question,
    ask_reporter,
    close_report,
    file_report,
    find_by_receipt,
    forward_report,
    launch_from_report,
    report_of,
    report_status,
    validate_report,
)
from models.referral import Referral, ReferralStatus
from models.step import Step, StepStatus
from models.sweep import sweep
from models.vocabulary import LOCALES
from notifications.render import MessageContext, render

SECRET = "test-secret-key"
COORDINATOR = Actor("coordinator", "rina")


def _file(engine, catalog, sealer, now, **fields):
    data = {"what": "Tetangga dijanjikan kerja di luar negeri", **fields}
    with transaction(engine) as session:
        report, referral, receipt = file_report(
            session, report=validate_report(data), channel=ReportChannel.web, catalog=catalog,
            sealer=sealer, secret=SECRET, now=now,
        )  # fmt: skip
        return referral.id, receipt


def _events(engine, referral_id: int) -> list[tuple[str, str]]:
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.referral_id == referral_id)
            .order_by(OutboxMessage.id)
        )
        return [(m.event.value, m.recipient) for m in rows]


def test_the_triage_clock_reminds_is_overdue_and_escalates_exactly_once(
    engine, catalog, sealer, now
):
    referral_id, _ = _file(engine, catalog, sealer, now)
    assert _events(engine, referral_id) == [("assigned", "uptd-ppa")]
    # Due in 24 h, reminded 6 h before, escalated 12 h after; each moment swept twice.
    for hours in (17, 18, 18, 23.9, 24, 24, 35, 36, 36, 48):
        with transaction(engine) as session:
            sweep(session, catalog=catalog, now=now + timedelta(hours=hours))
    assert _events(engine, referral_id) == [
        ("assigned", "uptd-ppa"),
        ("reminder", "uptd-ppa"),
        ("overdue", "uptd-ppa"),
        ("escalated", "gugus-tugas"),
    ]
    with Session(engine) as session:
        actions = [e.action for e in session.exec(select(AuditEntry).order_by(AuditEntry.seq))]
        assert actions == ["report-filed", "ready", "overdue", "escalated"]
        assert verify_chain(session) == []


def test_someone_in_danger_runs_the_short_clock_and_tells_the_task_force_at_once(
    engine, catalog, sealer, now
):
    referral_id, _ = _file(engine, catalog, sealer, now, danger_now=True)
    assert _events(engine, referral_id) == [
        ("assigned", "uptd-ppa"),
        ("report-danger", "gugus-tugas"),
    ]
    with Session(engine) as session:
        step = session.exec(select(Step).where(Step.referral_id == referral_id)).one()
        assert step.key == "telaah-darurat" and step.due_at == now + timedelta(hours=2)
        assert session.get(Referral, referral_id).urgency.value == "emergency"


def test_acknowledging_stops_the_clock_and_keeps_the_time_it_took(engine, catalog, sealer, now):
    referral_id, _ = _file(engine, catalog, sealer, now)
    later = now + timedelta(hours=3)
    with transaction(engine) as session:
        referral = session.get(Referral, referral_id)
        acknowledge_report(session=session, referral=referral, actor=COORDINATOR, now=later)
    with transaction(engine) as session:
        assert sweep(session, catalog=catalog, now=now + timedelta(days=3)) == []
        step = session.exec(select(Step).where(Step.referral_id == referral_id)).one()
        assert step.status == StepStatus.completed
        assert step.closed_at - step.ready_at == timedelta(hours=3)


def test_questions_answers_forwarding_and_closing(engine, catalog, sealer, now):
    referral_id, receipt = _file(engine, catalog, sealer, now)
    with transaction(engine) as session:
        referral = session.get(Referral, referral_id)
        ask_reporter(
            session=session, referral=referral, question="Di desa mana?", actor=COORDINATOR,
            now=now, sealer=sealer,
        )  # fmt: skip
        report = report_of(session, referral)
        assert report_status(session, report) == ReportStatus.question
    with transaction(engine) as session:
        report = find_by_receipt(session, receipt.replace(" ", ""), SECRET)
        answer_question(session=session, report=report, answer="Desa Taba", now=now, sealer=sealer)
        assert report_status(session, report) == ReportStatus.in_progress
        with pytest.raises(BadInput, match="no question"):
            answer_question(session=session, report=report, answer="again", now=now, sealer=sealer)
    assert _events(engine, referral_id)[-1] == ("report-answered", "uptd-ppa")
    with transaction(engine) as session:
        referral = session.get(Referral, referral_id)
        step = forward_report(
            session=session, referral=referral, agency="polres-ppa", actor=COORDINATOR,
            now=now, catalog=catalog,
        )  # fmt: skip
        assert step.key == "verifikasi" and step.status == StepStatus.ready
        assert step.due_at == now + timedelta(days=2)
    assert ("assigned", "polres-ppa") in _events(engine, referral_id)
    with transaction(engine) as session:
        referral = session.get(Referral, referral_id)
        close_report(
            session=session, referral=referral, reason="not-trafficking", actor=COORDINATOR, now=now
        )
        assert referral.status == ReferralStatus.completed
        assert report_status(session, report_of(session, referral)) == ReportStatus.closed
        steps = session.exec(select(Step).where(Step.referral_id == referral_id)).all()
        assert {s.key: s.status for s in steps} == {
            "telaah": StepStatus.completed,
            "verifikasi": StepStatus.cancelled,
        }
        with pytest.raises(IllegalTransition):
            ask_reporter(
                session=session, referral=referral, question="?", actor=COORDINATOR, now=now,
                sealer=sealer,
            )  # fmt: skip
    with Session(engine) as session:
        actions = {e.action for e in session.exec(select(AuditEntry))}
    assert {"report-asked", "report-answered", "report-forwarded", "report-closed"} <= actions


def test_a_referral_launched_from_a_report_stays_linked(engine, catalog, sealer, now, intake_data):
    referral_id, _ = _file(engine, catalog, sealer, now, at_risk="children")
    with transaction(engine) as session:
        launched = launch_from_report(
            session, referral=session.get(Referral, referral_id),
            intake=Intake.model_validate(intake_data), catalog=catalog, sealer=sealer, now=now,
        )  # fmt: skip
        report = report_of(session, session.get(Referral, referral_id))
        assert report.launched_referral_id == launched.id
        assert report_status(session, report) == ReportStatus.referred
    # A report's pathway is never launched from an intake.
    with transaction(engine) as session, pytest.raises(BadInput, match="public reports"):
        launch(
            session, intake=Intake.model_validate(intake_data | {"pathway": "laporan"}),
            catalog=catalog, sealer=sealer, now=now,
        )  # fmt: skip


def test_a_receipt_is_stored_only_as_a_slow_hash_and_a_wrong_one_reveals_nothing(
    engine, catalog, sealer, now
):
    _, receipt = _file(engine, catalog, sealer, now)
    digits = receipt.replace(" ", "")
    assert len(digits) == 20
    with Session(engine) as session:
        dump = repr([tuple(r) for r in session.exec(select(Referral.reference))])
        report = session.exec(select(Referral)).one()
        stored = report_of(session, report).receipt_hash
        assert digits not in stored and receipt not in dump
        for wrong in ("0" * 20, digits[:-1], "abc", digits[:-1] + str((int(digits[-1]) + 1) % 10)):
            with pytest.raises(NotFound) as refused:
                find_by_receipt(session, wrong, SECRET)
            assert str(refused.value) == (
                "this receipt number opens no report: check the digits and try again"
            )
        # Another installation's key opens nothing with the same digits.
        with pytest.raises(NotFound):
            find_by_receipt(session, digits, "another-secret")


@pytest.mark.parametrize("template", ["laporan-baru", "laporan-verifikasi", "report-danger"])
def test_the_report_messages_render_in_every_locale_with_the_allowed_facts_only(template):
    context = MessageContext("RJK-7QK2-M9", "Telaah", "2026-12-08 09:00 WIB", "http://x/s/t")
    for locale in LOCALES:
        message = render(template, locale, context)
        assert message.subject.startswith("[RJK-7QK2-M9] ") and "{{" not in message.html
        assert "2026-12-08 09:00 WIB" in message.text and "http://x/s/t" in message.markdown
