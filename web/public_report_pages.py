"""The coordinators' pages of public reports: the list, one report, and its triage actions.

Every action goes through `web/action.py` `coordinator_action`, like the referral actions; the
report's words are opened only on its page, and each opening is audited (`report-viewed`).
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Form
from fastapi.responses import RedirectResponse, Response
from sqlmodel import select

from models.access import Principal, authorize_referral
from models.deadline import local_time_text
from models.errors import BadInput, Forbidden, NotFound
from models.public_report import (
    TRIAGE,
    TRIAGE_DANGER,
    PublicReport,
    acknowledge_report,
    ask_reporter,
    close_report,
    forward_report,
    messages_of,
    open_report,
    report_of,
    report_status,
    report_steps,
)
from models.referral import Referral
from models.vocabulary import AtRiskCode, ExploitationCode, ReportCloseCode, choices, label
from web.action import coordinator_action
from web.deps import Coordinator, Page, PageDep
from web.guard import check_csrf, refuse
from web.render import error_status, render
from web.views import step_view

public_report_pages = APIRouter(include_in_schema=False)
Field = Annotated[str, Form()]


@public_report_pages.get("/coordinator/reports")
def reports_page(page: PageDep, _: Coordinator, all: int = 0):
    """Public reports, newest first: open ones only unless `all`."""
    web, locale = page.web, page.locale
    tz = web.catalog.agency(web.catalog.coordinator_agency).timezone
    query = select(PublicReport).order_by(PublicReport.id.desc())  # type: ignore[union-attr]
    if not all:
        query = query.where(PublicReport.closed_at.is_(None))  # type: ignore[union-attr]
    rows = []
    with web.transaction() as db:
        for report in db.exec(query.limit(500)):
            referral = db.get(Referral, report.referral_id)
            assert referral is not None
            steps = [step_view(s, referral, db, web.catalog, web.now(), locale) for s in
                     report_steps(db, report) if s.is_open]  # fmt: skip
            rows.append(
                {
                    "reference": referral.reference,
                    "danger": report.danger_now,
                    "created_local": local_time_text(report.created_at, tz),
                    "state": report_status(db, report).value,
                    "at_risk": label(AtRiskCode, report.at_risk, locale),
                    "exploitation": label(ExploitationCode, report.exploitation, locale),
                    "open_steps": steps,
                }
            )
    return render(page.request, "reports.html", {"rows": rows, "show_all": bool(all)})


def _report_context(page: Page, principal: Principal, reference: str) -> dict:
    web, locale = page.web, page.locale
    now = web.now()
    tz = web.catalog.agency(web.catalog.coordinator_agency).timezone
    with web.transaction() as db:
        referral = authorize_referral(db, principal, reference)
        report = report_of(db, referral)
        words = open_report(
            db, report=report, sealer=web.sealer, actor=str(principal.actor), now=now
        )
        thread = [
            {
                "from_reporter": m.from_reporter,
                "text": web.sealer.open(m.sealed)["text"],
                "at": local_time_text(m.created_at, tz),
            }
            for m in messages_of(db, report)
        ]
        steps = [
            step_view(s, referral, db, web.catalog, now, locale) for s in report_steps(db, report)
        ]
        launched = (
            db.get(Referral, report.launched_referral_id) if report.launched_referral_id else None
        )
        return {
            "reference": referral.reference,
            "open": report.closed_at is None,
            "danger": report.danger_now,
            "channel": report.channel.value,
            "created_local": local_time_text(report.created_at, tz),
            "at_risk": label(AtRiskCode, report.at_risk, locale),
            "people": report.people,
            "exploitation": label(ExploitationCode, report.exploitation, locale),
            "close_reason": label(ReportCloseCode, report.close_reason, locale),
            "launched": launched.reference if launched else None,
            "words": words,
            "thread": thread,
            "steps": steps,
            "triage_open": any(s["open"] and s["step"] in (TRIAGE, TRIAGE_DANGER) for s in steps),
            "agencies": web.catalog.directory.agencies,
            "close_reasons": choices(ReportCloseCode, locale),
        }


@public_report_pages.get("/reports/{reference}")
def report_page(
    page: PageDep,
    principal: Coordinator,
    reference: str,
    done: str | None = None,
):
    """One report: its codes, the reporter's words (audited), the questions, the triage."""
    try:
        context = _report_context(page, principal, reference)
    except (Forbidden, NotFound) as exc:
        refuse(page.web, principal, "view-report", exc, reference=reference)
        raise
    shown = done if done in ("changed", "already") else None
    return render(page.request, "public_report.html", {**context, "done": shown, "error": None})


def _report_action(
    page: Page,
    principal: Principal,
    background: BackgroundTasks,
    *,
    reference: str,
    attempt: str,
    csrf: str,
    act,
) -> Response:
    """CSRF, the one path of a coordinator action, then the report page with what happened."""
    web = page.web
    check_csrf(web, page.session, csrf, attempt, principal, page.source)
    try:
        result = coordinator_action(
            web, principal, background, attempt=attempt, reference=reference, act=act
        )
    except BadInput as exc:
        context = _report_context(page, principal, reference)
        context.update(done=None, error=str(exc))
        return render(page.request, "public_report.html", context, error_status(exc))
    done = "changed" if result.changed else "already"
    return RedirectResponse(f"/reports/{result.reference}?done={done}", status_code=303)


@public_report_pages.post("/reports/{reference}/acknowledge")
def acknowledge(
    page: PageDep,
    principal: Coordinator,
    background: BackgroundTasks,
    reference: str,
    csrf: Field = "",
):
    """The coordinator has read the report: the triage clock stops."""
    return _report_action(
        page, principal, background, reference=reference, attempt="report-acknowledge",
        csrf=csrf, act=acknowledge_report,
    )  # fmt: skip


@public_report_pages.post("/reports/{reference}/ask")
def ask(
    page: PageDep,
    principal: Coordinator,
    background: BackgroundTasks,
    reference: str,
    question: Field = "",
    csrf: Field = "",
):
    """Ask the reporter a question; they read it with their receipt."""
    act = partial(ask_reporter, question=question, sealer=page.web.sealer)
    return _report_action(
        page, principal, background, reference=reference, attempt="report-ask", csrf=csrf, act=act
    )


@public_report_pages.post("/reports/{reference}/forward")
def forward(
    page: PageDep,
    principal: Coordinator,
    background: BackgroundTasks,
    reference: str,
    agency: Field = "",
    csrf: Field = "",
):
    """Forward the report to an agency to verify, as a step with its own deadline."""
    act = partial(forward_report, agency=agency, catalog=page.web.catalog)
    return _report_action(
        page, principal, background, reference=reference, attempt="report-forward", csrf=csrf,
        act=act,
    )  # fmt: skip


@public_report_pages.post("/reports/{reference}/close")
def close(
    page: PageDep,
    principal: Coordinator,
    background: BackgroundTasks,
    reference: str,
    reason: Field = "",
    csrf: Field = "",
):
    """Close the report with a coded reason."""
    act = partial(close_report, reason=reason)
    return _report_action(
        page, principal, background, reference=reference, attempt="report-close", csrf=csrf,
        act=act,
    )  # fmt: skip
