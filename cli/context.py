"""What every command needs: settings, the case database, the catalog, output and errors.

The command line starts light: a module under cli/ imports at its top only typer, the standard
library, cli.context and models.codes (the codes its help texts list). The engine (sqlmodel,
models.*, flows.*, notifications.*, Prefect, Apprise, matplotlib, uvicorn) is imported inside the
function that uses it, so `rujukan --help` loads typer alone and a command loads what it runs.
tests/core/test_cli_imports.py holds the line (docs/architecture.md, "The command line").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlmodel import Session

    from models.actions import Actor
    from models.catalog import Catalog
    from models.errors import BadInput
    from models.seal import Sealer
    from models.settings import Settings


@dataclass
class Context:
    """Lazily built resources of one command."""

    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        from models.database import engine_for

        return engine_for(self.settings.resolved_database_url)

    @cached_property
    def catalog(self) -> Catalog:
        from models.catalog import load_catalog

        return load_catalog(self.settings)

    @cached_property
    def sealer(self) -> Sealer:
        from models.seal import Sealer

        return Sealer.for_settings(self.settings)

    def after_commit(self, referral_ids: list[int | None]) -> None:
        """Send what the change queued (within the send budget) and say on stderr how many
        messages went and how many wait for the relay, warning when none runs."""
        line = self.delivered(referral_ids)
        if line is not None:
            typer.echo(line, err=True)

    def delivered(self, referral_ids: list[int | None]) -> str | None:
        """`after_commit`'s work: send what the change queued, and return the line that says how
        it went (None if nothing was to be sent). Prints nothing: serve runs it for commands."""
        from flows.wake import after_commit, relay_running

        report = after_commit(self.settings, referral_ids)
        if report is None or not (report.sent or report.waiting or report.failed):
            return None
        line = f"messages: {report.sent} sent"
        if report.sends and report.sends != report.sent:
            line += f" in {report.sends} sends"
        if report.failed or report.dead:
            line += f", {report.failed + report.dead} failed (see `rujukan outbox list`)"
        if report.waiting:
            line += f", {report.waiting} waiting for the relay"
        if (report.waiting or report.failed) and not relay_running(self.settings):
            line += "; no `rujukan serve` runs for this home: nothing sends or retries them until"
            line += " it does"
        return line

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        from models.database import transaction

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
        from models.errors import BadInput

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
        from models.actions import record_refusal
        from models.clock import utcnow

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
        from models.access import HOLDER
        from models.actions import Actor

        name = actor.name if HOLDER.fullmatch(actor.name or "") else ""
        if actor.kind == "agency":
            agency = actor.agency if actor.agency in self.catalog.directory else "(unknown)"
            return str(Actor("agency", name, agency))
        return str(Actor(actor.kind, name or "(unnamed)"))


def context() -> Context:
    """The context of the running command."""
    from models.settings import get_settings

    return Context(get_settings())


JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def emit(data: Any, as_json: bool, text: Callable[[Any], str]) -> None:
    """Print `data` as JSON or as text for people."""
    if as_json:
        typer.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))
    else:
        typer.echo(text(data))


def run(app: typer.Typer, args: list[str] | None = None) -> None:
    """Run the app on `args` (default: the command line) and exit; domain errors print one clear
    line and exit 2 (bad input) or 1 (other), usage errors exit 2 without repeating the input."""
    try:
        code = app(args=args, prog_name="rujukan", standalone_mode=False)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(1)
    except Exception as exc:
        if _is_domain_error(exc):
            typer.echo(error_line(exc), err=True)
            sys.exit(exc.exit_code)
        if _is_a(exc, "NoArgsIsHelpError"):
            exc.show()  # the help text: nothing typed in it
            sys.exit(exc.exit_code)
        if not _is_a(exc, "ClickException"):
            raise
        context = getattr(exc, "ctx", None)
        if context is not None:
            typer.echo(context.get_usage(), err=True)
        typer.echo(f"error: {usage_problem(exc)}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def error_line(exc: Exception) -> str:
    """How a domain error (a RujukanError) is told on stderr; its exit code is its own."""
    return f"{'note' if getattr(exc, 'exit_code', 1) == 0 else 'error'}: {exc}"


def _is_domain_error(exc: Exception) -> bool:
    """True for a RujukanError. models.errors is looked up only if it was loaded: an error
    raised before any engine module was imported (a usage error) cannot be one."""
    errors = sys.modules.get("models.errors")
    return errors is not None and isinstance(exc, errors.RujukanError)


def usage_problem(exc: Exception) -> str:
    """A usage error, told without what was typed.

    Click's own texts repeat a bad value, an unknown option or command, extra arguments or a
    file name, any of which may be a person's name. Typer vendors its own copy of click in
    newer releases, so the error classes are recognised by name.
    """
    context = getattr(exc, "ctx", None)
    command = context.command_path if context is not None else "rujukan"
    see = f"see `{command} --help`"
    if _is_a(exc, "MissingParameter") or _is_a(exc, "BadOptionUsage"):
        return exc.format_message()  # names only the command's own parameter
    if _is_a(exc, "BadParameter"):
        param = getattr(exc, "param", None)
        names = (getattr(param, "opts", None) or [getattr(param, "name", None)]) if param else []
        hint = " / ".join(f"'{n}'" for n in names if n) or "an argument"
        choices = _choices(param)
        return f"invalid value for {hint}" + (
            f": one of {', '.join(choices)}" if choices else f"; {see}"
        )
    if _is_a(exc, "NoSuchOption"):
        possible = sorted(getattr(exc, "possibilities", None) or [])
        return (
            "no such option"
            + (f" (did you mean {', '.join(possible)}?)" if possible else "")
            + (f"; {see}")
        )
    if _is_a(exc, "UsageError"):
        return f"not a command, option or argument of {command}; {see}"
    return f"the command cannot run as given; {see}"


def _is_a(exc: Exception, name: str) -> bool:
    return any(kind.__name__ == name for kind in type(exc).__mro__)


def _choices(param: Any) -> list[str]:
    """The values a parameter takes, from click's Choice or typer's Enum annotation."""
    listed = getattr(getattr(param, "type", None), "choices", None)
    if listed:
        return [str(c.value if isinstance(c, Enum) else c) for c in listed]
    runtime = getattr(param, "get_runtime_param", None)
    annotation = getattr(runtime(), "annotation", None) if callable(runtime) else None
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return [str(e.value) for e in annotation]
    return []
