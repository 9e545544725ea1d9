"""Two processes at once: the same action twice, and two sweeps over the same due steps."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import func, select

from models.actions import Actor, accept_step, launch, load_step
from models.audit import AuditEntry, verify_chain
from models.catalog import load_catalog
from models.database import make_engine, transaction
from models.errors import AlreadyDone
from models.intake import Intake
from models.outbox import OutboxMessage
from models.settings import Settings

NOW = datetime(2026, 12, 7, 2, tzinfo=UTC)


def _accept_worker(url: str, reference: str, barrier, results) -> None:
    engine = make_engine(url)
    barrier.wait()
    try:
        with transaction(engine) as session:
            accept_step(
                session=session,
                step=load_step(
                    session=session,
                    reference=reference,
                    step_ref="identifikasi",
                    agency="polres-ppa",
                ),
                actor=Actor("agency", "p", "polres-ppa"),
                now=NOW,
            )
        results.put("changed")
    except AlreadyDone as exc:
        results.put(f"already: {exc}")


def _sweep_worker(url: str, home: str, barrier, results) -> None:
    from models.sweep import sweep

    engine = make_engine(url)
    catalog = load_catalog(Settings(home=home))
    barrier.wait()
    total = 0
    for _ in range(3):
        with transaction(engine) as session:
            total += len(sweep(session, catalog=catalog, now=NOW + timedelta(days=3), limit=40))
    results.put(total)


def _run(target, args_list) -> list:
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(len(args_list)), ctx.Queue()
    processes = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_list]
    for p in processes:
        p.start()
    for p in processes:
        p.join(120)
        assert p.exitcode == 0
    return [results.get(timeout=5) for _ in processes]


def _launch(engine, catalog, sealer, intake_data, count: int) -> list[str]:
    with transaction(engine) as session:
        return [
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog,
                sealer=sealer,
                now=NOW,
            ).reference
            for _ in range(count)
        ]


@pytest.mark.slow
def test_the_same_action_twice_at_once_changes_once(
    engine, database_url, catalog, sealer, intake_data
):
    [reference] = _launch(engine, catalog, sealer, intake_data, 1)
    outcomes = _run(_accept_worker, [(database_url, reference), (database_url, reference)])
    assert sorted(o.split(":")[0] for o in outcomes) == ["already", "changed"]
    with transaction(engine) as session:
        accepted = session.exec(
            select(func.count()).select_from(AuditEntry).where(AuditEntry.action == "accepted")
        ).one()
        assert accepted == 1
        assert verify_chain(session) == []


@pytest.mark.slow
def test_two_sweeps_at_once_never_double_a_notice(
    engine, database_url, settings, catalog, sealer, intake_data
):
    _launch(engine, catalog, sealer, intake_data, 50)
    totals = _run(
        _sweep_worker, [(database_url, str(settings.home)), (database_url, str(settings.home))]
    )
    with transaction(engine) as session:
        rows = session.exec(
            select(OutboxMessage.event, func.count()).group_by(OutboxMessage.event)
        ).all()
        assert verify_chain(session) == []
    counts = {event.value if hasattr(event, "value") else event: n for event, n in rows}
    # 50 steps, each: one reminder is skipped (already past due), one overdue, one escalation.
    assert counts == {"assigned": 50, "overdue": 50, "escalated": 50}
    assert sum(totals) == 100
