"""The accounting check itself catches what it is meant to catch."""

from sqlalchemy import text

from models.actions import launch
from models.database import transaction
from models.intake import Intake
from tests.accounting import accounting_problems


def test_accounting_catches_an_unrecorded_transition_and_a_doubled_notice(
    engine, catalog, sealer, now, intake_data
):
    with transaction(engine) as session:
        launch(
            session,
            intake=Intake.model_validate(intake_data),
            catalog=catalog,
            sealer=sealer,
            now=now,
        )
    with transaction(engine) as session:
        assert accounting_problems(session) == []
        session.exec(text("UPDATE step SET status = 'accepted' WHERE key = 'identifikasi'"))  # type: ignore[call-overload]
        session.exec(
            text(  # type: ignore[call-overload]
                "INSERT INTO outbox (dedup_key, event, recipient, referral_id, step_id, due_at, "
                "created_at, status, attempts, next_attempt_at) SELECT 'x', event, recipient, "
                "referral_id, step_id, due_at, created_at, status, attempts, next_attempt_at "
                "FROM outbox"
            )
        )
    with transaction(engine) as session:
        problems = accounting_problems(session)
    assert any("audit replays to ready, table says accepted" in p for p in problems)
    assert any("queued 2 times" in p for p in problems)
