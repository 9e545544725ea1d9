"""Public reports: filed without an account, followed up with a receipt, triaged under a clock.

A report is a referral of the `laporan` pathway (kind "report") with a `public_report` row beside
it. Filing makes its triage step ready for the coordinator agency, so the step's deadline runs
through the engine's own sweep, reminders, overdue notices, escalation, outbox and audit. What
the reporter wrote, and how to reach them, is sealed like the person's record; the rest are codes.
The receipt is shown once and stored only as a slow hash (scrypt).
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError
from sqlalchemy import Column, Text
from sqlmodel import Field, Session, SQLModel, col, select

from models.actions import (
    Actor,
    _claim,
    _close,
    _code,
    _make_ready,
    _move,
    _require_aware,
    _unused_references,
    advance,
    launch,
    steps_of,
)
from models.audit import record
from models.catalog import Catalog, register_pathways, stored_pathway
from models.database import EnumText, UTCDateTime
from models.errors import AlreadyDone, BadInput, IllegalTransition, NotFound, describe
from models.intake import Intake, _plain_text
from models.keys import receipt_salt
from models.outbox import MessageEvent, dedup_key, enqueue
from models.pathway import Pathway
from models.referral import Referral, ReferralStatus, Urgency
from models.seal import Sealer
from models.step import OPEN, Step, StepStatus
from models.vocabulary import (
    AtRiskCode,
    AuditAction,
    CaseSourceCode,
    ExploitationCode,
    ReportCloseCode,
)

REPORT_PATHWAY = "laporan"
TRIAGE, TRIAGE_DANGER, VERIFY = "telaah", "telaah-darurat", "verifikasi"
PUBLIC = Actor("public", "reporter")
RECEIPT_DIGITS = 20  # about 66 bits: hopeless to guess at a few tries a minute
# scrypt at n=2**14, r=8: about 16 MiB and some 50 ms a check, for the filer and a guesser alike.
SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
MAX_TEXT = 4000


class ReportChannel(StrEnum):
    """How a report came in."""

    web = "web"  # the public page /lapor
    webhook = "webhook"  # a hotline's or messaging bot's operator


def _long_text(value: str) -> str:
    """Line breaks and tabs are fine; other control and bidi characters hide text."""
    value = value.replace("\r\n", "\n")
    _plain_text(value.replace("\n", " ").replace("\t", " "))
    return value


LongText = Annotated[
    str, pydantic.Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_long_text)
]
ShortText = Annotated[
    str, pydantic.Field(min_length=1, max_length=200), AfterValidator(_plain_text)
]


class ReportIn(BaseModel):
    """What a reporter tells: all optional but what happened; nothing asks for their name."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True, str_strip_whitespace=True)

    what: LongText = pydantic.Field(description="What happened, in the reporter's words.")
    place: ShortText | None = pydantic.Field(
        default=None, description="District, village or place."
    )
    when: ShortText | None = pydantic.Field(default=None, description="When it happened, in words.")
    people: int | None = pydantic.Field(
        default=None, ge=1, le=10000, description="How many at risk."
    )
    at_risk: AtRiskCode = AtRiskCode.unknown
    nationality: ShortText | None = pydantic.Field(default=None, description="If known.")
    exploitation: ExploitationCode | None = None
    danger_now: bool = False
    contact: ShortText | None = pydantic.Field(
        default=None, description="An optional way to be contacted back (sealed)."
    )


def validate_report(data: object) -> ReportIn:
    """A report from a form or a webhook body, or BadInput naming fields only."""
    try:
        return ReportIn.model_validate(data)
    except ValidationError as exc:
        raise BadInput(describe(exc, ReportIn, subject="report")) from None


class PublicReport(SQLModel, table=True):
    """One public report: codes and times in the clear, the reporter's words sealed."""

    __tablename__ = "public_report"

    id: int | None = Field(default=None, primary_key=True)
    referral_id: int = Field(foreign_key="referral.id", unique=True)
    receipt_hash: str = Field(max_length=64, unique=True, description="scrypt of the receipt")
    channel: ReportChannel = Field(sa_column=Column(EnumText(ReportChannel, 10), nullable=False))
    danger_now: bool = False
    at_risk: AtRiskCode = Field(sa_column=Column(EnumText(AtRiskCode, 24), nullable=False))
    people: int | None = None
    exploitation: ExploitationCode | None = Field(
        default=None, sa_column=Column(EnumText(ExploitationCode, 24))
    )
    sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    closed_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime()))
    close_reason: ReportCloseCode | None = Field(
        default=None, sa_column=Column(EnumText(ReportCloseCode, 24))
    )
    launched_referral_id: int | None = Field(
        default=None, foreign_key="referral.id", description="the referral launched from it"
    )


class ReportMessage(SQLModel, table=True):
    """A question of the coordinators or an answer of the reporter; its text is sealed."""

    __tablename__ = "report_message"

    id: int | None = Field(default=None, primary_key=True)
    report_id: int = Field(foreign_key="public_report.id", index=True)
    from_reporter: bool
    sealed: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


# --- receipts -----------------------------------------------------------------------------------


def new_receipt() -> str:
    """A long random number in groups of four, shown to the reporter once."""
    digits = "".join(secrets.choice("0123456789") for _ in range(RECEIPT_DIGITS))
    return " ".join(digits[i : i + 4] for i in range(0, RECEIPT_DIGITS, 4))


def receipt_hash(receipt: str, secret: str) -> str | None:
    """The stored form of a receipt (scrypt, keyed by the secret), or None if it is malformed."""
    digits = "".join(c for c in receipt if c.isdigit())
    if len(digits) != RECEIPT_DIGITS or len(receipt) > 80:
        return None
    return hashlib.scrypt(digits.encode(), salt=receipt_salt(secret), **SCRYPT).hex()


def find_by_receipt(
    session: Session, receipt: str, secret: str, previous: Sequence[str] = ()
) -> PublicReport:
    """The report this receipt opens, or NotFound (the same answer for malformed and unknown).

    A receipt given before a key rotation is hashed with the secret of its day: the previous
    secrets (RUJUKAN_PREVIOUS_SECRET_KEYS) are tried after the current one, so receipts keep
    working as long as those keys are kept.
    """
    digests = [d for d in (receipt_hash(receipt, key) for key in (secret, *previous)) if d]
    report = None
    if digests:
        report = session.exec(
            select(PublicReport).where(col(PublicReport.receipt_hash).in_(digests))
        ).first()
    if report is None:
        raise NotFound("this receipt number opens no report: check the digits and try again")
    return report


# --- filing -------------------------------------------------------------------------------------


def report_pathway(catalog: Catalog) -> Pathway:
    """The pathway that carries public reports."""
    pathway = catalog.pathway(REPORT_PATHWAY)
    if pathway.kind != "report":
        raise BadInput(f"pathway '{REPORT_PATHWAY}' must have `kind: report`")
    return pathway


def file_report(
    session: Session,
    *,
    report: ReportIn,
    channel: ReportChannel,
    catalog: Catalog,
    sealer: Sealer,
    secret: str,
    now: datetime,
) -> tuple[PublicReport, Referral, str]:
    """Record a report and make its triage step ready; returns the report, its referral, receipt.

    The coordinator agency hears at once (reference and deadline); when someone is in danger
    now the clock is the short one and the task force hears too.
    """
    _require_aware(now, "now")
    pathway = report_pathway(catalog)
    register_pathways(session, catalog, now)
    coordinator_agency = catalog.coordinator_agency
    catalog.agency(coordinator_agency)
    referral = Referral(
        reference=_unused_references(session, 1)[0],
        pathway_id=pathway.id,
        pathway_version=pathway.version,
        urgency=Urgency.emergency if report.danger_now else Urgency.regular,
        coordinator=str(PUBLIC),
        coordinator_agency=coordinator_agency,
        options={},
        created_at=now,
    )
    session.add(referral)
    session.flush()
    assert referral.id is not None
    receipt = new_receipt()
    digest = receipt_hash(receipt, secret)
    assert digest is not None
    words = report.model_dump(include={"what", "place", "when", "nationality", "contact"})
    row = PublicReport(
        referral_id=referral.id,
        receipt_hash=digest,
        channel=channel,
        danger_now=report.danger_now,
        at_risk=report.at_risk,
        people=report.people,
        exploitation=report.exploitation,
        sealed=sealer.seal(words),
        created_at=now,
    )
    session.add(row)
    key = TRIAGE_DANGER if report.danger_now else TRIAGE
    triage = Step(referral_id=referral.id, key=key, agency=coordinator_agency)
    session.add(triage)
    session.flush()
    record(
        session,
        actor=str(PUBLIC),
        action=AuditAction.report_filed,
        now=now,
        referral_id=referral.id,
        detail={
            "reference": referral.reference,
            "channel": channel.value,
            "danger_now": report.danger_now,
        },
    )
    advance(session, referral=referral, catalog=catalog, now=now)
    if report.danger_now:
        spec = pathway.step(key)
        target = catalog.escalation_target(spec, coordinator_agency)
        enqueue(
            session,
            event=MessageEvent.report_danger,
            recipient=target,
            referral_id=referral.id,
            step_id=triage.id,
            due_at=triage.due_at,
            now=now,
            key=dedup_key(referral.id, "report-danger", target),
        )
    return row, referral, receipt


# --- reading ------------------------------------------------------------------------------------


def report_of(session: Session, referral: Referral) -> PublicReport:
    """The public report a referral of the `laporan` pathway carries, or NotFound."""
    report = session.exec(
        select(PublicReport).where(PublicReport.referral_id == referral.id)
    ).first()
    if report is None:
        raise NotFound(f"{referral.reference} is not a public report: see `rujukan reports list`")
    return report


def messages_of(session: Session, report: PublicReport) -> list[ReportMessage]:
    """The questions and answers of a report, oldest first."""
    return list(
        session.exec(
            select(ReportMessage)
            .where(ReportMessage.report_id == report.id)
            .order_by(ReportMessage.id)  # type: ignore[arg-type]
        )
    )


def open_report(
    session: Session,
    *,
    report: PublicReport,
    sealer: Sealer,
    actor: str,
    now: datetime,
    with_contact: bool = True,
) -> dict:
    """The reporter's words (and contact, for coordinators); every opening is audited."""
    words = sealer.open(report.sealed)
    if not with_contact:
        words.pop("contact", None)
    record(
        session,
        actor=actor,
        action=AuditAction.report_viewed,
        now=now,
        referral_id=report.referral_id,
        detail={"contact": with_contact and bool(words.get("contact"))},
    )
    return words


class ReportStatus(StrEnum):
    """Where a report stands, as the reporter reads it."""

    received = "received"  # nobody has looked at it yet
    question = "question"  # the coordinators asked something not answered yet
    in_progress = "in-progress"  # acknowledged, or with an agency to verify
    referred = "referred"  # a referral was launched: a person gets help
    closed = "closed"


def report_status(session: Session, report: PublicReport) -> ReportStatus:
    """The report's status in plain words' terms (no codes of the coordinators' decisions)."""
    if report.launched_referral_id is not None:
        return ReportStatus.referred
    if report.closed_at is not None:
        return ReportStatus.closed
    messages = messages_of(session, report)
    if messages and not messages[-1].from_reporter:
        return ReportStatus.question
    if _triage_step(session, report) is not None:
        return ReportStatus.received
    return ReportStatus.in_progress


def _triage_step(session: Session, report: PublicReport) -> Step | None:
    """The report's triage step while it is still open."""
    return next(
        (
            s
            for s in steps_of(session, report.referral_id)
            if s.key in (TRIAGE, TRIAGE_DANGER) and s.is_open
        ),
        None,
    )


# --- triage actions -----------------------------------------------------------------------------


def _acknowledge(
    session: Session, report: PublicReport, referral: Referral, actor: Actor, now: datetime
) -> None:
    """The first triage action completes the triage step: its clock stops, the time is kept."""
    step = _triage_step(session, report)
    if step is None:
        return
    if step.status == StepStatus.ready:  # through accepted, as TRANSITIONS has it
        _move(step, StepStatus.accepted)
        step.accepted_at = now
    _close(step, StepStatus.completed, now)
    step.outcome = "served"
    _claim(session, step)
    record(
        session,
        actor=str(actor),
        action=AuditAction.completed,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"step": step.key, "outcome": "served"},
    )


def _require_open_report(report: PublicReport, referral: Referral) -> None:
    if report.closed_at is not None or referral.status != ReferralStatus.active:
        raise IllegalTransition("the report is closed: nothing more can be done with it")


def acknowledge_report(
    *, session: Session, referral: Referral, actor: Actor, now: datetime
) -> PublicReport:
    """The coordinator has looked at the report: the triage clock stops."""
    report = report_of(session, referral)
    _require_open_report(report, referral)
    if _triage_step(session, report) is None:
        raise AlreadyDone("the report was already acknowledged; nothing changed")
    _acknowledge(session, report, referral, actor, now)
    return report


def ask_reporter(
    *,
    session: Session,
    referral: Referral,
    question: str,
    actor: Actor,
    now: datetime,
    sealer: Sealer,
) -> ReportMessage:
    """A coordinator's question, shown to the reporter who comes back with the receipt."""
    report = report_of(session, referral)
    _require_open_report(report, referral)
    text = clean_text(question, "question")
    _acknowledge(session, report, referral, actor, now)
    message = ReportMessage(
        report_id=report.id, from_reporter=False, sealed=sealer.seal({"text": text}), created_at=now
    )
    session.add(message)
    session.flush()
    record(
        session,
        actor=str(actor),
        action=AuditAction.report_asked,
        now=now,
        referral_id=referral.id,
        detail={"message_id": message.id},
    )
    return message


def answer_question(
    *, session: Session, report: PublicReport, answer: str, now: datetime, sealer: Sealer
) -> ReportMessage:
    """The reporter's answer; the coordinator agency hears that there is one (nothing of it)."""
    referral = session.get(Referral, report.referral_id)
    assert referral is not None
    _require_open_report(report, referral)
    messages = messages_of(session, report)
    if not messages or messages[-1].from_reporter:
        raise BadInput("there is no question waiting for an answer")
    text = clean_text(answer, "answer")
    message = ReportMessage(
        report_id=report.id, from_reporter=True, sealed=sealer.seal({"text": text}), created_at=now
    )
    session.add(message)
    session.flush()
    record(
        session,
        actor=str(PUBLIC),
        action=AuditAction.report_answered,
        now=now,
        referral_id=referral.id,
        detail={"message_id": message.id},
    )
    enqueue(
        session,
        event=MessageEvent.report_answered,
        recipient=referral.coordinator_agency,
        referral_id=referral.id,  # type: ignore[arg-type]
        step_id=None,
        due_at=None,
        now=now,
        key=dedup_key(referral.id, "report-answered", message.id),
    )
    return message


def clean_text(text: str | None, what: str) -> str:
    """A question or answer without surrounding blanks; BadInput if empty, too long or odd."""
    if text is None or not text.strip():
        raise BadInput(f"the {what} is empty: write it first")
    text = text.strip()
    if len(text) > MAX_TEXT:
        raise BadInput(f"the {what} is longer than {MAX_TEXT} characters")
    try:
        return _long_text(text)
    except ValueError:
        raise BadInput(f"the {what} contains control or invisible formatting characters") from None


def forward_report(
    *,
    session: Session,
    referral: Referral,
    agency: str,
    actor: Actor,
    now: datetime,
    catalog: Catalog,
) -> Step:
    """Hand the report to an agency to verify: a step of its own, with the pathway's deadline."""
    catalog.agency(agency)
    report = report_of(session, referral)
    _require_open_report(report, referral)
    _acknowledge(session, report, referral, actor, now)
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    steps = [s for s in steps_of(session, referral.id) if s.key == VERIFY]  # type: ignore[arg-type]
    if any(s.agency == agency and s.status in OPEN for s in steps):
        raise AlreadyDone(f"the report is already with {agency}; nothing changed")
    step = Step(
        referral_id=referral.id,  # type: ignore[arg-type]
        key=VERIFY,
        instance=len(steps) + 1,
        agency=agency,
    )
    session.add(step)
    session.flush()
    record(
        session,
        actor=str(actor),
        action=AuditAction.report_forwarded,
        now=now,
        referral_id=referral.id,
        step_id=step.id,
        detail={"to": agency},
    )
    _make_ready(
        session,
        step=step,
        spec=pathway.step(VERIFY),
        referral=referral,
        catalog=catalog,
        now=now,
        actor=actor,
    )
    return step


def close_report(
    *, session: Session, referral: Referral, reason: str, actor: Actor, now: datetime
) -> PublicReport:
    """Close a report with a coded reason; its open steps (triage, verification) are cancelled."""
    code = _code(ReportCloseCode, reason, "close reason")
    report = report_of(session, referral)
    if report.closed_at is not None:
        raise AlreadyDone("the report is already closed; nothing changed")
    _finish(session, report, referral, actor, now)
    report.close_reason = ReportCloseCode(code)
    record(
        session,
        actor=str(actor),
        action=AuditAction.report_closed,
        now=now,
        referral_id=referral.id,
        detail={"reason": code},
    )
    return report


def _finish(
    session: Session, report: PublicReport, referral: Referral, actor: Actor, now: datetime
) -> None:
    _acknowledge(session, report, referral, actor, now)
    for step in steps_of(session, referral.id):  # type: ignore[arg-type]
        if step.status in OPEN:
            _close(step, StepStatus.cancelled, now)
            _claim(session, step)
    report.closed_at = now
    referral.status, referral.closed_at = ReferralStatus.completed, now
    session.add_all([report, referral])


def launch_from_report(
    session: Session,
    *,
    referral: Referral,
    intake: Intake,
    catalog: Catalog,
    sealer: Sealer,
    now: datetime,
) -> Referral:
    """Launch a victim's referral from a report (consent recorded in the intake as always)."""
    report = report_of(session, referral)
    _require_open_report(report, referral)
    launched = launch(session, intake=intake, catalog=catalog, sealer=sealer, now=now)
    actor = Actor("coordinator", intake.coordinator)
    _finish(session, report, referral, actor, now)
    report.launched_referral_id = launched.id
    record(
        session,
        actor=str(actor),
        action=AuditAction.report_launched,
        now=now,
        referral_id=referral.id,
        detail={"referral": launched.reference},
    )
    return launched


def intake_prefill(report: PublicReport) -> dict:
    """What a report tells the intake form before the victim is met: urgency, a pathway, and the
    statistical facts it already gives (the form of exploitation; it came as a public report)."""
    return {
        "urgency": Urgency.emergency.value if report.danger_now else Urgency.regular.value,
        "pathway": "tppo-anak" if report.at_risk == AtRiskCode.children else "tppo-dewasa",
        "facts": {
            "exploitation": report.exploitation.value if report.exploitation else "",
            "source": CaseSourceCode.public_report.value,
            "recruitment": "",
            "place": "",
        },
    }


def report_steps(session: Session, report: PublicReport) -> list[Step]:
    """The report's steps (triage, verifications), for the coordinator's page."""
    return steps_of(session, report.referral_id)
