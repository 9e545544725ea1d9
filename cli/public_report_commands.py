"""`rujukan reports`: list public reports and triage them (ask, forward, launch, close)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import JsonFlag, context, emit
from models.codes import ReportCloseCode

if TYPE_CHECKING:
    from models.public_report import PublicReport


reports_app = typer.Typer(
    help="Public reports (from /lapor or the webhook): list them and triage them.",
    no_args_is_help=True,
)
Ref = Annotated[str, typer.Argument(help="The report's reference code, e.g. RJK-7QK2-M9.")]
ByOpt = Annotated[str, typer.Option(help="The coordinator who acts.")]


def _row(session, report: PublicReport) -> dict:
    from models.public_report import report_status, report_steps
    from models.referral import Referral

    referral = session.get(Referral, report.referral_id)
    assert referral is not None
    return {
        "reference": referral.reference,
        "created_at": report.created_at.isoformat(),
        "channel": report.channel.value,
        "danger_now": report.danger_now,
        "at_risk": report.at_risk.value,
        "people": report.people,
        "exploitation": report.exploitation.value if report.exploitation else None,
        "status": report_status(session, report).value,
        "close_reason": report.close_reason.value if report.close_reason else None,
        "launched": (
            session.get(Referral, report.launched_referral_id).reference
            if report.launched_referral_id
            else None
        ),
        "steps": [
            {
                "step": s.ref,
                "agency": s.agency,
                "status": s.status.value,
                "due_at": s.due_at.isoformat() if s.due_at else None,
                "overdue": s.overdue,
                "escalated": s.escalated,
            }
            for s in report_steps(session, report)
        ],
    }


def _list_text(rows: list[dict]) -> str:
    if not rows:
        return "no public reports"
    return "\n".join(
        f"{r['reference']}  {r['status']:<11} {'DANGER ' if r['danger_now'] else ''}"
        f"{r['created_at'][:16]}  "
        + ", ".join(f"{s['step']} {s['agency']} {s['status']}" for s in r["steps"])
        for r in rows
    )


@reports_app.command("list")
def reports_list(
    all_reports: Annotated[bool, typer.Option("--all", help="Closed reports too.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """List public reports (codes and times only), newest first.

    Example: rujukan reports list --json
    """
    from sqlmodel import select

    from models.public_report import PublicReport

    ctx = context()
    query = select(PublicReport).order_by(PublicReport.id.desc())  # type: ignore[union-attr]
    if not all_reports:
        query = query.where(PublicReport.closed_at.is_(None))  # type: ignore[union-attr]
    with ctx.transaction() as session:
        rows = [_row(session, r) for r in session.exec(query)]
    emit(rows, as_json, _list_text)


@reports_app.command("show")
def reports_show(reference: Ref, by: ByOpt, as_json: JsonFlag = False) -> None:
    """Show a report with what the reporter wrote and the questions (the opening is audited).

    Example: rujukan reports show RJK-7QK2-M9 --by coordinator-1
    """
    from models.actions import Actor, find_referral
    from models.clock import utcnow
    from models.public_report import messages_of, open_report, report_of

    ctx = context()
    actor = Actor("coordinator", by)
    with ctx.acting("report-show", actor, reference) as session:
        report = report_of(session, find_referral(session, reference))
        data = _row(session, report) | {
            "words": open_report(
                session, report=report, sealer=ctx.sealer, actor=str(actor), now=utcnow()
            ),
            "messages": [
                {
                    "from": "reporter" if m.from_reporter else "coordinator",
                    "at": m.created_at.isoformat(),
                    "text": ctx.sealer.open(m.sealed)["text"],
                }
                for m in messages_of(session, report)
            ],
        }

    def text(d: dict) -> str:
        words = d["words"]
        lines = [_list_text([d]), "", words.get("what", "")]
        for key in ("place", "when", "nationality", "contact"):
            if words.get(key):
                lines.append(f"{key}: {words[key]}")
        lines += [f"[{m['at'][:16]} {m['from']}] {m['text']}" for m in d["messages"]]
        return "\n".join(lines)

    emit(data, as_json, text)


@reports_app.command("ask")
def reports_ask(
    reference: Ref,
    question: Annotated[str, typer.Option(help="The question the reporter reads.")],
    by: ByOpt,
) -> None:
    """Ask the reporter a question; they read it at /lapor with their receipt.

    Example: rujukan reports ask RJK-7QK2-M9 --question "Where is the house?" --by coordinator-1
    """
    from flows.wake import after_commit
    from models.actions import Actor, find_referral
    from models.clock import utcnow
    from models.public_report import ask_reporter

    ctx, actor = context(), Actor("coordinator", by)
    with ctx.acting("report-ask", actor, reference) as session:
        referral = find_referral(session, reference)
        ask_reporter(
            session=session, referral=referral, question=question, actor=actor, now=utcnow(),
            sealer=ctx.sealer,
        )  # fmt: skip
    after_commit(ctx.settings, [referral.id])
    typer.echo(f"{referral.reference}: question sent")


@reports_app.command("forward")
def reports_forward(
    reference: Ref,
    to: Annotated[str, typer.Option(help="The agency that verifies the report.")],
    by: ByOpt,
) -> None:
    """Forward a report to an agency to verify, as a step with its own deadline.

    Example: rujukan reports forward RJK-7QK2-M9 --to polres-ppa --by coordinator-1
    """
    from flows.wake import after_commit
    from models.actions import Actor, find_referral
    from models.clock import utcnow
    from models.public_report import forward_report

    ctx, actor = context(), Actor("coordinator", by)
    with ctx.acting("report-forward", actor, reference) as session:
        referral = find_referral(session, reference)
        step = forward_report(
            session=session, referral=referral, agency=to, actor=actor, now=utcnow(),
            catalog=ctx.catalog,
        )  # fmt: skip
        due = step.due_at.isoformat() if step.due_at else "-"
    after_commit(ctx.settings, [referral.id])
    typer.echo(f"{referral.reference}: forwarded to {to}, due {due}")


@reports_app.command("launch")
def reports_launch(
    reference: Ref,
    intake: Annotated[Path, typer.Option(help="Intake JSON file of the victim's referral.")],
) -> None:
    """Launch a victim's referral from a report (the intake records consent as always).

    Example: rujukan reports launch RJK-7QK2-M9 --intake examples/intake.json
    """
    from flows.wake import after_commit
    from models.actions import Actor, find_referral
    from models.clock import utcnow
    from models.errors import BadInput
    from models.intake import read_intake_file
    from models.public_report import launch_from_report

    ctx = context()
    operator = Actor("coordinator", "")
    try:
        (parsed,) = read_intake_file(intake, "--intake")
    except BadInput as refused:
        ctx.record_refused("report-launch", operator, refused, reference)
        raise
    with ctx.acting("report-launch", Actor("coordinator", parsed.coordinator), reference) as s:
        report_referral = find_referral(s, reference)
        launched = launch_from_report(
            s, referral=report_referral, intake=parsed, catalog=ctx.catalog, sealer=ctx.sealer,
            now=utcnow(),
        )  # fmt: skip
    after_commit(ctx.settings, [launched.id, report_referral.id])
    typer.echo(f"{report_referral.reference}: referral {launched.reference} launched")


@reports_app.command("close")
def reports_close(
    reference: Ref,
    reason: Annotated[
        str, typer.Option(help=f"One of: {', '.join(c.value for c in ReportCloseCode)}.")
    ],
    by: ByOpt,
) -> None:
    """Close a report with a coded reason.

    Example: rujukan reports close RJK-7QK2-M9 --reason duplicate --by coordinator-1
    """
    from flows.wake import after_commit
    from models.actions import Actor, find_referral
    from models.clock import utcnow
    from models.public_report import close_report

    ctx, actor = context(), Actor("coordinator", by)
    with ctx.acting("report-close", actor, reference) as session:
        referral = find_referral(session, reference)
        close_report(session=session, referral=referral, reason=reason, actor=actor, now=utcnow())
    after_commit(ctx.settings, [referral.id])
    typer.echo(f"{referral.reference}: closed ({reason})")
