"""`rujukan keys`: rotate the secret key that seals personal data and signs links; re-seal."""

from __future__ import annotations

import getpass
import secrets
from typing import Annotated

import typer

from cli.context import JsonFlag, context, emit

keys_app = typer.Typer(
    help="The secret key: rotate it, re-seal personal data with the current key.",
    no_args_is_help=True,
)

ByOpt = Annotated[str | None, typer.Option("--by", help="The operator (default: your login name).")]


def _operator(by: str | None) -> str:
    return f"operator:{by or getpass.getuser()}"[:80]


def _reseal(by: str | None) -> dict:
    from models.clock import utcnow
    from models.keyring import key_id, reseal
    from models.seal import Sealer

    ctx = context()
    sealer = Sealer.for_settings(ctx.settings)
    current = ctx.settings.resolved_secret_key()
    with ctx.transaction() as session:
        changed = reseal(session, sealer, actor=_operator(by), now=utcnow(), key=current)
    return {"resealed": changed, "key": key_id(current)}


@keys_app.command("rotate")
def keys_rotate(
    also_reseal: Annotated[
        bool,
        typer.Option("--reseal", help="Then seal every sealed value again with the new key."),
    ] = False,
    by: ByOpt = None,
    as_json: JsonFlag = False,
) -> None:
    """Put a new key in RUJUKAN_HOME/secret.key; the old one moves to previous.keys.

    Records sealed and links signed with the old key stay valid; everything new uses the new key.
    Restart every process that reads the key (serve, inbox, relay, workers) afterwards.

    Example: rujukan keys rotate --reseal
    """
    from models.clock import utcnow
    from models.keyring import rotate_secret_key
    from models.settings import get_settings

    ctx = context()
    with ctx.transaction() as session:
        new = rotate_secret_key(session, ctx.settings, actor=_operator(by), now=utcnow())
    result: dict[str, object] = {
        "key": new,
        "previous_keys_file": str(ctx.settings.previous_keys_file),
    }
    if also_reseal:
        get_settings.cache_clear()  # the new key file, read afresh
        result.update(_reseal(by))
    emit(
        result,
        as_json,
        lambda r: (
            f"new key {r['key']} in place; the old one kept in {r['previous_keys_file']}"
            + (f"\nre-sealed {r['resealed']} values with the new key" if "resealed" in r else "")
            + "\nrestart every Rujukan process on every host so that they use it"
        ),
    )


@keys_app.command("reseal")
def keys_reseal(by: ByOpt = None, as_json: JsonFlag = False) -> None:
    """Seal every sealed value again with the current key (safe to repeat).

    Example: rujukan keys reseal
    """
    emit(_reseal(by), as_json, lambda r: f"re-sealed {r['resealed']} values with key {r['key']}")


@keys_app.command("new")
def keys_new() -> None:
    """Print a new random key, for operators who set RUJUKAN_SECRET_KEY themselves.

    Example: rujukan keys new
    """
    typer.echo(secrets.token_urlsafe(32))
