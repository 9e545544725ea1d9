"""`rujukan access`: issue, revoke and list sign-in tokens for the web inbox; print inbox links."""

from __future__ import annotations

import getpass
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from cli.context import JsonFlag, context, emit

if TYPE_CHECKING:
    from models.access import AccessGrant


access_app = typer.Typer(
    help="Sign-in tokens for the web inbox (agency focal points, coordinators) and inbox links.",
    no_args_is_help=True,
)

ByOpt = Annotated[str | None, typer.Option("--by", help="The operator (default: your login name).")]


def _operator(by: str | None) -> str:
    return f"operator:{by or getpass.getuser()}"[:80]


def _task_force(ctx) -> str:
    """The agency a manager's grant names: the task force if the directory has it."""
    directory = ctx.catalog.directory
    return "gugus-tugas" if "gugus-tugas" in directory else ctx.settings.coordinator_agency


def _grant_row(grant: AccessGrant, now) -> dict:
    state = "revoked" if grant.revoked_at else "expired" if grant.expires_at <= now else "active"
    return {
        "id": grant.id,
        "kind": grant.kind.value,
        "agency": grant.agency,
        "holder": grant.holder,
        "status": state,
        "issued_by": grant.issued_by,
        "issued_at": grant.issued_at.isoformat(),
        "expires_at": grant.expires_at.isoformat(),
        "revoked_at": grant.revoked_at.isoformat() if grant.revoked_at else None,
    }


@access_app.command("issue")
def access_issue(
    agency: Annotated[
        str | None, typer.Option("--agency", help="An agency's slug: a focal point's inbox token.")
    ] = None,
    coordinator: Annotated[
        str | None, typer.Option("--coordinator", help="A coordinator's id.")
    ] = None,
    manager: Annotated[
        str | None,
        typer.Option(
            "--manager", help="A manager's id (task force): reads late steps and reports only."
        ),
    ] = None,
    holder: Annotated[
        str | None, typer.Option("--holder", help="With --agency: who gets the token (name or id).")
    ] = None,
    days: Annotated[int, typer.Option("--days", help="How long the token works (1-366).")] = 180,
    by: ByOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Issue a personal sign-in token; it is printed once and only its hash is stored.

    Example: rujukan access issue --agency dinsos --holder ani
    Example: rujukan access issue --coordinator coordinator-1
    Example: rujukan access issue --manager sekretariat-gugus-tugas
    """
    from cli.views import district_time
    from models.access import GrantKind, issue_grant
    from models.clock import utcnow
    from models.errors import BadInput

    if sum(option is not None for option in (agency, coordinator, manager)) != 1:
        raise BadInput("give exactly one of --agency SLUG, --coordinator NAME or --manager NAME")
    ctx = context()
    now = utcnow()
    if coordinator is not None:
        kind, slug, who = GrantKind.coordinator, ctx.settings.coordinator_agency, coordinator
    elif manager is not None:
        kind, slug, who = GrantKind.manager, _task_force(ctx), manager
    else:
        assert agency is not None
        kind, slug, who = GrantKind.agency, agency, holder or f"{agency}-focal-point"
    with ctx.transaction() as session:
        grant, token = issue_grant(
            session,
            kind=kind,
            agency=slug,
            holder=who,
            issued_by=_operator(by),
            now=now,
            catalog=ctx.catalog,
            lifetime=timedelta(days=days),
        )
        row = _grant_row(grant, now)
    row["token"] = token
    row["sign_in_url"] = f"{ctx.settings.base_url.rstrip('/')}/signin"
    emit(
        row,
        as_json,
        lambda r: (
            f"access grant #{r['id']} ({r['kind']}, {r['agency']}, {r['holder']}) "
            f"until {district_time(r['expires_at'], ctx.settings.timezone)}\n"
            f"token (shown once; give it to {r['holder']} privately): {r['token']}\n"
            f"sign in at {r['sign_in_url']} and paste the token"
        ),
    )


@access_app.command("revoke")
def access_revoke(
    grant_id: Annotated[int, typer.Argument(help="The grant's id (see `rujukan access list`).")],
    by: ByOpt = None,
) -> None:
    """Revoke a sign-in token; it stops working at the holder's next request.

    Example: rujukan access revoke 3
    """
    from models.access import revoke_grant
    from models.clock import utcnow

    ctx = context()
    with ctx.transaction() as session:
        grant = revoke_grant(session, grant_id=grant_id, revoked_by=_operator(by), now=utcnow())
    typer.echo(
        f"access grant #{grant.id} ({grant.kind.value}, {grant.agency}, {grant.holder}) revoked"
    )


@access_app.command("withdraw-links")
def access_withdraw_links(
    agency: Annotated[str, typer.Option("--agency", help="The agency whose links stop working.")],
    by: ByOpt = None,
) -> None:
    """Stop every signed link of one agency made until now (a lost or shared phone).

    The pages those links opened close at the next click. Messages sent from now on carry new
    links; the agency's sign-in tokens are not affected (`access revoke` stops those).

    Example: rujukan access withdraw-links --agency dinsos --by coordinator-1
    """
    from cli.views import district_time
    from models.access import withdraw_links
    from models.clock import utcnow

    ctx = context()
    with ctx.transaction() as session:
        cutoff = withdraw_links(
            session, agency=agency, by=_operator(by), now=utcnow(), catalog=ctx.catalog
        )
    typer.echo(
        f"every link of {agency} made until "
        f"{district_time(cutoff.not_before, ctx.settings.timezone, seconds=True)} "
        "is withdrawn; new messages carry new links (if the lost device also receives "
        f"{agency}'s messages, remove that channel from the channel config too)"
    )


@access_app.command("list")
def access_list(as_json: JsonFlag = False) -> None:
    """List the access grants (never their tokens): who, which agency, until when, revoked or not.

    Example: rujukan access list --json
    """
    from models.access import list_grants
    from models.clock import utcnow

    ctx = context()
    now = utcnow()
    with ctx.transaction() as session:
        rows = [_grant_row(g, now) for g in list_grants(session)]
    emit(rows, as_json, lambda rs: grants_text(rs, ctx.settings.timezone))


def grants_text(rows: list[dict], tz: str) -> str:
    """Grants as an aligned table, times in the district's zone `tz`."""
    from cli.views import aligned, district_time
    from models.deadline import zone_abbreviation

    if not rows:
        return "no access grants"
    zone = zone_abbreviation(tz)
    header = ["ID", "KIND", "AGENCY", "STATUS", f"ISSUED ({zone})", f"UNTIL ({zone})", "HOLDER"]
    cells = [
        [
            f"#{r['id']}",
            r["kind"],
            r["agency"],
            r["status"],
            district_time(r["issued_at"], tz),
            district_time(r["expires_at"], tz),
            r["holder"],
        ]
        for r in rows
    ]
    return "\n".join(aligned([header, *cells]))


@access_app.command("link")
def access_link(
    agency: Annotated[str, typer.Option("--agency", help="The agency whose inbox the link opens.")],
    days: Annotated[
        int | None, typer.Option("--days", help="Lifetime (default RUJUKAN_LINK_LIFETIME_DAYS).")
    ] = None,
    by: ByOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Print a signed, expiring link to one agency's inbox (`access withdraw-links` stops it).

    The audit trail records who made it, for which agency and how long it lasts.

    Example: rujukan access link --agency dinsos --days 7
    """
    from cli.views import district_time
    from models.access import issue_link
    from models.clock import utcnow

    ctx = context()
    lifetime = days if days is not None else ctx.settings.link_lifetime_days
    now = utcnow()
    with ctx.transaction() as session:
        token = issue_link(
            session,
            secret=ctx.settings.resolved_secret_key(),
            agency=agency,
            step_id=None,
            lifetime=timedelta(days=lifetime),
            issued_by=_operator(by),
            now=now,
            catalog=ctx.catalog,
        )
    row = {
        "agency": agency,
        "expires_at": (now + timedelta(days=lifetime)).isoformat(),
        "url": f"{ctx.settings.base_url.rstrip('/')}/s/{token}",
    }
    emit(
        row,
        as_json,
        lambda r: (
            f"{r['url']}\n(inbox of {r['agency']}, valid until "
            f"{district_time(r['expires_at'], ctx.settings.timezone)})"
        ),
    )
