"""One action from the web: check access, run the engine function in one transaction, audit a
refusal, then send the queued messages and wake Prefect (after the commit, as the CLI does)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import BackgroundTasks
from sqlmodel import Session

from models.access import Principal, authorize_referral, authorize_step
from models.errors import AlreadyDone, BadInput, Forbidden
from models.referral import Referral
from models.settings import Settings
from models.step import Step
from web.guard import refuse

if TYPE_CHECKING:
    from web.app import Web

log = logging.getLogger("rujukan.web")

Work = Callable[[Session, Referral, Step | None], object]


@dataclass(frozen=True)
class Outcome:
    """What an action did: changed or not (already done), and a message for people."""

    changed: bool
    message: str
    reference: str
    referral_id: int | None
    result: object = None


def after_commit(settings: Settings, referral_ids: list[int]) -> None:
    """Send the messages the change queued and wake the referrals' Prefect runs.

    The change is committed already: if this fails, the relay's timer and the deadline sweep
    catch up, so the person who acted still gets their answer.
    """
    try:
        from flows.wake import after_commit as wake

        wake(settings, referral_ids)
    except Exception as exc:  # noqa: BLE001  (a wake-up is a signal; the commit stands)
        log.warning(
            "after-commit delivery for referrals %s failed (%s); the relay timer and the "
            "sweep will catch up",
            referral_ids,
            type(exc).__name__,
        )


def perform(
    web: Web,
    principal: Principal,
    *,
    attempt: str,
    reference: str,
    step_id: int | None,
    work: Work,
    background: BackgroundTasks | None,
    role: str | None = None,
    via: str = "web",
) -> Outcome:
    """Run `work` on the authorised referral (and step) in one transaction; refusals are audited."""
    try:
        with web.transaction() as session:
            if role == "coordinator" and not principal.is_coordinator:
                raise Forbidden("only a coordinator may do this")
            if role == "agency" and principal.is_coordinator:
                raise Forbidden("only the step's agency may do this")
            if step_id is not None:
                referral, step = authorize_step(session, principal, reference, step_id)
            else:
                referral, step = authorize_referral(session, principal, reference), None
            result = work(session, referral, step)
            outcome = Outcome(True, "done", referral.reference, referral.id, result)
    except AlreadyDone as exc:
        return Outcome(False, str(exc), reference.upper(), None)
    except BadInput as exc:
        refuse(web, principal, attempt, exc, reference=reference, step_id=step_id, via=via)
        raise
    if outcome.referral_id is not None:
        ids = [outcome.referral_id]
        if background is not None:
            background.add_task(after_commit, web.settings, ids)
        else:
            after_commit(web.settings, ids)
    return outcome


def launch_referral(
    web: Web,
    principal: Principal,
    intake_data: dict,
    background: BackgroundTasks | None,
    via: str = "web",
) -> Outcome:
    """Validate an intake and launch it as the signed-in coordinator; refusals are audited."""
    from pydantic import ValidationError

    from models.engine import launch
    from models.intake import Intake

    try:
        if not principal.is_coordinator:
            raise Forbidden("only a coordinator may launch a referral")
        # The signed-in coordinator records the consent or the override, whatever the body says.
        consent = intake_data.get("consent") if isinstance(intake_data, dict) else None
        if isinstance(consent, dict):
            if isinstance(consent.get("override"), dict):
                consent["override"]["by"] = principal.holder
            else:
                consent["recorded_by"] = principal.holder
        try:
            intake = Intake.model_validate(intake_data)
        except ValidationError as exc:
            # Field names and problems only: the values may be the person's data.
            raise BadInput(
                "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'intake'}: "
                    f"{e['msg'].removeprefix('Value error, ')}"
                    for e in exc.errors()
                )
            ) from None
        with web.transaction() as session:
            referral = launch(
                session, intake=intake, catalog=web.catalog, sealer=web.sealer, now=web.now()
            )
            outcome = Outcome(True, "launched", referral.reference, referral.id)
    except BadInput as exc:
        refuse(web, principal, "launch", exc, via=via)
        raise
    assert outcome.referral_id is not None
    if background is not None:
        background.add_task(after_commit, web.settings, [outcome.referral_id])
    else:
        after_commit(web.settings, [outcome.referral_id])
    return outcome
