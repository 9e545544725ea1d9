"""How referrals and steps are shown on the command line (text and JSON)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlmodel import Session, select

from models.actions import steps_of
from models.audit import AuditEntry
from models.catalog import Catalog, stored_pathway
from models.clock import utcnow
from models.deadline import duration_text, local_time_text, zone_abbreviation
from models.referral import Referral
from models.step import Step


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def district_time(moment: datetime | str | None, tz: str, seconds: bool = False) -> str:
    """A moment in the district's zone, the zone named: '2026-12-07 09:00 WIB' ('-' for none)."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    return f"{moment.astimezone(ZoneInfo(tz)).strftime(shape)} {zone_abbreviation(tz)}"


def aligned(rows: list[list[str]], indent: str = "") -> list[str]:
    """Rows of cells as lines, each column as wide as its widest cell."""
    if not rows:
        return []
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        indent
        + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def steps_text(rows: list[dict], tz: str) -> str:
    """Steps as an aligned table: due in the district's zone, how late, whether escalated."""
    if not rows:
        return "no steps"
    header = ["REFERENCE", "STEP", "AGENCY", "STATUS", f"DUE ({zone_abbreviation(tz)})"]
    header += ["OVERDUE BY", "ESCALATED"]
    return "\n".join(aligned([header, *(_step_cells(r, tz, reference=True) for r in rows)]))


def _step_cells(row: dict, tz: str, reference: bool = False) -> list[str]:
    late = row.get("overdue_seconds")
    name = row["step"] if row["instance"] == 1 else f"{row['step']}#{row['instance']}"
    cells = [row["reference"]] if reference else []
    return [
        *cells,
        name,
        row["agency"],
        row["status"],
        district_time(row["due_at"], tz),
        duration_text(late) if late is not None else "-",
        "yes" if row["escalated"] else "no",
    ]


def step_row(step: Step, reference: str, now: datetime, catalog: Catalog) -> dict:
    """One step as the scripting contract describes it (times in UTC ISO 8601 with offset)."""
    tz = catalog.agency(step.agency).timezone
    overdue = bool(step.is_open and step.due_at and step.due_at <= now)
    assert not overdue or step.due_at is not None
    return {
        "reference": reference,
        "step": step.key,
        "instance": step.instance,
        "agency": step.agency,
        "status": step.status.value,
        "due_at": _iso(step.due_at),
        "due_local": local_time_text(step.due_at, tz) if step.due_at else None,
        "overdue": overdue,
        "overdue_seconds": int((now - step.due_at).total_seconds()) if overdue else None,
        "escalated": step.escalated,
        "ready_at": _iso(step.ready_at),
        "accepted_at": _iso(step.accepted_at),
        "closed_at": _iso(step.closed_at),
        "outcome": step.outcome,
        "decline_reason": step.decline_reason,
        "extension_requested_until": _iso(step.extension_until),
    }


def referral_timeline(
    session: Session, referral: Referral, catalog: Catalog, now: datetime | None = None
) -> dict:
    """A referral with its steps and audit trail; no personal data."""
    now = now or utcnow()
    pathway = stored_pathway(session, referral.pathway_id, referral.pathway_version)
    assert referral.id is not None
    audit = session.exec(
        select(AuditEntry).where(AuditEntry.referral_id == referral.id).order_by(AuditEntry.seq)
    ).all()
    return {
        "reference": referral.reference,
        "pathway": referral.pathway_id,
        "pathway_version": referral.pathway_version,
        "pathway_title": pathway.title.model_dump(),
        "urgency": referral.urgency.value,
        "status": referral.status.value,
        "created_at": _iso(referral.created_at),
        "steps": [
            {
                **step_row(s, referral.reference, now, catalog),
                "title": pathway.step(s.key).title.model_dump(),
                "basis": pathway.step(s.key).basis,
            }
            for s in steps_of(session, referral.id)
        ],
        "audit": [
            {
                "seq": a.seq,
                "at": _iso(a.at),
                "actor": a.actor,
                "action": a.action,
                "detail": a.detail,
            }
            for a in audit
        ],
    }


def timeline_text(data: dict, tz: str) -> str:
    """The timeline for people: every time in the district's zone `tz`, with the zone named."""
    zone = zone_abbreviation(tz)
    lines = [
        f"{data['reference']}  {data['pathway']} v{data['pathway_version']}  "
        f"{data['urgency']}  {data['status']}  created {district_time(data['created_at'], tz)}",
        "",
        "steps:",
        *aligned(
            [
                ["STEP", "AGENCY", "STATUS", f"DUE ({zone})", "OVERDUE BY", "ESCALATED"],
                *(_step_cells(s, tz) for s in data["steps"]),
            ],
            indent="  ",
        ),
        "",
        "audit:",
    ]
    audit = [["SEQ", f"AT ({zone})", "ACTOR", "ACTION", "DETAIL"]]
    for a in data["audit"]:
        detail = " ".join(f"{k}={_detail_value(v, tz)}" for k, v in a["detail"].items())
        audit.append([str(a["seq"]), district_time(a["at"], tz, seconds=True), a["actor"],
                      a["action"], detail])  # fmt: skip
    lines += aligned(audit, indent="  ")
    return "\n".join(lines)


def _detail_value(value: object, tz: str) -> str:
    """A detail of the audit trail; a moment (ISO 8601 with offset) in the district's zone."""
    if isinstance(value, str) and len(value) >= 19 and value[10:11] == "T":
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            return value
        if moment.tzinfo is not None:
            return district_time(moment, tz, seconds=True).replace(" ", "T", 1)
    return str(value)
