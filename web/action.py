"""The one path of an action from the web, for the pages and the API alike.

Check who acts, run the engine function in one transaction, audit a refusal, and after the
commit send the queued messages and wake Prefect (flows.wake.after_commit, as the CLI does).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import BackgroundTasks
from sqlmodel import Session

from flows.wake import after_commit
from models.access import (
    OFFICER_NEEDED,
    GrantKind,
    Principal,
    authorize_referral,
    authorize_step,
    check_holder,
)
from models.actions import launch
from models.errors import AlreadyDone, BadInput, Forbidden
from models.intake import validate_intake
from models.note import add_note, clean_note
from models.public_report import launch_from_report
from models.referral import Referral
from models.step import Step
from web.context import Web
from web.guard import refuse

# An engine action with its own arguments bound (functools.partial): the path below adds
# `session`, the loaded `step` (or `referral`), `actor` and `now`.
StepAct = Callable[..., Step]
ReferralAct = Callable[..., object]


@dataclass(frozen=True)
class ActionResult:
    """What an action did: changed or not (already done), a message, and the step it left."""

    changed: bool
    message: str
    reference: str
    step_id: int | None = None


def agency_action(
    web: Web,
    principal: Principal,
    background: BackgroundTasks,
    *,
    attempt: str,
    reference: str,
    step_id: int,
    act: StepAct,
    officer: str = "",
    note: str | None = None,
    via: str = "web",
) -> ActionResult:
    """An agency acts on one of its steps (accept, decline, complete, ask for more time).

    A link names no person, so its bearer gives the officer's name; a personal token names its
    holder. An optional note is stored sealed with the action.
    """
    try:
        if principal.kind != GrantKind.agency:
            raise Forbidden("only the step's agency may do this")
        if principal.grant_id is None:
            if not officer.strip():
                raise BadInput(OFFICER_NEEDED)
            principal = principal.named(check_holder(officer))
        text = clean_note(note)
    except BadInput as exc:
        refuse(web, principal, attempt, exc, reference=reference, step_id=step_id, via=via)
        raise
    actor = principal.actor

    def work(session: Session, referral: Referral, step: Step | None) -> Step:
        now = web.now()
        row = act(session=session, step=step, actor=actor, now=now)
        if text:
            add_note(
                session,
                referral_id=referral.id,
                step_id=row.id,
                author=str(actor),
                action=attempt,
                text=text,
                sealer=web.sealer,
                now=now,
            )
        return row

    return _perform(web, principal, background, attempt, reference, step_id, work, via)


def coordinator_action(
    web: Web,
    principal: Principal,
    background: BackgroundTasks,
    *,
    attempt: str,
    reference: str,
    act: StepAct | ReferralAct,
    step_id: int | None = None,
    via: str = "web",
) -> ActionResult:
    """A coordinator acts on a step (re-route, decide an extension, cancel) or on the referral."""

    def work(session: Session, referral: Referral, step: Step | None) -> object:
        if not principal.is_coordinator:
            raise Forbidden("only a coordinator may do this")
        target = {"step": step} if step is not None else {"referral": referral}
        return act(session=session, **target, actor=principal.actor, now=web.now())

    return _perform(web, principal, background, attempt, reference, step_id, work, via)


def _perform(
    web: Web,
    principal: Principal,
    background: BackgroundTasks,
    attempt: str,
    reference: str,
    step_id: int | None,
    work: Callable[[Session, Referral, Step | None], object],
    via: str,
) -> ActionResult:
    """Run `work` on the authorised referral (and step) in one transaction; refusals are audited."""
    try:
        with web.transaction() as session:
            if step_id is not None:
                referral, step = authorize_step(session, principal, reference, step_id)
            else:
                referral, step = authorize_referral(session, principal, reference), None
            done = work(session, referral, step)
            result = ActionResult(
                changed=True,
                message="done",
                reference=referral.reference,
                step_id=done.id if isinstance(done, Step) else step_id,
            )
            referral_id = referral.id
    except AlreadyDone as exc:
        return ActionResult(False, str(exc), reference.upper(), step_id)
    except BadInput as exc:
        refuse(web, principal, attempt, exc, reference=reference, step_id=step_id, via=via)
        raise
    background.add_task(after_commit, web.settings, [referral_id])
    return result


def launch_referral(
    web: Web,
    principal: Principal,
    background: BackgroundTasks,
    intake_data: dict,
    via: str = "web",
    from_report: str | None = None,
) -> ActionResult:
    """Validate an intake and launch it as the signed-in coordinator; refusals are audited.

    `from_report` names a public report the referral comes from: the two are linked and the
    report is closed as having led to a referral.
    """
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
        intake = validate_intake(intake_data)
        with web.transaction() as session:
            woken = []
            if from_report:
                report = authorize_referral(session, principal, from_report)
                woken.append(report.id)
                referral = launch_from_report(
                    session, referral=report, intake=intake, catalog=web.catalog,
                    sealer=web.sealer, now=web.now(),
                )  # fmt: skip
            else:
                referral = launch(
                    session, intake=intake, catalog=web.catalog, sealer=web.sealer, now=web.now()
                )
            result = ActionResult(True, "launched", referral.reference)
            woken.insert(0, referral.id)
    except BadInput as exc:
        refuse(web, principal, "launch", exc, via=via)
        raise
    background.add_task(after_commit, web.settings, woken)
    return result
