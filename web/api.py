"""The JSON API: the same actions as the pages, for integrations (`Authorization: Bearer TOKEN`).

No cookies are read here, so a browser cannot be tricked into calling it (no CSRF surface).
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body
from pydantic import BaseModel, ConfigDict, Field

from models.access import authorize_referral, authorize_step
from models.actions import (
    accept_step,
    add_consent,
    cancel_referral,
    cancel_step,
    complete_step,
    decide_extension,
    decline_step,
    find_referral,
    request_extension,
    reroute_step,
)
from models.catalog import stored_pathway
from models.clock import parse_moment
from models.disclosure import disclose_all, disclose_for_step, read_notes
from models.errors import BadInput, Forbidden, NotFound
from models.note import notes_of
from models.step import Step
from models.vocabulary import CancelCode, all_codes
from web.action import ActionResult, agency_action, coordinator_action, launch_referral
from web.deps import Caller, Locale, WebDep
from web.guard import refuse
from web.views import inbox, referral_list, step_view, timeline

api = APIRouter(prefix="/api", tags=["api"])

_BODY = ConfigDict(extra="forbid", hide_input_in_errors=True)
Officer = Field(
    default=None,
    max_length=60,
    description="The focal point's name, for the audit trail: required with a link token, "
    "ignored with a personal token (which names its holder).",
)
Note = Field(
    default=None,
    max_length=2000,
    description="Optional free text; stored sealed, never in the audit trail.",
)


class AcceptBody(BaseModel):
    """Accept a ready step."""

    model_config = _BODY
    officer: str | None = Officer


class DeclineBody(BaseModel):
    """Decline with a reason code (see /api/codes)."""

    model_config = _BODY
    reason: str | None = Field(default=None, description="A decline-reason code, e.g. no-capacity.")
    note: str | None = Note
    officer: str | None = Officer


class CompleteBody(BaseModel):
    """Complete with an outcome code (see /api/codes)."""

    model_config = _BODY
    outcome: str | None = Field(default=None, description="An outcome code, e.g. served.")
    note: str | None = Note
    officer: str | None = Officer


class ExtensionBody(BaseModel):
    """Ask for more time: a reason code and the proposed new deadline."""

    model_config = _BODY
    reason: str | None = Field(default=None, description="An extension-reason code.")
    until: str | None = Field(
        default=None, description="ISO 8601 with offset, e.g. 2026-12-10T17:00+07:00."
    )
    note: str | None = Note
    officer: str | None = Officer


class RerouteBody(BaseModel):
    """Hand the step to another agency."""

    model_config = _BODY
    to: str | None = Field(default=None, description="The new agency's slug.")


class DecisionBody(BaseModel):
    """Approve or refuse a requested extension (approve may give another date)."""

    model_config = _BODY
    approve: bool | None = None
    until: str | None = Field(
        default=None, description="ISO 8601 with offset; default the requested date."
    )


class CancelBody(BaseModel):
    """Why a step or referral is cancelled: a code (not free text, which could name the person)."""

    model_config = _BODY
    reason: str | None = Field(default=None, description=f"One of: {', '.join(CancelCode)}.")


INTAKE_EXAMPLE = {
    "pathway": "tppo-dewasa",
    "urgency": "regular",
    "person": {
        "name": "Siti Contoh",
        "sex": "F",
        "birth_year": 2001,
        "nationality": "ID",
        "languages": ["id"],
    },
    "consent": {"agencies": ["polres-ppa", "dinkes", "dinsos"]},
    "facts": {"exploitation": "online-scam", "source": "returnee-at-port", "place": "KH"},
}


class ConsentBody(BaseModel):
    """Record consent to share with one more agency."""

    model_config = _BODY
    agency: str | None = None


def _moment(text: str | None, what: str) -> datetime:
    if not text:
        raise BadInput(f"{what} is required: an ISO 8601 time like 2026-12-10T17:00+07:00")
    return parse_moment(text, what)


def _answer(web: WebDep, locale: str, result: ActionResult) -> dict[str, Any]:
    """What an action answers: changed or not, and the step as it now stands."""
    data: dict[str, Any] = {
        "changed": result.changed,
        "reference": result.reference,
        "message": "done" if result.changed else result.message,
    }
    if result.step_id is not None:
        with web.transaction() as db:
            step = db.get(Step, result.step_id)
            referral = find_referral(db, result.reference) if step else None
            if step and referral:
                data["step"] = step_view(step, referral, db, web.catalog, web.now(), locale)
    return data


# --- reading --------------------------------------------------------------------------------------


@api.get("/me", summary="Who the token belongs to")
def me(principal: Caller) -> dict:
    """The principal of the bearer token: kind, agency, holder, and the steps a link opens."""
    steps = sorted(principal.step_ids) if principal.step_ids is not None else None
    return {
        "kind": principal.kind.value,
        "agency": principal.agency,
        "holder": principal.holder,
        "steps": steps,
    }


@api.get("/codes", summary="Outcome, decline-reason and extension-reason codes")
def codes() -> dict:
    """Every code with its Bahasa Indonesia and English label, and the cancel reasons."""
    return all_codes()


@api.get("/inbox", summary="Open steps (overdue first)")
def api_inbox(web: WebDep, principal: Caller, locale: Locale) -> list[dict]:
    """The agency's open steps, overdue first; a coordinator gets every agency's."""
    if principal.is_manager:
        exc = Forbidden("a manager has no inbox: late steps are on the page /manager")
        refuse(web, principal, "view-inbox", exc, via="api")
        raise exc
    with web.transaction() as db:
        return inbox(db, principal, web.catalog, web.now(), locale)


@api.get("/referrals/{reference}/steps/{step_id}", summary="One step with the facts it may see")
def api_step(web: WebDep, principal: Caller, locale: Locale, reference: str, step_id: int) -> dict:
    """The step, the facts its pathway grants it while it is open (audited) and its notes."""
    now = web.now()
    try:
        with web.transaction() as db:
            referral, step = authorize_step(db, principal, reference, step_id)
            spec = stored_pathway(db, referral.pathway_id, referral.pathway_version).step(step.key)
            data = step_view(step, referral, db, web.catalog, now, locale)
            actor = str(principal.actor)
            data["facts"] = disclose_for_step(
                db, referral=referral, step=step, spec=spec, sealer=web.sealer, actor=actor,
                now=now,
            )  # fmt: skip
            assert referral.id is not None and step.id is not None
            notes = read_notes(
                db,
                referral=referral,
                notes=notes_of(db, referral.id, {step.id}),
                sealer=web.sealer,
                actor=actor,
                now=now,
            )
            data["notes"] = [{**n, "created_at": n["created_at"].isoformat()} for n in notes]
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-step", exc, reference=reference, step_id=step_id, via="api")
        raise
    return data


@api.get("/referrals", summary="Referrals (coordinator)")
def api_referrals(
    web: WebDep, principal: Caller, locale: Locale, include_closed: bool = False
) -> list[dict]:
    """Active referrals (or all), those that need the coordinator first."""
    if not principal.is_coordinator:
        exc = Forbidden("only a coordinator may list referrals")
        refuse(web, principal, "view-referrals", exc, via="api")
        raise exc
    with web.transaction() as db:
        return referral_list(db, web.catalog, web.now(), locale, include_closed)


@api.get("/referrals/{reference}", summary="A referral's timeline")
def api_referral(web: WebDep, principal: Caller, locale: Locale, reference: str) -> dict:
    """A coordinator gets the timeline with the audit trail; an agency only the steps it holds."""
    try:
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            data = timeline(db, referral, web.catalog, web.now(), locale)
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-referral", exc, reference=reference, via="api")
        raise
    if principal.is_coordinator:
        return data
    own = [
        s
        for s in data["steps"]
        if s["agency"] == principal.agency
        and s["ready_at"] is not None
        and (principal.step_ids is None or s["id"] in principal.step_ids)
    ]
    return {"reference": data["reference"], "status": data["status"], "steps": own}


@api.get("/referrals/{reference}/person", summary="The person's facts (coordinator; audited)")
def api_person(web: WebDep, principal: Caller, reference: str) -> dict:
    """Every fact of the person, for the coordinator; the view is audited."""
    try:
        if not principal.is_coordinator:
            raise Forbidden("only a coordinator may see the whole record")
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            facts = disclose_all(
                db, referral=referral, sealer=web.sealer, actor=str(principal.actor),
                now=web.now(),
            )  # fmt: skip
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-person", exc, reference=reference, via="api")
        raise
    return {"reference": referral.reference, "facts": facts}


# --- agency actions -------------------------------------------------------------------------------


@api.post("/referrals/{reference}/steps/{step_id}/accept", summary="Accept a ready step")
def api_accept(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: Annotated[AcceptBody, Body(default_factory=AcceptBody)],
) -> dict:
    """Accept the step: the agency takes it on."""
    result = agency_action(
        web, principal, background, attempt="accept", reference=reference, step_id=step_id,
        act=accept_step, officer=body.officer or "", via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/steps/{step_id}/decline", summary="Decline with a reason code")
def api_decline(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: DeclineBody,
) -> dict:
    """Decline the step; the coordinator is told and re-routes it."""
    result = agency_action(
        web, principal, background, attempt="decline", reference=reference, step_id=step_id,
        act=partial(decline_step, reason=body.reason or ""), officer=body.officer or "",
        note=body.note, via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post(
    "/referrals/{reference}/steps/{step_id}/complete", summary="Complete with an outcome code"
)
def api_complete(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: CompleteBody,
) -> dict:
    """Complete an accepted step; the steps after it become ready and their agencies are told."""
    act = partial(complete_step, outcome=body.outcome or "", catalog=web.catalog)
    result = agency_action(
        web, principal, background, attempt="complete", reference=reference, step_id=step_id,
        act=act, officer=body.officer or "", note=body.note, via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/steps/{step_id}/request-extension", summary="Ask for more time")
def api_extension(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: ExtensionBody,
) -> dict:
    """Request an extension with a reason code and a proposed deadline; the coordinator decides."""

    def act(*, session, step: Step, actor, now) -> Step:
        until = _moment(body.until, "until")
        return request_extension(
            session=session, step=step, until=until, reason=body.reason or "", actor=actor,
            now=now,
        )  # fmt: skip

    result = agency_action(
        web, principal, background, attempt="request-extension", reference=reference,
        step_id=step_id, act=act, officer=body.officer or "", note=body.note, via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


# --- coordinator actions --------------------------------------------------------------------------


@api.post("/referrals", summary="Launch a referral from an intake (coordinator)", status_code=201)
def api_launch(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    intake: Annotated[dict, Body(examples=[INTAKE_EXAMPLE])],
) -> dict:
    """Launch a referral; the consent is recorded as given to (or overridden by) the caller."""
    result = launch_referral(web, principal, background, intake, via="api")
    with web.transaction() as db:
        referral = find_referral(db, result.reference)
        data = timeline(db, referral, web.catalog, web.now(), locale)
    return {
        "reference": result.reference,
        "pathway": data["pathway"],
        "ready_steps": [s["step"] for s in data["steps"] if s["status"] == "ready"],
    }


@api.post("/referrals/{reference}/steps/{step_id}/reroute", summary="Re-route a step")
def api_reroute(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: RerouteBody,
) -> dict:
    """Hand a declined (or open) step to another agency, with a fresh deadline."""
    result = coordinator_action(
        web, principal, background, attempt="reroute", reference=reference, step_id=step_id,
        act=partial(reroute_step, to_agency=body.to or "", catalog=web.catalog), via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/steps/{step_id}/decide-extension", summary="Decide an extension")
def api_decide(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: DecisionBody,
) -> dict:
    """Approve (optionally with another date) or refuse a requested extension."""

    def act(*, session, step: Step, actor, now) -> Step:
        if body.approve is None:
            raise BadInput("approve is required: true or false")
        until = _moment(body.until, "until") if body.until else None
        return decide_extension(
            session=session, step=step, approve=body.approve, actor=actor, now=now, until=until
        )

    result = coordinator_action(
        web, principal, background, attempt="decide-extension", reference=reference,
        step_id=step_id, act=act, via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/steps/{step_id}/cancel", summary="Cancel a step")
def api_cancel_step(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: CancelBody,
) -> dict:
    """Cancel a step that is no longer needed; the steps after it may go ahead."""
    act = partial(cancel_step, reason=body.reason or "", catalog=web.catalog)
    result = coordinator_action(
        web, principal, background, attempt="cancel-step", reference=reference,
        step_id=step_id, act=act, via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/cancel", summary="Cancel a referral")
def api_cancel_referral(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    body: CancelBody,
) -> dict:
    """Close a referral: every step not yet finished is cancelled."""
    result = coordinator_action(
        web, principal, background, attempt="cancel-referral", reference=reference,
        act=partial(cancel_referral, reason=body.reason or ""), via="api",
    )  # fmt: skip
    return _answer(web, locale, result)


@api.post("/referrals/{reference}/consent", summary="Record consent for one more agency")
def api_consent(
    web: WebDep,
    principal: Caller,
    locale: Locale,
    background: BackgroundTasks,
    reference: str,
    body: ConsentBody,
) -> dict:
    """Record the victim's consent to share with one more agency (before a re-route to it)."""
    result = coordinator_action(
        web, principal, background, attempt="add-consent", reference=reference,
        act=partial(add_consent, agency=body.agency or "", catalog=web.catalog), via="api",
    )  # fmt: skip
    return _answer(web, locale, result)
