"""Managers see public reports in Prefect like referrals: codes and times, nothing of the report."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flows.wake import after_commit
from models.actions import Actor
from models.catalog import load_catalog
from models.database import engine_for, transaction
from models.public_report import ReportChannel, ask_reporter, file_report, validate_report
from models.referral import Referral
from models.seal import Sealer
from tests.flows.test_flows import (  # noqa: F401 (a fixture and helpers of the flow tests)
    run_of,
    run_tables,
    task_run_names,
    with_prefect,
)

pytestmark = pytest.mark.prefect
CANARY = "KANARI-PREFECT-3307 dikurung di kapal"
CONTACT = "0812-3307-3307"


def test_a_report_is_a_run_tagged_like_a_referral_without_its_words(
    case_db,
    with_prefect,  # noqa: F811
    prefect_client,
):
    sealer = Sealer(case_db.resolved_secret_key())
    engine = engine_for(case_db.resolved_database_url)
    with transaction(engine) as session:
        _, referral, _ = file_report(
            session, report=validate_report({"what": CANARY, "contact": CONTACT,
                                             "danger_now": True}),
            channel=ReportChannel.web, catalog=load_catalog(case_db), sealer=sealer,
            secret=case_db.resolved_secret_key(), now=datetime.now(UTC),
        )  # fmt: skip
    after_commit(case_db, [referral.id])
    with transaction(engine) as session:
        stored = session.get(Referral, referral.id)
        ask_reporter(
            session=session, referral=stored, question=CANARY, sealer=sealer,
            actor=Actor("coordinator", "rina"), now=datetime.now(UTC),
        )  # fmt: skip
    after_commit(case_db, [referral.id])
    run = run_of(prefect_client, referral)
    assert run.name == referral.reference and run.parameters == {"reference": referral.reference}
    assert sorted(run.tags) == [
        "pathway:laporan",
        "referral",
    ]  # the triage is done: no agency holds a step
    names = task_run_names(prefect_client, run.id)
    assert "report-filed" in names and "report-asked" in names
    table = run_tables(prefect_client, run.id)[0].data  # the run's own table, newest first
    assert "telaah-darurat" in table
    seen = repr(run) + repr(names) + repr(table)
    assert CANARY not in seen and "KANARI" not in seen and CONTACT not in seen
