"""The JSON API: the same actions as the pages, for integrations (`Authorization: Bearer TOKEN`).

No cookies are read here, so a browser cannot be tricked into calling it (no CSRF surface).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from models.access import (
    OFFICER_NEEDED,
    Principal,
    authorize_referral,
    authorize_step,
    check_holder,
    step_ref,
)
from models.catalog import stored_pathway
from models.codes import all_codes
from models.disclosure import disclose_all, disclose_for_step, read_notes
from models.engine import (
    accept_step,
    add_consent,
    cancel_referral,
    cancel_step,
    complete_step,
    decide_extension,
    decline_step,
    request_extension,
    reroute_step,
)
from models.errors import BadInput, Forbidden, NotFound
from models.note import add_note, clean_note, notes_of
from models.step import Step
from web.action import Outcome, launch_referral, perform
from web.guard import api_principal, locale_of, refuse, web_of
from web.language import CANCEL_REASONS
from web.views import inbox, referral_list, step_view, timeline

api = APIRouter(prefix="/api", tags=["api"])
Caller = Annotated[Principal, Depends(api_principal)]

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
    reason: str | None = Field(default=None, description=f"One of: {', '.join(CANCEL_REASONS)}.")


class ConsentBody(BaseModel):
    """Record consent to share with one more agency."""

    model_config = _BODY
    agency: str | None = None


def _moment(text: str | None, what: str) -> datetime:
    if not text:
        raise BadInput(f"{what} is required: an ISO 8601 time like 2026-12-10T17:00+07:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(f"{what} is not an ISO 8601 time like 2026-12-10T17:00+07:00") from None
    if moment.tzinfo is None:
        raise BadInput(f"{what} has no time zone: write it like 2026-12-10T17:00+07:00")
    return moment.astimezone(UTC)


def _answer(request: Request, outcome: Outcome, step_id: int | None = None) -> dict[str, Any]:
    web = web_of(request)
    data: dict[str, Any] = {
        "changed": outcome.changed,
        "reference": outcome.reference,
        "message": "done" if outcome.changed else outcome.message,
    }
    if step_id is not None:
        result = outcome.result if isinstance(outcome.result, Step) else None
        with web.transaction() as db:
            row = db.get(Step, result.id if result else step_id)
            from models.referral import Referral

            referral = db.get(Referral, row.referral_id) if row else None
            if row and referral:
                data["step"] = step_view(
                    row, referral, db, web.catalog, web.now(), locale_of(request)
                )
    return data


def _agency(
    request: Request,
    background: BackgroundTasks,
    principal: Principal,
    reference: str,
    step_id: int,
    attempt: str,
    officer: str | None,
    note: str | None,
    call,
) -> dict:
    web = web_of(request)
    try:
        if principal.grant_id is None:  # a link names no person: the body must
            if not officer:
                raise BadInput(OFFICER_NEEDED)
            principal = Principal(
                kind=principal.kind,
                agency=principal.agency,
                holder=check_holder(officer),
                step_ids=principal.step_ids,
            )
        text = clean_note(note)
    except BadInput as exc:
        refuse(web, principal, attempt, exc, reference=reference, step_id=step_id, via="api")
        raise
    actor = principal.actor

    def work(db, referral, step):
        row = call(db, referral, step, actor, web.now())
        if text:
            add_note(
                db,
                referral_id=referral.id,
                step_id=row.id,
                author=str(actor),
                action=attempt,
                text=text,
                sealer=web.sealer,
                now=web.now(),
            )
        return row

    outcome = perform(
        web,
        principal,
        attempt=attempt,
        reference=reference,
        step_id=step_id,
        work=work,
        background=background,
        role="agency",
        via="api",
    )
    return _answer(request, outcome, step_id)


def _coordinator(
    request: Request,
    background: BackgroundTasks,
    principal: Principal,
    reference: str,
    step_id: int | None,
    attempt: str,
    work,
) -> dict:
    outcome = perform(
        web_of(request),
        principal,
        attempt=attempt,
        reference=reference,
        step_id=step_id,
        work=work,
        background=background,
        role="coordinator",
        via="api",
    )
    return _answer(request, outcome, step_id)


# --- reading --------------------------------------------------------------------------------------


@api.get("/me", summary="Who the token belongs to")
def me(principal: Caller) -> dict:
    """The principal of the bearer token: kind, agency, holder, and the steps a link is limited to."""
    return {
        "kind": principal.kind.value,
        "agency": principal.agency,
        "holder": principal.holder,
        "steps": sorted(principal.step_ids) if principal.step_ids is not None else None,
    }


@api.get("/codes", summary="Outcome, decline-reason and extension-reason codes")
def codes() -> dict:
    """Every code with its Bahasa Indonesia and English label, and the cancel reasons."""
    return all_codes()


@api.get("/inbox", summary="Open steps (overdue first)")
def api_inbox(request: Request, principal: Caller) -> list[dict]:
    """The agency's open steps, overdue first; a coordinator gets every agency's."""
    web = web_of(request)
    with web.transaction() as db:
        return inbox(db, principal, web.catalog, web.now(), locale_of(request))


@api.get("/referrals/{reference}/steps/{step_id}", summary="One step with the facts it may see")
def api_step(request: Request, reference: str, step_id: int, principal: Caller) -> dict:
    """The step, the facts its pathway grants it (the view is audited) and its notes."""
    web = web_of(request)
    now = web.now()
    try:
        with web.transaction() as db:
            referral, step = authorize_step(db, principal, reference, step_id)
            spec = stored_pathway(db, referral.pathway_id, referral.pathway_version).step(step.key)
            data = step_view(step, referral, db, web.catalog, now, locale_of(request))
            actor = str(principal.actor)
            data["facts"] = disclose_for_step(
                db, referral=referral, step=step, spec=spec, sealer=web.sealer, actor=actor, now=now
            )
            assert referral.id is not None and step.id is not None
            data["notes"] = [
                {**n, "created_at": n["created_at"].isoformat()}
                for n in read_notes(
                    db,
                    referral=referral,
                    notes=notes_of(db, referral.id, {step.id}),
                    sealer=web.sealer,
                    actor=actor,
                    now=now,
                )
            ]
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-step", exc, reference=reference, step_id=step_id, via="api")
        raise
    return data


@api.get("/referrals", summary="Referrals (coordinator)")
def api_referrals(request: Request, principal: Caller, include_closed: bool = False) -> list[dict]:
    """Active referrals (or all), those that need the coordinator first."""
    web = web_of(request)
    if not principal.is_coordinator:
        exc = Forbidden("only a coordinator may list referrals")
        refuse(web, principal, "view-referrals", exc, via="api")
        raise exc
    with web.transaction() as db:
        return referral_list(db, web.catalog, web.now(), locale_of(request), include_closed)


@api.get("/referrals/{reference}", summary="A referral's timeline")
def api_referral(request: Request, reference: str, principal: Caller) -> dict:
    """A coordinator gets the timeline with the audit trail; an agency only its own steps."""
    web = web_of(request)
    try:
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            data = timeline(db, referral, web.catalog, web.now(), locale_of(request))
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-referral", exc, reference=reference, via="api")
        raise
    if principal.is_coordinator:
        return data
    own = [
        s
        for s in data["steps"]
        if s["agency"] == principal.agency
        and (principal.step_ids is None or s["id"] in principal.step_ids)
    ]
    return {"reference": data["reference"], "status": data["status"], "steps": own}


@api.get("/referrals/{reference}/person", summary="The person's facts (coordinator; audited)")
def api_person(request: Request, reference: str, principal: Caller) -> dict:
    """Every fact of the person and the notes, for the coordinator; the view is audited."""
    web = web_of(request)
    try:
        if not principal.is_coordinator:
            raise Forbidden("only a coordinator may see the whole record")
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            facts = disclose_all(
                db, referral=referral, sealer=web.sealer, actor=str(principal.actor), now=web.now()
            )
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-person", exc, reference=reference, via="api")
        raise
    return {"reference": referral.reference, "facts": facts}


# --- agency actions -------------------------------------------------------------------------------


@api.post("/referrals/{reference}/steps/{step_id}/accept", summary="Accept a ready step")
def api_accept(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: Annotated[AcceptBody, Body(default_factory=AcceptBody)],
    principal: Caller,
) -> dict:
    """Accept the step: the agency takes it on."""
    return _agency(
        request,
        background,
        principal,
        reference,
        step_id,
        "accept",
        body.officer,
        None,
        lambda db, r, s, actor, now: accept_step(
            db, reference=r.reference, step=step_ref(s), agency=s.agency, actor=actor, now=now
        ),
    )


@api.post("/referrals/{reference}/steps/{step_id}/decline", summary="Decline with a reason code")
def api_decline(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: DeclineBody,
    principal: Caller,
) -> dict:
    """Decline the step; the coordinator is told and re-routes it."""
    web = web_of(request)
    return _agency(
        request,
        background,
        principal,
        reference,
        step_id,
        "decline",
        body.officer,
        body.note,
        lambda db, r, s, actor, now: decline_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            reason=body.reason or "",
            actor=actor,
            now=now,
            catalog=web.catalog,
        ),
    )


@api.post(
    "/referrals/{reference}/steps/{step_id}/complete", summary="Complete with an outcome code"
)
def api_complete(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: CompleteBody,
    principal: Caller,
) -> dict:
    """Complete an accepted step; the steps after it become ready and their agencies are told."""
    web = web_of(request)
    return _agency(
        request,
        background,
        principal,
        reference,
        step_id,
        "complete",
        body.officer,
        body.note,
        lambda db, r, s, actor, now: complete_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            outcome=body.outcome or "",
            actor=actor,
            now=now,
            catalog=web.catalog,
        ),
    )


@api.post("/referrals/{reference}/steps/{step_id}/extension", summary="Ask for more time")
def api_extension(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: ExtensionBody,
    principal: Caller,
) -> dict:
    """Request an extension with a reason code and a proposed deadline; the coordinator decides."""
    return _agency(
        request,
        background,
        principal,
        reference,
        step_id,
        "request-extension",
        body.officer,
        body.note,
        lambda db, r, s, actor, now: request_extension(
            db,
            reference=r.reference,
            step=step_ref(s),
            agency=s.agency,
            until=_moment(body.until, "until"),
            reason=body.reason or "",
            actor=actor,
            now=now,
        ),
    )


# --- coordinator actions --------------------------------------------------------------------------


@api.post("/referrals", summary="Launch a referral from an intake (coordinator)", status_code=201)
def api_launch(
    request: Request,
    background: BackgroundTasks,
    intake: Annotated[
        dict,
        Body(
            examples=[
                {
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
                }
            ]
        ),
    ],
    principal: Caller,
) -> dict:
    """Launch a referral; the consent is recorded as given to (or overridden by) the token's holder."""
    outcome = launch_referral(web_of(request), principal, intake, background, via="api")
    web = web_of(request)
    with web.transaction() as db:
        from models.engine import find_referral

        referral = find_referral(db, outcome.reference)
        data = timeline(db, referral, web.catalog, web.now(), locale_of(request))
    return {
        "reference": outcome.reference,
        "pathway": data["pathway"],
        "ready_steps": [s["step"] for s in data["steps"] if s["status"] == "ready"],
    }


@api.post("/referrals/{reference}/steps/{step_id}/reroute", summary="Re-route a step")
def api_reroute(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: RerouteBody,
    principal: Caller,
) -> dict:
    """Hand a declined (or open) step to another agency, with a fresh deadline."""
    web = web_of(request)
    return _coordinator(
        request,
        background,
        principal,
        reference,
        step_id,
        "reroute",
        lambda db, r, s: reroute_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            to_agency=body.to or "",
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )


@api.post(
    "/referrals/{reference}/steps/{step_id}/extension-decision", summary="Decide an extension"
)
def api_decide(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: DecisionBody,
    principal: Caller,
) -> dict:
    """Approve (optionally with another date) or refuse a requested extension."""
    web = web_of(request)

    def work(db, r, s):
        if body.approve is None:
            raise BadInput("approve is required: true or false")
        until = _moment(body.until, "until") if body.until else None
        return decide_extension(
            db,
            reference=r.reference,
            step=step_ref(s),
            approve=body.approve,
            actor=principal.actor,
            now=web.now(),
            until=until,
        )

    return _coordinator(
        request, background, principal, reference, step_id, "decide-extension", work
    )


def _cancel_code(reason: str | None) -> str:
    if reason not in CANCEL_REASONS:
        raise BadInput(f"a cancel reason is required (one of: {', '.join(CANCEL_REASONS)})")
    return reason


@api.post("/referrals/{reference}/steps/{step_id}/cancel", summary="Cancel a step")
def api_cancel_step(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    body: CancelBody,
    principal: Caller,
) -> dict:
    """Cancel a step that is no longer needed; the steps after it may go ahead."""
    web = web_of(request)
    return _coordinator(
        request,
        background,
        principal,
        reference,
        step_id,
        "cancel-step",
        lambda db, r, s: cancel_step(
            db,
            reference=r.reference,
            step=step_ref(s),
            reason=_cancel_code(body.reason),
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )


@api.post("/referrals/{reference}/cancel", summary="Cancel a referral")
def api_cancel_referral(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    body: CancelBody,
    principal: Caller,
) -> dict:
    """Close a referral: every step not yet finished is cancelled."""
    web = web_of(request)
    return _coordinator(
        request,
        background,
        principal,
        reference,
        None,
        "cancel-referral",
        lambda db, r, s: cancel_referral(
            db,
            reference=r.reference,
            reason=_cancel_code(body.reason),
            actor=principal.actor,
            now=web.now(),
        ),
    )


@api.post("/referrals/{reference}/consent", summary="Record consent for one more agency")
def api_consent(
    request: Request,
    background: BackgroundTasks,
    reference: str,
    body: ConsentBody,
    principal: Caller,
) -> dict:
    """Record the victim's consent to share with one more agency (before a re-route to it)."""
    web = web_of(request)
    return _coordinator(
        request,
        background,
        principal,
        reference,
        None,
        "add-consent",
        lambda db, r, s: add_consent(
            db,
            reference=r.reference,
            agency=body.agency or "",
            actor=principal.actor,
            now=web.now(),
            catalog=web.catalog,
        ),
    )
