"""`rujukan`: launch referrals, act on steps, inspect pathways, agencies and overdue steps.

Every command imports the engine in its body, not here: `rujukan --help` and a command's own
`--help` load typer alone (cli/context.py says how; tests/core/test_cli_imports.py checks it).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.access_commands import access_app
from cli.context import JsonFlag, context, emit, run
from models.codes import CancelCode, DeclineCode, ExtensionCode, OutcomeCode, StepStatus
from models.private import restrict_umask

if TYPE_CHECKING:
    from models.intake import Intake

app = typer.Typer(
    help="Rujukan: interagency referral of trafficking victims. Every listing takes --json.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
agencies_app = typer.Typer(help="The agency directory.", no_args_is_help=True)
pathways_app = typer.Typer(
    help="Pathways: the steps, agencies and deadlines.", no_args_is_help=True
)
referral_app = typer.Typer(help="One referral: its timeline, or cancel it.", no_args_is_help=True)
step_app = typer.Typer(help="Act on one step of a referral.", no_args_is_help=True)
consent_app = typer.Typer(help="Record consent to share with an agency.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail.", no_args_is_help=True)
app.add_typer(agencies_app, name="agencies")
app.add_typer(pathways_app, name="pathways")
app.add_typer(referral_app, name="referral")
app.add_typer(step_app, name="step")
app.add_typer(consent_app, name="consent")
app.add_typer(audit_app, name="audit")
app.add_typer(access_app, name="access")
from cli.notify_commands import channels_app, outbox_app  # noqa: E402

app.add_typer(channels_app, name="channels")
app.add_typer(outbox_app, name="outbox")
from cli.public_report_commands import reports_app  # noqa: E402

app.add_typer(reports_app, name="reports")
from cli.backup_commands import backup  # noqa: E402
from cli.key_commands import keys_app  # noqa: E402
from cli.serve_commands import prepare_prefect, secure_home, serve, sweep  # noqa: E402

app.add_typer(keys_app, name="keys")
app.command()(backup)

app.command()(serve)
app.command()(sweep)
from cli.report_commands import report  # noqa: E402

app.command()(report)


@app.command()
def init(as_json: JsonFlag = False) -> None:
    """Create or migrate the case database, load the directory and pathways, and record this
    home's settings (RUJUKAN_HOME/settings.env, read by every command); safe to repeat.

    Example: rujukan init
    """
    from models.catalog import register_pathways
    from models.clock import utcnow
    from models.database import migrate
    from models.seal import ensure_secret_key
    from models.settings import record_settings
    from notifications.channels import ensure_demo_config

    ctx = context()
    secure_home(ctx.settings)
    migrate(ctx.settings.resolved_database_url)
    key_written = ensure_secret_key(ctx.settings, ctx.engine)
    with ctx.transaction() as session:
        added = register_pathways(session, ctx.catalog, utcnow())
    demo_channels = ensure_demo_config(ctx.settings)
    settings_file = record_settings(ctx.settings)
    result = {
        "database": ctx.settings.resolved_database_url.split("@")[-1],
        "agencies": len(ctx.catalog.directory.agencies),
        "pathways": sorted(ctx.catalog.pathways),
        "pathway_versions_added": added,
        "demo_channels_written": str(demo_channels) if demo_channels else None,
        "secret_key_written": str(key_written) if key_written else None,
        "settings_file": str(settings_file),
        "base_url": ctx.settings.base_url,
        **prepare_prefect(ctx.settings),  # the shipped automation, when Prefect is up
    }
    emit(
        result,
        as_json,
        lambda r: (
            f"case database ready: {r['database']}\n"
            f"{r['agencies']} agencies, pathways: {', '.join(r['pathways'])}\n"
            f"settings of this home: {r['settings_file']} (links to {r['base_url']})"
            + (f"\nregistered: {', '.join(added)}" if added else "")
            + (
                f"\ndemo channels (local mail catcher): {r['demo_channels_written']}"
                if r["demo_channels_written"]
                else ""
            )
            + (
                f"\nnew secret key: {r['secret_key_written']} (keep a copy apart from the database "
                "backups: without it the sealed personal data cannot be opened)"
                if r["secret_key_written"]
                else ""
            )
        ),
    )


# --- directory and pathways ---------------------------------------------------------------------


@agencies_app.command("list")
def agencies_list(as_json: JsonFlag = False) -> None:
    """List the agencies of the directory.

    Example: rujukan agencies list --json
    """
    directory = context().catalog.directory
    rows = [a.model_dump() for a in directory.agencies]
    emit(
        rows,
        as_json,
        lambda rs: "\n".join(
            f"{r['slug']:<12} {r['timezone']:<14} {r['locale']}  {r['name']}"
            + (f"  -> {r['escalation_target']}" if r["escalation_target"] else "")
            for r in rs
        ),
    )


@pathways_app.command("list")
def pathways_list(as_json: JsonFlag = False) -> None:
    """List the pathways.

    Example: rujukan pathways list
    """
    pathways = context().catalog.pathways.values()
    rows = [
        {
            "id": p.id,
            "version": p.version,
            "title": p.title.model_dump(),
            "steps": len(p.steps),
            "demo": p.demo,
        }
        for p in pathways
    ]
    emit(
        rows,
        as_json,
        lambda rs: "\n".join(
            f"{r['id']:<12} v{r['version']}  {r['steps']:>2} steps  {r['title']['id']}"
            + ("  [demo only: not for real cases]" if r["demo"] else "")
            for r in rs
        ),
    )


@pathways_app.command("show")
def pathways_show(pathway_id: str, as_json: JsonFlag = False) -> None:
    """Show one pathway's steps, agencies, deadlines and legal basis.

    Example: rujukan pathways show tppo-dewasa --json
    """
    pathway = context().catalog.pathway(pathway_id)
    data = pathway.model_dump(mode="json")

    def text(d: dict) -> str:
        lines = [f"{d['id']} v{d['version']}: {d['title']['id']} / {d['title']['en']}"]
        for s in d["steps"]:
            after = f" after {', '.join(s['depends_on'])}" if s["depends_on"] else ""
            cond = f" when {s['when']}" if s["when"] else ""
            rep = f" repeat {', '.join(s['repeat'])}" if s["repeat"] else ""
            lines.append(
                f"  {s['key']:<22} {s['agency']:<11} {s['deadline']:<16}{after}{cond}{rep}"
            )
            lines.append(f"  {'':<22} basis: {s['basis']}")
        return "\n".join(lines)

    emit(data, as_json, text)


@pathways_app.command("validate")
def pathways_validate(
    files: Annotated[list[Path] | None, typer.Argument(help="Pathway files; default all.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Validate pathway files against the schema, the directory and the templates.

    Example: rujukan pathways validate pathways/tppo-anak.yaml
    """
    from models.catalog import template_names
    from models.directory import load_directory
    from models.errors import BadInput
    from models.pathway import load_pathway_file

    settings = context().settings
    directory = load_directory(settings.agencies_file)
    paths = files or sorted(settings.pathways_dir.glob("*.yaml"))
    templates = template_names()
    results, failed = [], False
    for path in paths:
        try:
            pathway = load_pathway_file(path, directory, templates)
            results.append({"file": str(path), "ok": True, "id": pathway.id})
        except BadInput as exc:
            failed = True
            results.append({"file": str(path), "ok": False, "error": str(exc)})
    emit(
        results,
        as_json,
        lambda rs: "\n".join(
            f"ok    {r['file']} ({r['id']})" if r["ok"] else f"error {r['error']}" for r in rs
        ),
    )
    if failed:
        raise typer.Exit(2)


@app.command()
def codes(as_json: JsonFlag = False) -> None:
    """List outcome, decline-reason and extension-reason codes with their labels.

    Example: rujukan codes --json
    """
    from models.vocabulary import all_codes

    data = all_codes()
    emit(
        data,
        as_json,
        lambda d: "\n".join(
            f"{kind:<18} {c['code']:<26} {c['id']} / {c['en']}"
            for kind, cs in d.items()
            for c in cs
        ),
    )


# --- launching ----------------------------------------------------------------------------------


@app.command(name="launch")
def launch_cmd(
    intake: Annotated[Path | None, typer.Option(help="Intake JSON file ('-' for stdin).")] = None,
    batch: Annotated[Path | None, typer.Option(help="JSON Lines file, one intake a line.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Launch a referral from an intake file, or a batch (a mass rescue) in one transaction.

    Example: rujukan launch --intake examples/intake.json --json
    """
    from sqlmodel import col, select

    from models.actions import Actor, launch_many
    from models.clock import utcnow
    from models.errors import BadInput
    from models.step import Step

    if (intake is None) == (batch is None):
        raise BadInput("give exactly one of --intake FILE or --batch FILE.jsonl")
    ctx = context()
    # A refused launch changes nothing but leaves one 'refused' entry, as on the intake form.
    attempt, operator = ("launch-batch" if batch else "launch"), Actor("coordinator", "")
    try:
        intakes = _intakes_from(intake, batch)
    except BadInput as refused:
        ctx.record_refused(attempt, operator, refused)
        raise
    now = utcnow()
    batch_id = f"batch-{now:%Y%m%d%H%M%S}" if batch else None
    with ctx.acting(attempt, operator, None) as session:
        referrals = launch_many(
            session,
            intakes=intakes,
            catalog=ctx.catalog,
            sealer=ctx.sealer,
            now=now,
            batch=batch_id,
        )
        ready: dict[int | None, list[str]] = {r.id: [] for r in referrals}
        for referral_id, key in session.exec(
            select(Step.referral_id, Step.key)
            .where(col(Step.referral_id).in_(ready), Step.status == StepStatus.ready)
            .order_by(Step.id)
        ):
            ready[referral_id].append(key)
        rows = [
            {
                "reference": r.reference,
                "pathway": r.pathway_id,
                "urgency": r.urgency.value,
                "ready_steps": ready[r.id],
            }
            for r in referrals
        ]
    ctx.after_commit([r.id for r in referrals])
    if as_json and intake is not None:
        emit(rows[0], True, str)
    elif as_json:
        typer.echo("\n".join(json.dumps(r) for r in rows))
    else:
        typer.echo(
            "\n".join(
                f"{r['reference']}  {r['pathway']}  ready: {', '.join(r['ready_steps'])}"
                for r in rows
            )
        )


def _intakes_from(intake: Path | None, batch: Path | None) -> list[Intake]:
    """The intakes of --intake (a file or '-' for stdin) or of --batch (JSON Lines)."""
    from models.intake import read_intake_file, read_intakes

    if batch is not None:
        return read_intake_file(batch, "--batch", lines=True)
    assert intake is not None
    if str(intake) == "-":
        return read_intakes(typer.get_text_stream("stdin").read(), "--intake (stdin)")
    return read_intake_file(intake, "--intake")


# --- inspecting ---------------------------------------------------------------------------------


@referral_app.command("show")
def referral_show(reference: str, as_json: JsonFlag = False) -> None:
    """Show a referral's timeline: steps, agencies, status, due times and the audit trail.

    Example: rujukan referral show RJK-7QK2-M9
    """
    from cli.views import referral_timeline, timeline_text
    from models.actions import find_referral

    ctx = context()
    with ctx.transaction() as session:
        data = referral_timeline(session, find_referral(session, reference), ctx.catalog)
    emit(data, as_json, lambda d: timeline_text(d, ctx.settings.timezone))


@referral_app.command("cancel")
def referral_cancel(
    reference: str,
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(c.value for c in CancelCode)}.")],
    by: Annotated[str, typer.Option(help="The coordinator who cancels it.")],
) -> None:
    """Cancel a referral and every step not yet finished.

    Example: rujukan referral cancel RJK-7QK2-M9 --reason victim-moved --by coordinator-1
    """
    from models.actions import Actor, cancel_referral, find_referral
    from models.clock import utcnow

    ctx, actor = context(), Actor("coordinator", by)
    with ctx.acting("cancel-referral", actor, reference) as session:
        referral = cancel_referral(
            session=session, referral=find_referral(session, reference), reason=reason,
            actor=actor, now=utcnow(),
        )  # fmt: skip
    ctx.after_commit([referral.id])
    typer.echo(f"{referral.reference} cancelled")


@app.command()
def steps(
    agency: Annotated[str | None, typer.Option(help="Only this agency's steps.")] = None,
    status: Annotated[StepStatus | None, typer.Option(help="Only steps with this status.")] = None,
    overdue: Annotated[bool, typer.Option("--overdue", help="Only open steps past due.")] = False,
    at: Annotated[
        str | None, typer.Option(help="With --overdue: overdue by this ISO 8601 time.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """List steps: due time (the district's zone), how late, escalated or not.

    `--overdue --at TIME` answers "what will be overdue by then" (and how late by then).

    Example: rujukan steps --agency dinsos --overdue --at 2026-12-01T17:00+07:00 --json
    """
    from sqlmodel import select

    from cli.views import step_row, steps_text
    from models.clock import parse_moment, utcnow
    from models.referral import Referral
    from models.step import Step
    from models.sweep import open_steps_due_by

    ctx = context()
    if agency:
        ctx.catalog.agency(agency)
    moment = parse_moment(at, "--at") if at else utcnow()
    with ctx.transaction() as session:
        if overdue:
            rows = open_steps_due_by(session, moment)
        else:
            query = select(Step).where(Step.status != StepStatus.pending).order_by(Step.due_at)
            rows = list(session.exec(query))
        if agency:
            rows = [s for s in rows if s.agency == agency]
        if status:
            rows = [s for s in rows if s.status == status]
        references = {
            r.id: r.reference
            for r in session.exec(
                select(Referral).where(Referral.id.in_({s.referral_id for s in rows}))
            )
        }  # type: ignore[union-attr]
        data = [step_row(s, references[s.referral_id], moment, ctx.catalog) for s in rows]
    emit(data, as_json, lambda rs: steps_text(rs, ctx.settings.timezone))


# --- acting on a step ---------------------------------------------------------------------------

Ref = Annotated[str, typer.Argument(help="Reference code, e.g. RJK-7QK2-M9.")]
StepKey = Annotated[
    str, typer.Argument(help="Step key (see `rujukan referral show`); key#n for one instance.")
]
AgencyOpt = Annotated[str, typer.Option("--agency", help="Your agency's slug.")]
ByOpt = Annotated[
    str | None, typer.Option("--by", help="Who acts (focal point or coordinator id).")
]


def _act(command: str, **args: object) -> None:
    """Run `rujukan step COMMAND`: through the `rujukan serve` of this home if one answers on its
    command socket (cli/thin.py: serve holds the engine loaded), else here, with the same work
    (cli/step_actions.py). Prints what it says and exits with its code either way."""
    from cli.thin import LostReply, forward

    try:
        reply = forward(command, args)
    except LostReply:
        typer.echo(
            "error: `rujukan serve` took the command but gave no answer; "
            "`rujukan referral show` tells whether it was done",
            err=True,
        )
        raise typer.Exit(1) from None
    if reply is None:
        from cli.step_actions import ACTIONS

        done = ACTIONS[command](context(), **args)
        reply = {"out": done.out, "err": done.err, "code": 0}
    for line in reply["err"]:
        typer.echo(line, err=True)
    if reply["out"]:
        typer.echo(reply["out"])
    if reply["code"]:
        raise typer.Exit(int(reply["code"]))


@step_app.command("accept")
def step_accept(reference: Ref, step: StepKey, agency: AgencyOpt, by: ByOpt = None) -> None:
    """Accept a ready step for your agency.

    Example: rujukan step accept RJK-7QK2-M9 identifikasi --agency polres-ppa --by ani
    """
    _act("accept", reference=reference, step=step, agency=agency, by=by)


@step_app.command("decline")
def step_decline(
    reference: Ref,
    step: StepKey,
    agency: AgencyOpt,
    reason: Annotated[
        str, typer.Option(help=f"One of: {', '.join(c.value for c in DeclineCode)}.")
    ] = "",
    by: ByOpt = None,
) -> None:
    """Decline a step with a reason code; the coordinator re-routes it.

    Example: rujukan step decline RJK-7QK2-M9 rumah-aman --agency dinsos --reason no-capacity
    """
    _act("decline", reference=reference, step=step, agency=agency, reason=reason, by=by)


@step_app.command("complete")
def step_complete(
    reference: Ref,
    step: StepKey,
    agency: AgencyOpt,
    outcome: Annotated[
        str, typer.Option(help=f"One of: {', '.join(c.value for c in OutcomeCode)}.")
    ] = "",
    by: ByOpt = None,
) -> None:
    """Complete an accepted step with an outcome code; the next steps become ready.

    Example: rujukan step complete RJK-7QK2-M9 identifikasi --agency polres-ppa --outcome served
    """
    _act("complete", reference=reference, step=step, agency=agency, outcome=outcome, by=by)


@step_app.command("request-extension")
def step_request_extension(
    reference: Ref,
    step: StepKey,
    agency: AgencyOpt,
    until: Annotated[str, typer.Option(help="The deadline asked for, ISO 8601 with offset.")],
    reason: Annotated[
        str, typer.Option(help=f"One of: {', '.join(c.value for c in ExtensionCode)}.")
    ] = "",
    by: ByOpt = None,
) -> None:
    """Ask the coordinator for more time on your agency's step; the deadline holds until decided.

    Example: rujukan step request-extension RJK-7QK2-M9 psikososial --agency psikolog
    --until 2026-12-10T17:00+07:00 --reason victim-unavailable
    """
    _act(
        "request-extension", reference=reference, step=step, agency=agency, until=until,
        reason=reason, by=by,
    )  # fmt: skip


@step_app.command("decide-extension")
def step_decide_extension(
    reference: Ref,
    step: StepKey,
    by: Annotated[str, typer.Option(help="The coordinator.")],
    approve: Annotated[
        bool, typer.Option("--approve/--refuse", help="Grant the new deadline, or refuse it.")
    ],
    until: Annotated[
        str | None,
        typer.Option(help="With --approve: the new deadline (default: the date asked for)."),
    ] = None,
) -> None:
    """Approve or refuse more time on a step (or grant it unasked, with --until).

    A coordinator decides; the agency is told either way.

    Example: rujukan step decide-extension RJK-7QK2-M9 psikososial --approve --by coordinator-1
    Example: rujukan step decide-extension RJK-7QK2-M9 psikososial --refuse --by coordinator-1
    """
    _act("decide-extension", reference=reference, step=step, by=by, approve=approve, until=until)


@step_app.command("reroute")
def step_reroute(
    reference: Ref,
    step: StepKey,
    to: Annotated[str, typer.Option("--to", help="The agency that takes the step over.")],
    by: Annotated[str, typer.Option(help="The coordinator.")],
) -> None:
    """Give a declined (or open) step to another agency, with a fresh deadline.

    Example: rujukan step reroute RJK-7QK2-M9 rumah-aman --to ngo --by coordinator-1
    """
    _act("reroute", reference=reference, step=step, to=to, by=by)


@step_app.command("cancel")
def step_cancel(
    reference: Ref,
    step: StepKey,
    reason: Annotated[str, typer.Option(help=f"One of: {', '.join(c.value for c in CancelCode)}.")],
    by: Annotated[str, typer.Option(help="The coordinator.")],
) -> None:
    """Cancel a step that is no longer needed; the steps after it may go ahead.

    Example: rujukan step cancel RJK-7QK2-M9 bantuan-hukum --reason handled-elsewhere
    --by coordinator-1
    """
    _act("cancel", reference=reference, step=step, reason=reason, by=by)


@consent_app.command("add")
def consent_add(
    reference: Ref,
    agency: AgencyOpt,
    by: Annotated[str, typer.Option(help="The coordinator who recorded the consent.")],
) -> None:
    """Record the victim's consent to share with one more agency (before a re-route).

    Example: rujukan consent add RJK-7QK2-M9 --agency ngo --by coordinator-1
    """
    from models.actions import Actor, add_consent, find_referral
    from models.clock import utcnow

    ctx, actor = context(), Actor("coordinator", by)
    with ctx.acting("add-consent", actor, reference) as session:
        add_consent(
            session=session, referral=find_referral(session, reference), agency=agency,
            actor=actor, now=utcnow(), catalog=ctx.catalog,
        )  # fmt: skip
    typer.echo(f"consent recorded for {agency}")


@audit_app.command("verify")
def audit_verify(
    anchor: Annotated[
        str | None,
        typer.Option(
            help="SEQ:HASH of an entry saved earlier from this command's output, kept apart from "
            "the database: the chain must still hold it (catches a rewritten chain)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Check the audit chain; name every changed, deleted or inserted entry.

    Prints the newest entry's SEQ:HASH: keep it somewhere else and pass it back with --anchor.

    Example: rujukan audit verify
    Example: rujukan audit verify --anchor 120:3f9a...e1
    """
    from models.audit import chain_head, verify_chain

    with context().transaction() as session:
        breaks = verify_chain(session, anchor=anchor)
        head = chain_head(session)
    data = {
        "ok": not breaks,
        "breaks": [{"seq": b.seq, "problem": b.problem} for b in breaks],
        "head": head,
    }
    emit(
        data,
        as_json,
        lambda d: (
            f"audit chain intact; newest entry {d['head']}"
            if d["ok"]
            else "\n".join(f"entry {b['seq']}: {b['problem']}" for b in d["breaks"])
        ),
    )
    if breaks:
        raise typer.Exit(1)


def main() -> None:
    """Console entry point."""
    restrict_umask()  # the case database, the key, logs and mail: owner-only, whatever the umask
    run(app)
