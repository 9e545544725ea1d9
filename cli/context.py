"""What every command needs: settings, the case database, the catalog, output and errors."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import typer
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.access import HOLDER
from models.catalog import Catalog, load_catalog
from models.database import engine_for, transaction
from models.engine import Actor, record_refusal
from models.errors import BadInput, RujukanError
from models.seal import Sealer
from models.settings import Settings, get_settings


@dataclass
class Context:
    """Lazily built resources of one command."""

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return engine_for(self.settings.resolved_database_url)

    @cached_property
    def catalog(self) -> Catalog:
        return load_catalog(self.settings)

    @cached_property
    def sealer(self) -> Sealer:
        return Sealer(self.settings.resolved_secret_key())

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        with transaction(self.engine) as session:
            yield session

    @contextmanager
    def acting(
        self, attempt: str, actor: Actor, reference: str | None, step: str | None = None
    ) -> Iterator[Session]:
        """An action's transaction; if it is refused, the refusal is audited and re-raised.

        The action's own writes are rolled back; the audit entry is written in a transaction
        of its own, as the web app does, so every attempt leaves a row.
        """
        try:
            with self.transaction() as session:
                yield session
        except BadInput as refused:
            self.record_refused(attempt, actor, refused, reference, step)
            raise

    def record_refused(
        self,
        attempt: str,
        actor: Actor,
        error: BadInput,
        reference: str | None = None,
        step: str | None = None,
    ) -> None:
        """Write one 'refused' audit entry in a transaction of its own."""
        with self.transaction() as session:
            record_refusal(
                session,
                actor=self._recordable(actor),
                attempt=attempt,
                error=error,
                now=utcnow(),
                via="cli",
                reference=reference,
                step_ref=step,
            )

    def _recordable(self, actor: Actor) -> str:
        """The actor as the audit trail may keep it. A refused attempt may carry anything typed
        into --agency or --by (a person's name in the wrong field): only a known agency and a
        name fit for the trail are kept."""
        name = actor.name if HOLDER.fullmatch(actor.name or "") else ""
        if actor.kind == "agency":
            agency = actor.agency if actor.agency in self.catalog.directory else "(unknown)"
            return str(Actor("agency", name, agency))
        return str(Actor(actor.kind, name or "(unnamed)"))


def context() -> Context:
    """The context of the running command."""
    return Context(get_settings())


def utcnow() -> datetime:
    """Now, in UTC."""
    return datetime.now(UTC)


def parse_moment(text: str, what: str) -> datetime:
    """An ISO 8601 time with an offset, or BadInput saying how to write it."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadInput(
            f"{what}: '{text[:40]}' is not an ISO 8601 time like 2026-12-01T09:00+07:00"
        ) from None
    if moment.tzinfo is None:
        raise BadInput(f"{what} has no time zone: write it like 2026-12-01T09:00+07:00")
    return moment.astimezone(UTC)


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print `data` as JSON or as text for people."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(text(data))


def run(app: typer.Typer) -> None:
    """Run the app; domain errors print one clear line and exit 2 (bad input) or 1 (other)."""
    try:
        app()
    except RujukanError as exc:
        typer.echo(f"{'note' if exc.exit_code == 0 else 'error'}: {exc}", err=True)
        sys.exit(exc.exit_code)
