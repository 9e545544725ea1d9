"""The engine's rules, without Prefect, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import select

from models.actions import (
    Actor,
    accept_step,
    cancel_referral,
    complete_step,
    decide_extension,
    decline_step,
    find_referral,
    launch,
    load_step,
    request_extension,
    reroute_step,
    steps_of,
)
from models.audit import AuditEntry, verify_chain
from models.database import transaction
from models.errors import AlreadyDone, BadInput, IllegalTransition, NotFound
from models.intake import Intake
from models.outbox import OutboxMessage
from models.referral import Person, Referral, ReferralStatus
from models.step import Step, StepStatus
from models.sweep import sweep

COORDINATOR = Actor("coordinator", "coordinator-1")


def agency(slug: str) -> Actor:
    return Actor("agency", "focal", slug)


@pytest.fixture
def launched(engine, catalog, sealer, now, intake_data):
    """A launched adult referral; returns its reference."""
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
    return referral.reference


def rows(engine, reference):
    with transaction(engine) as session:
        referral = session.exec(select(Referral).where(Referral.reference == reference)).one()
        return {f"{s.key}#{s.instance}": s for s in steps_of(session, referral.id)}


def act(engine, fn, *, reference, step=None, agency=None, **kwargs):
    """Run an engine action on a step (or referral) named as the CLI names it."""
    with transaction(engine) as session:
        if step is None:
            return fn(session=session, referral=find_referral(session, reference), **kwargs)
        row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
        return fn(session=session, step=row, **kwargs)


def messages(engine):
    with transaction(engine) as session:
        return [
            (m.event.value, m.recipient)
            for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id))
        ]


def test_launch_makes_identification_ready_with_its_deadline(engine, launched, now):
    steps = rows(engine, launched)
    ready = [k for k, s in steps.items() if s.status == StepStatus.ready]
    assert ready == ["identifikasi#1"]
    assert steps["identifikasi#1"].agency == "polres-ppa"
    assert steps["identifikasi#1"].due_at == now + timedelta(hours=24)
    assert steps["kesehatan#1"].status == StepStatus.pending
    assert [k for k in steps if k.startswith("pemantauan")] == [
        "pemantauan#1",
        "pemantauan#2",
        "pemantauan#3",
    ]
    assert messages(engine) == [("assigned", "polres-ppa")]


def test_reference_codes_are_short_and_not_sequential(engine, catalog, sealer, now, intake_data):
    with transaction(engine) as session:
        refs = [
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog,
                sealer=sealer,
                now=now,
            ).reference
            for _ in range(5)
        ]
    assert len(set(refs)) == 5
    assert all(len(r) == 11 and r.startswith("RJK-") for r in refs)


def test_completing_identification_readies_shelter_and_health_together(
    engine, launched, catalog, now
):
    act(
        engine,
        accept_step,
        reference=launched,
        step="identifikasi",
        agency="polres-ppa",
        actor=agency("polres-ppa"),
        now=now,
    )
    later = now + timedelta(hours=3)
    act(
        engine,
        complete_step,
        reference=launched,
        step="identifikasi",
        agency="polres-ppa",
        outcome="served",
        actor=agency("polres-ppa"),
        now=later,
        catalog=catalog,
    )
    steps = rows(engine, launched)
    assert steps["kesehatan#1"].status == steps["rumah-aman#1"].status == StepStatus.ready
    assert (
        steps["kesehatan#1"].due_at == steps["rumah-aman#1"].due_at == later + timedelta(hours=24)
    )
    assert steps["psikososial#1"].status == StepStatus.pending
    assert messages(engine)[1:] == [("assigned", "dinkes"), ("assigned", "dinsos")]


def test_a_join_waits_for_all_its_inputs(engine, launched, catalog, now):
    for slug, key in [("polres-ppa", "identifikasi"), ("dinkes", "kesehatan")]:
        act(
            engine,
            accept_step,
            reference=launched,
            step=key,
            agency=slug,
            actor=agency(slug),
            now=now,
        )
        act(
            engine,
            complete_step,
            reference=launched,
            step=key,
            agency=slug,
            outcome="served",
            actor=agency(slug),
            now=now,
            catalog=catalog,
        )
    assert rows(engine, launched)["psikososial#1"].status == StepStatus.pending
    act(
        engine,
        accept_step,
        reference=launched,
        step="rumah-aman",
        agency="dinsos",
        actor=agency("dinsos"),
        now=now,
    )
    act(
        engine,
        complete_step,
        reference=launched,
        step="rumah-aman",
        agency="dinsos",
        outcome="served",
        actor=agency("dinsos"),
        now=now,
        catalog=catalog,
    )
    assert rows(engine, launched)["psikososial#1"].status == StepStatus.ready


def test_decline_then_reroute_gives_the_new_agency_a_fresh_deadline(engine, launched, catalog, now):
    for fn, extra in [
        (accept_step, {}),
        (complete_step, {"outcome": "served", "catalog": catalog}),
    ]:
        act(
            engine,
            fn,
            reference=launched,
            step="identifikasi",
            agency="polres-ppa",
            actor=agency("polres-ppa"),
            now=now,
            **extra,
        )
    act(
        engine,
        decline_step,
        reference=launched,
        step="rumah-aman",
        agency="dinsos",
        reason="no-capacity",
        actor=agency("dinsos"),
        now=now + timedelta(hours=1),
    )
    later = now + timedelta(hours=5)
    new = act(
        engine,
        reroute_step,
        reference=launched,
        step="rumah-aman",
        to_agency="ngo",
        actor=COORDINATOR,
        now=later,
        catalog=catalog,
    )
    steps = rows(engine, launched)
    assert steps["rumah-aman#1"].status == StepStatus.declined
    assert steps["rumah-aman#1"].decline_reason == "no-capacity"
    assert (
        steps["rumah-aman#2"].agency == "ngo" and steps["rumah-aman#2"].status == StepStatus.ready
    )
    assert new.due_at == later + timedelta(hours=24)
    assert ("declined", "uptd-ppa") in messages(engine)
    assert messages(engine)[-1] == ("assigned", "ngo")


def test_reroute_needs_consent_for_the_new_agency(engine, launched, catalog, now):
    with pytest.raises(BadInput, match="no consent is recorded to share with 'iom'"):
        act(
            engine,
            reroute_step,
            reference=launched,
            step="identifikasi",
            to_agency="iom",
            actor=COORDINATOR,
            now=now,
            catalog=catalog,
        )
    assert rows(engine, launched)["identifikasi#1"].status == StepStatus.ready


def test_condition_skips_legal_aid_when_the_victim_declines_prosecution(
    engine, catalog, sealer, now, intake_data
):
    intake_data["case"] = {"wants_prosecution": False}
    with transaction(engine) as session:
        reference = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        ).reference
    for slug, key in [
        ("polres-ppa", "identifikasi"),
        ("dinkes", "kesehatan"),
        ("dinsos", "rumah-aman"),
        ("psikolog", "psikososial"),
    ]:
        act(
            engine,
            accept_step,
            reference=reference,
            step=key,
            agency=slug,
            actor=agency(slug),
            now=now,
        )
        act(
            engine,
            complete_step,
            reference=reference,
            step=key,
            agency=slug,
            outcome="served",
            actor=agency(slug),
            now=now,
            catalog=catalog,
        )
    steps = rows(engine, reference)
    assert steps["bantuan-hukum#1"].status == StepStatus.skipped
    assert steps["perlindungan-lpsk#1"].status == StepStatus.skipped
    assert steps["pemulangan#1"].status == StepStatus.ready


@pytest.mark.parametrize(
    ("action", "error"),
    [
        (
            lambda e, ref, cat, now: act(
                e,
                complete_step,
                reference=ref,
                step="identifikasi",
                agency="polres-ppa",
                outcome="served",
                actor=agency("polres-ppa"),
                now=now,
                catalog=cat,
            ),
            IllegalTransition,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                accept_step,
                reference=ref,
                step="identifikasi",
                agency="dinsos",
                actor=agency("dinsos"),
                now=now,
            ),
            NotFound,  # the same answer as for a step that does not exist: nothing is revealed
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                accept_step,
                reference=ref,
                step="identifikasi",
                agency="iom",
                actor=agency("iom"),
                now=now,
            ),
            NotFound,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                accept_step,
                reference="RJK-XXXX-XX",
                step="identifikasi",
                agency="polres-ppa",
                actor=agency("polres-ppa"),
                now=now,
            ),
            NotFound,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                accept_step,
                reference=ref,
                step="kesehatan",
                agency="dinkes",
                actor=agency("dinkes"),
                now=now,
            ),
            IllegalTransition,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                decline_step,
                reference=ref,
                step="identifikasi",
                agency="polres-ppa",
                reason="",
                actor=agency("polres-ppa"),
                now=now,
            ),
            BadInput,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                decline_step,
                reference=ref,
                step="identifikasi",
                agency="polres-ppa",
                reason="busy",
                actor=agency("polres-ppa"),
                now=now,
            ),
            BadInput,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                request_extension,
                reference=ref,
                step="identifikasi",
                agency="polres-ppa",
                until=now - timedelta(days=1),
                reason="other",
                actor=agency("polres-ppa"),
                now=now,
            ),
            BadInput,
        ),
        (
            lambda e, ref, cat, now: act(
                e,
                request_extension,
                reference=ref,
                step="identifikasi",
                agency="polres-ppa",
                until=(now + timedelta(days=3)).replace(tzinfo=None),
                reason="other",
                actor=agency("polres-ppa"),
                now=now,
            ),
            BadInput,
        ),
    ],
    ids=[
        "complete-before-accept",
        "other-agency",
        "agency-without-step",
        "unknown-reference",
        "pending-step",
        "decline-without-reason",
        "unknown-reason",
        "past-date",
        "naive-date",
    ],
)
def test_bad_actions_are_refused_and_change_nothing(engine, launched, catalog, now, action, error):
    before = {k: (s.status, s.version, s.due_at) for k, s in rows(engine, launched).items()}
    audit_before = _audit_count(engine)
    with pytest.raises(error) as info:
        action(engine, launched, catalog, now)
    assert "Siti" not in str(info.value)
    assert {k: (s.status, s.version, s.due_at) for k, s in rows(engine, launched).items()} == before
    assert _audit_count(engine) == audit_before


def _audit_count(engine) -> int:
    with transaction(engine) as session:
        return len(session.exec(select(AuditEntry)).all())


def test_repeating_an_action_changes_nothing_and_says_so(engine, launched, now):
    act(
        engine,
        accept_step,
        reference=launched,
        step="identifikasi",
        agency="polres-ppa",
        actor=agency("polres-ppa"),
        now=now,
    )
    count = _audit_count(engine)
    with pytest.raises(AlreadyDone, match="already accepted"):
        act(
            engine,
            accept_step,
            reference=launched,
            step="identifikasi",
            agency="polres-ppa",
            actor=agency("polres-ppa"),
            now=now,
        )
    assert _audit_count(engine) == count


def test_launch_without_consent_writes_nothing(engine, catalog, sealer, now, intake_data):
    intake_data["consent"]["agencies"].remove("lbh")
    with pytest.raises(BadInput) as info:
        with transaction(engine) as session:
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog,
                sealer=sealer,
                now=now,
            )
    assert "consent is missing for lbh" in str(info.value)
    with transaction(engine) as session:
        assert session.exec(select(Referral)).all() == []
        assert session.exec(select(Person)).all() == []


def test_override_replaces_the_consent_list(engine, catalog, sealer, now, intake_data):
    intake_data["consent"] = {"override": {"by": "coordinator-1", "reason": "child best interest"}}
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
    assert referral.status == ReferralStatus.active


def test_sweep_sends_reminder_overdue_and_escalation_once_each(engine, launched, catalog, now):
    due = now + timedelta(hours=24)
    passes = [
        due - timedelta(hours=7),
        due - timedelta(hours=6),
        due - timedelta(hours=1),
        due,
        due + timedelta(hours=1),
        due + timedelta(hours=12),
        due + timedelta(hours=13),
    ]
    events = []
    for moment in passes:
        for _ in range(2):  # a second sweep at the same moment finds nothing new
            with transaction(engine) as session:
                events += [
                    (n.event, n.recipient) for n in sweep(session, catalog=catalog, now=moment)
                ]
    assert events == [
        ("reminder", "polres-ppa"),
        ("overdue", "polres-ppa"),
        ("escalated", "gugus-tugas"),
    ]
    assert messages(engine) == [
        ("assigned", "polres-ppa"),
        ("reminder", "polres-ppa"),
        ("overdue", "polres-ppa"),
        ("escalated", "gugus-tugas"),
    ]


def test_no_reminder_right_after_the_assignment_of_an_emergency_step(
    engine, catalog, sealer, now, intake_data
):
    """An emergency clock of 6 hours with a 6-hour reminder: the reminder would repeat the
    assignment a minute after it, so only the overdue notice and the escalation follow."""
    intake_data["urgency"] = "emergency"
    with transaction(engine) as session:
        launch(
            session, intake=Intake.model_validate(intake_data), catalog=catalog, sealer=sealer,
            now=now,
        )  # fmt: skip
    events = []
    for minutes in (1, 60, 6 * 60, 18 * 60 + 1):
        with transaction(engine) as session:
            moment = now + timedelta(minutes=minutes)
            events += [(n.event, n.recipient) for n in sweep(session, catalog=catalog, now=moment)]
    assert events == [("overdue", "polres-ppa"), ("escalated", "gugus-tugas")]


def test_an_extension_moves_the_deadline_and_rearms_the_notices(engine, launched, catalog, now):
    due = now + timedelta(hours=24)
    with transaction(engine) as session:
        sweep(session, catalog=catalog, now=due + timedelta(hours=1))
    new_due = due + timedelta(days=2)
    act(
        engine,
        request_extension,
        reference=launched,
        step="identifikasi",
        agency="polres-ppa",
        until=new_due,
        reason="victim-unavailable",
        actor=agency("polres-ppa"),
        now=due + timedelta(hours=2),
    )
    act(
        engine,
        decide_extension,
        reference=launched,
        step="identifikasi",
        approve=True,
        actor=COORDINATOR,
        now=due + timedelta(hours=3),
    )
    step = rows(engine, launched)["identifikasi#1"]
    assert step.due_at == new_due and not step.overdue and step.deadline_version == 1
    with transaction(engine) as session:
        assert sweep(session, catalog=catalog, now=due + timedelta(hours=4)) == []
        notices = sweep(session, catalog=catalog, now=new_due)
    assert [(n.event, n.recipient) for n in notices] == [("overdue", "polres-ppa")]


def test_an_idle_sweep_reads_nothing_due(engine, launched, catalog, now):
    with transaction(engine) as session:
        assert sweep(session, catalog=catalog, now=now + timedelta(hours=1)) == []


def test_cancel_referral_closes_every_open_step(engine, launched, now):
    act(
        engine,
        cancel_referral,
        reference=launched,
        reason="victim-moved",
        actor=COORDINATOR,
        now=now,
    )
    assert {s.status for s in rows(engine, launched).values()} == {StepStatus.cancelled}
    with pytest.raises(AlreadyDone):
        act(
            engine,
            cancel_referral,
            reference=launched,
            reason="duplicate",
            actor=COORDINATOR,
            now=now,
        )


def test_person_is_sealed_at_rest_and_audit_holds_no_personal_data(engine, launched, sealer):
    with transaction(engine) as session:
        person = session.exec(select(Person)).one()
        assert "Siti" not in person.sealed
        assert sealer.open(person.sealed)["name"] == "Siti Contoh"
        dump = " ".join(str(row) for row in session.exec(text("SELECT * FROM auditentry")).all())  # type: ignore[call-overload]
    assert "Siti" not in dump and "812 0000" not in dump


def test_audit_chain_detects_a_changed_row(engine, launched, now):
    with transaction(engine) as session:
        assert verify_chain(session) == []
        session.exec(text("UPDATE auditentry SET action = 'completed' WHERE seq = 1"))  # type: ignore[call-overload]
    with transaction(engine) as session:
        breaks = verify_chain(session)
    assert [(b.seq, "changed" in b.problem) for b in breaks] == [(1, True)]


def test_audit_chain_detects_a_deleted_row(engine, launched, now):
    with transaction(engine) as session:
        session.exec(text("DELETE FROM auditentry WHERE seq = 2"))  # type: ignore[call-overload]
    with transaction(engine) as session:
        breaks = verify_chain(session)
    assert breaks and breaks[0].seq == 2 and "missing" in breaks[0].problem


def _forge(session, seq: int, prev_hash: str) -> None:
    """Write an entry linked correctly to `prev_hash`, as a forger who knows the scheme would."""
    from models.audit import entry_hash

    entry = AuditEntry(
        seq=seq,
        at=datetime(2026, 12, 7, 3, 0, tzinfo=UTC),
        actor="coordinator:forger",
        action="completed",
        detail={},
        prev_hash=prev_hash,
        hash="",
    )
    entry.hash = entry_hash(prev_hash, entry)
    session.add(entry)


def test_audit_chain_detects_an_entry_appended_outside_the_engine(engine, launched, now):
    with transaction(engine) as session:
        last = session.exec(select(AuditEntry).order_by(AuditEntry.seq.desc())).first()  # type: ignore[attr-defined]
        _forge(session, last.seq + 1, last.hash)
    with transaction(engine) as session:
        breaks = verify_chain(session)
    assert [(b.seq, "added outside the engine" in b.problem) for b in breaks] == [
        (last.seq + 1, True)
    ]


def test_audit_chain_detects_an_entry_inserted_in_the_middle(engine, launched, now):
    with transaction(engine) as session:
        entries = session.exec(select(AuditEntry).order_by(AuditEntry.seq)).all()
        assert len(entries) >= 2
        # Make room after entry 1 (renumbering the rest), then slip a forged entry 2 in.
        for entry in reversed(entries[1:]):
            session.exec(
                text(f"UPDATE auditentry SET seq = {entry.seq + 1} WHERE seq = {entry.seq}")
            )  # type: ignore[call-overload]
        session.expunge_all()  # the rows moved under the session's feet
        _forge(session, 2, entries[0].hash)
    with transaction(engine) as session:
        breaks = verify_chain(session)
    assert breaks and breaks[0].seq == 3  # the first real entry after the forgery no longer links
    assert "does not link" in breaks[0].problem or "changed" in breaks[0].problem


def test_a_whole_referral_completes(engine, catalog, sealer, now, intake_data):
    intake_data["pathway"] = "tppo-wna"
    intake_data["consent"]["agencies"] = [
        "imigrasi",
        "polres-ppa",
        "dinsos",
        "dinkes",
        "iom",
        "uptd-ppa",
    ]
    with transaction(engine) as session:
        reference = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        ).reference
    for _ in range(10):
        ready = [s for s in rows(engine, reference).values() if s.status == StepStatus.ready]
        for s in ready:
            act(
                engine,
                accept_step,
                reference=reference,
                step=s.key,
                agency=s.agency,
                actor=agency(s.agency),
                now=now,
            )
            act(
                engine,
                complete_step,
                reference=reference,
                step=s.key,
                agency=s.agency,
                outcome="served",
                actor=agency(s.agency),
                now=now,
                catalog=catalog,
            )
    with transaction(engine) as session:
        referral = session.exec(select(Referral).where(Referral.reference == reference)).one()
        assert referral.status == ReferralStatus.completed
        assert (
            session.exec(
                select(Step).where(
                    Step.referral_id == referral.id, Step.status != StepStatus.completed
                )
            ).all()
            == []
        )
    assert messages(engine)[-1] == ("referral-completed", "uptd-ppa")
