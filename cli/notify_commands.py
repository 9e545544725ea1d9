"""`rujukan channels` and `rujukan outbox`: check channels, see and retry undelivered messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import JsonFlag, context, emit

if TYPE_CHECKING:
    from models.outbox import OutboxMessage


channels_app = typer.Typer(help="Agency channels (the Apprise config).", no_args_is_help=True)
outbox_app = typer.Typer(
    help="The notification outbox: failing and dead messages (`rujukan outbox` lists them).",
    invoke_without_command=True,
)


@channels_app.command("check")
def channels_check(as_json: JsonFlag = False) -> None:
    """Validate every channel URL, its scheme and host, and find agencies without a channel.

    Example: rujukan channels check --json
    """
    from notifications.channels import channel_summary, check_channels

    ctx = context()
    problems = check_channels(ctx.settings, ctx.catalog.directory)
    result = {
        "config": str(ctx.settings.resolved_apprise_config),
        "channels": channel_summary(ctx.settings),
        "problems": [
            {"agency": p.agency, "scheme": p.scheme, "problem": p.text, "message": str(p)}
            for p in problems
        ],
        "ok": not problems,
    }
    emit(
        result,
        as_json,
        lambda r: (
            f"{r['config']}: {len(r['channels'])} channels, "
            + ("all agencies reachable" if r["ok"] else f"{len(r['problems'])} problems:\n")
            + "\n".join(f"  {p['message']}" for p in r["problems"])
        ),
    )
    if problems:
        raise typer.Exit(1)


def _row(message: OutboxMessage, reference: str | None) -> dict:
    return {
        "id": message.id,
        "reference": reference,
        "event": message.event.value,
        "recipient": message.recipient,
        "status": message.status.value,
        "attempts": message.attempts,
        "next_attempt_at": message.next_attempt_at,
        "sent_at": message.sent_at,
        "created_at": message.created_at,
        "last_error": message.last_error,
    }


StatusOpt = Annotated[
    str | None,
    typer.Option(help="pending, sending, sent, failed or dead; default: everything not sent yet"),
]
LimitOpt = Annotated[int, typer.Option(help="At most this many rows, newest first.")]


@outbox_app.callback()
def outbox_default(
    ctx: typer.Context, status: StatusOpt = None, limit: LimitOpt = 100, as_json: JsonFlag = False
) -> None:
    """List messages not delivered yet; the same as `rujukan outbox list`.

    Example: rujukan outbox --status dead
    """
    if ctx.invoked_subcommand is None:
        outbox_list(status=status, limit=limit, as_json=as_json)


@outbox_app.command("list")
def outbox_list(status: StatusOpt = None, limit: LimitOpt = 100, as_json: JsonFlag = False) -> None:
    """List outbox messages: by default those not delivered yet (pending, sending, failed, dead).

    Example: rujukan outbox list --status dead --json
    """
    from sqlmodel import col, select

    from models.errors import BadInput
    from models.outbox import OutboxMessage, OutboxStatus
    from models.referral import Referral

    if status is not None:
        try:
            wanted = [OutboxStatus(status)]
        except ValueError:
            raise BadInput(
                f"unknown status (one of: {', '.join(s.value for s in OutboxStatus)})"
            ) from None
    else:
        wanted = [s for s in OutboxStatus if s != OutboxStatus.sent]
    ctx = context()
    with ctx.transaction() as session:
        rows = session.exec(
            select(OutboxMessage, Referral.reference)
            .join(Referral, col(Referral.id) == OutboxMessage.referral_id)
            .where(col(OutboxMessage.status).in_(wanted))
            .order_by(col(OutboxMessage.id).desc())
            .limit(limit)
        ).all()
        data = [_row(message, reference) for message, reference in rows]
    emit(
        data,
        as_json,
        lambda rs: (
            "\n".join(
                f"{r['id']:>6}  {r['status']:<7} {r['reference']}  {r['event']:<19} "
                f"-> {r['recipient']:<12}"
                f" attempts {r['attempts']}" + (f"  {r['last_error']}" if r["last_error"] else "")
                for r in rs
            )
            or "no messages"
        ),
    )


@outbox_app.command("retry")
def outbox_retry(
    message_id: Annotated[int | None, typer.Argument(help="The outbox message id.")] = None,
    all_dead: Annotated[bool, typer.Option("--all-dead", help="Retry every dead message.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Queue a failed or dead message again (fresh attempts) and send it now.

    Example: rujukan outbox retry 42
    Example: rujukan outbox retry --all-dead
    """
    from models.clock import utcnow
    from models.errors import BadInput
    from models.outbox import retry_messages
    from notifications.relay import relay_now

    if (message_id is None) == (not all_dead):
        raise BadInput("give one message id, or --all-dead")
    ctx = context()
    now = utcnow()
    with ctx.transaction() as session:
        queued = retry_messages(session, now=now, message_id=message_id)
    report = relay_now(ctx.settings, now=now)
    result = {"queued": queued, **report.as_dict()}
    emit(
        result,
        as_json,
        lambda r: f"queued {r['queued']}; sent {r['sent']}, failed {r['failed']}, dead {r['dead']}",
    )
