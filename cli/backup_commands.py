"""`rujukan backup`: a consistent copy of the case database while Rujukan runs."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Annotated

import typer

from cli.context import JsonFlag, emit


def backup(
    target: Annotated[Path, typer.Argument(help="The file to write (made owner-only).")],
    as_json: JsonFlag = False,
) -> None:
    """Copy the case database to a file, safely while everything runs.

    SQLite: a SQLite file (the online backup API). PostgreSQL: a `pg_dump --format=custom`
    archive for `pg_restore`. The secret key is not in it: keep the key apart (docs/deploy.md).

    Example: rujukan backup /srv/backup/rujukan-2026-11-29.dump
    """
    from models.database import backup_database
    from models.errors import BadInput
    from models.settings import get_settings

    settings = get_settings()
    try:
        kind = backup_database(settings.resolved_database_url, target.absolute())
    except FileNotFoundError as exc:
        raise BadInput(
            f"cannot back up: {exc.filename or exc} not found (pg_dump must be on PATH for "
            "PostgreSQL: apt-get install postgresql-client)"
        ) from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode(errors="replace").strip().splitlines()[-1:] if exc.stderr else []
        raise BadInput(f"pg_dump failed: {' '.join(detail) or exc.returncode}") from None
    result = {"file": str(target.absolute()), "format": kind, "bytes": target.stat().st_size}
    emit(
        result,
        as_json,
        lambda r: f"backup written: {r['file']} ({r['format']}, {r['bytes']} bytes)",
    )
