"""A PostgreSQL restart in the middle of a run loses and doubles nothing."""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError
from sqlmodel import select

from models.actions import Actor, accept_step, complete_step, launch, load_step
from models.database import engine_for, migrate, transaction
from models.errors import AlreadyDone
from models.intake import Intake
from models.referral import Referral
from models.step import Step, StepStatus
from tests.accounting import accounting_problems

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.exclusive]


def _restart_postgres() -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        capture_output=True,
        timeout=60,
    )


def _with_retry(fn, deadline: float):
    """Run one transaction; on a lost connection retry until `deadline` (the database restarts)."""
    while True:
        try:
            return fn()
        except DBAPIError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _ready_steps(engine, reference: str) -> list[tuple[str, str]]:
    with transaction(engine) as session:
        return [
            (s.key, s.agency)
            for s in session.exec(
                select(Step)
                .join(Referral)
                .where(Step.status == StepStatus.ready, Referral.reference == reference)
            )
        ]


def _act(engine, fn, *, reference, step, agency, **kwargs) -> None:
    try:
        with transaction(engine) as session:
            row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
            fn(session=session, step=row, now=datetime.now(UTC), **kwargs)
    except AlreadyDone:
        pass  # the commit landed before the connection died: nothing to redo


@pytest.mark.skipif(shutil.which("pg_ctlcluster") is None, reason="pg_ctlcluster is not installed")
def test_a_restart_mid_run_loses_nothing(postgres_database, settings, catalog, sealer, intake_data):
    url = postgres_database
    engine = engine_for(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
    migrate(url)
    now = datetime.now(UTC)
    with transaction(engine) as session:
        references = [
            launch(
                session,
                intake=Intake.model_validate(intake_data),
                catalog=catalog,
                sealer=sealer,
                now=now,
            ).reference
            for _ in range(15)
        ]

    restarted = threading.Event()
    threading.Thread(
        target=lambda: (time.sleep(0.5), _restart_postgres(), restarted.set()), daemon=True
    ).start()
    deadline = time.monotonic() + 120
    actions = lost_connections = 0
    for _ in range(3):  # identification, then health and shelter, then psychosocial
        for reference in references:
            for key, agency in _with_retry(
                lambda ref=reference: _ready_steps(engine, ref), deadline
            ):
                for fn, extra in (
                    (accept_step, {}),
                    (complete_step, {"outcome": "served", "catalog": catalog}),
                ):
                    act = partial(
                        _act,
                        engine,
                        fn,
                        reference=reference,
                        step=key,
                        agency=agency,
                        actor=Actor("agency", "chaos", agency),
                        **extra,
                    )
                    try:
                        act()
                    except DBAPIError:
                        lost_connections += 1
                        _with_retry(act, deadline)
                    actions += 1
            time.sleep(0.02)
    assert restarted.wait(60), "PostgreSQL did not restart"
    with transaction(engine) as session:
        assert accounting_problems(session) == []
        completed = session.exec(select(Step).where(Step.status == StepStatus.completed)).all()
    # 15 referrals x (identification + health + shelter + psychosocial) all completed exactly once
    assert len(completed) == 15 * 4
    print(f"{actions} actions, {lost_connections} interrupted by the restart and retried")
