"""What the pages and the JSON API show: steps, inboxes and timelines as plain dicts (no PII here,
except in the facts and notes that the disclosure functions return and audit)."""

from __future__ import annotations

import contextlib
from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, col, select

from models.access import Principal
from models.actions import key_done, steps_of
from models.audit import AuditEntry
from models.catalog import Catalog, stored_pathway
from models.deadline import local_time_text
from models.errors import BadInput
from models.outbox import MessageEvent, OutboxMessage, OutboxStatus
from models.pathway import Pathway
from models.referral import Consent, Referral, ReferralStatus
from models.step import OPEN, Step, StepStatus
from models.vocabulary import (
    AuditAction,
    CancelCode,
    DeclineCode,
    ExtensionCode,
    OutcomeCode,
    Words,
    age_group_label,
    label,
    language_name,
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


def link_steps(
    session: Session, principal: Principal, catalog: Catalog, now: datetime, locale: str
) -> list[dict]:
    """The steps a step-link session opens, whatever their state now: open ones first."""
    if principal.step_ids is None:
        return []
    steps = session.exec(
        select(Step).where(
            Step.id.in_(principal.step_ids),  # type: ignore[union-attr]
            Step.agency == principal.agency,
        )
    ).all()
    rows = []
    for step in steps:
        referral = session.get(Referral, step.referral_id)
        assert referral is not None
        rows.append(step_view(step, referral, session, catalog, now, locale))
    rows.sort(key=lambda r: (not r["open"], not r["overdue"], r["due_at"] or "9999", r["id"]))
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
    entries: list[AuditEntry],
    step_id: int | None,
    referral: Referral,
    catalog: Catalog,
    locale: str,
    tz: str,
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
                "who": actor_label(entry.actor, catalog, referral.coordinator_agency, locale),
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
        view["events"] = _step_events(audit, step.id, referral, catalog, locale, tz)
        view["reroute_to"] = _reroute_options(catalog, step.agency, consented)
        view["notes"] = [
            {
                **n,
                "who": actor_label(str(n["author"]), catalog, referral.coordinator_agency, locale),
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
                "who": actor_label(a.actor, catalog, referral.coordinator_agency, locale),
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


# --- what an agency's action really did -----------------------------------------------------------

DELIVERY = {
    OutboxStatus.pending: "pending",
    OutboxStatus.sending: "pending",
    OutboxStatus.failed: "failed",
    OutboxStatus.dead: "failed",
    OutboxStatus.sent: "sent",
}


def _delivery(
    session: Session, referral_id: int, event: MessageEvent, step_id: int | None
) -> str | None:
    """The state of the newest message of `event` about a step ("sent", "pending", "failed")."""
    query = select(OutboxMessage).where(
        OutboxMessage.referral_id == referral_id,
        OutboxMessage.event == event,
        OutboxMessage.step_id == step_id,
    )
    row = session.exec(query.order_by(OutboxMessage.id.desc())).first()  # type: ignore[union-attr]
    return DELIVERY[row.status] if row is not None else None


def _seen_step(step: Step, pathway: Pathway, catalog: Catalog, viewer: str, locale: str) -> dict:
    """Another step as `viewer` may see it: its agency's name, and its title unless hidden."""
    spec = pathway.step(step.key)
    hidden = step.agency != viewer and catalog.hides_title(step.agency, spec.agency)
    return {
        "id": step.id,
        "agency": step.agency,
        "agency_name": catalog.agency(step.agency).name,
        "title": None if hidden else spec.title.text(locale),
        "awaits_reroute": step.awaits_reroute,
    }


def _waiting(
    steps: list[Step], step: Step, pathway: Pathway, catalog: Catalog, viewer: str, locale: str
) -> list[dict]:
    """The steps after `step` that still wait, each with the unfinished steps it waits on.

    A step skipped by its condition passes the wait on to the steps after it.
    """
    waits: list[dict] = []
    keys, seen = [step.key], {step.key}
    while keys:
        key = keys.pop(0)
        for spec in pathway.steps:
            if key not in spec.depends_on or spec.key in seen:
                continue
            seen.add(spec.key)
            instances = [s for s in steps if s.key == spec.key]
            if instances and all(s.status == StepStatus.skipped for s in instances):
                keys.append(spec.key)
                continue
            pending = [s for s in instances if s.status == StepStatus.pending]
            if not pending:
                continue
            blockers = [
                s
                for dep in spec.depends_on
                if not key_done(steps, dep)
                for s in steps
                if s.key == dep and not key_done([s], dep)
            ]
            waits.append(
                {
                    "step": _seen_step(pending[0], pathway, catalog, viewer, locale),
                    "on": [_seen_step(b, pathway, catalog, viewer, locale) for b in blockers],
                }
            )
    return waits


def confirmation(
    session: Session,
    *,
    referral: Referral,
    step: Step,
    catalog: Catalog,
    viewer: str,
    done: str | None,
    locale: str,
) -> dict | None:
    """What an agency's action did, read from the record (never from the address).

    `done` only says which action to report; nothing is reported that the step, the audit
    trail and the outbox do not show. None when the record does not bear it out.
    """
    assert referral.id is not None and step.id is not None
    coordinator = catalog.agency(referral.coordinator_agency).name
    if done == "accepted" and step.accepted_at is not None:
        return {"kind": "accepted"}
    if done == "declined" and step.status == StepStatus.declined:
        delivery = _delivery(session, referral.id, MessageEvent.declined, step.id)
        return {"kind": "declined", "coordinator": coordinator, "delivery": delivery}
    if done == "extension" and step.extension_until is not None:
        delivery = _delivery(session, referral.id, MessageEvent.extension_requested, step.id)
        return {"kind": "extension", "coordinator": coordinator, "delivery": delivery}
    if done != "completed" or step.status != StepStatus.completed:
        return None
    completed = session.exec(
        select(AuditEntry).where(
            AuditEntry.referral_id == referral.id,
            AuditEntry.step_id == step.id,
            AuditEntry.action == AuditAction.completed,
        )
    ).first()
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    steps = steps_of(session, referral.id)
    by_id = {s.id: s for s in steps}
    told: list[dict] = []
    referral_done = None
    if completed is not None:
        # What the same transaction did after the completion: the steps it made ready.
        after = session.exec(
            select(AuditEntry)
            .where(
                AuditEntry.referral_id == referral.id,
                AuditEntry.seq > completed.seq,
                AuditEntry.at == completed.at,
                AuditEntry.actor == completed.actor,
            )
            .order_by(AuditEntry.seq)  # type: ignore[arg-type]
        ).all()
        for entry in after:
            if entry.action == AuditAction.ready and entry.step_id in by_id:
                shown = _seen_step(by_id[entry.step_id], pathway, catalog, viewer, locale)
                shown["delivery"] = _delivery(
                    session, referral.id, MessageEvent.assigned, entry.step_id
                )
                told.append(shown)
            elif entry.action == AuditAction.referral_completed:
                referral_done = _delivery(
                    session, referral.id, MessageEvent.referral_completed, None
                )
    return {
        "kind": "completed",
        "told": told,
        "waits": _waiting(steps, step, pathway, catalog, viewer, locale),
        "referral_done": completed is not None and referral.status == ReferralStatus.completed,
        "referral_delivery": referral_done,
        "coordinator": coordinator,
    }


# --- people and facts as a reader reads them ------------------------------------------------------

SYSTEM_NAME = Words(id="Rujukan (sistem)", en="Rujukan (system)")
# A note is written with the attempt it came with (web/action.py's `attempt`).
NOTE_ACTIONS = {
    "accept": AuditAction.accepted,
    "decline": AuditAction.declined,
    "complete": AuditAction.completed,
    "request-extension": AuditAction.extension_requested,
}


def actor_label(actor: str, catalog: Catalog, coordinator_agency: str, locale: str) -> str:
    """Who acted, for people: 'Bu Ratna · Dinas Sosial' for 'agency:dinsos/Bu Ratna'.

    A coordinator is named with the referral's coordinating agency, the system as Rujukan.
    """
    kind, _, rest = actor.partition(":")
    if kind == "agency":
        slug, _, name = rest.partition("/")
        agency = catalog.agency(slug).name if slug in catalog.directory else slug
        return f"{name} · {agency}" if name else agency
    if kind == "coordinator":
        agency = catalog.agency(coordinator_agency).name
        return f"{rest} · {agency}" if rest else agency
    if kind == "system":
        return SYSTEM_NAME.text(locale)
    return actor


def readable_notes(
    notes: list[dict], referral: Referral, catalog: Catalog, titles: dict, locale: str
) -> list[dict]:
    """Notes with their author, action and step in words (`titles`: step id -> title)."""
    for note in notes:
        note["author_label"] = actor_label(
            str(note["author"]), catalog, referral.coordinator_agency, locale
        )
        action = NOTE_ACTIONS.get(str(note["action"]))
        note["action_label"] = label(AuditAction, action, locale) if action else note["action"]
        note["step_title"] = titles.get(note["step_id"], "")
    return notes


def readable_facts(facts: dict[str, object] | None, locale: str) -> dict[str, object] | None:
    """The person's facts with words for codes: language names, the age group in `locale`."""
    if not facts:
        return facts
    shown = dict(facts)
    languages = shown.get("languages")
    if isinstance(languages, list):
        shown["languages"] = [language_name(str(code), locale) for code in languages]
    if isinstance(shown.get("age_group"), str):
        shown["age_group"] = age_group_label(str(shown["age_group"]), locale)
    return shown


def late_steps(
    session: Session, catalog: Catalog, now: datetime, locale: str
) -> list[tuple[str, list[dict]]]:
    """Open steps past their deadline or escalated, grouped by agency, most late agency first.

    Step statuses, deadlines and reference codes only: a manager sees no personal data.
    """
    steps = session.exec(
        select(Step).where(
            col(Step.status).in_([s.value for s in OPEN]),
            or_(Step.due_at <= now, col(Step.escalated)),
        )
    ).all()
    referrals = {
        r.id: r
        for r in session.exec(
            select(Referral).where(col(Referral.id).in_({s.referral_id for s in steps}))
        )
    }
    groups: dict[str, list[dict]] = {}
    for step in steps:
        view = step_view(step, referrals[step.referral_id], session, catalog, now, locale)
        groups.setdefault(view["agency_name"], []).append(view)
    far = "9999"
    for rows in groups.values():
        rows.sort(key=lambda r: (r["due_at"] or far, r["reference"]))
    return sorted(groups.items(), key=lambda g: (-len(g[1]), g[0]))
