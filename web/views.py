"""What the pages and the JSON API show: steps, inboxes and timelines as plain dicts (no PII here,
except in the facts and notes that the disclosure functions return and audit)."""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlmodel import Session, select

from models.access import Principal
from models.actions import steps_of
from models.audit import AuditEntry
from models.catalog import Catalog, stored_pathway
from models.deadline import local_time_text
from models.errors import BadInput
from models.pathway import Pathway
from models.referral import Consent, Referral, ReferralStatus
from models.step import OPEN, Step, StepStatus
from models.vocabulary import (
    AuditAction,
    CancelCode,
    DeclineCode,
    ExtensionCode,
    OutcomeCode,
    label,
)
from web.language import TEXT, time_left_text


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def step_view(
    step: Step, referral: Referral, session: Session, catalog: Catalog, now: datetime, locale: str
) -> dict:
    """One step with its title, agency, due time (local and UTC), time left and labels."""
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    spec = pathway.step(step.key)
    agency = catalog.agency(step.agency)
    overdue = bool(step.is_open and step.due_at and step.due_at <= now)
    return {
        "id": step.id,
        "reference": referral.reference,
        "step": step.key,
        "instance": step.instance,
        "title": spec.title.text(locale),
        "titles": spec.title.model_dump(),
        "basis": spec.basis,
        "agency": step.agency,
        "agency_name": agency.name,
        "status": step.status.value,
        "status_label": label(StepStatus, step.status, locale),
        "open": step.is_open,
        "awaits_reroute": step.awaits_reroute,
        "due_at": _iso(step.due_at),
        "due_local": local_time_text(step.due_at, agency.timezone) if step.due_at else None,
        "time_left": time_left_text(step.due_at, now, locale) if step.is_open else "",
        "overdue": overdue,
        "escalated": step.escalated,
        "ready_at": _iso(step.ready_at),
        "accepted_at": _iso(step.accepted_at),
        "closed_at": _iso(step.closed_at),
        "outcome": step.outcome,
        "outcome_label": label(OutcomeCode, step.outcome, locale),
        "decline_reason": step.decline_reason,
        "decline_reason_label": label(DeclineCode, step.decline_reason, locale),
        "extension_requested_until": _iso(step.extension_until),
        "extension_local": (
            local_time_text(step.extension_until, agency.timezone) if step.extension_until else None
        ),
        "extension_reason": step.extension_reason,
        "extension_reason_label": label(ExtensionCode, step.extension_reason, locale),
        "timezone": agency.timezone,
        "sees": list(spec.sees),
    }


def inbox(
    session: Session, principal: Principal, catalog: Catalog, now: datetime, locale: str
) -> list[dict]:
    """The principal's open steps: overdue first, then by due time (a coordinator sees all)."""
    query = select(Step).where(Step.status.in_([s.value for s in OPEN]))  # type: ignore[attr-defined]
    if not principal.is_coordinator:
        query = query.where(Step.agency == principal.agency)
    steps = [
        s for s in session.exec(query) if principal.step_ids is None or s.id in principal.step_ids
    ]
    referrals = {
        r.id: r
        for r in session.exec(
            select(Referral).where(Referral.id.in_({s.referral_id for s in steps}))
        )
    }  # type: ignore[union-attr]
    rows = [step_view(s, referrals[s.referral_id], session, catalog, now, locale) for s in steps]
    far = "9999"
    rows.sort(key=lambda r: (not r["overdue"], r["due_at"] or far, r["reference"]))
    return rows


def referral_list(
    session: Session, catalog: Catalog, now: datetime, locale: str, include_closed: bool = False
) -> list[dict]:
    """Referrals for the coordinator: those that need attention first, then the newest."""
    query = select(Referral).order_by(Referral.created_at.desc())  # type: ignore[attr-defined]
    if not include_closed:
        query = query.where(Referral.status == ReferralStatus.active)
    rows = []
    for referral in session.exec(query.limit(500)):
        assert referral.id is not None
        steps = steps_of(session, referral.id)
        pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
        open_steps = [s for s in steps if s.is_open]
        rows.append(
            {
                "reference": referral.reference,
                "pathway": referral.pathway_id,
                "pathway_title": pathway.title.text(locale),
                "urgency": referral.urgency.value,
                "status": referral.status.value,
                "status_label": label(ReferralStatus, referral.status, locale),
                "created_at": _iso(referral.created_at),
                "created_local": local_time_text(
                    referral.created_at, catalog.agency(referral.coordinator_agency).timezone
                ),
                "open_steps": len(open_steps),
                "done_steps": len([s for s in steps if s.status == StepStatus.completed]),
                "total_steps": len(steps),
                "overdue": sum(1 for s in open_steps if s.due_at and s.due_at <= now),
                "escalated": sum(1 for s in open_steps if s.escalated),
                "awaiting_reroute": sum(1 for s in steps if s.awaits_reroute),
                "extensions": sum(1 for s in open_steps if s.extension_until),
            }
        )
    # stable sort: within each group the newest stays first
    rows.sort(key=lambda r: r["overdue"] + r["awaiting_reroute"] + r["extensions"] == 0)
    return rows


def agency_name(catalog: Catalog, slug: str) -> str:
    """An agency's name; a slug the directory no longer knows is shown as it is."""
    return catalog.directory.get(slug).name if slug in catalog.directory else slug


def actor_text(actor: str, catalog: Catalog, locale: str) -> str:
    """Who acted, as a person reads it: 'Bu Ratna · Dinas Sosial', 'coordinator-1 · Koordinator'."""
    kind, _, rest = actor.partition(":")
    if kind == "agency":
        slug, _, name = rest.partition("/")
        return f"{name} · {agency_name(catalog, slug)}" if name else agency_name(catalog, slug)
    if kind == "coordinator":
        return f"{rest} · {TEXT['coordinator'].text(locale)}"
    if kind == "system":
        return TEXT["system_actor"].text(locale)
    return actor  # an operator's own name


# The code kind of an audit entry's `reason`, by its action.
REASON_KIND = {
    AuditAction.declined: DeclineCode,
    AuditAction.extension_requested: ExtensionCode,
    AuditAction.step_cancelled: CancelCode,
    AuditAction.referral_cancelled: CancelCode,
}


def audit_text(
    action: str,
    detail: dict,
    *,
    catalog: Catalog,
    locale: str,
    tz: str,
    pathway: Pathway | None = None,
) -> str:
    """The detail of an audit entry in the page's words: titles, names, labels, local times.

    Ids, fingerprints and keys a person has no use for are left out; the stored entry is
    unchanged.
    """
    t = lambda key: TEXT[key].text(locale)  # noqa: E731
    parts = []
    for key, value in detail.items():
        if key == "step" and isinstance(value, str) and pathway is not None:
            try:
                parts.append(pathway.step(value).title.text(locale))
            except BadInput:
                parts.append(value)
        elif key in ("agency", "from", "to") and isinstance(value, str):
            name = agency_name(catalog, value)
            parts.append(f"{t('audit_' + key)} {name}" if key != "agency" else name)
        elif key in ("due_at", "until") and isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = local_time_text(datetime.fromisoformat(value), tz)
            parts.append(f"{t('audit_' + key)} {value}")
        elif key == "reason" and action in REASON_KIND:
            parts.append(label(REASON_KIND[AuditAction(action)], value, locale))
        elif key == "outcome":
            parts.append(label(OutcomeCode, value, locale))
        elif key == "urgency":
            parts.append(t(value) if value in ("regular", "emergency") else str(value))
        elif key == "consent_override":
            if value:
                parts.append(t("override"))
        elif key in ("attempt", "condition"):
            parts.append(str(value))
        # ids (new_step_id, grant, note, notes), versions and the reference are for machines
    return " · ".join(p for p in parts if p)


def _step_events(
    entries: list[AuditEntry], step_id: int | None, catalog: Catalog, locale: str, tz: str
) -> list[dict]:
    """What was said and done about one step: who, when, and in the page's words."""
    shown = []
    for entry in entries:
        if entry.step_id != step_id or entry.action not in STEP_EVENTS:
            continue
        detail = {k: v for k, v in entry.detail.items() if k in ("reason", "outcome", "until")}
        shown.append(
            {
                "at_local": local_time_text(entry.at, tz),
                "who": actor_text(entry.actor, catalog, locale),
                "action": entry.action,
                "action_label": label(AuditAction, entry.action, locale),
                "detail": audit_text(entry.action, detail, catalog=catalog, locale=locale, tz=tz),
            }
        )
    return shown


def _reroute_options(catalog: Catalog, agency: str, consented: set[str]) -> dict[str, list]:
    """Where a step could go: the agencies that can stand in for its own first, then the rest.

    Each is (slug, name, consent recorded): a re-route needs the victim's consent first.
    """
    if agency not in catalog.directory:
        suggested = []
    else:
        suggested = catalog.directory.stand_ins(agency)
    first = {a.slug for a in suggested}
    rest = [a for a in catalog.directory.agencies if a.slug not in first and a.slug != agency]
    return {
        "suggested": [(a.slug, a.name, a.slug in consented) for a in suggested],
        "others": [(a.slug, a.name, a.slug in consented) for a in rest],
    }


# The entries shown under a step on the timeline: what agencies and the coordinator decided.
STEP_EVENTS = {
    AuditAction.accepted,
    AuditAction.declined,
    AuditAction.completed,
    AuditAction.extension_requested,
    AuditAction.extension_approved,
    AuditAction.extension_refused,
    AuditAction.step_cancelled,
    AuditAction.escalated,
}


def timeline(
    session: Session,
    referral: Referral,
    catalog: Catalog,
    now: datetime,
    locale: str,
    notes: list[dict] | None = None,
) -> dict:
    """A referral with its steps, consent and audit trail (codes and ids only; no PII).

    `notes`, when given, are notes already opened (and their view audited) by the caller; each
    is shown beside its step.
    """
    assert referral.id is not None
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.referral_id == referral.id).order_by(AuditEntry.seq)
    ).all()
    consents = session.exec(select(Consent).where(Consent.referral_id == referral.id)).all()
    tz = catalog.agency(referral.coordinator_agency).timezone
    consented = {c.agency for c in consents if c.agency} | (
        {a.slug for a in catalog.directory.agencies} if any(c.override for c in consents) else set()
    )
    steps = steps_of(session, referral.id)
    # A step's instances stand together, in the order the pathway first reached them: a re-routed
    # instance right after the one it replaces.
    first_seen: dict[str, int] = {}
    for step in steps:
        first_seen.setdefault(step.key, len(first_seen))
    steps.sort(key=lambda s: (first_seen[s.key], s.instance))
    rerouted = {
        e.detail.get("new_step_id"): e.detail.get("from")
        for e in audit
        if e.action == AuditAction.rerouted
    }
    views = []
    for step in steps:
        view = step_view(step, referral, session, catalog, now, locale)
        source = rerouted.get(step.id)
        view["replaces"] = agency_name(catalog, source) if source else None
        view["events"] = _step_events(audit, step.id, catalog, locale, tz)
        view["reroute_to"] = _reroute_options(catalog, step.agency, consented)
        view["notes"] = [
            {
                **n,
                "who": actor_text(str(n["author"]), catalog, locale),
                "at_local": local_time_text(n["created_at"], tz),  # type: ignore[arg-type]
            }
            for n in (notes or [])
            if n["step_id"] == step.id
        ]
        views.append(view)
    return {
        "reference": referral.reference,
        "pathway": referral.pathway_id,
        "pathway_version": referral.pathway_version,
        "pathway_title": pathway.title.text(locale),
        "urgency": referral.urgency.value,
        "status": referral.status.value,
        "status_label": label(ReferralStatus, referral.status, locale),
        "coordinator": referral.coordinator,
        "coordinator_agency": referral.coordinator_agency,
        "created_at": _iso(referral.created_at),
        "created_local": local_time_text(referral.created_at, tz),
        "closed_at": _iso(referral.closed_at),
        "consent": {
            "agencies": sorted(c.agency for c in consents if c.agency),
            "names": sorted(agency_name(catalog, c.agency) for c in consents if c.agency),
            "override": any(c.override for c in consents),
            "override_by": next((c.recorded_by for c in consents if c.override), None),
        },
        "steps": views,
        "audit": [
            {
                "seq": a.seq,
                "at": _iso(a.at),
                "at_local": local_time_text(a.at, tz),
                "actor": a.actor,
                "who": actor_text(a.actor, catalog, locale),
                "action": a.action,
                "action_label": label(AuditAction, a.action, locale),
                "step_id": a.step_id,
                "detail": a.detail,
                "text": audit_text(
                    a.action, a.detail, catalog=catalog, locale=locale, tz=tz, pathway=pathway
                ),
            }
            for a in audit
        ],
    }
