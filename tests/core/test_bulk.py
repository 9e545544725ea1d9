"""Set-wise writes: a batch launch writes what the engine's rules say, once; a versioned update of
many steps refuses a step someone changed since it was read. SQLite and PostgreSQL."""

from __future__ import annotations

import gc
import random
from datetime import timedelta

import pytest
from sqlalchemy.orm.exc import StaleDataError
from sqlmodel import col, select

from bench.mass_rescue import intakes
from models.actions import (
    Actor,
    accept_step,
    advance,
    launch,
    launch_many,
    load_step,
    next_check,
    steps_of,
)
from models.audit import AuditEntry, verify_chain
from models.catalog import stored_pathway
from models.database import collector_paused, transaction
from models.intake import Intake
from models.outbox import MessageEvent, OutboxMessage, dedup_key
from models.referral import Referral
from models.step import Step, StepStatus, update_versioned


def test_a_batch_launch_writes_each_referral_as_the_rules_say(
    engine, catalog, sealer, now, intake_data
):
    batch = [Intake.model_validate(row) for row in intakes(12, random.Random(3))]
    with transaction(engine) as session:
        first = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
        referrals = launch_many(
            session, intakes=batch, catalog=catalog, sealer=sealer, now=now, batch="b-1"
        )
        after = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
    assert gc.isenabled()  # paused only while the launches wrote
    assert [r.pathway_id for r in referrals] == [i.pathway for i in batch]
    assert len({r.reference for r in [first, *referrals, after]}) == 14
    with transaction(engine) as session:
        assert verify_chain(session) == []
        for referral in [first, *referrals, after]:
            pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
            steps = steps_of(session, referral.id)
            ready = [s for s in steps if s.status == StepStatus.ready]
            assert ready and all(not pathway.step(s.key).depends_on for s in ready)
            for step in ready:
                agency_tz = catalog.agency(step.agency).timezone
                assert step.ready_at == now
                assert step.due_at == pathway.step(step.key).clock(referral.urgency).add_to(
                    now, agency_tz
                )
                assert step.next_check_at == next_check(step, pathway.step(step.key))
            entries = session.exec(
                select(AuditEntry)
                .where(AuditEntry.referral_id == referral.id)
                .order_by(col(AuditEntry.seq))
            ).all()
            assert [e.action for e in entries] == ["launched"] + ["ready"] * len(ready)
            assert [e.step_id for e in entries[1:]] == [s.id for s in ready]
            assert entries[0].detail["reference"] == referral.reference
            messages = session.exec(
                select(OutboxMessage).where(OutboxMessage.referral_id == referral.id)
            ).all()
            assert sorted((m.step_id, m.event, m.dedup_key) for m in messages) == sorted(
                (s.id, MessageEvent.assigned, dedup_key(s.id, "assigned", 0, s.agency))
                for s in ready
            )
            # The rules, run again on the written rows, find nothing left to do.
            assert advance(session, referral=referral, catalog=catalog, now=now) == []
        assert session.exec(select(Referral).where(Referral.batch == "b-1")).all()


def test_a_batch_launch_refuses_a_bad_intake_before_writing_anything(
    engine, catalog, sealer, now, intake_data
):
    bad = dict(intake_data, pathway="no-such-pathway")
    with pytest.raises(Exception):  # noqa: B017 - whichever refusal; the point is no rows
        with transaction(engine) as session:
            launch_many(
                session,
                intakes=[Intake.model_validate(intake_data), Intake.model_validate(bad)],
                catalog=catalog,
                sealer=sealer,
                now=now,
            )
    with transaction(engine) as session:
        assert session.exec(select(Referral)).all() == []
        assert session.exec(select(Step)).all() == []


def test_a_collector_pause_ends_with_its_block_and_keeps_the_callers_choice():
    with pytest.raises(RuntimeError):
        with collector_paused():
            assert not gc.isenabled()
            raise RuntimeError("a write failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled(), "a pause must leave the collector as the caller had it"
    finally:
        gc.enable()


def _ready_step(engine, catalog, sealer, now, intake_data) -> tuple[str, int, int]:
    with transaction(engine) as session:
        referral = launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
        step = load_step(session=session, reference=referral.reference, step_ref="identifikasi")
        return referral.reference, step.id, step.version


def test_a_versioned_update_of_many_steps_writes_and_bumps_the_version(
    engine, catalog, sealer, now, intake_data
):
    reference, step_id, version = _ready_step(engine, catalog, sealer, now, intake_data)
    moment = now + timedelta(days=9)
    with transaction(engine) as session:
        held = session.get(Step, step_id)  # an object the session holds for the updated step
        update_versioned(
            session,
            [{"id": step_id, "version": version, "overdue": True, "next_check_at": moment}],
        )
        assert held.overdue and held.version == version + 1  # read again, not stale
    with transaction(engine) as session:
        step = session.get(Step, step_id)
        assert (step.overdue, step.next_check_at, step.version) == (True, moment, version + 1)


def test_a_versioned_update_refuses_a_step_changed_since_it_was_read(
    engine, catalog, sealer, now, intake_data
):
    reference, step_id, version = _ready_step(engine, catalog, sealer, now, intake_data)
    with transaction(engine) as session:  # another writer accepts the step meanwhile
        step = load_step(
            session=session, reference=reference, step_ref="identifikasi", agency="polres-ppa"
        )
        accept_step(session=session, step=step, actor=Actor("agency", "p", "polres-ppa"), now=now)
    with pytest.raises(StaleDataError):
        with transaction(engine) as session:
            update_versioned(
                session, [{"id": step_id, "version": version, "overdue": True, "reminded": True}]
            )
    with transaction(engine) as session:
        step = session.get(Step, step_id)
        assert step.status == StepStatus.accepted and not step.overdue
        assert step.version == version + 1  # the accept's write, not ours


@pytest.mark.parametrize(
    "text", ["PT24H", "P7D", "PT36H", "P1W", "P1DT2H", "P3M", "2 working days"]
)
def test_the_sweeps_short_cut_times_are_the_durations_own(text):
    """reminder_at and escalation_at skip relativedelta for fixed lengths: the same moments,
    across a daylight-saving change too (the cached durations are shared, never changed)."""
    from datetime import UTC, datetime
    from types import SimpleNamespace

    from models.actions import escalation_at, reminder_at
    from models.deadline import parse_duration

    due = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)  # the day New York moves its clocks
    step = SimpleNamespace(due_at=due, ready_at=due - timedelta(days=400))
    spec = SimpleNamespace(remind_before=text, escalate_after=text)
    assert escalation_at(step, spec) == parse_duration(text).add_to(due)
    assert reminder_at(step, spec) == parse_duration(text).subtract_from(due)
