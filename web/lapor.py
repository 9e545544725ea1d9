"""The public reporting page /lapor and the reporting webhook: no account, no cookie, no trace.

A reporter files a report and gets a receipt once; with the receipt they come back to read the
status and the coordinators' questions and to answer them. Nothing here sets a cookie, stores or
logs the client's address or user agent (web/access_log.py, web/limits.py), or writes the
report's words anywhere but their sealed field (models/public_report.py).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from itsdangerous import BadSignature

from flows.wake import after_commit
from models.errors import BadInput, NotFound, RujukanError
from models.keys import report_pass_serializer
from models.public_report import (
    PublicReport,
    ReportChannel,
    answer_question,
    file_report,
    find_by_receipt,
    messages_of,
    report_status,
    validate_report,
)
from models.vocabulary import (
    DEFAULT_LOCALE,
    LOCALES,
    AtRiskCode,
    ExploitationCode,
    Words,
    choices,
)
from web.deps import Source, WebDep
from web.guard import Unauthorized, refuse
from web.language import words

public = APIRouter(include_in_schema=False)
webhook = APIRouter(tags=["public reports"])

PASS_LIFETIME = timedelta(minutes=30)
STYLESHEET = Path(__file__).resolve().parent / "static" / "site.css"
SIGNATURE_HEADER = "X-Rujukan-Signature"
FORM_FIELDS = ("what", "place", "when", "people", "at_risk", "nationality", "exploitation")


def _locale(value: object) -> str:
    return value if isinstance(value, str) and value in LOCALES else DEFAULT_LOCALE


def _page(request: Request, web: WebDep, name: str, locale: str, context: dict, status: int = 200):
    """A public page: the reader's language from the address or the form, never a cookie."""
    page = {
        "request": request,
        "t": words(locale),
        "locale": locale,
        "other_locale": "en" if locale == "id" else "id",
        "hotlines": web.catalog.directory.hotlines,
        "quick_exit": web.settings.quick_exit_url,
        "education": [(key, [w.text(locale) for w in items]) for key, items in EDUCATION],
        **context,
    }
    return web.templates.TemplateResponse(request, name, page, status_code=status)


def _form_page(
    request: Request,
    web: WebDep,
    locale: str,
    values: dict | None = None,
    error: str | None = None,
    receipt_error: str | None = None,
    status: int = 200,
):
    return _page(
        request,
        web,
        "lapor.html",
        locale,
        {
            "values": values or {},
            "error": error,
            "receipt_error": receipt_error,
            "at_risk_choices": choices(AtRiskCode, locale),
            "exploitation_choices": choices(ExploitationCode, locale),
        },
        status,
    )


@public.get("/lapor/site.css")
def stylesheet():
    """The site's stylesheet under /lapor: a public page loads nothing from a logged path."""
    return FileResponse(STYLESHEET, media_type="text/css")


@public.get("/lapor")
def report_form(request: Request, web: WebDep, lang: str | None = None):
    """The reporting form, the receipt check and what to know about trafficking."""
    return _form_page(request, web, _locale(lang))


def _report_data(form) -> dict:
    """The form as the report's fields: empty fields left out, the number read if it is one."""
    data: dict[str, object] = {}
    for name in FORM_FIELDS:
        value = str(form.get(name) or "").strip()
        if value:
            data[name] = value
    if "people" in data:
        people = str(data["people"])
        data["people"] = int(people) if people.isdigit() and len(people) < 7 else -1
    data["danger_now"] = form.get("danger_now") == "yes"
    if str(form.get("contact_wanted") or "") == "yes" and str(form.get("contact") or "").strip():
        data["contact"] = str(form.get("contact")).strip()
    return data


@public.post("/lapor")
async def report_submit(request: Request, web: WebDep, background: BackgroundTasks):
    """File a report; the receipt is shown once, on this answer only (no redirect, no address)."""
    form = await request.form()
    locale = _locale(form.get("lang"))
    values = {k: str(v) for k, v in form.items() if isinstance(v, str)}
    try:
        report = validate_report(_report_data(form))
        with web.transaction() as session:
            row, referral, receipt = file_report(
                session,
                report=report,
                channel=ReportChannel.web,
                catalog=web.catalog,
                sealer=web.sealer,
                secret=web.secret,
                now=web.now(),
            )
            referral_id, danger = referral.id, row.danger_now
    except BadInput as exc:
        return _form_page(request, web, locale, values, error=_problem(str(exc)), status=400)
    background.add_task(after_commit, web.settings, [referral_id])
    return _page(request, web, "lapor-receipt.html", locale, {"receipt": receipt, "danger": danger})


def _problem(message: str) -> str:
    """Which field to fix, in the page's terms (the engine names fields, never what was typed)."""
    return "lapor_error_what" if "what" in message else "lapor_error"


def _status_page(
    request: Request,
    web: WebDep,
    locale: str,
    report: PublicReport,
    done: str | None = None,
    error: str | None = None,
    status: int = 200,
):
    now = web.now()
    zone = ZoneInfo(web.settings.timezone)
    with web.transaction() as session:
        state = report_status(session, report)
        thread = [
            {
                "from_reporter": m.from_reporter,
                "text": web.sealer.open(m.sealed)["text"],
                "at": m.created_at.astimezone(zone).strftime("%d-%m-%Y %H:%M"),
            }
            for m in messages_of(session, report)
        ]
    token = report_pass_serializer(web.secret).dumps({"r": report.id, "t": int(now.timestamp())})
    return _page(
        request,
        web,
        "lapor-status.html",
        locale,
        {
            "state": state.value,
            "filed": report.created_at.astimezone(zone).strftime("%d-%m-%Y"),
            "thread": thread,
            "waiting": bool(thread) and not thread[-1]["from_reporter"],
            "pass_token": token,
            "done": done,
            "error": error,
        },
        status,
    )


def _too_many(request: Request, web: WebDep, locale: str):
    return _form_page(request, web, locale, receipt_error="lapor_too_many", status=429)


@public.post("/lapor/status")
async def report_status_page(request: Request, web: WebDep, source: Source):
    """The status of the report a receipt opens (checks are limited per client and overall)."""
    form = await request.form()
    locale = _locale(form.get("lang"))
    if source is None or not web.throttle.check_receipt(source):
        return _too_many(request, web, locale)
    try:
        with web.transaction() as session:
            report = find_by_receipt(
                session, str(form.get("receipt") or ""), web.secret, web.previous_secrets
            )
    except NotFound as exc:
        refuse(web, None, "receipt", exc, source=source)
        return _form_page(request, web, locale, receipt_error="lapor_receipt_unknown", status=404)
    return _status_page(request, web, locale, report)


@public.get("/lapor/status")
def report_status_get(lang: str | None = None):
    """The status needs the receipt, which is never in an address: back to the form."""
    return RedirectResponse(f"/lapor?lang={_locale(lang)}", status_code=303)


def _report_of_pass(web: WebDep, token: str) -> PublicReport | None:
    """The report a pass opens, if the pass is genuine and younger than PASS_LIFETIME."""
    try:
        claim = report_pass_serializer(web.secret).loads(token)
        issued = int(claim["t"])
        report_id = int(claim["r"])
    except (BadSignature, KeyError, TypeError, ValueError):
        return None
    if web.now().timestamp() - issued > PASS_LIFETIME.total_seconds():
        return None
    with web.transaction() as session:
        return session.get(PublicReport, report_id)


@public.post("/lapor/answer")
async def report_answer(request: Request, web: WebDep, background: BackgroundTasks, source: Source):
    """The reporter answers the coordinators' question (the pass stands for the receipt)."""
    form = await request.form()
    locale = _locale(form.get("lang"))
    report = _report_of_pass(web, str(form.get("pass") or ""))
    if report is None:
        refuse(web, None, "report-answer", Unauthorized("pass expired or not valid"), source=source)
        return _form_page(request, web, locale, receipt_error="lapor_pass_expired", status=403)
    try:
        with web.transaction() as session:
            answer_question(
                session=session,
                report=report,
                answer=str(form.get("answer") or ""),
                now=web.now(),
                sealer=web.sealer,
            )
    except RujukanError:
        return _status_page(request, web, locale, report, error="lapor_answer_error", status=400)
    background.add_task(after_commit, web.settings, [report.referral_id])
    return _status_page(request, web, locale, report, done="lapor_answer_sent")


# --- the webhook --------------------------------------------------------------------------------


def signature(secret: str, body: bytes) -> str:
    """The header value a webhook caller sends: sha256= and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@webhook.post("/api/reports", status_code=201)
async def report_webhook(
    request: Request, web: WebDep, background: BackgroundTasks, source: Source
):
    """File a report for a hotline's or messaging bot's operator; answers the receipt.

    Sign the exact body: header `X-Rujukan-Signature: sha256=<hex HMAC-SHA256 of the body under
    RUJUKAN_REPORT_WEBHOOK_SECRET>`. The body is JSON with the fields of the public form: `what`
    (required), `place`, `when`, `people`, `at_risk`, `nationality`, `exploitation`,
    `danger_now`, `contact`.
    """
    secret = web.settings.report_webhook_secret
    if secret is None:
        return JSONResponse(
            {
                "error": "NotFound",
                "message": "the reporting webhook is off: set RUJUKAN_REPORT_WEBHOOK_SECRET",
            },
            404,
        )
    body = await request.body()
    sent = request.headers.get(SIGNATURE_HEADER, "")
    if not hmac.compare_digest(sent.encode(), signature(secret.get_secret_value(), body).encode()):
        exc = Unauthorized(f"{SIGNATURE_HEADER} is missing or wrong")
        refuse(web, None, "report-webhook", exc, via="api", source=source)
        return JSONResponse(
            {
                "error": "Unauthorized",
                "message": f"send {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256 of the body under "
                "the shared secret>",
            },
            401,
        )
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise BadInput("the body is not JSON: send the report's fields as a JSON object") from None
    report = validate_report(data)
    with web.transaction() as session:
        _, referral, receipt = file_report(
            session,
            report=report,
            channel=ReportChannel.webhook,
            catalog=web.catalog,
            sealer=web.sealer,
            secret=web.secret,
            now=web.now(),
        )
        reference, referral_id = referral.reference, referral.id
    background.add_task(after_commit, web.settings, [referral_id])
    return JSONResponse(
        {
            "reference": reference,
            "receipt": receipt,
            "follow_up": f"{web.settings.base_url.rstrip('/')}/lapor",
        },
        201,
    )


# What the action plan asks the public page to teach: one list of plain sentences per heading.
EDUCATION: list[tuple[str, list[Words]]] = [
    (
        "signs_trafficking",
        [
            Words(
                id="Dokumen (KTP, paspor) ditahan orang lain",
                en="Documents (ID card, passport) kept by someone else",
            ),
            Words(id="Tidak boleh pergi atau dikurung", en="Not allowed to leave, or locked in"),
            Words(
                id="Utang yang terus bertambah kepada perekrut atau majikan",
                en="A debt to the recruiter or employer that keeps growing",
            ),
            Words(
                id="Bekerja sangat lama tanpa upah yang dijanjikan",
                en="Very long hours without the promised pay",
            ),
            Words(
                id="Anak-anak dipekerjakan atau dibawa pergi tanpa orang tua",
                en="Children put to work or taken away without their parents",
            ),
        ],
    ),
    (
        "signs_offer",
        [
            Words(id="Gaji sangat tinggi untuk pekerjaan mudah", en="Very high pay for easy work"),
            Words(
                id="Berangkat cepat tanpa kontrak kerja tertulis",
                en="Leaving quickly without a written work contract",
            ),
            Words(
                id="Diminta membayar biaya keberangkatan, atau gaji dipotong untuk utang",
                en="Asked to pay for the departure, or pay held back for a debt",
            ),
            Words(
                id="Visa turis atau ziarah untuk bekerja", en="A tourist or pilgrim visa to work"
            ),
            Words(
                id="Perekrut tidak terdaftar di Dinas Tenaga Kerja atau BP3MI",
                en="A recruiter not registered with the manpower office or BP3MI",
            ),
        ],
    ),
    (
        "safe_migration",
        [
            Words(
                id="Daftar melalui Dinas Tenaga Kerja dan periksa perusahaannya di BP3MI",
                en="Register through the manpower office and check the company with BP3MI",
            ),
            Words(
                id="Tanda tangani kontrak kerja sebelum berangkat dan simpan salinannya",
                en="Sign the work contract before leaving and keep a copy",
            ),
            Words(
                id="Pegang sendiri paspor dan dokumen Anda",
                en="Keep your passport and documents yourself",
            ),
            Words(
                id="Simpan nomor KBRI/KJRI negara tujuan dan SAPA 129",
                en="Save the number of the Indonesian embassy or consulate, and SAPA 129",
            ),
        ],
    ),
]
