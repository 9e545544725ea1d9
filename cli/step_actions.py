"""The work of `rujukan step ...`: one function per action, shared by the command line and the
command socket of `rujukan serve` (cli/command_socket.py), so both run the same transaction,
write the same audit entries and send the same messages after the commit.

Each function returns what the command prints instead of printing it: serve runs commands of
several shells at once, each in a thread of its own, and nothing here touches sys.stdout.
Errors are raised as the engine raises them (cli.context.run, or serve, tells them). As
everywhere in cli/, the engine is imported in the functions (cli/context.py says why).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cli.context import Context
    from models.actions import Actor
    from models.step import Step


@dataclass
class Done:
    """What a step command prints: one line on stdout, and the messages' line on stderr."""

    out: str
    err: list[str] = field(default_factory=list)


def _done(ctx: Context, step: Step, verb: str) -> Done:
    note = ctx.delivered([step.referral_id])
    return Done(
        f"{verb}: step {step.ref} ({step.agency}) is now {step.status.value}",
        [note] if note else [],
    )


def _agency_actor(agency: str, by: str | None) -> Actor:
    from models.actions import Actor

    return Actor("agency", by or "", agency)


def accept(ctx: Context, reference: str, step: str, agency: str, by: str | None = None) -> Done:
    from models.actions import accept_step, load_step
    from models.clock import utcnow

    actor = _agency_actor(agency, by)
    with ctx.acting("accept", actor, reference, step) as session:
        row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
        accept_step(session=session, step=row, actor=actor, now=utcnow())
    return _done(ctx, row, "accepted")


def decline(
    ctx: Context, reference: str, step: str, agency: str, reason: str = "", by: str | None = None
) -> Done:
    from models.actions import decline_step, load_step
    from models.clock import utcnow

    actor = _agency_actor(agency, by)
    with ctx.acting("decline", actor, reference, step) as session:
        row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
        decline_step(session=session, step=row, reason=reason, actor=actor, now=utcnow())
    return _done(ctx, row, "declined")


def complete(
    ctx: Context, reference: str, step: str, agency: str, outcome: str = "", by: str | None = None
) -> Done:
    from models.actions import complete_step, load_step
    from models.clock import utcnow

    actor = _agency_actor(agency, by)
    with ctx.acting("complete", actor, reference, step) as session:
        row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
        complete_step(
            session=session, step=row, outcome=outcome, actor=actor, now=utcnow(),
            catalog=ctx.catalog,
        )  # fmt: skip
    return _done(ctx, row, "completed")


def request_more_time(
    ctx: Context,
    reference: str,
    step: str,
    agency: str,
    until: str,
    reason: str = "",
    by: str | None = None,
) -> Done:
    from models.actions import load_step, request_extension
    from models.clock import parse_moment, utcnow

    actor = _agency_actor(agency, by)
    with ctx.acting("request-extension", actor, reference, step) as session:
        moment = parse_moment(until, "--until")
        row = load_step(session=session, reference=reference, step_ref=step, agency=agency)
        request_extension(
            session=session, step=row, until=moment, reason=reason, actor=actor, now=utcnow()
        )
    return _done(ctx, row, "extension requested")


def decide_more_time(
    ctx: Context, reference: str, step: str, by: str, approve: bool, until: str | None = None
) -> Done:
    from models.actions import Actor, decide_extension, load_step
    from models.clock import parse_moment, utcnow

    actor = Actor("coordinator", by)
    with ctx.acting("decide-extension", actor, reference, step) as session:
        moment = parse_moment(until, "--until") if until else None
        row = load_step(session=session, reference=reference, step_ref=step)
        decide_extension(
            session=session, step=row, approve=approve, until=moment, actor=actor, now=utcnow()
        )
    return _done(ctx, row, "deadline extended" if approve else "extension refused")


def reroute(ctx: Context, reference: str, step: str, to: str, by: str) -> Done:
    from models.actions import Actor, load_step, reroute_step
    from models.clock import utcnow

    actor = Actor("coordinator", by)
    with ctx.acting("reroute", actor, reference, step) as session:
        row = load_step(session=session, reference=reference, step_ref=step)
        new = reroute_step(
            session=session, step=row, to_agency=to, actor=actor, now=utcnow(),
            catalog=ctx.catalog,
        )  # fmt: skip
    return _done(ctx, new, "re-routed")


def cancel(ctx: Context, reference: str, step: str, reason: str, by: str) -> Done:
    from models.actions import Actor, cancel_step, load_step
    from models.clock import utcnow

    actor = Actor("coordinator", by)
    with ctx.acting("cancel-step", actor, reference, step) as session:
        row = load_step(session=session, reference=reference, step_ref=step)
        cancel_step(
            session=session, step=row, reason=reason, actor=actor, now=utcnow(),
            catalog=ctx.catalog,
        )  # fmt: skip
    return _done(ctx, row, "cancelled")


# `rujukan step NAME` -> its work; the arguments are the command's parameters by name.
ACTIONS: dict[str, Callable[..., Done]] = {
    "accept": accept,
    "decline": decline,
    "complete": complete,
    "request-extension": request_more_time,
    "decide-extension": decide_more_time,
    "reroute": reroute,
    "cancel": cancel,
}
