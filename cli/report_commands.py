"""`rujukan report`: the task force's periodic report, and the case-level export for SIMFONI-PPA."""

from __future__ import annotations

import getpass
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cli.context import context
from models.codes import DEFAULT_LOCALE


class ReportFormat(StrEnum):
    """The report's file formats."""

    md = "md"
    html = "html"
    csv = "csv"
    xlsx = "xlsx"


class Locale(StrEnum):
    """The report's languages."""

    id = "id"
    en = "en"


DEFAULT = Locale(DEFAULT_LOCALE)


def report(
    period: Annotated[
        str, typer.Option("--period", help="A month (2026-11), quarter (2026-Q4) or year (2026).")
    ],
    report_format: Annotated[
        ReportFormat, typer.Option("--format", help="md, html, csv or xlsx.")
    ] = ReportFormat.md,
    locale: Annotated[
        Locale, typer.Option("--locale", help="id (Bahasa Indonesia) or en.")
    ] = DEFAULT,
    output: Annotated[
        Path | None,
        typer.Option("--output", help="The file to write (default: md and csv to the screen)."),
    ] = None,
    cases: Annotated[
        bool,
        typer.Option(
            "--cases",
            help="The de-identified case-level records for SIMFONI-PPA (csv or xlsx) instead "
            "of the aggregates; the read is audited.",
        ),
    ] = False,
) -> None:
    """The task force's report of a period: agencies, pathways, case facts, trend, with charts.

    Counts from 1 to 4 read "<5" (and a count that would give one away "*") in every format.

    Example: rujukan report --period 2026-11
    Example: rujukan report --period 2026-Q4 --format html --output laporan-2026-Q4.html
    Example: rujukan report --period 2026 --cases --format xlsx --output simfoni-2026.xlsx
    """
    from models.clock import utcnow
    from models.errors import BadInput
    from models.report import compute_report, parse_period, publish
    from models.report_output import render
    from models.simfoni import case_records, records_csv, records_xlsx

    ctx = context()
    now = utcnow()
    chosen = parse_period(period, ctx.settings.timezone)
    if cases:
        if report_format not in (ReportFormat.csv, ReportFormat.xlsx):
            raise BadInput("--cases writes csv or xlsx: add --format csv or --format xlsx")
        with ctx.transaction() as session:
            rows = case_records(
                session, period=chosen, sealer=ctx.sealer, actor=_operator(), now=now
            )
        data = records_csv(rows) if report_format == ReportFormat.csv else records_xlsx(rows)
    else:
        with ctx.transaction() as session:
            figures = compute_report(session, catalog=ctx.catalog, period=chosen, now=now)
        data = render(publish(figures, locale.value), report_format.value)
    if output is None:
        if report_format in (ReportFormat.html, ReportFormat.xlsx):
            raise BadInput(f"--format {report_format.value} needs --output FILE")
        sys.stdout.write(data.decode())
        return
    try:
        output.write_bytes(data)
    except OSError as exc:
        raise BadInput(f"--output: cannot write the file ({exc.strerror})") from None
    typer.echo(f"wrote {output} ({len(data)} bytes)", err=True)


def _operator() -> str:
    """Who runs the export on the server, as the audit trail records it."""
    return f"operator:{getpass.getuser()}"[:80]
