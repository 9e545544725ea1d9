"""The HTML pages: sign-in, the agency inbox and step page, the coordinator's intake, timeline."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import partial
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select
from starlette.concurrency import run_in_threadpool

from models.access import (
    HOLDER_RULE,
    OFFICER_NEEDED,
    Principal,
    authorize_referral,
    authorize_step,
    check_holder,
    check_link_issued,
    principal_of_link,
    principal_of_token,
)
from models.actions import (
    accept_step,
    add_consent,
    cancel_referral,
    cancel_step,
    complete_step,
    decide_extension,
    decline_step,
    request_extension,
    reroute_step,
    steps_of,
)
from models.audit import record
from models.catalog import stored_pathway
from models.disclosure import disclose_all, disclose_for_step, read_notes
from models.errors import BadInput, Forbidden, NotFound
from models.intake import CaseFacts, CaseOptions
from models.links import microseconds, verify
from models.note import notes_of
from models.pathway import Pathway
from models.public_report import REPORT_PATHWAY, VERIFY, intake_prefill, open_report, report_of
from models.referral import Referral
from models.step import Step
from models.vocabulary import (
    CODE_KINDS,
    LOCALES,
    AuditAction,
    CancelCode,
    case_option_label,
    choices,
)
from web.action import StepAct, agency_action, coordinator_action, launch_referral
from web.deps import CookieSession, Coordinator, Page, PageDep, PagePrincipal, WebDep
from web.guard import Unauthorized, check_csrf, check_link_session, refuse
from web.language import words
from web.render import error_page, error_status, render
from web.session import (
    COOKIE,
    LANG_COOKIE,
    SESSION_LIFETIME,
    WebSession,
    anonymous,
    encode,
    signed_in,
    with_officer,
)
from web.views import (
    confirmation,
    inbox,
    link_steps,
    readable_facts,
    readable_notes,
    referral_list,
    step_view,
    timeline,
)

pages = APIRouter(include_in_schema=False)
# What a manager sees of a referral's timeline.
STEPS_ONLY = ("reference", "pathway_title", "urgency", "status", "status_label", "created_local",
              "steps")  # fmt: skip
# Where each kind of principal starts (an agency: its inbox).
HOME = {"coordinator": "/coordinator", "manager": "/manager"}
# The code kinds (models/vocabulary.py CODE_KINDS) of the intake's case facts.
FACT_KINDS = ("exploitation", "case-source", "recruitment")
Field = Annotated[str, Form()]  # a form field; always optional, so the engine names what is missing


def _set_session(web: WebDep, response: Response, session: WebSession) -> Response:
    response.set_cookie(
        COOKIE,
        encode(web.secret, session),
        httponly=True,
        samesite="lax",
        secure=web.secure_cookies,
        path="/",
        max_age=int(SESSION_LIFETIME.total_seconds()),
    )
    return response


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _local_path(url: str | None) -> str:
    """A same-site path to go back to (never another site: no open redirect)."""
    if (
        not url
        or not url.startswith("/")
        or url.startswith("//")
        or "\\" in url
        or any(ord(c) < 32 or ord(c) == 127 for c in url)
    ):
        return "/"
    return url


def _step_url(reference: str, step_id: int, done: str | None = None) -> str:
    return f"/referrals/{reference}/steps/{step_id}" + (f"?done={done}" if done else "")


def _word(text: str | None) -> str | None:
    """A `done=` word from the address, if it is one (it only picks a sentence to show)."""
    return text if text and text.isalpha() else None


# --- entry: links, sign-in, language --------------------------------------------------------------


@pages.get("/")
def home(session: CookieSession):
    """Signed in: the inbox or the coordinator's list; otherwise the sign-in page."""
    if session is None or not session.signed_in:
        return _redirect("/signin")
    return _redirect(HOME.get(session.kind or "", "/inbox"))


@pages.get("/s/{token}")
def open_link(page: PageDep, token: str):
    """Exchange a signed link for a session cookie and go on to a token-free address."""
    web, previous = page.web, page.session
    now = web.now()
    try:
        claim = verify(web.secret, token, now, web.previous_secrets)
        principal = principal_of_link(claim)
        target = "/inbox"
        with web.transaction() as db:
            check_link_issued(db, claim.agency, claim.issued)
            if previous is not None:
                try:
                    check_link_session(db, previous)
                except Forbidden:
                    previous = None  # a withdrawn session is not carried into the new one
            if principal.step_ids:
                step_id = next(iter(principal.step_ids))
                step = db.get(Step, step_id)
                referral = db.get(Referral, step.referral_id) if step else None
                if step is None or referral is None or step.agency != principal.agency:
                    raise NotFound("the step of this link no longer exists")
                target = _step_url(referral.reference, step_id)
    except (Forbidden, NotFound) as exc:
        refuse(web, None, "open-link", exc, source=page.source)
        return error_page(page.request, 403, hint_key="link_refused")
    issued = microseconds(claim.issued) if claim.issued is not None else None
    session = signed_in(now, principal, until=claim.expires, previous=previous, link_issued=issued)
    return _set_session(web, _redirect(target), session)


@pages.get("/signin")
def signin_page(
    request: Request, web: WebDep, session: CookieSession, bye: int = 0, next: str = ""
):
    """The sign-in form (a token is pasted, never put in the address)."""
    values = {"refused": None, "bye": bye, "next": _local_path(next) if next else ""}
    if session is not None:
        return render(request, "signin.html", values)
    # The form needs a CSRF token before anyone is signed in (against login CSRF).
    fresh = anonymous(web.now())
    page = render(request, "signin.html", values, session=fresh)
    return _set_session(web, page, fresh)


@pages.post("/signin")
def signin(page: PageDep, token: Field = "", csrf: Field = "", next: Field = ""):
    """Exchange a personal access token for a session; go on to the page asked for, if any."""
    web = page.web
    previous = check_csrf(web, page.session, csrf, "sign-in", source=page.source)
    now = web.now()
    try:
        with web.transaction() as db:
            principal = principal_of_token(db, token, now)
            record(
                db,
                actor=str(principal.actor),
                action=AuditAction.signed_in,
                now=now,
                detail={"grant": principal.grant_id},
            )
    except Forbidden as exc:
        refuse(web, None, "sign-in", exc, source=page.source)
        raise Unauthorized(str(exc)) from None
    target = HOME.get(principal.kind.value, "/inbox")
    if next and _local_path(next) != "/":
        target = _local_path(next)
    return _set_session(web, _redirect(target), signed_in(now, principal, previous=previous))


@pages.post("/signout")
def signout(page: PageDep, csrf: Field = ""):
    """End the session."""
    check_csrf(page.web, page.session, csrf, "sign-out", source=page.source)
    response = _redirect("/signin?bye=1")
    response.delete_cookie(COOKIE, path="/")
    return response


@pages.get("/lang/{locale}")
def switch_language(web: WebDep, locale: str, next: str = "/"):
    """Switch between Bahasa Indonesia and English, and go back."""
    response = _redirect(_local_path(next))
    if locale in LOCALES:
        response.set_cookie(
            LANG_COOKIE,
            locale,
            max_age=365 * 24 * 3600,
            samesite="lax",
            httponly=True,
            secure=web.secure_cookies,
            path="/",
        )
    return response


# --- agency pages ---------------------------------------------------------------------------------


@pages.get("/inbox")
def inbox_page(page: PageDep, principal: PagePrincipal):
    """The agency's open steps, overdue first (a coordinator sees every agency's)."""
    if principal.is_manager:
        return _redirect("/manager")
    web = page.web
    one_step = principal.step_ids is not None
    with web.transaction() as db:
        if one_step:
            rows = link_steps(db, principal, web.catalog, web.now(), page.locale)
        else:
            rows = inbox(db, principal, web.catalog, web.now(), page.locale)
    return render(
        page.request,
        "inbox.html",
        {
            "rows": rows,
            "open_rows": [r for r in rows if r["open"]],
            "agency": web.catalog.agency(principal.agency),
            "one_step": one_step,
        },
    )


def _step_page(
    page: Page,
    principal: Principal,
    reference: str,
    step_id: int,
    *,
    error: str | None = None,
    status: int = 200,
    done: str | None = None,
) -> Response:
    """The step page: its facts (while it is open) and notes are read in one audited view."""
    web, locale = page.web, page.locale
    now = web.now()
    with web.transaction() as db:
        referral, step = authorize_step(db, principal, reference, step_id)
        pathway = stored_pathway(db, referral.pathway_id, referral.pathway_version)
        spec = pathway.step(step.key)
        view = step_view(step, referral, db, web.catalog, now, locale)
        confirm = confirmation(
            db,
            referral=referral,
            step=step,
            catalog=web.catalog,
            viewer=principal.agency,
            done=done,
            locale=locale,
        )
        actor = str(principal.actor)
        facts = disclose_for_step(
            db, referral=referral, step=step, spec=spec, sealer=web.sealer, actor=actor, now=now
        )
        report_words = None
        if pathway.kind == "report" and step.key == VERIFY and step.is_open:
            # The agency verifying a public report reads what was reported, never who reported.
            report_words = open_report(
                db, report=report_of(db, referral), sealer=web.sealer, actor=actor, now=now,
                with_contact=False,
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
    tz = ZoneInfo(view["timezone"])
    for note in notes:
        note["local"] = note["created_at"].astimezone(tz).strftime("%Y-%m-%d %H:%M")
    readable_notes(notes, referral, web.catalog, {step.id: view["title"]}, locale)
    codes = {kind: choices(enum, locale) for kind, enum in CODE_KINDS.items()}
    return render(
        page.request,
        "step.html",
        {
            "step": view,
            "facts": readable_facts(facts, locale),
            "report_words": report_words,
            "notes": notes,
            "codes": codes,
            "error": error,
            "done": done,
            "confirm": confirm,
            "agency": web.catalog.agency(principal.agency),
            "ask_officer": principal.grant_id is None,
            "officer": page.session.officer if page.session else "",
            "min_date": now.astimezone(tz).date().isoformat(),
        },
        status,
    )


@pages.get("/referrals/{reference}/steps/{step_id}")
def step_page(
    page: PageDep,
    principal: PagePrincipal,
    reference: str,
    step_id: int,
    done: str | None = None,
):
    """One step: reference, title, deadline, legal basis, the granted facts, the actions."""
    if principal.is_coordinator or principal.is_manager:
        return _redirect(f"/referrals/{reference}#step-{step_id}")
    try:
        return _step_page(page, principal, reference, step_id, done=_word(done))
    except (Forbidden, NotFound) as exc:
        refuse(page.web, principal, "view-step", exc, reference=reference, step_id=step_id)
        raise


def _agency_action(
    page: Page,
    principal: Principal,
    background: BackgroundTasks,
    *,
    reference: str,
    step_id: int,
    attempt: str,
    done: str,
    csrf: str,
    officer: str,
    act: StepAct,
    note: str | None = None,
) -> Response:
    """The page side of an agency action: CSRF, the officer's name (asked once), the redirect."""
    web = page.web
    session = check_csrf(web, page.session, csrf, attempt, principal, page.source)
    name = officer.strip() or session.officer
    try:
        result = agency_action(
            web,
            principal,
            background,
            attempt=attempt,
            reference=reference,
            step_id=step_id,
            act=act,
            officer=name,
            note=note,
        )
    except (Forbidden, NotFound):
        raise
    except BadInput as exc:
        status = error_status(exc)
        error = _in_words(page, str(exc))
        return _step_page(page, principal, reference, step_id, error=error, status=status)
    response = _redirect(
        _step_url(result.reference, step_id, done if result.changed else "already")
    )
    if principal.grant_id is None and name != session.officer:
        _set_session(web, response, with_officer(session, check_holder(name)))
    return response


# Errors about the officer's name, in the page's language (the engine's are in English).
OFFICER_ERRORS = {OFFICER_NEEDED: "officer_needed", HOLDER_RULE: "officer_invalid"}


def _in_words(page: Page, message: str) -> str:
    key = OFFICER_ERRORS.get(message)
    return words(page.locale)(key) if key else message


@pages.post("/officer")
def change_officer(
    page: PageDep, principal: PagePrincipal, csrf: Field = "", officer: Field = "", next: Field = ""
):
    """A link session names another officer for its next actions (a personal token names its
    holder, so it has nothing to change)."""
    web = page.web
    session = check_csrf(web, page.session, csrf, "name-officer", principal, page.source)
    target = _local_path(next or "/inbox")
    if principal.grant_id is not None or principal.is_coordinator:
        return _redirect(target)
    try:
        name = check_holder(officer)
    except BadInput as exc:
        refuse(web, principal, "name-officer", exc, source=page.source)
        return error_page(page.request, 400, _in_words(page, str(exc)))
    return _set_session(web, _redirect(target), with_officer(session, name))


@pages.post("/referrals/{reference}/steps/{step_id}/accept")
def accept(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
):
    """Accept the step."""
    return _agency_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="accept", done="accepted",
        csrf=csrf, officer=officer, act=accept_step,
    )  # fmt: skip


@pages.post("/referrals/{reference}/steps/{step_id}/decline")
def decline(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    reason: Field = "",
    note: Field = "",
):
    """Decline the step with a reason code and an optional (sealed) note."""
    return _agency_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="decline", done="declined",
        csrf=csrf, officer=officer, note=note, act=partial(decline_step, reason=reason),
    )  # fmt: skip


@pages.post("/referrals/{reference}/steps/{step_id}/complete")
def complete(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    outcome: Field = "",
    note: Field = "",
):
    """Complete the step with an outcome code and an optional (sealed) note."""
    act = partial(complete_step, outcome=outcome, catalog=page.web.catalog)
    return _agency_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="complete", done="completed",
        csrf=csrf, officer=officer, note=note, act=act,
    )  # fmt: skip


def local_moment(day: str, at: str, tz: str) -> datetime:
    """A date and time typed in an agency's local time, as an aware UTC moment."""
    try:
        moment = datetime.combine(
            date.fromisoformat(day.strip()), time.fromisoformat((at or "17:00").strip())
        )
    except ValueError:
        raise BadInput("the new date is not a date and time like 2026-12-10 17:00") from None
    return moment.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)


@pages.post("/referrals/{reference}/steps/{step_id}/request-extension")
def request_more_time(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    officer: Field = "",
    reason: Field = "",
    until_date: Field = "",
    until_time: Field = "17:00",
    note: Field = "",
):
    """Ask the coordinator for more time: a reason code and a proposed date (local time)."""

    def act(*, session, step: Step, actor, now) -> Step:
        tz = page.web.catalog.agency(step.agency).timezone
        until = local_moment(until_date, until_time, tz)
        return request_extension(
            session=session, step=step, until=until, reason=reason, actor=actor, now=now
        )

    return _agency_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="request-extension", done="extension",
        csrf=csrf, officer=officer, note=note, act=act,
    )  # fmt: skip


# --- coordinator pages ----------------------------------------------------------------------------


@pages.get("/coordinator")
def coordinator_home(page: PageDep, _: Coordinator, all: int = 0):
    """Referrals: those that need the coordinator first."""
    web = page.web
    with web.transaction() as db:
        rows = referral_list(db, web.catalog, web.now(), page.locale, include_closed=bool(all))
    return render(page.request, "referrals.html", {"rows": rows, "show_all": bool(all)})


def _offered(page: Page, pathway_id: str) -> Pathway | None:
    """The pathway a coordinator may choose for a case (demonstration pathways never are)."""
    pathway = page.web.catalog.pathways.get(pathway_id)
    return None if pathway is None or pathway.demo else pathway


def _receiving(page: Page, pathway: Pathway) -> list[dict]:
    """The pathway's receiving agencies in the order of its steps, each with its steps' titles."""
    agencies: dict[str, dict] = {}
    for spec in pathway.steps:
        agency = page.web.catalog.agency(spec.agency)
        row = agencies.setdefault(agency.slug, {"slug": agency.slug, "name": agency.name})
        row.setdefault("steps", []).append(spec.title.text(page.locale))
    return list(agencies.values())


def _intake_context(page: Page, values: dict, error: str | None) -> dict:
    web, locale = page.web, page.locale
    # Demonstration pathways (clocks in seconds) are never offered for a real case, nor is the
    # triage of public reports, which models/public_report.py files.
    pathways = sorted(
        (p for p in web.catalog.pathways.values() if not p.demo and p.kind == "referral"),
        key=lambda p: p.id,
    )
    chosen = _offered(page, values["pathway"])
    receiving = _receiving(page, chosen) if chosen else []
    slugs = {a["slug"] for a in receiving}
    return {
        "pathways": [(p.id, p.title.text(locale), len(p.agencies())) for p in pathways],
        "chosen": (chosen.id, chosen.title.text(locale)) if chosen else None,
        "receiving": receiving,
        "others": [a for a in web.catalog.directory.agencies if a.slug not in slugs],
        "case_options": [(key, case_option_label(key, locale)) for key in CaseOptions.model_fields],
        "fact_codes": {kind: choices(CODE_KINDS[kind], locale) for kind in FACT_KINDS},
        "values": values,
        "error": error,
    }


@pages.get("/coordinator/intake")
def intake_page(
    page: PageDep, principal: Coordinator, pathway: str = "", report: str | None = None
):
    """The intake form: first the pathway, then the person, the case and the consent it needs;
    from a public report (`?report=REF`), pre-filled with what it tells."""
    values: dict = {
        "pathway": pathway,
        "urgency": "regular",
        "case": CaseOptions().model_dump(),
        "facts": dict.fromkeys(CaseFacts.model_fields, ""),
    }
    if report:
        web = page.web
        with web.transaction() as db:
            source = report_of(db, authorize_referral(db, principal, report))
            values |= intake_prefill(source) | {"report": report.upper()}
    chosen = _offered(page, values["pathway"])
    values["pathway"] = chosen.id if chosen else ""
    # The pathway's receiving agencies come ticked; the coordinator confirms the consent once
    # and unticks any agency the victim refused.
    values["consent"] = sorted(chosen.agencies()) if chosen else []
    return render(page.request, "intake.html", _intake_context(page, values, None))


def _consent_error(page: Page, pathway: Pathway, values: dict) -> str | None:
    """What the form lacks in the victim's consent, in the page's words, naming agencies."""
    if values["override"]:
        return None
    t = words(page.locale)
    if not values["consent_given"]:
        return t("intake_consent_unconfirmed")
    missing = [a["name"] for a in _receiving(page, pathway) if a["slug"] not in values["consent"]]
    if missing:
        return t("intake_consent_missing").format(agencies=", ".join(missing))
    return None


@pages.post("/coordinator/intake")
async def intake_submit(page: PageDep, principal: Coordinator, background: BackgroundTasks):
    """Launch a referral from the intake form."""
    web = page.web
    form = await page.request.form()
    check_csrf(web, page.session, str(form.get("csrf", "")), "launch", principal, page.source)

    def get(key: str) -> str:
        return str(form.get(key, "")).strip()

    consent = [str(v) for v in form.getlist("consent")]
    values = {
        "pathway": get("pathway"),
        "urgency": get("urgency") or "regular",
        "name": get("name"),
        "sex": get("sex"),
        "birth_year": get("birth_year"),
        "nationality": get("nationality").upper(),
        "languages": get("languages"),
        "phone": get("phone"),
        "home_district": get("home_district"),
        "address": get("address"),
        "consent": consent,
        "consent_given": bool(form.get("consent_given")),
        "override": bool(form.get("override")),
        "override_reason": get("override_reason"),
        "case": {k: bool(form.get(k)) for k in CaseOptions.model_fields},
        "report": get("report").upper(),
        "facts": {k: get(f"fact_{k}") for k in CaseFacts.model_fields},
    }
    values["facts"]["place"] = values["facts"]["place"].upper()
    languages = values["languages"].replace(";", ",").split(",")
    person: dict = {
        "name": values["name"],
        "sex": values["sex"],
        "nationality": values["nationality"],
        "languages": [x.strip().lower() for x in languages if x.strip()],
    }
    if values["birth_year"]:
        year = values["birth_year"]
        person["birth_year"] = int(year) if year.isdigit() else -1
    for key in ("phone", "home_district", "address"):
        if values[key]:
            person[key] = values[key]
    intake = {
        "pathway": values["pathway"],
        "urgency": values["urgency"],
        "person": person,
        "consent": (
            {"override": {"by": principal.holder, "reason": values["override_reason"]}}
            if values["override"]
            else {"agencies": consent, "recorded_by": principal.holder}
        ),
        "case": values["case"],
        "facts": {k: v for k, v in values["facts"].items() if v},
    }
    chosen = _offered(page, values["pathway"])
    problem = (
        words(page.locale)("intake_choose_pathway")
        if chosen is None
        else _consent_error(page, chosen, values)
    )
    if problem:
        return render(page.request, "intake.html", _intake_context(page, values, problem), 400)
    try:
        result = await run_in_threadpool(
            launch_referral, web, principal, background, intake, from_report=values["report"]
        )
    except BadInput as exc:
        context = _intake_context(page, values, _intake_error(page.locale, str(exc)))
        return render(page.request, "intake.html", context, 400)
    return _redirect(f"/referrals/{result.reference}?done=launched")


# The intake's fields as the engine names them in an error, and the form's label and hint for each.
INTAKE_FIELDS = {
    "person.name": "name",
    "person.sex": "sex",
    "person.birth_year": "birth_year",
    "person.nationality": "nationality",
    "person.languages": "languages",
    "person.phone": "phone",
    "person.home_district": "home_district",
    "person.address": "address",
    "facts.place": "fact_place",
}


def _intake_error(locale: str, message: str) -> str:
    """An error of the engine about one field, in the form's words (English stays as it is).

    The engine names the field ("person.birth_year: ..."), never what was typed; the page names
    the field by its label and says what it wants.
    """
    if locale == "en":
        return message
    path = message.split(":", 1)[0].strip()
    field = next(
        (f for p, f in INTAKE_FIELDS.items() if path == p or path.startswith(p + ".")), None
    )
    if field is None:
        return message
    t = words(locale)
    return t("intake_field_error").format(field=t(field), hint=t(f"hint_{field}"))


@pages.get("/referrals/{reference}")
def referral_page(
    page: PageDep,
    principal: PagePrincipal,
    reference: str,
    done: str | None = None,
    step: int | None = None,
):
    """The coordinator's timeline; an agency with a step in it goes to its step (404 otherwise)."""
    web = page.web
    try:
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            if principal.is_manager:
                data = timeline(db, referral, web.catalog, web.now(), page.locale)
                # Steps and their statuses only: no consent, audit trail or person's link.
                context = {key: data[key] for key in STEPS_ONLY}
                return render(page.request, "manager_timeline.html", {"r": context})
            if not principal.is_coordinator:
                held = db.exec(
                    select(Step.id).where(
                        Step.referral_id == referral.id,
                        Step.agency == principal.agency,
                        Step.ready_at.is_not(None),  # type: ignore[union-attr]
                    )
                ).all()
                ids = sorted(
                    i for i in held if principal.step_ids is None or i in principal.step_ids
                )
                if not ids:
                    return _redirect("/inbox")
                return _redirect(_step_url(referral.reference, ids[-1]))
            if referral.pathway_id == REPORT_PATHWAY:
                return _redirect(f"/reports/{referral.reference}")
            data = _timeline_of(page, principal, db, referral)
    except (Forbidden, NotFound) as exc:
        refuse(web, principal, "view-referral", exc, reference=reference)
        raise
    return _timeline_page(page, data, done=_word(done), step_id=step)


def _timeline_of(page: Page, principal: Principal, db, referral: Referral) -> dict:
    """The timeline with every note beside its step (opening the notes is audited)."""
    web = page.web
    assert referral.id is not None
    notes = read_notes(
        db,
        referral=referral,
        notes=notes_of(db, referral.id),
        sealer=web.sealer,
        actor=str(principal.actor),
        now=web.now(),
    )
    return timeline(db, referral, web.catalog, web.now(), page.locale, notes=notes)


def _timeline_page(
    page: Page,
    data: dict,
    *,
    done: str | None = None,
    step_id: int | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    return render(
        page.request,
        "timeline.html",
        {
            "r": data,
            "agencies": page.web.catalog.directory.agencies,
            "cancel_reasons": choices(CancelCode, page.locale),
            "confirmation": _confirmation(page, data, done, step_id),
            "error": error,
        },
        status,
    )


def _confirmation(page: Page, data: dict, done: str | None, step_id: int | None) -> str | None:
    """What a coordinator's action did, read from the referral as it is now (not from the
    address: the address only says which action to describe)."""
    if done is None:
        return None
    t = words(page.locale)
    step = next((s for s in data["steps"] if s["id"] == step_id), None)
    if done == "rerouted" and step is not None:
        return t("done_rerouted").format(agency=step["agency_name"], due=step["due_local"])
    if done == "decided" and step is not None and step["events"]:
        latest = step["events"][-1]["action"]
        if latest in (AuditAction.extension_approved, AuditAction.extension_refused):
            return t(f"done_{latest.replace('-', '_')}").format(due=step["due_local"])
    known = ("launched", "cancelled", "closed", "consent", "already")
    return t(f"done_{done}") if done in known else t("done_changed")


@pages.get("/referrals/{reference}/person")
def person_page(page: PageDep, principal: Coordinator, reference: str):
    """The person's facts for the coordinator; the view is audited."""
    web, actor = page.web, str(principal.actor)
    with web.transaction() as db:
        referral = authorize_referral(db, principal, reference)
        facts = disclose_all(db, referral=referral, sealer=web.sealer, actor=actor, now=web.now())
        assert referral.id is not None
        notes = read_notes(
            db,
            referral=referral,
            notes=notes_of(db, referral.id),
            sealer=web.sealer,
            actor=actor,
            now=web.now(),
        )
        pathway = stored_pathway(db, referral.pathway_id, referral.pathway_version)
        titles = {
            s.id: pathway.step(s.key).title.text(page.locale) for s in steps_of(db, referral.id)
        }
    readable_notes(notes, referral, web.catalog, titles, page.locale)
    context = {
        "reference": referral.reference,
        "facts": readable_facts(facts, page.locale),
        "notes": notes,
    }
    return render(page.request, "person.html", context)


def _coordinator_action(
    page: Page,
    principal: Principal,
    background: BackgroundTasks,
    *,
    reference: str,
    attempt: str,
    csrf: str,
    act,
    done: str,
    step_id: int | None = None,
) -> Response:
    """The page side of a coordinator action: CSRF, then the timeline with what happened."""
    web = page.web
    check_csrf(web, page.session, csrf, attempt, principal, page.source)
    try:
        result = coordinator_action(
            web, principal, background, attempt=attempt, reference=reference, act=act,
            step_id=step_id,
        )  # fmt: skip
    except (Forbidden, NotFound):
        raise
    except BadInput as exc:
        with web.transaction() as db:
            referral = authorize_referral(db, principal, reference)
            data = _timeline_of(page, principal, db, referral)
        return _timeline_page(page, data, error=str(exc), status=error_status(exc))
    done = done if result.changed else "already"
    if result.step_id is None:
        return _redirect(f"/referrals/{result.reference}?done={done}")
    step = result.step_id
    return _redirect(f"/referrals/{result.reference}?done={done}&step={step}#step-{step}")


@pages.post("/referrals/{reference}/steps/{step_id}/reroute")
def reroute(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    to: Field = "",
):
    """Hand a declined (or open) step to another agency."""
    return _coordinator_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="reroute", done="rerouted", csrf=csrf,
        act=partial(reroute_step, to_agency=to, catalog=page.web.catalog),
    )  # fmt: skip


@pages.post("/referrals/{reference}/steps/{step_id}/decide-extension")
def decide_more_time(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    decision: Field = "",
    until_date: Field = "",
    until_time: Field = "17:00",
):
    """Approve (optionally with another date) or refuse an agency's request for more time."""

    def act(*, session, step: Step, actor, now) -> Step:
        if decision not in ("approve", "refuse"):
            raise BadInput("choose approve or refuse")
        until = None
        if until_date.strip():
            tz = page.web.catalog.agency(step.agency).timezone
            until = local_moment(until_date, until_time, tz)
        return decide_extension(
            session=session, step=step, approve=decision == "approve", actor=actor, now=now,
            until=until,
        )  # fmt: skip

    return _coordinator_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="decide-extension", done="decided",
        csrf=csrf, act=act,
    )  # fmt: skip


@pages.post("/referrals/{reference}/steps/{step_id}/cancel")
def cancel_one(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    step_id: int,
    csrf: Field = "",
    reason: Field = "",
):
    """Cancel a step that is no longer needed."""
    return _coordinator_action(
        page, principal, background,
        reference=reference, step_id=step_id, attempt="cancel-step", done="cancelled", csrf=csrf,
        act=partial(cancel_step, reason=reason, catalog=page.web.catalog),
    )  # fmt: skip


@pages.post("/referrals/{reference}/cancel")
def cancel_all(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    csrf: Field = "",
    reason: Field = "",
):
    """Close a referral: every step not yet finished is cancelled."""
    return _coordinator_action(
        page, principal, background,
        reference=reference, attempt="cancel-referral", done="closed", csrf=csrf,
        act=partial(cancel_referral, reason=reason),
    )  # fmt: skip


@pages.post("/referrals/{reference}/consent")
def consent(
    page: PageDep,
    principal: PagePrincipal,
    background: BackgroundTasks,
    reference: str,
    csrf: Field = "",
    agency: Field = "",
):
    """Record the victim's consent to share with one more agency (before a re-route)."""
    return _coordinator_action(
        page, principal, background,
        reference=reference, attempt="add-consent", done="consent", csrf=csrf,
        act=partial(add_consent, agency=agency, catalog=page.web.catalog),
    )  # fmt: skip


@pages.get("/docs")
def api_reference(request: Request, web: WebDep):
    """The API reference, rendered from the OpenAPI schema on the server (works offline)."""
    context = {"api": request.app.openapi(), "base_url": web.settings.base_url}
    return render(request, "docs.html", context)
